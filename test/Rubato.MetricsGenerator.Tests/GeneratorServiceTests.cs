using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Distributor;
using Rubato.Ingester;
using Rubato.Overrides;
using Rubato.Storage.Backend;
using Rubato.Storage.Wal;
using Xunit;

namespace Rubato.MetricsGenerator.Tests;

public sealed class GeneratorServiceTests
{
    [Fact]
    public void Forward_QueueFull_DropsAndCountsWithoutBlocking()
    {
        using var f = new GeneratorFixture(["span-metrics"], c => c.QueueSize = 2);
        var payload = Spans.Encode(SpanMetricsTests.Server("svc", "op", f.Clock.NowNanos - 1000), SpanMetricsTests.Server("svc", "op", f.Clock.NowNanos - 1000));
        var segment = new TraceSegment(default, payload, 2, 0, 0);

        // The service is not running, so nothing drains the queue.
        for (int i = 0; i < 5; i++)
        {
            f.Generator.Forward("t1", [segment]);
        }

        Assert.Equal(2, f.Generator.QueuedPushes);
        Assert.Equal(6, f.Metrics.Counter("tempo_metrics_generator_spans_discarded_total", "", "tenant", "reason").Value("t1", "queue_full"));
    }

    [Fact]
    public void Forward_QueueMaxBytes_DropsPushThatWouldExceedIt()
    {
        using var f = new GeneratorFixture(["span-metrics"]);
        var payload = Spans.Encode(SpanMetricsTests.Server("svc", "op", f.Clock.NowNanos - 1000));
        using var small = new GeneratorFixture(["span-metrics"], c => c.QueueMaxBytes = (2 * payload.Length) + 1);
        var segment = new TraceSegment(default, payload, 1, 0, 0);

        for (int i = 0; i < 3; i++)
        {
            small.Generator.Forward("t1", [segment]);
        }

        Assert.Equal(2, small.Generator.QueuedPushes);
        Assert.Equal(2 * payload.Length, small.Generator.QueuedBytes);
        Assert.Equal(1, small.Metrics.Counter("tempo_metrics_generator_spans_discarded_total", "", "tenant", "reason").Value("t1", "queue_full"));
    }

    [Fact]
    public void Forward_TenantWithoutProcessors_NotQueued()
    {
        using var f = new GeneratorFixture([]);
        f.Generator.Forward("t1", [new TraceSegment(default, Spans.Encode(SpanMetricsTests.Server("svc", "op", f.Clock.NowNanos)), 1, 0, 0)]);

        Assert.Equal(0, f.Generator.QueuedPushes);
    }

    [Fact]
    public async Task Service_ForwardedSpans_ProcessedAndCollectedOnStop()
    {
        var overridesConfig = new OverridesConfig();
        overridesConfig.Defaults.MetricsGenerator.Processors = ["span-metrics"];
        var metrics = new MetricsRegistry();
        using var overrides = new RuntimeOverrides(overridesConfig, metrics);
        var config = new MetricsGeneratorConfig();
        config.Registry.CollectionInterval = TimeSpan.FromHours(1); // only the final collection runs
        var generator = new MetricsGenerator(config, overrides, metrics);
        await generator.Service.StartAsync(CancellationToken.None);

        ulong now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;
        byte[] payload = Spans.Encode(SpanMetricsTests.Server("svc", "op", now), SpanMetricsTests.Server("svc", "op2", now));
        generator.Forward("t1", [new TraceSegment(default, payload, 2, 0, 0)]);
        Array.Clear(payload); // the distributor's buffer is reused after the call: the generator must have copied it

        var received = metrics.Counter("tempo_metrics_generator_spans_received_total", "", "tenant");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.Value("t1") < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await generator.Service.StopAsync();

        Assert.Equal(2, received.Value("t1"));
        Assert.Equal(1, metrics.Counter("tempo_metrics_generator_registry_collections_total", "", "tenant").Value("t1"));
        // Two span names → two series each of calls and size, and of the 14-bucket latency histogram (14 + 1 + 2).
        Assert.Equal(2 + 2 + (2 * 17), metrics.Gauge("tempo_metrics_generator_registry_active_series", "", "tenant").Value("t1"));
    }

    [Fact]
    public async Task Distributor_OnlyAcceptedSegments_ReachTheGenerator()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rubato-gen-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var metrics = new MetricsRegistry();
        var overridesConfig = new OverridesConfig();
        overridesConfig.Defaults.MetricsGenerator.Processors = ["span-metrics-count"];
        overridesConfig.Defaults.Ingestion.MaxTracesPerUser = 1; // the second trace of the push is refused
        using var overrides = new RuntimeOverrides(overridesConfig, metrics);
        var ingester = new Rubato.Ingester.Ingester(
            new IngesterConfig { FlushCheckPeriod = TimeSpan.FromHours(1) },
            new IngesterOptions { InstanceId = "ing", Wal = new WalOptions { Path = Path.Combine(dir, "wal") }, Store = new LocalObjectStore(Path.Combine(dir, "blocks")) },
            overrides,
            metrics);
        await ingester.Service.StartAsync(CancellationToken.None);
        try
        {
            var generator = new MetricsGenerator(new MetricsGeneratorConfig(), overrides, metrics);
            var distributor = new Rubato.Distributor.Distributor(new DistributorConfig(), overrides, ingester, metrics, generator: generator);
            ulong now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;
            var accepted = SpanMetricsTests.Server("svc", "accepted", now);
            var refused = SpanMetricsTests.Server("svc", "refused", now);

            var result = await distributor.PushOtlpAsync("t1", Spans.Encode(accepted, refused), CancellationToken.None);

            Assert.Equal((1, 1), (result.AcceptedSpans, result.RefusedSpans));
            Assert.Equal(1, generator.QueuedPushes);
            await generator.Service.StartAsync(CancellationToken.None);
            await generator.Service.StopAsync(); // drains the queue and collects
            var calls = generator.RegistryOf("t1")!.Counter(SpanMetricsProcessor.CallsTotal, ["service", "span_name", "span_kind", "status_code"]);
            Assert.Equal(1, calls.ValueOf("svc", "accepted", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"));
            Assert.Null(calls.ValueOf("svc", "refused", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"));
        }
        finally
        {
            await ingester.Service.StopAsync();
            Directory.Delete(dir, recursive: true);
        }
    }
}
