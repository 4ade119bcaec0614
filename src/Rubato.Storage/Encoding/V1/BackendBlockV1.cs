using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Rubato.Cache;
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
    IReadOnlyList<(int Offset, int Length)> Columns,
    IReadOnlyList<ChunkShape> Shapes);

/// <summary>
/// Shared caches a <see cref="BackendBlockV1"/> consults before the object store (any may be null: that part is not
/// cached). Values are keyed by tenant and block id and blocks never change once written, so entries need no
/// invalidation. Keys: <c>&lt;tenant&gt;/&lt;block&gt;/bloom-N</c> (<see cref="CacheRole.Bloom"/>),
/// <c>&lt;tenant&gt;/&lt;block&gt;/index</c> (<see cref="CacheRole.TraceIdIndex"/>),
/// <c>&lt;tenant&gt;/&lt;block&gt;/footer</c> (<see cref="CacheRole.ParquetFooter"/>) and
/// <c>&lt;tenant&gt;/&lt;block&gt;/page-index-&lt;offset&gt;-&lt;length&gt;</c> (<see cref="CacheRole.ParquetOffsetIdx"/>: one page
/// index extent — a chunk's header, a run of page entries or its min/max section — by its extent in the data object,
/// followed by a CRC-32C of those bytes; a chunk's page index holds both Tempo's offset index (page extents) and column
/// index (page min/max), so <see cref="CacheRole.ParquetColumnIdx"/> is served by the same entries), and
/// <c>&lt;tenant&gt;/&lt;block&gt;/page-&lt;offset&gt;-&lt;length&gt;</c> (<see cref="CacheRole.ParquetPage"/>: one stored data or
/// dictionary page of at most <see cref="BackendBlockV1.MaxCachedPageBytes"/>, by its extent in the data object).
/// </summary>
public sealed record BlockCaches(ICache? Bloom, ICache? TraceIdIndex, ICache? Footer, ICache? PageIndex = null, ICache? Page = null)
{
    /// <summary>
    /// The role caches of <paramref name="provider"/>; null when none of the roles is configured. The page index cache
    /// is the <c>parquet-offset-idx</c> cache, else the <c>parquet-column-idx</c> one.
    /// </summary>
    public static BlockCaches? From(CacheProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        var c = new BlockCaches(
            provider.For(CacheRole.Bloom),
            provider.For(CacheRole.TraceIdIndex),
            provider.For(CacheRole.ParquetFooter),
            provider.For(CacheRole.ParquetOffsetIdx) ?? provider.For(CacheRole.ParquetColumnIdx),
            provider.For(CacheRole.ParquetPage));
        return c.Bloom is null && c.TraceIdIndex is null && c.Footer is null && c.PageIndex is null && c.Page is null ? null : c;
    }
}

/// <summary>
/// Reader of a <c>vRubato1</c> block. A by-ID lookup reads: one bloom shard (cached), the index (cached), then the one
/// row group whose id range holds the id, with a single range read. Thread-safe: caches are concurrent and immutable.
/// </summary>
public sealed class BackendBlockV1 : IBackendBlock
{
    private readonly IObjectStore _store;
    private readonly BlockCaches? _caches;
    private readonly ConcurrentDictionary<int, BloomFilter> _blooms = new();
    private readonly SemaphoreSlim _indexLock = new(1, 1);
    private volatile IndexData? _index;
    private volatile IReadOnlyList<RowGroupStats>? _footer;
    private volatile PostingsTable? _postingsTable;

    /// <param name="caches">
    /// Optional shared caches for the bloom shards, the index and the footer. A cache that fails or times out reads as
    /// a miss; a value the cache returns that does not parse is ignored and the object store is read instead.
    /// </param>
    public BackendBlockV1(BlockMeta meta, IObjectStore store, BlockCaches? caches = null)
    {
        ArgumentNullException.ThrowIfNull(meta);
        ArgumentNullException.ThrowIfNull(store);
        if (meta.Version != FormatV1.Version)
        {
            throw new ArgumentException($"block {meta.BlockId} has format '{meta.Version}', not '{FormatV1.Version}'", nameof(meta));
        }

        Meta = meta;
        _store = store;
        _caches = caches;
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

    /// <summary>Whether the block has a <c>postings</c> object (meta <c>postingsSize</c> &gt; 0; blocks built before it existed have none).</summary>
    public bool HasPostings => Meta.PostingsSize > 0;

    private string PostingsKey => ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, Postings.ObjectName);

