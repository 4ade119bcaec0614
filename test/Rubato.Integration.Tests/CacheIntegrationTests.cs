using System.Diagnostics;
using System.Globalization;
using System.Net;
using Rubato.Integration.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// A real rubato process with a real memcached or redis-server as its bloom / trace-id-index cache and, as a second
/// cache entry on the same server, its parquet-footer cache: flushed traces read by id and TraceQL searches over the
/// blocks answer identically whether the cache is warm, stopped mid-run or restarted empty, and a dead cache never
/// makes a query slow.
/// </summary>
/// <remarks>
/// Where the cache is consulted: rubato keeps an opened block's bloom shards and index in process, so trace by id asks
/// the cache when a process opens a block for the first time (phases restart rubato on the same data for that); a
/// search job opens its block afresh every time, so every search over blocks asks the footer cache.
/// </remarks>
[Collection(ServerCollection.Name)]
public sealed class CacheIntegrationTests(ITestOutputHelper output)
{
    private const int Traces = 120;
    private const string IdCache = "bloom|trace-id-index";
    private const string FooterCache = "parquet-footer";

    /// <summary>Each trace-by-id query must stay well under this even while the cache server is dead.</summary>
    private static readonly TimeSpan MaxQueryTime = TimeSpan.FromSeconds(2);

    /// <summary>Each search (one job per block, each reading a footer through the cache) must stay under this.</summary>
    private static readonly TimeSpan MaxSearchTime = TimeSpan.FromSeconds(3);

    private static readonly (string Query, Func<GeneratedTrace, bool> Expected)[] Queries =
    [
        ("{ resource.service.name = \"svc-b\" }", t => t.Service == "svc-b"),
        ("{ status = error }", t => t.RootStatus == 2),
        ("{ span.http.status_code >= 500 }", t => t.HttpStatus >= 500),
        ("{ kind = client }", t => t.Children > 0),
    ];

    /// <summary>The YAML of one cache backend of a <c>cache.caches</c> entry, with a 200 ms timeout.</summary>
    private static string BackendYaml(string kind, string address) => kind == "memcached"
        ? $"memcached: {{ addresses: \"{address}\", timeout: 200ms }}"
        : $"redis: {{ endpoint: \"{address}\", timeout: 200ms }}";

    [Theory]
    [InlineData("memcached")]
    [InlineData("redis")]
    public async Task TraceByIdAndSearch_CacheWarmStoppedMidRunAndRestarted_SameResultsAndFast(string kind)
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {what}");
        await using var cache = await CacheServers.StartAsync(kind);
        string backend = BackendYaml(kind, cache.Address);
        var config = SearchDataset.SearchConfig with
        {
            ExtraYaml = SearchDataset.SearchConfig.ExtraYaml
                + $"cache:\n  caches:\n    - roles: [bloom, trace-id-index]\n      {backend}\n    - roles: [parquet-footer]\n      {backend}\n",
        };
        await using var server = await RubatoProcess.StartAsync(config, output);
        Phase($"{kind} on {cache.Address}, rubato ready");

