using System.Buffers;
using System.Buffers.Binary;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.TraceQL.Engine;

namespace Rubato.Storage.Encoding.V1.Search;

/// <summary>
/// Column-wise decoding of the chunks a scan read (<see cref="RowGroupColumns"/>): whole-column arrays for counts, ints
/// and dictionary ids, prefix sums of the count columns, and per-row owner indexes. Everything is decoded at most once
/// per row group; integer arrays are rented from <see cref="ArrayPool{T}.Shared"/> and returned on <see cref="Dispose"/>.
/// </summary>
/// <remarks>Not thread-safe; one instance per row group of one fetch (the thread enumerating the fetch).</remarks>
internal sealed class ColumnScan : IDisposable
{
    private readonly RowGroupColumns _cols;
    private readonly string _key;
    private readonly long[]?[] _longs = new long[]?[Col.Count];
    private readonly int[]?[] _ids = new int[]?[Col.Count];
    private readonly Dict?[] _dicts = new Dict?[Col.Count];
    private readonly int[]?[] _attrStart = new int[]?[5];
    private readonly int[]?[] _valueIndex = new int[]?[5];
    private readonly int[]?[] _blobStarts = new int[]?[5];
    private readonly List<long[]> _rentedLongs = [];
    private readonly List<int[]> _rentedInts = [];
    private int[]? _resStart;
    private int[]? _scopeStart;
    private int[]? _spanStart;
    private int[]? _eventStart;
    private int[]? _linkStart;
    private int[]? _spanTrace;
    private int[]? _spanScope;
    private int[]? _scopeRes;
    private long[]? _traceStarts;
    private int? _serviceNameKeyId;

    public ColumnScan(RowGroupColumns cols, string objectKey)
    {
        _cols = cols;
        _key = objectKey;
        TraceCount = cols.RowGroup.Traces;
    }

    public int TraceCount { get; }

    public RowGroupColumns Columns => _cols;

    /// <summary>Columns that <see cref="DecodeStructure"/> needs: the count columns from traces down to spans.</summary>
    public static readonly int[] StructureColumns = [Col.TraceResourceCount, Col.ResourceScopeCount, Col.ScopeSpanCount];

    public int ResourceCount => _resStart![TraceCount];

    public int ScopeCount => _scopeStart![ResourceCount];

    public int SpanCount => _spanStart![ScopeCount];

    /// <summary>Prefix sums trace → resource → scope → span and the owner of every span and scope row.</summary>
    public void DecodeStructure()
    {
        if (_spanTrace is not null)
        {
            return;
        }

        _resStart = Prefix(Col.TraceResourceCount, TraceCount);
        _scopeStart = Prefix(Col.ResourceScopeCount, _resStart[TraceCount]);
        int scopes = _scopeStart[_resStart[TraceCount]];
        _spanStart = Prefix(Col.ScopeSpanCount, scopes);
        int spans = _spanStart[scopes];
        if (spans != _cols.RowGroup.Spans)
        {
            throw Corrupt(Col.ScopeSpanCount, $"counts give {spans} spans, the footer says {_cols.RowGroup.Spans}");
        }

        _scopeRes = RentInts(scopes);
        _spanScope = RentInts(spans);
        _spanTrace = RentInts(spans);
        for (int t = 0; t < TraceCount; t++)
        {
            for (int r = _resStart[t]; r < _resStart[t + 1]; r++)
            {
                for (int sc = _scopeStart[r]; sc < _scopeStart[r + 1]; sc++)
                {
                    _scopeRes[sc] = r;
                    for (int sp = _spanStart[sc]; sp < _spanStart[sc + 1]; sp++)
                    {
                        _spanScope[sp] = sc;
                        _spanTrace[sp] = t;
                    }
                }
            }
        }
    }

    /// <summary>First span row of trace <paramref name="t"/> (spans of a trace are contiguous).</summary>
    public int TraceSpanStart(int t) => _spanStart![_scopeStart![_resStart![t]]];

    public int SpanTrace(int sp) => _spanTrace![sp];

