using System.Buffers.Binary;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Encoding.V1;

/// <summary>
/// Builds a <c>vRubato1</c> block: traces are shredded into the row group's column buffers as they are added; when the
/// raw size passes <see cref="BlockBuilderOptions.RowGroupSizeBytes"/> the row group is compressed and appended to a
/// temporary spill file, so memory holds one row group plus the bloom filter, not the block.
/// </summary>
/// <remarks>Single-threaded (the flushing thread of an ingester or a compaction job).</remarks>
public sealed class BlockBuilderV1 : IBlockBuilder
{
    private readonly BlockBuilderOptions _options;
    private readonly ColumnBuffers _cols = new();
    private readonly List<TraceId> _ids = [];
    private readonly List<IndexEntry> _index = [];
    private readonly ByteWriter _footerRowGroups = new(1024);
    private readonly FileStream _spill;
    private readonly ByteWriter _rgBytes = new(64 * 1024);
    private readonly ByteWriter _pageScratch = new(64 * 1024);
    private readonly PostingsBuilder? _postings;
    private TraceId _last;
    private bool _any;
    private bool _written;

    // Row group running stats.
    private int _rgTraces;
    private int _rgSpans;
    private TraceId _rgMinId;
    private TraceId _rgMaxId;
    private ulong _rgMinStart = ulong.MaxValue;
    private ulong _rgMaxEnd;
    private ulong _rgMinDur = ulong.MaxValue;
    private ulong _rgMaxDur;
    private ulong _prevTraceStart;

    // Block stats.
    private ulong _minStart = ulong.MaxValue;
    private ulong _maxEnd;
    private long _spanCount;