        var data = SearchDataset.Generate(Traces, new Random(1234));
        await data.PushAsync(server);
        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in data.Traces)
        {
            var spans = await server.WaitForTraceAsync(t.TraceIdHex, t.SpanCount);
            Assert.Equal(t.SpanCount, spans.Count);
            expected[t.TraceIdHex] = Canonical(spans);
        }

        var searches = Queries.Select(q => data.Matching(q.Expected)).ToArray();
        for (int i = 0; i < Queries.Length; i++)
        {
            Assert.True(searches[i].Count > 0 && searches[i].Count < Traces, $"{Queries[i].Query} selects {searches[i].Count} of {Traces}: not discriminating");
            var got = await data.WaitForSearchAsync(server, Queries[i].Query, searches[i], withRange: true);
            Assert.True(searches[i].SetEquals(got), $"cold cache: {Queries[i].Query} returned {got.Count} traces, want {searches[i].Count}");
        }

        Phase("pushed, flushed, every trace and search answered (cold cache)");
        var check = new Expectations(data, expected, searches);

        // A new process opens the blocks again: bloom shards and index now come from the cache; every search job
        // reads its block's footer from it.
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, check, "warm cache after a rubato restart");
        await AssertHitsAsync(server, kind, "a restart with a warm cache");
        Phase("warm cache: cache hits for ids and footers");

        // Stopped while rubato runs: searches ask the dead server for footers at once, ids go on from process memory.
        await cache.StopAsync();
        await AssertSameAndFastAsync(server, check, $"{kind} stopped mid-run");
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, check, $"{kind} stopped, rubato restarted");
        Phase($"{kind} stopped: same results");

        await cache.StartAsync();
        await AssertSameAndFastAsync(server, check, $"{kind} restarted empty (rubato kept running)");
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, check, $"{kind} restarted empty, rubato restarted");
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, check, $"{kind} refilled, rubato restarted again");
        await AssertHitsAsync(server, kind, $"{kind} was back and refilled");
        Phase($"{kind} restarted: same results, cache hits again");
    }

    /// <summary>Tag-name and tag-value requests over the flushed blocks (v1 and v2, with and without a <c>q</c> filter).</summary>
    private static readonly string[] TagUrls =
    [
        "/api/search/tags",
        "/api/v2/search/tags",
        "/api/v2/search/tags?scope=span",
        "/api/v2/search/tags?q=" + Uri.EscapeDataString("{ status = error }"),
        "/api/search/tag/service.name/values",
        "/api/v2/search/tag/resource.service.name/values",
        "/api/v2/search/tag/span.http.status_code/values",
        "/api/v2/search/tag/span.http.status_code/values?q=" + Uri.EscapeDataString("{ resource.service.name = \"svc-b\" }"),
    ];

    /// <summary>
    /// The frontend-search role on a real memcached or redis caches tag and tag-value block jobs (<c>st:</c>/<c>stv:</c>):
    /// the answers are identical cold, warm (with cache hits: these are the only requests that use the role here), with
    /// the cache stopped, and after it restarts empty and refills.
    /// </summary>
    [Theory]
    [InlineData("memcached")]
    [InlineData("redis")]
    public async Task TagSearches_FrontendSearchCacheWarmStoppedAndRestarted_SameAnswersAndHits(string kind)
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {what}");
        await using var cache = await CacheServers.StartAsync(kind);
        string backend = BackendYaml(kind, cache.Address);
        var config = SearchDataset.SearchConfig with
        {
            ExtraYaml = SearchDataset.SearchConfig.ExtraYaml + $"cache:\n  caches:\n    - roles: [frontend-search]\n      {backend}\n",
        };
        await using var server = await RubatoProcess.StartAsync(config, output);
        var data = SearchDataset.Generate(Traces, new Random(4321));
        await data.PushAsync(server);
        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        // Cold: wait until each answer comes from the flushed blocks, then record it.
        var want = new string[TagUrls.Length];
        for (int i = 0; i < TagUrls.Length; i++)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                var (answer, blocks) = await TagSearchAsync(server, data, TagUrls[i]);
                if (blocks > 0 || DateTime.UtcNow > deadline)
                {
                    Assert.True(blocks > 0, $"{TagUrls[i]}: no block searched within 30 s");
                    want[i] = answer;
                    break;
                }

                await Task.Delay(200); // Polling interval while the blocks appear, not a fixed wait.
            }
        }

        Phase($"{kind}: cold tag answers recorded");
        double before = Hits(await server.Http.GetStringAsync("/metrics"), "frontend-search");
        await AssertSameTagAnswersAsync(server, data, want, "warm");
        double warm = Hits(await server.Http.GetStringAsync("/metrics"), "frontend-search");
        Assert.True(warm > before, $"expected frontend-search hits for tag searches, /metrics shows {before} then {warm}");
        Phase($"{kind}: warm, identical, {warm - before} hits");

        await cache.StopAsync();
        await AssertSameTagAnswersAsync(server, data, want, $"{kind} stopped");
        await cache.StartAsync();
        // The breaker opened while the server was down and lets a probe through only after its timeout (10 s): until
        // the cache is used again (refilled, then hit) every round must still answer the same.
        double refilled = Hits(await server.Http.GetStringAsync("/metrics"), "frontend-search");
        var until = DateTime.UtcNow.AddSeconds(45);
        while (true)
        {
            await AssertSameTagAnswersAsync(server, data, want, $"{kind} restarted empty");
            double again = Hits(await server.Http.GetStringAsync("/metrics"), "frontend-search");
            if (again > refilled)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < until, $"expected frontend-search hits after {kind} restarted and refilled, /metrics shows {refilled} then {again}");
            await Task.Delay(200); // Polling interval while the breaker is open, not a fixed wait.
        }

        Phase($"{kind}: stopped, restarted and refilled: identical, hits again");
    }

    private static async Task AssertSameTagAnswersAsync(RubatoProcess server, SearchDataset data, string[] want, string when)
    {
        for (int i = 0; i < TagUrls.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            var (answer, _) = await TagSearchAsync(server, data, TagUrls[i]);
            sw.Stop();
            Assert.True(want[i] == answer, $"{when}: {TagUrls[i]} answered differently\nwant {want[i]}\ngot  {answer}");
            Assert.True(sw.Elapsed < MaxSearchTime, $"{when}: {TagUrls[i]} took {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    /// <summary>One ranged tag request: its JSON without the metrics (names and values are sorted), and its totalBlocks.</summary>
    private static async Task<(string Answer, int Blocks)> TagSearchAsync(RubatoProcess server, SearchDataset data, string path)
    {
        long start = (long)(data.BaseNanos / 1_000_000_000UL) - 60;
        long end = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60;
        string url = path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + string.Create(CultureInfo.InvariantCulture, $"start={start}&end={end}");
        using var response = await server.Http.GetAsync(url);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url} answered {(int)response.StatusCode}: {body}");
        using var doc = System.Text.Json.JsonDocument.Parse(body);
        var parts = doc.RootElement.EnumerateObject().Where(p => p.Name != "metrics").Select(p => p.Name + "=" + p.Value.GetRawText());
        int blocks = doc.RootElement.GetProperty("metrics").TryGetProperty("totalBlocks", out var b) ? b.GetInt32() : 0;
        return (string.Join('\n', parts), blocks);
    }

    private async Task AssertSameAndFastAsync(RubatoProcess server, Expectations check, string when)
    {
        // The first queries after a restart may wait for the block list to load; these waits are bounded.
        var first = check.Data.Traces[0];
        await server.WaitForTraceAsync(first.TraceIdHex, first.SpanCount, timeout: TimeSpan.FromSeconds(60));
        await check.Data.WaitForSearchAsync(server, Queries[0].Query, check.Searches[0], withRange: true);

        var slowest = TimeSpan.Zero;
        foreach (var (hex, want) in check.Traces)
        {
            var sw = Stopwatch.StartNew();
            var (status, body) = await server.GetTraceAsync(hex);
            sw.Stop();
            Assert.True(status == HttpStatusCode.OK, $"{when}: trace {hex} answered {(int)status}: {body}\n{server.LogTail()}");
            Assert.Equal(want, Canonical(TraceJson.Parse(body)));
            Assert.True(sw.Elapsed < MaxQueryTime, $"{when}: trace {hex} took {sw.Elapsed.TotalMilliseconds:F0} ms");
            slowest = sw.Elapsed > slowest ? sw.Elapsed : slowest;
        }

        var slowestSearch = TimeSpan.Zero;
        for (int i = 0; i < Queries.Length; i++)
        {
            // The block list is loaded (above), so the first answer must already be the full one.
            var sw = Stopwatch.StartNew();
            var got = await check.Data.WaitForSearchAsync(server, Queries[i].Query, check.Searches[i], withRange: true);
            sw.Stop();
            Assert.True(check.Searches[i].SetEquals(got), $"{when}: {Queries[i].Query} returned {got.Count} traces, want {check.Searches[i].Count}\n{server.LogTail()}");
            Assert.True(sw.Elapsed < MaxSearchTime, $"{when}: {Queries[i].Query} took {sw.Elapsed.TotalMilliseconds:F0} ms");
            slowestSearch = sw.Elapsed > slowestSearch ? sw.Elapsed : slowestSearch;
        }

        output.WriteLine($"{when}: {check.Traces.Count} traces and {Queries.Length} searches equal, slowest {slowest.TotalMilliseconds:F0} ms by id, {slowestSearch.TotalMilliseconds:F0} ms search");
    }

    /// <summary>Both cache entries served hits since this rubato process started: ids (bloom/index) and footers (search).</summary>
    private static async Task AssertHitsAsync(RubatoProcess server, string kind, string after)
    {
        string text = await server.Http.GetStringAsync("/metrics");
        foreach (string name in new[] { IdCache, FooterCache })
        {
            double hits = Hits(text, name);
            Assert.True(hits > 0, $"expected {name} hits from {kind} after {after}, /metrics shows {hits}");
        }
    }

    /// <summary><c>rubato_cache_requests_total{cache="name",op="get",result="hit"}</c>.</summary>
    private static double Hits(string metrics, string cacheName)
    {
        double sum = 0;
        foreach (string line in metrics.Split('\n'))
        {
            if (line.StartsWith("rubato_cache_requests_total{", StringComparison.Ordinal)
                && line.Contains($"cache=\"{cacheName}\"", StringComparison.Ordinal)
                && line.Contains("result=\"hit\"", StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }

    /// <summary>Every field of every span, spans in span id order, attributes by key: equal strings mean equal traces.</summary>
    private static string Canonical(IReadOnlyList<SpanView> spans) =>
        string.Join('\n', spans.OrderBy(s => s.SpanId, StringComparer.Ordinal).Select(s =>
            $"{s.TraceId}|{s.SpanId}|{s.ParentSpanId}|{s.Name}|{s.Kind}|{s.StartTimeUnixNano}|{s.EndTimeUnixNano}|" +
            string.Join(',', s.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}={a.Value}"))));

    /// <summary>What the cold run answered: canonical traces by id and each query's trace ids.</summary>
    private sealed record Expectations(SearchDataset Data, Dictionary<string, string> Traces, HashSet<string>[] Searches);
}
