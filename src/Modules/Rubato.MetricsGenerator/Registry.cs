using Rubato.Common.Contracts;

namespace Rubato.MetricsGenerator;

/// <summary>
/// One tenant's generated series: counters, classic histograms and info gauges, looked up by
/// <see cref="SeriesKeyBuilder"/> keys. Enforces <c>max_active_series</c> (new series beyond it fold into one
/// <c>metric_overflow="true"</c> series per metric), removes series idle for <c>stale_duration</c>, and turns
/// everything into <see cref="SeriesSample"/>s at each collection.
/// </summary>
/// <remarks>
/// Not thread-safe: the owning <see cref="TenantGenerator"/> serializes processing and collection under its lock.
/// Active series are counted as Prometheus sees them: a histogram series is buckets + 1 (+Inf) + _sum + _count.
/// </remarks>
public sealed class TenantRegistry
{
    /// <summary>Key of each metric's overflow series: not a valid encoded key, so it never collides with one.</summary>
    internal static readonly byte[] OverflowKey = [0xFF];

    private static readonly TimeSpan HighestAggregationInterval = TimeSpan.FromMinutes(1);

    private readonly List<RegistryMetric> _metrics = [];
    private readonly SeriesLabel[] _extraLabels;
    private readonly int _maxLabelNameLength;

    public TenantRegistry(string tenant, GeneratorRegistryConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Tenant = tenant;
        _maxLabelNameLength = config.MaxLabelNameLength;
        var extra = config.ExternalLabels.Select(kv => new SeriesLabel(kv.Key, kv.Value)).ToList();
        if (config.InjectTenantIdAs.Length > 0)
        {
            extra.RemoveAll(l => l.Name == config.InjectTenantIdAs);
            extra.Add(new SeriesLabel(config.InjectTenantIdAs, tenant));
        }

        _extraLabels = [.. extra];
    }

    public string Tenant { get; }

    /// <summary><c>max_active_series</c> in force (from the tenant's overrides); 0 = unlimited.</summary>
    public long MaxActiveSeries { get; set; }

    /// <summary>Series currently held, counted as Prometheus series.</summary>
    public long ActiveSeries { get; private set; }

    /// <summary>New series redirected to an overflow series because of <see cref="MaxActiveSeries"/>.</summary>
    public long SeriesLimited { get; private set; }

    /// <summary>Called for every new series that went to an overflow series (the /metrics counter).</summary>
    public Action<double>? OnSeriesLimited { get; set; }

    public RegistryCounter Counter(string name, string[] labelNames) =>
        GetOrReplace(name, labelNames, null, () => new RegistryCounter(this, name, labelNames));

    public RegistryHistogram Histogram(string name, string[] labelNames, double[] buckets) =>
        GetOrReplace(name, labelNames, buckets, () => new RegistryHistogram(this, name, labelNames, buckets));

    /// <summary>A gauge whose series carry their own label names (<c>traces_target_info</c>).</summary>
    public RegistryInfoGauge InfoGauge(string name) =>
        GetOrReplace(name, [], null, () => new RegistryInfoGauge(this, name));

    /// <summary>Drops a metric and its series (a processor was disabled for the tenant).</summary>
    public void Remove(string name)
    {
        var m = _metrics.Find(x => x.Name == name);
        if (m is not null)
        {
            ActiveSeries -= m.RemoveAll();
            _metrics.Remove(m);
        }
    }

    /// <summary>
    /// Removes series not updated since <paramref name="nowMs"/> − <paramref name="staleDuration"/>, then appends
    /// one sample per series (and the initial zeros of new counters and histograms) to <paramref name="into"/>.
    /// </summary>
    public void Collect(long nowMs, TimeSpan staleDuration, List<SeriesSample> into)
    {
        long staleBefore = nowMs - (long)staleDuration.TotalMilliseconds;
        foreach (var m in _metrics)
        {
            ActiveSeries -= m.RemoveStale(staleBefore);
        }

        long initialMs = EndOfLastMinuteMs(nowMs);
        foreach (var m in _metrics)
        {
            m.Collect(nowMs, initialMs, into);
        }
    }

