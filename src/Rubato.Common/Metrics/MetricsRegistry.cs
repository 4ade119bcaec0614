using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Rubato.Common.Metrics;

/// <summary>
/// Rubato's own metrics, rendered in the Prometheus text exposition format (0.0.4) on <c>/metrics</c>.
/// </summary>
/// <remarks>
/// Thread-safe. Updating a child series is one interlocked operation; looking a child up by label values takes a
/// concurrent-dictionary read, so hot loops should keep the child (<see cref="Counter.WithLabels"/>) rather than
/// look it up per span.
/// </remarks>
public sealed class MetricsRegistry
{
    private readonly ConcurrentDictionary<string, Metric> _metrics = new(StringComparer.Ordinal);

    public Counter Counter(string name, string help, params string[] labelNames) =>
        (Counter)_metrics.GetOrAdd(name, _ => new Counter(name, help, labelNames));

    public Gauge Gauge(string name, string help, params string[] labelNames) =>
        (Gauge)_metrics.GetOrAdd(name, _ => new Gauge(name, help, labelNames));

    public Histogram Histogram(string name, string help, double[] buckets, params string[] labelNames) =>
        (Histogram)_metrics.GetOrAdd(name, _ => new Histogram(name, help, buckets, labelNames));

    /// <summary>Writes every metric, sorted by name, in the text exposition format.</summary>
    public void WriteTo(StringBuilder sb)
    {
        foreach (var m in _metrics.Values.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            m.WriteTo(sb);
        }
    }

    public string Render()
    {
        var sb = new StringBuilder(4096);
        WriteTo(sb);
        return sb.ToString();
    }
}

public abstract class Metric
{
    protected Metric(string name, string help, string type, string[] labelNames)
    {
        Name = name;
        Help = help;
        Type = type;
        LabelNames = labelNames;
    }

    public string Name { get; }

    public string Help { get; }

    public string Type { get; }

    public string[] LabelNames { get; }

    internal void WriteTo(StringBuilder sb)
    {
        sb.Append("# HELP ").Append(Name).Append(' ').Append(Help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
        sb.Append("# TYPE ").Append(Name).Append(' ').Append(Type).Append('\n');
        WriteSamples(sb);
    }

    protected abstract void WriteSamples(StringBuilder sb);

    protected static string Key(string[] values) => string.Join('\u0001', values);

    protected void AppendLabels(StringBuilder sb, string[] values, string? extraName = null, string? extraValue = null)
    {
        if (values.Length == 0 && extraName is null)
        {
            return;
        }

        sb.Append('{');
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(LabelNames[i]).Append("=\"").Append(Escape(values[i])).Append('"');
        }

        if (extraName is not null)
        {
            if (values.Length > 0)
            {
                sb.Append(',');
            }

            sb.Append(extraName).Append("=\"").Append(extraValue).Append('"');
        }

        sb.Append('}');
    }

    protected static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN" : v.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    protected void CheckArity(string[] values)
    {
        if (values.Length != LabelNames.Length)
        {
            throw new ArgumentException($"metric {Name} takes {LabelNames.Length} label values, got {values.Length}");
        }
    }
}

/// <summary>A monotonically increasing count.</summary>
public sealed class Counter : Metric
{
    private readonly ConcurrentDictionary<string, Child> _children = new(StringComparer.Ordinal);

    internal Counter(string name, string help, string[] labelNames) : base(name, help, "counter", labelNames)
    {
        if (labelNames.Length == 0)
        {
            _children[string.Empty] = new Child([]);
        }
    }

    public Child WithLabels(params string[] values)
    {
        CheckArity(values);
        return _children.GetOrAdd(Key(values), _ => new Child(values));
    }

    public void Inc(double by = 1) => WithLabels().Inc(by);

    public double Value(params string[] values) => _children.TryGetValue(Key(values), out var c) ? c.Value : 0;

    protected override void WriteSamples(StringBuilder sb)
    {
        foreach (var c in _children.Values)
        {
            sb.Append(Name);
            AppendLabels(sb, c.LabelValues);
            sb.Append(' ').Append(Format(c.Value)).Append('\n');
        }
    }

    /// <summary>One labelled series; safe to keep and increment from any thread.</summary>
    public sealed class Child
    {
        private long _bits;

        internal Child(string[] labelValues) => LabelValues = labelValues;

        internal string[] LabelValues { get; }

        public double Value => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _bits));

        public void Inc(double by = 1)
        {
            if (by < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(by), "counters only go up");
            }

            AtomicDouble.Add(ref _bits, by);
        }
    }
}

