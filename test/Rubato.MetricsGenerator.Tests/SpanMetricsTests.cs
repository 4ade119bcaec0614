using Rubato.Common.Model;
using Xunit;

namespace Rubato.MetricsGenerator.Tests;

public sealed class SpanMetricsTests
{
    private static readonly double[] Buckets = [0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

    [Fact]
    public void Process_GeneratedSpans_CallsAndBucketsMatchIndependentCount()
    {
        using var f = new GeneratorFixture(["span-metrics"]);
        var rnd = new Random(42);
        string[] names = ["GET /a", "GET /b", "POST /c"];
        SpanKind[] kinds = [SpanKind.Server, SpanKind.Client, SpanKind.Internal];
        StatusCode[] statuses = [StatusCode.Unset, StatusCode.Ok, StatusCode.Error];
        var specs = new List<SpanSpec>();
        for (int i = 0; i < 300; i++)
        {
            // Durations spread over the bucket range, including exact bucket bounds and zero.
            ulong duration = (i % 10) switch
            {
                0 => 0,
                1 => 4_000_000, // exactly the 0.004 bound: counts in le="0.004"
                2 => 20_000_000_000, // above 16.384: only +Inf
                _ => (ulong)rnd.NextInt64(1, 17_000_000_000),
            };
            specs.Add(new SpanSpec(
                i % 2 == 0 ? "svc-a" : "svc-b",
                names[rnd.Next(names.Length)],
                kinds[rnd.Next(kinds.Length)],
                Spans.NewTraceId(),
                (ulong)i + 1,
                0,
                f.Clock.NowNanos - 1_000_000_000UL - duration,
                duration,
                statuses[rnd.Next(statuses.Length)]));
        }

        // Several pushes, as the distributor would forward them.
        foreach (var chunk in specs.Chunk(37))
        {
            f.Push("t1", chunk);
        }

        var samples = f.Collect("t1");
        var groups = specs.GroupBy(s => (s.Service, s.Name, s.Kind, s.Status)).ToList();
        Assert.Equal(groups.Count, samples.Count(s => s.Labels.Any(l => l.Value == "traces_spanmetrics_calls_total") && s.Value > 0));
        foreach (var g in groups)
        {
            var labels = new[]
            {
                ("service", g.Key.Service),
                ("span_name", g.Key.Name),
                ("span_kind", "SPAN_KIND_" + g.Key.Kind.ToString().ToUpperInvariant()),
                ("status_code", "STATUS_CODE_" + g.Key.Status.ToString().ToUpperInvariant()),
            };
            Assert.Equal(g.Count(), GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", labels));
            Assert.Equal(g.Count(), GeneratorFixture.Value(samples, "traces_spanmetrics_latency_count", labels));
            Assert.Equal(g.Sum(s => s.DurationNanos / 1e9), GeneratorFixture.Value(samples, "traces_spanmetrics_latency_sum", labels)!.Value, 6);
            foreach (var bound in Buckets)
            {
                int expected = g.Count(s => s.DurationNanos / 1e9 <= bound);
                string le = bound.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(expected, GeneratorFixture.Value(samples, "traces_spanmetrics_latency_bucket", [.. labels, ("le", le)]));
            }

            Assert.Equal(g.Count(), GeneratorFixture.Value(samples, "traces_spanmetrics_latency_bucket", [.. labels, ("le", "+Inf")]));
        }
    }

    [Fact]
    public void Process_NewSeries_FirstCollectedAsZeroOneSecondBeforeTheMinute()
    {
        using var f = new GeneratorFixture(["span-metrics-count"]);
        f.Push("t1", Server("svc", "op", f.Clock.NowNanos - 1000));

        var first = f.Collect("t1");
        var second = f.Collect("t1");

        // Clock is 00:00:30 → the initial zero is at 23:59:59 of the previous day (end of the last minute).
        long zeroAt = new DateTimeOffset(2025, 12, 31, 23, 59, 59, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var calls = first.Where(s => s.Labels.Any(l => l.Value == "traces_spanmetrics_calls_total")).ToList();
        Assert.Equal(2, calls.Count);
        Assert.Equal((zeroAt, 0.0), (calls[0].TimestampMs, calls[0].Value));
        Assert.Equal((f.Clock.NowMs, 1.0), (calls[1].TimestampMs, calls[1].Value));
        Assert.Single(second, s => s.Labels.Any(l => l.Value == "traces_spanmetrics_calls_total"));
        Assert.DoesNotContain(second, s => s.Labels.Any(l => l.Value == "traces_spanmetrics_latency_count"));
    }

    [Fact]
    public void Process_Dimensions_SanitizedResourceFirstAndCollisionPrefixed()
    {
        using var f = new GeneratorFixture(
            ["span-metrics-count"],
            c =>
            {
                c.Processor.SpanMetrics.Dimensions = ["http.method", "deployment.environment", "service", "http.status_code", "missing.attr"];
                c.Processor.SpanMetrics.IntrinsicDimensions.StatusMessage = true;
            });
        var spec = Server("svc", "op", f.Clock.NowNanos - 1000) with
        {
            Status = StatusCode.Error,
            StatusMessage = "boom",
            Attributes = [("http.method", AnyValue.String("GET")), ("http.status_code", AnyValue.Int(503)), ("deployment.environment", AnyValue.String("span-level"))],
            ResourceAttributes = [("deployment.environment", AnyValue.String("prod")), ("service", AnyValue.Bool(true))],
        };
        f.Push("t1", spec);

        var calls = f.Collect("t1").Last(s => s.Labels.Any(l => l.Value == "traces_spanmetrics_calls_total"));

        Assert.Equal(
            [
                ("__name__", "traces_spanmetrics_calls_total"), ("__service", "true"), ("deployment_environment", "prod"), ("http_method", "GET"),
                ("http_status_code", "503"), ("service", "svc"), ("span_kind", "SPAN_KIND_SERVER"), ("span_name", "op"),
                ("status_code", "STATUS_CODE_ERROR"), ("status_message", "boom"),
            ],
            calls.Labels.Select(l => (l.Name, l.Value)).ToArray());
    }

    [Fact]
    public void Process_SizeTotal_AddsEachSpansEncodedSize()
    {
        using var f = new GeneratorFixture(["span-metrics-size"]);
        var one = Server("svc", "op", f.Clock.NowNanos - 1000);
        f.Push("t1", one);
        double single = GeneratorFixture.Value(f.Collect("t1"), "traces_spanmetrics_size_total", Intrinsics("svc", "op"))!.Value;

        f.Push("t1", one with { SpanId = 99 }, one with { SpanId = 98, Attributes = [("k", AnyValue.String(new string('x', 100)))] });
        double total = GeneratorFixture.Value(f.Collect("t1"), "traces_spanmetrics_size_total", Intrinsics("svc", "op"))!.Value;

        // Span.attributes entry: tag + length (2) + KeyValue{key: 1 + 1 + 1, value: 1 + 1 + AnyValue{1 + 1 + 100}} = 109 bytes.
        Assert.True(single > 30, $"span size {single}");
        Assert.Equal((3 * single) + 109, total);
    }

    [Fact]
    public void Process_TargetInfo_FromResourceAttributesWithJobAndInstance()
    {
        using var f = new GeneratorFixture(["span-metrics-count"], c => c.Processor.SpanMetrics.EnableTargetInfo = true);
        var spec = Server("api", "op", f.Clock.NowNanos - 1000) with
        {
            ResourceAttributes = [("service.namespace", AnyValue.String("shop")), ("service.instance.id", AnyValue.String("pod-1")), ("k8s.pod.name", AnyValue.String("api-7d"))],
        };
        f.Push("t1", spec);

        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_target_info", ("instance", "pod-1"), ("job", "shop/api"), ("k8s_pod_name", "api-7d")));
        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", [.. Intrinsics("api", "op"), ("job", "shop/api"), ("instance", "pod-1")]));
    }

    [Fact]
    public void Process_SpanEndedBeforeSlack_DroppedAndCounted()
    {
        using var f = new GeneratorFixture(["span-metrics-count"]);
        ulong now = f.Clock.NowNanos;
        f.Push(
            "t1",
            Server("svc", "fresh", now - 29_000_000_000UL),
            Server("svc", "old", now - 31_000_000_000UL - 5),
            Server("svc", "future", now + 32_000_000_000UL)); // starts ~32s ahead: beyond the slack too

        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", Intrinsics("svc", "fresh")));
        Assert.Null(GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", Intrinsics("svc", "old")));
        Assert.Null(GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", Intrinsics("svc", "future")));
        var discarded = f.Metrics.Counter("tempo_metrics_generator_spans_discarded_total", "", "tenant", "reason");
        Assert.Equal(2, discarded.Value("t1", "outside_metrics_ingestion_slack"));
        Assert.Equal(3, f.Metrics.Counter("tempo_metrics_generator_spans_received_total", "", "tenant").Value("t1"));
    }

    [Fact]
    public void Process_TenantMaxActiveSeries_ExtraSeriesFoldIntoOverflowAndAreCounted()
    {
        using var f = new GeneratorFixture(["span-metrics-count"], limits: l => l.MetricsGenerator.MaxActiveSeries = 2);
        f.Push("t1", [.. Enumerable.Range(0, 5).Select(i => Server("svc", "op" + i, f.Clock.NowNanos - 1000))]);

        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", Intrinsics("svc", "op0")));
        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", Intrinsics("svc", "op1")));
        Assert.Equal(3, GeneratorFixture.Value(samples, "traces_spanmetrics_calls_total", ("metric_overflow", "true")));
        Assert.Equal(3, f.Metrics.Counter("tempo_metrics_generator_registry_series_limited_total", "", "tenant").Value("t1"));
        Assert.Equal(3, f.Metrics.Gauge("tempo_metrics_generator_registry_active_series", "", "tenant").Value("t1"));
        Assert.Equal(2, f.Metrics.Gauge("tempo_metrics_generator_registry_max_active_series", "", "tenant").Value("t1"));
    }

    [Fact]
    public void Process_TenantWithoutProcessors_GeneratesNothing()
    {
        using var f = new GeneratorFixture([]);
        f.Push("t1", Server("svc", "op", f.Clock.NowNanos - 1000));

        Assert.Empty(f.Collect("t1"));
        Assert.Equal(0, f.Metrics.Counter("tempo_metrics_generator_spans_received_total", "", "tenant").Value("t1"));
    }

    internal static SpanSpec Server(string service, string name, ulong endNanos) =>
        new(service, name, SpanKind.Server, Spans.NewTraceId(), 1, 0, endNanos - 1_000_000, 1_000_000);

    internal static (string, string)[] Intrinsics(string service, string name, string kind = "SPAN_KIND_SERVER", string status = "STATUS_CODE_UNSET") =>
        [("service", service), ("span_name", name), ("span_kind", kind), ("status_code", status)];
}
