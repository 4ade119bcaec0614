using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Ingester;
using Rubato.Overrides;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Wal;
using Xunit;
using IngesterImpl = Rubato.Ingester.Ingester;

namespace Rubato.Distributor.Tests;

/// <summary>The ingester with a real WAL and a real local object store in a temp folder.</summary>
public sealed class IngesterTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _walPath;
    private readonly LocalObjectStore _store;
    private readonly OverridesConfig _overridesConfig = new();
    private readonly RuntimeOverrides _overrides;
    private readonly MetricsRegistry _metrics = new();

    public IngesterTests()
    {
        _walPath = _dir.Sub("wal");
        _store = new LocalObjectStore(_dir.Sub("blocks"));
        _overrides = new RuntimeOverrides(_overridesConfig, _metrics);
    }

    public void Dispose()
    {
        _overrides.Dispose();
        _dir.Dispose();
    }

    private IngesterImpl NewIngester(BackendTraceReader? reader = null, IngesterConfig? config = null, MetricsRegistry? metrics = null, string walPath = "") =>
        new(
            config ?? new IngesterConfig { FlushCheckPeriod = TimeSpan.FromHours(1) },
            new IngesterOptions
            {
                InstanceId = "ingester-1",
                Wal = new WalOptions { Path = walPath.Length > 0 ? walPath : _walPath },
                Store = _store,
                BlockFlushed = reader is null ? null : reader.AddBlock,
            },
            _overrides,
            metrics ?? _metrics);

    private static async Task<PushResultSummary> PushAsync(IngesterImpl ingester, string tenant, params Trace[] traces)
    {
        using var split = OtlpTraceSplitter.Split(TestTraces.Request(traces), OtlpSplitOptions.None);
        var r = await ingester.PushSegmentsAsync(tenant, split.Segments, CancellationToken.None);
        return new PushResultSummary(r.Refusals);
    }

    private async Task<List<(TraceId Id, Trace Trace)>> AllBlockTracesAsync(string tenant)
    {
        var result = new List<(TraceId, Trace)>();
        foreach (string block in await _store.ListAsync(tenant, CancellationToken.None))
        {
            byte[]? metaJson = await _store.GetAsync($"{tenant}/{block}/{ObjectKeys.MetaName}", CancellationToken.None);
            Assert.NotNull(metaJson);
            var meta = BlockMeta.FromJson(metaJson);
            await foreach (var t in Encodings.FromVersion(meta.Version).OpenBlock(meta, _store).IterateAsync(CancellationToken.None))
            {
                result.Add(t);
            }
        }

        return result;
    }

    private int WalFiles() => Directory.GetFiles(_walPath).Length;

    [Fact]
    public async Task FindTraceByIdAsync_AfterPush_FindsLiveTrace()
    {
        var ingester = NewIngester();
        await ingester.Service.StartAsync(CancellationToken.None);
        var id = TestTraces.NewTraceId();
        Assert.True((await PushAsync(ingester, "t", TestTraces.Make(id, 3))).AllAccepted);

        var found = await ingester.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None);
        Assert.Equal([1UL, 2UL, 3UL], TestTraces.SpanIds(found).Order());
        Assert.Null(await ingester.FindTraceByIdAsync("other-tenant", id, TimeRange.All, CancellationToken.None));
        Assert.Null(await ingester.FindTraceByIdAsync("t", TestTraces.NewTraceId(), TimeRange.All, CancellationToken.None));
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task CompleteBlocks_AfterFlush_KeptForTimeoutAndAcrossRestart()
    {
        var clock = new ManualClock();
        var config = new IngesterConfig { FlushCheckPeriod = TimeSpan.FromHours(1), CompleteBlockTimeout = TimeSpan.FromMinutes(15) };
        IngesterImpl Create() => new(
            config,
            new IngesterOptions { InstanceId = "i", Wal = new WalOptions { Path = _walPath }, Store = _store, Time = clock },
            _overrides,
            new MetricsRegistry());

        var ingester = Create();
        await ingester.Service.StartAsync(CancellationToken.None);
        await PushAsync(ingester, "t", TestTraces.Make(TestTraces.NewTraceId(), 3));
        await PushAsync(ingester, "u", TestTraces.Make(TestTraces.NewTraceId(), 2));
        Assert.Empty(ingester.CompleteBlocks("t"));
        await ingester.FlushAsync(CancellationToken.None);
        var block = Assert.Single(ingester.CompleteBlocks("t"));
        Assert.Equal(3, block.SpanCount);
        Assert.Equal("u", Assert.Single(ingester.CompleteBlocks("u")).TenantId);
        Assert.Empty(ingester.CompleteBlocks("other"));
        Assert.Equal(1, WalFiles()); // the list lives beside the WAL's files, not among them
        await ingester.Service.StopAsync();

        // A new process on the same WAL directory reloads the list (metas from the store).
        clock.Advance(TimeSpan.FromMinutes(10));
        var restarted = Create();
        await restarted.Service.StartAsync(CancellationToken.None);
        Assert.Equal(block.BlockId, Assert.Single(restarted.CompleteBlocks("t")).BlockId);

        // Past complete_block_timeout since the flush, the block leaves recent data (it stays in the backend).
        clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Empty(restarted.CompleteBlocks("t"));
        await restarted.Service.StopAsync();
        var expired = Create();
        await expired.Service.StartAsync(CancellationToken.None);
        Assert.Empty(expired.CompleteBlocks("t"));
        await expired.Service.StopAsync();
    }

    [Fact]
    public async Task FlushAsync_WritesBlockFoundThroughBackendReaderAndEmptiesWal()
    {
        var reader = new BackendTraceReader(_store);
        var ingester = NewIngester(reader);
        await ingester.Service.StartAsync(CancellationToken.None);
        var id = TestTraces.NewTraceId();
        await PushAsync(ingester, "t", TestTraces.Make(id, 5));

        await ingester.FlushAsync(CancellationToken.None);

        Assert.Equal(0, ingester.HeadCount);
        Assert.Null(await ingester.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None));
        Assert.Equal(5, TestTraces.SpanIds(await reader.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None)).Count);
        Assert.Equal(1, WalFiles()); // only the open generation
        Assert.Equal(1, _metrics.Counter("rubato_ingester_blocks_flushed_total", "", "tenant").Value("t"));

        // A fresh reader that lists the store finds it too.
        var lister = new BackendTraceReader(_store);
        await lister.RefreshAsync();
        Assert.Equal(5, TestTraces.SpanIds(await lister.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None)).Count);
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task StartAsync_AfterCrash_ReplaysEverySpanExactlyOnce()
    {
        var crashed = NewIngester();
        await crashed.Service.StartAsync(CancellationToken.None);
        var ids = new List<TraceId>();
        for (int i = 0; i < 20; i++)
        {
            var id = TestTraces.NewTraceId();
            ids.Add(id);
            Assert.True((await PushAsync(crashed, i % 2 == 0 ? "a" : "b", TestTraces.Make(id, 3))).AllAccepted);
        }

        // A second part of the first trace, in another push.
        Assert.True((await PushAsync(crashed, "a", TestTraces.Make(ids[0], 2, firstSpanId: 100))).AllAccepted);

        // "Crash": close the WAL without flushing anything, abandon the instance.
        await crashed.DisposeAsync();
        Assert.Empty(await _store.ListAsync(string.Empty, CancellationToken.None));

        var reader = new BackendTraceReader(_store);
        var metrics = new MetricsRegistry();
        var restarted = NewIngester(reader, metrics: metrics);
        await restarted.Service.StartAsync(CancellationToken.None);
        Assert.Equal(21, metrics.Counter("rubato_ingester_replayed_records_total", "").Value());
        Assert.Equal(0, restarted.HeadCount);
        Assert.Equal(1, WalFiles());

        for (int i = 0; i < ids.Count; i++)
        {
            var found = await reader.FindTraceByIdAsync(i % 2 == 0 ? "a" : "b", ids[i], TimeRange.All, CancellationToken.None);
            Assert.Equal(i == 0 ? 5 : 3, found!.SpanCount());
        }

        var all = (await AllBlockTracesAsync("a")).Concat(await AllBlockTracesAsync("b")).ToList();
        Assert.Equal(20, all.Count);
        Assert.Equal(20 * 3 + 2, all.Sum(t => t.Trace.SpanCount()));
        await restarted.Service.StopAsync();
    }

    [Fact]
    public async Task Replay_SameWalTwice_RewritesTheSameBlockInsteadOfAddingOne()
    {
        // A crash after the blocks were written but before the WAL generation was deleted replays it again.
        var first = NewIngester();
        await first.Service.StartAsync(CancellationToken.None);
        await PushAsync(first, "t", TestTraces.Make(TestTraces.NewTraceId(), 2), TestTraces.Make(TestTraces.NewTraceId(), 2));
        await first.DisposeAsync();
        string copy = _dir.Sub("wal-copy");
        foreach (string f in Directory.GetFiles(_walPath))
        {
            File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        }

        var replay1 = NewIngester();
        await replay1.Service.StartAsync(CancellationToken.None);
        await replay1.Service.StopAsync();
        var blocksAfterFirst = await _store.ListAsync("t", CancellationToken.None);
        Assert.Single(blocksAfterFirst);

        var replay2 = NewIngester(walPath: copy);
        await replay2.Service.StartAsync(CancellationToken.None);
        await replay2.Service.StopAsync();
        Assert.Equal(blocksAfterFirst, await _store.ListAsync("t", CancellationToken.None));
    }

    [Fact]
    public async Task Push_SameSpansTwice_TraceReturnedWithEachSpanOnce()
    {
        var reader = new BackendTraceReader(_store);
        var ingester = NewIngester(reader);
        await ingester.Service.StartAsync(CancellationToken.None);
        var id = TestTraces.NewTraceId();
        await PushAsync(ingester, "t", TestTraces.Make(id, 4));
        await PushAsync(ingester, "t", TestTraces.Make(id, 4));

        Assert.Equal(4, (await ingester.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None))!.SpanCount());
        await ingester.FlushAsync(CancellationToken.None);
        Assert.Equal(4, (await reader.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None))!.SpanCount());
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task Push_MaxTracesPerUser_RefusesNewTraceAndKeepsEarlierOnes()
    {
        _overridesConfig.Defaults.Ingestion.MaxTracesPerUser = 3;
        var reader = new BackendTraceReader(_store);
        var ingester = NewIngester(reader);
        await ingester.Service.StartAsync(CancellationToken.None);
        var ids = Enumerable.Range(0, 4).Select(_ => TestTraces.NewTraceId()).ToArray();
        var first = await PushAsync(ingester, "t", TestTraces.Make(ids[0], 1), TestTraces.Make(ids[1], 1), TestTraces.Make(ids[2], 1));
        Assert.True(first.AllAccepted);

        var second = await PushAsync(ingester, "t", TestTraces.Make(ids[3], 1), TestTraces.Make(ids[1], 1, firstSpanId: 9));
        Assert.Equal([RefusalReason.LiveTracesExceeded, RefusalReason.None], second.Refusals);
        Assert.Equal(3, ingester.LiveTraces("t"));
        Assert.Equal(3, _metrics.Gauge("rubato_ingester_live_traces", "", "tenant").Value("t"));

        await ingester.FlushAsync(CancellationToken.None);
        for (int i = 0; i < 3; i++)
        {
            Assert.NotNull(await reader.FindTraceByIdAsync("t", ids[i], TimeRange.All, CancellationToken.None));
        }

        Assert.Equal(2, (await reader.FindTraceByIdAsync("t", ids[1], TimeRange.All, CancellationToken.None))!.SpanCount());
        Assert.Null(await reader.FindTraceByIdAsync("t", ids[3], TimeRange.All, CancellationToken.None));
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task Push_MaxBytesPerTrace_RefusesUntilFlushedAndKeepsEarlierData()
    {
        _overridesConfig.Defaults.Global.MaxBytesPerTrace = 2500;
        var reader = new BackendTraceReader(_store);
        var ingester = NewIngester(reader);
        await ingester.Service.StartAsync(CancellationToken.None);
        var id = TestTraces.NewTraceId();
        Assert.True((await PushAsync(ingester, "t", TestTraces.Make(id, 1, firstSpanId: 1, attributeBytes: 1500))).AllAccepted);

        var refused = await PushAsync(ingester, "t", TestTraces.Make(id, 1, firstSpanId: 2, attributeBytes: 1500));
        Assert.Equal([RefusalReason.TraceTooLarge], refused.Refusals);
        Assert.Equal([1UL], TestTraces.SpanIds(await ingester.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None)));

        // Once the held bytes are flushed, the trace can grow again (Tempo: limit applies to unflushed bytes).
        await ingester.FlushAsync(CancellationToken.None);
        Assert.True((await PushAsync(ingester, "t", TestTraces.Make(id, 1, firstSpanId: 2, attributeBytes: 1500))).AllAccepted);
        await ingester.FlushAsync(CancellationToken.None);
        Assert.Equal([1UL, 2UL], TestTraces.SpanIds(await reader.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None)).Order());
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task StopAsync_FlushesEverythingAndLeavesEmptyWal()
    {
        var ingester = NewIngester();
        await ingester.Service.StartAsync(CancellationToken.None);
        var id = TestTraces.NewTraceId();
        await PushAsync(ingester, "t", TestTraces.Make(id, 2));
        await ingester.Service.StopAsync();

        Assert.Equal(1, WalFiles());
        Assert.Equal(0L, new FileInfo(Directory.GetFiles(_walPath).Single()).Length - WriteAheadLog.FileHeaderSize);
        var traces = await AllBlockTracesAsync("t");
        Assert.Equal(id, Assert.Single(traces).Id);

        var next = NewIngester();
        var metrics = new MetricsRegistry();
        next = NewIngester(metrics: metrics);
        await next.Service.StartAsync(CancellationToken.None);
        Assert.Equal(0, metrics.Counter("rubato_ingester_replayed_records_total", "").Value());
        await next.Service.StopAsync();
    }

    [Fact]
    public async Task PushSegmentsAsync_ConcurrentWithRepeatedCuts_EveryAckedSpanInBlocksExactlyOnce()
    {
        var ingester = NewIngester();
        await ingester.Service.StartAsync(CancellationToken.None);
        const int pushers = 8;
        const int pushesEach = 300;
        var acked = new System.Collections.Concurrent.ConcurrentDictionary<TraceId, int>();
        using var stop = new CancellationTokenSource();
        int cuts = 0;
        var cutter = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await ingester.FlushAsync(CancellationToken.None);
                Interlocked.Increment(ref cuts);
            }
        });

        var tasks = Enumerable.Range(0, pushers).Select(p => Task.Run(async () =>
        {
            for (int i = 0; i < pushesEach; i++)
            {
                var a = TestTraces.NewTraceId();
                var b = TestTraces.NewTraceId();
                var r = await PushAsync(ingester, "t", TestTraces.Make(a, 2), TestTraces.Make(b, 3));
                Assert.True(r.AllAccepted);
                acked[a] = 2;
                acked[b] = 3;
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        await stop.CancelAsync();
        await cutter;
        await ingester.FlushAsync(CancellationToken.None);
        Assert.True(Volatile.Read(ref cuts) > 1);

        var inBlocks = await AllBlockTracesAsync("t");
        var byId = inBlocks.GroupBy(t => t.Id).ToDictionary(g => g.Key, g => g.Sum(x => x.Trace.SpanCount()));
        Assert.Equal(acked.Count, inBlocks.Count); // no trace written to two blocks
        foreach (var (id, spans) in acked)
        {
            Assert.True(byId.TryGetValue(id, out int found), $"trace {id} acknowledged but not in any block");
            Assert.Equal(spans, found);
        }

        Assert.Equal(0, ingester.HeadCount);
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task StopAsync_DuringConcurrentPushes_EveryAckedSpanFlushedAndWalEmpty()
    {
        var ingester = NewIngester();
        await ingester.Service.StartAsync(CancellationToken.None);
        var acked = new System.Collections.Concurrent.ConcurrentDictionary<TraceId, int>();
        int refused = 0;
        var pushers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            // Push until the ingester refuses (it stopped), bounded in count.
            for (int i = 0; i < 100_000 && Volatile.Read(ref refused) == 0; i++)
            {
                var id = TestTraces.NewTraceId();
                var r = await PushAsync(ingester, "t", TestTraces.Make(id, 2));
                if (r.AllAccepted)
                {
                    acked[id] = 2;
                }
                else
                {
                    Assert.Equal([RefusalReason.Unavailable], r.Refusals);
                    Interlocked.Increment(ref refused);
                }
            }
        })).ToArray();

        await Wait.UntilAsync(() => acked.Count >= 100, TimeSpan.FromSeconds(30), "some pushes to be acknowledged");
        await ingester.Service.StopAsync();
        await Task.WhenAll(pushers);

        Assert.True(Volatile.Read(ref refused) > 0);
        var inBlocks = (await AllBlockTracesAsync("t")).ToDictionary(t => t.Id, t => t.Trace.SpanCount());
        Assert.Equal(acked.Count, inBlocks.Count);
        foreach (var (id, spans) in acked)
        {
            Assert.Equal(spans, inBlocks[id]);
        }

        Assert.Equal(WriteAheadLog.FileHeaderSize, new FileInfo(Assert.Single(Directory.GetFiles(_walPath))).Length);
    }

    [Fact]
    public async Task RunLoop_HeadOverMaxBlockBytes_CutAndFlushedWithoutFlushCall()
    {
        var reader = new BackendTraceReader(_store);
        var ingester = NewIngester(reader, new IngesterConfig { FlushCheckPeriod = TimeSpan.FromMilliseconds(20), MaxBlockBytes = 1000 });
        await ingester.Service.StartAsync(CancellationToken.None);
        var small = TestTraces.NewTraceId();
        await PushAsync(ingester, "t", TestTraces.Make(small, 1));
        Assert.Equal(1, ingester.HeadCount); // under max_block_bytes and max_block_duration: stays

        var big = TestTraces.NewTraceId();
        await PushAsync(ingester, "t", TestTraces.Make(big, 1, attributeBytes: 2000));
        await Wait.UntilAsync(() => ingester.HeadCount == 0, TimeSpan.FromSeconds(10), "the oversized head to be flushed");
        Assert.NotNull(await reader.FindTraceByIdAsync("t", small, TimeRange.All, CancellationToken.None));
        Assert.NotNull(await reader.FindTraceByIdAsync("t", big, TimeRange.All, CancellationToken.None));
        await ingester.Service.StopAsync();
    }

    [Fact]
    public async Task RunLoop_HeadOlderThanMaxBlockDuration_CutAndFlushed()
    {
        var clock = new ManualClock();
        var reader = new BackendTraceReader(_store);
        var ingester = new IngesterImpl(
            new IngesterConfig { FlushCheckPeriod = TimeSpan.FromMilliseconds(20), MaxBlockDuration = TimeSpan.FromMinutes(1) },
            new IngesterOptions { InstanceId = "i", Wal = new WalOptions { Path = _walPath }, Store = _store, BlockFlushed = reader.AddBlock, Time = clock },
            _overrides,
            _metrics);
        await ingester.Service.StartAsync(CancellationToken.None);
        var id = TestTraces.NewTraceId();
        await PushAsync(ingester, "t", TestTraces.Make(id, 1));
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(1, ingester.HeadCount);
        clock.Advance(TimeSpan.FromSeconds(2));
        await Wait.UntilAsync(() => ingester.HeadCount == 0, TimeSpan.FromSeconds(10), "the old head to be flushed");
        Assert.NotNull(await reader.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None));
        await ingester.Service.StopAsync();
    }

    [Theory]
    [InlineData(10_000, 0, 1, 1, 10_000)]
    [InlineData(10_000, 6_000, 3, 1, 2_000)]
    [InlineData(10_000, 6_000, 3, 3, 6_000)]
    [InlineData(0, 6_000, 2, 1, 3_000)]
    [InlineData(0, 0, 1, 1, 0)]
    public void MaxTracesPerUser_GlobalLimit_ConvertedPerIngester(int local, int global, int ingesters, int rf, int expected)
    {
        var ingester = new IngesterImpl(
            new IngesterConfig(),
            new IngesterOptions { InstanceId = "i", Wal = new WalOptions { Path = _walPath }, Store = _store, HealthyIngesters = () => ingesters, ReplicationFactor = rf },
            _overrides,
            _metrics);
        var limits = new TenantLimits();
        limits.Ingestion.MaxTracesPerUser = local;
        limits.Ingestion.MaxGlobalTracesPerUser = global;
        Assert.Equal(expected, ingester.MaxTracesPerUser(limits));
    }

    [Fact]
    public async Task PushSegmentsAsync_BeforeStart_Unavailable()
    {
        var ingester = NewIngester();
        var r = await PushAsync(ingester, "t", TestTraces.Make(TestTraces.NewTraceId(), 1));
        Assert.Equal([RefusalReason.Unavailable], r.Refusals);
    }

    [Fact]
    public void Constructor_InvalidConfig_ThrowsNamingKey()
    {
        var e = Assert.Throws<ArgumentException>(() => NewIngester(config: new IngesterConfig { MaxBlockBytes = 0 }));
        Assert.Contains("ingester.max_block_bytes", e.Message);
    }

    private readonly record struct PushResultSummary(RefusalReason[]? Refusals)
    {
        public bool AllAccepted => Refusals is null || Refusals.All(r => r == RefusalReason.None);
    }
}
