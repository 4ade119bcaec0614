using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Rubato.Integration.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// The <c>frontend-search</c> cache role on a real memcached: block job results of TraceQL searches are cached and a
/// warm, stopped or restarted-empty memcached gives byte-identical trace lists, quickly.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SearchCacheIntegrationTests(ITestOutputHelper output)
{
    /// <summary>A search must stay under this even while memcached is dead (each lookup costs at most its timeout).</summary>
    private static readonly TimeSpan MaxSearchTime = TimeSpan.FromSeconds(3);

    private static readonly string[] Queries =
    [
        "{ resource.service.name = \"svc-b\" } | select(span.http.status_code)",
        "{ status = error }",
        "{ kind = client } | count() > 1",
    ];

    [Fact]
    public async Task Search_FrontendSearchCacheWarmStoppedAndRestarted_IdenticalTraceLists()
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {what}");
        await using var memcached = await Rubato.TestSupport.CacheServers.StartMemcachedAsync();
        var config = SearchDataset.SearchConfig with
        {
            ExtraYaml = SearchDataset.SearchConfig.ExtraYaml
                + $"cache:\n  caches:\n    - roles: [frontend-search]\n      memcached: {{ addresses: \"{memcached.Address}\", timeout: 200ms }}\n",
        };
        await using var server = await RubatoProcess.StartAsync(config, output);
        var data = SearchDataset.Generate(150, new Random(77));
        await data.PushAsync(server);
        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        // Cold: wait until the answer comes from the flushed block, then record it.
        var want = new string[Queries.Length];
        for (int i = 0; i < Queries.Length; i++)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                var (traces, metrics) = await SearchAsync(server, data, Queries[i]);
                if ((metrics.TryGetProperty("totalBlocks", out var blocks) && blocks.GetInt32() > 0) || DateTime.UtcNow > deadline)
                {
                    want[i] = traces;
                    break;
                }

                await Task.Delay(200); // Polling interval while the block list loads, not a fixed wait.
            }

            Assert.NotEqual("[]", want[i]);
        }

        Phase("cold answers recorded");
        await AssertSameAsync(server, data, want, "warm");
        double hits = Hits(await server.Http.GetStringAsync("/metrics"));
        Assert.True(hits > 0, $"expected frontend-search hits, /metrics shows {hits}");
        Phase($"warm: identical, {hits} hits");

        await memcached.StopAsync();
        await AssertSameAsync(server, data, want, "memcached stopped");
        Phase("memcached stopped: identical");

        await memcached.StartAsync();
        await AssertSameAsync(server, data, want, "memcached restarted empty");
        await AssertSameAsync(server, data, want, "memcached refilled");
        Phase("memcached restarted: identical");
    }

    private static async Task AssertSameAsync(RubatoProcess server, SearchDataset data, string[] want, string when)
    {
        for (int i = 0; i < Queries.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            var (traces, _) = await SearchAsync(server, data, Queries[i]);
            sw.Stop();
            Assert.True(want[i] == traces, $"{when}: {Queries[i]} answered differently\nwant {want[i]}\ngot  {traces}");
            Assert.True(sw.Elapsed < MaxSearchTime, $"{when}: {Queries[i]} took {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    /// <summary>The raw <c>traces</c> JSON (every field, in answer order) and the metrics of one ranged search.</summary>
    private static async Task<(string Traces, JsonElement Metrics)> SearchAsync(RubatoProcess server, SearchDataset data, string query)
    {
        long start = (long)(data.BaseNanos / 1_000_000_000UL) - 60;
        long end = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60;
        string url = "/api/search?limit=1000&q=" + Uri.EscapeDataString(query) + string.Create(CultureInfo.InvariantCulture, $"&start={start}&end={end}");
        using var response = await server.Http.GetAsync(url);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url} answered {(int)response.StatusCode}: {body}");
        using var doc = JsonDocument.Parse(body);
        var traces = doc.RootElement.TryGetProperty("traces", out var t) ? t.GetRawText() : "[]";
        return (traces, doc.RootElement.GetProperty("metrics").Clone());
    }

    /// <summary><c>rubato_cache_requests_total{cache="frontend-search",op="get",result="hit"}</c>.</summary>
    private static double Hits(string metrics)
    {
        double sum = 0;
        foreach (string line in metrics.Split('\n'))
        {
            if (line.StartsWith("rubato_cache_requests_total{", StringComparison.Ordinal)
                && line.Contains("cache=\"frontend-search\"", StringComparison.Ordinal)
                && line.Contains("result=\"hit\"", StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }
}