    /// <summary>
    /// Tempo's <c>getEndOfLastMinuteMs</c>: a new counter's first sample is a 0 one second before the start of the
    /// current minute, so rate() sees the series start from zero and the zero falls in an earlier aggregation window.
    /// </summary>
    public static long EndOfLastMinuteMs(long nowMs)
    {
        long minute = (long)HighestAggregationInterval.TotalMilliseconds;
        long truncated = nowMs - (((nowMs % minute) + minute) % minute);
        return truncated - 1000;
    }

    /// <summary>Reserves room for a new series of <paramref name="weight"/> Prometheus series; false = over the limit.</summary>
    internal bool TryReserve(int weight, bool overflow)
    {
        if (!overflow && MaxActiveSeries > 0 && ActiveSeries + weight > MaxActiveSeries)
        {
            SeriesLimited++;
            OnSeriesLimited?.Invoke(1);
            return false;
        }

        ActiveSeries += weight;
        return true;
    }

    /// <summary>Sorted labels of one series: values, external/tenant labels (which win), <c>__name__</c>; empty values dropped.</summary>
    internal SeriesLabel[] BuildLabels(string metricName, IReadOnlyList<string> names, IReadOnlyList<string> values, string? extraName = null, string? extraValue = null)
    {
        var list = new List<SeriesLabel>(names.Count + _extraLabels.Length + 2);
        for (int i = 0; i < names.Count; i++)
        {
            if (values[i].Length > 0)
            {
                list.Add(new SeriesLabel(Labels.TruncateName(names[i], _maxLabelNameLength), values[i]));
            }
        }

        foreach (var e in _extraLabels)
        {
            list.RemoveAll(l => l.Name == e.Name);
            list.Add(e);
        }

        if (extraName is not null)
        {
            list.RemoveAll(l => l.Name == extraName);
            list.Add(new SeriesLabel(extraName, extraValue!));
        }

        list.RemoveAll(l => l.Name == Labels.MetricName);
        list.Add(new SeriesLabel(Labels.MetricName, metricName));

        // Later duplicates (two dimensions sanitized to one name) keep the first value.
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var result = new List<SeriesLabel>(list.Count);
        foreach (var l in list)
        {
            if (result.Count == 0 || result[^1].Name != l.Name)
            {
                result.Add(l);
            }
        }

        return [.. result];
    }

    private T GetOrReplace<T>(string name, string[] labelNames, double[]? buckets, Func<T> create)
        where T : RegistryMetric
    {
        var existing = _metrics.Find(x => x.Name == name);
        if (existing is T typed && typed.LabelNames.AsSpan().SequenceEqual(labelNames) && typed.SameBuckets(buckets))
        {
            return typed;
        }

        if (existing is not null)
        {
            ActiveSeries -= existing.RemoveAll();
            _metrics.Remove(existing);
        }

        var created = create();
        _metrics.Add(created);
        return created;
    }
}

/// <summary>A metric of a <see cref="TenantRegistry"/>.</summary>
public abstract class RegistryMetric
{
    private protected RegistryMetric(TenantRegistry registry, string name, string[] labelNames)
    {
        Registry = registry;
        Name = name;
        LabelNames = labelNames;
    }

    public string Name { get; }

    public string[] LabelNames { get; }

    private protected TenantRegistry Registry { get; }

    /// <summary>Series of this metric (each histogram series counted once).</summary>
    public abstract int SeriesCount { get; }

    internal virtual bool SameBuckets(double[]? buckets) => buckets is null;

    /// <summary>Removes series last updated before <paramref name="staleBeforeMs"/>; returns the Prometheus series freed.</summary>
    internal abstract long RemoveStale(long staleBeforeMs);

    internal abstract long RemoveAll();

    internal abstract void Collect(long nowMs, long initialMs, List<SeriesSample> into);

