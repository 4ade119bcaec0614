using Rubato.Cache;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.Storage.Tests.Search;

/// <summary>
/// The <c>parquet-offset-idx</c> and <c>parquet-page</c> roles (<see cref="BlockCaches.PageIndex"/>,
/// <see cref="BlockCaches.Page"/>): a search over a block opened again with a warm cache takes every page index and
/// small page from the cache, damaged entries are read again and repaired, and a cache that throws changes no result. Store range reads are
/// recorded by a decorator over the real local store.
/// </summary>
public sealed class PageIndexCacheTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RangeRecordingStore _store;
    private readonly MetricsRegistry _metrics = new();
    private readonly MemoryCache _cache;

    public PageIndexCacheTests()
    {
        _store = new RangeRecordingStore(new LocalObjectStore(_dir.Path));
        _cache = new MemoryCache("page-index", 64L * 1024 * 1024, TimeSpan.Zero, _metrics);
    }

    public void Dispose()
    {
        _cache.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _dir.Dispose();
    }

    [Theory]
    [InlineData("{ duration > 1s }")]
    [InlineData("{ span.http.method = \"GET\" && status = error }")]
    [InlineData("{ resource.service.name = \"cart\" } | select(span.http.method)")]
    public async Task SearchAsync_WarmPageIndexCache_ReadsNoPageIndexFromStore(string query)
    {
        var (data, meta) = await WritePagedBlockAsync();
        var caches = new BlockCaches(null, null, null, _cache);
        var chunks = await ChunkStartsAsync(meta);
        string expected = await SearchAsync(query, [new BackendBlockV1(meta, _store)]);

        _store.Clear();
        string cold = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);
        int coldIndexReads = PageIndexReads(chunks);
        long coldReads = _store.Ranges.Count;

        // MemoryCache stores synchronously, so the cold search's background sets are done when it returns.
        Assert.True(_cache.Count > 0, "the cold search cached no page index");
        _store.Clear();
        string warm = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);

        Assert.Equal(expected, cold);
        Assert.Equal(expected, warm);
        Assert.True(coldIndexReads > 0, "the cold search read no page index from the store");
        Assert.Equal(0, PageIndexReads(chunks));
        Assert.True(_store.Ranges.Count < coldReads, $"warm search made {_store.Ranges.Count} reads, cold {coldReads}");
        Assert.NotEmpty(data);
    }

    [Fact]
    public async Task ReadPageIndexesAsync_WarmCache_NoStoreReadsAndSameIndexes()
    {
        var (_, meta) = await WritePagedBlockAsync();
        var caches = new BlockCaches(null, null, null, _cache);
        var cold = new BackendBlockV1(meta, _store, caches);
        var footer = await cold.GetFooterAsync(CancellationToken.None);
        var all = Enumerable.Range(0, Col.Count).ToArray();
        var coldIndexes = new List<RowGroupColumns>();
        foreach (var rg in footer)
        {
            var c = new RowGroupColumns(rg);
            await cold.ReadPageIndexesAsync(rg, all, c, CancellationToken.None);
            coldIndexes.Add(c);
        }

        var warm = new BackendBlockV1(meta, _store, caches);
        var warmFooter = await warm.GetFooterAsync(CancellationToken.None);
        _store.Clear();
        for (int i = 0; i < warmFooter.Count; i++)
        {
            var c = new RowGroupColumns(warmFooter[i]);
            await warm.ReadPageIndexesAsync(warmFooter[i], all, c, CancellationToken.None);
            Assert.Equal(0, c.Reads);
            foreach (int col in all)
            {
                var a = coldIndexes[i].PageIndex(col)!;
                var b = c.PageIndex(col)!;
                Assert.Equal(a.HeaderLength, b.HeaderLength);
                Assert.Equal(a.RowsPerPage, b.RowsPerPage);
                Assert.Equal(a.Pages, b.Pages);
            }
        }

        Assert.Empty(_store.Ranges);
    }

    [Fact]
    public async Task ReadPageIndexesAsync_DamagedCacheEntry_ReadsStoreAndRepairsEntry()
    {
        var (_, meta) = await WritePagedBlockAsync();
        var caches = new BlockCaches(null, null, null, _cache);
        var block = new BackendBlockV1(meta, _store, caches);
        var rg = (await block.GetFooterAsync(CancellationToken.None))[0];
        await block.ReadPageIndexesAsync(rg, [Col.SpanDuration], new RowGroupColumns(rg), CancellationToken.None);
        // Index extents are cached by their absolute extent; the header's entry gates its entries and stats.
        long headerAt = rg.Offset + rg.Columns[Col.SpanDuration].Offset;
        string key = ObjectKeys.BlockObject(meta.TenantId, meta.BlockId, $"page-index-{headerAt}-{ChunkShape.HeaderLength(Col.SpanDuration)}");
        byte[] good = (await _cache.GetAsync(key))!.ToArray();
        await _cache.SetAsync(key, new byte[good.Length]);

        _store.Clear();
        var again = new RowGroupColumns(rg);
        await new BackendBlockV1(meta, _store, caches).ReadPageIndexesAsync(rg, [Col.SpanDuration], again, CancellationToken.None);

        Assert.Single(_store.Ranges);
        Assert.Equal(good, await _cache.GetAsync(key));
        Assert.NotNull(again.PageIndex(Col.SpanDuration));
    }

    [Theory]
    [InlineData("{ duration > 1s }")]
    [InlineData("{ span.http.method = \"GET\" && status = error }")]
    [InlineData("{ resource.service.name = \"cart\" } | select(span.http.method)")]
    [InlineData("{ span.needle = \"found-1\" }")]
    public async Task SearchAsync_WarmPageCache_ReadsOnlyWholeChunksFromStore(string query)
    {
        var (_, meta) = await WritePagedBlockAsync();
        // The footer is cached too: it is the one other range of the data object a search reads.
        var caches = new BlockCaches(null, null, _cache, _cache, _cache);
        var chunks = await ChunkStartsAsync(meta);
        string expected = await SearchAsync(query, [new BackendBlockV1(meta, _store)]);

        _store.Clear();
        string cold = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);
        int coldPartial = PartialChunkReads(chunks);
        _store.Clear();
        string warm = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);

        Assert.Equal(expected, cold);
        Assert.Equal(expected, warm);
        Assert.True(coldPartial > 0, "the cold search read no page or page index from the store");

        // Every page here is far below MaxCachedPageBytes, so only whole chunks (read whole by design) remain.
        Assert.Equal(0, PartialChunkReads(chunks));
    }

    [Fact]
    public async Task SearchAsync_DamagedCachedPages_SameResultAndEntriesRepaired()
    {
        const string query = "{ span.needle = \"found-1\" }";
        var (_, meta) = await WritePagedBlockAsync();
        var caches = new BlockCaches(null, null, null, _cache, _cache);
        string expected = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);

        var block = new BackendBlockV1(meta, _store);
        var damaged = new List<(string Key, byte[] Good)>();
        foreach (var rg in await block.GetFooterAsync(CancellationToken.None))
        {
            var cols = new RowGroupColumns(rg);
            var all = Enumerable.Range(0, Col.Count).ToArray();
            await block.ReadPageIndexesAsync(rg, all, cols, CancellationToken.None);
            foreach (var (c, page) in all.SelectMany(c => cols.PageIndex(c)!.Pages.Select(p => (c, p))))
            {
                long at = rg.Offset + rg.Columns[c].Offset + page.Offset;
                string key = ObjectKeys.BlockObject(meta.TenantId, meta.BlockId, $"page-{at}-{page.Stored}");
                if (await _cache.GetAsync(key) is { } good)
                {
                    var bad = good.ToArray();
                    bad[bad.Length / 2] ^= 0x5A;
                    await _cache.SetAsync(key, bad);
                    damaged.Add((key, good.ToArray()));
                }
            }
        }

        string again = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);

        Assert.NotEmpty(damaged);
        Assert.Equal(expected, again);
        foreach (var (key, good) in damaged)
        {
            Assert.Equal(good, await _cache.GetAsync(key));
        }
    }

    [Theory]
    [InlineData("{ duration > 1s }")]
    [InlineData("{ span.http.method = \"GET\" || status = error }")]
    public async Task SearchAsync_ThrowingCache_SameResultAsWithoutCache(string query)
    {
        var (_, meta) = await WritePagedBlockAsync();
        string expected = await SearchAsync(query, [new BackendBlockV1(meta, _store)]);
        var throwing = new ThrowingCache(_cache);
        var caches = new BlockCaches(throwing, throwing, throwing, throwing, throwing);

        string first = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);
        string second = await SearchAsync(query, [new BackendBlockV1(meta, _store, caches)]);

        Assert.Equal(expected, first);
        Assert.Equal(expected, second);
        Assert.True(throwing.Calls > 0, "the search never asked the cache");
        Assert.Equal(0, _cache.Count);
    }

    private async Task<(List<(TraceId Id, Trace Trace)> Data, BlockMeta Meta)> WritePagedBlockAsync()
    {
        var data = SearchDataset.Generate(400, seed: 7);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 256 * 1024, configure: o =>
        {
            o.TracesPerPage = 4;
            o.MinPageStoredBytes = 1;
        });
        return (data, block.Meta);
    }

    /// <summary>Absolute start of every column chunk (where its page index sits) and the chunk's length.</summary>
    private async Task<Dictionary<long, int>> ChunkStartsAsync(BlockMeta meta)
    {
        var result = new Dictionary<long, int>();
        foreach (var rg in await new BackendBlockV1(meta, _store).GetFooterAsync(CancellationToken.None))
        {
            foreach (var (offset, length) in rg.Columns)
            {
                result[rg.Offset + offset] = length;
            }
        }

        return result;
    }

    /// <summary>
    /// Store reads that start at a chunk and are shorter than it: only a page index read does that (a whole-chunk read
    /// is at least the chunk long, and data and dictionary pages sit after the index).
    /// </summary>
    private int PageIndexReads(Dictionary<long, int> chunks) =>
        _store.Ranges.Count(r => r.Key.EndsWith("/" + FormatV1.DataName, StringComparison.Ordinal)
            && chunks.TryGetValue(r.Offset, out int len) && r.Length < len);

    /// <summary>
    /// Store reads of the data object that are not whole chunks: a page index, a page, or a run of pages (each of which
    /// starts inside a chunk or, for an index, at its start and is shorter than the chunk).
    /// </summary>
    private int PartialChunkReads(Dictionary<long, int> chunks) =>
        _store.Ranges.Count(r => r.Key.EndsWith("/" + FormatV1.DataName, StringComparison.Ordinal)
            && !(chunks.TryGetValue(r.Offset, out int len) && r.Length >= len));

    private static async Task<string> SearchAsync(string query, IReadOnlyList<BackendBlockV1> blocks)
    {
        var fetcher = MultiBlockSpansetFetcher.ForBlocks(blocks.Select(b => (IBackendBlock)b));
        var options = new SearchOptions { Limit = 100_000, SpansPerSpanSet = 1000 };
        var result = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate(query), fetcher, options, CancellationToken.None);
        return SearchResultJson.ToJson(new SearchResult { Traces = result.Traces });
    }

    /// <summary>A cache that breaks <see cref="ICache"/>'s no-throw promise on every call (a buggy backend client).</summary>
    private sealed class ThrowingCache(ICache inner) : ICache
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public string Name => inner.Name;

        public ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            throw new InvalidOperationException("cache backend exploded");
        }

        public ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            throw new InvalidOperationException("cache backend exploded");
        }

        public ValueTask SetAsync(string key, ReadOnlyMemory<byte> value, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            throw new InvalidOperationException("cache backend exploded");
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
