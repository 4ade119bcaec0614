using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Ingester;
using Rubato.Overrides;
using Rubato.Storage.Backend;
using Rubato.Storage.Wal;
using Xunit;

namespace Rubato.Distributor.Tests;

/// <summary>The distributor in front of a real ingester (real WAL, real local object store).</summary>
public sealed class DistributorTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly MetricsRegistry _metrics = new();
    private readonly OverridesConfig _overridesConfig = new();
    private RuntimeOverrides _overrides = null!;
    private Rubato.Ingester.Ingester _ingester = null!;
    private Distributor _distributor = null!;
    private ManualClock _clock = null!;

    public async Task InitializeAsync()
    {
        _overridesConfig.Defaults.Ingestion.RateLimitBytes = 1_000_000;
        _overridesConfig.Defaults.Ingestion.BurstSizeBytes = 1_000_000;
        _overrides = new RuntimeOverrides(_overridesConfig, _metrics);
        _clock = new ManualClock();
        _ingester = new Rubato.Ingester.Ingester(
            new IngesterConfig { FlushCheckPeriod = TimeSpan.FromHours(1) },
            new IngesterOptions
            {
                InstanceId = "ing-1",
                Wal = new WalOptions { Path = _dir.Sub("wal") },
                Store = new LocalObjectStore(_dir.Sub("blocks")),
                Time = _clock,
            },
            _overrides,
            _metrics);
        await _ingester.Service.StartAsync(CancellationToken.None);
        _distributor = new Distributor(new DistributorConfig(), _overrides, _ingester, _metrics, _clock);
    }

    public async Task DisposeAsync()
    {
        await _ingester.Service.StopAsync();
        _overrides.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task PushOtlpAsync_ValidRequest_AcceptsAllSpansAndCountsThem()
    {
        var id = TestTraces.NewTraceId();
        byte[] req = TestTraces.Request(TestTraces.Make(id, 3));
        var r = await _distributor.PushOtlpAsync("t1", req, CancellationToken.None);
        Assert.Equal(PushResult.Ok(3), r);
        Assert.Equal(3, _metrics.Counter("rubato_distributor_spans_received_total", "", "tenant").Value("t1"));
        Assert.Equal(req.Length, _metrics.Counter("rubato_distributor_bytes_received_total", "", "tenant").Value("t1"));
        Assert.Equal(3, TestTraces.SpanIds(await _ingester.FindTraceByIdAsync("t1", id, TimeRange.All, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task PushOtlpAsync_Malformed_InvalidInputAndNothingStored()
    {
        var r = await _distributor.PushOtlpAsync("t1", new byte[] { 0x0A, 0x7F, 0x01 }, CancellationToken.None);
        Assert.Equal(RefusalReason.InvalidInput, r.Reason);
        Assert.Equal(400, r.Reason.HttpStatus());
        Assert.False(string.IsNullOrEmpty(r.Message));
        Assert.Equal(0, r.AcceptedSpans);
        Assert.Equal(0, _ingester.HeadCount);
    }

    [Fact]
    public async Task PushOtlpAsync_ShortTraceId_InvalidInputNamingTheProblem()
    {
        // TracesData{resource_spans{scope_spans{spans{trace_id: 8 bytes, span_id: 8 bytes}}}}
        byte[] span = [0x0A, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x12, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        byte[] scopeSpans = [0x12, (byte)span.Length, .. span];
        byte[] resourceSpans = [0x12, (byte)scopeSpans.Length, .. scopeSpans];
        byte[] req = [0x0A, (byte)resourceSpans.Length, .. resourceSpans];
        var r = await _distributor.PushOtlpAsync("t1", req, CancellationToken.None);
        Assert.Equal(RefusalReason.InvalidInput, r.Reason);
        Assert.Contains("trace", r.Message!, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, _ingester.HeadCount);
    }

    [Fact]
    public async Task PushOtlpAsync_BadTenant_InvalidInput()
    {
        var r = await _distributor.PushOtlpAsync("bad/tenant", TestTraces.Request(TestTraces.Make(TestTraces.NewTraceId(), 1)), CancellationToken.None);
        Assert.Equal(RefusalReason.InvalidInput, r.Reason);
        Assert.Contains("unsupported character '/'", r.Message);
    }

    [Fact]
    public async Task PushOtlpAsync_EmptyRequest_OkWithZeroSpans()
    {
        var r = await _distributor.PushOtlpAsync("t1", Array.Empty<byte>(), CancellationToken.None);
        Assert.Equal(PushResult.Ok(0), r);
    }

    [Fact]
    public async Task PushOtlpAsync_BucketEmpty_RateLimitedWithTempoMessage()
    {
        _overridesConfig.Defaults.Ingestion.RateLimitBytes = 10;
        _overridesConfig.Defaults.Ingestion.BurstSizeBytes = 5000;
        byte[] req = TestTraces.Request(TestTraces.Make(TestTraces.NewTraceId(), 2, attributeBytes: 1500));
        Assert.True(req.Length is > 2500 and < 5000);
        Assert.True((await _distributor.PushOtlpAsync("rl", req, CancellationToken.None)).IsFullSuccess);

        var r = await _distributor.PushOtlpAsync("rl", req, CancellationToken.None);
        Assert.Equal(new PushResult(0, 2, RefusalReason.RateLimited, r.Message), r);
        Assert.Equal(
            $"RATE_LIMITED: ingestion rate limit (local: 10 bytes/s, global: 0 bytes/s, burst: 5000 bytes) exceeded while adding {req.Length} bytes for user rl. consider increasing the limit or reducing ingestion rate.",
            r.Message);
        Assert.Equal(429, r.Reason.HttpStatus());
        Assert.Equal(2, _metrics.Counter("rubato_discarded_spans_total", "", "reason", "tenant").Value("RATE_LIMITED", "rl"));
    }

    [Fact]
    public async Task PushOtlpAsync_LargerThanBurst_RateLimitedBatchSizeMessage()
    {
        _overridesConfig.Defaults.Ingestion.RateLimitBytes = 100;
        _overridesConfig.Defaults.Ingestion.BurstSizeBytes = 200;
        byte[] req = TestTraces.Request(TestTraces.Make(TestTraces.NewTraceId(), 1, attributeBytes: 500));
        var r = await _distributor.PushOtlpAsync("big", req, CancellationToken.None);
        Assert.Equal(RefusalReason.RateLimited, r.Reason);
        Assert.Equal(
            $"RATE_LIMITED: batch size ({req.Length} bytes) exceeds ingestion limit (local: 100 bytes/s, global: 0 bytes/s, burst: 200 bytes) while adding {req.Length} bytes for user big. consider reducing batch size or increasing rate limit.",
            r.Message);
        Assert.Equal(0, _ingester.HeadCount);
    }

    [Fact]
    public async Task PushOtlpAsync_TraceTooLarge_RefusesThatTraceOnlyAndKeepsEarlierData()
    {
        _overridesConfig.Defaults.Global.MaxBytesPerTrace = 3000;
        var big = TestTraces.NewTraceId();
        var small = TestTraces.NewTraceId();
        Assert.True((await _distributor.PushOtlpAsync("tl", TestTraces.Request(TestTraces.Make(big, 1, firstSpanId: 1, attributeBytes: 2000)), CancellationToken.None)).IsFullSuccess);

        // A second part of the big trace would take it past 3000 bytes; the small trace in the same push is fine.
        byte[] req = TestTraces.Request(TestTraces.Make(big, 2, firstSpanId: 10, attributeBytes: 2000), TestTraces.Make(small, 1));
        var r = await _distributor.PushOtlpAsync("tl", req, CancellationToken.None);
        Assert.Equal(1, r.AcceptedSpans);
        Assert.Equal(2, r.RefusedSpans);
        Assert.Equal(RefusalReason.TraceTooLarge, r.Reason);
        Assert.StartsWith("TRACE_TOO_LARGE: max size of trace (3000) exceeded while adding ", r.Message);
        Assert.EndsWith($" bytes to trace {big.ToHex()} for tenant tl", r.Message);
        Assert.Equal(2, _metrics.Counter("rubato_discarded_spans_total", "", "reason", "tenant").Value("TRACE_TOO_LARGE", "tl"));

        Assert.Equal([1UL], TestTraces.SpanIds(await _ingester.FindTraceByIdAsync("tl", big, TimeRange.All, CancellationToken.None)));
        Assert.Single(TestTraces.SpanIds(await _ingester.FindTraceByIdAsync("tl", small, TimeRange.All, CancellationToken.None)));
    }

    [Fact]
    public async Task PushOtlpAsync_LiveTracesExceeded_RefusesNewTracesButNotLiveOnes()
    {
        _overridesConfig.Defaults.Ingestion.MaxTracesPerUser = 2;
        var a = TestTraces.NewTraceId();
        var b = TestTraces.NewTraceId();
        var c = TestTraces.NewTraceId();
        Assert.True((await _distributor.PushOtlpAsync("lt", TestTraces.Request(TestTraces.Make(a, 1), TestTraces.Make(b, 1)), CancellationToken.None)).IsFullSuccess);

        var r = await _distributor.PushOtlpAsync("lt", TestTraces.Request(TestTraces.Make(c, 1), TestTraces.Make(a, 1, firstSpanId: 50)), CancellationToken.None);
        Assert.Equal(new PushResult(1, 1, RefusalReason.LiveTracesExceeded, "LIVE_TRACES_EXCEEDED: max live traces exceeded for tenant lt: per-user traces limit (local: 2 global: 0 actual local: 2) exceeded"), r);
        Assert.Null(await _ingester.FindTraceByIdAsync("lt", c, TimeRange.All, CancellationToken.None));
        Assert.Equal([1UL, 50UL], TestTraces.SpanIds(await _ingester.FindTraceByIdAsync("lt", a, TimeRange.All, CancellationToken.None)).Order());

        // Once the live traces go idle, new traces are taken again.
        _clock.Advance(TimeSpan.FromSeconds(6));
        Assert.True((await _distributor.PushOtlpAsync("lt", TestTraces.Request(TestTraces.Make(c, 1)), CancellationToken.None)).IsFullSuccess);
    }

    [Fact]
    public async Task PushTraceAsync_Model_GoesThroughTheSamePath()
    {
        var id = TestTraces.NewTraceId();
        var r = await _distributor.PushTraceAsync("m", TestTraces.Make(id, 4), CancellationToken.None);
        Assert.Equal(PushResult.Ok(4), r);
        Assert.Equal(4, TestTraces.SpanIds(await _ingester.FindTraceByIdAsync("m", id, TimeRange.All, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task PushOtlpAsync_LongAttribute_TruncatedAndCounted()
    {
        var config = new DistributorConfig { MaxAttributeBytes = 16 };
        var d = new Distributor(config, _overrides, _ingester, _metrics, _clock);
        var id = TestTraces.NewTraceId();
        var r = await d.PushOtlpAsync("tr", TestTraces.Request(TestTraces.Make(id, 1, attributeBytes: 100)), CancellationToken.None);
        Assert.True(r.IsFullSuccess);
        Assert.Equal(1, _metrics.Counter("rubato_distributor_attributes_truncated_total", "", "tenant").Value("tr"));
        var trace = await _ingester.FindTraceByIdAsync("tr", id, TimeRange.All, CancellationToken.None);
        var attr = trace!.AllSpans().Single().Span.Attributes.Single(a => a.Key == "payload");
        Assert.Equal(16, attr.Value.StringValue!.Length);
    }

    [Fact]
    public async Task PushOtlpAsync_IngesterStopped_UnavailableNothingAcknowledged()
    {
        await _ingester.Service.StopAsync();
        var r = await _distributor.PushOtlpAsync("t1", TestTraces.Request(TestTraces.Make(TestTraces.NewTraceId(), 2)), CancellationToken.None);
        Assert.Equal(0, r.AcceptedSpans);
        Assert.Equal(2, r.RefusedSpans);
        Assert.Equal(RefusalReason.Unavailable, r.Reason);
        Assert.Equal(503, r.Reason.HttpStatus());
    }

    [Fact]
    public async Task PushOtlpAsync_ArtificialDelay_HoldsFastPushAndStillAccepts()
    {
        _overridesConfig.Defaults.Ingestion.ArtificialDelay = TimeSpan.FromMilliseconds(300);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = await _distributor.PushOtlpAsync("ad", TestTraces.Request(TestTraces.Make(TestTraces.NewTraceId(), 1)), CancellationToken.None);
        Assert.True(r.IsFullSuccess);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(250), $"push returned after {sw.Elapsed}");

        using var cancelled = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        var r2 = await _distributor.PushOtlpAsync("ad", TestTraces.Request(TestTraces.Make(TestTraces.NewTraceId(), 1)), cancelled.Token);
        Assert.True(r2.IsFullSuccess);
    }

    [Fact]
    public void Constructor_NegativeMaxAttributeBytes_ThrowsNamingKey()
    {
        var e = Assert.Throws<ArgumentException>(() => new Distributor(new DistributorConfig { MaxAttributeBytes = -1 }, _overrides, _ingester, _metrics));
        Assert.Contains("distributor.max_attribute_bytes", e.Message);
    }
}
