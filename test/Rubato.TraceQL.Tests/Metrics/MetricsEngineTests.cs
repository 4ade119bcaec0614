using Rubato.Common.Model;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Metrics;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.TraceQL.Tests.Metrics;

/// <summary>
/// TraceQL metrics over a generated dataset; every expected value is computed here with plain loops over the
/// generated spans (grid arithmetic written independently of <see cref="MetricsRange"/>).
/// </summary>
public sealed class MetricsEngineTests
{
    private const long Sec = 1_000_000_000;
    private static readonly (List<Trace> Traces, List<GSpan> Spans) Data = MetricsData.Generate(400, 7);

    /// <summary>(start offset s, end offset s, step s): aligned, unaligned, odd steps, partial coverage.</summary>
    public static TheoryData<long, long, long> Grids => new()
    {
        { 0, 600, 60 },
        { 0, 600, 15 },
        { 13, 587, 7 },
        { 100, 250, 30 },
        { -120, 900, 120 },
    };

    [Theory]
    [MemberData(nameof(Grids))]
    public async Task Rate_ByService_EqualsIndependentCounts(long from, long to, long step)
    {
        var (start, end, stepNs) = Range(from, to, step);
        var result = await Run("{ } | rate() by (resource.service.name)", start, end, stepNs);
        var grid = new Grid(start, end, stepNs);
        foreach (var svc in MetricsData.Services)
        {
            var expected = grid.Counts(Data.Spans.Where(s => s.Service == svc)).Select(c => c / (double)step).ToArray();
            if (expected.All(v => v == 0))
            {
                Assert.DoesNotContain(result.Series, s => s.PromLabels == $"{{resource.service.name=\"{svc}\"}}");
                continue;
            }

            var series = Single(result, $"{{resource.service.name=\"{svc}\"}}");
            Assert.Equal(expected, series.Values);
        }
    }

    [Theory]
    [MemberData(nameof(Grids))]
    public async Task CountOverTime_WithFilter_EqualsIndependentCounts(long from, long to, long step)
    {
        var (start, end, stepNs) = Range(from, to, step);
        var result = await Run("{ kind = server && status = error } | count_over_time()", start, end, stepNs);
        var expected = new Grid(start, end, stepNs).Counts(Data.Spans.Where(s => s.Kind == SpanKind.Server && s.Error)).Select(c => (double)c).ToArray();
        Assert.Equal(expected, Single(result, "{__name__=\"count_over_time\"}").Values);
    }

    [Theory]
    [InlineData("sum_over_time")]
    [InlineData("min_over_time")]
    [InlineData("max_over_time")]
    [InlineData("avg_over_time")]
    public async Task OverTime_Duration_EqualsIndependentAggregates(string fn)
    {
        var (start, end, step) = Range(0, 600, 60);
        var result = await Run($"{{ }} | {fn}(duration) by (resource.service.name)", start, end, step);
        var grid = new Grid(start, end, step);
        foreach (var svc in MetricsData.Services)
        {
            var expected = grid.Aggregate(Data.Spans.Where(s => s.Service == svc), s => (double)s.Duration, fn, scale: 1e9);
            Assert.Equal(expected, Single(result, $"{{resource.service.name=\"{svc}\"}}").Values);
        }
    }

    [Theory]
    [InlineData("sum_over_time")]
    [InlineData("min_over_time")]
    [InlineData("max_over_time")]
    [InlineData("avg_over_time")]
    public async Task OverTime_IntAttribute_EqualsIndependentAggregates(string fn)
    {
        var (start, end, step) = Range(13, 587, 7);
        var result = await Run($"{{ kind = client }} | {fn}(span.size)", start, end, step);
        var expected = new Grid(start, end, step).Aggregate(Data.Spans.Where(s => s.Kind == SpanKind.Client && s.Size is not null), s => s.Size!.Value, fn, scale: 1);
        Assert.Equal(expected, Single(result, $"{{__name__=\"{fn}\"}}").Values);
    }

