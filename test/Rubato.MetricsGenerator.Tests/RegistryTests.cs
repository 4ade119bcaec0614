using Rubato.Common.Contracts;
using Xunit;

namespace Rubato.MetricsGenerator.Tests;

public sealed class RegistryTests
{
    private static readonly TimeSpan Stale = TimeSpan.FromMinutes(15);

    [Fact]
    public void Counter_MaxActiveSeries_NewSeriesGoToOverflow()
    {
        var r = new TenantRegistry("t1", new GeneratorRegistryConfig()) { MaxActiveSeries = 3 };
        var c = r.Counter("requests_total", ["path"]);
        for (int i = 0; i < 5; i++)
        {
            c.Inc(Key($"/p{i}"), 1, 1000);
        }

        c.Inc(Key("/p0"), 1, 1000); // an existing series keeps counting
        var samples = new List<SeriesSample>();
        r.Collect(2000, Stale, samples);

        Assert.Equal(2, c.ValueOf("/p0"));
        Assert.Equal(1, c.ValueOf("/p2"));
        Assert.Null(c.ValueOf("/p3"));
        Assert.Equal(2, Latest(samples, ("__name__", "requests_total"), ("metric_overflow", "true")));
        Assert.Equal(2, r.SeriesLimited);
        Assert.Equal(4, r.ActiveSeries); // three series plus the overflow series
    }

    [Fact]
    public void Histogram_CountsBucketsSumCountAsActiveSeries()
    {
        var r = new TenantRegistry("t1", new GeneratorRegistryConfig()) { MaxActiveSeries = 10 };
        var h = r.Histogram("latency", ["op"], [0.1, 1]);
        h.Observe(Key("a"), 0.05, 1000);
        h.Observe(Key("b"), 0.5, 1000); // two series of 5 (2 buckets, +Inf, _sum, _count): exactly the limit
        h.Observe(Key("c"), 5, 1000); // over the limit: overflow

        Assert.Equal(15, r.ActiveSeries);
        var a = Unpack(h.ValueOf("a"));
        var b = Unpack(h.ValueOf("b"));
        Assert.Equal((1.0, 0.05), (a.Item1, a.Item2));
        Assert.Equal([1.0, 1, 1], a.Item3);
        Assert.Equal((1.0, 0.5), (b.Item1, b.Item2));
        Assert.Equal([0.0, 1, 1], b.Item3);
        Assert.Null(h.ValueOf("c"));
        var samples = new List<SeriesSample>();
        r.Collect(2000, Stale, samples);
        Assert.Equal(1, Latest(samples, ("__name__", "latency_bucket"), ("le", "+Inf"), ("metric_overflow", "true")));
        Assert.Equal(0, Latest(samples, ("__name__", "latency_bucket"), ("le", "1"), ("metric_overflow", "true")));
    }

    [Fact]
    public void Collect_SeriesIdleForStaleDuration_Removed()
    {
        var r = new TenantRegistry("t1", new GeneratorRegistryConfig()) { MaxActiveSeries = 1 };
        var c = r.Counter("x_total", ["k"]);
        c.Inc(Key("old"), 1, 0);
        long later = (long)Stale.TotalMilliseconds;
        c.Inc(Key("new"), 1, later); // limit 1: goes to overflow while "old" is alive

        var samples = new List<SeriesSample>();
        r.Collect(later, Stale, samples); // old updated exactly stale_duration ago: kept
        Assert.Equal(1, c.ValueOf("old"));
        r.Collect(later + 1, Stale, samples);
        Assert.Null(c.ValueOf("old"));
        Assert.Equal(1, r.ActiveSeries); // the overflow series remains

        r.Collect(later + later + 1, Stale, samples); // the overflow series goes stale too
        Assert.Equal(0, r.ActiveSeries);
        c.Inc(Key("new"), 1, later + later + 2); // room again
        Assert.Equal(1, c.ValueOf("new"));
    }

    [Fact]
    public void Collect_Labels_SortedWithNameExternalAndTenantLabels()
    {
        var config = new GeneratorRegistryConfig
        {
            ExternalLabels = new() { ["cluster"] = "eu-1", ["zone"] = "external-wins" },
            InjectTenantIdAs = "__tempo_tenant",
        };
        var r = new TenantRegistry("team-a", config);
        r.Counter("calls_total", ["zone", "service", "empty"]).Inc(Key("z1", "svc", ""), 1, 1000);

        var samples = new List<SeriesSample>();
        r.Collect(120_500, Stale, samples);

        Assert.Equal(2, samples.Count);
        Assert.Equal(TenantRegistry.EndOfLastMinuteMs(120_500), samples[0].TimestampMs);
        Assert.Equal(119_000, samples[0].TimestampMs);
        Assert.Equal(
            [("__name__", "calls_total"), ("__tempo_tenant", "team-a"), ("cluster", "eu-1"), ("service", "svc"), ("zone", "external-wins")],
            samples[1].Labels.Select(l => (l.Name, l.Value)).ToArray());
    }

    [Fact]
    public void Counter_LongLabelValue_TruncatedAtCharacterBoundary()
    {
        var r = new TenantRegistry("t1", new GeneratorRegistryConfig { MaxLabelValueLength = 5 });
        var key = new SeriesKeyBuilder(5);
        key.Add(System.Text.Encoding.UTF8.GetBytes("abcdé")); // é is 2 bytes: 6 bytes in all
        r.Counter("x_total", ["v"]).Inc(key.Key, 1, 0);

        Assert.Equal(1, r.Counter("x_total", ["v"]).ValueOf("abcd"));
    }

    [Theory]
    [InlineData(0.002, "0.002")]
    [InlineData(16.384, "16.384")]
    [InlineData(12.8, "12.8")]
    [InlineData(1, "1")]
    [InlineData(0.00001, "0.00001")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    public void FormatBound_BucketBounds_PrometheusText(double bound, string expected) => Assert.Equal(expected, Labels.FormatBound(bound));

    [Theory]
    [InlineData("http.method", "http_method")]
    [InlineData("k8s.pod-name", "k8s_pod_name")]
    [InlineData("already_ok", "already_ok")]
    [InlineData("café", "caf_")]
    public void Sanitize_AttributeNames_PrometheusLabelNames(string name, string expected) => Assert.Equal(expected, Labels.Sanitize(name));

    private static byte[] Key(params string[] values)
    {
        var k = new SeriesKeyBuilder(2048);
        foreach (var v in values)
        {
            k.Add(v);
        }

        return k.Key.ToArray();
    }

    private static (double, double, double[]) Unpack((double Count, double Sum, double[] Buckets)? v) =>
        v is { } x ? (x.Count, x.Sum, x.Buckets) : throw new InvalidOperationException("series missing");

    private static double? Latest(List<SeriesSample> samples, params (string Name, string Value)[] labels)
    {
        var expected = labels.OrderBy(l => l.Name, StringComparer.Ordinal).Select(l => new SeriesLabel(l.Name, l.Value)).ToArray();
        return samples.LastOrDefault(s => s.Labels.AsSpan().SequenceEqual(expected)) is { Labels: not null } hit ? hit.Value : null;
    }
}
