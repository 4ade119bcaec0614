using System.Globalization;
using System.Text;
using Rubato.TraceQL.Engine;

namespace Rubato.TraceQL.Metrics;

/// <summary>One label of a series: a name and a typed value (nil only for the forced all-nil label and compare totals).</summary>
public readonly record struct SeriesLabel(string Name, TraceQLValue Value)
{
    /// <summary>Label names Tempo gives special meaning.</summary>
    public const string MetricName = "__name__";
    public const string Bucket = "__bucket";
    public const string MetaType = "__meta_type";
    public const string MetaError = "__meta_error";
    public const string Quantile = "p";

    /// <summary>Prometheus-style value text: nil as <c>&lt;nil&gt;</c>, empty string as <c>&lt;empty&gt;</c>.</summary>
    public string PromValue() => Value.Kind switch
    {
        ValueKind.Nil => "<nil>",
        ValueKind.String when Value.String.Length == 0 => "<empty>",
        ValueKind.String when Value.String == "nil" => "<nil>",
        ValueKind.Float => Value.Float.ToString("R", CultureInfo.InvariantCulture),
        _ => Value.ToString(),
    };

    /// <summary>Prometheus text of a label set, sorted by name: <c>{a="x", b="y"}</c>; the series key everywhere.</summary>
    public static string PromLabels(IReadOnlyList<SeriesLabel> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var sorted = labels.OrderBy(l => l.Name, StringComparer.Ordinal).ToArray();
        var sb = new StringBuilder("{");
        for (int i = 0; i < sorted.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(", ");
            }

            sb.Append(sorted[i].Name).Append("=\"");
            foreach (char c in sorted[i].PromValue())
            {
                switch (c)
                {
                    case '\\': sb.Append("\\\\"); break;
                    case '"': sb.Append("\\\""); break;
                    case '\n': sb.Append("\\n"); break;
                    default: sb.Append(c); break;
                }
            }

            sb.Append('"');
        }

        return sb.Append('}').ToString();
    }
}

/// <summary>An exemplar: a span that contributed to a series, with its start time and (for value functions) its value.</summary>
public sealed record MetricsExemplar(IReadOnlyList<SeriesLabel> Labels, double Value, long TimestampMs)
{
    /// <summary>The interval the span fell in (kept so merges and finalisation need no time arithmetic).</summary>
    public int Interval { get; init; }
}

/// <summary>A final series: labels, one value per interval (NaN = no sample) and exemplars.</summary>
public sealed class TimeSeries
{
    public TimeSeries(IReadOnlyList<SeriesLabel> labels, double[] values)
    {
        Labels = labels;
        Values = values;
        PromLabels = SeriesLabel.PromLabels(labels);
    }

    public IReadOnlyList<SeriesLabel> Labels { get; }

    public string PromLabels { get; }

    public double[] Values { get; }

    public List<MetricsExemplar> Exemplars { get; } = [];

    /// <summary>True when at least one value is a finite number (series without samples are not returned).</summary>
    public bool HasSamples => Values.Any(double.IsFinite);
}

/// <summary>The result of a metrics query: series in a stable order (by their Prometheus label text) plus counters.</summary>
public sealed class MetricsResult
{
    public MetricsRange Range { get; init; }

    public List<TimeSeries> Series { get; init; } = [];

    public MetricsQueryStats Stats { get; init; } = new();

    /// <summary>True when series were dropped for <c>max_series</c>; <see cref="Message"/> says so.</summary>
    public bool Partial { get; set; }

    public string Message { get; set; } = string.Empty;
}

/// <summary>Counters of a metrics query (Tempo's <c>SearchMetrics</c> subset).</summary>
public sealed class MetricsQueryStats
{
    public ulong InspectedTraces { get; set; }

    public ulong InspectedSpans { get; set; }

    public ulong InspectedBytes { get; set; }

    public uint TotalJobs { get; set; }

    public uint CompletedJobs { get; set; }

    public uint TotalBlocks { get; set; }

    public ulong TotalBlockBytes { get; set; }

    public void Add(MetricsQueryStats other)
    {
        ArgumentNullException.ThrowIfNull(other);
        InspectedTraces += other.InspectedTraces;
        InspectedSpans += other.InspectedSpans;
        InspectedBytes += other.InspectedBytes;
        TotalJobs += other.TotalJobs;
        CompletedJobs += other.CompletedJobs;
        TotalBlocks += other.TotalBlocks;
        TotalBlockBytes += other.TotalBlockBytes;
    }
}

/// <summary>
/// Tempo's power-of-two histogram for <c>quantile_over_time</c> and <c>histogram_over_time</c>.
/// </summary>
/// <remarks>
/// A value v ≥ 2 (nanoseconds for durations, the integer itself for int attributes) goes to the bucket whose upper
/// bound is the next power of two ≥ v (durations: reported in seconds); smaller values and float attributes are
/// dropped, as in Tempo. A quantile is found by rank (ceil(q·n)-th smallest observation) and interpolated
/// exponentially inside its bucket (between half its bound and its bound), so it lies in the same bucket (2^(k−1), 2^k] as the exact quantile: the
/// estimate is within a factor of 2 of the exact value (relative error below 100% above, 50% below). Bucket counts
/// merge by addition, so sharded quantiles equal unsharded ones exactly.
/// </remarks>
public static class Log2Histogram
{
    /// <summary>Upper bound of v's bucket (a power of two), or -1 for v &lt; 2.</summary>
    public static double Bucketize(ulong v)
    {
        if (v < 2)
        {
            return -1;
        }

        // Next power of two ≥ v, exactly (no floating log): 2^(64 − lzcnt(v − 1)).
        int bits = 64 - System.Numerics.BitOperations.LeadingZeroCount(v - 1);
        return Math.Pow(2, bits);
    }

    /// <summary>Quantile q of buckets sorted by upper bound; 0 when there is nothing.</summary>
    public static double Quantile(double q, IReadOnlyList<(double Max, double Count)> buckets)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        if (double.IsNaN(q) || q < 0 || q > 1 || buckets.Count == 0)
        {
            return 0;
        }

        double total = 0;
        foreach (var b in buckets)
        {
            total += b.Count;
        }

        if (total <= 0)
        {
            return 0;
        }

        double maxSamples = Math.Max(1, Math.Ceiling(q * total));
        double seen = 0;
        int bucket = 0;
        for (int i = 0; i < buckets.Count; i++)
        {
            bucket = i;
            if (seen + buckets[i].Count > maxSamples)
            {
                break;
            }

            seen += buckets[i].Count;
            if (seen == maxSamples)
            {
                return buckets[i].Max;
            }
        }

        double interp = (maxSamples - seen) / buckets[bucket].Count;
        double maxV = Math.Log2(buckets[bucket].Max);
        // Tempo interpolates from the previous non-empty bucket; the floor at half the bucket keeps the estimate inside
        // the value's own bucket, which is what bounds the error by a factor of 2.
        double minV = bucket > 0 ? Math.Max(Math.Log2(buckets[bucket - 1].Max), maxV - 1) : maxV - 1;
        return Math.Pow(2, minV + ((maxV - minV) * interp));
    }
}
