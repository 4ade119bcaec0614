using System.Text.Json;
using Rubato.Common.Otlp;
using Rubato.Grpc;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

/// <summary>Tag and tag-value searches: streamed partial answers, early stop at limits, cancellation.</summary>
public sealed class TagSearchTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task GrpcTagValuesV2_SlowJob_NewValuesStreamedThenCompleteFinal()
    {
        var gate = new TaskCompletionSource();
        var all = TestData.Small();
        var fetcher = new GatedFetcher([all[0]], [all[1], all[2]], gate.Task, ignoreCancellation: false);
        var config = new QueryFrontendConfig();
        config.Search.StreamingUpdateInterval = TimeSpan.FromMilliseconds(50);
        await using var host = await FrontendHost.StartAsync([DelegateSearchSource.Recent("gated", (_, _, _) => fetcher)], config);
        using var client = new GrpcClient(host.Address);
        var messages = new List<List<string>>();
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "SearchTagValuesV2", TagValuesRequest("resource.service.name", 0))
            .WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            messages.Add(DecodeTagValuesV2(m.Span));
            if (messages.Count == 1)
            {
                gate.TrySetResult();
            }
        }

        Assert.True(messages.Count >= 2, $"{messages.Count} messages");
        // The first partial answer holds what the first trace had; later partials only new values; the final all.
        Assert.Equal(["db", "frontend"], messages[0].Order(StringComparer.Ordinal));
        var partials = messages.Take(messages.Count - 1).SelectMany(v => v).ToList();
        Assert.Equal(partials.Count, partials.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(["db", "frontend", "worker"], messages[^1]);
    }

    [Fact]
    public async Task GrpcTagsV2_SlowJob_PartialWithoutIntrinsicsThenFinalWithThem()
    {
        var gate = new TaskCompletionSource();
        var all = TestData.Small();
        var fetcher = new GatedFetcher([all[0]], [all[2]], gate.Task, ignoreCancellation: false);
        var config = new QueryFrontendConfig();
        config.Search.StreamingUpdateInterval = TimeSpan.FromMilliseconds(50);
        await using var host = await FrontendHost.StartAsync([DelegateSearchSource.Recent("gated", (_, _, _) => fetcher)], config);
        using var client = new GrpcClient(host.Address);
        var messages = new List<Dictionary<string, List<string>>>();
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "SearchTagsV2", Array.Empty<byte>()).WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            messages.Add(DecodeTagsV2(m.Span));
            if (messages.Count == 1)
            {
                gate.TrySetResult();
            }
        }

        Assert.True(messages.Count >= 2, $"{messages.Count} messages");
        Assert.Equal(["db.system", "http.method"], messages[0]["span"].Order(StringComparer.Ordinal));
        Assert.False(messages[0].ContainsKey("intrinsic"));
        Assert.Equal(["db.system", "http.method", "job.id"], messages[^1]["span"]);
        Assert.Contains("duration", messages[^1]["intrinsic"]);
    }

    [Fact]
    public async Task TagValues_LimitReached_ReleasedAndOtherJobCancelled()
    {
        var gate = new TaskCompletionSource();
        var stuck = new GatedFetcher([], [], gate.Task, ignoreCancellation: false);
        // The answering job yields only once the stuck one is reading, so the stuck one must be cancelled, not skipped.
        var answering = new GatedFetcher([], TestData.Small(), stuck.FirstYielded.Task, ignoreCancellation: false);
        var sources = new ISearchSource[] { DelegateSearchSource.Recent("answering", (_, _, _) => answering), DelegateSearchSource.Recent("stuck", (_, _, _) => stuck) };
        await using var host = await FrontendHost.StartAsync(sources);
        using var resp = await host.Http.GetAsync("/api/v2/search/tag/resource.service.name/values?limit=2").WaitAsync(Timeout);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        Assert.Equal(2, doc.RootElement.GetProperty("tagValues").GetArrayLength());
        await stuck.Cancelled.Task.WaitAsync(Timeout);

        // Tag names: one per scope for every attribute scope, then the stuck job is cancelled too.
        var stuck2 = new GatedFetcher([], [], gate.Task, ignoreCancellation: false);
        var answering2 = new GatedFetcher([], TestData.Small(), stuck2.FirstYielded.Task, ignoreCancellation: false);
        await using var host2 = await FrontendHost.StartAsync(
            [DelegateSearchSource.Recent("answering", (_, _, _) => answering2), DelegateSearchSource.Recent("stuck", (_, _, _) => stuck2)]);
        using var tags = await host2.Http.GetAsync("/api/v2/search/tags?scope=span&limit=1").WaitAsync(Timeout);
        using var tagsDoc = JsonDocument.Parse(await tags.Content.ReadAsStringAsync());
        Assert.Equal(1, tagsDoc.RootElement.GetProperty("scopes")[0].GetProperty("tags").GetArrayLength());
        await stuck2.Cancelled.Task.WaitAsync(Timeout);
    }

    [Fact]
    public async Task TagValues_BlockJobsFillLimit_LaterBlocksNeverRead()
    {
        int reads = 0;
        var jobs = Enumerable.Range(0, 5).Select(i => new SearchJob("block " + i, _ => throw new InvalidOperationException("tag search must use the block reader"), isBlock: true)
        {
            CollectTagValues = (c, _, _, _) =>
            {
                Interlocked.Increment(ref reads);
                foreach (var s in TestData.Small())
                {
                    foreach (var span in SpansOf(s))
                    {
                        c.Add(span);
                    }
                }

                return Task.CompletedTask;
            },
        }).ToList();
        var config = new QueryFrontendConfig();
        config.Search.ConcurrentJobs = 1;
        var source = new DelegateSearchSource("blocks", isRecent: true, (_, _, _) => ValueTask.FromResult<IReadOnlyList<SearchJob>>(jobs));
        await using var host = await FrontendHost.StartAsync([source], config);
        string body = await host.Http.GetStringAsync("/api/v2/search/tag/resource.service.name/values?limit=2");
        using var doc = JsonDocument.Parse(body);
        Assert.Equal(2, doc.RootElement.GetProperty("tagValues").GetArrayLength());
        Assert.Equal(1, reads);
        Assert.Equal(1, doc.RootElement.GetProperty("metrics").GetProperty("completedJobs").GetInt32());

        // Without a limit every block is read.
        reads = 0;
        string full = await host.Http.GetStringAsync("/api/v2/search/tag/resource.service.name/values");
        Assert.Equal(5, reads);
        Assert.Equal(3, JsonDocument.Parse(full).RootElement.GetProperty("tagValues").GetArrayLength());
    }

    [Fact]
    public async Task TagValues_ClientDisconnects_JobsCancelled()
    {
        var gate = new TaskCompletionSource();
        var fetcher = new GatedFetcher([TestData.Small()[0]], [], gate.Task, ignoreCancellation: false);
        await using var host = await FrontendHost.StartAsync([DelegateSearchSource.Recent("gated", (_, _, _) => fetcher)]);
        using var cts = new CancellationTokenSource();
        var request = host.Http.GetAsync("/api/v2/search/tag/resource.service.name/values", cts.Token);
        await fetcher.FirstYielded.Task.WaitAsync(Timeout);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        await fetcher.Cancelled.Task.WaitAsync(Timeout);
        var deadline = DateTime.UtcNow + Timeout;
        while (host.Frontend.Outstanding("single-tenant") != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "request still outstanding");
            await Task.Delay(10); // Polling interval, not a fixed wait.
        }
    }

    [Fact]
    public async Task TagValues_TenantMaxBytesPerTagValuesQuery_AnswerCutAtBudget()
    {
        var overridesConfig = new Rubato.Overrides.OverridesConfig();
        overridesConfig.Defaults.Read.MaxBytesPerTagValuesQuery = 12;
        using var overrides = new Rubato.Overrides.RuntimeOverrides(overridesConfig, new Rubato.Common.Metrics.MetricsRegistry());
        var frontend = new SearchFrontend(new QueryFrontendConfig(), [TestData.Source(TestData.Small())], overrides, new FixedTime());
        var (values, _) = await frontend.SearchTagValuesAsync(["single-tenant"], new TagValuesQuery { Tag = "resource.service.name" }, CancellationToken.None);
        // "frontend" (8) fits, "db" (2) fits, "worker" (6) would make 16 > 12.
        Assert.True(values.Exceeded);
        Assert.Equal(["frontend", "db"], values.Values.Select(v => v.Value));
        var (names, _) = await frontend.SearchTagsAsync(["single-tenant"], new TagNamesQuery { Scope = "span" }, CancellationToken.None);
        Assert.True(names.Exceeded);
        Assert.Equal(["http.method"], names.Scopes().Single().Tags);
    }

    [Fact]
    public void Collectors_MaxBytes_ExceededStopsAdding()
    {
        var values = new TagValuesCollector("span:name", limit: 0, maxBytes: 10);
        var names = new TagNamesCollector("span", limit: 0, maxBytes: 20);
        foreach (var s in TestData.Small())
        {
            foreach (var span in SpansOf(s))
            {
                values.Add(span);
                names.Add(span);
            }
        }

        // "GET /" (5) + "query" (5) fit; "POST /" would go over.
        Assert.Equal(["GET /", "query"], values.Values.Select(v => v.Value));
        Assert.True(values.Exceeded && values.IsFull);
        // "http.method" (11) + "db.system" (9) fit; "job.id" would go over.
        Assert.True(names.Exceeded && names.IsFull);
        Assert.Equal(["db.system", "http.method"], names.Scopes().Single(s => s.Name == "span").Tags);

        var unlimited = new TagNamesCollector("span", limit: 2);
        Assert.False(unlimited.IsFull);
        Assert.True(new TagNamesCollector("intrinsic").IsFull);
        Assert.Equal(0, unlimited.Since(0).AddedCount);
    }

    /// <summary>Every span of a trace as the engine sees it (through the in-memory fetcher).</summary>
    private static List<EvalSpan> SpansOf(Rubato.Common.Model.Trace trace) =>
        [.. new TraceModelFetcher([trace]).FetchAsync(new FetchSpansRequest(), CancellationToken.None).ToBlockingEnumerable().SelectMany(ss => ss.Spans)];

    private static byte[] TagValuesRequest(string tag, uint limit)
    {
        using var w = new ProtoWriter();
        w.WriteStringField(1, tag);
        if (limit > 0)
        {
            w.WriteVarintField(6, limit);
        }

        return w.ToArray();
    }

    /// <summary><c>SearchTagValuesV2Response</c>: 1 tagValues {1 type, 2 value}; values in message order.</summary>
    private static List<string> DecodeTagValuesV2(ReadOnlySpan<byte> data)
    {
        var values = new List<string>();
        var r = new ProtoReader(data);
        while (r.TryReadTag(out int f, out var wt))
        {
            if (f == 1 && wt == WireType.LengthDelimited)
            {
                var tv = r.ReadSubMessage();
                while (tv.TryReadTag(out int tf, out var twt))
                {
                    if (tf == 2 && twt == WireType.LengthDelimited)
                    {
                        values.Add(tv.ReadString());
                    }
                    else
                    {
                        tv.SkipField(tf, twt);
                    }
                }
            }
            else
            {
                r.SkipField(f, wt);
            }
        }

        return values;
    }

    /// <summary><c>SearchTagsV2Response</c>: 1 scopes {1 name, 2 tags}.</summary>
    private static Dictionary<string, List<string>> DecodeTagsV2(ReadOnlySpan<byte> data)
    {
        var scopes = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var r = new ProtoReader(data);
        while (r.TryReadTag(out int f, out var wt))
        {
            if (f == 1 && wt == WireType.LengthDelimited)
            {
                var sc = r.ReadSubMessage();
                string name = string.Empty;
                var tags = new List<string>();
                while (sc.TryReadTag(out int sf, out var swt))
                {
                    if (sf == 1 && swt == WireType.LengthDelimited)
                    {
                        name = sc.ReadString();
                    }
                    else if (sf == 2 && swt == WireType.LengthDelimited)
                    {
                        tags.Add(sc.ReadString());
                    }
                    else
                    {
                        sc.SkipField(sf, swt);
                    }
                }

                scopes[name] = tags;
            }
            else
            {
                r.SkipField(f, wt);
            }
        }

        return scopes;
    }
}
