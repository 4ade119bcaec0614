using System.Text;
using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;
using static Rubato.TraceQL.Tests.Engine.Fixture;

namespace Rubato.TraceQL.Tests.Engine;

public sealed class CombinerAndTagsTests
{
    private static TraceSearchMetadata Md(ulong trace, ulong start, ulong duration, string root, params ulong[] spans)
    {
        var ss = new SpanSetResult { Matched = (uint)spans.Length };
        ss.Spans.AddRange(spans.Select(s => new SpanResult { SpanId = new SpanId(s) }));
        var md = new TraceSearchMetadata
        {
            TraceId = new TraceId(0, trace),
            RootServiceName = root,
            StartTimeUnixNano = start,
            DurationNanos = duration,
        };
        md.SpanSets.Add(ss);
        return md;
    }

    [Fact]
    public void AddTrace_SameTraceFromTwoSources_MergesSpansAndTraceFields()
    {
        var c = new SearchResultCombiner(10, spansPerSpanSet: 10);

        c.AddTrace(Md(1, 100, 50, "", 1, 2));
        c.AddTrace(Md(1, 80, 30, "svc", 2, 3));

        var t = Assert.Single(c.Result().Traces);
        Assert.Equal("svc", t.RootServiceName);
        Assert.Equal(80UL, t.StartTimeUnixNano);
        Assert.Equal(70UL, t.DurationNanos);
        var ss = Assert.Single(t.SpanSets);
        Assert.Equal([1UL, 2, 3], ss.Spans.Select(s => s.SpanId.Value));
        Assert.Equal(3u, ss.Matched);
    }

    [Fact]
    public void AddTrace_MergedSpans_CappedAtSpss()
    {
        var c = new SearchResultCombiner(10, spansPerSpanSet: 2);

        c.AddTrace(Md(1, 1, 1, "a", 1, 2));
        c.AddTrace(Md(1, 1, 1, "a", 3, 4));

        var ss = Assert.Single(Assert.Single(c.Result().Traces).SpanSets);
        Assert.Equal(2, ss.Spans.Count);
    }

    [Fact]
    public void AddTrace_DifferentGroups_KeptAsSeparateSpansets()
    {
        var c = new SearchResultCombiner(10);
        var a = Md(1, 1, 1, "a", 1);
        a.SpanSets[0].Attributes.Add(new("by(x)", TraceQLValue.FromString("p")));
        var b = Md(1, 1, 1, "a", 2);
        b.SpanSets[0].Attributes.Add(new("by(x)", TraceQLValue.FromString("q")));

        c.AddTrace(a);
        c.AddTrace(b);

        Assert.Equal(2, Assert.Single(c.Result().Traces).SpanSets.Count);
    }

    [Fact]
    public void AddTrace_NonGroupAttributes_DoNotSplitSpansets()
    {
        var c = new SearchResultCombiner(10);
        var a = Md(1, 1, 1, "a", 1);
        a.SpanSets[0].Attributes.Add(new("count()", TraceQLValue.FromInt(2)));
        var b = Md(1, 1, 1, "a", 2);
        b.SpanSets[0].Attributes.Add(new("count()", TraceQLValue.FromInt(3)));

        c.AddTrace(a);
        c.AddTrace(b);

        Assert.Single(Assert.Single(c.Result().Traces).SpanSets);
    }

    [Fact]
    public void AddTrace_BeyondLimit_FirstTracesWinButKnownTracesStillMerge()
    {
        var c = new SearchResultCombiner(2);

        Assert.True(c.AddTrace(Md(1, 10, 1, "a", 1)));
        Assert.True(c.AddTrace(Md(2, 20, 1, "a", 2)));
        Assert.True(c.IsComplete);
        Assert.False(c.AddTrace(Md(3, 30, 1, "a", 3)));
        Assert.True(c.AddTrace(Md(1, 10, 1, "a", 4)));

        var r = c.Result();
        Assert.Equal([2UL, 1], r.Traces.Select(t => t.TraceId.Low));
        Assert.Equal(2, r.Traces[1].SpanSets[0].Spans.Count);
    }

    [Fact]
    public void AddTrace_MostRecent_KeepsNewestAndOrdersDescending()
    {
        var c = new SearchResultCombiner(2, mostRecent: true);

        c.AddTrace(Md(1, 10, 1, "a", 1));
        c.AddTrace(Md(2, 30, 1, "a", 2));
        c.AddTrace(Md(3, 20, 1, "a", 3));
        c.AddTrace(Md(4, 5, 1, "a", 4));

        Assert.False(c.IsComplete);
        Assert.Equal([2UL, 3], c.Result().Traces.Select(t => t.TraceId.Low));
    }

    [Fact]
    public void Add_Results_SumsMetrics()
    {
        var c = new SearchResultCombiner(5);

        c.Add(new SearchResult { Metrics = new SearchMetrics { InspectedTraces = 2, InspectedBytes = 10, TotalJobs = 3, CompletedJobs = 1 } });
        c.Add(new SearchResult { Metrics = new SearchMetrics { InspectedTraces = 5, InspectedBytes = 7, CompletedJobs = 2 } });

        var m = c.Result().Metrics;
        Assert.Equal(7u, m.InspectedTraces);
        Assert.Equal(17UL, m.InspectedBytes);
        Assert.Equal(3u, m.TotalJobs);
        Assert.Equal(3u, m.CompletedJobs);
    }

