namespace Rubato.TraceQL.Metrics;

/// <summary>
/// The time grid of a metrics query (Tempo's <c>engine_metrics.go</c> step arithmetic), all in Unix nanoseconds.
/// </summary>
/// <remarks>
/// Range queries: <see cref="Align"/> rounds start down and end up to multiples of the step and adds one leading
/// interval (Tempo's <c>AlignRequest</c>), so refreshes of "last hour" give the same buckets. Intervals are
/// right-closed: interval i is (start + i·step, start + (i+1)·step] and its sample is stamped at its right edge.
/// A span belongs to the interval holding its start time; spans starting at or before the aligned start or after
/// the end are outside. Instant queries (end − start = step) have one closed interval [start, end] stamped at end.
/// </remarks>
public readonly record struct MetricsRange
{
    public MetricsRange(long startUnixNanos, long endUnixNanos, long stepNanos)
    {
        if (stepNanos <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(stepNanos), "step must be positive");
        }

        if (endUnixNanos <= startUnixNanos)
        {
            throw new ArgumentException("end must be greater than start");
        }

        StartUnixNanos = startUnixNanos;
        EndUnixNanos = endUnixNanos;
        StepNanos = stepNanos;
    }

    public long StartUnixNanos { get; }

    public long EndUnixNanos { get; }

    public long StepNanos { get; }

    public bool IsInstant => EndUnixNanos - StartUnixNanos == StepNanos;

    /// <summary>Number of intervals (samples per series).</summary>
    public int Intervals => IsInstant ? 1 : (int)((AlignedEnd - AlignedStart) / StepNanos);

    private long AlignedStart => IsInstant ? StartUnixNanos : StartUnixNanos - (StartUnixNanos % StepNanos);

    private long AlignedEnd
    {
        get
        {
            if (IsInstant)
            {
                return EndUnixNanos;
            }

            long mod = EndUnixNanos % StepNanos;
            return mod == 0 ? EndUnixNanos : EndUnixNanos + (StepNanos - mod);
        }
    }

    /// <summary>A range query aligned to its step with the extra leading interval (instant queries are unchanged).</summary>
    public static MetricsRange Align(long startUnixNanos, long endUnixNanos, long stepNanos)
    {
        var r = new MetricsRange(startUnixNanos, endUnixNanos, stepNanos);
        if (r.IsInstant)
        {
            return r;
        }

        long start = r.AlignedStart;
        long end = r.AlignedEnd;
        if (start > stepNanos)
        {
            start -= stepNanos;
        }

        return new MetricsRange(start, end, stepNanos);
    }

    /// <summary>An instant query over [start, end]: one interval.</summary>
    public static MetricsRange Instant(long startUnixNanos, long endUnixNanos) =>
        new(startUnixNanos, endUnixNanos, endUnixNanos - startUnixNanos);

    /// <summary>
    /// Tempo's default step: about 240 points (1h at 15 s), rounded down to a multiple of 5 s, or of 1 s below 5 s,
    /// and at least 1 s.
    /// </summary>
    public static long DefaultStep(long startUnixNanos, long endUnixNanos)
    {
        const long second = 1_000_000_000;
        long baseline = (endUnixNanos - startUnixNanos) / 240;
        long interval = baseline / (5 * second) * (5 * second);
        if (interval < 5 * second)
        {
            interval = baseline / second * second;
        }

        return interval < second ? second : interval;
    }

    /// <summary>Interval of a span start time, or -1 when it is outside the range.</summary>
    public int IntervalOf(long ts)
    {
        if (IsInstant)
        {
            return ts >= StartUnixNanos && ts <= EndUnixNanos ? 0 : -1;
        }

        long start = AlignedStart;
        long end = AlignedEnd;
        if (ts <= start || ts > end)
        {
            return -1;
        }

        long offset = ts - start;
        long i = offset / StepNanos;
        if (i * StepNanos == offset)
        {
            i--;
        }

        return (int)i;
    }

    /// <summary>Sample timestamp of interval i (its right edge), Unix milliseconds.</summary>
    public long TimestampMsOf(int interval) =>
        (IsInstant ? EndUnixNanos : AlignedStart + ((interval + 1) * StepNanos)) / 1_000_000;

    /// <summary>Interval of a timestamp in Unix milliseconds (exemplars), or -1.</summary>
    public int IntervalOfMs(long timestampMs) => IntervalOf(timestampMs * 1_000_000);
}
