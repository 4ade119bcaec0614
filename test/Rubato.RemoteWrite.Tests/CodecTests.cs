using FsCheck;
using FsCheck.Fluent;
using IronSnappy;
using Rubato.Common.Contracts;
using Rubato.Common.Otlp;
using Xunit;

namespace Rubato.RemoteWrite.Tests;

public class CodecTests
{
    /// <summary>Random series: sorted unique label names (with __name__), unicode values, any double and timestamp.</summary>
    internal static List<SeriesSample> RandomSamples(int seed)
    {
        var rnd = new Random(seed);
        int n = rnd.Next(0, 40);
        var result = new List<SeriesSample>(n);
        for (int i = 0; i < n; i++)
        {
            var names = new SortedSet<string>(StringComparer.Ordinal) { "__name__" };
            int labels = rnd.Next(0, 6);
            for (int l = 0; l < labels; l++)
            {
                names.Add("l" + rnd.Next(0, 10) + (rnd.Next(3) == 0 ? "_é" : string.Empty));
            }

            var arr = names.Select(nm => new SeriesLabel(nm, RandomString(rnd))).ToArray();
            double value = rnd.Next(5) switch
            {
                0 => double.NaN,
                1 => rnd.Next(2) == 0 ? double.PositiveInfinity : -0.0,
                _ => (rnd.NextDouble() - 0.5) * Math.Pow(10, rnd.Next(-5, 15)),
            };
            long ts = rnd.Next(3) == 0 ? -rnd.NextInt64(0, 1L << 40) : rnd.NextInt64(0, long.MaxValue);
            result.Add(new SeriesSample(arr, ts, value));
        }

        return result;
    }

    private static string RandomString(Random rnd)
    {
        int len = rnd.Next(0, 12);
        var chars = new char[len];
        for (int i = 0; i < len; i++)
        {
            chars[i] = rnd.Next(6) == 0 ? (char)rnd.Next(0x400, 0x4FF) : (char)rnd.Next('a', 'z' + 1);
        }

        return new string(chars);
    }

    [Fact]
    public void WriteTimeSeries_RandomSamples_DecodeRoundTrips()
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed =>
        {
            var samples = RandomSamples(seed);
            using var w = new ProtoWriter(64);
            foreach (var s in samples)
            {
                PromWire.WriteTimeSeries(w, s.Labels, [], s.TimestampMs, s.Value);
            }

            // Through snappy and back, as a receiver sees it.
            byte[] wire = Snappy.Decode(Snappy.Encode(w.WrittenSpan));
            var decoded = PromWire.DecodeWriteRequest(wire);
            Assert.Equal(samples.Count, decoded.Count);
            for (int i = 0; i < samples.Count; i++)
            {
                Assert.Equal(samples[i].Labels, decoded[i].Labels);
                var only = Assert.Single(decoded[i].Samples);
                Assert.Equal(samples[i].TimestampMs, only.TimestampMs);
                Assert.Equal(BitConverter.DoubleToInt64Bits(samples[i].Value), BitConverter.DoubleToInt64Bits(only.Value));
            }

            var items = new List<Range>();
            PromWire.SplitTimeSeries(wire, items);
            Assert.Equal(samples.Count, items.Count);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void WriteTimeSeries_ExternalLabels_MergedSortedAndSeriesLabelsWin()
    {
        var external = PromWire.NormalizeExternalLabels(new Dictionary<string, string> { ["cluster"] = "c1", ["job"] = "ext", ["zone"] = "z" });
        using var w = new ProtoWriter(64);
        PromWire.WriteTimeSeries(w, [new("__name__", "m"), new("job", "series"), new("service", "a")], external, 1000, 2.5);

        var series = Assert.Single(PromWire.DecodeWriteRequest(w.WrittenSpan));

        Assert.Equal(
            [new("__name__", "m"), new("cluster", "c1"), new("job", "series"), new("service", "a"), new("zone", "z")],
            series.Labels);
    }

    [Fact]
    public void WriteTimeSeries_KnownSample_MatchesPrompbBytes()
    {
        using var w = new ProtoWriter(64);
        PromWire.WriteTimeSeries(w, [new("a", "b")], [], 1, 1.0);

        // WriteRequest{timeseries(1){labels(1){name(1)="a" value(2)="b"} samples(2){value(1)=1.0 timestamp(2)=1}}}
        byte[] expected =
        [
            0x0A, 0x15,
            0x0A, 0x06, 0x0A, 0x01, (byte)'a', 0x12, 0x01, (byte)'b',
            0x12, 0x0B, 0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x10, 0x01,
        ];
        Assert.Equal(expected, w.ToArray());
    }

    [Fact]
    public void SnappyEncode_Body_IsBlockFormatNotFramed()
    {
        byte[] body = new byte[1000];
        new Random(7).NextBytes(body.AsSpan(0, 200));

        byte[] compressed = Snappy.Encode(body);

        // The block format starts with the uncompressed length as a varint (1000 = 0xE8 0x07); the framed format
        // would start with the stream identifier chunk 0xFF 06 00 00 "sNaPpY".
        Assert.Equal(0xE8, compressed[0]);
        Assert.Equal(0x07, compressed[1]);
        Assert.Equal(body, Snappy.Decode(compressed));
    }

    [Fact]
    public void NormalizeExternalLabels_NameLabel_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => PromWire.NormalizeExternalLabels(new Dictionary<string, string> { ["__name__"] = "x" }));
        Assert.Contains("__name__", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Classify_StatusCodes_FollowPrometheusRetryRules()
    {
        Assert.Equal(SendOutcome.Retry, RemoteWriteClient.Classify(System.Net.HttpStatusCode.ServiceUnavailable, "down", true).Outcome);
        Assert.Equal(SendOutcome.Retry, RemoteWriteClient.Classify(System.Net.HttpStatusCode.TooManyRequests, "slow down", true).Outcome);
        Assert.Equal(SendOutcome.Rejected, RemoteWriteClient.Classify(System.Net.HttpStatusCode.TooManyRequests, "slow down", false).Outcome);
        Assert.Equal(SendOutcome.OutOfOrder, RemoteWriteClient.Classify(System.Net.HttpStatusCode.BadRequest, "out of order sample", true).Outcome);
        Assert.Equal(SendOutcome.OutOfOrder, RemoteWriteClient.Classify(System.Net.HttpStatusCode.BadRequest, "duplicate sample for timestamp", true).Outcome);
        Assert.Equal(SendOutcome.Rejected, RemoteWriteClient.Classify(System.Net.HttpStatusCode.BadRequest, "invalid metric name", true).Outcome);
        Assert.Equal(SendOutcome.Rejected, RemoteWriteClient.Classify(System.Net.HttpStatusCode.Unauthorized, string.Empty, true).Outcome);
    }
}
