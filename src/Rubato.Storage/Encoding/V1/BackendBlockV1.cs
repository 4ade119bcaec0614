using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Encoding.V1;

/// <summary>One row group's entry in the <c>index</c> object.</summary>
public readonly record struct RowGroupIndexEntry(TraceId MinId, TraceId MaxId, long Offset, int Length, int Traces);

/// <summary>One row group's entry in the data object's footer: what a TraceQL scan prunes on.</summary>
public sealed record RowGroupStats(
    long Offset,
    int Length,
    int Traces,
    int Spans,
    TraceId MinId,
    TraceId MaxId,
    ulong MinStartUnixNano,
    ulong MaxEndUnixNano,
    ulong MinSpanDurationNanos,
    ulong MaxSpanDurationNanos,
    IReadOnlyList<(int Offset, int Length)> Columns);

/// <summary>
/// Reader of a <c>vRubato1</c> block. A by-ID lookup reads: one bloom shard (cached), the index (cached), then the one
/// row group whose id range holds the id, with a single range read. Thread-safe: caches are concurrent and immutable.
/// </summary>
public sealed class BackendBlockV1 : IBackendBlock
{
    private readonly IObjectStore _store;
    private readonly ConcurrentDictionary<int, BloomFilter> _blooms = new();
    private readonly SemaphoreSlim _indexLock = new(1, 1);
    private volatile IndexData? _index;
    private volatile IReadOnlyList<RowGroupStats>? _footer;

    public BackendBlockV1(BlockMeta meta, IObjectStore store)
    {
        ArgumentNullException.ThrowIfNull(meta);
        ArgumentNullException.ThrowIfNull(store);
        if (meta.Version != FormatV1.Version)
        {
            throw new ArgumentException($"block {meta.BlockId} has format '{meta.Version}', not '{FormatV1.Version}'", nameof(meta));
        }

        Meta = meta;
        _store = store;
    }

    public BlockMeta Meta { get; }

