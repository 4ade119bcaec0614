using Stopwatch = System.Diagnostics.Stopwatch;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Rubato.Cache;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

/// <summary>The <c>frontend-search</c> cache of block job results, with real in-memory and memcached cache clients.</summary>
public sealed class SearchJobCacheTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly long Start = TestData.T0 - 100;
    private static readonly long End = TestData.T0 + 200;
    private static readonly Guid BlockA = Guid.Parse("0f0e0d0c-0b0a-0908-0706-050403020100");
    private static readonly Guid BlockB = Guid.Parse("1f1e1d1c-1b1a-1918-1716-151413121110");

    private int _opens;

    [Fact]
    public async Task Codec_EncodeDecode_SameJsonAndExactNanos()
    {
        var traces = TestData.Small();
        traces.Add(TestData.MakeTrace(9, "svc", "arr", TestData.T0 + 30, 1_234_567, "tags", AnyValue.Array([AnyValue.String("a"), AnyValue.Double(1.5), AnyValue.Bool(true)])));
        var frontend = new SearchFrontend(new QueryFrontendConfig(), [TestData.Source(traces)], null, new FixedTime());
        var query = SearchRequestParser.ParseSearch(
            p => p == "q" ? "{ } | select(span.http.method, span.tags, status, kind, duration)" : null, new SearchFrontendConfig());
        var result = await frontend.SearchAsync(["single-tenant"], query, CancellationToken.None);
        Assert.Equal(4, result.Traces.Count);

        var decoded = SearchJobCache.Decode(SearchJobCache.Encode(result));
        Assert.NotNull(decoded);
        // The value keeps traces exactly, and the inspected counts (job counts are the frontend's, not the job's).
        Assert.Equal(SearchResultJson.ToJson(new SearchResult { Traces = result.Traces }), SearchResultJson.ToJson(new SearchResult { Traces = decoded.Traces }));
        Assert.Equal(result.Metrics.InspectedSpans, decoded.Metrics.InspectedSpans);
        Assert.Equal(result.Traces.Select(t => t.DurationNanos), decoded.Traces.Select(t => t.DurationNanos));
        Assert.Null(SearchJobCache.Decode([9, 1, 2, 3]));
        Assert.Null(SearchJobCache.Decode(SearchJobCache.Encode(result)[..^3]));
    }

    [Fact]
    public async Task Search_WarmCache_IdenticalResultsWithoutOpeningBlocks()
    {
        var metrics = new MetricsRegistry();
        await using var cache = new MemoryCache("frontend-search", 64 << 20, TimeSpan.Zero, metrics);
        await using var cached = await FrontendHost.StartAsync([BlockSource()], jobCache: new SearchJobCache(cache));
        await using var plain = await FrontendHost.StartAsync([BlockSource()]);
        string url = Url("{ } | select(span.http.method)");

        string want = await plain.Http.GetStringAsync(url);
        _opens = 0;
        string cold = await cached.Http.GetStringAsync(url);
        Assert.Equal(2, _opens);
        Assert.Equal(want, cold);

        // Sets run in the background: wait until both blocks' results are stored.
        await WaitUntil(async () => (await cache.GetAsync(SearchJobCache.KeyFor("single-tenant", Job(BlockB), Query(url))!)) is not null
            && (await cache.GetAsync(SearchJobCache.KeyFor("single-tenant", Job(BlockA), Query(url))!)) is not null);
        _opens = 0;
        string warm = await cached.Http.GetStringAsync(url);
        Assert.Equal(0, _opens);
        Assert.Equal(want, warm);

        // A different limit is a different key; a range that cuts the blocks is never cached.
        Assert.NotEqual(SearchJobCache.KeyFor("single-tenant", Job(BlockA), Query(url)), SearchJobCache.KeyFor("single-tenant", Job(BlockA), Query(url + "&limit=1")));
        string cut = "/api/search?q=%7B%7D&start=" + (TestData.T0 + 5).ToString(CultureInfo.InvariantCulture) + "&end=" + End.ToString(CultureInfo.InvariantCulture);
        string wantCut = await plain.Http.GetStringAsync(cut);
        _opens = 0;
        Assert.Equal(wantCut, await cached.Http.GetStringAsync(cut));
        Assert.Equal(2, _opens);
        Assert.Null(SearchJobCache.KeyFor("single-tenant", Job(BlockA), Query(cut)));
    }

    [Fact]
    public async Task Search_SameBlockPlannedByTwoSources_ReadOnce()
    {
        await using var host = await FrontendHost.StartAsync([BlockSource(), BlockSource()]);
        _opens = 0;
        using var doc = System.Text.Json.JsonDocument.Parse(await host.Http.GetStringAsync(Url("{ }")));
        Assert.Equal(2, _opens);
        Assert.Equal(3, doc.RootElement.GetProperty("traces").GetArrayLength());
        Assert.Equal(2, doc.RootElement.GetProperty("metrics").GetProperty("totalJobs").GetInt32());
    }

    [Theory]
    [InlineData("refused")]
    [InlineData("silent")]
    public async Task Search_DeadOrSilentMemcached_SameResultsQuickly(string mode)
    {
        // A real memcached client against a closed port (connection refused) or a socket that accepts and never
        // answers (a hung server).
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        int port = ((IPEndPoint)silent.LocalEndpoint).Port;
        if (mode == "refused")
        {
            silent.Stop();
        }

        var metrics = new MetricsRegistry();
        await using var cache = new MemcachedCache("frontend-search", new MemcachedConfig { Addresses = $"127.0.0.1:{port}", Timeout = TimeSpan.FromMilliseconds(100) }, metrics);
        await using var cached = await FrontendHost.StartAsync([BlockSource()], jobCache: new SearchJobCache(cache));
        await using var plain = await FrontendHost.StartAsync([BlockSource()]);
        string url = Url("{ resource.service.name = \"frontend\" } | select(span.http.method)");
        string want = await plain.Http.GetStringAsync(url);
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            Assert.Equal(want, await cached.Http.GetStringAsync(url).WaitAsync(Timeout));
            // Each lookup is bounded by the memcached timeout (100 ms) and the frontend's own 500 ms; loaded CI adds slack.
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"{mode}: search took {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    private static string Url(string q) =>
        "/api/search?q=" + Uri.EscapeDataString(q) + "&start=" + Start.ToString(CultureInfo.InvariantCulture) + "&end=" + End.ToString(CultureInfo.InvariantCulture);

    private static SearchQuery Query(string url)
    {
        var qs = System.Web.HttpUtility.ParseQueryString(new Uri("http://x" + url).Query);
        return SearchRequestParser.ParseSearch(p => qs[p], new SearchFrontendConfig());
    }

    private static SearchJob Job(Guid id) =>
        new("block " + id, _ => throw new InvalidOperationException("not opened"), isBlock: true) { Block = new SearchJobBlock(id, TestData.T0 - 10, TestData.T0 + 100) };

    /// <summary>Two immutable "blocks" (traces 1+2, trace 3) planned as block jobs of the recent source; counts opens.</summary>
    private DelegateSearchSource BlockSource()
    {
        var all = TestData.Small();
        var blocks = new (Guid Id, List<Trace> Traces)[] { (BlockA, [all[0], all[1]]), (BlockB, [all[2]]) };
        return new DelegateSearchSource("blocks", isRecent: true, (_, _, _) => ValueTask.FromResult<IReadOnlyList<SearchJob>>(
            [.. blocks.Select(b => new SearchJob("block " + b.Id, _ =>
            {
                Interlocked.Increment(ref _opens);
                return ValueTask.FromResult<ISpansetFetcher>(new TraceModelFetcher(b.Traces));
            }, isBlock: true) { Block = new SearchJobBlock(b.Id, TestData.T0 - 10, TestData.T0 + 100) })]));
    }

    private static async Task WaitUntil(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10); // Polling interval, not a fixed wait.
        }
    }
}