    /// <summary>
    /// The postings object's header and row-group table (one range read of 16 + 20 bytes per row group), read once per
    /// open block and cached like the footer. When this call reads it, the bytes and the request are added to
    /// <paramref name="stats"/>.
    /// </summary>
    public async ValueTask<PostingsTable> GetPostingsTableAsync(PostingsReadStats? stats, CancellationToken ct)
    {
        if (_postingsTable is { } t)
        {
            return t;
        }

        if (!HasPostings)
        {
            throw new InvalidOperationException($"block {Meta.BlockId} has no postings object");
        }

        int rowGroups = (await GetFooterAsync(ct).ConfigureAwait(false)).Count;
        int size = Postings.TableSize(rowGroups);
        if ((ulong)size > Meta.PostingsSize)
        {
            throw new BlockCorruptException(PostingsKey, 0, $"postings table of {rowGroups} row groups needs {size} bytes, meta says the object has {Meta.PostingsSize}");
        }

        var buf = new byte[size];
        int n = await _store.ReadRangeAsync(PostingsKey, 0, buf, ct).ConfigureAwait(false);
        if (stats is not null)
        {
            stats.Bytes += n;
            stats.Reads++;
        }

        if (n != size)
        {
            throw new BlockCorruptException(PostingsKey, 0, $"postings table of {size} bytes is truncated to {n}");
        }

        t = Postings.ParseTable(buf, rowGroups, (long)Meta.PostingsSize, PostingsKey);
        _postingsTable = t;
        return t;
    }

