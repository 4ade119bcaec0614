using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;
using static Rubato.TraceQL.Tests.Engine.Fixture;

namespace Rubato.TraceQL.Tests.Engine;

/// <summary>
/// Every query runs through the engine over the fixture; the expected matched spans come from plain LINQ over the OTLP
/// model (never from the engine), so the two implementations check each other.
/// </summary>
public sealed class QueryTableTests
{
    private delegate IEnumerable<FSpan> Oracle(List<FSpan> trace);

    private static Oracle Where(Func<FSpan, bool> p) => ts => ts.Where(p);

    private static string SpanHex(int t, int k) => new SpanId(SpanIdOf(t, k)).ToHex();

    private static string TraceHex(int t) => TraceIdOf(t).ToHex();

    private static string? Method(FSpan s) => s.Str("http.method");

    private static long? Code(FSpan s) => s.Int("http.status_code");

    private static AnyValue? Unscoped(FSpan s, string key) => s.Attr(key) ?? s.Res(key);

    private static bool AnyEvent(FSpan s, Func<SpanEvent, bool> p) => s.Span.Events.Any(p);

    private static string? EventAttr(SpanEvent e, string key) => e.Attributes.FirstOrDefault(a => a.Key == key)?.Value.StringValue;

    private static ulong TraceDuration(FSpan s)
    {
        var ts = Spans.Where(x => x.TraceIndex == s.TraceIndex).ToList();
        return ts.Max(x => x.Span.EndTimeUnixNano) - ts.Min(x => x.Span.StartTimeUnixNano);
    }

    private static FSpan? Root(FSpan s) => Spans.FirstOrDefault(x => x.TraceIndex == s.TraceIndex && x.Span.ParentSpanId.IsEmpty);

    private static IEnumerable<AnyValue> Elements(FSpan s, string key) => s.Attr(key)?.ArrayValue ?? [];

    private static Oracle And(Func<FSpan, bool> a, Func<FSpan, bool> b) => ts =>
    {
        var l = ts.Where(a).ToList();
        var r = ts.Where(b).ToList();
        return l.Count > 0 && r.Count > 0 ? l.Union(r) : [];
    };

    private static Oracle Or(Func<FSpan, bool> a, Func<FSpan, bool> b) => ts => ts.Where(a).Union(ts.Where(b));

    private enum Mode
    {
        Match,
        Not,
        Union,
    }

    /// <summary>rel(a, b): b is in the relation to a (b child of a, ...).</summary>
    private static Oracle Struct(Func<FSpan, bool> pa, Func<FSpan, bool> pb, Func<FSpan, FSpan, bool> rel, Mode mode) => ts =>
    {
        var a = ts.Where(pa).ToList();
        var b = ts.Where(pb).ToList();
        if (a.Count == 0 || b.Count == 0)
        {
            return [];
        }

        var matchedB = b.Where(y => a.Any(x => x != y && rel(x, y)) != (mode == Mode.Not)).ToList();
        if (mode != Mode.Union || matchedB.Count == 0)
        {
            return matchedB;
        }

        return a.Where(x => b.Any(y => x != y && rel(x, y))).Union(matchedB);
    };

    private static readonly Func<FSpan, FSpan, bool> Child = (a, b) => Parent(b) == a;
    private static readonly Func<FSpan, FSpan, bool> ParentOf = (a, b) => Parent(a) == b;
    private static readonly Func<FSpan, FSpan, bool> Desc = (a, b) => IsAncestor(a, b);
    private static readonly Func<FSpan, FSpan, bool> Anc = (a, b) => IsAncestor(b, a);
    private static readonly Func<FSpan, FSpan, bool> Sib = AreSiblings;

    private static bool Svc(FSpan s, string name) => s.Service == name;