    /// <summary>Resource rows of trace <paramref name="t"/>: [ResourceStart(t), ResourceStart(t + 1)).</summary>
    public int ResourceStart(int t) => _resStart![t];

    /// <summary>Scope rows of trace <paramref name="t"/>: [ScopeStartOfTrace(t), ScopeStartOfTrace(t + 1)).</summary>
    public int ScopeStartOfTrace(int t) => _scopeStart![_resStart![t]];

    public int SpanScope(int sp) => _spanScope![sp];

    public int SpanResource(int sp) => _scopeRes![_spanScope![sp]];

    public int[] EventStart => _eventStart ??= Prefix(Col.SpanEventCount, SpanCount);

    public int[] LinkStart => _linkStart ??= Prefix(Col.SpanLinkCount, SpanCount);

    /// <summary>Rows of the owner level of attribute level <paramref name="level"/>.</summary>
    public int OwnerCount(AttrLevel level) => level switch
    {
        AttrLevel.Resource => ResourceCount,
        AttrLevel.Scope => ScopeCount,
        AttrLevel.Span => SpanCount,
        AttrLevel.Event => EventStart[SpanCount],
        _ => LinkStart[SpanCount],
    };

    /// <summary>Attribute rows of owner o are [AttrStart(level)[o], AttrStart(level)[o+1]).</summary>
    public int[] AttrStart(AttrLevel level) => _attrStart[(int)level] ??= Prefix(Col.Attr(level, Col.AttrCount), OwnerCount(level));

    /// <summary>
    /// Row of every attribute row's value in its type's dense value column (one pass over the type column).
    /// </summary>
    public int[] ValueIndex(AttrLevel level)
    {
        if (_valueIndex[(int)level] is { } v)
        {
            return v;
        }

        var types = _cols.Raw(Col.Attr(level, Col.AttrType));
        int n = AttrStart(level)[OwnerCount(level)];
        if (types.Length != n)
        {
            throw Corrupt(Col.Attr(level, Col.AttrType), $"holds {types.Length} values where the structure needs {n}");
        }

        v = RentInts(n);
        int strings = 0, ints = 0, doubles = 0, blobs = 0;
        for (int a = 0; a < n; a++)
        {
            v[a] = (AnyValueKind)types[a] switch
            {
                AnyValueKind.String => strings++,
                AnyValueKind.Bool or AnyValueKind.Int => ints++,
                AnyValueKind.Double => doubles++,
                AnyValueKind.Bytes or AnyValueKind.Array or AnyValueKind.KvList => blobs++,
                _ => 0,
            };
        }

        _valueIndex[(int)level] = v;
        return v;
    }

    /// <summary>Key id of <c>service.name</c> in the resource key dictionary (-1 when absent), looked up once.</summary>
    public int ServiceNameKeyId => _serviceNameKeyId ??= FindInDict(Col.Attr(AttrLevel.Resource, Col.AttrKey), "service.name"u8);

