using Rubato.Cache;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Xunit;

namespace Rubato.Storage.Tests;

/// <summary>
/// <see cref="BackendBlockV1"/> with shared role caches (a real <see cref="MemoryCache"/>): a block opened a second
/// time (another querier process, or after the block list dropped it) finds its bloom shards, index and footer in the
/// cache and reads only the row group from the object store. Object-store bytes are counted with a decorator.
/// </summary>
public sealed class BlockV1CacheTests : IDisposable
{
    private const string Tenant = "tenant-c";
    private const ulong BaseNanos = 1_700_000_000_000_000_000UL;
    private readonly TempDir _dir = new();
    private readonly CountingObjectStore _store;
    private readonly MetricsRegistry _metrics = new();
    private readonly MemoryCache _cache;
    private readonly BlockCaches _caches;

    public BlockV1CacheTests()
    {
        _store = new CountingObjectStore(new LocalObjectStore(_dir.Path));
        _cache = new MemoryCache("test", 64L * 1024 * 1024, TimeSpan.Zero, _metrics);
        _caches = new BlockCaches(_cache, _cache, _cache);
    }

    public void Dispose()
    {
        _cache.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _dir.Dispose();
    }

    [Fact]
    public async Task FindTraceByIdAsync_SecondOpenWithSharedCache_ReadsOnlyTheRowGroup()
    {
        var (meta, ids) = await WriteBlockAsync(2000);
        var first = new BackendBlockV1(meta, _store, _caches);
        _store.Reset();
        var expected = await first.FindTraceByIdAsync(ids[700], default);
        long coldBytes = _store.BytesRead;
        var coldKeys = _store.ReadKeys.ToList();

        var second = new BackendBlockV1(meta, _store, _caches);
        _store.Reset();
        var again = await second.FindTraceByIdAsync(ids[700], default);

        Assert.NotNull(expected);
        Assert.NotNull(again);
        Assert.Null(TraceDiff.Diff(expected, again));
        Assert.Contains(coldKeys, k => k.EndsWith("/index", StringComparison.Ordinal));
        Assert.Contains(coldKeys, k => k.Contains("/bloom-", StringComparison.Ordinal));
        Assert.All(_store.ReadKeys, k => Assert.EndsWith("/" + FormatV1.DataName, k));
        Assert.Single(_store.ReadKeys);
        Assert.True(_store.BytesRead < coldBytes, $"warm lookup read {_store.BytesRead} bytes, cold {coldBytes}");
    }

    [Fact]
    public async Task FindTraceByIdAsync_EveryIdThroughCache_MatchesUncachedBlock()
    {
        var (meta, ids) = await WriteBlockAsync(600);
        var plain = new BackendBlockV1(meta, _store);
        var warmUp = new BackendBlockV1(meta, _store, _caches);
        foreach (var id in ids)
        {
            Assert.NotNull(await warmUp.FindTraceByIdAsync(id, default));
        }

        var cached = new BackendBlockV1(meta, _store, _caches);
        foreach (var id in ids)
        {
            var a = await plain.FindTraceByIdAsync(id, default);
            var b = await cached.FindTraceByIdAsync(id, default);
            Assert.NotNull(a);
            Assert.NotNull(b);
            Assert.Null(TraceDiff.Diff(a, b));
            Assert.Null(await cached.FindTraceByIdAsync(new TraceId(id.High, id.Low + 1), default));
        }
    }

    [Fact]
    public async Task ReadFooterAsync_SecondOpenWithSharedCache_ReadsNothingFromStore()
    {
        var (meta, _) = await WriteBlockAsync(500);
        var first = await new BackendBlockV1(meta, _store, _caches).ReadFooterAsync(default);

        _store.Reset();
        var second = await new BackendBlockV1(meta, _store, _caches).ReadFooterAsync(default);

        Assert.Equal(0, _store.Reads);
        Assert.Equal(first.Count, second.Count);
        for (int i = 0; i < first.Count; i++)
        {
            Assert.Equal(first[i] with { Columns = [], Shapes = [] }, second[i] with { Columns = [], Shapes = [] });
            Assert.Equal(first[i].Columns, second[i].Columns);
            Assert.Equal(first[i].Shapes, second[i].Shapes);
        }
    }