    public BlockBuilderV1(BlockBuilderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _postings = options.PostingsMaxValues > 0 ? new PostingsBuilder(options.PostingsMaxValues, options.PostingsMaxShare, options.Compression) : null;
        _spill = new FileStream(Path.Combine(Path.GetTempPath(), "rubato-block-" + Guid.NewGuid().ToString("N")), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        Span<byte> header = stackalloc byte[FormatV1.DataHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, FormatV1.DataMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], FormatV1.FormatRevision);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 0);
        _spill.Write(header);
    }

    public int TraceCount => _ids.Count;

    public void AddTrace(TraceId id, Trace trace)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ObjectDisposedException.ThrowIf(_written, this);
        if (_any && id <= _last)
        {
            throw new ArgumentException($"traces must be added in ascending id order: {id} after {_last}", nameof(id));
        }

        _any = true;
        _last = id;
        _ids.Add(id);
        ShredTrace(id, trace);
        if (_cols.RawSize >= _options.RowGroupSizeBytes)
        {
            CutRowGroup();
        }
    }

    public async Task<BlockMeta> WriteAsync(IObjectStore store, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        ObjectDisposedException.ThrowIf(_written, this);
        if (_ids.Count == 0)
        {
            throw new InvalidOperationException("cannot write an empty block");
        }

        _written = true;
        CutRowGroup();

        // Footer: revision, column count, row group count, then the row group directory built while cutting.
        var footer = new ByteWriter(_footerRowGroups.Length + 16);
        footer.WriteU16(FormatV1.FormatRevision);
        footer.WriteU16((ushort)Col.Count);
        footer.WriteU32((uint)_index.Count);
        footer.Write(_footerRowGroups.WrittenSpan);
        footer.WriteU32((uint)footer.Length);
        footer.WriteU32(Crc32C.Compute(footer.WrittenSpan[..^4]));
        footer.WriteU32(FormatV1.DataMagic);
        long footerOffset = _spill.Position;
        _spill.Write(footer.WrittenSpan);
        _spill.Flush();
        long dataSize = _spill.Length;
        _spill.Position = 0;

        string tenant = _options.TenantId;
        Guid blockId = _options.BlockId;
        await store.PutAsync(ObjectKeys.BlockObject(tenant, blockId, FormatV1.DataName), _spill, ct).ConfigureAwait(false);

        byte[] index = BuildIndex(footerOffset);
        await store.PutAsync(ObjectKeys.BlockObject(tenant, blockId, FormatV1.IndexName), index, ct).ConfigureAwait(false);

        int shards = BloomFilter.ShardCount(_ids.Count, _options.BloomFalsePositive, _options.BloomShardSizeBytes);
        var (bits, k) = BloomFilter.Size((_ids.Count + shards - 1) / shards, _options.BloomFalsePositive);
        var blooms = new BloomFilter[shards];
        for (int i = 0; i < shards; i++)
        {
            blooms[i] = new BloomFilter(bits, k);
        }

        foreach (var id in _ids)
        {
            blooms[BloomFilter.ShardOf(id, shards)].Add(id);
        }

        long bloomBytes = 0;
        for (int i = 0; i < shards; i++)
        {
            byte[] b = blooms[i].Serialize();
            bloomBytes += b.Length;
            await store.PutAsync(ObjectKeys.BlockObject(tenant, blockId, FormatV1.BloomName(i)), b, ct).ConfigureAwait(false);
        }

        long postingsBytes = 0;
        if (_postings is not null)
        {
            byte[] postings = _postings.ToArray();
            postingsBytes = postings.Length;
            await store.PutAsync(ObjectKeys.BlockObject(tenant, blockId, Postings.ObjectName), postings, ct).ConfigureAwait(false);
        }

        var meta = new BlockMeta
        {
            Version = FormatV1.Version,
            BlockId = blockId,
            TenantId = tenant,
            MinId = _ids[0],
            MaxId = _ids[^1],
            StartTime = DateTimeOffset.FromUnixTimeSeconds((long)(_minStart == ulong.MaxValue ? 0 : _minStart / 1_000_000_000UL)),
            EndTime = DateTimeOffset.FromUnixTimeSeconds((long)((_maxEnd + 999_999_999UL) / 1_000_000_000UL)),
            TotalObjects = _ids.Count,
            SpanCount = _spanCount,
            Size = (ulong)(dataSize + index.Length + bloomBytes + postingsBytes),
            PostingsSize = (ulong)postingsBytes,
            CompactionLevel = _options.CompactionLevel,
            ReplicationFactor = _options.ReplicationFactor,
            Encoding = FormatV1.CodecName(_options.Compression),
            IndexPageSize = (uint)index.Length,
            TotalRecords = (uint)_index.Count,
            BloomShards = (uint)shards,
            FooterSize = (uint)footer.Length,
        };

        // meta.json last: until it exists the block is invisible to readers.
        await store.PutAsync(ObjectKeys.BlockObject(tenant, blockId, ObjectKeys.MetaName), meta.ToJson(), ct).ConfigureAwait(false);
        return meta;
    }

    public void Dispose() => _spill.Dispose();

    private byte[] BuildIndex(long footerOffset)
    {
        var w = new ByteWriter(FormatV1.IndexHeaderSize + 4 + (_index.Count * FormatV1.IndexEntrySize));
        w.WriteU32(FormatV1.IndexMagic);
        w.WriteU16(FormatV1.FormatRevision);
        w.WriteU16(0);
        w.WriteU32((uint)_index.Count);
        w.WriteU64((ulong)footerOffset);
        Span<byte> id = stackalloc byte[16];
        foreach (var e in _index)
        {
            e.MinId.WriteTo(id);
            w.Write(id);
            e.MaxId.WriteTo(id);
            w.Write(id);
            w.WriteU64((ulong)e.Offset);
            w.WriteU32((uint)e.Length);
            w.WriteU32((uint)e.Traces);
        }

        w.WriteU32(Crc32C.Compute(w.WrittenSpan));
        return w.ToArray();
    }

    private void CutRowGroup()
    {
        if (_rgTraces == 0)
        {
            return;
        }

        // Row group: magic, trace count, column count, directory (offset, length relative to the row group, rows, rows
        // per page, stats length), chunks. Each chunk is paged (ColumnPages): header, entries, stats, dictionary page,
        // data pages.
        _rgBytes.Clear();
        _rgBytes.WriteU32(FormatV1.RowGroupMagic);
        _rgBytes.WriteU32((uint)_rgTraces);
        _rgBytes.WriteU16((ushort)Col.Count);
        int dirAt = _rgBytes.Length;
        _rgBytes.GetSpan(Col.Count * FormatV1.DirectoryEntrySize);
        _rgBytes.Advance(Col.Count * FormatV1.DirectoryEntrySize);
        var dir = new (int Offset, int Length, ChunkShape Shape)[Col.Count];
        for (int c = 0; c < Col.Count; c++)
        {
            int start = _rgBytes.Length;
            var values = _cols.Values(c);
            int rows = _cols.Rows(c);
            long stored = ColumnPages.EstimateStored(values, _options.Compression, _pageScratch);
            int perPage = ColumnPages.RowsPerPage(c, rows, values.Length, stored, _rgTraces, _options);
            if (c == Col.TraceStart)
            {
                values = _cols.RebaseDeltasPerPage(c, rows, perPage);
            }

            var shape = ColumnPages.Write(_rgBytes, c, _cols.Dictionary(c), values, rows, perPage, _options.Compression, _pageScratch);
            dir[c] = (start, _rgBytes.Length - start, shape);
        }

        for (int c = 0; c < Col.Count; c++)
        {
            int at = dirAt + (c * FormatV1.DirectoryEntrySize);
            _rgBytes.WriteU32At(at, (uint)dir[c].Offset);
            _rgBytes.WriteU32At(at + 4, (uint)dir[c].Length);
            _rgBytes.WriteU32At(at + 8, (uint)dir[c].Shape.Rows);
            _rgBytes.WriteU32At(at + 12, (uint)dir[c].Shape.RowsPerPage);
            _rgBytes.WriteU32At(at + 16, (uint)dir[c].Shape.StatsLength);
        }

        _postings?.CutRowGroup();
        long offset = _spill.Position;
        _spill.Write(_rgBytes.WrittenSpan);
        _index.Add(new IndexEntry(_rgMinId, _rgMaxId, offset, _rgBytes.Length, _rgTraces));

        // Footer directory entry: extent, counts, id and time ranges, span duration range, and the column directory.
        var f = _footerRowGroups;
        f.WriteU64((ulong)offset);
        f.WriteU32((uint)_rgBytes.Length);
        f.WriteU32((uint)_rgTraces);
        f.WriteU32((uint)_rgSpans);
        Span<byte> id = stackalloc byte[16];
        _rgMinId.WriteTo(id);
        f.Write(id);
        _rgMaxId.WriteTo(id);
        f.Write(id);
        f.WriteU64(_rgMinStart == ulong.MaxValue ? 0 : _rgMinStart);
        f.WriteU64(_rgMaxEnd);
        f.WriteU64(_rgMinDur == ulong.MaxValue ? 0 : _rgMinDur);
        f.WriteU64(_rgMaxDur);
        foreach (var (o, l, shape) in dir)
        {
            f.WriteU32((uint)o);
            f.WriteU32((uint)l);
            f.WriteU32((uint)shape.Rows);
            f.WriteU32((uint)shape.RowsPerPage);
            f.WriteU32((uint)shape.StatsLength);
        }

        _cols.Clear();
        _rgTraces = 0;
        _rgSpans = 0;
        _rgMinStart = ulong.MaxValue;
        _rgMaxEnd = 0;
        _rgMinDur = ulong.MaxValue;
        _rgMaxDur = 0;
        _prevTraceStart = 0;
    }

    private void ShredTrace(TraceId id, Trace trace)
    {
        // Trace bounds and root.
        ulong start = ulong.MaxValue, end = 0;
        string rootService = string.Empty, rootName = string.Empty;
        bool rootFound = false;
        int spans = 0;
        foreach (var rs in trace.ResourceSpans)
        {
            foreach (var ss in rs.ScopeSpans)
            {
                foreach (var s in ss.Spans)
                {
                    spans++;
                    start = Math.Min(start, s.StartTimeUnixNano);
                    end = Math.Max(end, s.EndTimeUnixNano);
                    if (!rootFound && s.ParentSpanId.IsEmpty)
                    {
                        rootFound = true;
                        rootName = s.Name;
                        rootService = rs.Resource.ServiceName() ?? string.Empty;
                    }
                }
            }
        }

        if (spans == 0)
        {
            start = 0;
        }

        if (_rgTraces == 0)
        {
            _rgMinId = id;
        }

        _rgMaxId = id;
        _rgTraces++;
        _rgSpans += spans;
        _spanCount += spans;
        if (spans > 0)
        {
            _rgMinStart = Math.Min(_rgMinStart, start);
            _rgMaxEnd = Math.Max(_rgMaxEnd, end);
            _minStart = Math.Min(_minStart, start);
            _maxEnd = Math.Max(_maxEnd, end);
        }

        var c = _cols;
        c.Fixed16(Col.TraceId, id);
        c.Zigzag(Col.TraceStart, unchecked((long)(start - _prevTraceStart)));
        _prevTraceStart = start;
        c.Zigzag(Col.TraceEndDelta, unchecked((long)(end - start)));
        c.Dict(Col.TraceRootService, rootService);
        c.Dict(Col.TraceRootSpanName, rootName);
        c.Varint(Col.TraceSpanCount, (ulong)spans);
        c.Varint(Col.TraceResourceCount, (ulong)trace.ResourceSpans.Count);

        foreach (var rs in trace.ResourceSpans)
        {
            c.Dict(Col.ResourceSchemaUrl, rs.SchemaUrl);
            c.Varint(Col.ResourceDroppedAttrs, rs.Resource.DroppedAttributesCount);
            c.Varint(Col.ResourceScopeCount, (ulong)rs.ScopeSpans.Count);
            c.Dict(Col.ResourceServiceName, rs.Resource.ServiceName() ?? string.Empty);
            c.Attributes(AttrLevel.Resource, rs.Resource.Attributes);
            _postings?.Owner(AttrLevel.Resource, rs.Resource.Attributes);
            foreach (var ss in rs.ScopeSpans)
            {
                c.Dict(Col.ScopeName, ss.Scope.Name);
                c.Dict(Col.ScopeVersion, ss.Scope.Version);
                c.Dict(Col.ScopeSchemaUrl, ss.SchemaUrl);
                c.Varint(Col.ScopeDroppedAttrs, ss.Scope.DroppedAttributesCount);
                c.Varint(Col.ScopeSpanCount, (ulong)ss.Spans.Count);
                c.Attributes(AttrLevel.Scope, ss.Scope.Attributes);
                _postings?.Owner(AttrLevel.Scope, ss.Scope.Attributes);
                foreach (var s in ss.Spans)
                {
                    ShredSpan(s, start);
                }
            }
        }
    }

    private void ShredSpan(Span s, ulong traceStart)
    {
        var c = _cols;
        c.Fixed8(Col.SpanId, s.SpanId.Value);
        c.Fixed8(Col.SpanParentId, s.ParentSpanId.Value);
        c.Dict(Col.SpanName, s.Name);
        c.Byte(Col.SpanKind, (byte)s.Kind);
        c.Zigzag(Col.SpanStartDelta, unchecked((long)(s.StartTimeUnixNano - traceStart)));
        ulong dur = unchecked(s.EndTimeUnixNano - s.StartTimeUnixNano);
        c.Zigzag(Col.SpanDuration, unchecked((long)dur));
        _rgMinDur = Math.Min(_rgMinDur, s.DurationNanos);
        _rgMaxDur = Math.Max(_rgMaxDur, s.DurationNanos);
        c.Byte(Col.SpanStatusCode, (byte)s.StatusCode);
        c.Dict(Col.SpanStatusMessage, s.StatusMessage);
        c.Dict(Col.SpanTraceState, s.TraceState);
        c.Varint(Col.SpanFlags, s.Flags);
        c.Varint(Col.SpanDroppedAttrs, s.DroppedAttributesCount);
        c.Varint(Col.SpanDroppedEvents, s.DroppedEventsCount);
        c.Varint(Col.SpanDroppedLinks, s.DroppedLinksCount);
        c.Varint(Col.SpanEventCount, (ulong)s.Events.Count);
        c.Varint(Col.SpanLinkCount, (ulong)s.Links.Count);
        c.Attributes(AttrLevel.Span, s.Attributes);
        _postings?.Owner(AttrLevel.Span, s.Attributes);
        foreach (var e in s.Events)
        {
            c.Zigzag(Col.EventTimeDelta, unchecked((long)(e.TimeUnixNano - s.StartTimeUnixNano)));
            c.Dict(Col.EventName, e.Name);
            c.Varint(Col.EventDroppedAttrs, e.DroppedAttributesCount);
            c.Attributes(AttrLevel.Event, e.Attributes);
        }

        foreach (var l in s.Links)
        {
            c.Fixed16(Col.LinkTraceId, l.TraceId);
            c.Fixed8(Col.LinkSpanId, l.SpanId.Value);
            c.Dict(Col.LinkTraceState, l.TraceState);
            c.Varint(Col.LinkFlags, l.Flags);
            c.Varint(Col.LinkDroppedAttrs, l.DroppedAttributesCount);
            c.Attributes(AttrLevel.Link, l.Attributes);
        }
    }

    private readonly record struct IndexEntry(TraceId MinId, TraceId MaxId, long Offset, int Length, int Traces);
}

