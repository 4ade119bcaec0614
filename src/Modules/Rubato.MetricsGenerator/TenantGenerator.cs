using Rubato.Common.Contracts;
using Rubato.Common.Otlp;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.MetricsGenerator;

/// <summary>
/// One tenant's processors and registry. Every entry point takes <see cref="_gate"/>: spans arrive on generator
/// workers, expiry and collection run on the collection thread, so a tenant is processed by one thread at a time
/// (different tenants in parallel).
/// </summary>
internal sealed class TenantGenerator : ISpanVisitor
{
    private readonly object _gate = new();
    private readonly MetricsGeneratorConfig _config;
    private readonly GeneratorSelfMetrics.TenantChildren _self;
    private SpanMetricsProcessor? _spanMetrics;
    private ServiceGraphsProcessor? _serviceGraphs;
    private long _overridesVersion = -1;
    private TimeSpan _slack;

    // Per-walk state (valid only inside Process, under the lock).
    private long _nowMs;
    private ulong _minEndNanos;
    private ulong _maxStartNanos;
    private int _received;
    private int _tooOld;
    private bool _hasService;
    private byte[] _resource = [];
    private int _resourceLength;
    private byte[] _service = [];
    private int _serviceLength;

    public TenantGenerator(string tenant, MetricsGeneratorConfig config, GeneratorSelfMetrics.TenantChildren self)
    {
        Tenant = tenant;
        _config = config;
        _self = self;
        Registry = new TenantRegistry(tenant, config.Registry) { OnSeriesLimited = self.SeriesLimited.Inc };
    }

    public string Tenant { get; }

    public TenantRegistry Registry { get; }

    public TimeSpan CollectionInterval { get; private set; }

    /// <summary>When the next collection of this tenant is due (ms since the epoch); set by the collector.</summary>
    public long NextCollectionMs { get; set; }

    public bool Enabled => _spanMetrics is not null || _serviceGraphs is not null;

    internal SpanMetricsProcessor? SpanMetrics => _spanMetrics;

    internal ServiceGraphsProcessor? ServiceGraphs => _serviceGraphs;

    public object Gate => _gate;

    /// <summary>Applies the tenant's overrides when they changed since the last call (caller holds the lock).</summary>
    public void Configure(TenantLimits limits, long version)
    {
        if (version == _overridesVersion)
        {
            return;
        }

        _overridesVersion = version;
        var g = limits.MetricsGenerator;
        Registry.MaxActiveSeries = g.MaxActiveSeries;
        _self.MaxActiveSeries.Set(g.MaxActiveSeries);
        CollectionInterval = g.CollectionInterval > TimeSpan.Zero ? g.CollectionInterval : _config.Registry.CollectionInterval;
        _slack = g.IngestionTimeRangeSlack > TimeSpan.Zero ? g.IngestionTimeRangeSlack : _config.MetricsIngestionTimeRangeSlack;

        var span = ResolveSpanMetrics(g);
        if (span is null)
        {
            if (_spanMetrics is not null)
            {
                foreach (var name in new[] { SpanMetricsProcessor.CallsTotal, SpanMetricsProcessor.Latency, SpanMetricsProcessor.SizeTotal, SpanMetricsProcessor.TargetInfo })
                {
                    Registry.Remove(name);
                }
            }

            _spanMetrics = null;
        }
        else if (_spanMetrics is null || !_spanMetrics.Settings.Equivalent(span))
        {
            _spanMetrics = new SpanMetricsProcessor(span, Registry, _config.Registry.MaxLabelValueLength);
        }

        var graphs = ResolveServiceGraphs(g);
        if (graphs is null)
        {
            if (_serviceGraphs is not null)
            {
                ServiceGraphsProcessor.RemoveMetrics(Registry);
            }

            _serviceGraphs = null;
        }
        else if (_serviceGraphs is null || !_serviceGraphs.Settings.Equivalent(graphs))
        {
            _serviceGraphs = new ServiceGraphsProcessor(graphs, Registry, _config.Registry.MaxLabelValueLength, _self);
        }
    }

    /// <summary>Processes one forwarded payload (caller holds the lock).</summary>
    public void Process(ReadOnlySpan<byte> payload, long nowMs)
    {
        _nowMs = nowMs;
        long slackNanos = (long)(_slack.TotalMilliseconds * 1_000_000);
        long nowNanos = nowMs * 1_000_000;
        _minEndNanos = nowNanos > slackNanos ? (ulong)(nowNanos - slackNanos) : 0;
        _maxStartNanos = (ulong)(nowNanos + slackNanos);
        _received = 0;
        _tooOld = 0;
        try
        {
            SpanWalker.Walk(payload, this);
        }
        catch (OtlpFormatException)
        {
            // The distributor validated these bytes; a failure here means a bug upstream, not bad client input.
            _self.Discarded(GeneratorSelfMetrics.ReasonInvalid).Inc();
        }

        _self.SpansReceived.Inc(_received);
        if (_tooOld > 0)
        {
            _self.Discarded(GeneratorSelfMetrics.ReasonSlack).Inc(_tooOld);
        }

        _self.ActiveSeries.Set(Registry.ActiveSeries);
    }

