using System.Globalization;
using System.Text;
using System.Text.Json;
using Rubato.Integration.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// The metrics-generator end to end: OTLP traffic with a known call graph goes into a real rubato whose generator
/// remote-writes (behind its WAL) into a real Prometheus; Prometheus must then hold exactly the expected span
/// metrics and service-graph edges, also across a Prometheus outage.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class MetricsGeneratorRemoteWriteTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    /// <summary>One span of the generated call graph; durations stay clear of the default bucket bounds.</summary>
    private sealed record SpanSpec(string Id, string? Parent, string Service, string Name, int Kind, int DurationMs, bool ErrorOnEven);

    // user → frontend → {cart, payment → bank}
    private static readonly SpanSpec[] Graph =
    [
        new("a", null, "frontend", "GET /checkout", 2, 400, false),
        new("b", "a", "frontend", "POST /cart", 3, 150, false),
        new("c", "b", "cart", "POST /cart", 2, 120, false),
        new("d", "a", "frontend", "POST /pay", 3, 200, true),
        new("e", "d", "payment", "POST /pay", 2, 180, true),
        new("f", "e", "payment", "charge", 3, 90, false),
        new("g", "f", "bank", "charge", 2, 60, false),
    ];

    private static readonly (string Client, string Server)[] Edges = [("user", "frontend"), ("frontend", "cart"), ("frontend", "payment"), ("payment", "bank")];

    private static readonly double[] Buckets = [0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

    private static string KindName(int kind) => kind == 2 ? "SPAN_KIND_SERVER" : "SPAN_KIND_CLIENT";

    private static string StatusName(SpanSpec s, int trace) => s.ErrorOnEven && trace % 2 == 0 ? "STATUS_CODE_ERROR" : "STATUS_CODE_UNSET";

    private static RubatoConfig GeneratorConfig(PrometheusServer prometheus, string walDir) => new()
    {
        OverridesYaml = "    metrics_generator: { processors: [span-metrics, service-graphs] }\n",
        ExtraYaml = $$"""
            metrics_generator:
              registry:
                collection_interval: 1s
              processor:
                service_graphs:
                  wait: 2s
              storage:
                path: "{{walDir}}"
                remote_write:
                  - url: {{prometheus.RemoteWriteUrl}}
                    name: prom
                    remote_timeout: 5s
                    queue_config: { min_backoff: 50ms, max_backoff: 1s }

            """,
    };

    /// <summary>Pushes <paramref name="traces"/> traces of the call graph over OTLP/HTTP JSON, ending now.</summary>
    private static async Task PushTracesAsync(RubatoProcess rubato, int firstTrace, int traces)
    {
        var resourceSpans = new List<object>();
        long endNs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        for (int t = firstTrace; t < firstTrace + traces; t++)
        {
            string traceId = (0x5b8e0000_00000000UL + (ulong)t).ToString("x16", CultureInfo.InvariantCulture) + "00000000000000" + (t % 256).ToString("x2", CultureInfo.InvariantCulture);
            foreach (var s in Graph)
            {
                long start = endNs - s.DurationMs * 1_000_000L;
                var span = new Dictionary<string, object>
                {
                    ["traceId"] = traceId,
                    ["spanId"] = SpanId(t, s.Id),
                    ["name"] = s.Name,
                    ["kind"] = s.Kind,
                    ["startTimeUnixNano"] = start.ToString(CultureInfo.InvariantCulture),
                    ["endTimeUnixNano"] = endNs.ToString(CultureInfo.InvariantCulture),
                    ["status"] = new Dictionary<string, object> { ["code"] = StatusName(s, t) == "STATUS_CODE_ERROR" ? 2 : 0 },
                };
                if (s.Parent is not null)
                {
                    span["parentSpanId"] = SpanId(t, s.Parent);
                }

                resourceSpans.Add(new
                {
                    resource = new { attributes = new[] { new { key = "service.name", value = new { stringValue = s.Service } } } },
                    scopeSpans = new[] { new { scope = new { name = "it" }, spans = new[] { span } } },
                });
            }
        }

        byte[] body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { resourceSpans }));
        var (status, text) = await rubato.PostOtlpHttpAsync(body, "application/json");
        Assert.True(status == 200, $"OTLP push answered {status}: {text}");
    }

    private static string SpanId(int trace, string id) => ((ulong)(trace + 1) << 8 | id[0]).ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>Expected traces_spanmetrics_calls_total by "service|span_name|span_kind|status_code" after <paramref name="traces"/> traces.</summary>
    private static Dictionary<string, double> ExpectedCalls(int traces)
    {
        var d = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int t = 0; t < traces; t++)
        {
            foreach (var s in Graph)
            {
                string key = $"{s.Service}|{s.Name}|{KindName(s.Kind)}|{StatusName(s, t)}";
                d[key] = d.GetValueOrDefault(key) + 1;
            }
        }

        return d;
    }

    /// <summary>Expected traces_spanmetrics_latency_bucket by "service|span_name|span_kind|status_code|le".</summary>
    private static Dictionary<string, double> ExpectedBuckets(int traces)
    {
        var d = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int t = 0; t < traces; t++)
        {
            foreach (var s in Graph)
            {
                string series = $"{s.Service}|{s.Name}|{KindName(s.Kind)}|{StatusName(s, t)}";
                foreach (var le in Buckets.Select(b => b.ToString(CultureInfo.InvariantCulture)).Append("+Inf"))
                {
                    bool inBucket = le == "+Inf" || s.DurationMs / 1000.0 <= double.Parse(le, CultureInfo.InvariantCulture);
                    string key = series + "|" + le;
                    d[key] = d.GetValueOrDefault(key) + (inBucket ? 1 : 0);
                }
            }
        }

        return d;
    }

    private static async Task<Dictionary<string, double>> ActualAsync(PrometheusServer prometheus, string metric, params string[] labels)
    {
        var vector = await prometheus.VectorAsync(metric);
        return vector.ToDictionary(v => string.Join('|', labels.Select(l => NormalizeLe(l, v.Labels.GetValueOrDefault(l, "")))), v => v.Value, StringComparer.Ordinal);
    }

    private static string NormalizeLe(string label, string value) =>
        label == "le" && value != "+Inf" ? double.Parse(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture) : value;

    private static string Diff(Dictionary<string, double> expected, Dictionary<string, double>? actual) =>
        actual is null ? "no answer yet" : string.Join("; ", expected.Keys.Union(actual.Keys).Where(k => expected.GetValueOrDefault(k, -1) != actual.GetValueOrDefault(k, -1))
            .Take(12).Select(k => $"{k}: expected {expected.GetValueOrDefault(k, double.NaN)}, got {actual.GetValueOrDefault(k, double.NaN)}"));

    private static async Task WaitForEqualAsync(PrometheusServer prometheus, Dictionary<string, double> expected, string metric, params string[] labels)
    {
        Dictionary<string, double>? last = null;
        await Conditions.UntilAsync(
            async () =>
            {
                last = await ActualAsync(prometheus, metric, labels);
                return last.Count == expected.Count && expected.All(kv => last.TryGetValue(kv.Key, out var v) && v == kv.Value);
            },
            metric + " to match the generated traffic",
            Patience,
            () => Diff(expected, last));
    }

    private static async Task AssertCallGraphAsync(PrometheusServer prometheus, int traces)
    {
        await WaitForEqualAsync(prometheus, ExpectedCalls(traces), "traces_spanmetrics_calls_total", "service", "span_name", "span_kind", "status_code");
        await WaitForEqualAsync(prometheus, ExpectedBuckets(traces), "traces_spanmetrics_latency_bucket", "service", "span_name", "span_kind", "status_code", "le");
        var edges = Edges.ToDictionary(e => $"{e.Client}|{e.Server}", _ => (double)traces, StringComparer.Ordinal);
        await WaitForEqualAsync(prometheus, edges, "traces_service_graph_request_total", "client", "server");
    }

    /// <summary>Sum of a metric on rubato's /metrics (over all label sets whose text contains <paramref name="labelFilter"/>).</summary>
    private static async Task<double> RubatoMetricAsync(RubatoProcess rubato, string name, string labelFilter = "")
    {
        string text = await rubato.Http.GetStringAsync("/metrics");
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && (line.Length == name.Length || line[name.Length] is '{' or ' ') && line.Contains(labelFilter, StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }

    [Fact]
    public async Task Generator_KnownCallGraph_PrometheusHoldsExactSpanMetricsAndServiceGraph()
    {
        await using var prometheus = await PrometheusServer.StartAsync();
        string walDir = Directory.CreateTempSubdirectory("rubato-it-gen-wal-").FullName;
        try
        {
            await using var rubato = await RubatoProcess.StartAsync(GeneratorConfig(prometheus, walDir), output);
            await PushTracesAsync(rubato, 0, 6);

            await AssertCallGraphAsync(prometheus, 6);
            Assert.Equal(0, await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_failed_total"));
        }
        finally
        {
            Directory.Delete(walDir, recursive: true);
        }
    }

    [Fact]
    public async Task Generator_PrometheusOutage_NoSampleLost()
    {
        await using var prometheus = await PrometheusServer.StartAsync();
        string walDir = Directory.CreateTempSubdirectory("rubato-it-gen-wal-").FullName;
        try
        {
            await using var rubato = await RubatoProcess.StartAsync(GeneratorConfig(prometheus, walDir), output);
            await PushTracesAsync(rubato, 0, 4);
            await AssertCallGraphAsync(prometheus, 4);

            // The outage: Prometheus down while traffic and collections go on for a few collection intervals.
            await prometheus.StopAsync();
            double collections = await RubatoMetricAsync(rubato, "tempo_metrics_generator_registry_collections_total");
            await PushTracesAsync(rubato, 4, 4);
            await Conditions.UntilAsync(async () => await RubatoMetricAsync(rubato, "tempo_metrics_generator_registry_collections_total") >= collections + 4, "4 collections during the outage", Patience);
            await PushTracesAsync(rubato, 8, 4);
            await Conditions.UntilAsync(async () => await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_retried_total") > 0, "a failed send during the outage", Patience);
            double pendingAtRestart = await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_pending");
            Assert.True(pendingAtRestart > 0, "nothing was pending during the outage");

            await prometheus.RestartAsync();
            await AssertCallGraphAsync(prometheus, 12);

            // Nothing is missing. Every sample appended to the WAL (one per series per collection, before, during
            // and after the outage) is acknowledged: wait for a /metrics snapshot where the two counts meet.
            await Conditions.UntilAsync(
                async () =>
                {
                    double appended = await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_in_total");
                    return appended > 0 && appended == await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_total");
                },
                "every appended sample to be acknowledged",
                Patience);

            // And Prometheus holds exactly the acknowledged samples (collections go on meanwhile, so it lies between
            // the acknowledged count before and after the query).
            double acknowledgedBefore = await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_total");
            double stored = (await prometheus.RawSamplesAsync("{__name__=~\".+\"}", TimeSpan.FromHours(1))).Sum(s => s.Samples.Count);
            double acknowledgedAfter = await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_total");
            output.WriteLine($"acknowledged {acknowledgedBefore}..{acknowledgedAfter}, stored {stored}, pending at restart {pendingAtRestart}");
            Assert.InRange(stored, acknowledgedBefore, acknowledgedAfter);
            Assert.Equal(0, await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_failed_total"));
            Assert.Equal(0, await RubatoMetricAsync(rubato, "prometheus_remote_storage_samples_dropped_total"));
        }
        finally
        {
            Directory.Delete(walDir, recursive: true);
        }
    }
}