/// <summary>The raw (uncompressed) column buffers of the row group being built, with per-column dictionaries.</summary>
internal sealed class ColumnBuffers
{
    private readonly ByteWriter[] _cols = new ByteWriter[Col.Count];
    private readonly Dictionary<string, int>?[] _dicts = new Dictionary<string, int>?[Col.Count];
    private readonly List<string>?[] _dictValues = new List<string>?[Col.Count];
    private readonly long[] _dictBytes = new long[Col.Count];
    private readonly int[] _rows = new int[Col.Count];
    private readonly ByteWriter _scratch = new(1024);
    private readonly ByteWriter _serialized = new(4096);

    public ColumnBuffers()
    {
        for (int i = 0; i < Col.Count; i++)
        {
            _cols[i] = new ByteWriter(256);
            if (Col.Kind(i) == ColumnKind.Dict)
            {
                _dicts[i] = new Dictionary<string, int>(StringComparer.Ordinal);
                _dictValues[i] = [];
            }
        }
    }

    /// <summary>Uncompressed bytes buffered (values plus dictionaries): the row-group cut criterion.</summary>
    public long RawSize
    {
        get
        {
            long n = 0;
            for (int i = 0; i < Col.Count; i++)
            {
                n += _cols[i].Length + _dictBytes[i];
            }

            return n;
        }
    }

