using System.Buffers.Binary;
using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.Storage.Encoding.V1;

/// <summary>
/// Decodes one row group (already read into memory) column by column, on demand. A by-ID lookup decodes the trace-id
/// column first and only decodes the rest when the id is present. Owner/child relations are recovered from the count
/// columns with prefix sums (child rows of owner i are [start[i], start[i+1])).
/// </summary>
/// <remarks>Not thread-safe; one instance per lookup or per iteration.</remarks>
public sealed class RowGroupReader
{
    private readonly byte[] _data;
    private readonly string _key;
    private readonly long _baseOffset;
    private readonly (int Offset, int Length, ChunkShape Shape)[] _dir;
    private readonly byte[]?[] _raw = new byte[]?[Col.Count];
    private readonly int[] _rowsPerPage = new int[Col.Count];
    private readonly long[]?[] _ints = new long[]?[Col.Count];
    private readonly DictColumn?[] _dicts = new DictColumn?[Col.Count];
    private readonly Cursor[] _cursors = new Cursor[Col.Count];
    private readonly TypeCursor[] _typeCursors = new TypeCursor[5];
    private bool _structureDecoded;

    // Structure (prefix sums), decoded on first BuildTrace.
    private long[] _traceStarts = [];
    private int[] _resStart = [];
    private int[] _scopeStart = [];
    private int[] _spanStart = [];
    private int[] _eventStart = [];
    private int[] _linkStart = [];
    private readonly int[][] _attrStart = new int[5][];

    /// <param name="data">The row group's bytes.</param>
    /// <param name="objectKey">The data object, for error messages.</param>
    /// <param name="baseOffset">Offset of the row group in the data object, for error messages.</param>
    /// <param name="expectedTraces">Trace count the index promised.</param>
    public RowGroupReader(byte[] data, string objectKey, long baseOffset, int expectedTraces)
    {
        _data = data;
        _key = objectKey;
        _baseOffset = baseOffset;
        var r = new ByteReader(data, objectKey, baseOffset, "row group header");
        if (r.ReadU32() != FormatV1.RowGroupMagic)
        {
            throw new BlockCorruptException(objectKey, baseOffset, "bad row group magic");
        }

        TraceCount = (int)r.ReadU32();
        if (TraceCount != expectedTraces)
        {
            throw new BlockCorruptException(objectKey, baseOffset + 4, $"row group holds {TraceCount} traces, index says {expectedTraces}");
        }

        int cols = r.ReadU16();
        if (cols < Col.Count)
        {
            throw new BlockCorruptException(objectKey, baseOffset + 8, $"row group has {cols} columns, format needs {Col.Count}");
        }

        _dir = new (int, int, ChunkShape)[cols];
        for (int c = 0; c < cols; c++)
        {
            int off = (int)r.ReadU32();
            int len = (int)r.ReadU32();
            var shape = new ChunkShape((int)r.ReadU32(), (int)r.ReadU32(), (int)r.ReadU32());
            if (off < 0 || len <= 0 || (long)off + len > data.Length || !ColumnPages.ShapeFits(c, shape, len))
            {
                throw r.Corrupt($"column {Col.Name(c)} extent [{off}, +{len}) ({shape}) is outside the {data.Length}-byte row group");
            }

            _dir[c] = (off, len, shape);
        }
    }

    public int TraceCount { get; }