    void ISpanVisitor.BeginResource(ReadOnlySpan<byte> resource)
    {
        // The resource bytes are referenced by every span of this ResourceSpans; keep a copy in a reused buffer
        // because the visitor interface cannot hold a span across calls.
        Copy(resource, ref _resource, out _resourceLength);
        _hasService = SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, "service.name"u8, out var svc);
        if (_hasService && svc.Field != F.AnyValue.StringValue)
        {
            var b = new SeriesKeyBuilder(int.MaxValue);
            b.Add(ref svc);
            Copy(SeriesKeyBuilder.DecodeFirstBytes(b.Key), ref _service, out _serviceLength);
        }
        else
        {
            Copy(svc.Bytes, ref _service, out _serviceLength);
        }

        _spanMetrics?.BeginResource(resource);
    }

    void ISpanVisitor.Span(ref SpanFields span)
    {
        _received++;
        // Tempo's time-range check: ended within the slack, and not starting further than the slack in the future.
        if (span.EndUnixNano < _minEndNanos || span.StartUnixNano > _maxStartNanos)
        {
            _tooOld++;
            return;
        }

        var resource = _resource.AsSpan(0, _resourceLength);
        var service = _service.AsSpan(0, _serviceLength);
        _spanMetrics?.Span(ref span, resource, service, _nowMs);
        if (_hasService)
        {
            // Tempo's service graphs skip resources without service.name.
            _serviceGraphs?.Span(ref span, resource, service, _nowMs);
        }
    }

    /// <summary>Expires service-graph edges (caller holds the lock).</summary>
    public void Expire(long nowMs) => _serviceGraphs?.Expire(nowMs);

    /// <summary>Expires edges, removes stale series and samples every series (caller holds the lock).</summary>
    public void Collect(long nowMs, List<SeriesSample> into)
    {
        Expire(nowMs);
        Registry.Collect(nowMs, _config.Registry.StaleDuration, into);
        _self.ActiveSeries.Set(Registry.ActiveSeries);
        _self.Collections.Inc();
        _self.Samples.Inc(into.Count);
    }

    private static void Copy(ReadOnlySpan<byte> src, ref byte[] dst, out int length)
    {
        if (dst.Length < src.Length)
        {
            dst = new byte[Math.Max(src.Length, dst.Length * 2)];
        }

        src.CopyTo(dst);
        length = src.Length;
    }

    private SpanMetricsSettings? ResolveSpanMetrics(MetricsGeneratorLimits g)
    {
        bool all = g.Processors.Contains("span-metrics");
        bool count = all || g.Processors.Contains("span-metrics-count");
        bool latency = all || g.Processors.Contains("span-metrics-latency");
        bool size = all || g.Processors.Contains("span-metrics-size");
        if (!count && !latency && !size)
        {
            return null;
        }

        var cfg = _config.Processor.SpanMetrics;
        var o = g.Processor.SpanMetrics;
        var intr = new IntrinsicDimensionsConfig
        {
            Service = Flag(o.IntrinsicDimensions, "service", cfg.IntrinsicDimensions.Service),
            SpanName = Flag(o.IntrinsicDimensions, "span_name", cfg.IntrinsicDimensions.SpanName),
            SpanKind = Flag(o.IntrinsicDimensions, "span_kind", cfg.IntrinsicDimensions.SpanKind),
            StatusCode = Flag(o.IntrinsicDimensions, "status_code", cfg.IntrinsicDimensions.StatusCode),
            StatusMessage = Flag(o.IntrinsicDimensions, "status_message", cfg.IntrinsicDimensions.StatusMessage),
        };
        return new SpanMetricsSettings(
            count,
            latency,
            size,
            [.. o.HistogramBuckets.Count > 0 ? o.HistogramBuckets : cfg.HistogramBuckets],
            intr,
            [.. o.Dimensions.Count > 0 ? o.Dimensions : cfg.Dimensions],
            o.EnableTargetInfo || cfg.EnableTargetInfo,
            [.. o.TargetInfoExcludedDimensions.Count > 0 ? o.TargetInfoExcludedDimensions : cfg.TargetInfoExcludedDimensions],
            cfg.EnableInstanceLabel);
    }

    private ServiceGraphsSettings? ResolveServiceGraphs(MetricsGeneratorLimits g)
    {
        if (!g.Processors.Contains("service-graphs"))
        {
            return null;
        }

        var cfg = _config.Processor.ServiceGraphs;
        var o = g.Processor.ServiceGraphs;
        return new ServiceGraphsSettings(
            cfg.Wait,
            cfg.MaxItems,
            [.. o.HistogramBuckets.Count > 0 ? o.HistogramBuckets : cfg.HistogramBuckets],
            [.. o.Dimensions.Count > 0 ? o.Dimensions : cfg.Dimensions],
            [.. o.PeerAttributes.Count > 0 ? o.PeerAttributes : cfg.PeerAttributes],
            o.EnableClientServerPrefix || cfg.EnableClientServerPrefix,
            o.EnableMessagingSystemLatencyHistogram || cfg.EnableMessagingSystemLatencyHistogram,
            o.EnableVirtualNodeLabel || cfg.EnableVirtualNodeLabel);
    }

    private static bool Flag(Dictionary<string, bool> overrides, string name, bool fallback) =>
        overrides.TryGetValue(name, out bool v) ? v : fallback;
}