    private static readonly Dictionary<string, Oracle> s_cases = new()
    {
        ["{}"] = Where(_ => true),
        ["{ true }"] = Where(_ => true),
        ["{ false }"] = Where(_ => false),
        ["{ span.http.status_code >= 500 }"] = Where(s => Code(s) >= 500),
        ["{ span.http.status_code = 200.0 }"] = Where(s => Code(s) == 200),
        ["{ 500 <= span.http.status_code }"] = Where(s => Code(s) >= 500),
        ["{ span.http.status_code = \"500\" }"] = Where(_ => false),
        ["{ span.http.status_code != \"500\" }"] = Where(_ => false),
        ["{ span.http.status_code != 404 }"] = Where(s => Code(s) is { } c && c != 404),
        ["{ span.http.status_code < 201 }"] = Where(s => Code(s) < 201),
        ["{ span.http.method = \"GET\" }"] = Where(s => Method(s) == "GET"),
        ["{ \"GET\" = span.http.method }"] = Where(s => Method(s) == "GET"),
        ["{ span.http.method =~ \"GE.*\" }"] = Where(s => Method(s) == "GET"),
        ["{ span.http.method =~ \"E\" }"] = Where(_ => false),
        ["{ span.http.method !~ \"GET|POST\" }"] = Where(s => Method(s) is { } m && m != "GET" && m != "POST"),
        ["{ span.http.method > \"P\" }"] = Where(s => Method(s) is { } m && string.CompareOrdinal(m, "P") > 0),
        ["{ span.ratio > 0.5 }"] = Where(s => s.Dbl("ratio") > 0.5),
        ["{ span.ratio <= 0.2 }"] = Where(s => s.Dbl("ratio") <= 0.2),
        ["{ .region = \"ap\" }"] = Where(s => Unscoped(s, "region")?.StringValue == "ap"),
        ["{ .region = \"eu\" }"] = Where(s => Unscoped(s, "region")?.StringValue == "eu"),
        ["{ resource.region = \"eu\" }"] = Where(s => s.Res("region")?.StringValue == "eu"),
        ["{ span.region = \"eu\" }"] = Where(_ => false),
        ["{ resource.service.name = \"cart\" }"] = Where(s => Svc(s, "cart")),
        ["{ resource.pod.count > 5 }"] = Where(s => s.Res("pod.count")!.IntValue > 5),
        ["{ duration > 10ms }"] = Where(s => s.DurationNanos > 10_000_000),
        ["{ span:duration <= 5ms }"] = Where(s => s.DurationNanos <= 5_000_000),
        ["{ trace:duration > 40ms }"] = Where(s => TraceDuration(s) > 40_000_000),
        ["{ name = \"GET /1\" }"] = Where(s => s.Span.Name == "GET /1"),
        ["{ span:name != \"cart.op1\" }"] = Where(s => s.Span.Name != "cart.op1"),
        ["{ status = error }"] = Where(s => s.Span.StatusCode == StatusCode.Error),
        ["{ status != ok }"] = Where(s => s.Span.StatusCode != StatusCode.Ok),
        ["{ span:status = unset }"] = Where(s => s.Span.StatusCode == StatusCode.Unset),
        ["{ kind = server }"] = Where(s => s.Span.Kind == SpanKind.Server),
        ["{ span:kind = client }"] = Where(s => s.Span.Kind == SpanKind.Client),
        ["{ kind != internal }"] = Where(s => s.Span.Kind != SpanKind.Internal),
        ["{ span:statusMessage = \"boom\" }"] = Where(s => s.Span.StatusMessage == "boom"),
        ["{ span:id = \"" + SpanHex(5, 3) + "\" }"] = Where(s => s.Id == SpanIdOf(5, 3)),
        ["{ span:parentID = \"" + SpanHex(5, 1) + "\" }"] = Where(s => s.Span.ParentSpanId.Value == SpanIdOf(5, 1)),
        ["{ span:childCount = 2 }"] = Where(s => ChildCount(s) == 2),
        ["{ childCount = 0 }"] = Where(s => ChildCount(s) == 0),
        ["{ trace:rootName = \"GET /1\" }"] = Where(s => Root(s)?.Span.Name == "GET /1"),
        ["{ trace:rootService = \"frontend\" }"] = Where(s => Root(s)?.Service == "frontend"),
        ["{ rootServiceName = \"frontend\" }"] = Where(s => Root(s)?.Service == "frontend"),
        ["{ trace:id = \"" + TraceHex(4) + "\" }"] = Where(s => s.TraceIndex == 4),
        ["{ event:name = \"exception\" }"] = Where(s => AnyEvent(s, e => e.Name == "exception")),
        ["{ event.exception.type = \"IOError\" }"] = Where(s => AnyEvent(s, e => EventAttr(e, "exception.type") == "IOError")),
        ["{ event:name = \"exception\" && event.exception.type = \"none\" }"] = Where(_ => false),
        ["{ event:name = \"cache.miss\" && event.exception.type = \"none\" }"] = Where(s => AnyEvent(s, e => e.Name == "cache.miss")),
        ["{ event:timeSinceStart > 1ms }"] = Where(s => AnyEvent(s, e => e.TimeUnixNano - s.Span.StartTimeUnixNano > 1_000_000)),
        ["{ link:traceID = \"" + TraceHex(1) + "\" }"] = Where(s => s.Span.Links.Any(l => l.TraceId == TraceIdOf(1))),
        ["{ link.link.kind = \"follows\" }"] = Where(s => s.Span.Links.Any(l => l.Attributes.Any(a => a.Key == "link.kind" && a.Value.StringValue == "follows"))),
        ["{ link:spanID = \"" + SpanHex(4, 0) + "\" }"] = Where(s => s.Span.Links.Any(l => l.SpanId.Value == SpanIdOf(4, 0))),
        ["{ instrumentation:name = \"lib-cart\" }"] = Where(s => s.Scope.Scope.Name == "lib-cart"),
        ["{ instrumentation:version = \"1.2\" }"] = Where(s => s.Scope.Scope.Version == "1.2"),
        ["{ instrumentation.lib.lang = \"java\" }"] = Where(s => Svc(s, "payment")),
        ["{ span.cached = true }"] = Where(s => s.Attr("cached") is { Kind: AnyValueKind.Bool, BoolValue: true }),
        ["{ span.cached != true }"] = Where(s => s.Attr("cached") is { Kind: AnyValueKind.Bool, BoolValue: false }),
        ["{ span.tags = \"a\" }"] = Where(s => Elements(s, "tags").Any(e => e.StringValue == "a")),
        ["{ span.tags != \"a\" }"] = Where(s => s.Attr("tags") is not null && !Elements(s, "tags").Any(e => e.StringValue == "a")),
        ["{ span.tags =~ \"b.*\" }"] = Where(s => Elements(s, "tags").Any(e => e.StringValue!.StartsWith('b'))),
        ["{ span.tags !~ \"b.*\" }"] = Where(s => s.Attr("tags") is not null && !Elements(s, "tags").Any(e => e.StringValue!.StartsWith('b'))),
        ["{ span.nums > 8 }"] = Where(s => Elements(s, "nums").Any(e => e.IntValue > 8)),
        ["{ span.nums = 2.0 }"] = Where(s => Elements(s, "nums").Any(e => e.IntValue == 2)),
        ["{ span.fnums = 1.5 }"] = Where(s => Elements(s, "fnums").Any(e => e.DoubleValue == 1.5)),
        ["{ span.bools = true }"] = Where(s => Elements(s, "bools").Any(e => e.BoolValue)),
        ["{ span.http.method = nil }"] = Where(s => s.Attr("http.method") is null),
        ["{ span.http.method != nil }"] = Where(s => s.Attr("http.method") is not null),
        ["{ span.http.status_code + 100 = 300 }"] = Where(s => Code(s) == 200),
        ["{ span.http.status_code * 2 > 900 }"] = Where(s => Code(s) * 2 > 900),
        ["{ span.http.status_code % 100 = 4 }"] = Where(s => Code(s) % 100 == 4),
        ["{ -span.ratio < -0.5 }"] = Where(s => s.Dbl("ratio") > 0.5),
        ["{ span.http.status_code / 100 = 4 }"] = Where(s => Code(s) == 404),
        ["{ span.ratio / 2 = 0.25 }"] = Where(s => s.Dbl("ratio") == 0.5),
        ["{ span.http.status_code ^ 2 = 40000 }"] = Where(s => Code(s) == 200),
        ["{ span.http.status_code ^ 2 > 200000 }"] = Where(s => Code(s) is { } c && (double)c * c > 200000),
        ["{ !(span.http.method = \"GET\") }"] = Where(s => Method(s) != "GET"),
        ["{ span.http.method = \"GET\" || span.http.status_code = 500 }"] = Where(s => Method(s) == "GET" || Code(s) == 500),
        ["{ span.http.method = \"GET\" && resource.service.name = \"cart\" }"] = Where(s => Method(s) == "GET" && Svc(s, "cart")),
        ["{ span.http.method = .http.method }"] = Where(s => Method(s) is not null),
        ["{ duration > 2ms && (kind = server || status = error) }"] =
            Where(s => s.DurationNanos > 2_000_000 && (s.Span.Kind == SpanKind.Server || s.Span.StatusCode == StatusCode.Error)),

        // spanset operations
        ["{ resource.service.name = \"payment\" } && { status = error }"] = And(s => Svc(s, "payment"), s => s.Span.StatusCode == StatusCode.Error),
        ["{ status = error } || { kind = producer }"] = Or(s => s.Span.StatusCode == StatusCode.Error, s => s.Span.Kind == SpanKind.Producer),
        ["{ resource.service.name = \"frontend\" } > { resource.service.name = \"cart\" }"] = Struct(s => Svc(s, "frontend"), s => Svc(s, "cart"), Child, Mode.Match),
        ["{ kind = client } < { kind = server }"] = Struct(s => s.Span.Kind == SpanKind.Client, s => s.Span.Kind == SpanKind.Server, ParentOf, Mode.Match),
        ["{ resource.service.name = \"frontend\" } >> { resource.service.name = \"payment\" }"] = Struct(s => Svc(s, "frontend"), s => Svc(s, "payment"), Desc, Mode.Match),
        ["{ kind = internal } << { kind = client }"] = Struct(s => s.Span.Kind == SpanKind.Internal, s => s.Span.Kind == SpanKind.Client, Anc, Mode.Match),
        ["{ resource.service.name = \"cart\" } ~ { resource.service.name = \"checkout\" }"] = Struct(s => Svc(s, "cart"), s => Svc(s, "checkout"), Sib, Mode.Match),
        ["{ kind = server } !> { resource.service.name = \"payment\" }"] = Struct(s => s.Span.Kind == SpanKind.Server, s => Svc(s, "payment"), Child, Mode.Not),
        ["{ resource.service.name = \"frontend\" } !>> { kind = internal }"] = Struct(s => Svc(s, "frontend"), s => s.Span.Kind == SpanKind.Internal, Desc, Mode.Not),
        ["{ kind = internal } !< { kind = client }"] = Struct(s => s.Span.Kind == SpanKind.Internal, s => s.Span.Kind == SpanKind.Client, ParentOf, Mode.Not),
        ["{ kind = internal } !<< { resource.service.name = \"frontend\" }"] = Struct(s => s.Span.Kind == SpanKind.Internal, s => Svc(s, "frontend"), Anc, Mode.Not),
        ["{ kind = producer } !~ { kind = client }"] = Struct(s => s.Span.Kind == SpanKind.Producer, s => s.Span.Kind == SpanKind.Client, Sib, Mode.Not),
        ["{ kind = server } &> { kind = client }"] = Struct(s => s.Span.Kind == SpanKind.Server, s => s.Span.Kind == SpanKind.Client, Child, Mode.Union),
        ["{ resource.service.name = \"frontend\" } &>> { status = error }"] = Struct(s => Svc(s, "frontend"), s => s.Span.StatusCode == StatusCode.Error, Desc, Mode.Union),
        ["{ kind = internal } &< { kind = client }"] = Struct(s => s.Span.Kind == SpanKind.Internal, s => s.Span.Kind == SpanKind.Client, ParentOf, Mode.Union),
        ["{ kind = internal } &<< { }"] = Struct(s => s.Span.Kind == SpanKind.Internal, _ => true, Anc, Mode.Union),
        ["{ resource.service.name = \"cart\" } &~ { resource.service.name = \"checkout\" }"] = Struct(s => Svc(s, "cart"), s => Svc(s, "checkout"), Sib, Mode.Union),

        // pipelines
        ["{ } | count() > 6"] = ts => ts.Count > 6 ? ts : [],
        ["{ span.http.status_code >= 400 } | count() >= 3"] = ts => ts.Where(s => Code(s) >= 400).ToList() is var m && m.Count >= 3 ? m : [],
        ["{ } | avg(duration) > 20ms"] = ts => ts.Average(s => (double)s.DurationNanos) > 20_000_000 ? ts : [],
        ["{ resource.service.name = \"cart\" } | min(duration) < 3ms"] =
            ts => ts.Where(s => Svc(s, "cart")).ToList() is var m && m.Count > 0 && m.Min(s => s.DurationNanos) < 3_000_000 ? m : [],
        ["{ } | max(span.http.status_code) = 500"] = ts => ts.Max(s => Code(s) ?? long.MinValue) == 500 ? ts : [],
        ["{ } | sum(span.ratio) > 3.05"] = ts => ts.Sum(s => s.Dbl("ratio") ?? 0) > 3.05 ? ts : [],
        ["{ kind = internal } | { resource.service.name = \"cart\" }"] = Where(s => s.Span.Kind == SpanKind.Internal && Svc(s, "cart")),
        ["({ kind = server } | count() > 1) && { status = error }"] = ts =>
        {
            var servers = ts.Where(s => s.Span.Kind == SpanKind.Server).ToList();
            var errors = ts.Where(s => s.Span.StatusCode == StatusCode.Error).ToList();
            return servers.Count > 1 && errors.Count > 0 ? servers.Union(errors) : [];
        },
        ["{ } | select(span.ratio)"] = Where(_ => true),
        ["{ status = error } | by(resource.service.name) | coalesce()"] = Where(s => s.Span.StatusCode == StatusCode.Error),
        ["{ } | by(resource.service.name) | count() > 2"] = ts => ts.GroupBy(s => s.Service).Where(g => g.Count() > 2).SelectMany(g => g),
        ["{ span.http.method != nil } | by(span.http.method) | count() = 1"] = ts => ts.Where(s => Method(s) is not null).GroupBy(Method).Where(g => g.Count() == 1).SelectMany(g => g),
    };