    private protected static Dictionary<byte[], T>.AlternateLookup<HashedKey> Lookup<T>(Dictionary<byte[], T> d) =>
        d.GetAlternateLookup<HashedKey>();

    /// <summary>
    /// Removes the entries of <paramref name="series"/> last updated before <paramref name="staleBeforeMs"/>; returns the
    /// Prometheus series freed, <paramref name="weight"/> per entry. Runs on the collection thread, once per collection.
    /// </summary>
    private protected static long RemoveStale<T>(Dictionary<byte[], T> series, long staleBeforeMs, long weight, Func<T, long> lastUpdatedMs)
    {
        long freed = 0;
        foreach (var (k, s) in series)
        {
            if (lastUpdatedMs(s) < staleBeforeMs)
            {
                series.Remove(k);
                freed += weight;
            }
        }

        return freed;
    }

    /// <summary>Removes every entry of <paramref name="series"/>; returns the Prometheus series freed.</summary>
    private protected static long RemoveAll<T>(Dictionary<byte[], T> series, long weight)
    {
        long n = series.Count * weight;
        series.Clear();
        return n;
    }
}

/// <summary>A counter; each new series is first collected as 0 (Tempo's rule for rate()).</summary>
public sealed class RegistryCounter : RegistryMetric
{
    private readonly Dictionary<byte[], Series> _series = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], Series>.AlternateLookup<HashedKey> _lookup;

    internal RegistryCounter(TenantRegistry registry, string name, string[] labelNames) : base(registry, name, labelNames) =>
        _lookup = Lookup(_series);

    public override int SeriesCount => _series.Count;

    /// <summary>Adds <paramref name="value"/> to the series named by <paramref name="key"/> (label values in <see cref="RegistryMetric.LabelNames"/> order).</summary>
    public void Inc(ReadOnlySpan<byte> key, double value, long nowMs) => Inc(new HashedKey(key), value, nowMs);

    /// <summary>As <see cref="Inc(ReadOnlySpan{byte}, double, long)"/> with the key's hash already computed.</summary>
    public void Inc(in HashedKey key, double value, long nowMs)
    {
        if (!_lookup.TryGetValue(key, out var s))
        {
            s = Create(key.Bytes);
        }

        s.Value += value;
        s.LastUpdatedMs = nowMs;
    }

    /// <summary>The current value of a series by label values (tests and status).</summary>
    public double? ValueOf(params string[] labelValues)
    {
        foreach (var s in _series.Values)
        {
            if (s.Values.AsSpan().SequenceEqual(labelValues))
            {
                return s.Value;
            }
        }

        return null;
    }

    private Series Create(ReadOnlySpan<byte> key)
    {
        if (Registry.TryReserve(1, overflow: false))
        {
            var values = SeriesKeyBuilder.Decode(key);
            var s = new Series(values, Registry.BuildLabels(Name, LabelNames, values));
            _series.Add(key.ToArray(), s);
            return s;
        }

        if (!_series.TryGetValue(TenantRegistry.OverflowKey, out var overflow))
        {
            Registry.TryReserve(1, overflow: true);
            overflow = new Series([], Registry.BuildLabels(Name, [], [], "metric_overflow", "true"));
            _series.Add(TenantRegistry.OverflowKey, overflow);
        }

        return overflow;
    }

    internal override long RemoveStale(long staleBeforeMs) => RemoveStale(_series, staleBeforeMs, 1, static s => s.LastUpdatedMs);

    internal override long RemoveAll() => RemoveAll(_series, 1);

    internal override void Collect(long nowMs, long initialMs, List<SeriesSample> into)
    {
        foreach (var s in _series.Values)
        {
            if (s.IsNew)
            {
                into.Add(new SeriesSample(s.Labels, initialMs, 0));
                s.IsNew = false;
            }

            into.Add(new SeriesSample(s.Labels, nowMs, s.Value));
        }
    }

    private sealed class Series(string[] values, SeriesLabel[] labels)
    {
        public readonly string[] Values = values;
        public readonly SeriesLabel[] Labels = labels;
        public double Value;
        public long LastUpdatedMs;
        public bool IsNew = true;
    }
}