    [Theory]
    [MemberData(nameof(Grids))]
    public async Task QuantileOverTime_Duration_WithinFactorTwoOfExact(long from, long to, long step)
    {
        var (start, end, stepNs) = Range(from, to, step);
        var qs = new[] { 0.5, 0.9, 0.99 };
        var result = await Run("{ } | quantile_over_time(duration, .5, .9, .99) by (resource.service.name)", start, end, stepNs);
        var grid = new Grid(start, end, stepNs);
        int compared = 0;
        foreach (var svc in MetricsData.Services)
        {
            var perInterval = grid.Group(Data.Spans.Where(s => s.Service == svc && s.Duration >= 2));
            foreach (double q in qs)
            {
                var series = Single(result, $"{{p=\"{q.ToString(System.Globalization.CultureInfo.InvariantCulture)}\", resource.service.name=\"{svc}\"}}");
                for (int i = 0; i < grid.Intervals; i++)
                {
                    var durations = perInterval[i].Select(s => s.Duration / 1e9).Order().ToList();
                    if (durations.Count == 0)
                    {
                        Assert.Equal(0, series.Values[i]);
                        continue;
                    }

                    // The rank Tempo uses: the ceil(q·n)-th smallest value (at least the first).
                    double exact = durations[Math.Max(1, (int)Math.Ceiling(q * durations.Count)) - 1];
                    double got = series.Values[i];
                    Assert.InRange(got / exact, 0.5, 2.0);
                    compared++;
                }
            }
        }

        Assert.True(compared > 10, $"only {compared} quantiles compared");
    }

    [Fact]
    public async Task HistogramOverTime_Duration_BucketCountsExact()
    {
        var (start, end, step) = Range(0, 600, 120);
        var result = await Run("{ kind = server } | histogram_over_time(duration)", start, end, step);
        var grid = new Grid(start, end, step);
        var spans = Data.Spans.Where(s => s.Kind == SpanKind.Server && s.Duration >= 2).ToList();
        var buckets = spans.GroupBy(s => NextPow2(s.Duration) / 1e9).ToList();
        Assert.Equal(buckets.Count, result.Series.Count);
        foreach (var b in buckets)
        {
            var series = result.Series.Single(s => s.Labels.Any(l => l.Name == "__bucket" && l.Value.Float == b.Key));
            Assert.Equal(grid.Counts(b).Select(c => (double)c).ToArray(), series.Values);
        }

        Assert.Equal(grid.Counts(spans).Select(c => (double)c).ToArray(), SumSeries(result.Series, grid.Intervals));
    }

    [Fact]
    public async Task TopKAndBottomK_PerInterval_MatchIndependentRanking()
    {
        var (start, end, step) = Range(0, 600, 60);
        var all = await Run("{ } | count_over_time() by (resource.service.name)", start, end, step);
        foreach (var (fn, k) in new[] { ("topk", 2), ("bottomk", 2) })
        {
            var result = await Run($"{{ }} | count_over_time() by (resource.service.name) | {fn}({k})", start, end, step);
            for (int i = 0; i < all.Range.Intervals; i++)
            {
                var ranked = all.Series.Select(s => (s.PromLabels, V: s.Values[i]))
                    .OrderBy(x => fn == "topk" ? -x.V : x.V).ThenBy(x => x.PromLabels, StringComparer.Ordinal).Take(k)
                    .Select(x => x.PromLabels).ToHashSet();
                var got = result.Series.Where(s => !double.IsNaN(s.Values[i])).Select(s => s.PromLabels).ToHashSet();
                Assert.Equal(ranked, got);
            }
        }
    }

    [Fact]
    public async Task ThresholdFilter_KeepsOnlyPassingPoints()
    {
        var (start, end, step) = Range(0, 600, 60);
        var all = await Run("{ } | count_over_time() by (resource.service.name)", start, end, step);
        var filtered = await Run("{ } | count_over_time() by (resource.service.name) > 8", start, end, step);
        foreach (var s in all.Series)
        {
            var expected = s.Values.Select(v => v > 8 ? v : double.NaN).ToArray();
            var got = filtered.Series.SingleOrDefault(x => x.PromLabels == s.PromLabels);
            if (expected.All(double.IsNaN))
            {
                Assert.Null(got);
            }
            else
            {
                Assert.Equal(expected, got!.Values);
            }
        }
    }

