using System.Runtime.CompilerServices;
using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;
using static Rubato.TraceQL.Tests.Engine.Fixture;

namespace Rubato.TraceQL.Tests.Engine;

public sealed class SearchEngineTests
{
    /// <summary>Runs the real in-memory fetcher with every condition removed: the "fetch everything" baseline.</summary>
    private sealed class NoPushdownFetcher(ISpansetFetcher inner) : ISpansetFetcher
    {
        public IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, CancellationToken cancellationToken) =>
            inner.FetchAsync(request with { Conditions = [], AllConditions = false }, cancellationToken);
    }

    private static readonly string[] s_atoms =
    [
        "span.http.status_code >= 500", "span.http.method = \"GET\"", ".region = \"eu\"", "resource.service.name = \"cart\"",
        "duration > 5ms", "status = error", "kind = server", "span.tags != \"a\"", "span.http.method = nil",
        "event:name = \"exception\"", "link.link.kind = \"follows\"", "span.ratio * 10 > 4", "instrumentation:version = \"1.1\"",
        "span:childCount > 0", "span.nums > 3", "!(span.cached = true)", "trace:rootService = \"frontend\"", "true",
    ];

    private static readonly string[] s_spansetOps = ["&&", "||", ">", "<", ">>", "<<", "~", "!>", "!>>", "!<", "!<<", "!~", "&>", "&>>", "&<", "&<<", "&~"];

    private static string RandomField(Random rng, int depth)
    {
        if (depth == 0 || rng.Next(3) == 0)
        {
            return s_atoms[rng.Next(s_atoms.Length)];
        }

        return rng.Next(3) switch
        {
            0 => $"({RandomField(rng, depth - 1)} && {RandomField(rng, depth - 1)})",
            1 => $"({RandomField(rng, depth - 1)} || {RandomField(rng, depth - 1)})",
            _ => $"!({RandomField(rng, depth - 1)})",
        };
    }

    private static string RandomQuery(Random rng)
    {
        string Filter() => "{ " + RandomField(rng, 2) + " }";
        string q = rng.Next(3) == 0 ? Filter() : $"{Filter()} {s_spansetOps[rng.Next(s_spansetOps.Length)]} {Filter()}";
        return rng.Next(6) switch
        {
            0 => q + " | count() > 1",
            1 => q + " | { " + RandomField(rng, 1) + " }",
            2 => q + " | count() > 2 | { " + RandomField(rng, 1) + " }",
            3 => q + " | by(resource.service.name) | { " + RandomField(rng, 1) + " } | count() > 1",
            _ => q,
        };
    }

    [Fact]
    public async Task SearchAsync_RandomQueriesWithPushdown_SameAsFetchingEverything()
    {
        var rng = new Random(20261121);
        int filtered = 0;
        for (int i = 0; i < 250; i++)
        {
            string q = RandomQuery(rng);
            var pushed = new TraceModelFetcher(Traces);
            var withPushdown = await QueryTableTests.EngineMatches(q, pushed);
            var without = await QueryTableTests.EngineMatches(q, new NoPushdownFetcher(new TraceModelFetcher(Traces)));

            Assert.True(without.SequenceEqual(withPushdown, new MatchComparer()), $"pushdown changed the result of {q}");
            if (!ConditionExtractor.Extract(TraceQLParser.ParseAndValidate(q)).FetchesEverything)
            {
                filtered++;
            }
        }

        Assert.True(filtered > 50, $"only {filtered} random queries pushed conditions down");
    }

    private sealed class MatchComparer : IEqualityComparer<KeyValuePair<string, List<ulong>>>
    {
        public bool Equals(KeyValuePair<string, List<ulong>> x, KeyValuePair<string, List<ulong>> y) => x.Key == y.Key && x.Value.SequenceEqual(y.Value);

        public int GetHashCode(KeyValuePair<string, List<ulong>> obj) => obj.Key.GetHashCode(StringComparison.Ordinal);
    }

    [Fact]
    public async Task FetchAsync_SelectiveConditions_ReturnsOnlyCandidateSpans()
    {
        var request = ConditionExtractor.Extract(TraceQLParser.ParseAndValidate("{ resource.service.name = \"payment\" && status = error }"));
        var spans = new List<EvalSpan>();
        await foreach (var ss in new TraceModelFetcher(Traces).FetchAsync(request, CancellationToken.None))
        {
            spans.AddRange(ss.Spans);
        }

        Assert.Equal(Spans.Count(s => s.Service == "payment" && s.Span.StatusCode == StatusCode.Error), spans.Count);
    }

    [Fact]
    public async Task SearchAsync_Limit_KeepsFirstTracesAndStopsFetching()
    {
        var fetcher = new TraceModelFetcher(Traces);

        var result = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate("{ }"), fetcher, new SearchOptions { Limit = 5 }, CancellationToken.None);

        // The first five traces read win; the response lists them newest first.
        Assert.Equal(Enumerable.Range(0, 5).Reverse().Select(TraceIdOf), result.Traces.Select(t => t.TraceId));
        Assert.Equal(5, fetcher.TracesRead);
        Assert.Equal(5u, result.Metrics.InspectedTraces);
    }

    [Fact]
    public async Task SearchAsync_SeveralSources_MergesSegmentsAndCountsJobs()
    {
        // Segments of the same traces in two sources: resources split alternately.
        var first = new List<Trace>();
        var second = new List<Trace>();
        foreach (var t in Traces)
        {
            var a = new Trace();
            var b = new Trace();
            for (int i = 0; i < t.ResourceSpans.Count; i++)
            {
                (i % 2 == 0 ? a : b).ResourceSpans.Add(t.ResourceSpans[i]);
            }

            first.Add(a);
            second.Add(b);
        }

        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ }"),
            [new TraceModelFetcher(first), new TraceModelFetcher(second)],
            new SearchOptions { Limit = 100, SpansPerSpanSet = 100 },
            CancellationToken.None);

        Assert.Equal(TraceCount, result.Traces.Count);
        foreach (var t in result.Traces)
        {
            int index = Enumerable.Range(0, TraceCount).First(i => TraceIdOf(i) == t.TraceId);
            Assert.Equal(
                Spans.Where(s => s.TraceIndex == index).Select(s => s.Id).Order(),
                Assert.Single(t.SpanSets).Spans.Select(s => s.SpanId.Value).Order());
        }

        Assert.Equal(2u, result.Metrics.TotalJobs);
        Assert.Equal(2u, result.Metrics.CompletedJobs);
    }

    [Fact]
    public async Task SearchAsync_SeveralSourcesLimitReached_LaterSourcesNotRead()
    {
        var later = new TraceModelFetcher(Traces);

        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ }"), [new TraceModelFetcher(Traces), later], new SearchOptions { Limit = 3 }, CancellationToken.None);

        Assert.Equal(3, result.Traces.Count);
        Assert.Equal(0, later.TracesRead);
    }

    [Fact]
    public async Task SearchAsync_DefaultLimit_Is20()
    {
        var result = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate("{ }"), new TraceModelFetcher(Traces), new SearchOptions(), CancellationToken.None);

        Assert.Equal(20, result.Traces.Count);
    }

    [Fact]
    public async Task SearchAsync_SpansPerSpanSet_ListsAtMostSpssButCountsAllMatched()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ }"), new TraceModelFetcher(Traces), new SearchOptions { Limit = 100, SpansPerSpanSet = 2 }, CancellationToken.None);

        foreach (var t in result.Traces)
        {
            var ss = Assert.Single(t.SpanSets);
            Assert.Equal(2, ss.Spans.Count);
            int index = Enumerable.Range(0, TraceCount).First(i => TraceIdOf(i) == t.TraceId);
            Assert.Equal((uint)Spans.Count(s => s.TraceIndex == index), ss.Matched);
        }
    }

    [Fact]
    public async Task SearchAsync_DefaultSpss_IsThree()
    {
        var result = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate("{ }"), new TraceModelFetcher(Traces), new SearchOptions(), CancellationToken.None);

        Assert.All(result.Traces, t => Assert.Equal(3, t.SpanSets[0].Spans.Count));
    }

    [Fact]
    public async Task SearchAsync_MostRecentHint_KeepsNewestTracesAfterFullScan()
    {
        var fetcher = new TraceModelFetcher(Traces);

        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ } with (most_recent=true)"), fetcher, new SearchOptions { Limit = 3 }, CancellationToken.None);

        Assert.Equal([TraceIdOf(35), TraceIdOf(34), TraceIdOf(33)], result.Traces.Select(t => t.TraceId));
        Assert.Equal(TraceCount, fetcher.TracesRead);
    }

    [Fact]
    public async Task SearchAsync_SampleHint_KeepsTracesBelowHashFraction()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ } with (sample=0.5)"), new TraceModelFetcher(Traces), new SearchOptions { Limit = 100 }, CancellationToken.None);

        var expected = Enumerable.Range(0, TraceCount).Select(TraceIdOf).Where(id => id.Fnv32a() < 0.5 * uint.MaxValue).ToHashSet();
        Assert.InRange(expected.Count, 1, TraceCount - 1);
        Assert.True(expected.SetEquals(result.Traces.Select(t => t.TraceId)));
    }

    [Theory]
    [InlineData("{ } with (sample=1.5)")]
    [InlineData("{ } with (trace_sample=0)")]
    [InlineData("{ } with (sample=false)")]
    [InlineData("{ } with (sample=\"x\")")]
    public void Compile_BadSampleHint_ThrowsClearError(string q)
    {
        var e = Assert.Throws<TraceQLEvaluationException>(() => CompiledSearch.Compile(TraceQLParser.ParseAndValidate(q), new SearchOptions()));

        Assert.Contains("sample", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SearchAsync_SampleTrue_SearchesEverything()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ } with (sample=true)"), new TraceModelFetcher(Traces), new SearchOptions { Limit = 100 }, CancellationToken.None);

        Assert.Equal(TraceCount, result.Traces.Count);
    }

    [Fact]
    public async Task SearchAsync_TimeRange_SkipsTracesOutside()
    {
        long start = (long)(BaseTime + 10_000_000_000UL);
        long end = (long)(BaseTime + 12_500_000_000UL);

        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ }"), new TraceModelFetcher(Traces), new SearchOptions { Limit = 100, StartUnixNanos = start, EndUnixNanos = end }, CancellationToken.None);

        // Traces start at BaseTime + t s and last < 1 s: 9 (may overlap 10 s), 10, 11, 12.
        var expected = Enumerable.Range(0, TraceCount)
            .Where(t =>
            {
                var ts = Spans.Where(s => s.TraceIndex == t).ToList();
                return ts.Min(s => s.Span.StartTimeUnixNano) <= (ulong)end && ts.Max(s => s.Span.EndTimeUnixNano) >= (ulong)start;
            })
            .Select(TraceIdOf);
        Assert.Equal(expected.Reverse(), result.Traces.Select(t => t.TraceId));
    }

    [Fact]
    public async Task SearchAsync_MetricsQuery_RejectedWithClearError()
    {
        var e = await Assert.ThrowsAsync<TraceQLEvaluationException>(() => TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ } | rate()"), new TraceModelFetcher(Traces), new SearchOptions(), CancellationToken.None));

        Assert.Contains("metrics query", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SearchAsync_Cancelled_Throws()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ }"), new TraceModelFetcher(Traces), new SearchOptions(), cts.Token));
    }

    [Fact]
    public async Task SearchAsync_ByGrouping_OneSpansetPerServiceWithAttribute()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ } | by(resource.service.name)"), new TraceModelFetcher(Traces), new SearchOptions { Limit = 100, SpansPerSpanSet = 100 }, CancellationToken.None);

        foreach (var t in result.Traces)
        {
            int index = Enumerable.Range(0, TraceCount).First(i => TraceIdOf(i) == t.TraceId);
            var expected = Spans.Where(s => s.TraceIndex == index).GroupBy(s => s.Service)
                .ToDictionary(g => g.Key, g => g.Select(s => s.Id).Order().ToList());
            var actual = t.SpanSets.ToDictionary(
                ss => Assert.Single(ss.Attributes, a => a.Key == "by(resource.service.name)").Value.String,
                ss => ss.Spans.Select(s => s.SpanId.Value).Order().ToList());
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public async Task SearchAsync_ScalarFilter_ReportsAggregateAsSpansetAttribute()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ kind = server } | count() > 1"), new TraceModelFetcher(Traces), new SearchOptions { Limit = 100 }, CancellationToken.None);

        Assert.NotEmpty(result.Traces);
        foreach (var t in result.Traces)
        {
            var ss = Assert.Single(t.SpanSets);
            var (key, value) = Assert.Single(ss.Attributes);
            Assert.Equal("count()", key);
            Assert.Equal(TraceQLValue.FromInt(ss.Matched), value);
        }
    }

    [Fact]
    public async Task SearchAsync_Select_AddsSelectedAndFilteredAttributesToSpans()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ span.http.status_code = 500 } | select(span.ratio, resource.region, span:kind)"),
            new TraceModelFetcher(Traces),
            new SearchOptions { Limit = 100, SpansPerSpanSet = 100 },
            CancellationToken.None);

        Assert.NotEmpty(result.Traces);
        foreach (var span in result.Traces.SelectMany(t => t.SpanSets).SelectMany(ss => ss.Spans))
        {
            var f = Spans.Single(s => s.Id == span.SpanId.Value);
            var attrs = span.Attributes.ToDictionary(a => a.Key, a => a.Value);
            Assert.Equal(TraceQLValue.FromInt(500), attrs["http.status_code"]);
            Assert.Equal(TraceQLValue.FromFloat(f.Dbl("ratio")!.Value), attrs["ratio"]);
            Assert.Equal(f.Res("region")!.StringValue, attrs["region"].String);
            Assert.Equal(ValueKind.Kind, attrs["kind"].Kind);
        }
    }

    [Fact]
    public async Task SearchAsync_TraceFields_RootServiceNameDurationAndServiceStats()
    {
        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ trace:id = \"" + TraceIdOf(8).ToHex() + "\" }"), new TraceModelFetcher(Traces), new SearchOptions(), CancellationToken.None);

        var t = Assert.Single(result.Traces);
        var ts = Spans.Where(s => s.TraceIndex == 8).ToList();
        Assert.Equal("frontend", t.RootServiceName);
        Assert.Equal("GET /2", t.RootTraceName);
        Assert.Equal(ts.Min(s => s.Span.StartTimeUnixNano), t.StartTimeUnixNano);
        Assert.Equal(ts.Max(s => s.Span.EndTimeUnixNano) - t.StartTimeUnixNano, t.DurationNanos);
        Assert.Equal(ts.Count(s => s.Service == "payment"), t.ServiceStats!["payment"].SpanCount);
        Assert.Equal(ts.Count(s => s.Service == "payment" && s.Span.StatusCode == StatusCode.Error), t.ServiceStats["payment"].ErrorCount);
    }

    [Fact]
    public async Task FetchAsync_AsyncSource_StreamsAndStopsEarly()
    {
        int produced = 0;
        async IAsyncEnumerable<Trace> Source([EnumeratorCancellation] CancellationToken ct = default)
        {
            foreach (var t in Traces)
            {
                await Task.Yield();
                produced++;
                yield return t;
            }
        }

        var result = await TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ status = error }"), new TraceModelFetcher(Source()), new SearchOptions { Limit = 2 }, CancellationToken.None);

        Assert.Equal(2, result.Traces.Count);
        Assert.True(produced < TraceCount, $"source was read to the end ({produced})");
    }

    [Fact]
    public void NestedSet_Compute_NumbersTreeAndCounts()
    {
        // 1 → 2 → 4, 1 → 3; 5 is an orphan (parent 99 missing); 6 ↔ 7 form a cycle.
        ulong[] ids = [1, 2, 3, 4, 5, 6, 7];
        ulong[] parents = [0, 1, 1, 2, 99, 7, 6];
        var left = new int[7];
        var right = new int[7];
        var parent = new int[7];
        var kids = new int[7];

        NestedSet.Compute(ids, parents, left, right, parent, kids);

        Assert.Equal([1, 2, 6, 3, 9, 11, 12], left);
        Assert.Equal([8, 5, 7, 4, 10, 14, 13], right);
        Assert.Equal([-1, 1, 1, 2, -1, -1, 11], parent);
        Assert.Equal([2, 1, 0, 0, 0, 1, 1], kids);
    }

    [Fact]
    public void NestedSet_Compute_MismatchedLengths_Throws()
    {
        Assert.Throws<ArgumentException>(() => NestedSet.Compute(new ulong[2], new ulong[1], new int[2], new int[2], new int[2], new int[2]));
    }

    [Fact]
    public void ValueOps_ArrayAndCoercionRules_AsDocumented()
    {
        var arr = TraceQLValue.FromArray([TraceQLValue.FromString("a"), TraceQLValue.FromString("b")]);

        Assert.True(ValueOps.Compare(Ast.BinaryOp.Equal, arr, TraceQLValue.FromString("b")));
        Assert.False(ValueOps.Compare(Ast.BinaryOp.NotEqual, arr, TraceQLValue.FromString("b")));
        Assert.True(ValueOps.Compare(Ast.BinaryOp.NotEqual, arr, TraceQLValue.FromString("c")));
        Assert.False(ValueOps.Compare(Ast.BinaryOp.NotEqual, arr, TraceQLValue.FromInt(1)));
        Assert.True(ValueOps.Compare(Ast.BinaryOp.Equal, TraceQLValue.FromInt(1_000_000), TraceQLValue.FromDuration(1_000_000)));
        Assert.True(ValueOps.Compare(Ast.BinaryOp.Less, TraceQLValue.FromInt(2), TraceQLValue.FromFloat(2.5)));
        Assert.False(ValueOps.Compare(Ast.BinaryOp.NotEqual, TraceQLValue.Nil, TraceQLValue.FromInt(1)));
        Assert.False(ValueOps.Compare(Ast.BinaryOp.Regex, TraceQLValue.FromString("xab"), TraceQLValue.FromString("ab")));
        Assert.True(ValueOps.Compare(Ast.BinaryOp.Regex, TraceQLValue.FromString("xab"), TraceQLValue.FromString(".ab")));
        Assert.Equal(TraceQLValue.FromInt(7), ValueOps.Arithmetic(Ast.BinaryOp.Add, TraceQLValue.FromInt(3), TraceQLValue.FromInt(4)));
        Assert.Equal(TraceQLValue.FromInt(1), ValueOps.Arithmetic(Ast.BinaryOp.Div, TraceQLValue.FromInt(3), TraceQLValue.FromInt(2)));
        Assert.Equal(TraceQLValue.FromFloat(1.5), ValueOps.Arithmetic(Ast.BinaryOp.Div, TraceQLValue.FromFloat(3), TraceQLValue.FromInt(2)));
        Assert.Equal(TraceQLValue.FromInt(1024), ValueOps.Arithmetic(Ast.BinaryOp.Pow, TraceQLValue.FromInt(2), TraceQLValue.FromInt(10)));
        Assert.Equal(TraceQLValue.FromFloat(0.5), ValueOps.Arithmetic(Ast.BinaryOp.Pow, TraceQLValue.FromInt(2), TraceQLValue.FromInt(-1)));
        Assert.Equal(TraceQLValue.FromDuration(2_000_000), ValueOps.Arithmetic(Ast.BinaryOp.Mul, TraceQLValue.FromDuration(1_000_000), TraceQLValue.FromInt(2)));
        Assert.True(ValueOps.Arithmetic(Ast.BinaryOp.Mod, TraceQLValue.FromInt(3), TraceQLValue.FromInt(0)).IsNil);
    }

    [Fact]
    public void ValueOps_InvalidRegex_ThrowsEvaluationError()
    {
        var e = Assert.Throws<TraceQLEvaluationException>(() => ValueOps.GetRegex("(unclosed"));

        Assert.Contains("(unclosed", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(800L, "800ns")]
    [InlineData(1_500_000L, "1.5ms")]
    [InlineData(2_000L, "2µs")]
    [InlineData(61_500_000_000L, "1m1.5s")]
    [InlineData(3_723_000_000_000L, "1h2m3s")]
    [InlineData(-5_000_000L, "-5ms")]
    public void GoDuration_Format_MatchesGo(long nanos, string expected) => Assert.Equal(expected, ValueText.GoDuration(nanos));

    [Fact]
    public void SearchResultJson_Write_TempoShape()
    {
        var result = new SearchResult
        {
            Traces =
            [
                new TraceSearchMetadata
                {
                    TraceId = new TraceId(0, 0x2a),
                    RootServiceName = "svc",
                    RootTraceName = "GET /",
                    StartTimeUnixNano = 1_700_000_000_000_000_000,
                    DurationNanos = 12_900_000,
                    SpanSets =
                    {
                        new SpanSetResult
                        {
                            Matched = 2,
                            Spans =
                            {
                                new SpanResult
                                {
                                    SpanId = new SpanId(0xab), Name = "op", StartTimeUnixNano = 1_700_000_000_000_000_001, DurationNanos = 500,
                                    Attributes = { new("http.status_code", TraceQLValue.FromInt(500)), new("status", TraceQLValue.FromStatus(Ast.SpanStatus.Error)) },
                                },
                            },
                            Attributes = { new("by(resource.service.name)", TraceQLValue.FromString("svc")) },
                        },
                    },
                    ServiceStats = new() { ["svc"] = new ServiceStat { SpanCount = 2, ErrorCount = 1 } },
                },
                new TraceSearchMetadata { TraceId = new TraceId(1, 2), StartTimeUnixNano = 5 },
            ],
            Metrics = new SearchMetrics { InspectedTraces = 3, InspectedBytes = 1234, CompletedJobs = 1, TotalJobs = 1 },
        };

        string json = SearchResultJson.ToJson(result);

        const string SpanSet =
            "{\"spans\":[{\"spanID\":\"00000000000000ab\",\"name\":\"op\",\"startTimeUnixNano\":\"1700000000000000001\",\"durationNanos\":\"500\","
            + "\"attributes\":[{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"500\"}},{\"key\":\"status\",\"value\":{\"stringValue\":\"error\"}}]}],"
            + "\"matched\":2,\"attributes\":[{\"key\":\"by(resource.service.name)\",\"value\":{\"stringValue\":\"svc\"}}]}";
        Assert.Equal(
            "{\"traces\":[{\"traceID\":\"2a\",\"rootServiceName\":\"svc\",\"rootTraceName\":\"GET /\",\"startTimeUnixNano\":\"1700000000000000000\",\"durationMs\":12,"
            + "\"spanSet\":" + SpanSet + ",\"spanSets\":[" + SpanSet + "],\"serviceStats\":{\"svc\":{\"spanCount\":2,\"errorCount\":1}}},"
            + "{\"traceID\":\"10000000000000002\",\"rootServiceName\":\"<root span not yet received>\",\"startTimeUnixNano\":\"5\"}],"
            + "\"metrics\":{\"inspectedTraces\":3,\"inspectedBytes\":\"1234\",\"completedJobs\":1,\"totalJobs\":1}}",
            json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(2, doc.RootElement.GetProperty("traces").GetArrayLength());
    }
}