    /// <summary>Reads and validates the postings directory of one row group (by its position in the footer); one range read.</summary>
    public async ValueTask<PostingsDirectory> ReadPostingsDirectoryAsync(int rowGroup, PostingsReadStats? stats, CancellationToken ct)
    {
        var table = await GetPostingsTableAsync(stats, ct).ConfigureAwait(false);
        ArgumentOutOfRangeException.ThrowIfNegative(rowGroup);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rowGroup, table.Regions.Count);
        var region = table.Regions[rowGroup];
        byte[] buf = System.Buffers.ArrayPool<byte>.Shared.Rent(region.DirectoryLength);
        try
        {
            int n = await _store.ReadRangeAsync(PostingsKey, region.Offset, buf.AsMemory(0, region.DirectoryLength), ct).ConfigureAwait(false);
            if (stats is not null)
            {
                stats.Bytes += n;
                stats.Reads++;
            }

            if (n != region.DirectoryLength)
            {
                throw new BlockCorruptException(PostingsKey, region.Offset, $"postings directory of row group {rowGroup}: {region.DirectoryLength} bytes truncated to {n}");
            }

            return Postings.ParseDirectory(buf.AsSpan(0, n), region, rowGroup, PostingsKey);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>
    /// Reads and decodes postings (of one directory; each with its level's row count and a name for errors), coalescing
    /// extents within the store's <see cref="IObjectStore.ReadCoalesceGapBytes"/> of each other into one range request.
    /// Returns the ascending owner rows of each, in the order given.
    /// </summary>
    public async ValueTask<int[][]> ReadPostingsAsync(IReadOnlyList<(PostingsValue Value, int Owners, string What)> postings, PostingsReadStats? stats, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(postings);
        var result = new int[postings.Count][];
        var order = Enumerable.Range(0, postings.Count).Where(i => postings[i].Value.HasPosting).OrderBy(i => postings[i].Value.Offset).ToList();
        var codec = (await GetPostingsTableAsync(stats, ct).ConfigureAwait(false)).Codec;
        int k = 0;
        while (k < order.Count)
        {
            int j = k;
            long start = postings[order[k]].Value.Offset;
            long end = start + postings[order[k]].Value.Stored;
            while (j + 1 < order.Count && postings[order[j + 1]].Value.Offset - end <= _store.ReadCoalesceGapBytes)
            {
                j++;
                end = Math.Max(end, postings[order[j]].Value.Offset + postings[order[j]].Value.Stored);
            }

            if (start < 0 || (ulong)end > Meta.PostingsSize)
            {
                throw new BlockCorruptException(PostingsKey, start, $"posting extent [{start}, {end}) is outside the {Meta.PostingsSize}-byte object");
            }

            int size = (int)(end - start);
            byte[] buf = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
            try
            {
                int n = await _store.ReadRangeAsync(PostingsKey, start, buf.AsMemory(0, size), ct).ConfigureAwait(false);
                if (stats is not null)
                {
                    stats.Bytes += n;
                    stats.Reads++;
                }

                if (n != size)
                {
                    throw new BlockCorruptException(PostingsKey, start, $"postings range of {size} bytes is truncated to {n}");
                }

                for (int x = k; x <= j; x++)
                {
                    var (value, owners, what) = postings[order[x]];
                    result[order[x]] = Postings.Decode(buf.AsSpan((int)(value.Offset - start), value.Stored), value, owners, codec, PostingsKey, what);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buf);
            }

            k = j + 1;
        }

        for (int i = 0; i < result.Length; i++)
        {
            result[i] ??= [];
        }

        return result;
    }

    /// <summary>
    /// Reads only the listed column chunks of one row group, whole (extents from the footer's column directory). Chunks
    /// whose extents are within the store's <see cref="IObjectStore.ReadCoalesceGapBytes"/> of each other are fetched with one range request.
    /// Columns already whole in <paramref name="into"/> are not read again (a sparse column is replaced by its whole
    /// form). Every page is CRC-checked and inflated.
    /// </summary>
    /// <param name="rowGroup">A row group of <see cref="GetFooterAsync"/>.</param>
    /// <param name="columns">Column numbers (<see cref="Col"/>); duplicates are ignored.</param>
    /// <param name="into">Adds to this instance when given, else starts a new one.</param>
    public async ValueTask<RowGroupColumns> ReadColumnsAsync(RowGroupStats rowGroup, IEnumerable<int> columns, RowGroupColumns? into, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rowGroup);
        ArgumentNullException.ThrowIfNull(columns);
        var result = Target(rowGroup, into);
        var extents = new List<Extent>();
        foreach (int c in columns)
        {
            CheckColumn(c);
            if (!result.Has(c) && !extents.Exists(e => e.Column == c))
            {
                extents.Add(new Extent(rowGroup.Columns[c].Offset, rowGroup.Columns[c].Length, c, 0, ExtentKind.Chunk));
            }
        }

        await ReadExtentsAsync(rowGroup, extents, result, (in Extent e, ReadOnlySpan<byte> bytes, long at) =>
        {
            var raw = ColumnPages.ReadWhole(bytes, e.Column, rowGroup.Shapes[e.Column], DataKey, at, out var index);
            result.Set(e.Column, raw, index);
        }, ct).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Reads the whole page indexes (header, every page entry, min/max stats; extents from the footer's chunk shapes)
    /// of the listed columns, as far as <paramref name="into"/> does not have them yet. One coalesced range per column.
    /// Sparse scans need not call this: <see cref="ReadPagesAsync"/> reads just the entries of the pages it reads, and
    /// <see cref="ReadPageStatsAsync"/> just the header and stats.
    /// </summary>
    public ValueTask ReadPageIndexesAsync(RowGroupStats rowGroup, IEnumerable<int> columns, RowGroupColumns into, CancellationToken ct) =>
        ReadIndexWithStatsAsync(rowGroup, columns, into, allEntries: true, ct);

    /// <summary>
    /// Reads the header and the min/max stats section of the listed columns (those without stats get just the
    /// header), so a range filter can pick pages by <see cref="ColumnPageIndex.Stats"/> without the entries.
    /// </summary>
    public ValueTask ReadPageStatsAsync(RowGroupStats rowGroup, IEnumerable<int> columns, RowGroupColumns into, CancellationToken ct) =>
        ReadIndexWithStatsAsync(rowGroup, columns, into, allEntries: false, ct);

    /// <summary>Header and stats of each listed column, plus every page entry when <paramref name="allEntries"/>; coalesced.</summary>
    private async ValueTask ReadIndexWithStatsAsync(RowGroupStats rowGroup, IEnumerable<int> columns, RowGroupColumns into, bool allEntries, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rowGroup);
        ArgumentNullException.ThrowIfNull(columns);
        var result = Target(rowGroup, into);
        var extents = new List<Extent>();
        foreach (int c in columns.Distinct())
        {
            CheckColumn(c);
            int pages = rowGroup.Shapes[c].PageCount;
            AddIndexExtents(rowGroup, c, result, extents, allEntries && pages > 0 ? [(0, pages)] : [], stats: true);
        }

        await ReadIndexExtentsAsync(rowGroup, extents, result, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds the extents of column <paramref name="c"/>'s page index that <paramref name="result"/> lacks: the header,
    /// the listed entry runs (first entry, count) not loaded yet, and the stats section when asked for.
    /// </summary>
    private static void AddIndexExtents(RowGroupStats rowGroup, int c, RowGroupColumns result, List<Extent> extents, IEnumerable<(int First, int Count)> entryRuns, bool stats)
    {
        var shape = rowGroup.Shapes[c];
        long chunk = rowGroup.Columns[c].Offset;
        var index = result.PageIndex(c);
        if (index is null && !extents.Exists(e => e.Column == c && e.Kind == ExtentKind.Header))
        {
            extents.Add(new Extent(chunk, ChunkShape.HeaderLength(c), c, 0, ExtentKind.Header));
        }

        foreach (var (first, count) in entryRuns)
        {
            bool missing = index is null;
            for (int p = first; !missing && p < first + count; p++)
            {
                missing = !index!.HasEntry(p);
            }

            if (missing)
            {
                extents.Add(new Extent(chunk + shape.EntryOffset(c, first), ColumnPages.EntrySize * count, c, first, ExtentKind.Entries));
            }
        }

        if (stats && shape.StatsLength > 0 && !(index?.StatsLoaded ?? false) && !extents.Exists(e => e.Column == c && e.Kind == ExtentKind.Stats))
        {
            extents.Add(new Extent(chunk + shape.StatsOffset(c), shape.StatsLength, c, 0, ExtentKind.Stats));
        }
    }

    /// <summary>
    /// The entry runs (first entry, count) that locate <paramref name="pages"/>: a page's extent is from the previous
    /// entry's stored end to its own, so page p needs entries p − 1 and p (page 0 starts after the dictionary page,
    /// whose length is in the header). Runs that touch are merged, so every entry is read once.
    /// </summary>
    private static List<(int First, int Count)> EntryRuns(ColumnPageIndex? index, IReadOnlyList<int> pages)
    {
        var sorted = pages.Where(p => index is null || !index.HasEntry(p)).Distinct().Order().ToList();
        var runs = new List<(int First, int Count)>();
        foreach (int p in sorted)
        {
            int first = Math.Max(0, p - 1);
            if (runs.Count > 0 && runs[^1].First + runs[^1].Count >= first)
            {
                runs[^1] = (runs[^1].First, p - runs[^1].First + 1);
            }
            else
            {
                runs.Add((first, p - first + 1));
            }
        }

        return runs;
    }

    /// <summary>
    /// Reads page index extents (headers, entry runs, stats) into <paramref name="result"/>'s page indexes, headers
    /// before the entries and stats of their column. With a page index cache (<see cref="BlockCaches.PageIndex"/>) the
    /// extents are looked up first in one multi-get, keyed by extent; only misses (and entries failing their checks) are
    /// read from the store, and those bytes are then stored in the background. Cached values carry a CRC-32C of their
    /// own (entry runs have none in the format). Cache hits are not counted in <see cref="RowGroupColumns.BytesRead"/>.
    /// </summary>
    private async ValueTask ReadIndexExtentsAsync(RowGroupStats rowGroup, List<Extent> extents, RowGroupColumns result, CancellationToken ct)
    {
        if (extents.Count == 0)
        {
            return;
        }

        ExtentConsumer consume = (in Extent e, ReadOnlySpan<byte> bytes, long at) =>
        {
            if (e.Kind == ExtentKind.Header)
            {
                result.SetIndex(e.Column, ColumnPages.ParseHeader(bytes, e.Column, rowGroup.Shapes[e.Column], rowGroup.Columns[e.Column].Length, DataKey, at));
                return;
            }

            var index = result.PageIndex(e.Column) ?? throw new InvalidOperationException($"the header of column {Col.Name(e.Column)} was not read");
            if (e.Kind == ExtentKind.Stats)
            {
                index.LoadStats(bytes, at);
            }
            else if (e.Page == 0 && e.Length == ColumnPages.EntrySize * index.PageCount)
            {
                index.LoadAllEntries(bytes, at); // every entry: checked against the header's entries CRC
            }
            else
            {
                index.LoadEntries(e.Page, bytes, at);
            }
        };

        var cache = _caches?.PageIndex;
        if (cache is not null)
        {
            await TakeFromCacheAsync(cache, rowGroup, extents, consume, IndexCacheKey, sealedValues: true, ct).ConfigureAwait(false);
        }

        await ReadExtentsAsync(rowGroup, extents, result, (in Extent e, ReadOnlySpan<byte> bytes, long at) =>
        {
            consume(e, bytes, at);
            if (cache is not null)
            {
                var value = new byte[bytes.Length + 4];
                bytes.CopyTo(value);
                BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(bytes.Length), Crc32C.Compute(bytes));
                CacheSetInBackground(cache, IndexCacheKey(at, e.Length), value);
            }
        }, ct, IndexCoalesceGap(_store.ReadCoalesceGapBytes)).ConfigureAwait(false);
    }

    /// <summary>
    /// The coalescing gap for page index extents: an eighth of the store's <paramref name="storeGap"/> (64 bytes on
    /// local disk, 128 KiB on object stores). Entry runs are 12–24 bytes spaced by the 12 bytes of every page between
    /// two wanted ones, so with the store's full gap a sparse read of a fine-paged column reads most of its entries
    /// (with it the bench's needle read 19% more bytes for 31% fewer requests and was 2–18% faster on local disk,
    /// docs/block-format.md §2: bytes are what issue 3 bounds); on an object store one column's entries still come in
    /// one request. Pages keep the store's gap.
    /// </summary>
    internal static int IndexCoalesceGap(int storeGap) => storeGap >= 0 ? storeGap / 8 : storeGap;

    /// <summary>
    /// The cache key of a page index extent (header, entry run or stats section): the extent's absolute offset and
    /// length in the data object, which fix its bytes for the block's lifetime.
    /// </summary>
    private string IndexCacheKey(long absoluteOffset, int length) =>
        ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, $"page-index-{absoluteOffset}-{length}");

    /// <summary>
    /// Reads only the listed pages, plus each dictionary column's dictionary page once, and decodes them into the
    /// columns' <see cref="SparseColumn"/>s. Two rounds: first the header of each column not seen yet and the entries
    /// of the wanted pages whose entries are not loaded (a few bytes per page; coalesced), then the pages. Extents less
    /// than the store's <see cref="IObjectStore.ReadCoalesceGapBytes"/> apart (of one column or of neighbouring
    /// columns) are fetched with one range request. Pages already read and columns already whole are skipped; blob
    /// columns cannot be read this way.
    /// </summary>
    public async ValueTask ReadPagesAsync(RowGroupStats rowGroup, IReadOnlyList<(int Column, IReadOnlyList<int> Pages)> pages, RowGroupColumns into, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rowGroup);
        ArgumentNullException.ThrowIfNull(pages);
        var result = Target(rowGroup, into);
        var indexExtents = new List<Extent>();
        foreach (var (c, list) in pages)
        {
            CheckColumn(c);
            if (result.Has(c) || list.Count == 0)
            {
                continue;
            }

            foreach (int p in list)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(p);
                ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(p, rowGroup.Shapes[c].PageCount);
            }

            AddIndexExtents(rowGroup, c, result, indexExtents, EntryRuns(result.PageIndex(c), list), stats: false);
        }

