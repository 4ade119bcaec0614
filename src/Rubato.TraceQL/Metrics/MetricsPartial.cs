namespace Rubato.TraceQL.Metrics;

/// <summary>How partial values of a leaf combine.</summary>
public enum PartialOp : byte
{
    /// <summary>Counts and sums (NaN = no value yet): rate, count_over_time, sum_over_time, histogram/quantile buckets, compare.</summary>
    Sum,
    Min,
    Max,

    /// <summary>Sum in <see cref="PartialSeries.Values"/>, count in <see cref="PartialSeries.Counts"/>.</summary>
    Avg,
}

/// <summary>One series of one shard before finalisation: raw sums/counts/extremes per interval.</summary>
public sealed class PartialSeries
{
    public PartialSeries(SeriesLabel[] labels, int intervals, bool nanInit, bool withCounts)
    {
        Labels = labels;
        Values = new double[intervals];
        if (nanInit)
        {
            Array.Fill(Values, double.NaN);
        }

        Counts = withCounts ? new double[intervals] : null;
    }

    public SeriesLabel[] Labels { get; }

    public double[] Values { get; }

    public double[]? Counts { get; }

    public List<MetricsExemplar> Exemplars { get; } = [];
}

/// <summary>
/// The mergeable result of one leaf (one <c>pipeline | function</c>) over one shard of data (the ingester, a block).
/// </summary>
/// <remarks>
/// Merging is exact and order-independent: counts add, sums add (durations are summed in integer nanoseconds, exact
/// below 2^53 ns ≈ 104 days per interval), min/max take the extreme, averages keep sum and count apart, and quantiles
/// are bucket counts. So a query sharded by time range and block and merged gives the same numbers as one unsharded
/// pass. Not thread-safe: the frontend merges under its own lock.
/// </remarks>
public sealed class MetricsPartial
{
    /// <param name="op">How values combine.</param>
    /// <param name="intervals">Values per series.</param>
    /// <param name="nanInit">New series start with NaN (no value) rather than 0: sum/min/max_over_time. Counts start
    /// at 0, so a counted series has a 0 sample in intervals without spans, as in Tempo.</param>
    public MetricsPartial(PartialOp op, int intervals, bool nanInit)
    {
        Op = op;
        Intervals = intervals;
        NanInit = nanInit;
    }

    public bool NanInit { get; }

    public PartialOp Op { get; }

    public int Intervals { get; }

    /// <summary>Series by their Prometheus label text.</summary>
    public Dictionary<string, PartialSeries> Series { get; } = new(StringComparer.Ordinal);

    public PartialSeries GetOrAdd(SeriesLabel[] labels)
    {
        string key = SeriesLabel.PromLabels(labels);
        if (!Series.TryGetValue(key, out var s))
        {
            s = new PartialSeries(labels, Intervals, NanInit, withCounts: Op == PartialOp.Avg);
            Series[key] = s;
        }

        return s;
    }

    /// <summary>Adds another shard's partial of the same leaf into this one.</summary>
    public void Merge(MetricsPartial other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Op != Op || other.Intervals != Intervals || other.NanInit != NanInit)
        {
            throw new ArgumentException($"cannot merge a {other.Op}/{other.Intervals} partial into {Op}/{Intervals}");
        }

        foreach (var (key, src) in other.Series)
        {
            if (!Series.TryGetValue(key, out var dst))
            {
                dst = GetOrAdd(src.Labels);
            }

            for (int i = 0; i < Intervals; i++)
            {
                dst.Values[i] = Combine(Op, dst.Values[i], src.Values[i]);
                if (dst.Counts is not null && src.Counts is not null)
                {
                    dst.Counts[i] += src.Counts[i];
                }
            }

            dst.Exemplars.AddRange(src.Exemplars);
        }
    }

    /// <summary>Combines two partial values; NaN means "no value".</summary>
    public static double Combine(PartialOp op, double a, double b)
    {
        if (double.IsNaN(a))
        {
            return b;
        }

        if (double.IsNaN(b))
        {
            return a;
        }

        return op switch
        {
            PartialOp.Min => Math.Min(a, b),
            PartialOp.Max => Math.Max(a, b),
            _ => a + b,
        };
    }
}

/// <summary>The partials of every leaf of a query (arithmetic has several) over one shard, plus its counters.</summary>
public sealed class MetricsShardResult
{
    public MetricsShardResult(IReadOnlyList<MetricsPartial> leaves)
    {
        Leaves = leaves;
    }

    public IReadOnlyList<MetricsPartial> Leaves { get; }

    public MetricsQueryStats Stats { get; } = new();

    public void Merge(MetricsShardResult other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < Leaves.Count; i++)
        {
            Leaves[i].Merge(other.Leaves[i]);
        }

        Stats.Add(other.Stats);
    }
}