    [Fact]
    public async Task FindTraceByIdAsync_CorruptCachedEntries_ReadsStoreAndRepairsCache()
    {
        var (meta, ids) = await WriteBlockAsync(800);
        string indexKey = ObjectKeys.BlockObject(Tenant, meta.BlockId, FormatV1.IndexName);
        string footerKey = ObjectKeys.BlockObject(Tenant, meta.BlockId, "footer");
        var garbage = new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 };
        await _cache.SetAsync(indexKey, garbage);
        await _cache.SetAsync(footerKey, new byte[meta.FooterSize]);
        for (int s = 0; s < meta.BloomShards; s++)
        {
            await _cache.SetAsync(ObjectKeys.BlockObject(Tenant, meta.BlockId, FormatV1.BloomName(s)), garbage);
        }

        var block = new BackendBlockV1(meta, _store, _caches);
        var plain = new BackendBlockV1(meta, _store);
        foreach (var id in ids.Take(50))
        {
            var a = await plain.FindTraceByIdAsync(id, default);
            var b = await block.FindTraceByIdAsync(id, default);
            Assert.NotNull(b);
            Assert.Null(TraceDiff.Diff(a!, b));
        }

        Assert.Equal((await plain.ReadFooterAsync(default)).Count, (await block.ReadFooterAsync(default)).Count);

        // The store's bytes replaced the damaged index entry.
        var repaired = await _cache.GetAsync(indexKey);
        Assert.NotNull(repaired);
        Assert.Equal(await _store.GetAsync(indexKey, default), repaired);
    }

    [Fact]
    public async Task FindTraceByIdAsync_ThroughBackendTraceReaderWithCaches_SecondReaderReadsLess()
    {
        var (meta, ids) = await WriteBlockAsync(1500);
        var range = TimeRange.All;
        var first = new BackendTraceReader(_store, caches: _caches);
        await first.RefreshAsync();
        _store.Reset();
        var expected = await first.FindTraceByIdAsync(Tenant, ids[42], range, default);
        long coldBytes = _store.BytesRead;

        var second = new BackendTraceReader(_store, caches: _caches);
        await second.RefreshAsync();
        _store.Reset();
        var again = await second.FindTraceByIdAsync(Tenant, ids[42], range, default);

        Assert.NotNull(expected);
        Assert.NotNull(again);
        Assert.Null(TraceDiff.Diff(expected, again));
        Assert.True(_store.BytesRead < coldBytes, $"second reader read {_store.BytesRead} bytes, first {coldBytes}");
        Assert.DoesNotContain(_store.ReadKeys, k => k.EndsWith("/" + FormatV1.IndexName, StringComparison.Ordinal));
        Assert.Equal(meta.BlockId, second.Blocks(Tenant).Single().BlockId);
    }

    private async Task<(BlockMeta Meta, TraceId[] Ids)> WriteBlockAsync(int traces)
    {
        var opts = new BlockBuilderOptions { TenantId = Tenant, BlockId = Guid.NewGuid(), RowGroupSizeBytes = 16 * 1024, BloomShardSizeBytes = 1024 };
        var ids = Enumerable.Range(0, traces).Select(SampleTraces.Id).OrderBy(x => x).ToArray();
        using var b = Encodings.Default.CreateBlockBuilder(opts);
        foreach (var id in ids)
        {
            b.AddTrace(id, SampleTraces.Make(id, 1 + (int)(id.Low % 8), BaseNanos + (id.Low % 1_000_000_000_000UL)));
        }

        var meta = await b.WriteAsync(_store, default);
        return (meta, ids);
    }
}