    [Fact]
    public async Task Arithmetic_ErrorRatioByService_EqualsIndependentRatio()
    {
        var (start, end, step) = Range(0, 600, 120);
        var result = await Run("({ status = error } | rate() by (resource.service.name)) / ({ } | rate() by (resource.service.name))", start, end, step);
        var grid = new Grid(start, end, step);
        foreach (var svc in MetricsData.Services)
        {
            var errors = grid.Counts(Data.Spans.Where(s => s.Service == svc && s.Error));
            var total = grid.Counts(Data.Spans.Where(s => s.Service == svc));
            if (errors.All(e => e == 0))
            {
                continue;
            }

            var expected = errors.Zip(total, (e, t) => t == 0 ? double.NaN : (e / (step / 1e9)) / (t / (step / 1e9))).ToArray();
            Assert.Equal(expected, Single(result, $"{{resource.service.name=\"{svc}\"}}").Values);
        }
    }

    [Fact]
    public async Task Arithmetic_SingleSeriesRight_AppliesToEverySeries()
    {
        var (start, end, step) = Range(0, 600, 300);
        var result = await Run("({ } | count_over_time() by (resource.service.name)) - ({ kind = server } | count_over_time())", start, end, step);
        var grid = new Grid(start, end, step);
        var servers = grid.Counts(Data.Spans.Where(s => s.Kind == SpanKind.Server));
        var svc = MetricsData.Services[0];
        var expected = grid.Counts(Data.Spans.Where(s => s.Service == svc)).Zip(servers, (a, b) => (double)(a - b)).ToArray();
        Assert.Equal(expected, Single(result, $"{{resource.service.name=\"{svc}\"}}").Values);
    }

    [Theory]
    [InlineData("({ } | count_over_time() by (resource.service.name)) * 60", 60.0, 0.0)]
    [InlineData("({ } | count_over_time() by (resource.service.name)) / 2", 0.5, 0.0)]
    [InlineData("100 - ({ } | count_over_time() by (resource.service.name))", -1.0, 100.0)]
    [InlineData("({ } | count_over_time() by (resource.service.name)) + 1.5", 1.0, 1.5)]
    public async Task Arithmetic_WithScalar_AppliesToEveryPoint(string query, double factor, double offset)
    {
        var (start, end, step) = Range(0, 600, 60);
        var result = await Run(query, start, end, step);
        var grid = new Grid(start, end, step);
        foreach (var svc in MetricsData.Services)
        {
            var expected = grid.Counts(Data.Spans.Where(s => s.Service == svc)).Select(c => (c * factor) + offset).ToArray();
            Assert.Equal(expected, Single(result, $"{{resource.service.name=\"{svc}\"}}").Values);
        }
    }

    [Fact]
    public void Arithmetic_WithScalar_PrintsAndReparses()
    {
        var q = TraceQLParser.ParseAndValidate("({ } | rate()) * 60");
        Assert.Equal(q, TraceQLParser.ParseAndValidate(q.ToString()));
    }

    [Fact]
    public async Task Compare_ErrorSelection_CountsSelectionAndBaselinePerService()
    {
        var (start, end, step) = Range(0, 600, 300);
        var result = await Run("{ } | compare({ status = error })", start, end, step);
        var grid = new Grid(start, end, step);
        foreach (var svc in MetricsData.Services)
        {
            var sel = grid.Counts(Data.Spans.Where(s => s.Service == svc && s.Error)).Select(c => (double)c).ToArray();
            var baseline = grid.Counts(Data.Spans.Where(s => s.Service == svc && !s.Error)).Select(c => (double)c).ToArray();
            Assert.Equal(sel, Single(result, $"{{__meta_type=\"selection\", resource.service.name=\"{svc}\"}}").Values);
            Assert.Equal(baseline, Single(result, $"{{__meta_type=\"baseline\", resource.service.name=\"{svc}\"}}").Values);
        }

        var totals = grid.Counts(Data.Spans.Where(s => s.Error)).Select(c => (double)c).ToArray();
        Assert.Equal(totals, Single(result, "{__meta_type=\"selection_total\", resource.service.name=\"<nil>\"}").Values);
    }

