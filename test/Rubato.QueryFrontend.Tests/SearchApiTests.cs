using System.Net;
using System.Text.Json;
using Rubato.Common.Otlp;
using Rubato.Grpc;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

public sealed class SearchApiTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Search_SimpleQuery_ExactTempoJson()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        string body = await host.Http.GetStringAsync("/api/search?q=" + Uri.EscapeDataString("{ span.http.method = \"POST\" }"));
        long start = TestData.T0 + 10;
        Assert.Equal(
            "{\"traces\":[{\"traceID\":\"2\",\"rootServiceName\":\"frontend\",\"rootTraceName\":\"POST /\",\"startTimeUnixNano\":\"" + start + "000000000\",\"durationMs\":2000,"
            + "\"spanSet\":{\"spans\":[{\"spanID\":\"0000000000000020\",\"name\":\"POST /\",\"startTimeUnixNano\":\"" + start + "000000000\",\"durationNanos\":\"2000000000\",\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"POST\"}}]}],\"matched\":1},"
            + "\"spanSets\":[{\"spans\":[{\"spanID\":\"0000000000000020\",\"name\":\"POST /\",\"startTimeUnixNano\":\"" + start + "000000000\",\"durationNanos\":\"2000000000\",\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"POST\"}}]}],\"matched\":1}],"
            + "\"serviceStats\":{\"frontend\":{\"spanCount\":1,\"errorCount\":1}}}],"
            + "\"metrics\":{\"inspectedTraces\":1,\"completedJobs\":1,\"totalJobs\":1,\"inspectedSpans\":\"1\"}}",
            body);
    }

    [Fact]
    public async Task Search_LimitAndSpss_Applied()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var doc = JsonDocument.Parse(await host.Http.GetStringAsync("/api/search?q=%7B%7D&limit=2&spss=1"));
        var traces = doc.RootElement.GetProperty("traces");
        Assert.Equal(2, traces.GetArrayLength());
        // The first two traces found (1 and 2), newest first; trace 1 has two matching spans, one listed.
        Assert.Equal(["2", "1"], traces.EnumerateArray().Select(t => t.GetProperty("traceID").GetString()));
        var first = traces[1].GetProperty("spanSets")[0];
        Assert.Equal(1, first.GetProperty("spans").GetArrayLength());
        Assert.Equal(2, first.GetProperty("matched").GetInt32());
    }

    [Fact]
    public async Task Search_StartEnd_OnlyOverlappingTraces()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var doc = JsonDocument.Parse(await host.Http.GetStringAsync($"/api/search?q=%7B%7D&start={TestData.T0 + 15}&end={TestData.T0 + 25}"));
        var ids = doc.RootElement.GetProperty("traces").EnumerateArray().Select(t => t.GetProperty("traceID").GetString()).ToList();
        Assert.Equal(["3"], ids);
    }

    [Fact]
    public async Task Search_LegacyTagsAndMinDuration_ConvertedToTraceQL()
    {
        Assert.Equal("{ .http.method = \"GET\" } && { traceDuration >= 50000000ns }", SearchRequestParser.LegacyToTraceQL("http.method=GET", "50ms", null));
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var doc = JsonDocument.Parse(await host.Http.GetStringAsync("/api/search?tags=" + Uri.EscapeDataString("service.name=frontend") + "&minDuration=1s"));
        var ids = doc.RootElement.GetProperty("traces").EnumerateArray().Select(t => t.GetProperty("traceID").GetString()).ToList();
        Assert.Equal(["2"], ids);
        using var max = JsonDocument.Parse(await host.Http.GetStringAsync("/api/search?tags=" + Uri.EscapeDataString("service.name=frontend") + "&maxDuration=1s"));
        Assert.Equal(["1"], max.RootElement.GetProperty("traces").EnumerateArray().Select(t => t.GetProperty("traceID").GetString()).ToList());
    }

    [Fact]
    public async Task Search_ParseError_400WithPosition()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var resp = await host.Http.GetAsync("/api/search?q=" + Uri.EscapeDataString("{ .a = }"));
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        string text = await resp.Content.ReadAsStringAsync();
        Assert.StartsWith("invalid TraceQL query: ", text);
        Assert.Contains("col", text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Search_RangeLongerThanMaxDuration_400()
    {
        var config = new QueryFrontendConfig();
        config.Search.MaxDuration = TimeSpan.FromHours(1);
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())], config);
        using var resp = await host.Http.GetAsync($"/api/search?q=%7B%7D&start={TestData.NowSeconds - 7200}&end={TestData.NowSeconds}");
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        Assert.Equal($"range specified by start and end exceeds 1h0m0s. received start={TestData.NowSeconds - 7200} end={TestData.NowSeconds}", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Search_MultitenancyWithoutOrgId_401()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())], multitenancy: true);
        using var resp = await host.Http.GetAsync("/api/search?q=%7B%7D");
        Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
        Assert.Equal("no org id", await resp.Content.ReadAsStringAsync());
        using var req = new HttpRequestMessage(HttpMethod.Get, "/api/search?q=%7B%7D");
        req.Headers.Add("X-Scope-OrgID", "a|b");
        using var ok = await host.Http.SendAsync(req);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Search_QueueFull_429()
    {
        var gate = new TaskCompletionSource();
        var fetcher = new GatedFetcher([], [], gate.Task, ignoreCancellation: false);
        var config = new QueryFrontendConfig { MaxOutstandingPerTenant = 1 };
        await using var host = await FrontendHost.StartAsync([DelegateSearchSource.Recent("gated", (_, _, _) => fetcher)], config);
        var first = host.Http.GetAsync("/api/search?q=%7B%7D");
        await fetcher.FirstYielded.Task.WaitAsync(Timeout);
        using var second = await host.Http.GetAsync("/api/search?q=%7B%7D");
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal("too many outstanding requests", await second.Content.ReadAsStringAsync());
        gate.SetResult();
        using var firstResp = await first.WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, firstResp.StatusCode);
    }

    [Fact]
    public async Task Search_LimitReached_ReleasedWhileOtherJobBlocksForever()
    {
        var never = new TaskCompletionSource();
        var blocking = new GatedFetcher([], [], never.Task, ignoreCancellation: true);
        var sources = new ISearchSource[]
        {
            TestData.Source(TestData.Small()),
            DelegateSearchSource.Recent("stuck", (_, _, _) => blocking),
        };
        await using var host = await FrontendHost.StartAsync(sources);
        using var resp = await host.Http.GetAsync("/api/search?q=%7B%7D&limit=2").WaitAsync(Timeout);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        Assert.Equal(2, doc.RootElement.GetProperty("traces").GetArrayLength());
    }

    [Fact]
    public async Task Search_ClientDisconnects_JobsCancelled()
    {
        var gate = new TaskCompletionSource();
        var fetcher = new GatedFetcher([], [], gate.Task, ignoreCancellation: false);
        await using var host = await FrontendHost.StartAsync([DelegateSearchSource.Recent("gated", (_, _, _) => fetcher)]);
        using var cts = new CancellationTokenSource();
        var request = host.Http.GetAsync("/api/search?q=%7B%7D", cts.Token);
        await fetcher.FirstYielded.Task.WaitAsync(Timeout);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        await fetcher.Cancelled.Task.WaitAsync(Timeout);
        await WaitUntil(() => host.Frontend.Outstanding("single-tenant") == 0);
    }

    [Fact]
    public async Task TagsV2_AndTagValuesV2_ExactJson()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        string tags = await host.Http.GetStringAsync("/api/v2/search/tags?scope=span");
        Assert.Equal("{\"scopes\":[{\"name\":\"span\",\"tags\":[\"db.system\",\"http.method\",\"job.id\"]}],\"metrics\":{\"totalJobs\":1,\"completedJobs\":1}}", tags);
        string v1 = await host.Http.GetStringAsync("/api/search/tags");
        Assert.Equal("{\"tagNames\":[\"db.system\",\"http.method\",\"job.id\",\"service.name\"],\"metrics\":{\"totalJobs\":1,\"completedJobs\":1}}", v1);
        string values = await host.Http.GetStringAsync("/api/v2/search/tag/resource.service.name/values?q=" + Uri.EscapeDataString("{ span.http.method = \"GET\" }"));
        Assert.Equal("{\"tagValues\":[{\"type\":\"string\",\"value\":\"frontend\"}],\"metrics\":{\"totalJobs\":1,\"completedJobs\":1}}", values);
        string lenient = await host.Http.GetStringAsync("/api/v2/search/tag/resource.service.name/values?q=" + Uri.EscapeDataString("{ span.http.method = "));
        Assert.Equal("{\"tagValues\":[{\"type\":\"string\",\"value\":\"db\"},{\"type\":\"string\",\"value\":\"frontend\"},{\"type\":\"string\",\"value\":\"worker\"}],\"metrics\":{\"totalJobs\":1,\"completedJobs\":1}}", lenient);
        string v1Values = await host.Http.GetStringAsync("/api/search/tag/job.id/values");
        Assert.Equal("{\"tagValues\":[\"7\"],\"metrics\":{\"totalJobs\":1,\"completedJobs\":1}}", v1Values);
    }

    [Fact]
    public async Task GrpcSearch_PartialThenFinal()
    {
        var gate = new TaskCompletionSource();
        var all = TestData.Small();
        var fetcher = new GatedFetcher([all[0]], [all[1]], gate.Task, ignoreCancellation: false);
        var config = new QueryFrontendConfig();
        config.Search.StreamingUpdateInterval = TimeSpan.FromMilliseconds(50);
        await using var host = await FrontendHost.StartAsync([DelegateSearchSource.Recent("gated", (_, _, _) => fetcher)], config);
        using var client = new GrpcClient(host.Address);
        var messages = new List<SearchResult>();
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "Search", SearchRequest("{}", 20)).WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            messages.Add(StreamingProto.DecodeSearchResponse(m.Span));
            if (messages.Count == 1)
            {
                gate.TrySetResult();
            }
        }

        Assert.True(messages.Count >= 2);
        Assert.Equal(["1"], messages[0].Traces.Select(t => SearchResultJson.TraceIdHex(t.TraceId)));
        Assert.Equal(["2", "1"], messages[^1].Traces.Select(t => SearchResultJson.TraceIdHex(t.TraceId)));
        Assert.Equal(1u, messages[^1].Metrics.CompletedJobs);
    }

    [Fact]
    public async Task GrpcSearch_BadQuery_InvalidArgument()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var client = new GrpcClient(host.Address);
        var e = await Assert.ThrowsAsync<GrpcException>(async () =>
        {
            await foreach (var _ in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "Search", SearchRequest("{ .a = ", 20)))
            {
            }
        });
        Assert.Equal(GrpcStatusCode.InvalidArgument, e.StatusCode);
    }

    [Fact]
    public async Task GrafanaSession_TagsValuesHttpSearchAndGrpcSearch_Agree()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var tags = JsonDocument.Parse(await host.Http.GetStringAsync("/api/v2/search/tags"));
        Assert.Contains(tags.RootElement.GetProperty("scopes").EnumerateArray(), s => s.GetProperty("name").GetString() == "resource");
        using var values = JsonDocument.Parse(await host.Http.GetStringAsync("/api/v2/search/tag/resource.service.name/values?q=%7B%7D"));
        var services = values.RootElement.GetProperty("tagValues").EnumerateArray().Select(v => v.GetProperty("value").GetString()).ToList();
        Assert.Contains("frontend", services);
        string q = "{ resource.service.name = \"frontend\" }";
        using var http = JsonDocument.Parse(await host.Http.GetStringAsync("/api/search?q=" + Uri.EscapeDataString(q)));
        var httpIds = http.RootElement.GetProperty("traces").EnumerateArray().Select(t => t.GetProperty("traceID").GetString()!).Order().ToList();

        using var client = new GrpcClient(host.Address);
        SearchResult? last = null;
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "Search", SearchRequest(q, 20)))
        {
            last = StreamingProto.DecodeSearchResponse(m.Span);
        }

        Assert.NotNull(last);
        Assert.Equal(httpIds, last.Traces.Select(t => SearchResultJson.TraceIdHex(t.TraceId)).Order().ToList());
        Assert.Equal(["1", "2"], httpIds.Order());
        // The JSON of the gRPC result equals the HTTP body's traces.
        var grpcJson = JsonDocument.Parse(SearchResultJson.ToJson(new SearchResult { Traces = last.Traces }));
        Assert.Equal(
            http.RootElement.GetProperty("traces").EnumerateArray().Select(t => t.GetProperty("spanSets").ToString()),
            grpcJson.RootElement.GetProperty("traces").EnumerateArray().Select(t => t.GetProperty("spanSets").ToString()));
    }

    [Fact]
    public void Config_Validate_ReportsBadValues()
    {
        var c = new QueryFrontendConfig { MaxOutstandingPerTenant = 0 };
        c.Search.ConcurrentJobs = 0;
        var e = Assert.Throws<ArgumentException>(c.Validate);
        Assert.Contains("query_frontend.max_outstanding_per_tenant", e.Message);
        Assert.Contains("query_frontend.search.concurrent_jobs", e.Message);
        new QueryFrontendConfig().Validate();
    }

    private static byte[] SearchRequest(string query, uint limit)
    {
        using var w = new ProtoWriter();
        w.WriteVarintField(4, limit);
        w.WriteStringField(8, query);
        return w.ToArray();
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(10);
        }
    }
}