    public void Clear()
    {
        for (int i = 0; i < Col.Count; i++)
        {
            _cols[i].Clear();
            _dicts[i]?.Clear();
            _dictValues[i]?.Clear();
            _dictBytes[i] = 0;
            _rows[i] = 0;
        }
    }

    public void Varint(int col, ulong v)
    {
        _cols[col].WriteVarint(v);
        _rows[col]++;
    }

    public void Zigzag(int col, long v)
    {
        _cols[col].WriteZigzag(v);
        _rows[col]++;
    }

    public void Byte(int col, byte v)
    {
        _cols[col].WriteByte(v);
        _rows[col]++;
    }

    public void Fixed8(int col, ulong bigEndianValue) => BinaryPrimitives.WriteUInt64BigEndian(Reserve(col, 8), bigEndianValue);

    public void Fixed16(int col, TraceId id) => id.WriteTo(Reserve(col, 16));

    public void Dict(int col, string value)
    {
        var d = _dicts[col]!;
        if (!d.TryGetValue(value, out int idx))
        {
            idx = d.Count;
            d.Add(value, idx);
            _dictValues[col]!.Add(value);
            _dictBytes[col] += value.Length + 2;
        }

        _cols[col].WriteVarint((ulong)idx);
        _rows[col]++;
    }