    [Fact]
    public async Task Compare_TopN_LimitsValuesAndFlagsTooMany()
    {
        var (start, end, step) = Range(0, 600, 300);
        var result = await Run("{ } | compare({ status = error }, 2)", start, end, step);
        Assert.Equal(2, result.Series.Count(s => s.Labels.Any(l => l.Name == "__meta_type" && l.Value.String == "baseline") && s.Labels.Any(l => l.Name == "resource.service.name" && !l.Value.IsNil)));
        Assert.Contains(result.Series, s => s.PromLabels == "{__meta_error=\"__too_many_values__\", __meta_type=\"baseline\", resource.service.name=\"<nil>\"}");
    }

    [Fact]
    public async Task Sharded_EqualsUnsharded_ExactlyForEveryFunction()
    {
        var (start, end, step) = Range(13, 587, 30);
        string[] queries =
        [
            "{ } | rate() by (resource.service.name)",
            "{ kind = server } | count_over_time()",
            "{ } | sum_over_time(duration) by (resource.service.name)",
            "{ } | min_over_time(span.size) by (kind)",
            "{ } | max_over_time(duration)",
            "{ } | avg_over_time(duration) by (resource.service.name)",
            "{ } | quantile_over_time(duration, .5, .99) by (resource.service.name)",
            "{ } | histogram_over_time(span.size)",
            "{ } | compare({ status = error })",
            "({ status = error } | rate()) / ({ } | rate())",
        ];

        // Shards: traces dealt round-robin to 4 fetchers, and each trace's resources split across two of them (a trace
        // half in the ingester, half in a block).
        var shards = Enumerable.Range(0, 4).Select(_ => new List<Trace>()).ToList();
        for (int t = 0; t < Data.Traces.Count; t++)
        {
            var tr = Data.Traces[t];
            var a = new Trace();
            var b = new Trace();
            for (int r = 0; r < tr.ResourceSpans.Count; r++)
            {
                (r % 2 == 0 ? a : b).ResourceSpans.Add(tr.ResourceSpans[r]);
            }

            shards[t % 4].Add(a);
            if (b.ResourceSpans.Count > 0)
            {
                shards[(t + 1) % 4].Add(b);
            }
        }

        foreach (var q in queries)
        {
            var compiled = CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate(q), MetricsRange.Align(start, end, step));
            var whole = await compiled.RunAsync([new TraceModelFetcher(Data.Traces)], CancellationToken.None);
            var sharded = await compiled.RunAsync(shards.Select(s => new TraceModelFetcher(s)), CancellationToken.None);
            Assert.Equal(whole.Series.Select(s => s.PromLabels), sharded.Series.Select(s => s.PromLabels));
            for (int i = 0; i < whole.Series.Count; i++)
            {
                Assert.Equal(whole.Series[i].Values, sharded.Series[i].Values);
            }
        }
    }

    [Fact]
    public async Task Instant_OneValue_CoversWholeRange()
    {
        long start = (long)MetricsData.T0 + (100 * Sec), end = (long)MetricsData.T0 + (400 * Sec);
        var compiled = CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate("{ } | rate() by (resource.service.name)"), MetricsRange.Instant(start, end));
        var result = await compiled.RunAsync([new TraceModelFetcher(Data.Traces)], CancellationToken.None);
        foreach (var svc in MetricsData.Services)
        {
            long n = Data.Spans.Count(s => s.Service == svc && (long)s.Start >= start && (long)s.Start <= end);
            Assert.Equal([n / 300.0], Single(result, $"{{resource.service.name=\"{svc}\"}}").Values);
        }
    }

    [Fact]
    public async Task Exemplars_BoundedAndCarryTraceIds()
    {
        var (start, end, step) = Range(0, 600, 60);
        var compiled = CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate("{ } | max_over_time(duration) by (resource.service.name)"), MetricsRange.Align(start, end, step), maxExemplars: 20);
        var result = await compiled.RunAsync([new TraceModelFetcher(Data.Traces)], CancellationToken.None);
        int total = result.Series.Sum(s => s.Exemplars.Count);
        Assert.InRange(total, 1, 20);
        foreach (var s in result.Series)
        {
            foreach (var e in s.Exemplars)
            {
                Assert.Contains(e.Labels, l => l.Name == "trace:id" && l.Value.String.Length == 32);
                Assert.True(e.Value <= s.Values[e.Interval]);
            }
        }
    }

    [Fact]
    public void Compile_SearchQuery_Throws()
    {
        var e = Assert.Throws<TraceQLEvaluationException>(() =>
            CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate("{ status = error }"), MetricsRange.Align(Sec, 100 * Sec, Sec)));
        Assert.Contains("not a metrics query", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 3600, 15)]
    [InlineData(0, 300, 1)]
    [InlineData(0, 86400, 360)]
    [InlineData(0, 100, 1)]
    public void DefaultStep_MatchesTempo(long from, long to, long expectedSeconds) =>
        Assert.Equal(expectedSeconds * Sec, MetricsRange.DefaultStep(from * Sec, to * Sec));

    private static (long Start, long End, long Step) Range(long fromSec, long toSec, long stepSec) =>
        ((long)MetricsData.T0 + (fromSec * Sec), (long)MetricsData.T0 + (toSec * Sec), stepSec * Sec);

    private static async Task<MetricsResult> Run(string query, long start, long end, long step)
    {
        var compiled = CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate(query), MetricsRange.Align(start, end, step));
        return await compiled.RunAsync([new TraceModelFetcher(Data.Traces)], CancellationToken.None);
    }

    private static TimeSeries Single(MetricsResult r, string promLabels)
    {
        var s = r.Series.SingleOrDefault(x => x.PromLabels == promLabels);
        Assert.True(s is not null, $"no series {promLabels}; have {string.Join(" ", r.Series.Select(x => x.PromLabels))}");
        return s!;
    }

    private static double[] SumSeries(IEnumerable<TimeSeries> series, int n)
    {
        var sum = new double[n];
        foreach (var s in series)
        {
            for (int i = 0; i < n; i++)
            {
                sum[i] += s.Values[i];
            }
        }

        return sum;
    }

    private static ulong NextPow2(ulong v)
    {
        ulong p = 1;
        while (p < v)
        {
            p <<= 1;
        }

        return p;
    }

    /// <summary>The step grid as Tempo defines it, written out directly: first bucket ends at ceil-aligned start.</summary>
    private sealed class Grid
    {
        private readonly long _first;
        private readonly long _step;

        public Grid(long start, long end, long step)
        {
            _step = step;
            long floorStart = start / step * step;
            long ceilEnd = (end + step - 1) / step * step;
            _first = floorStart - step;
            Intervals = (int)((ceilEnd - _first) / step);
        }

        public int Intervals { get; }

        /// <summary>Bucket of a start time: i with first + i·step &lt; ts ≤ first + (i+1)·step.</summary>
        public int Of(ulong ts)
        {
            long t = (long)ts;
            if (t <= _first || t > _first + (Intervals * _step))
            {
                return -1;
            }

            return (int)(((t - _first) + _step - 1) / _step) - 1;
        }

        public long[] Counts(IEnumerable<GSpan> spans)
        {
            var c = new long[Intervals];
            foreach (var s in spans)
            {
                int i = Of(s.Start);
                if (i >= 0)
                {
                    c[i]++;
                }
            }

            return c;
        }

        public List<GSpan>[] Group(IEnumerable<GSpan> spans)
        {
            var g = Enumerable.Range(0, Intervals).Select(_ => new List<GSpan>()).ToArray();
            foreach (var s in spans)
            {
                int i = Of(s.Start);
                if (i >= 0)
                {
                    g[i].Add(s);
                }
            }

            return g;
        }

        public double[] Aggregate(IEnumerable<GSpan> spans, Func<GSpan, double> value, string fn, double scale)
        {
            var groups = Group(spans);
            return groups.Select(g =>
            {
                if (g.Count == 0)
                {
                    return double.NaN;
                }

                var vals = g.Select(value).ToList();
                return fn switch
                {
                    "sum_over_time" => vals.Sum() / scale,
                    "min_over_time" => vals.Min() / scale,
                    "max_over_time" => vals.Max() / scale,
                    _ => vals.Sum() / vals.Count / scale,
                };
            }).ToArray();
        }
    }
}