    /// <summary>
    /// Whether resource attribute row <paramref name="a"/> of resource <paramref name="owner"/> is the resource's first
    /// <c>service.name</c> attribute and a string. Its value then equals row <paramref name="owner"/> of
    /// <c>resource.service_name</c> (the builder copies the first string <c>service.name</c> there), a column ~7× smaller
    /// than the resource string values, so scans read that instead.
    /// </summary>
    public bool IsServiceNameCopy(AttrLevel level, int owner, int a)
    {
        if (level != AttrLevel.Resource || owner < 0 || ServiceNameKeyId < 0)
        {
            return false;
        }

        var keys = Ids(Col.Attr(AttrLevel.Resource, Col.AttrKey));
        if (keys[a] != ServiceNameKeyId || (AnyValueKind)_cols.Raw(Col.Attr(AttrLevel.Resource, Col.AttrType))[a] != AnyValueKind.String)
        {
            return false;
        }

        for (int b = AttrStart(AttrLevel.Resource)[owner]; b < a; b++)
        {
            if (keys[b] == ServiceNameKeyId)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The attribute value of attribute row <paramref name="a"/> (its value column must have been read; for the first
    /// string <c>service.name</c> of a resource whose <paramref name="owner"/> is given, <c>resource.service_name</c>).
    /// </summary>
    public TraceQLValue AttrValue(AttrLevel level, int a, int owner = -1)
    {
        var kind = (AnyValueKind)_cols.Raw(Col.Attr(level, Col.AttrType))[a];
        if (kind == AnyValueKind.String && IsServiceNameCopy(level, owner, a))
        {
            return TraceQLValue.FromString(Str(Col.ResourceServiceName, owner));
        }

        int vi = ValueIndex(level)[a];
        switch (kind)
        {
            case AnyValueKind.String:
                return TraceQLValue.FromString(Str(Col.Attr(level, Col.AttrString), vi));
            case AnyValueKind.Bool:
                return TraceQLValue.FromBool(LongAt(Col.Attr(level, Col.AttrInt), vi) != 0);
            case AnyValueKind.Int:
                return TraceQLValue.FromInt(LongAt(Col.Attr(level, Col.AttrInt), vi));
            case AnyValueKind.Double:
                return TraceQLValue.FromFloat(BitConverter.UInt64BitsToDouble(BinaryPrimitives.ReadUInt64LittleEndian(Fixed(Col.Attr(level, Col.AttrDouble), vi, 8))));
            case AnyValueKind.Array:
                {
                    int col = Col.Attr(level, Col.AttrBlob);
                    var raw = _cols.Raw(col);
                    var r = new ByteReader(raw, _key, _cols.RowGroup.Offset + _cols.RowGroup.Columns[col].Offset, Col.Name(col))
                    {
                        Position = BlobStarts(level)[vi],
                    };
                    var bytes = r.ReadBytesWithLength();
                    var inner = new ByteReader(bytes, _key, r.BaseOffset, Col.Name(col));
                    return TraceQLValue.FromAnyValue(AnyValueCodec.Read(ref inner));
                }

            default:
                // Empty, bytes and kvlist attributes exist (they shadow resource attributes for '.x') but are nil in TraceQL.
                return TraceQLValue.Nil;
        }
    }

    /// <summary>Start of each row of a level's blob column.</summary>
    private int[] BlobStarts(AttrLevel level)
    {
        if (_blobStarts[(int)level] is { } s)
        {
            return s;
        }

        int col = Col.Attr(level, Col.AttrBlob);
        var raw = _cols.Raw(col);
        var list = new List<int>();
        var r = new ByteReader(raw, _key, _cols.RowGroup.Offset + _cols.RowGroup.Columns[col].Offset, Col.Name(col));
        while (!r.End)
        {
            list.Add(r.Position);
            r.ReadBytesWithLength();
        }

        s = [.. list];
        _blobStarts[(int)level] = s;
        return s;
    }

    /// <summary>A varint/zigzag column, decoded once (a sparse column: its read pages, other rows zero).</summary>
    public long[] Longs(int col)
    {
        // A sparse column is not cached: later reads may add pages to it or replace it with the whole column.
        if (_cols.Sparse(col) is { Longs: { } sparse })
        {
            return sparse;
        }

        if (_longs[col] is { } v)
        {
            return v;
        }

        var raw = _cols.Raw(col);
        int n = 0;
        foreach (byte b in raw)
        {
            n += b < 0x80 ? 1 : 0; // every varint ends with exactly one byte below 0x80
        }

        v = ArrayPool<long>.Shared.Rent(Math.Max(1, n));
        _rentedLongs.Add(v);
        var r = new ByteReader(raw, _key, _cols.RowGroup.Offset + _cols.RowGroup.Columns[col].Offset, Col.Name(col));
        bool zig = Col.Kind(col) == ColumnKind.Zigzag;
        for (int i = 0; i < n; i++)
        {
            v[i] = zig ? r.ReadZigzag() : (long)r.ReadVarint();
        }

        _longs[col] = v;
        return v;
    }

    /// <summary>Dictionary ids of every row of a dictionary column (a sparse column: its read pages, other rows 0).</summary>
    public int[] Ids(int col)
    {
        if (_cols.Sparse(col) is { Ids: { } sparse })
        {
            return sparse;
        }

        if (_ids[col] is { } v)
        {
            return v;
        }

        var d = GetDict(col);
        var raw = _cols.Raw(col);
        int n = 0;
        for (int i = d.IdsStart; i < raw.Length; i++)
        {
            n += raw[i] < 0x80 ? 1 : 0;
        }

        v = RentInts(n);
        var r = new ByteReader(raw, _key, _cols.RowGroup.Offset + _cols.RowGroup.Columns[col].Offset, Col.Name(col)) { Position = d.IdsStart };
        int max = d.Starts.Length;
        for (int i = 0; i < n; i++)
        {
            int id = (int)Math.Min(r.ReadVarint(), int.MaxValue);
            if (id >= max)
            {
                throw Corrupt(col, $"row {i} refers to dictionary entry {id} of {max}");
            }

            v[i] = id;
        }

        _ids[col] = v;
        return v;
    }

    /// <summary>Entries in a dictionary column's dictionary.</summary>
    public int DictCount(int col) => GetDict(col).Starts.Length;

    /// <summary>The UTF-8 bytes of dictionary entry <paramref name="id"/> (no string is created).</summary>
    public ReadOnlySpan<byte> DictBytes(int col, int id)
    {
        var d = GetDict(col);
        var r = new ByteReader(DictSource(col), _key, 0, Col.Name(col)) { Position = d.Starts[id] };
        return r.ReadBytesWithLength();
    }

    /// <summary>Dictionary entry <paramref name="id"/> as a string, decoded once and cached.</summary>
    public string DictString(int col, int id)
    {
        var d = GetDict(col);
        if (d.Values[id] is { } s)
        {
            return s;
        }

        s = System.Text.Encoding.UTF8.GetString(DictBytes(col, id));
        d.Values[id] = s;
        return s;
    }

    /// <summary>Id of <paramref name="value"/> in a dictionary column's dictionary, -1 when absent.</summary>
    public int FindInDict(int col, ReadOnlySpan<byte> value)
    {
        int n = DictCount(col);
        for (int i = 0; i < n; i++)
        {
            if (DictBytes(col, i).SequenceEqual(value))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Row <paramref name="row"/> of a dictionary column as a string.</summary>
    public string Str(int col, int row)
    {
        CheckLoaded(col, row);
        return DictString(col, Ids(col)[row]);
    }

    /// <summary>Row <paramref name="row"/> of a varint/zigzag column (checked against the pages read, unlike <see cref="Longs"/>).</summary>
    public long LongAt(int col, int row)
    {
        CheckLoaded(col, row);
        return Longs(col)[row];
    }

    /// <summary>
    /// Throws when <paramref name="row"/> of a sparsely read column lies in a page that was not read: its slot in the
    /// row-indexed arrays holds whatever the pooled array held before, so reading it would return garbage. A whole
    /// column passes; one array lookup and a division per access.
    /// </summary>
    private void CheckLoaded(int col, int row)
    {
        if (_cols.Sparse(col) is { } sparse)
        {
            int page = row / sparse.Index.RowsPerPage;
            if ((uint)page >= (uint)sparse.Loaded.Length || !sparse.Loaded[page])
            {
                throw new InvalidOperationException($"row {row} of column {Col.Name(col)} was not read (page {page} of {sparse.Loaded.Length})");
            }
        }
    }

    public ReadOnlySpan<byte> Fixed(int col, int row, int width)
    {
        CheckLoaded(col, row);
        var raw = _cols.Raw(col);
        if ((long)(row + 1) * width > raw.Length)
        {
            throw Corrupt(col, $"row {row} is past its {raw.Length / width} values");
        }

        return raw.AsSpan(row * width, width);
    }

    public ulong SpanIdAt(int col, int row) => BinaryPrimitives.ReadUInt64BigEndian(Fixed(col, row, 8));

    public TraceId TraceIdAt(int col, int row) => TraceId.FromBytes(Fixed(col, row, 16));

    public byte ByteAt(int col, int row)
    {
        CheckLoaded(col, row);
        var raw = _cols.Raw(col);
        if ((uint)row >= (uint)raw.Length)
        {
            throw Corrupt(col, $"row {row} is past its {raw.Length} values");
        }

        return raw[row];
    }

    /// <summary>Trace start (unix ns) of trace row <paramref name="t"/> (delta-decoded once).</summary>
    public ulong TraceStart(int t)
    {
        CheckLoaded(Col.TraceStart, t);
        if (_traceStarts is null)
        {
            // Deltas from the previous trace within a page; each page's first value is absolute, so a sparse column
            // decodes correctly in every page it holds.
            var deltas = Longs(Col.TraceStart);
            int perPage = _cols.RowsPerPage(Col.TraceStart);
            _traceStarts = ArrayPool<long>.Shared.Rent(Math.Max(1, TraceCount));
            _rentedLongs.Add(_traceStarts);
            long acc = 0;
            for (int i = 0; i < TraceCount; i++)
            {
                acc = i % perPage == 0 ? deltas[i] : unchecked(acc + deltas[i]);
                _traceStarts[i] = acc;
            }
        }

        return (ulong)_traceStarts[t];
    }

    public ulong TraceDuration(int t) => (ulong)LongAt(Col.TraceEndDelta, t);

    /// <summary>A rented scratch array of at least <paramref name="n"/> ints, returned on dispose. Not cleared.</summary>
    public int[] RentInts(int n)
    {
        var a = ArrayPool<int>.Shared.Rent(Math.Max(1, n));
        _rentedInts.Add(a);
        return a;
    }

    public void Dispose()
    {
        foreach (var a in _rentedInts)
        {
            ArrayPool<int>.Shared.Return(a);
        }

        foreach (var a in _rentedLongs)
        {
            ArrayPool<long>.Shared.Return(a);
        }

        _rentedInts.Clear();
        _rentedLongs.Clear();
    }

    public BlockCorruptException Corrupt(int col, string problem) =>
        new(_key, _cols.RowGroup.Offset + _cols.RowGroup.Columns[col].Offset, $"column {Col.Name(col)}: {problem}");

    private int[] Prefix(int countColumn, int owners)
    {
        var counts = Longs(countColumn);
        int rows = 0;
        foreach (byte b in _cols.Raw(countColumn))
        {
            rows += b < 0x80 ? 1 : 0;
        }

        if (rows != owners)
        {
            throw Corrupt(countColumn, $"holds {rows} values where the structure needs {owners}");
        }

        var p = RentInts(owners + 1);
        p[0] = 0;
        for (int i = 0; i < owners; i++)
        {
            long next = p[i] + counts[i];
            if (counts[i] < 0 || next > int.MaxValue)
            {
                throw Corrupt(countColumn, $"row {i} has count {counts[i]}");
            }

            p[i + 1] = (int)next;
        }

        return p;
    }

    private Dict GetDict(int col)
    {
        if (_dicts[col] is { } d)
        {
            return d;
        }

        var raw = DictSource(col);
        var r = new ByteReader(raw, _key, _cols.RowGroup.Offset + _cols.RowGroup.Columns[col].Offset, Col.Name(col));
        int n = r.ReadCount(raw.Length);
        var starts = new int[n];
        for (int i = 0; i < n; i++)
        {
            starts[i] = r.Position;
            r.ReadBytesWithLength();
        }

        d = new Dict(starts, new string?[n], r.Position);
        _dicts[col] = d;
        return d;
    }

    /// <summary>The bytes a dictionary is parsed from: the whole column (dictionary then ids) or a sparse column's dictionary page.</summary>
    private byte[] DictSource(int col) =>
        _cols.Sparse(col) is { } sparse
            ? sparse.Dictionary ?? throw Corrupt(col, "dictionary page was not read")
            : _cols.Raw(col);

    private sealed record Dict(int[] Starts, string?[] Values, int IdsStart);
}