    [Fact]
    public async Task Combiner_SplitSourcesOfSameTraces_EqualsSingleSearch()
    {
        // Each trace split into two halves (by resource), searched as two jobs, then combined.
        var first = new List<Rubato.Common.Model.Trace>();
        var second = new List<Rubato.Common.Model.Trace>();
        foreach (var t in Traces)
        {
            var a = new Rubato.Common.Model.Trace();
            var b = new Rubato.Common.Model.Trace();
            for (int i = 0; i < t.ResourceSpans.Count; i++)
            {
                (i % 2 == 0 ? a : b).ResourceSpans.Add(t.ResourceSpans[i]);
            }

            first.Add(a);
            second.Add(b);
        }

        var query = TraceQLParser.ParseAndValidate("{ span.http.status_code >= 400 }");
        var options = new SearchOptions { Limit = 100, SpansPerSpanSet = 100 };
        var whole = await TraceQLEngine.SearchAsync(query, new TraceModelFetcher(Traces), options, CancellationToken.None);
        var c = new SearchResultCombiner(100, spansPerSpanSet: 100);
        c.Add(await TraceQLEngine.SearchAsync(query, new TraceModelFetcher(first), options, CancellationToken.None));
        c.Add(await TraceQLEngine.SearchAsync(query, new TraceModelFetcher(second), options, CancellationToken.None));
        var combined = c.Result();

        static Dictionary<TraceId, List<ulong>> Ids(SearchResult r) =>
            r.Traces.ToDictionary(t => t.TraceId, t => t.SpanSets.SelectMany(s => s.Spans).Select(s => s.SpanId.Value).Order().ToList());
        var expected = Ids(whole);
        var actual = Ids(combined);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (id, spans) in expected)
        {
            Assert.Equal(spans, actual[id]);
        }

        // Trace-level fields come only from the sources that matched, so they cover at most the whole trace.
        foreach (var t in combined.Traces)
        {
            var w = whole.Traces.Single(x => x.TraceId == t.TraceId);
            Assert.True(t.StartTimeUnixNano >= w.StartTimeUnixNano);
            Assert.True(t.StartTimeUnixNano + t.DurationNanos <= w.StartTimeUnixNano + w.DurationNanos);
            Assert.True(t.RootServiceName.Length == 0 || t.RootServiceName == w.RootServiceName);
        }
    }

    private static List<EvalSpan> AllEvalSpans() => Traces.SelectMany(t => TraceModelFetcher.Build(t, out _)).ToList();

    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    [Fact]
    public void TagNames_AllScopes_ListsAttributeKeysPerScopeAndIntrinsics()
    {
        var c = new TagNamesCollector();
        foreach (var s in AllEvalSpans())
        {
            c.Add(s);
        }

        var scopes = c.Scopes().ToDictionary(s => s.Name, s => s.Tags);
        Assert.Equal(["bools", "cached", "fnums", "http.method", "http.status_code", "nums", "ratio", "region", "tags"], scopes["span"]);
        Assert.Equal(["pod.count", "region", "service.name"], scopes["resource"]);
        Assert.Equal(["exception.type"], scopes["event"]);
        Assert.Equal(["link.kind"], scopes["link"]);
        Assert.Equal(["lib.lang"], scopes["instrumentation"]);
        Assert.Contains("span:duration", scopes["intrinsic"]);
        string json = Json(c.WriteJson);
        Assert.StartsWith("{\"scopes\":[{\"name\":\"span\",\"tags\":[\"bools\",", json, StringComparison.Ordinal);
    }

    [Fact]
    public void TagNames_OneScope_OnlyThatScope()
    {
        var c = new TagNamesCollector("resource");
        foreach (var s in AllEvalSpans())
        {
            c.Add(s);
        }

        Assert.Equal("resource", Assert.Single(c.Scopes()).Name);
    }

    [Fact]
    public void TagNames_UnknownScope_Throws() => Assert.Throws<ArgumentException>(() => new TagNamesCollector("spans"));

    [Fact]
    public void TagValues_TypedValuesAcrossJobs_DistinctAndCombined()
    {
        var spans = AllEvalSpans();
        var a = new TagValuesCollector("resource.service.name");
        var b = new TagValuesCollector("resource.service.name");
        for (int i = 0; i < spans.Count; i++)
        {
            (i % 2 == 0 ? a : b).Add(spans[i]);
        }

        a.Add(b);

        Assert.Equal(["cart", "checkout", "frontend", "payment"], a.Values.Select(v => v.Value).Order());
        Assert.All(a.Values, v => Assert.Equal("string", v.Type));
    }

    [Theory]
    [InlineData("span.http.status_code", "int", "200")]
    [InlineData("span.ratio", "float", "0.5")]
    [InlineData("span.cached", "bool", "true")]
    [InlineData("span:status", "keyword", "error")]
    [InlineData("span:kind", "keyword", "producer")]
    [InlineData("span.tags", "string", "bc")]
    [InlineData("event.exception.type", "string", "IOError")]
    [InlineData("span:duration", "duration", "1ms")]
    public void TagValues_Types_AsTempo(string tag, string type, string value)
    {
        var c = new TagValuesCollector(tag);
        foreach (var s in AllEvalSpans())
        {
            c.Add(s);
        }

        Assert.Contains((type, value), c.Values);
    }

    [Fact]
    public void TagValues_Limit_StopsAtLimit()
    {
        var c = new TagValuesCollector("span:name", limit: 3);
        foreach (var s in AllEvalSpans())
        {
            c.Add(s);
        }

        Assert.True(c.IsFull);
        Assert.Equal(3, c.Values.Count);
        Assert.StartsWith("{\"tagValues\":[{\"type\":\"string\",\"value\":", Json(c.WriteJson), StringComparison.Ordinal);
    }

    [Fact]
    public void TagValues_NotAField_Throws() => Assert.Throws<ArgumentException>(() => new TagValuesCollector("1 + 1"));
}
