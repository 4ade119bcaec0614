using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Ids;
using Rubato.Common.Otlp;
using Rubato.LoadGen.Otlp;
using Xunit;

namespace Rubato.Integration.Tests;

/// <summary>The load generator's hand-written OTLP encoder agrees with Rubato's decoder (no server needed).</summary>
public sealed class LoadGenEncodingTests
{
    [Fact]
    public void OtlpBatchBuilder_AnyShape_DecodesToTheSameIdsAndSpanCount()
    {
        Prop.ForAll(Gen.Choose(1, 20).ToArbitrary(), Gen.Choose(1, 30).ToArbitrary(), Gen.Choose(0, 10_000).ToArbitrary(), (traces, spans, seed) =>
        {
            var rng = new Random(seed);
            var ids = Enumerable.Range(0, traces).Select(_ => OtlpBatchBuilder.RandomTraceId(rng)).ToList();
            var batch = OtlpBatchBuilder.Build(ids, spans, rng, 1_700_000_000_000_000_000UL);
            var decoded = OtlpProto.DecodeTrace(batch.Body);

            var all = decoded.AllSpans().ToList();
            Assert.Equal(traces * spans, all.Count);
            Assert.Equal(batch.SpanCount, all.Count);
            for (int t = 0; t < traces; t++)
            {
                var expectedTrace = TraceId.FromBytes(ids[t]);
                var got = all.Where(x => x.Span.TraceId == expectedTrace).Select(x => x.Span.SpanId.Value).ToList();
                Assert.Equal(batch.Traces[t].SpanIds, got);
            }

            Assert.All(all, x => Assert.Equal(7, x.Span.Attributes.Count));
            Assert.All(all, x => Assert.False(string.IsNullOrEmpty(x.Resource.Resource.ServiceName())));
            Assert.All(all, x => Assert.True(x.Span.EndTimeUnixNano > x.Span.StartTimeUnixNano));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void StampInto_FreshSequence_RewritesEveryTraceIdAndNothingElse()
    {
        var rng = new Random(7);
        var ids = Enumerable.Range(0, 5).Select(_ => OtlpBatchBuilder.RandomTraceId(rng)).ToList();
        var batch = OtlpBatchBuilder.Build(ids, 4, rng, 1_700_000_000_000_000_000UL);
        var stamped = new byte[batch.Body.Length];
        batch.StampInto(stamped, 0xABCDEF, 1000);

        var original = OtlpProto.DecodeTrace(batch.Body).AllSpans().Select(x => x.Span).ToList();
        var rewritten = OtlpProto.DecodeTrace(stamped).AllSpans().Select(x => x.Span).ToList();
        Assert.Equal(original.Count, rewritten.Count);
        for (int i = 0; i < original.Count; i++)
        {
            int trace = i / 4;
            Assert.Equal(new TraceId(0xABCDEF, 1000UL + (ulong)trace), rewritten[i].TraceId);
            Assert.Equal(original[i].SpanId, rewritten[i].SpanId);
            Assert.Equal(original[i].Name, rewritten[i].Name);
        }

        Span<byte> expectedId = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(expectedId, 0xABCDEF);
        BinaryPrimitives.WriteUInt64BigEndian(expectedId[8..], 1002);
        Assert.True(stamped.AsSpan().IndexOf(expectedId) > 0);
    }

    [Fact]
    public void BuildBatch_RealisticSpans_AverageAbout400Bytes()
    {
        var rng = new Random(3);
        var ids = Enumerable.Range(0, 50).Select(_ => OtlpBatchBuilder.RandomTraceId(rng)).ToList();
        var batch = OtlpBatchBuilder.Build(ids, 10, rng, 1_700_000_000_000_000_000UL);
        double perSpan = batch.Body.Length / (double)batch.SpanCount;
        Assert.InRange(perSpan, 300, 500);
    }
}
