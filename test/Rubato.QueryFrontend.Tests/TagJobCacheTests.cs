using System.Collections.Concurrent;
using System.Globalization;
using Rubato.Cache;
using Rubato.Common.Model;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

/// <summary>The <c>frontend-search</c> cache of tag-name and tag-value block jobs (<c>st:</c> / <c>stv:</c> keys).</summary>
public sealed class TagJobCacheTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly long Start = TestData.T0 - 100;
    private static readonly long End = TestData.T0 + 200;
    private static readonly Guid BlockA = Guid.Parse("0f0e0d0c-0b0a-0908-0706-050403020100");
    private static readonly Guid BlockB = Guid.Parse("1f1e1d1c-1b1a-1918-1716-151413121110");

    // Block id → times its data was read (block reader or span fetcher).
    private readonly ConcurrentDictionary<Guid, int> _reads = new();

    public static TheoryData<string> Urls() =>
    [
        "/api/search/tags",
        "/api/v2/search/tags",
        "/api/v2/search/tags?scope=resource&limit=1",
        "/api/v2/search/tags?q=" + Uri.EscapeDataString("{ resource.service.name = \"frontend\" }"),
        "/api/search/tag/http.method/values",
        "/api/v2/search/tag/resource.service.name/values",
        "/api/v2/search/tag/resource.service.name/values?limit=1",
        "/api/v2/search/tag/span.job.id/values",
        "/api/v2/search/tag/span.http.method/values?q=" + Uri.EscapeDataString("{ status = error }"),
    ];

    [Theory]
    [MemberData(nameof(Urls))]
    public async Task TagSearch_WarmCache_IdenticalResponseWithoutReadingBlocks(string path)
    {
        var cache = new RecordingCache();
        var config = new QueryFrontendConfig();
        config.Search.ConcurrentJobs = 1; // Jobs in plan order: the uncached answer is deterministic under limits too.
        await using var cached = await FrontendHost.StartAsync([BlockSource()], config, jobCache: new SearchJobCache(cache));
        await using var plain = await FrontendHost.StartAsync([BlockSource()], config);
        string url = WithRange(path, Start, End);

        string want = await plain.Http.GetStringAsync(url);
        _reads.Clear();
        string cold = await cached.Http.GetStringAsync(url);
        Assert.Equal(want, cold);
        var read = _reads.Keys.ToList();
        Assert.NotEmpty(read);

        // Sets run in the background: wait until every block job that ran is stored, under st:/stv: keys.
        await WaitUntil(() => cache.Values.Count == read.Count);
        string prefix = path.Contains("/values", StringComparison.Ordinal) ? "stv:single-tenant:" : "st:single-tenant:";
        Assert.All(cache.Values.Keys, k => Assert.StartsWith(prefix, k, StringComparison.Ordinal));
        Assert.All(read, b => Assert.Contains(cache.Values.Keys, k => k.Contains(b.ToString("N"), StringComparison.Ordinal)));

        _reads.Clear();
        string warm = await cached.Http.GetStringAsync(url);
        Assert.Equal(want, warm);
        Assert.Empty(_reads);
    }

    [Fact]
    public async Task TagValues_RangeCutsBlock_NotCached()
    {
        var cache = new RecordingCache();
        await using var cached = await FrontendHost.StartAsync([BlockSource()], jobCache: new SearchJobCache(cache));
        await using var plain = await FrontendHost.StartAsync([BlockSource()]);
        string url = WithRange("/api/v2/search/tag/resource.service.name/values", TestData.T0 + 5, End);
        string want = await plain.Http.GetStringAsync(url);
        for (int i = 0; i < 2; i++)
        {
            _reads.Clear();
            Assert.Equal(want, await cached.Http.GetStringAsync(url));
            Assert.Equal(2, _reads.Count);
        }

        Assert.Null(TagJobCache.ValuesKey("single-tenant", Job(BlockA), new TagValuesQuery { Tag = "resource.service.name", StartUnixSeconds = TestData.T0 + 5, EndUnixSeconds = End }, null, 0));
        Assert.Equal(0, cache.Gets);
        Assert.Empty(cache.Values);
    }

    [Fact]
    public async Task TagValues_RunFullBeforeJobEnds_TruncatedJobNotStored()
    {
        var cache = new RecordingCache();
        var config = new QueryFrontendConfig();
        config.Search.ConcurrentJobs = 2;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slowStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool phase2 = false;

        // Block A fills limit=2 at once. Block B adds one value, then waits (ignoring cancellation) and returns
        // without the rest: a job cut short because the run was already full. Its partial result must not be stored.
        SearchJob Slow() => new("slow", _ => throw new InvalidOperationException("reader only"), isBlock: true)
        {
            Block = new SearchJobBlock(BlockB, TestData.T0 - 10, TestData.T0 + 100),
            CollectTagValues = async (c, _, _, _) =>
            {
                c.Add(Span("x1"));
                if (!phase2)
                {
                    slowStarted.TrySetResult();
                    await gate.Task;
                    return;
                }

                c.Add(Span("x2"));
            },
        };
        SearchJob Fast() => new("fast", _ => throw new InvalidOperationException("reader only"), isBlock: true)
        {
            Block = new SearchJobBlock(BlockA, TestData.T0 - 10, TestData.T0 + 100),
            CollectTagValues = async (c, _, _, _) =>
            {
                await slowStarted.Task;
                c.Add(Span("a1"));
                c.Add(Span("a2"));
            },
        };
        var source = new DelegateSearchSource("blocks", isRecent: true, (_, _, _) =>
            ValueTask.FromResult<IReadOnlyList<SearchJob>>(phase2 ? [Slow()] : [Slow(), Fast()]));
        var frontend = new SearchFrontend(config, [source], null, new FixedTime(), new SearchJobCache(cache));
        var query = new TagValuesQuery { Tag = "span.k", Limit = 2 };

        var (first, _) = await frontend.SearchTagValuesAsync(["single-tenant"], query, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(["a1", "a2"], first.Values.Select(v => v.Value));
        string keyA = TagJobCache.ValuesKey("single-tenant", Fast(), query, null, 0)!;
        string keyB = TagJobCache.ValuesKey("single-tenant", Slow(), query, null, 0)!;
        await WaitUntil(() => cache.Values.ContainsKey(keyA));

        // The cut-short job now returns (its token is cancelled): nothing may be stored for it. Block B alone must
        // then answer with both of its values, never the one the cut-short job had.
        gate.TrySetResult();
        phase2 = true;
        var (second, _) = await frontend.SearchTagValuesAsync(["single-tenant"], query, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(["x1", "x2"], second.Values.Select(v => v.Value));
        await WaitUntil(() => cache.Values.ContainsKey(keyB));
        Assert.Equal(["x1", "x2"], TagJobCache.DecodeValues(cache.Values[keyB], "span.k", 2, 0)!.Value.Values.Values.Select(v => v.Value));
        Assert.Equal(1, cache.SetsOf(keyB));
    }

    [Theory]
    [InlineData("SearchTagsV2")]
    [InlineData("SearchTags")]
    [InlineData("SearchTagValuesV2")]
    [InlineData("SearchTagValues")]
    public async Task GrpcStreaming_WarmCache_SameFinalMessageWithoutReadingBlocks(string method)
    {
        var cache = new RecordingCache();
        await using var cached = await FrontendHost.StartAsync([BlockSource()], jobCache: new SearchJobCache(cache));
        await using var plain = await FrontendHost.StartAsync([BlockSource()]);
        byte[] request = [];
        if (method.StartsWith("SearchTagValues", StringComparison.Ordinal))
        {
            using var w = new Rubato.Common.Otlp.ProtoWriter();
            w.WriteStringField(1, method.EndsWith("V2", StringComparison.Ordinal) ? "resource.service.name" : "service.name");
            request = w.ToArray();
        }

        async Task<string> Final(FrontendHost host)
        {
            using var client = new Rubato.Grpc.GrpcClient(host.Address);
            string last = string.Empty;
            await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, method, request).WithCancellation(new CancellationTokenSource(Timeout).Token))
            {
                last = Convert.ToHexString(m.Span);
            }

            return last;
        }

        string want = await Final(plain);
        Assert.NotEmpty(want);
        _reads.Clear();
        Assert.Equal(want, await Final(cached));
        await WaitUntil(() => cache.Values.Count == 2);
        _reads.Clear();
        Assert.Equal(want, await Final(cached));
        Assert.Empty(_reads);
    }

    [Fact]
    public async Task TagValuesAndSearch_BlockVanishedDuringRead_PartialResultNotStored()
    {
        var cache = new RecordingCache();
        bool vanished = true;
        var config = new QueryFrontendConfig();
        // Phase 1: the block disappears after one trace (the reader and the fetcher end quietly). Phase 2: whole.
        var source = new DelegateSearchSource("blocks", isRecent: true, (_, _, _) =>
        {
            bool gone = vanished;
            var traces = gone ? TestData.Small()[..1] : TestData.Small();
            return ValueTask.FromResult<IReadOnlyList<SearchJob>>(
            [
                new SearchJob("block", _ => ValueTask.FromResult<ISpansetFetcher>(new TraceModelFetcher(traces)), isBlock: true)
                {
                    Block = new SearchJobBlock(BlockA, TestData.T0 - 10, TestData.T0 + 100),
                    DataVanished = () => gone,
                    CollectTagValues = (c, _, _, ct) => Read(BlockA, traces, c.Add, () => c.IsFull, ct),
                },
            ]);
        });
        var frontend = new SearchFrontend(config, [source], null, new FixedTime(), new SearchJobCache(cache));
        var tags = new TagValuesQuery { Tag = "resource.service.name" };
        var search = SearchRequestParser.ParseSearch(p => p == "q" ? "{ }" : null, new SearchFrontendConfig());

        var (partial, _) = await frontend.SearchTagValuesAsync(["single-tenant"], tags, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(["frontend", "db"], partial.Values.Select(v => v.Value));
        Assert.Single((await frontend.SearchAsync(["single-tenant"], search, CancellationToken.None).WaitAsync(Timeout)).Traces);

        vanished = false;
        var (whole, _) = await frontend.SearchTagValuesAsync(["single-tenant"], tags, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(["frontend", "db", "worker"], whole.Values.Select(v => v.Value));
        Assert.Equal(3, (await frontend.SearchAsync(["single-tenant"], search, CancellationToken.None).WaitAsync(Timeout)).Traces.Count);
        string valuesKey = TagJobCache.ValuesKey("single-tenant", Job(BlockA), tags, null, 0)!;
        string searchKey = SearchJobCache.KeyFor("single-tenant", Job(BlockA), search)!;
        await WaitUntil(() => cache.Values.ContainsKey(valuesKey) && cache.Values.ContainsKey(searchKey));
        Assert.Equal(1, cache.SetsOf(valuesKey));
        Assert.Equal(1, cache.SetsOf(searchKey));
        Assert.Equal(3, SearchJobCache.Decode(cache.Values[searchKey])!.Traces.Count);
    }

    [Fact]
    public async Task TagNames_CorruptOrMissingValue_RecomputedAndReplaced()
    {
        var cache = new RecordingCache();
        await using var cached = await FrontendHost.StartAsync([BlockSource()], jobCache: new SearchJobCache(cache));
        string url = WithRange("/api/v2/search/tags?scope=span", Start, End);
        string want = await cached.Http.GetStringAsync(url);
        await WaitUntil(() => cache.Values.Count == 2);
        var keys = cache.Values.Keys.Order(StringComparer.Ordinal).ToList();
        cache.Values[keys[0]] = [1, 0, 0, 5, 9]; // Right version, a count past the value.
        cache.Values[keys[1]] = [2, 0, 0, 0];    // Unknown version.

        _reads.Clear();
        Assert.Equal(want, await cached.Http.GetStringAsync(url));
        Assert.Equal(2, _reads.Count);
        await WaitUntil(() => keys.All(k => TagJobCache.DecodeNames(cache.Values[k], "span", 0, 0) is not null));

        // A missing entry runs that job only.
        cache.Values.TryRemove(keys[0], out _);
        _reads.Clear();
        Assert.Equal(want, await cached.Http.GetStringAsync(url));
        Assert.Single(_reads);
    }

    [Fact]
    public void Codec_EncodeDecode_SameEntriesOrderAndExceeded()
    {
        var names = new TagNamesCollector(null, 0, 20);
        foreach (var s in TestData.Small().SelectMany(SpansOf))
        {
            names.Add(s);
        }

        Assert.True(names.Exceeded);
        var decoded = TagJobCache.DecodeNames(TagJobCache.EncodeNames(names, 1234), null, 0, 20);
        Assert.NotNull(decoded);
        Assert.Equal(names.Added, decoded.Value.Names.Added);
        Assert.True(decoded.Value.Names.Exceeded);
        Assert.Equal(1234UL, decoded.Value.InspectedBytes);

        var values = new TagValuesCollector("span.job.id");
        var values2 = new TagValuesCollector("status");
        foreach (var s in TestData.Small().SelectMany(SpansOf))
        {
            values.Add(s);
            values2.Add(s);
        }

        byte[] bytes = TagJobCache.EncodeValues(values, 0);
        var back = TagJobCache.DecodeValues(bytes, "span.job.id", 0, 0);
        Assert.Equal([("int", "7")], back!.Value.Values.Values);
        Assert.False(back.Value.Values.Exceeded);
        Assert.Equal(values2.Values, TagJobCache.DecodeValues(TagJobCache.EncodeValues(values2, 0), "status", 0, 0)!.Value.Values.Values);
        Assert.Null(TagJobCache.DecodeValues(bytes[..^1], "span.job.id", 0, 0));
        Assert.Null(TagJobCache.DecodeValues([.. bytes, 0], "span.job.id", 0, 0));
        byte[] badType = (byte[])bytes.Clone();
        badType[4] = 9; // The first entry's type byte.
        Assert.Null(TagJobCache.DecodeValues(badType, "span.job.id", 0, 0));
    }

    [Fact]
    public void Key_RequestParameters_ChangeKeyOnlyWhenTheyChangeTheAnswer()
    {
        var job = Job(BlockA);
        string? K(TagNamesQuery q, long maxBytes = 0) => TagJobCache.NamesKey("t", job, q, SearchRequestParser.TryParseFilter(q.Query), maxBytes);
        var q = new TagNamesQuery { Query = "{ .a = \"x\" }" };
        Assert.StartsWith("st:t:", K(q), StringComparison.Ordinal);
        Assert.EndsWith(":" + BlockA.ToString("N") + ":0:0", K(q), StringComparison.Ordinal);
        Assert.Equal(K(q), K(q with { Query = "{.a=\"x\"}" }));
        Assert.Equal(K(q with { Scope = "all" }), K(q));
        Assert.Equal(K(q with { Query = "{ not traceql" }), K(q with { Query = null }));
        Assert.Equal(K(q), K(q with { StartUnixSeconds = Start, EndUnixSeconds = End }));
        Assert.NotEqual(K(q), K(q with { Query = "{ .a = \"y\" }" }));
        Assert.NotEqual(K(q), K(q with { Scope = "span" }));
        Assert.NotEqual(K(q), K(q with { Limit = 5 }));
        Assert.NotEqual(K(q), K(q, maxBytes: 100));
        Assert.NotEqual(K(q), TagJobCache.NamesKey("u", job, q, SearchRequestParser.TryParseFilter(q.Query), 0));
        Assert.Null(TagJobCache.NamesKey("t", SearchJob.ForFetcher("ingester", new TraceModelFetcher([])), q, null, 0));
        var v = new TagValuesQuery { Tag = "span.a" };
        Assert.StartsWith("stv:t:", TagJobCache.ValuesKey("t", job, v, null, 0), StringComparison.Ordinal);
        Assert.NotEqual(TagJobCache.ValuesKey("t", job, v, null, 0), TagJobCache.ValuesKey("t", job, v with { Tag = "span.b" }, null, 0));
    }

    private static string WithRange(string path, long start, long end) =>
        path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "start=" + start.ToString(CultureInfo.InvariantCulture) + "&end=" + end.ToString(CultureInfo.InvariantCulture);

    private static SearchJob Job(Guid id) =>
        new("block " + id, _ => throw new InvalidOperationException("not opened"), isBlock: true) { Block = new SearchJobBlock(id, TestData.T0 - 10, TestData.T0 + 100) };

    private static List<EvalSpan> SpansOf(Trace trace) =>
        [.. new TraceModelFetcher([trace]).FetchAsync(new FetchSpansRequest(), CancellationToken.None).ToBlockingEnumerable().SelectMany(ss => ss.Spans)];

    private static EvalSpan Span(string value)
    {
        var t = TestData.MakeTrace(1, "svc", "root", TestData.T0, 1, "k", AnyValue.String(value));
        return SpansOf(t)[0];
    }

    /// <summary>Two immutable "blocks" (traces 1+2, trace 3) with block readers and span fetchers; counts reads per block.</summary>
    private DelegateSearchSource BlockSource()
    {
        var all = TestData.Small();
        var blocks = new (Guid Id, List<Trace> Traces)[] { (BlockA, [all[0], all[1]]), (BlockB, [all[2]]) };
        return new DelegateSearchSource("blocks", isRecent: true, (_, _, _) => ValueTask.FromResult<IReadOnlyList<SearchJob>>(
            [.. blocks.Select(b => new SearchJob("block " + b.Id, _ =>
            {
                _reads.AddOrUpdate(b.Id, 1, (_, n) => n + 1);
                return ValueTask.FromResult<ISpansetFetcher>(new TraceModelFetcher(b.Traces));
            }, isBlock: true)
            {
                Block = new SearchJobBlock(b.Id, TestData.T0 - 10, TestData.T0 + 100),
                CollectTagNames = (c, _, _, ct) => Read(b.Id, b.Traces, c.Add, () => c.IsFull, ct),
                CollectTagValues = (c, _, _, ct) => Read(b.Id, b.Traces, c.Add, () => c.IsFull, ct),
            })]));
    }

    private Task Read(Guid block, List<Trace> traces, Action<EvalSpan> add, Func<bool> full, CancellationToken ct)
    {
        _reads.AddOrUpdate(block, 1, (_, n) => n + 1);
        foreach (var s in traces.SelectMany(SpansOf))
        {
            ct.ThrowIfCancellationRequested();
            if (full())
            {
                break;
            }

            add(s);
        }

        return Task.CompletedTask;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10); // Polling interval, not a fixed wait.
        }
    }

    /// <summary>An in-process cache whose entries the test reads and damages; counts gets and sets per key.</summary>
    private sealed class RecordingCache : ICache
    {
        private readonly ConcurrentDictionary<string, int> _sets = new(StringComparer.Ordinal);
        private int _gets;

        public ConcurrentDictionary<string, byte[]> Values { get; } = new(StringComparer.Ordinal);

        public string Name => "frontend-search";

        public int Gets => Volatile.Read(ref _gets);

        public int SetsOf(string key) => _sets.TryGetValue(key, out int n) ? n : 0;

        public ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _gets);
            return ValueTask.FromResult(Values.TryGetValue(key, out var v) ? v : null);
        }

        public ValueTask SetAsync(string key, ReadOnlyMemory<byte> value, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
        {
            Values[key] = value.ToArray();
            _sets.AddOrUpdate(key, 1, (_, n) => n + 1);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
