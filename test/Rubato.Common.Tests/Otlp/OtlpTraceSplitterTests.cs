using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Common.Tests.Otlp;

public class OtlpTraceSplitterTests
{
    /// <summary>A request whose spans belong to <paramref name="traces"/> traces, interleaved across resources and scopes.</summary>
    internal static Trace Interleaved(int seed, int traces, int resources, int scopesPerResource, int spans)
    {
        var rnd = new Random(seed);
        var ids = Enumerable.Range(0, traces).Select(i => new TraceId((ulong)rnd.NextInt64(1, long.MaxValue), (ulong)i)).ToArray();
        var t = new Trace();
        for (int r = 0; r < resources; r++)
        {
            var rs = new ResourceSpans();
            rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("svc-" + r)));
            for (int s = 0; s < scopesPerResource; s++)
            {
                var ss = new ScopeSpans();
                ss.Scope.Name = $"scope-{r}-{s}";
                rs.ScopeSpans.Add(ss);
            }

            t.ResourceSpans.Add(rs);
        }

        for (int i = 0; i < spans; i++)
        {
            var rs = t.ResourceSpans[rnd.Next(resources)];
            var ss = rs.ScopeSpans[rnd.Next(scopesPerResource)];
            ss.Spans.Add(TraceSamples.RandomSpan(rnd, ids[rnd.Next(traces)]));
        }

        return t;
    }

    /// <summary>The original request restricted to one trace, keeping resource/scope structure and order.</summary>
    private static Trace Filter(Trace t, TraceId id)
    {
        var result = new Trace();
        foreach (var rs in t.ResourceSpans)
        {
            var nrs = new ResourceSpans { Resource = rs.Resource, SchemaUrl = rs.SchemaUrl };
            foreach (var ss in rs.ScopeSpans)
            {
                var nss = new ScopeSpans { Scope = ss.Scope, SchemaUrl = ss.SchemaUrl };
                nss.Spans.AddRange(ss.Spans.Where(s => s.TraceId == id));
                if (nss.Spans.Count > 0)
                {
                    nrs.ScopeSpans.Add(nss);
                }
            }

            if (nrs.ScopeSpans.Count > 0)
            {
                result.ResourceSpans.Add(nrs);
            }
        }

        return result;
    }

    private static string? CheckSplit(Trace request, OtlpSplitResult result)
    {
        var expectedIds = request.AllSpans().Select(x => x.Span.TraceId).Distinct().ToList();
        if (result.Count != expectedIds.Count)
        {
            return $"{result.Count} segments, expected {expectedIds.Count}";
        }

        if (result.SpanCount != request.SpanCount())
        {
            return $"span count {result.SpanCount}, expected {request.SpanCount()}";
        }

        for (int i = 0; i < result.Count; i++)
        {
            var seg = result[i];
            if (seg.TraceId != expectedIds[i])
            {
                return $"segment {i} is {seg.TraceId}, expected {expectedIds[i]} (first-appearance order)";
            }

            var expected = Filter(request, seg.TraceId);
            var actual = OtlpProto.DecodeTrace(seg.Payload.Span);
            string? d = ModelDiff.Diff(expected, actual);
            if (d is not null)
            {
                return $"segment {seg.TraceId}: {d}";
            }

            var spans = expected.AllSpans().Select(x => x.Span).ToList();
            if (seg.SpanCount != spans.Count || seg.StartUnixNano != spans.Min(s => s.StartTimeUnixNano) || seg.EndUnixNano != spans.Max(s => s.EndTimeUnixNano))
            {
                return $"segment {seg.TraceId}: count/start/end {seg.SpanCount}/{seg.StartUnixNano}/{seg.EndUnixNano} wrong";
            }
        }

        return null;
    }

    [Fact]
    public void Split_ArbitraryInterleavedRequests_EachSegmentIsTheRequestRestrictedToItsTrace()
    {
        var gen = from seed in Gen.Choose(0, int.MaxValue)
                  from traces in Gen.Choose(1, 20)
                  from resources in Gen.Choose(1, 4)
                  from scopes in Gen.Choose(1, 3)
                  from spans in Gen.Choose(0, 120)
                  select (seed, traces, resources, scopes, spans);
        Prop.ForAll(Arb.From(gen), p =>
        {
            var request = Interleaved(p.seed, p.traces, p.resources, p.scopes, p.spans);
            using var result = OtlpTraceSplitter.Split(OtlpProto.EncodeTrace(request), default);
            string? err = CheckSplit(request, result);
            return Prop.Label(err is null, err ?? string.Empty);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Split_SameTraceUnderTwoResources_OneSegmentWithBothResources()
    {
        var id = new TraceId(1, 2);
        var request = Interleaved(5, 1, 2, 1, 0);
        var rnd = new Random(1);
        request.ResourceSpans[0].ScopeSpans[0].Spans.Add(TraceSamples.RandomSpan(rnd, id));
        request.ResourceSpans[1].ScopeSpans[0].Spans.Add(TraceSamples.RandomSpan(rnd, id));
        using var result = OtlpTraceSplitter.Split(OtlpProto.EncodeTrace(request), default);
        var seg = Assert.Single(result.Segments);
        var decoded = OtlpProto.DecodeTrace(seg.Payload.Span);
        Assert.Equal(["svc-0", "svc-1"], decoded.ResourceSpans.Select(r => r.Resource.ServiceName()));
        Assert.Equal(2, seg.SpanCount);
    }

    [Fact]
    public void Split_DuplicateSpans_AreKeptForTheCombinerToCollapse()
    {
        var id = new TraceId(9, 9);
        var request = Interleaved(5, 1, 1, 1, 0);
        var span = TraceSamples.RandomSpan(new Random(3), id);
        request.ResourceSpans[0].ScopeSpans[0].Spans.Add(span);
        request.ResourceSpans[0].ScopeSpans[0].Spans.Add(span);
        using var result = OtlpTraceSplitter.Split(OtlpProto.EncodeTrace(request), default);
        Assert.Equal(2, Assert.Single(result.Segments).SpanCount);
        Assert.Equal(1, TraceCombiner.Combine([OtlpProto.DecodeTrace(result[0].Payload.Span)]).SpanCount());
    }

    [Fact]
    public void Split_EmptyRequest_NoSegments()
    {
        using var result = OtlpTraceSplitter.Split([], default);
        Assert.Empty(result.Segments);
        Assert.Equal(0, result.SpanCount);
    }

    [Fact]
    public void Split_MaxAttributeBytes_CutsLongKeysAndStringValuesEverywhereAndCounts()
    {
        var id = new TraceId(1, 1);
        var t = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("abcdefghijkl")));
        var ss = new ScopeSpans();
        ss.Scope.Name = "scope";
        ss.Scope.Attributes.Add(new KeyValue("a-very-long-key", AnyValue.Int(1)));
        var span = new Span { TraceId = id, SpanId = new SpanId(1), Name = "long-name-is-not-an-attribute" };
        span.Attributes.Add(new KeyValue("s", AnyValue.String("ééééé"))); // 10 bytes: cut at a char boundary
        span.Attributes.Add(new KeyValue("n", AnyValue.Int(long.MaxValue)));
        span.Attributes.Add(new KeyValue("arr", AnyValue.Array([AnyValue.String("nested strings are left alone")])));
        var ev = new SpanEvent { Name = "e" };
        ev.Attributes.Add(new KeyValue("event-key-long", AnyValue.String("v")));
        span.Events.Add(ev);
        var link = new SpanLink { TraceId = new TraceId(3, 3), SpanId = new SpanId(3) };
        link.Attributes.Add(new KeyValue("k", AnyValue.String("link-value-long")));
        span.Links.Add(link);
        var untouched = new Span { TraceId = id, SpanId = new SpanId(2), Name = "short" };
        untouched.Attributes.Add(new KeyValue("k", AnyValue.String("v")));
        ss.Spans.Add(span);
        ss.Spans.Add(untouched);
        rs.ScopeSpans.Add(ss);
        t.ResourceSpans.Add(rs);

        using var result = OtlpTraceSplitter.Split(OtlpProto.EncodeTrace(t), new OtlpSplitOptions(5));
        Assert.Equal(6, result.TruncatedAttributes);
        var back = OtlpProto.DecodeTrace(Assert.Single(result.Segments).Payload.Span);
        var brs = Assert.Single(back.ResourceSpans);
        Assert.Equal("servi", brs.Resource.Attributes[0].Key);
        Assert.Equal("abcde", brs.Resource.Attributes[0].Value.StringValue);
        var bss = Assert.Single(brs.ScopeSpans);
        Assert.Equal("a-ver", bss.Scope.Attributes[0].Key);
        Assert.Equal("scope", bss.Scope.Name);
        var b0 = bss.Spans[0];
        Assert.Equal("éé", b0.Attributes[0].Value.StringValue);
        Assert.Equal(long.MaxValue, b0.Attributes[1].Value.IntValue);
        Assert.Equal("nested strings are left alone", b0.Attributes[2].Value.ArrayValue![0].StringValue);
        Assert.Equal("long-name-is-not-an-attribute", b0.Name);
        Assert.Equal("event", b0.Events[0].Attributes[0].Key);
        Assert.Equal("link-", b0.Links[0].Attributes[0].Value.StringValue);
        Assert.Null(ModelDiff.SpanDiff("untouched", untouched, bss.Spans[1]));
    }

    [Fact]
    public void Split_MaxAttributeBytesNotExceeded_CopiesRequestBytesVerbatim()
    {
        var request = Interleaved(8, 1, 1, 1, 20);
        byte[] bytes = OtlpProto.EncodeTrace(request);
        using var result = OtlpTraceSplitter.Split(bytes, new OtlpSplitOptions(1 << 20));
        Assert.Equal(0, result.TruncatedAttributes);
        Assert.True(Assert.Single(result.Segments).Payload.Span.SequenceEqual(bytes));
    }

    private static byte[] SpanRequest(byte[]? traceId, byte[]? spanId, byte[]? parent)
    {
        using var w = new ProtoWriter();
        int rs = w.BeginMessage(1);
        int ss = w.BeginMessage(2);
        int sp = w.BeginMessage(2);
        if (traceId is not null)
        {
            w.WriteBytesField(OtlpFieldNumbers.Span.TraceId, traceId);
        }

        if (spanId is not null)
        {
            w.WriteBytesField(OtlpFieldNumbers.Span.SpanId, spanId);
        }

        if (parent is not null)
        {
            w.WriteBytesField(OtlpFieldNumbers.Span.ParentSpanId, parent);
        }

        w.WriteStringField(OtlpFieldNumbers.Span.Name, "x");
        w.EndMessage(sp);
        w.EndMessage(ss);
        w.EndMessage(rs);
        return w.ToArray();
    }

    private static byte[] Ones(int n) => Enumerable.Repeat((byte)1, n).ToArray();

    public static TheoryData<byte[]?, byte[]?, byte[]?, string> InvalidIds => new()
    {
        { Ones(9), Ones(8), null, "trace ids must be 128 bit, got 9 bytes" },
        { null, Ones(8), null, "trace ids must be 128 bit, got 0 bytes" },
        { Ones(17), Ones(8), null, "trace ids must be 128 bit, got 17 bytes" },
        { new byte[16], Ones(8), null, "trace ids must not be all zero" },
        { Ones(16), Ones(4), null, "span ids must be 64 bit, got 4 bytes" },
        { Ones(16), null, null, "span ids must be 64 bit, got 0 bytes" },
        { Ones(16), new byte[8], null, "span ids must not be all zero" },
        { Ones(16), Ones(8), Ones(3), "parent span ids must be empty or 64 bit, got 3 bytes" },
    };

    [Theory]
    [MemberData(nameof(InvalidIds))]
    public void Split_InvalidIds_ThrowsValidationExceptionNamingProblem(byte[]? traceId, byte[]? spanId, byte[]? parent, string expected)
    {
        byte[] request = SpanRequest(traceId, spanId, parent);
        var ex = Assert.Throws<OtlpValidationException>(() => OtlpTraceSplitter.Split(request, default));
        Assert.Equal(expected, ex.Message);
    }

    [Fact]
    public void Split_ValidIdsWithEmptyParent_Accepted()
    {
        using var result = OtlpTraceSplitter.Split(SpanRequest(Ones(16), Ones(8), []), default);
        Assert.Equal(1, result.SpanCount);
    }

    [Fact]
    public void Split_EveryTruncationOfOneResourceRequest_ThrowsFormatException()
    {
        var request = Interleaved(2, 3, 1, 2, 12);
        byte[] bytes = OtlpProto.EncodeTrace(request);
        for (int n = 1; n < bytes.Length; n++)
        {
            var ex = Record.Exception(() => OtlpTraceSplitter.Split(bytes.AsSpan(0, n), new OtlpSplitOptions(4)).Dispose());
            Assert.True(ex is OtlpFormatException, $"prefix {n}: {ex?.GetType().Name ?? "no exception"}");
        }
    }

    [Fact]
    public void Split_CorruptedBytes_ThrowOnlyOtlpExceptionsOrSucceed()
    {
        byte[] valid = OtlpProto.EncodeTrace(Interleaved(4, 5, 2, 2, 30));
        var gen = from seed in Gen.Choose(0, int.MaxValue) from flips in Gen.Choose(1, 8) select (seed, flips);
        Prop.ForAll(Arb.From(gen), p =>
        {
            var rnd = new Random(p.seed);
            byte[] b = (byte[])valid.Clone();
            for (int i = 0; i < p.flips; i++)
            {
                b[rnd.Next(b.Length)] = (byte)rnd.Next(256);
            }

            foreach (var max in new[] { 0, 3 })
            {
                try
                {
                    OtlpTraceSplitter.Split(b, new OtlpSplitOptions(max)).Dispose();
                }
                catch (Exception ex) when (ex is OtlpFormatException or OtlpValidationException)
                {
                }
            }

            return true;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Split_TypicalRequestAfterWarmUp_AllocatesOnlyTheResultObject()
    {
        var request = Interleaved(1, 50, 1, 1, 500);
        byte[] bytes = OtlpProto.EncodeTrace(request);
        for (int i = 0; i < 5; i++)
        {
            OtlpTraceSplitter.Split(bytes, default).Dispose();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = OtlpTraceSplitter.Split(bytes, default);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        result.Dispose();
        Assert.Equal(50, result.Count);
        Assert.True(allocated < 512, $"split allocated {allocated} bytes for 500 spans");
    }

    [Fact]
    public void Split_ResultDisposed_IndexerThrows()
    {
        var result = OtlpTraceSplitter.Split(OtlpProto.EncodeTrace(Interleaved(1, 2, 1, 1, 4)), default);
        result.Dispose();
        Assert.Throws<ObjectDisposedException>(() => result[0]);
    }

    [Fact]
    public void Split_UnknownFieldInsideSpan_SurvivesVerbatim()
    {
        using var w = new ProtoWriter();
        int rs = w.BeginMessage(1);
        int ss = w.BeginMessage(2);
        int sp = w.BeginMessage(2);
        int spanStart = w.Length;
        w.WriteBytesField(OtlpFieldNumbers.Span.TraceId, Ones(16));
        w.WriteBytesField(OtlpFieldNumbers.Span.SpanId, Ones(8));
        w.WriteVarintField(1000, 77);
        byte[] spanBody = w.WrittenSpan[spanStart..].ToArray();
        w.EndMessage(sp);
        w.EndMessage(ss);
        w.WriteVarintField(50, 1); // unknown ResourceSpans field: dropped, not an error
        w.EndMessage(rs);
        using var result = OtlpTraceSplitter.Split(w.WrittenSpan, default);
        var payload = Assert.Single(result.Segments).Payload.ToArray();
        Assert.True(payload.AsSpan().IndexOf(spanBody) >= 0);
    }
}