/// <summary>A classic histogram: <c>_bucket{le}</c> (cumulative, with +Inf), <c>_sum</c>, <c>_count</c>.</summary>
public sealed class RegistryHistogram : RegistryMetric
{
    private readonly Dictionary<byte[], Series> _series = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], Series>.AlternateLookup<HashedKey> _lookup;
    private readonly double[] _bounds;
    private readonly string[] _boundLabels;

    internal RegistryHistogram(TenantRegistry registry, string name, string[] labelNames, double[] buckets) : base(registry, name, labelNames)
    {
        _lookup = Lookup(_series);
        _bounds = [.. buckets, double.PositiveInfinity];
        _boundLabels = [.. _bounds.Select(Labels.FormatBound)];
    }

    public override int SeriesCount => _series.Count;

    /// <summary>Prometheus series per histogram series: every bucket including +Inf, _sum and _count.</summary>
    public int Weight => _bounds.Length + 2;

    internal override bool SameBuckets(double[]? buckets) => buckets is not null && _bounds.AsSpan(0, _bounds.Length - 1).SequenceEqual(buckets);

    public void Observe(ReadOnlySpan<byte> key, double value, long nowMs) => Observe(new HashedKey(key), value, nowMs);

    /// <summary>As <see cref="Observe(ReadOnlySpan{byte}, double, long)"/> with the key's hash already computed.</summary>
    public void Observe(in HashedKey key, double value, long nowMs)
    {
        if (!_lookup.TryGetValue(key, out var s))
        {
            s = Create(key.Bytes);
        }

        s.Count++;
        s.Sum += value;
        var counts = s.Buckets;
        for (int i = 0; i < _bounds.Length; i++)
        {
            if (value <= _bounds[i])
            {
                counts[i]++;
            }
        }

        s.LastUpdatedMs = nowMs;
    }

    /// <summary>(count, sum, cumulative bucket counts incl. +Inf) of a series by label values; null when absent.</summary>
    public (double Count, double Sum, double[] Buckets)? ValueOf(params string[] labelValues)
    {
        foreach (var s in _series.Values)
        {
            if (s.Values.AsSpan().SequenceEqual(labelValues))
            {
                return (s.Count, s.Sum, (double[])s.Buckets.Clone());
            }
        }

        return null;
    }

    private Series Create(ReadOnlySpan<byte> key)
    {
        if (Registry.TryReserve(Weight, overflow: false))
        {
            var values = SeriesKeyBuilder.Decode(key);
            var s = NewSeries(values, LabelNames, values, null);
            _series.Add(key.ToArray(), s);
            return s;
        }

        if (!_series.TryGetValue(TenantRegistry.OverflowKey, out var overflow))
        {
            Registry.TryReserve(Weight, overflow: true);
            overflow = NewSeries([], [], [], "true");
            _series.Add(TenantRegistry.OverflowKey, overflow);
        }

        return overflow;
    }

    private Series NewSeries(string[] values, string[] names, string[] labelValues, string? overflow)
    {
        SeriesLabel[] Build(string suffix, string? le)
        {
            if (le is null)
            {
                return overflow is null
                    ? Registry.BuildLabels(Name + suffix, names, labelValues)
                    : Registry.BuildLabels(Name + suffix, ["metric_overflow"], [overflow]);
            }

            string[] n = [.. names, "le"];
            string[] v = [.. labelValues, le];
            if (overflow is not null)
            {
                n = ["metric_overflow", "le"];
                v = [overflow, le];
            }

            return Registry.BuildLabels(Name + suffix, n, v);
        }

        var bucketLabels = new SeriesLabel[_bounds.Length][];
        for (int i = 0; i < _bounds.Length; i++)
        {
            bucketLabels[i] = Build("_bucket", _boundLabels[i]);
        }

        return new Series(values, Build("_count", null), Build("_sum", null), bucketLabels, new double[_bounds.Length]);
    }

    internal override long RemoveStale(long staleBeforeMs) => RemoveStale(_series, staleBeforeMs, Weight, static s => s.LastUpdatedMs);

    internal override long RemoveAll() => RemoveAll(_series, Weight);

    internal override void Collect(long nowMs, long initialMs, List<SeriesSample> into)
    {
        foreach (var s in _series.Values)
        {
            if (s.IsNew)
            {
                into.Add(new SeriesSample(s.CountLabels, initialMs, 0));
            }

            into.Add(new SeriesSample(s.SumLabels, nowMs, s.Sum));
            into.Add(new SeriesSample(s.CountLabels, nowMs, s.Count));
            for (int i = 0; i < _bounds.Length; i++)
            {
                if (s.IsNew)
                {
                    into.Add(new SeriesSample(s.BucketLabels[i], initialMs, 0));
                }

                into.Add(new SeriesSample(s.BucketLabels[i], nowMs, s.Buckets[i]));
            }

            s.IsNew = false;
        }
    }

    private sealed class Series(string[] values, SeriesLabel[] countLabels, SeriesLabel[] sumLabels, SeriesLabel[][] bucketLabels, double[] buckets)
    {
        public readonly string[] Values = values;
        public readonly SeriesLabel[] CountLabels = countLabels;
        public readonly SeriesLabel[] SumLabels = sumLabels;
        public readonly SeriesLabel[][] BucketLabels = bucketLabels;
        public readonly double[] Buckets = buckets;
        public double Count;
        public double Sum;
        public long LastUpdatedMs;
        public bool IsNew = true;
    }
}

