using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.TraceQL.Metrics;

/// <summary>
/// Turns merged partials into final series (runs once per query, on the frontend): per-function finalisation, then
/// each query's second stages, then arithmetic between queries bottom-up.
/// </summary>
internal static class MetricsFinalizer
{
    public static List<TimeSeries> Evaluate(MetricsExpr e, MetricsLeaf[] leaves, IReadOnlyList<MetricsPartial> partials, ref int next,
        MetricsRange range, int maxExemplars)
    {
        List<TimeSeries> series;
        switch (e)
        {
            case MetricsQuery:
                int i = next++;
                series = FinalizeLeaf(leaves[i], partials[i], range, maxExemplars);
                break;
            case MetricsMath { Right: MetricsScalar rs } m:
                series = [.. Evaluate(m.Left, leaves, partials, ref next, range, maxExemplars)
                    .Select(s => new TimeSeries(s.Labels, Apply(m.Op, s.Values, Fill(rs.Value, s.Values.Length))))];
                break;
            case MetricsMath { Left: MetricsScalar ls } m:
                series = [.. Evaluate(m.Right, leaves, partials, ref next, range, maxExemplars)
                    .Select(s => new TimeSeries(s.Labels, Apply(m.Op, Fill(ls.Value, s.Values.Length), s.Values)))];
                break;
            case MetricsMath m:
                var left = Evaluate(m.Left, leaves, partials, ref next, range, maxExemplars);
                var right = Evaluate(m.Right, leaves, partials, ref next, range, maxExemplars);
                series = Math(m.Op, left, right);
                break;
            default:
                throw new TraceQLEvaluationException($"unsupported metrics expression '{e}'");
        }

        foreach (var stage in e.SecondStages)
        {
            series = stage switch
            {
                TopKBottomK t => TopK(series, t.Limit, t.Function == TopKFunction.TopK, range.Intervals),
                MetricsFilter f => Filter(series, f.Op, f.Value),
                _ => throw new TraceQLEvaluationException($"unsupported second stage '{stage}'"),
            };
        }

        return series;
    }

    private static List<TimeSeries> FinalizeLeaf(MetricsLeaf leaf, MetricsPartial partial, MetricsRange range, int maxExemplars)
    {
        var result = new List<TimeSeries>();
        double scale = leaf.DurationScaled ? 1e9 : 1;
        switch (leaf.Kind)
        {
            case LeafKind.Quantile:
                return Quantiles(leaf, partial, range, maxExemplars);
            case LeafKind.Compare:
                return Compare(leaf, partial, range);
        }

        foreach (var p in partial.Series.Values.OrderBy(s => SeriesLabel.PromLabels(s.Labels), StringComparer.Ordinal))
        {
            var values = new double[partial.Intervals];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = leaf.Kind switch
                {
                    LeafKind.Rate => p.Values[i] / (range.StepNanos / 1e9),
                    LeafKind.Sum or LeafKind.Min or LeafKind.Max => p.Values[i] / scale,
                    LeafKind.Avg => p.Counts![i] == 0 ? double.NaN : p.Values[i] / p.Counts[i] / scale,
                    _ => p.Values[i],
                };
            }

            var ts = new TimeSeries(p.Labels, values);
            AttachExemplars(ts, p.Exemplars, maxExemplars);
            result.Add(ts);
        }

