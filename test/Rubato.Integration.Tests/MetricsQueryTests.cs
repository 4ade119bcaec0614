using System.Globalization;
using System.Text.Json;
using Rubato.Common.Otlp;
using Rubato.Grpc;
using Rubato.Integration.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// TraceQL metrics against the real server: generated spans are pushed over OTLP/HTTP, then query_range over HTTP
/// and the streaming gRPC API must equal values computed here from the generated spans — while the data is live,
/// after <c>/flush</c> (data in blocks) and after a restart.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class MetricsQueryTests(ITestOutputHelper output)
{
    private const long Sec = 1_000_000_000;
    private static readonly string[] Services = ["alpha", "beta", "gamma"];

    private sealed record G(string Service, int Kind, long Start, long Duration);

    [Fact]
    public async Task QueryRange_LiveFlushedRestarted_EqualsIndependentValues()
    {
        await using var server = await RubatoProcess.StartAsync(output: output);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        long start = ((now - 1800) / 60 * 60) * Sec;
        long end = start + (1500 * Sec);
        var spans = await PushAsync(server, start, end);

        var queries = new (string Query, long Step, Func<G, bool> Filter, Func<G, string> Key, Func<IEnumerable<G>, double> Value)[]
        {
            ("{ } | count_over_time() by (resource.service.name)", 60, _ => true, s => $"{{resource.service.name=\"{s.Service}\"}}", g => g.Count()),
            ("{ kind = server } | rate()", 300, s => s.Kind == 2, _ => "{__name__=\"rate\"}", g => g.Count() / 300.0),
            ("{ } | max_over_time(duration) by (resource.service.name)", 120, _ => true, s => $"{{resource.service.name=\"{s.Service}\"}}", g => g.Max(s => s.Duration) / 1e9),
            ("{ } | sum_over_time(duration) by (kind)", 300, _ => true, s => $"{{kind=\"{KindText(s.Kind)}\"}}", g => g.Any() ? g.Sum(s => s.Duration) / 1e9 : double.NaN),
        };

        async Task CheckAllAsync(string phase)
        {
            foreach (var (query, step, filter, key, value) in queries)
            {
                var expected = Expected(spans.Where(filter), start, end, step * Sec, key, value);
                var http = await QueryHttpAsync(server, query, start, end, step);
                AssertSame(expected, http, $"{phase}, HTTP, {query}");
                var grpc = await QueryGrpcAsync(server, query, start, end, step * Sec);
                AssertSame(expected, grpc, $"{phase}, gRPC, {query}");
            }

            output.WriteLine($"{phase}: {queries.Length} queries equal over HTTP and gRPC");
        }

        await CheckAllAsync("live");

        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        await CheckAllAsync("after /flush");
        Assert.True(await TotalBlocksAsync(server, start, end) > 0, "after /flush the metrics query should read blocks");

        await server.RestartAsync();
        await CheckAllAsync("after restart");

        // Bad requests are 400 with a message naming the problem.
        using var bad = await server.Http.GetAsync("/api/metrics/query_range?q=" + Uri.EscapeDataString("{ status = error }"));
        Assert.Equal(400, (int)bad.StatusCode);
        Assert.Contains("not a metrics query", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static string KindText(int kind) => kind switch { 1 => "internal", 2 => "server", _ => "client" };

    /// <summary>Pushes 150 traces of 4 spans with start times spread over (start, end); returns the spans.</summary>
    private static async Task<List<G>> PushAsync(RubatoProcess server, long start, long end)
    {
        var rnd = new Random(42);
        var all = new List<G>();
        for (int batch = 0; batch < 5; batch++)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteStartArray("resourceSpans");
                for (int t = 0; t < 30; t++)
                {
                    string traceId = Convert.ToHexStringLower(BitConverter.GetBytes(rnd.NextInt64())) + Convert.ToHexStringLower(BitConverter.GetBytes(rnd.NextInt64()));
                    long traceStart = start + Sec + rnd.NextInt64(0, end - start - (10 * Sec));
                    foreach (var svc in Services)
                    {
                        w.WriteStartObject();
                        w.WriteStartObject("resource");
                        w.WriteStartArray("attributes");
                        w.WriteStartObject();
                        w.WriteString("key", "service.name");
                        w.WriteStartObject("value");
                        w.WriteString("stringValue", svc);
                        w.WriteEndObject();
                        w.WriteEndObject();
                        w.WriteEndArray();
                        w.WriteEndObject();
                        w.WriteStartArray("scopeSpans");
                        w.WriteStartObject();
                        w.WriteStartArray("spans");
                        int n = svc == "alpha" ? 2 : 1;
                        for (int k = 0; k < n; k++)
                        {
                            int kind = rnd.Next(1, 4);
                            long s = traceStart + rnd.NextInt64(0, 5 * Sec);
                            long d = rnd.NextInt64(1_000, 3 * Sec);
                            w.WriteStartObject();
                            w.WriteString("traceId", traceId);
                            w.WriteString("spanId", rnd.NextInt64(1, long.MaxValue).ToString("x16", CultureInfo.InvariantCulture));
                            w.WriteString("name", "op");
                            w.WriteNumber("kind", kind);
                            w.WriteString("startTimeUnixNano", s.ToString(CultureInfo.InvariantCulture));
                            w.WriteString("endTimeUnixNano", (s + d).ToString(CultureInfo.InvariantCulture));
                            w.WriteEndObject();
                            all.Add(new G(svc, kind, s, d));
                        }

                        w.WriteEndArray();
                        w.WriteEndObject();
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            var (status, body) = await server.PostOtlpHttpAsync(ms.ToArray(), "application/json");
            Assert.True(status == 200, $"push answered {status}: {body}");
        }

        return all;
    }

    /// <summary>Expected samples: grid (start − step, end] in step buckets, right-closed, stamped at the right edge.</summary>
    private static Dictionary<string, SortedDictionary<long, double>> Expected(IEnumerable<G> spans, long start, long end, long step,
        Func<G, string> key, Func<IEnumerable<G>, double> value)
    {
        long first = (start / step * step) - step;
        long last = (end + step - 1) / step * step;
        int n = (int)((last - first) / step);
        var result = new Dictionary<string, SortedDictionary<long, double>>(StringComparer.Ordinal);
        foreach (var series in spans.GroupBy(key))
        {
            var byInterval = series.Where(s => s.Start > first && s.Start <= last).GroupBy(s => (int)((s.Start - first + step - 1) / step) - 1).ToDictionary(g => g.Key);
            var samples = new SortedDictionary<long, double>();
            for (int i = 0; i < n; i++)
            {
                long ts = (first + ((i + 1) * step)) / 1_000_000;
                if (byInterval.TryGetValue(i, out var g))
                {
                    samples[ts] = value(g);
                }
                else if (SafeValue(value) is var empty && double.IsFinite(empty))
                {
                    samples[ts] = empty;
                }
            }

            result[series.Key] = samples;
        }

        return result;
    }

    private static double SafeValue(Func<IEnumerable<G>, double> f)
    {
        try
        {
            return f([]);
        }
        catch (InvalidOperationException)
        {
            return double.NaN;
        }
    }

    private static void AssertSame(Dictionary<string, SortedDictionary<long, double>> expected, Dictionary<string, SortedDictionary<long, double>> got, string what)
    {
        Assert.True(expected.Keys.Order().SequenceEqual(got.Keys.Order()),
            $"{what}: series {string.Join(" ", got.Keys.Order())}, expected {string.Join(" ", expected.Keys.Order())}");
        foreach (var (k, samples) in expected)
        {
            Assert.True(samples.SequenceEqual(got[k]),
                $"{what}: {k} got [{string.Join(", ", got[k].Select(x => $"{x.Key}:{x.Value}"))}] expected [{string.Join(", ", samples.Select(x => $"{x.Key}:{x.Value}"))}]");
        }
    }

    private static async Task<Dictionary<string, SortedDictionary<long, double>>> QueryHttpAsync(RubatoProcess server, string query, long start, long end, long stepSeconds)
    {
        string url = $"/api/metrics/query_range?q={Uri.EscapeDataString(query)}&start={start}&end={end}&step={stepSeconds}s";
        using var resp = await server.Http.GetAsync(url);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.True(resp.IsSuccessStatusCode, $"{url} answered {(int)resp.StatusCode}: {text}");
        using var doc = JsonDocument.Parse(text);
        var result = new Dictionary<string, SortedDictionary<long, double>>(StringComparer.Ordinal);
        foreach (var s in doc.RootElement.GetProperty("series").EnumerateArray())
        {
            var samples = new SortedDictionary<long, double>();
            foreach (var p in s.GetProperty("samples").EnumerateArray())
            {
                samples[long.Parse(p.GetProperty("timestampMs").GetString()!, CultureInfo.InvariantCulture)] = p.GetProperty("value").GetDouble();
            }

            result[s.GetProperty("promLabels").GetString()!] = samples;
        }

        return result;
    }

    private static async Task<int> TotalBlocksAsync(RubatoProcess server, long start, long end)
    {
        using var resp = await server.Http.GetAsync($"/api/metrics/query_range?q={Uri.EscapeDataString("{ } | rate()")}&start={start}&end={end}&step=300");
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("metrics").TryGetProperty("totalBlocks", out var b) ? b.GetInt32() : 0;
    }

    /// <summary>
    /// <c>tempopb.StreamingQuerier/MetricsQueryRange</c> on the gRPC port, encoded and decoded here by field number
    /// (QueryRangeRequest 1 query, 2 start, 3 end, 4 step; TimeSeries 2 samples, 3 promLabels; Sample 1 value, 2 timestamp_ms).
    /// The last message of the stream is the final result.
    /// </summary>
    private static async Task<Dictionary<string, SortedDictionary<long, double>>> QueryGrpcAsync(RubatoProcess server, string query, long start, long end, long step)
    {
        using var req = new ProtoWriter();
        req.WriteStringField(1, query);
        req.WriteVarintField(2, (ulong)start);
        req.WriteVarintField(3, (ulong)end);
        req.WriteVarintField(4, (ulong)step);
        using var client = new GrpcClient(new Uri($"http://127.0.0.1:{server.Ports.Grpc}"));
        byte[]? last = null;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (var msg in client.ServerStreamingAsync("tempopb.StreamingQuerier", "MetricsQueryRange", req.ToArray(), cancellationToken: cts.Token))
        {
            last = msg.ToArray();
        }

        Assert.NotNull(last);
        return Decode(last);
    }

    private static Dictionary<string, SortedDictionary<long, double>> Decode(byte[] data)
    {
        var result = new Dictionary<string, SortedDictionary<long, double>>(StringComparer.Ordinal);
        var r = new ProtoReader(data);
        while (r.TryReadTag(out int field, out var wt))
        {
            if (field != 1 || wt != WireType.LengthDelimited)
            {
                r.SkipField(field, wt);
                continue;
            }

            var s = r.ReadSubMessage();
            string prom = string.Empty;
            var samples = new SortedDictionary<long, double>();
            while (s.TryReadTag(out int f, out var swt))
            {
                if (f == 2 && swt == WireType.LengthDelimited)
                {
                    var sm = s.ReadSubMessage();
                    double v = 0;
                    long t = 0;
                    while (sm.TryReadTag(out int sf, out var smwt))
                    {
                        if (sf == 1 && smwt == WireType.Fixed64)
                        {
                            v = sm.ReadDouble();
                        }
                        else if (sf == 2 && smwt == WireType.Varint)
                        {
                            t = (long)sm.ReadVarint();
                        }
                        else
                        {
                            sm.SkipField(sf, smwt);
                        }
                    }

                    samples[t] = v;
                }
                else if (f == 3 && swt == WireType.LengthDelimited)
                {
                    prom = s.ReadString();
                }
                else
                {
                    s.SkipField(f, swt);
                }
            }

            result[prom] = samples;
        }

        return result;
    }
}