        await ReadIndexExtentsAsync(rowGroup, indexExtents, result, ct).ConfigureAwait(false);
        var extents = new List<Extent>();
        foreach (var (c, list) in pages)
        {
            if (result.Has(c) || list.Count == 0)
            {
                continue;
            }

            var index = result.PageIndex(c)!;
            var sparse = result.SparseFor(c, index);
            int chunk = rowGroup.Columns[c].Offset;
            if (index.Dictionary is { } d && sparse.Dictionary is null && !extents.Exists(e => e.Column == c && e.Kind == ExtentKind.Dictionary))
            {
                extents.Add(new Extent(chunk + d.Offset, d.Stored, c, -1, ExtentKind.Dictionary));
            }

            foreach (int p in list)
            {
                if (!sparse.Loaded[p])
                {
                    var page = index.Page(p);
                    sparse.Loaded[p] = true;
                    extents.Add(new Extent(chunk + page.Offset, page.Stored, c, p, ExtentKind.Page));
                }
            }
        }

        // Extents are consumed in offset order, so a dictionary page (first in its pages region) is decoded before the
        // ids; cached dictionary pages are consumed first of all, before any cached or stored data page.
        ExtentConsumer consume = (in Extent e, ReadOnlySpan<byte> bytes, long at) =>
        {
            var sparse = result.Sparse(e.Column)!;
            var index = sparse.Index;
            if (e.Kind == ExtentKind.Dictionary)
            {
                var d = index.Dictionary!.Value;
                var dict = new byte[d.Raw];
                ColumnPages.Inflate(bytes, d, index.Codec, dict, DataKey, at, e.Column);
                sparse.Dictionary = dict;
                return;
            }

            var page = index.Page(e.Page);
            byte[] raw = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(1, page.Raw));
            try
            {
                ColumnPages.Inflate(bytes, page, index.Codec, raw.AsSpan(0, page.Raw), DataKey, at, e.Column);
                SparsePages.Place(sparse, e.Page, raw.AsSpan(0, page.Raw), DataKey, at);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(raw);
            }
        };

        var cache = _caches?.Page;
        if (cache is not null && extents.Count > 0)
        {
            await TakeFromCacheAsync(cache, rowGroup, extents, consume, PageCacheKey, sealedValues: false, ct).ConfigureAwait(false);
        }

        await ReadExtentsAsync(rowGroup, extents, result, (in Extent e, ReadOnlySpan<byte> bytes, long at) =>
        {
            consume(e, bytes, at);
            if (cache is not null && e.Length <= MaxCachedPageBytes)
            {
                CacheSetInBackground(cache, PageCacheKey(at, e.Length), bytes.ToArray());
            }
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Largest stored page (or dictionary page) the <see cref="BlockCaches.Page"/> cache holds. Bigger pages are read
    /// from the store every time: they would crowd out many small ones, and one range GET amortises them well.
    /// </summary>
    public const int MaxCachedPageBytes = 64 * 1024;

    /// <summary>
    /// Consumes every extent of <paramref name="extents"/> (of at most <see cref="MaxCachedPageBytes"/>) that the cache
    /// holds, headers and dictionary pages first, and removes those extents. Page bytes pass the same CRC-32C check as
    /// store bytes before anything is decoded, and <paramref name="sealedValues"/> (index extents) carry a trailing
    /// CRC-32C checked here; a miss, a failing cache or a damaged entry leaves the extent to the store.
    /// </summary>
    private static async ValueTask TakeFromCacheAsync(ICache cache, RowGroupStats rowGroup, List<Extent> extents, ExtentConsumer consume, Func<long, int, string> key, bool sealedValues, CancellationToken ct)
    {
        var wanted = new List<int>();
        for (int k = 0; k < extents.Count; k++)
        {
            if (extents[k].Length <= MaxCachedPageBytes)
            {
                wanted.Add(k);
            }
        }

        if (wanted.Count == 0)
        {
            return;
        }

        var keys = new string[wanted.Count];
        for (int w = 0; w < keys.Length; w++)
        {
            keys[w] = key(rowGroup.Offset + extents[wanted[w]].Start, extents[wanted[w]].Length);
        }

        byte[]?[] hits;
        try
        {
            hits = await cache.GetManyAsync(keys, ct).ConfigureAwait(false);
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            return; // ICache promises not to throw; this guards the query against one that does anyway.
        }

        // Ids pages decode against their column's dictionary, and entries and stats load into their column's header,
        // so a column whose dictionary page or header is left to the store takes nothing else from the cache either
        // (those extents are then consumed after it, in offset order).
        var taken = new bool[extents.Count];
        var firstPending = new HashSet<int>();
        foreach (bool first in (ReadOnlySpan<bool>)[true, false])
        {
            if (!first)
            {
                for (int k = 0; k < extents.Count; k++)
                {
                    if (extents[k].Kind is ExtentKind.Dictionary or ExtentKind.Header && !taken[k])
                    {
                        firstPending.Add(extents[k].Column);
                    }
                }
            }

            for (int w = 0; w < wanted.Count && w < hits.Length; w++)
            {
                var e = extents[wanted[w]];
                bool isFirst = e.Kind is ExtentKind.Dictionary or ExtentKind.Header;
                if (isFirst != first || hits[w] is not { } bytes || firstPending.Contains(e.Column))
                {
                    continue;
                }

                ReadOnlySpan<byte> value = bytes;
                if (sealedValues)
                {
                    if (bytes.Length != e.Length + 4 || Crc32C.Compute(value[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(value[^4..]))
                    {
                        continue;
                    }

                    value = value[..^4];
                }
                else if (bytes.Length != e.Length)
                {
                    continue;
                }

                try
                {
                    consume(e, value, rowGroup.Offset + e.Start);
                    taken[wanted[w]] = true;
                }
                catch (BlockCorruptException)
                {
                    // A damaged entry (checks run before any decoding): the store's bytes replace it.
                }
            }
        }

        int kept = 0;
        for (int k = 0; k < extents.Count; k++)
        {
            if (!taken[k])
            {
                extents[kept++] = extents[k];
            }
        }

        extents.RemoveRange(kept, extents.Count - kept);
    }

    private string PageCacheKey(long absoluteOffset, int length) =>
        ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, $"page-{absoluteOffset}-{length}");

    private static RowGroupColumns Target(RowGroupStats rowGroup, RowGroupColumns? into)
    {
        var result = into ?? new RowGroupColumns(rowGroup);
        if (!ReferenceEquals(result.RowGroup, rowGroup))
        {
            throw new ArgumentException("the columns being added to belong to another row group", nameof(into));
        }

        return result;
    }

    private static void CheckColumn(int c)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(c);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(c, Col.Count);
    }

    /// <summary>What an extent holds.</summary>
    private enum ExtentKind : byte
    {
        /// <summary>A whole column chunk.</summary>
        Chunk,

        /// <summary>A data page (<see cref="Extent.Page"/>).</summary>
        Page,

        /// <summary>A dictionary page.</summary>
        Dictionary,

        /// <summary>A chunk's fixed header.</summary>
        Header,

        /// <summary>Page entries from <see cref="Extent.Page"/> on.</summary>
        Entries,

        /// <summary>A chunk's min/max section.</summary>
        Stats,
    }

    /// <summary>An extent relative to the row group start, and what it holds (column; page or first entry).</summary>
    private readonly record struct Extent(long Start, int Length, int Column, int Page, ExtentKind Kind);

    private delegate void ExtentConsumer(in Extent extent, ReadOnlySpan<byte> bytes, long absoluteOffset);

    /// <summary>
    /// Reads extents of one row group, coalescing those within <paramref name="gapBytes"/> (default: the store's
    /// <see cref="IObjectStore.ReadCoalesceGapBytes"/>) of each other into one range request, and hands each extent's
    /// bytes to <paramref name="consume"/> in offset order (on the calling thread, between awaits). Counts bytes and
    /// requests into <paramref name="result"/>.
    /// </summary>
    private async ValueTask ReadExtentsAsync(RowGroupStats rowGroup, List<Extent> extents, RowGroupColumns result, ExtentConsumer consume, CancellationToken ct, int? gapBytes = null)
    {
        int gap = gapBytes ?? _store.ReadCoalesceGapBytes;
        if (extents.Count == 0)
        {
            return;
        }

        extents.Sort((a, b) => a.Start.CompareTo(b.Start));
        using var reader = _store.OpenRangeReader(DataKey);
        int i = 0;
        while (i < extents.Count)
        {
            int j = i;
            long start = extents[i].Start;
            long end = start + extents[i].Length;
            while (j + 1 < extents.Count && extents[j + 1].Start - end <= gap)
            {
                j++;
                end = Math.Max(end, extents[j].Start + extents[j].Length);
            }

            if (start < 0 || end > rowGroup.Length)
            {
                throw new BlockCorruptException(DataKey, rowGroup.Offset + start, $"column extent [{start}, {end}) is outside the {rowGroup.Length}-byte row group");
            }

            // The stored bytes only live until their pages are inflated, so the buffer is pooled.
            int size = (int)(end - start);
            byte[] buf = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(1, size));
            try
            {
                int n = await reader.ReadAsync(rowGroup.Offset + start, buf.AsMemory(0, size), ct).ConfigureAwait(false);
                if (n != size)
                {
                    throw new BlockCorruptException(DataKey, rowGroup.Offset + start, $"column range of {size} bytes is truncated to {n}");
                }

                result.BytesRead += n;
                result.Reads++;
                result.BytesReadByColumn[extents[i].Column] += n;
                for (int k = i; k <= j; k++)
                {
                    var e = extents[k];
                    if (k > i)
                    {
                        result.BytesReadByColumn[e.Column] += e.Length;
                        result.BytesReadByColumn[extents[i].Column] -= e.Length;
                    }

                    consume(e, buf.AsSpan((int)(e.Start - start), e.Length), rowGroup.Offset + e.Start);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buf);
            }

            i = j + 1;
        }
    }

    /// <summary>Reads and validates the data object's footer: per-row-group statistics and column directory.</summary>
    public async Task<IReadOnlyList<RowGroupStats>> ReadFooterAsync(CancellationToken ct)
    {
        var index = await GetIndexAsync(ct).ConfigureAwait(false);
        string cacheKey = ObjectKeys.BlockObject(Meta.TenantId, Meta.BlockId, "footer");
        byte[]? cached = await CacheGetAsync(_caches?.Footer, cacheKey, ct).ConfigureAwait(false);
        if (cached is not null && cached.Length == Meta.FooterSize)
        {
            try
            {
                return ParseFooter(cached, index.FooterOffset);
            }
            catch (BlockCorruptException)
            {
                // A damaged cache entry: fall through to the object store, whose bytes then replace it.
            }
        }

        var buf = new byte[Meta.FooterSize];
        int n = await _store.ReadRangeAsync(DataKey, index.FooterOffset, buf, ct).ConfigureAwait(false);
        if (n != buf.Length || buf.Length < FormatV1.DataTailSize + 8)
        {
            throw new BlockCorruptException(DataKey, index.FooterOffset, $"footer of {Meta.FooterSize} bytes expected, read {n}");
        }

        var result = ParseFooter(buf, index.FooterOffset);
        CacheSetInBackground(_caches?.Footer, cacheKey, buf);
        return result;
    }

    private IReadOnlyList<RowGroupStats> ParseFooter(byte[] buf, long footerOffset)
    {
        if (buf.Length < FormatV1.DataTailSize + 8)
        {
            throw new BlockCorruptException(DataKey, footerOffset, $"footer of {buf.Length} bytes is shorter than its trailer");
        }

        var tail = buf.AsSpan(buf.Length - FormatV1.DataTailSize);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(tail[8..]) != FormatV1.DataMagic)
        {
            throw new BlockCorruptException(DataKey, footerOffset + buf.Length - 4, "bad trailer magic");
        }

        if (len != buf.Length - FormatV1.DataTailSize || Crc32C.Compute(buf.AsSpan(0, (int)len)) != crc)
        {
            throw new BlockCorruptException(DataKey, footerOffset, "footer length or CRC-32C mismatch");
        }

        var r = new ByteReader(buf.AsSpan(0, (int)len), DataKey, footerOffset, "footer");
        if (r.ReadU16() != FormatV1.FormatRevision)
        {
            throw r.Corrupt("unsupported revision");
        }

        int cols = r.ReadU16();
        if (cols < Col.Count)
        {
            throw r.Corrupt($"{cols} columns, the format needs {Col.Count}");
        }

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
            var shapes = new ChunkShape[cols];
            for (int c = 0; c < cols; c++)
            {
                dir[c] = ((int)r.ReadU32(), (int)r.ReadU32());
                shapes[c] = new ChunkShape((int)r.ReadU32(), (int)r.ReadU32(), (int)r.ReadU32());
                if (dir[c].Item1 < 0 || dir[c].Item2 <= 0 || (long)dir[c].Item1 + dir[c].Item2 > length || !ColumnPages.ShapeFits(c, shapes[c], dir[c].Item2))
                {
                    throw r.Corrupt($"row group {i} column {Col.Name(c)}: extent [{dir[c].Item1}, +{dir[c].Item2}) with {shapes[c]} does not fit the {length}-byte row group");
                }
            }

            result.Add(new RowGroupStats(off, length, traces, spans, minId, maxId, minStart, maxEnd, minDur, maxDur, dir, shapes));
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
        b = await CacheGetParsedAsync(_caches?.Bloom, key, data => BloomFilter.Deserialize(data, key), ct).ConfigureAwait(false);
        if (b is null)
        {
            byte[] data = await _store.GetAsync(key, ct).ConfigureAwait(false) ?? throw new BlockCorruptException(key, 0, "bloom shard is missing");
            b = BloomFilter.Deserialize(data, key);
            CacheSetInBackground(_caches?.Bloom, key, data);
        }

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
            var parsed = await CacheGetParsedAsync(_caches?.TraceIdIndex, key, data => IndexData.Parse(data, key), ct).ConfigureAwait(false);
            if (parsed is null)
            {
                byte[] data = await _store.GetAsync(key, ct).ConfigureAwait(false) ?? throw new BlockCorruptException(key, 0, "index is missing");
                parsed = IndexData.Parse(data, key);
                CacheSetInBackground(_caches?.TraceIdIndex, key, data);
            }

            _index = parsed;
            return parsed;
        }
        finally
        {
            _indexLock.Release();
        }
    }

    /// <summary>
    /// The cached value parsed, or null on a miss, a cache failure, or cached bytes that do not parse (a damaged entry
    /// is then overwritten by the caller's store read). Never throws for the cache's sake; only <paramref name="ct"/>
    /// cancels. The cache bounds each get by its configured timeout, so a dead cache costs at most that.
    /// </summary>
    private static async ValueTask<T?> CacheGetParsedAsync<T>(ICache? cache, string key, Func<byte[], T> parse, CancellationToken ct)
        where T : class
    {
        byte[]? data = await CacheGetAsync(cache, key, ct).ConfigureAwait(false);
        if (data is null)
        {
            return null;
        }

        try
        {
            return parse(data);
        }
        catch (BlockCorruptException)
        {
            return null;
        }
    }

    private static async ValueTask<byte[]?> CacheGetAsync(ICache? cache, string key, CancellationToken ct)
    {
        if (cache is null)
        {
            return null;
        }

        try
        {
            return await cache.GetAsync(key, ct).ConfigureAwait(false);
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            return null; // ICache promises not to throw; this guards the query against one that does anyway.
        }
    }

    /// <summary>
    /// Stores <paramref name="value"/> without the query waiting for it: the set runs on the caller's thread only up to
    /// its first await, then continues on the thread pool under the cache's own timeout. Not tied to the query's
    /// token, so a query that ends early still fills the cache. Failures are dropped (counted by the cache).
    /// </summary>
    private static void CacheSetInBackground(ICache? cache, string key, byte[] value)
    {
        if (cache is null)
        {
            return;
        }

        _ = SetAsync(cache, key, value);

        static async Task SetAsync(ICache cache, string key, byte[] value)
        {
            try
            {
                await cache.SetAsync(key, value, ttl: null, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Best effort by contract: a cache that cannot store simply misses next time.
            }
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
