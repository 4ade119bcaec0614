using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Common.Tests.Otlp;

public class TraceCombinerTests
{
    private static Trace Part(string service, string scope, params Span[] spans)
    {
        var t = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
        var ss = new ScopeSpans();
        ss.Scope.Name = scope;
        ss.Spans.AddRange(spans);
        rs.ScopeSpans.Add(ss);
        t.ResourceSpans.Add(rs);
        return t;
    }

    private static Span S(ulong id, ulong start, SpanKind kind = SpanKind.Internal) =>
        new() { TraceId = new TraceId(1, 1), SpanId = new SpanId(id), StartTimeUnixNano = start, Kind = kind, Name = "s" + id };

    [Fact]
    public void Combine_SameSpanIdAndKind_CollapsesToFirstCopy()
    {
        var a = S(1, 10);
        var dup = S(1, 10);
        dup.Name = "later copy";
        var result = TraceCombiner.Combine([Part("api", "x", a), Part("api", "x", dup)]);
        var span = Assert.Single(result.AllSpans()).Span;
        Assert.Same(a, span);
    }

    [Fact]
    public void Combine_SameSpanIdDifferentKind_KeepsBoth()
    {
        var result = TraceCombiner.Combine([Part("api", "x", S(1, 10, SpanKind.Client)), Part("db", "x", S(1, 11, SpanKind.Server))]);
        Assert.Equal(2, result.SpanCount());
        Assert.Equal(2, TraceCombiner.CountDistinctSpans(result));
    }

    [Fact]
    public void Combine_EqualResourcesFromDifferentParts_GroupedUnderOneResourceAndScope()
    {
        var result = TraceCombiner.Combine([Part("api", "x", S(2, 20)), Part("api", "x", S(1, 10)), Part("api", "y", S(3, 5))]);
        var rs = Assert.Single(result.ResourceSpans);
        Assert.Equal(["x", "y"], rs.ScopeSpans.Select(s => s.Scope.Name));
        Assert.Equal([1UL, 2UL], rs.ScopeSpans[0].Spans.Select(s => s.SpanId.Value));
    }

    [Fact]
    public void Combine_AnyInputOrder_SameOutputOrder()
    {
        var parts = new[]
        {
            Part("zeta", "x", S(5, 50), S(4, 50)),
            Part("alpha", "x", S(3, 30)),
            Part("mid", "b", S(2, 20)),
            Part("mid", "a", S(1, 10)),
        };
        byte[] expected = OtlpProto.EncodeTrace(TraceCombiner.Combine(parts));
        var rnd = new Random(4);
        for (int i = 0; i < 20; i++)
        {
            var shuffled = parts.OrderBy(_ => rnd.Next()).ToArray();
            Assert.Equal(expected, OtlpProto.EncodeTrace(TraceCombiner.Combine(shuffled)));
        }

        var combined = TraceCombiner.Combine(parts);
        Assert.Equal(["alpha", "mid", "zeta"], combined.ResourceSpans.Select(r => r.Resource.ServiceName()));
        Assert.Equal([4UL, 5UL], combined.ResourceSpans[2].ScopeSpans[0].Spans.Select(s => s.SpanId.Value));
    }

    [Fact]
    public void Combine_AttributeOrderDiffers_StillOneResource()
    {
        var p1 = Part("api", "x", S(1, 1));
        p1.ResourceSpans[0].Resource.Attributes.Add(new KeyValue("host", AnyValue.String("h")));
        var p2 = Part("api", "x", S(2, 2));
        p2.ResourceSpans[0].Resource.Attributes.Insert(0, new KeyValue("host", AnyValue.String("h")));
        Assert.Single(TraceCombiner.Combine([p1, p2]).ResourceSpans);
    }

    [Fact]
    public void TimeRange_Spans_MinStartMaxEnd()
    {
        var a = S(1, 10);
        a.EndTimeUnixNano = 30;
        var b = S(2, 5);
        b.EndTimeUnixNano = 20;
        Assert.Equal((5UL, 30UL), TraceCombiner.TimeRange(Part("a", "x", a, b)));
        Assert.Equal((0UL, 0UL), TraceCombiner.TimeRange(new Trace()));
    }
}