    /// <summary>
    /// The decompressed, CRC-checked raw bytes of one column chunk (layout per <see cref="Col.Kind"/>; see
    /// docs/block-format.md). For column scans that decode values themselves.
    /// </summary>
    public ReadOnlySpan<byte> ColumnBytes(int column)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(column);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(column, Col.Count);
        return Raw(column);
    }

    public TraceId TraceIdAt(int t) => TraceId.FromBytes(Fixed(Col.TraceId, t, 16));

    /// <summary>Binary search of the (sorted) trace-id column; -1 when absent.</summary>
    public int FindTrace(TraceId id)
    {
        var ids = Raw(Col.TraceId);
        if (ids.Length != TraceCount * 16)
        {
            throw Corrupt(Col.TraceId, $"holds {ids.Length} bytes for {TraceCount} trace ids");
        }

        int lo = 0, hi = TraceCount - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int c = TraceIdAt(mid).CompareTo(id);
            if (c == 0)
            {
                return mid;
            }

            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return -1;
    }

    /// <summary>Reassembles trace <paramref name="t"/> exactly as it was added (span trace ids are the row's id).</summary>
    public Trace BuildTrace(int t)
    {
        DecodeStructure();
        var traceId = TraceIdAt(t);
        ulong traceStart = (ulong)_traceStarts[t];
        var trace = new Trace();
        for (int r = _resStart[t]; r < _resStart[t + 1]; r++)
        {
            var rs = new ResourceSpans { SchemaUrl = Str(Col.ResourceSchemaUrl, r) };
            rs.Resource.DroppedAttributesCount = (uint)Int(Col.ResourceDroppedAttrs, r);
            AddAttributes(AttrLevel.Resource, r, rs.Resource.Attributes);
            for (int sc = _scopeStart[r]; sc < _scopeStart[r + 1]; sc++)
            {
                var ss = new ScopeSpans { SchemaUrl = Str(Col.ScopeSchemaUrl, sc) };
                ss.Scope.Name = Str(Col.ScopeName, sc);
                ss.Scope.Version = Str(Col.ScopeVersion, sc);
                ss.Scope.DroppedAttributesCount = (uint)Int(Col.ScopeDroppedAttrs, sc);
                AddAttributes(AttrLevel.Scope, sc, ss.Scope.Attributes);
                for (int sp = _spanStart[sc]; sp < _spanStart[sc + 1]; sp++)
                {
                    ss.Spans.Add(BuildSpan(traceId, traceStart, sp));
                }

                rs.ScopeSpans.Add(ss);
            }

            trace.ResourceSpans.Add(rs);
        }

        return trace;
    }

    private Span BuildSpan(TraceId traceId, ulong traceStart, int sp)
    {
        ulong start = unchecked(traceStart + (ulong)Int(Col.SpanStartDelta, sp));
        var s = new Span
        {
            TraceId = traceId,
            SpanId = new SpanId(BinaryPrimitives.ReadUInt64BigEndian(Fixed(Col.SpanId, sp, 8))),
            ParentSpanId = new SpanId(BinaryPrimitives.ReadUInt64BigEndian(Fixed(Col.SpanParentId, sp, 8))),
            Name = Str(Col.SpanName, sp),
            Kind = (SpanKind)Byte(Col.SpanKind, sp),
            StartTimeUnixNano = start,
            EndTimeUnixNano = unchecked(start + (ulong)Int(Col.SpanDuration, sp)),
            StatusCode = (StatusCode)Byte(Col.SpanStatusCode, sp),
            StatusMessage = Str(Col.SpanStatusMessage, sp),
            TraceState = Str(Col.SpanTraceState, sp),
            Flags = (uint)Int(Col.SpanFlags, sp),
            DroppedAttributesCount = (uint)Int(Col.SpanDroppedAttrs, sp),
            DroppedEventsCount = (uint)Int(Col.SpanDroppedEvents, sp),
            DroppedLinksCount = (uint)Int(Col.SpanDroppedLinks, sp),
        };
        AddAttributes(AttrLevel.Span, sp, s.Attributes);
        for (int e = _eventStart[sp]; e < _eventStart[sp + 1]; e++)
        {
            var ev = new SpanEvent
            {
                TimeUnixNano = unchecked(start + (ulong)Int(Col.EventTimeDelta, e)),
                Name = Str(Col.EventName, e),
                DroppedAttributesCount = (uint)Int(Col.EventDroppedAttrs, e),
            };
            AddAttributes(AttrLevel.Event, e, ev.Attributes);
            s.Events.Add(ev);
        }

        for (int l = _linkStart[sp]; l < _linkStart[sp + 1]; l++)
        {
            var link = new SpanLink
            {
                TraceId = TraceId.FromBytes(Fixed(Col.LinkTraceId, l, 16)),
                SpanId = new SpanId(BinaryPrimitives.ReadUInt64BigEndian(Fixed(Col.LinkSpanId, l, 8))),
                TraceState = Str(Col.LinkTraceState, l),
                Flags = (uint)Int(Col.LinkFlags, l),
                DroppedAttributesCount = (uint)Int(Col.LinkDroppedAttrs, l),
            };
            AddAttributes(AttrLevel.Link, l, link.Attributes);
            s.Links.Add(link);
        }

        return s;
    }

    private void AddAttributes(AttrLevel level, int owner, List<KeyValue> into)
    {
        int lv = (int)level;
        int from = _attrStart[lv][owner], to = _attrStart[lv][owner + 1];
        for (int a = from; a < to; a++)
        {
            string key = Str(Col.Attr(level, Col.AttrKey), a);
            var kind = (AnyValueKind)Byte(Col.Attr(level, Col.AttrType), a);
            int vi = ValueIndex(lv, a);
            AnyValue v = kind switch
            {
                AnyValueKind.Empty => AnyValue.EmptyValue,
                AnyValueKind.String => AnyValue.String(Str(Col.Attr(level, Col.AttrString), vi)),
                AnyValueKind.Bool => AnyValue.Bool(Int(Col.Attr(level, Col.AttrInt), vi) != 0),
                AnyValueKind.Int => AnyValue.Int(Int(Col.Attr(level, Col.AttrInt), vi)),
                AnyValueKind.Double => AnyValue.Double(BitConverter.UInt64BitsToDouble(BinaryPrimitives.ReadUInt64LittleEndian(Fixed(Col.Attr(level, Col.AttrDouble), vi, 8)))),
                AnyValueKind.Bytes => AnyValue.Bytes(Blob(Col.Attr(level, Col.AttrBlob), vi).ToArray()),
                AnyValueKind.Array or AnyValueKind.KvList => ReadNested(Col.Attr(level, Col.AttrBlob), vi),
                _ => throw Corrupt(Col.Attr(level, Col.AttrType), $"unknown value kind {(byte)kind} at row {a}"),
            };
            into.Add(new KeyValue(key, v));
        }
    }

    private AnyValue ReadNested(int col, int row)
    {
        var r = new ByteReader(Blob(col, row), _key, _baseOffset + _dir[col].Offset, Col.Name(col));
        var v = AnyValueCodec.Read(ref r);
        if (!r.End)
        {
            throw Corrupt(col, $"row {row} has trailing bytes after its value");
        }

        return v;
    }

    private void DecodeStructure()
    {
        if (_structureDecoded)
        {
            return;
        }

        // Trace starts are zig-zag deltas from the previous trace's start within a page (each page starts from 0).
        var deltas = Ints(Col.TraceStart);
        ExpectRows(Col.TraceStart, deltas.Length, TraceCount);
        _traceStarts = new long[TraceCount];
        long acc = 0;
        int perPage = _rowsPerPage[Col.TraceStart];
        for (int i = 0; i < TraceCount; i++)
        {
            acc = i % perPage == 0 ? deltas[i] : unchecked(acc + deltas[i]);
            _traceStarts[i] = acc;
        }

        // Only the count columns are decoded into arrays (for the prefix sums); value columns are read through
        // forward cursors, so a lookup decodes no more values than the rows it returns plus the varints it skips.
        _resStart = Prefix(Col.TraceResourceCount, TraceCount);
        int resources = _resStart[^1];
        _scopeStart = Prefix(Col.ResourceScopeCount, resources);
        int scopes = _scopeStart[^1];
        _spanStart = Prefix(Col.ScopeSpanCount, scopes);
        int spans = _spanStart[^1];
        _eventStart = Prefix(Col.SpanEventCount, spans);
        _linkStart = Prefix(Col.SpanLinkCount, spans);
        int[] owners = [resources, scopes, spans, _eventStart[^1], _linkStart[^1]];
        for (int lv = 0; lv < 5; lv++)
        {
            _attrStart[lv] = Prefix(Col.Attr((AttrLevel)lv, Col.AttrCount), owners[lv]);
        }

        // Fixed-width columns are checked whole up front; variable-width ones fail typed when a cursor runs off the end.
        ExpectRows(Col.SpanId, Raw(Col.SpanId).Length, spans * 8);
        ExpectRows(Col.SpanParentId, Raw(Col.SpanParentId).Length, spans * 8);
        ExpectRows(Col.SpanKind, Raw(Col.SpanKind).Length, spans);
        ExpectRows(Col.SpanStatusCode, Raw(Col.SpanStatusCode).Length, spans);
        ExpectRows(Col.LinkTraceId, Raw(Col.LinkTraceId).Length, _linkStart[^1] * 16);
        ExpectRows(Col.LinkSpanId, Raw(Col.LinkSpanId).Length, _linkStart[^1] * 8);
        for (int lv = 0; lv < 5; lv++)
        {
            int col = Col.Attr((AttrLevel)lv, Col.AttrType);
            ExpectRows(col, Raw(col).Length, _attrStart[lv][^1]);
        }

        _structureDecoded = true;
    }

    private int[] Prefix(int countColumn, int owners)
    {
        var counts = Ints(countColumn);
        ExpectRows(countColumn, counts.Length, owners);
        var p = new int[owners + 1];
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

    private void ExpectRows(int col, int actual, int expected)
    {
        if (actual != expected)
        {
            throw Corrupt(col, $"holds {actual} values where the structure needs {expected}");
        }
    }

    private BlockCorruptException Corrupt(int col, string problem) =>
        new(_key, _baseOffset + _dir[col].Offset, $"column {Col.Name(col)}: {problem}");

    private byte[] Raw(int col)
    {
        if (_raw[col] is { } r)
        {
            return r;
        }

        var (off, len, shape) = _dir[col];
        r = ColumnPages.ReadWhole(_data.AsSpan(off, len), col, shape, _key, _baseOffset + off, out var index);
        _rowsPerPage[col] = index.RowsPerPage;
        _raw[col] = r;
        return r;
    }

    /// <summary>Decodes a whole varint column (used for count columns and trace starts).</summary>
    private long[] Ints(int col)
    {
        if (_ints[col] is { } v)
        {
            return v;
        }

        var raw = Raw(col);
        int n = 0;
        foreach (byte b in raw)
        {
            n += b < 0x80 ? 1 : 0; // every varint ends with exactly one byte below 0x80
        }

        v = new long[n];
        var r = new ByteReader(raw, _key, _baseOffset + _dir[col].Offset, Col.Name(col));
        bool zig = Col.Kind(col) == ColumnKind.Zigzag;
        for (int i = 0; i < n; i++)
        {
            v[i] = zig ? r.ReadZigzag() : (long)r.ReadVarint();
        }

        _ints[col] = v;
        return v;
    }

    /// <summary>
    /// Positions column <paramref name="col"/>'s cursor at <paramref name="row"/> (value rows start at
    /// <paramref name="dataStart"/>) and returns a reader there. Forward moves skip values; a backward move restarts.
    /// </summary>
    private ByteReader Seek(int col, int row, int dataStart)
    {
        var raw = Raw(col);
        ref var c = ref _cursors[col];
        if (row < c.Row || c.Pos < dataStart)
        {
            c = new Cursor(0, dataStart);
        }

        var r = new ByteReader(raw, _key, _baseOffset + _dir[col].Offset, Col.Name(col)) { Position = c.Pos };
        bool blob = Col.Kind(col) == ColumnKind.Blob;
        for (int i = c.Row; i < row; i++)
        {
            if (blob)
            {
                r.ReadBytesWithLength();
            }
            else
            {
                r.ReadVarint();
            }
        }

        return r;
    }

    private long Int(int col, int row)
    {
        var r = Seek(col, row, 0);
        long v = Col.Kind(col) == ColumnKind.Zigzag ? r.ReadZigzag() : (long)r.ReadVarint();
        _cursors[col] = new Cursor(row + 1, r.Position);
        return v;
    }

    private byte Byte(int col, int row)
    {
        var raw = Raw(col);
        if ((uint)row >= (uint)raw.Length)
        {
            throw Corrupt(col, $"row {row} is past its {raw.Length} values");
        }

        return raw[row];
    }

    private ReadOnlySpan<byte> Fixed(int col, int row, int width)
    {
        var raw = Raw(col);
        if ((long)(row + 1) * width > raw.Length)
        {
            throw Corrupt(col, $"row {row} is past its {raw.Length / width} values");
        }

        return raw.AsSpan(row * width, width);
    }

    private DictColumn Dict(int col)
    {
        if (_dicts[col] is { } d)
        {
            return d;
        }

        var raw = Raw(col);
        var r = new ByteReader(raw, _key, _baseOffset + _dir[col].Offset, Col.Name(col));
        int n = r.ReadCount(raw.Length);
        var starts = new int[n];
        for (int i = 0; i < n; i++)
        {
            starts[i] = r.Position;
            r.ReadBytesWithLength(); // validates lengths; strings are decoded on first use
        }

        d = new DictColumn(starts, new string?[n], r.Position);
        _dicts[col] = d;
        return d;
    }

    private string Str(int col, int row)
    {
        var d = Dict(col);
        var r = Seek(col, row, d.IdsStart);
        int id = r.ReadCount(Math.Max(0, d.Starts.Length - 1));
        if (d.Starts.Length == 0)
        {
            throw Corrupt(col, $"row {row} refers to an empty dictionary");
        }

        _cursors[col] = new Cursor(row + 1, r.Position);
        if (d.Values[id] is { } s)
        {
            return s;
        }

        var sr = new ByteReader(Raw(col), _key, _baseOffset + _dir[col].Offset, Col.Name(col)) { Position = d.Starts[id] };
        s = sr.ReadString();
        d.Values[id] = s;
        return s;
    }

    private ReadOnlySpan<byte> Blob(int col, int row)
    {
        var r = Seek(col, row, 0);
        var b = r.ReadBytesWithLength();
        _cursors[col] = new Cursor(row + 1, r.Position);
        return Raw(col).AsSpan(r.Position - b.Length, b.Length);
    }

    /// <summary>Index of attribute <paramref name="a"/>'s value in its type's dense column (forward cursor per level).</summary>
    private int ValueIndex(int level, int a)
    {
        ref var c = ref _typeCursors[level];
        if (a < c.Row)
        {
            c = default;
        }

        var types = Raw(Col.Attr((AttrLevel)level, Col.AttrType));
        for (int i = c.Row; i < a; i++)
        {
            switch ((AnyValueKind)types[i])
            {
                case AnyValueKind.String: c.Strings++; break;
                case AnyValueKind.Bool or AnyValueKind.Int: c.Ints++; break;
                case AnyValueKind.Double: c.Doubles++; break;
                case AnyValueKind.Bytes or AnyValueKind.Array or AnyValueKind.KvList: c.Blobs++; break;
                default: break;
            }
        }

        c.Row = a;
        return (AnyValueKind)types[a] switch
        {
            AnyValueKind.String => c.Strings,
            AnyValueKind.Bool or AnyValueKind.Int => c.Ints,
            AnyValueKind.Double => c.Doubles,
            AnyValueKind.Bytes or AnyValueKind.Array or AnyValueKind.KvList => c.Blobs,
            _ => 0,
        };
    }

    private record struct Cursor(int Row, int Pos);

    private struct TypeCursor
    {
        public int Row;
        public int Strings;
        public int Ints;
        public int Doubles;
        public int Blobs;
    }

    private sealed record DictColumn(int[] Starts, string?[] Values, int IdsStart);
}
