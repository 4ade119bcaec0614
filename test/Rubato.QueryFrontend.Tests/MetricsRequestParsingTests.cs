using System.Text.Json;
using Rubato.TraceQL.Metrics;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

public sealed class MetricsRequestParsingTests
{
    private const long Sec = 1_000_000_000;
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_700_003_600);

    private static MetricsQueryRequest Range(params (string K, string V)[] p)
    {
        var d = p.ToDictionary(x => x.K, x => (string?)x.V);
        return MetricsRequestParser.ParseRange(k => d.GetValueOrDefault(k), Now);
    }

    [Fact]
    public void ParseRange_UnixSeconds_ConvertedToNanos()
    {
        var r = Range(("q", "{ } | rate()"), ("start", "1700000000"), ("end", "1700003600"), ("step", "60"));
        Assert.Equal(1_700_000_000 * Sec, r.StartUnixNanos);
        Assert.Equal(1_700_003_600 * Sec, r.EndUnixNanos);
        Assert.Equal(60 * Sec, r.StepNanos);
    }

    [Fact]
    public void ParseRange_UnixNanos_KeptAsIs()
    {
        var r = Range(("q", "{ } | rate()"), ("start", "1700000000123456789"), ("end", "1700003600000000000"), ("step", "30s"));
        Assert.Equal(1_700_000_000_123_456_789, r.StartUnixNanos);
        Assert.Equal(30 * Sec, r.StepNanos);
    }

    [Fact]
    public void ParseRange_Rfc3339AndDecimalSeconds_Parsed()
    {
        var r = Range(("query", "{ } | count_over_time()"), ("start", "2023-11-14T22:13:20Z"), ("end", "1700003600.5"), ("step", "1m30s"));
        Assert.Equal(1_700_000_000 * Sec, r.StartUnixNanos);
        Assert.Equal((1_700_003_600 * Sec) + (Sec / 2), r.EndUnixNanos);
        Assert.Equal(90 * Sec, r.StepNanos);
    }

    [Fact]
    public void ParseRange_NoStartOrStep_SinceDefaultsOneHourAndTempoStep()
    {
        var r = Range(("q", "{ } | rate()"));
        Assert.Equal(Now.ToUnixTimeSeconds() * Sec, r.EndUnixNanos);
        Assert.Equal((Now.ToUnixTimeSeconds() - 3600) * Sec, r.StartUnixNanos);
        Assert.Equal(15 * Sec, r.StepNanos);
    }

    [Fact]
    public void ParseRange_Since_CountsBackFromEnd()
    {
        var r = Range(("q", "{ } | rate()"), ("end", "1700000000"), ("since", "2d"));
        Assert.Equal((1_700_000_000 - (2 * 86400)) * Sec, r.StartUnixNanos);
        Assert.Equal(720 * Sec, r.StepNanos);
    }

    [Theory]
    [InlineData("q", "{ status = error }", "not a metrics query")]
    [InlineData("q", "{ | rate()", "")]
    [InlineData("step", "fast", "cannot parse \"fast\"")]
    [InlineData("step", "0", "step must be positive")]
    [InlineData("start", "yesterday", "could not parse 'start'")]
    [InlineData("since", "1x", "could not parse 'since'")]
    [InlineData("exemplars", "-1", "invalid exemplars")]
    public void ParseRange_BadParameter_Is400NamingIt(string key, string value, string message)
    {
        var p = new Dictionary<string, string?> { ["q"] = "{ } | rate()", ["start"] = "1700000000", ["end"] = "1700003600", [key] = value };
        var e = Assert.Throws<SearchRequestException>(() => MetricsRequestParser.ParseRange(k => p.GetValueOrDefault(k), Now));
        Assert.Equal(400, e.StatusCode);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseRange_EndBeforeStart_Is400()
    {
        var e = Assert.Throws<SearchRequestException>(() => Range(("q", "{ } | rate()"), ("start", "1700003600"), ("end", "1700000000")));
        Assert.Contains("end must be greater than start", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseRange_TooManyPoints_Is400()
    {
        var e = Assert.Throws<SearchRequestException>(() => Range(("q", "{ } | rate()"), ("start", "1700000000"), ("end", "1700086400"), ("step", "1")));
        Assert.Contains("11000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseInstant_StepIsWholeRange()
    {
        var d = new Dictionary<string, string?> { ["q"] = "{ } | rate()", ["start"] = "1700000000", ["end"] = "1700000300" };
        var r = MetricsRequestParser.ParseInstant(k => d.GetValueOrDefault(k), Now);
        Assert.True(r.Instant);
        Assert.Equal(300 * Sec, r.StepNanos);
        Assert.Equal(1, r.Range().Intervals);
    }

    [Fact]
    public void Proto_RangeRequestRoundTrip_KeepsFields()
    {
        var bytes = MetricsProto.EncodeRangeRequest("{ } | rate()", 1_700_000_000 * (ulong)Sec, 1_700_000_600 * (ulong)Sec, 60 * (ulong)Sec, exemplars: 7);
        var r = MetricsProto.DecodeRangeRequest(bytes, Now);
        Assert.Equal("{ } | rate()", r.Query);
        Assert.Equal(1_700_000_000 * Sec, r.StartUnixNanos);
        Assert.Equal(60 * Sec, r.StepNanos);
        Assert.Equal(7, r.Exemplars);
    }

    [Fact]
    public void Json_RangeResult_HasTempoShape()
    {
        var range = MetricsRange.Align(1_700_000_040 * Sec, 1_700_000_160 * Sec, 60 * Sec);
        var labels = new[] { new SeriesLabel("resource.service.name", Rubato.TraceQL.Engine.TraceQLValue.FromString("api")) };
        var series = new TimeSeries(labels, [1, double.NaN, 2.5]);
        var result = new MetricsResult { Range = range, Series = [series] };
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            MetricsJson.WriteRange(w, result);
        }

        using var doc = JsonDocument.Parse(ms.ToArray());
        var s = doc.RootElement.GetProperty("series")[0];
        Assert.Equal("resource.service.name", s.GetProperty("labels")[0].GetProperty("key").GetString());
        Assert.Equal("api", s.GetProperty("labels")[0].GetProperty("value").GetProperty("stringValue").GetString());
        var samples = s.GetProperty("samples");
        Assert.Equal(2, samples.GetArrayLength());
        Assert.Equal("1700000040000", samples[0].GetProperty("timestampMs").GetString());
        Assert.Equal("1700000160000", samples[1].GetProperty("timestampMs").GetString());
        Assert.Equal(2.5, samples[1].GetProperty("value").GetDouble());
        Assert.Equal("{resource.service.name=\"api\"}", s.GetProperty("promLabels").GetString());
        Assert.True(doc.RootElement.TryGetProperty("metrics", out _));
    }
}