    public void Attributes(AttrLevel level, List<KeyValue> attrs)
    {
        Varint(Col.Attr(level, Col.AttrCount), (ulong)attrs.Count);
        foreach (var kv in attrs)
        {
            Dict(Col.Attr(level, Col.AttrKey), kv.Key);
            var v = kv.Value;
            Byte(Col.Attr(level, Col.AttrType), (byte)v.Kind);
            switch (v.Kind)
            {
                case AnyValueKind.String:
                    Dict(Col.Attr(level, Col.AttrString), v.StringValue!);
                    break;
                case AnyValueKind.Bool:
                case AnyValueKind.Int:
                    Zigzag(Col.Attr(level, Col.AttrInt), v.IntValue);
                    break;
                case AnyValueKind.Double:
                    _cols[Col.Attr(level, Col.AttrDouble)].WriteF64(v.DoubleValue);
                    _rows[Col.Attr(level, Col.AttrDouble)]++;
                    break;
                case AnyValueKind.Bytes:
                    _cols[Col.Attr(level, Col.AttrBlob)].WriteBytesWithLength(v.BytesValue!);
                    _rows[Col.Attr(level, Col.AttrBlob)]++;
                    break;
                case AnyValueKind.Array:
                case AnyValueKind.KvList:
                    _scratch.Clear();
                    AnyValueCodec.Write(_scratch, v);
                    _cols[Col.Attr(level, Col.AttrBlob)].WriteBytesWithLength(_scratch.WrittenSpan);
                    _rows[Col.Attr(level, Col.AttrBlob)]++;
                    break;
                default:
                    break; // Empty: the type byte is the whole value.
            }
        }
    }

    /// <summary>Values (rows) buffered in a column.</summary>
    public int Rows(int col) => _rows[col];

    /// <summary>The value bytes of a column (for dictionary columns the ids; the dictionary is <see cref="Dictionary"/>).</summary>
    public ReadOnlySpan<byte> Values(int col) => _cols[col].WrittenSpan;