    private string DataKey => ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, FormatV1.DataName);

    public async ValueTask<Trace?> FindTraceByIdAsync(TraceId id, CancellationToken ct)
    {
        if (!Meta.MinId.IsEmpty || !Meta.MaxId.IsEmpty)
        {
            if (id < Meta.MinId || id > Meta.MaxId)
            {
                return null;
            }
        }

        if (Meta.BloomShards > 0 && !(await GetBloomAsync(BloomFilter.ShardOf(id, (int)Meta.BloomShards), ct).ConfigureAwait(false)).MayContain(id))
        {
            return null;
        }

        var index = await GetIndexAsync(ct).ConfigureAwait(false);
        int rg = index.Find(id);
        if (rg < 0)
        {
            return null;
        }

        var rowGroup = await ReadRowGroupAsync(index.Entries[rg], ct).ConfigureAwait(false);
        int t = rowGroup.FindTrace(id);
        return t < 0 ? null : rowGroup.BuildTrace(t);
    }

    public async IAsyncEnumerable<(TraceId Id, Trace Trace)> IterateAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var index = await GetIndexAsync(ct).ConfigureAwait(false);
        foreach (var e in index.Entries)
        {
            var rowGroup = await ReadRowGroupAsync(e, ct).ConfigureAwait(false);
            for (int t = 0; t < rowGroup.TraceCount; t++)
            {
                yield return (rowGroup.TraceIdAt(t), rowGroup.BuildTrace(t));
            }
        }
    }

    /// <summary>The row group directory (index object), cached after the first call.</summary>
    public async ValueTask<IReadOnlyList<RowGroupIndexEntry>> GetRowGroupsAsync(CancellationToken ct) => (await GetIndexAsync(ct).ConfigureAwait(false)).Entries;

    /// <summary>
    /// Reads one row group (by its position in the index) for decoding: the entry point for scans that want the
    /// assembled traces of a row group after pruning on <see cref="ReadFooterAsync"/>'s statistics.
    /// </summary>
    public async ValueTask<RowGroupReader> OpenRowGroupAsync(int rowGroup, CancellationToken ct)
    {
        var index = await GetIndexAsync(ct).ConfigureAwait(false);
        ArgumentOutOfRangeException.ThrowIfNegative(rowGroup);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rowGroup, index.Entries.Length);
        return await ReadRowGroupAsync(index.Entries[rowGroup], ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The footer (<see cref="ReadFooterAsync"/>), read once per open block and cached: scans call this per query.
    /// </summary>
    public async ValueTask<IReadOnlyList<RowGroupStats>> GetFooterAsync(CancellationToken ct)
    {
        if (_footer is { } f)
        {
            return f;
        }

        f = await ReadFooterAsync(ct).ConfigureAwait(false);
        _footer = f;
        return f;
    }

    /// <summary>
    /// Reads only the listed column chunks of one row group (extents from the footer's column directory). Chunks whose
    /// extents are within <see cref="ColumnCoalesceGapBytes"/> of each other are fetched with one range request.
    /// Columns already present in <paramref name="into"/> are not read again. Each chunk is CRC-checked and inflated.
    /// </summary>
    /// <param name="rowGroup">A row group of <see cref="GetFooterAsync"/>.</param>
    /// <param name="columns">Column numbers (<see cref="Col"/>); duplicates are ignored.</param>
    /// <param name="into">Adds to this instance when given, else starts a new one.</param>
    public async ValueTask<RowGroupColumns> ReadColumnsAsync(RowGroupStats rowGroup, IEnumerable<int> columns, RowGroupColumns? into, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rowGroup);
        ArgumentNullException.ThrowIfNull(columns);
        var result = into ?? new RowGroupColumns(rowGroup);
        if (!ReferenceEquals(result.RowGroup, rowGroup))
        {
            throw new ArgumentException("the columns being added to belong to another row group", nameof(into));
        }

        var wanted = new List<int>();
        foreach (int c in columns)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(c);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(c, Col.Count);
            if (!result.Has(c) && !wanted.Contains(c))
            {
                wanted.Add(c);
            }
        }

        if (wanted.Count == 0)
        {
            return result;
        }

        var dir = rowGroup.Columns;
        wanted.Sort((a, b) => dir[a].Offset.CompareTo(dir[b].Offset));
        int i = 0;
        while (i < wanted.Count)
        {
            // One range request covers the run of chunks whose gaps are small.
            int j = i;
            long start = dir[wanted[i]].Offset;
            long end = start + dir[wanted[i]].Length;
            while (j + 1 < wanted.Count && dir[wanted[j + 1]].Offset - end <= ColumnCoalesceGapBytes)
            {
                j++;
                end = Math.Max(end, (long)dir[wanted[j]].Offset + dir[wanted[j]].Length);
            }

            if (start < 0 || end > rowGroup.Length)
            {
                throw new BlockCorruptException(DataKey, rowGroup.Offset + start, $"column extent [{start}, {end}) is outside the {rowGroup.Length}-byte row group");
            }

            // The stored bytes only live until their chunks are inflated into fresh arrays, so the buffer is pooled.
            int size = (int)(end - start);
            byte[] buf = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
            try
            {
                int n = await _store.ReadRangeAsync(DataKey, rowGroup.Offset + start, buf.AsMemory(0, size), ct).ConfigureAwait(false);
                if (n != size)
                {
                    throw new BlockCorruptException(DataKey, rowGroup.Offset + start, $"column range of {size} bytes is truncated to {n}");
                }

                result.BytesRead += n;
                result.Reads++;
                for (int k = i; k <= j; k++)
                {
                    int c = wanted[k];
                    var (off, len) = dir[c];
                    result.Set(c, FormatV1.ReadChunk(buf.AsSpan((int)(off - start), len), DataKey, rowGroup.Offset + off, Col.Name(c)));
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buf);
            }

            i = j + 1;
        }

        return result;
    }

    /// <summary>Largest gap between two wanted chunks that is read through rather than split into two requests.</summary>
    public const int ColumnCoalesceGapBytes = 512;

    /// <summary>Reads and validates the data object's footer: per-row-group statistics and column directory.</summary>
    public async Task<IReadOnlyList<RowGroupStats>> ReadFooterAsync(CancellationToken ct)
    {
        var index = await GetIndexAsync(ct).ConfigureAwait(false);
        var buf = new byte[Meta.FooterSize];
        int n = await _store.ReadRangeAsync(DataKey, index.FooterOffset, buf, ct).ConfigureAwait(false);
        if (n != buf.Length || buf.Length < FormatV1.DataTailSize + 8)
        {
            throw new BlockCorruptException(DataKey, index.FooterOffset, $"footer of {Meta.FooterSize} bytes expected, read {n}");
        }

        var tail = buf.AsSpan(buf.Length - FormatV1.DataTailSize);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(tail[8..]) != FormatV1.DataMagic)
        {
            throw new BlockCorruptException(DataKey, index.FooterOffset + buf.Length - 4, "bad trailer magic");
        }

        if (len != buf.Length - FormatV1.DataTailSize || Crc32C.Compute(buf.AsSpan(0, (int)len)) != crc)
        {
            throw new BlockCorruptException(DataKey, index.FooterOffset, "footer length or CRC-32C mismatch");
        }

        var r = new ByteReader(buf.AsSpan(0, (int)len), DataKey, index.FooterOffset, "footer");
        if (r.ReadU16() != FormatV1.FormatRevision)
        {
            throw r.Corrupt("unsupported revision");
        }

        int cols = r.ReadU16();
        int rgs = (int)r.ReadU32();
        var result = new List<RowGroupStats>(rgs);
        for (int i = 0; i < rgs; i++)
        {
            long off = (long)r.ReadU64();
            int length = (int)r.ReadU32();
            int traces = (int)r.ReadU32();
            int spans = (int)r.ReadU32();
            var minId = TraceId.FromBytes(r.ReadBytes(16));
            var maxId = TraceId.FromBytes(r.ReadBytes(16));
            ulong minStart = r.ReadU64(), maxEnd = r.ReadU64(), minDur = r.ReadU64(), maxDur = r.ReadU64();
            var dir = new (int, int)[cols];
            for (int c = 0; c < cols; c++)
            {
                dir[c] = ((int)r.ReadU32(), (int)r.ReadU32());
            }

            result.Add(new RowGroupStats(off, length, traces, spans, minId, maxId, minStart, maxEnd, minDur, maxDur, dir));
        }

        return result;
    }

    private async ValueTask<BloomFilter> GetBloomAsync(int shard, CancellationToken ct)
    {
        if (_blooms.TryGetValue(shard, out var b))
        {
            return b;
        }

        string key = ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, FormatV1.BloomName(shard));
        byte[] data = await _store.GetAsync(key, ct).ConfigureAwait(false) ?? throw new BlockCorruptException(key, 0, "bloom shard is missing");
        b = BloomFilter.Deserialize(data, key);
        return _blooms.GetOrAdd(shard, b);
    }

    private async ValueTask<IndexData> GetIndexAsync(CancellationToken ct)
    {
        if (_index is { } i)
        {
            return i;
        }

        await _indexLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_index is { } again)
            {
                return again;
            }

            string key = ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, FormatV1.IndexName);
            byte[] data = await _store.GetAsync(key, ct).ConfigureAwait(false) ?? throw new BlockCorruptException(key, 0, "index is missing");
            _index = IndexData.Parse(data, key);
            return _index;
        }
        finally
        {
            _indexLock.Release();
        }
    }

    private async ValueTask<RowGroupReader> ReadRowGroupAsync(RowGroupIndexEntry e, CancellationToken ct)
    {
        var buf = new byte[e.Length];
        int n = await _store.ReadRangeAsync(DataKey, e.Offset, buf, ct).ConfigureAwait(false);
        if (n != e.Length)
        {
            throw new BlockCorruptException(DataKey, e.Offset, $"row group of {e.Length} bytes is truncated to {n}");
        }

        return new RowGroupReader(buf, DataKey, e.Offset, e.Traces);
    }

    private sealed class IndexData
    {
        private IndexData(RowGroupIndexEntry[] entries, long footerOffset)
        {
            Entries = entries;
            FooterOffset = footerOffset;
        }

        public RowGroupIndexEntry[] Entries { get; }

        public long FooterOffset { get; }

        public static IndexData Parse(byte[] data, string key)
        {
            if (data.Length < FormatV1.IndexHeaderSize + 4)
            {
                throw new BlockCorruptException(key, 0, $"index of {data.Length} bytes is shorter than its header");
            }

            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(data.Length - 4));
            if (Crc32C.Compute(data.AsSpan(0, data.Length - 4)) != crc)
            {
                throw new BlockCorruptException(key, data.Length - 4, "index CRC-32C mismatch");
            }

            var r = new ByteReader(data.AsSpan(0, data.Length - 4), key, 0, "index");
            if (r.ReadU32() != FormatV1.IndexMagic)
            {
                throw new BlockCorruptException(key, 0, "bad index magic");
            }

            if (r.ReadU16() != FormatV1.FormatRevision)
            {
                throw new BlockCorruptException(key, 4, "unsupported index revision");
            }

            r.ReadU16();
            int count = (int)r.ReadU32();
            long footerOffset = (long)r.ReadU64();
            if ((long)count * FormatV1.IndexEntrySize != r.Remaining)
            {
                throw r.Corrupt($"{count} entries do not fill {r.Remaining} bytes");
            }

            var entries = new RowGroupIndexEntry[count];
            for (int i = 0; i < count; i++)
            {
                var min = TraceId.FromBytes(r.ReadBytes(16));
                var max = TraceId.FromBytes(r.ReadBytes(16));
                long off = (long)r.ReadU64();
                int len = (int)r.ReadU32();
                int traces = (int)r.ReadU32();
                if (max < min || (i > 0 && min <= entries[i - 1].MaxId) || len <= 0 || traces <= 0)
                {
                    throw r.Corrupt($"entry {i} is out of order or empty");
                }

                entries[i] = new RowGroupIndexEntry(min, max, off, len, traces);
            }

            return new IndexData(entries, footerOffset);
        }

        /// <summary>Binary search for the row group whose [min, max] holds the id; -1 when none does.</summary>
        public int Find(TraceId id)
        {
            int lo = 0, hi = Entries.Length - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                var e = Entries[mid];
                if (id < e.MinId)
                {
                    hi = mid - 1;
                }
                else if (id > e.MaxId)
                {
                    lo = mid + 1;
                }
                else
                {
                    return mid;
                }
            }

            return -1;
        }
    }
}