/// <summary>
/// A gauge set to a value per series whose keys encode label name and value pairs
/// (<see cref="SeriesKeyBuilder"/>: name, value, name, value …): <c>traces_target_info</c>.
/// </summary>
public sealed class RegistryInfoGauge : RegistryMetric
{
    private readonly Dictionary<byte[], Series> _series = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], Series>.AlternateLookup<HashedKey> _lookup;

    internal RegistryInfoGauge(TenantRegistry registry, string name) : base(registry, name, []) => _lookup = Lookup(_series);

    public override int SeriesCount => _series.Count;

    public void Set(ReadOnlySpan<byte> pairsKey, double value, long nowMs)
    {
        if (!_lookup.TryGetValue(new HashedKey(pairsKey), out var s))
        {
            var pairs = SeriesKeyBuilder.Decode(pairsKey);
            var names = new string[pairs.Length / 2];
            var values = new string[pairs.Length / 2];
            for (int i = 0; i < names.Length; i++)
            {
                names[i] = pairs[2 * i];
                values[i] = pairs[(2 * i) + 1];
            }

            if (Registry.TryReserve(1, overflow: false))
            {
                s = new Series(Registry.BuildLabels(Name, names, values));
                _series.Add(pairsKey.ToArray(), s);
            }
            else if (!_series.TryGetValue(TenantRegistry.OverflowKey, out s))
            {
                Registry.TryReserve(1, overflow: true);
                s = new Series(Registry.BuildLabels(Name, [], [], "metric_overflow", "true"));
                _series.Add(TenantRegistry.OverflowKey, s);
            }
        }

        s.Value = value;
        s.LastUpdatedMs = nowMs;
    }

    /// <summary>Labels of every series (tests and status).</summary>
    public IEnumerable<SeriesLabel[]> AllLabels() => _series.Values.Select(s => s.Labels);

    internal override long RemoveStale(long staleBeforeMs) => RemoveStale(_series, staleBeforeMs, 1, static s => s.LastUpdatedMs);

    internal override long RemoveAll() => RemoveAll(_series, 1);

    internal override void Collect(long nowMs, long initialMs, List<SeriesSample> into)
    {
        foreach (var s in _series.Values)
        {
            into.Add(new SeriesSample(s.Labels, nowMs, s.Value));
        }
    }

    private sealed class Series(SeriesLabel[] labels)
    {
        public readonly SeriesLabel[] Labels = labels;
        public double Value;
        public long LastUpdatedMs;
    }
}