    public static TheoryData<string> Queries() => [.. s_cases.Keys];

    [Theory]
    [MemberData(nameof(Queries))]
    public async Task SearchAsync_QueryOverFixture_MatchesIndependentOracle(string query)
    {
        var expected = new SortedDictionary<string, List<ulong>>(StringComparer.Ordinal);
        foreach (var group in Spans.GroupBy(s => s.TraceIndex))
        {
            var ids = s_cases[query](group.ToList()).Select(s => s.Id).Distinct().Order().ToList();
            if (ids.Count > 0)
            {
                expected[SearchResultJson.TraceIdHex(TraceIdOf(group.Key))] = ids;
            }
        }

        var actual = await EngineMatches(query);

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void QueryTable_CoversEveryOperatorAndMostIntrinsics_HasNonTrivialExpectations()
    {
        // Guards the oracle table itself: most cases must select something and not everything.
        int nonTrivial = 0;
        foreach (var (q, oracle) in s_cases)
        {
            int n = Spans.GroupBy(s => s.TraceIndex).Sum(g => oracle(g.ToList()).Count());
            if (n > 0 && n < Spans.Count)
            {
                nonTrivial++;
            }
        }

        Assert.True(nonTrivial >= s_cases.Count - 12, $"only {nonTrivial} of {s_cases.Count} cases are non-trivial");
    }

    internal static async Task<SortedDictionary<string, List<ulong>>> EngineMatches(string query, ISpansetFetcher? fetcher = null)
    {
        var root = TraceQLParser.ParseAndValidate(query);
        var result = await TraceQLEngine.SearchAsync(
            root,
            fetcher ?? new TraceModelFetcher(Traces),
            new SearchOptions { Limit = 1000, SpansPerSpanSet = 1000 },
            CancellationToken.None);
        var actual = new SortedDictionary<string, List<ulong>>(StringComparer.Ordinal);
        foreach (var t in result.Traces)
        {
            actual[SearchResultJson.TraceIdHex(t.TraceId)] = t.SpanSets.SelectMany(ss => ss.Spans).Select(s => s.SpanId.Value).Distinct().Order().ToList();
        }

        return actual;
    }
}