/// <summary>A value that goes up and down.</summary>
public sealed class Gauge : Metric
{
    private readonly ConcurrentDictionary<string, Child> _children = new(StringComparer.Ordinal);

    internal Gauge(string name, string help, string[] labelNames) : base(name, help, "gauge", labelNames)
    {
        if (labelNames.Length == 0)
        {
            _children[string.Empty] = new Child([]);
        }
    }

    public Child WithLabels(params string[] values)
    {
        CheckArity(values);
        return _children.GetOrAdd(Key(values), _ => new Child(values));
    }

    public void Set(double v) => WithLabels().Set(v);

    public void Add(double v) => WithLabels().Add(v);

    public double Value(params string[] values) => _children.TryGetValue(Key(values), out var c) ? c.Value : 0;

    protected override void WriteSamples(StringBuilder sb)
    {
        foreach (var c in _children.Values)
        {
            sb.Append(Name);
            AppendLabels(sb, c.LabelValues);
            sb.Append(' ').Append(Format(c.Value)).Append('\n');
        }
    }

    public sealed class Child
    {
        private long _bits;

        internal Child(string[] labelValues) => LabelValues = labelValues;

        internal string[] LabelValues { get; }

        public double Value => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _bits));

        public void Set(double v) => Interlocked.Exchange(ref _bits, BitConverter.DoubleToInt64Bits(v));

        public void Add(double v) => AtomicDouble.Add(ref _bits, v);
    }
}

/// <summary>A cumulative histogram with fixed upper bounds (plus +Inf).</summary>
public sealed class Histogram : Metric
{
    /// <summary>Prometheus client's default buckets, in seconds, for request latencies.</summary>
    public static readonly double[] DefaultSecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly double[] _buckets;
    private readonly ConcurrentDictionary<string, Child> _children = new(StringComparer.Ordinal);

    internal Histogram(string name, string help, double[] buckets, string[] labelNames) : base(name, help, "histogram", labelNames)
    {
        _buckets = buckets.Order().ToArray();
    }

    public Child WithLabels(params string[] values)
    {
        CheckArity(values);
        return _children.GetOrAdd(Key(values), _ => new Child(values, _buckets));
    }

    public void Observe(double v) => WithLabels().Observe(v);

    protected override void WriteSamples(StringBuilder sb)
    {
        foreach (var c in _children.Values)
        {
            long cumulative = 0;
            for (int i = 0; i < _buckets.Length; i++)
            {
                cumulative += Interlocked.Read(ref c.Counts[i]);
                sb.Append(Name).Append("_bucket");
                AppendLabels(sb, c.LabelValues, "le", Format(_buckets[i]));
                sb.Append(' ').Append(cumulative).Append('\n');
            }

            cumulative += Interlocked.Read(ref c.Counts[_buckets.Length]);
            sb.Append(Name).Append("_bucket");
            AppendLabels(sb, c.LabelValues, "le", "+Inf");
            sb.Append(' ').Append(cumulative).Append('\n');
            sb.Append(Name).Append("_sum");
            AppendLabels(sb, c.LabelValues);
            sb.Append(' ').Append(Format(c.Sum)).Append('\n');
            sb.Append(Name).Append("_count");
            AppendLabels(sb, c.LabelValues);
            sb.Append(' ').Append(cumulative).Append('\n');
        }
    }

    public sealed class Child
    {
        private readonly double[] _bounds;
        private long _sumBits;

        internal Child(string[] labelValues, double[] bounds)
        {
            LabelValues = labelValues;
            _bounds = bounds;
            Counts = new long[bounds.Length + 1];
        }

        internal string[] LabelValues { get; }

        internal long[] Counts { get; }

        public double Sum => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _sumBits));

        public long Count
        {
            get
            {
                long n = 0;
                for (int i = 0; i < Counts.Length; i++)
                {
                    n += Interlocked.Read(ref Counts[i]);
                }

                return n;
            }
        }

        public void Observe(double v)
        {
            int i = 0;
            while (i < _bounds.Length && v > _bounds[i])
            {
                i++;
            }

            Interlocked.Increment(ref Counts[i]);
            AtomicDouble.Add(ref _sumBits, v);
        }
    }
}

internal static class AtomicDouble
{
    public static void Add(ref long bits, double by)
    {
        long initial, computed;
        do
        {
            initial = Interlocked.Read(ref bits);
            computed = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(initial) + by);
        }
        while (Interlocked.CompareExchange(ref bits, computed, initial) != initial);
    }
}