    /// <summary>The dictionary page of a dictionary column (varint n, n × (varint length, UTF-8)); empty for other kinds.</summary>
    public ReadOnlySpan<byte> Dictionary(int col)
    {
        if (_dictValues[col] is not { } values)
        {
            return [];
        }

        _serialized.Clear();
        _serialized.WriteVarint((ulong)values.Count);
        foreach (var s in values)
        {
            _serialized.WriteString(s);
        }

        return _serialized.WrittenSpan;
    }

    /// <summary>
    /// A zig-zag delta column re-encoded so that every page of <paramref name="rowsPerPage"/> rows starts from 0 (its
    /// first value is absolute): a page then decodes without the pages before it. Used for <c>trace.start</c>.
    /// </summary>
    public ReadOnlySpan<byte> RebaseDeltasPerPage(int col, int rows, int rowsPerPage)
    {
        var r = new ByteReader(_cols[col].WrittenSpan, "builder", 0, Col.Name(col));
        _scratch.Clear();
        long acc = 0, prev = 0;
        for (int i = 0; i < rows; i++)
        {
            acc = unchecked(acc + r.ReadZigzag());
            _scratch.WriteZigzag(i % rowsPerPage == 0 ? acc : unchecked(acc - prev));
            prev = acc;
        }

        return _scratch.WrittenSpan;
    }

    private Span<byte> Reserve(int col, int n)
    {
        _rows[col]++;
        var s = _cols[col].GetSpan(n)[..n];
        _cols[col].Advance(n);
        return s;
    }
}

/// <summary>
/// Self-describing binary form of an AnyValue, used for array and kvlist attribute values (blob column):
/// kind u8, then string: varint len + UTF-8 | bool: u8 | int: zig-zag varint | double: 8 bytes LE | bytes: varint len + bytes |
/// array: varint n + n values | kvlist: varint n + n × (varint len + UTF-8 key, value).
/// </summary>
public static class AnyValueCodec
{
    public const int MaxDepth = 64;

    public static void Write(ByteWriter w, AnyValue v)
    {
        w.WriteByte((byte)v.Kind);
        switch (v.Kind)
        {
            case AnyValueKind.String: w.WriteString(v.StringValue!); break;
            case AnyValueKind.Bool: w.WriteByte(v.BoolValue ? (byte)1 : (byte)0); break;
            case AnyValueKind.Int: w.WriteZigzag(v.IntValue); break;
            case AnyValueKind.Double: w.WriteF64(v.DoubleValue); break;
            case AnyValueKind.Bytes: w.WriteBytesWithLength(v.BytesValue!); break;
            case AnyValueKind.Array:
                w.WriteVarint((ulong)v.ArrayValue!.Count);
                foreach (var e in v.ArrayValue)
                {
                    Write(w, e);
                }

                break;
            case AnyValueKind.KvList:
                w.WriteVarint((ulong)v.KvListValue!.Count);
                foreach (var kv in v.KvListValue)
                {
                    w.WriteString(kv.Key);
                    Write(w, kv.Value);
                }

                break;
            default:
                break;
        }
    }

    public static AnyValue Read(ref ByteReader r, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw r.Corrupt($"attribute value nested deeper than {MaxDepth}");
        }

        var kind = (AnyValueKind)r.ReadByte();
        switch (kind)
        {
            case AnyValueKind.Empty: return AnyValue.EmptyValue;
            case AnyValueKind.String: return AnyValue.String(r.ReadString());
            case AnyValueKind.Bool: return AnyValue.Bool(r.ReadByte() != 0);
            case AnyValueKind.Int: return AnyValue.Int(r.ReadZigzag());
            case AnyValueKind.Double: return AnyValue.Double(r.ReadF64());
            case AnyValueKind.Bytes: return AnyValue.Bytes(r.ReadBytesWithLength().ToArray());
            case AnyValueKind.Array:
                {
                    int n = r.ReadCount(r.Remaining);
                    var items = new AnyValue[n];
                    for (int i = 0; i < n; i++)
                    {
                        items[i] = Read(ref r, depth + 1);
                    }

                    return AnyValue.Array(items);
                }

            case AnyValueKind.KvList:
                {
                    int n = r.ReadCount(r.Remaining);
                    var items = new KeyValue[n];
                    for (int i = 0; i < n; i++)
                    {
                        string key = r.ReadString();
                        items[i] = new KeyValue(key, Read(ref r, depth + 1));
                    }

                    return AnyValue.KvList(items);
                }

            default:
                throw r.Corrupt($"unknown attribute value kind {(byte)kind}");
        }
    }
}