        return result;
    }

    /// <summary>
    /// Exemplars whose interval has a value, at most <paramref name="max"/> per series; NaN placeholders (count-like
    /// functions) take the series value of their interval, as Tempo's combiner does.
    /// </summary>
    private static void AttachExemplars(TimeSeries ts, IEnumerable<MetricsExemplar> exemplars, int max)
    {
        foreach (var e in exemplars.OrderBy(e => e.TimestampMs))
        {
            if (ts.Exemplars.Count >= max)
            {
                break;
            }

            if (e.Interval < 0 || e.Interval >= ts.Values.Length || !double.IsFinite(ts.Values[e.Interval]))
            {
                continue;
            }

            ts.Exemplars.Add(double.IsNaN(e.Value) ? e with { Value = ts.Values[e.Interval] } : e);
        }
    }

    private static List<TimeSeries> Quantiles(MetricsLeaf leaf, MetricsPartial partial, MetricsRange range, int maxExemplars)
    {
        // Group bucket series by their labels without __bucket.
        var groups = new Dictionary<string, (SeriesLabel[] Labels, List<(double Bucket, PartialSeries S)> Buckets)>(StringComparer.Ordinal);
        foreach (var p in partial.Series.Values)
        {
            var labels = p.Labels.Where(l => l.Name != SeriesLabel.Bucket).ToArray();
            double bucket = p.Labels.First(l => l.Name == SeriesLabel.Bucket).Value.Float;
            string key = SeriesLabel.PromLabels(labels);
            if (!groups.TryGetValue(key, out var g))
            {
                g = (labels, []);
                groups[key] = g;
            }

            g.Buckets.Add((bucket, p));
        }

        // Exemplars go to the quantile series closest by value over the whole result (Tempo's thresholds).
        var all = new List<(double Max, double Count)>();
        foreach (var g in groups.Values)
        {
            foreach (var (b, s) in g.Buckets)
            {
                all.Add((b, s.Values.Sum()));
            }
        }

        var merged = all.GroupBy(x => x.Max).Select(x => (x.Key, x.Sum(y => y.Count))).OrderBy(x => x.Key).ToList();
        var thresholds = leaf.Quantiles.Select(q => Log2Histogram.Quantile(q, merged)).ToArray();

        var result = new List<TimeSeries>();
        foreach (var g in groups.Values.OrderBy(g => SeriesLabel.PromLabels(g.Labels), StringComparer.Ordinal))
        {
            g.Buckets.Sort((a, b) => a.Bucket.CompareTo(b.Bucket));
            var exemplars = g.Buckets.SelectMany(b => b.S.Exemplars).ToList();
            for (int qi = 0; qi < leaf.Quantiles.Length; qi++)
            {
                double q = leaf.Quantiles[qi];
                var values = new double[partial.Intervals];
                var buf = new List<(double Max, double Count)>();
                for (int i = 0; i < values.Length; i++)
                {
                    buf.Clear();
                    foreach (var (b, s) in g.Buckets)
                    {
                        if (s.Values[i] > 0)
                        {
                            buf.Add((b, s.Values[i]));
                        }
                    }

                    values[i] = buf.Count == 0 ? 0 : Log2Histogram.Quantile(q, buf);
                }

                var labels = g.Labels.Append(new SeriesLabel(SeriesLabel.Quantile, TraceQLValue.FromFloat(q))).ToArray();
                var ts = new TimeSeries(labels, values);
                AttachExemplars(ts, exemplars.Where(e => TargetQuantile(e.Value, thresholds) == qi), maxExemplars);
                result.Add(ts);
            }
        }

        return result;
    }

    private static int TargetQuantile(double v, double[] thresholds)
    {
        for (int i = 0; i < thresholds.Length; i++)
        {
            if (v <= thresholds[i])
            {
                return i;
            }
        }

        return thresholds.Length - 1;
    }

    /// <summary>
    /// compare(): per meta type (selection, baseline) and field, the top-N values by total count; when a field has more
    /// values, one series <c>__meta_error="__too_many_values__"</c>; plus <c>{type}_total</c> series per field.
    /// </summary>
    private static List<TimeSeries> Compare(MetricsLeaf leaf, MetricsPartial partial, MetricsRange range)
    {
        int topN = leaf.Compare!.TopN;
        var result = new List<TimeSeries>();
        var groups = partial.Series.Values.GroupBy(p => (Type: p.Labels[0].Value.String, Field: p.Labels[1].Name));
        foreach (var g in groups.OrderBy(g => g.Key.Type, StringComparer.Ordinal).ThenBy(g => g.Key.Field, StringComparer.Ordinal))
        {
            var ranked = g.OrderByDescending(p => p.Values.Sum()).ThenBy(p => p.Labels[1].PromValue(), StringComparer.Ordinal).ToList();
            foreach (var p in ranked.Take(topN))
            {
                result.Add(new TimeSeries(p.Labels, (double[])p.Values.Clone()));
            }

            var nil = new SeriesLabel(g.Key.Field, TraceQLValue.Nil);
            if (ranked.Count > topN)
            {
                result.Add(new TimeSeries(
                    [new SeriesLabel(SeriesLabel.MetaType, TraceQLValue.FromString(g.Key.Type)),
                     new SeriesLabel(SeriesLabel.MetaError, TraceQLValue.FromString("__too_many_values__")), nil],
                    new double[range.Intervals]));
            }

            var totals = new double[range.Intervals];
            foreach (var p in ranked)
            {
                for (int i = 0; i < totals.Length; i++)
                {
                    totals[i] += p.Values[i];
                }
            }

            result.Add(new TimeSeries([new SeriesLabel(SeriesLabel.MetaType, TraceQLValue.FromString(g.Key.Type + "_total")), nil], totals));
        }

        return result;
    }

    /// <summary>
    /// Series arithmetic: series with equal label sets combine pointwise; when one side has a single series it
    /// applies to every series of the other (e.g. <c>(errors by service) / (all)</c>). Unmatched series are dropped.
    /// Results keep the left side's labels (the right side's when only the right is grouped).
    /// </summary>
    private static List<TimeSeries> Math(ArithmeticOp op, List<TimeSeries> left, List<TimeSeries> right)
    {
        var result = new List<TimeSeries>();
        if (left.Count == 0 || right.Count == 0)
        {
            return result;
        }

        var rightByKey = right.ToDictionary(s => s.PromLabels, StringComparer.Ordinal);
        foreach (var l in left)
        {
            TimeSeries? r = rightByKey.GetValueOrDefault(l.PromLabels) ?? (right.Count == 1 ? right[0] : null);
            if (r is not null)
            {
                result.Add(new TimeSeries(l.Labels, Apply(op, l.Values, r.Values)));
            }
        }

        if (result.Count == 0 && left.Count == 1)
        {
            foreach (var r in right)
            {
                result.Add(new TimeSeries(r.Labels, Apply(op, left[0].Values, r.Values)));
            }
        }

        return result;
    }

    private static double[] Fill(double v, int n)
    {
        var a = new double[n];
        Array.Fill(a, v);
        return a;
    }

    private static double[] Apply(ArithmeticOp op, double[] a, double[] b)
    {
        var v = new double[a.Length];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = op switch
            {
                ArithmeticOp.Add => a[i] + b[i],
                ArithmeticOp.Sub => a[i] - b[i],
                ArithmeticOp.Mul => a[i] * b[i],
                ArithmeticOp.Div => b[i] == 0 ? double.NaN : a[i] / b[i],
                _ => throw new TraceQLEvaluationException($"unsupported math operation between queries: {Operators.Text(op)}"),
            };
        }

        return v;
    }

    /// <summary>
    /// topk/bottomk per timestamp (Tempo 3): at each interval the k largest (smallest) values are kept; a series keeps
    /// only the intervals where it made the cut. Ties break by label text, so results are deterministic.
    /// </summary>
    private static List<TimeSeries> TopK(List<TimeSeries> input, int k, bool top, int intervals)
    {
        var kept = new Dictionary<TimeSeries, double[]>(ReferenceEqualityComparer.Instance);
        var ordered = input.OrderBy(s => s.PromLabels, StringComparer.Ordinal).ToList();
        for (int i = 0; i < intervals; i++)
        {
            int idx = i;
            var candidates = ordered.Where(s => idx < s.Values.Length && !double.IsNaN(s.Values[idx]));
            var chosen = (top ? candidates.OrderByDescending(s => s.Values[idx]) : candidates.OrderBy(s => s.Values[idx])).Take(k);
            foreach (var s in chosen)
            {
                if (!kept.TryGetValue(s, out var vals))
                {
                    vals = new double[intervals];
                    Array.Fill(vals, double.NaN);
                    kept[s] = vals;
                }

                vals[idx] = s.Values[idx];
            }
        }

        var result = new List<TimeSeries>();
        foreach (var s in ordered)
        {
            if (kept.TryGetValue(s, out var vals))
            {
                var ts = new TimeSeries(s.Labels, vals);
                ts.Exemplars.AddRange(s.Exemplars);
                result.Add(ts);
            }
        }

        return result;
    }

    /// <summary>Threshold filter: keeps the points where <c>value op threshold</c> holds.</summary>
    private static List<TimeSeries> Filter(List<TimeSeries> input, ComparisonOp op, double threshold)
    {
        var result = new List<TimeSeries>();
        foreach (var s in input)
        {
            var vals = new double[s.Values.Length];
            for (int i = 0; i < vals.Length; i++)
            {
                double v = s.Values[i];
                bool keep = op switch
                {
                    ComparisonOp.Equal => v == threshold,
                    ComparisonOp.NotEqual => v != threshold && !double.IsNaN(v),
                    ComparisonOp.Less => v < threshold,
                    ComparisonOp.LessEqual => v <= threshold,
                    ComparisonOp.Greater => v > threshold,
                    _ => v >= threshold,
                };
                vals[i] = keep ? v : double.NaN;
            }

            var ts = new TimeSeries(s.Labels, vals);
            ts.Exemplars.AddRange(s.Exemplars.Where(e => e.Interval >= 0 && e.Interval < vals.Length && !double.IsNaN(vals[e.Interval])));
            result.Add(ts);
        }

        return result;
    }
}
