using System.Globalization;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Integration.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>The metrics-generator in the real rubato: per-tenant processors from the runtime overrides file.</summary>
public sealed class MetricsGeneratorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Push_TenantWithProcessors_GeneratesSeriesOnlyForThatTenant()
    {
        var config = new RubatoConfig
        {
            MultitenancyEnabled = true,
            PerTenantOverridesYaml = """
                overrides:
                  "gen":
                    metrics_generator:
                      processors: [service-graphs, span-metrics]
                """,
            ExtraYaml = """
                metrics_generator:
                  registry:
                    collection_interval: 1s
                    inject_tenant_id_as: __tempo_tenant

                """,
        };
        await using var server = await RubatoProcess.StartAsync(config, output);

        byte[] body = ClientServerPair();
        Assert.Equal(200, (await server.PostOtlpHttpAsync(body, tenant: "gen")).Status);
        Assert.Equal(200, (await server.PostOtlpHttpAsync(body, tenant: "plain")).Status);

        // Span metrics: 2 series (frontend client, cart server) × (calls + size + latency 14 buckets + +Inf + sum + count);
        // service graphs: one edge × (request_total + server and client histograms of 8 buckets + +Inf + sum + count).
        const double expectedSeries = (2 * (1 + 1 + 17)) + (1 + (2 * 11));
        string metrics = "";
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            metrics = await server.Http.GetStringAsync("/metrics");
            if (Sample(metrics, "tempo_metrics_generator_registry_active_series", "gen") == expectedSeries
                && Sample(metrics, "tempo_metrics_generator_registry_collections_total", "gen") >= 1)
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.Equal(expectedSeries, Sample(metrics, "tempo_metrics_generator_registry_active_series", "gen"));
        Assert.Equal(2, Sample(metrics, "tempo_metrics_generator_spans_received_total", "gen"));
        Assert.True(Sample(metrics, "tempo_metrics_generator_registry_collections_total", "gen") >= 1, metrics);
        Assert.Null(Sample(metrics, "tempo_metrics_generator_spans_received_total", "plain"));
        Assert.Null(Sample(metrics, "tempo_metrics_generator_registry_active_series", "plain"));
    }

    /// <summary>One OTLP request: a frontend client span and the cart server span it called.</summary>
    private static byte[] ClientServerPair()
    {
        ulong now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;
        var traceId = new TraceId(0x1234_5678_9ABC_DEF0UL, (ulong)Random.Shared.NextInt64(1, long.MaxValue));
        var trace = new Trace();
        trace.ResourceSpans.Add(Resource("frontend", new Span
        {
            TraceId = traceId, SpanId = new SpanId(1), Name = "GET /cart", Kind = SpanKind.Client,
            StartTimeUnixNano = now - 30_000_000, EndTimeUnixNano = now,
        }));
        trace.ResourceSpans.Add(Resource("cart", new Span
        {
            TraceId = traceId, SpanId = new SpanId(2), ParentSpanId = new SpanId(1), Name = "GET /cart", Kind = SpanKind.Server,
            StartTimeUnixNano = now - 20_000_000, EndTimeUnixNano = now - 5_000_000,
        }));
        return OtlpProto.EncodeTrace(trace);
    }

    private static ResourceSpans Resource(string service, Span span)
    {
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
        var ss = new ScopeSpans();
        ss.Spans.Add(span);
        rs.ScopeSpans.Add(ss);
        return rs;
    }

    /// <summary>The value of <c>name{tenant="..."}</c> in Prometheus text, or null when absent.</summary>
    private static double? Sample(string text, string name, string tenant)
    {
        string prefix = $"{name}{{tenant=\"{tenant}\"}} ";
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
            }
        }

        return null;
    }
}
