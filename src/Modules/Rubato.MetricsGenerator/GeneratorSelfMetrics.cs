using System.Collections.Concurrent;
using Rubato.Common.Metrics;

namespace Rubato.MetricsGenerator;

/// <summary>The generator's own metrics on <c>/metrics</c> (Tempo's names), with per-tenant children cached.</summary>
public sealed class GeneratorSelfMetrics
{
    public const string ReasonSlack = "outside_metrics_ingestion_slack";
    public const string ReasonQueueFull = "queue_full";
    public const string ReasonInvalid = "invalid_payload";

    private readonly Counter _spansReceived;
    private readonly Counter _bytesReceived;
    private readonly Counter _spansDiscarded;
    private readonly Gauge _activeSeries;
    private readonly Gauge _maxActiveSeries;
    private readonly Counter _seriesLimited;
    private readonly Counter _collections;
    private readonly Counter _collectionsFailed;
    private readonly Counter _samples;
    private readonly Counter _edges;
    private readonly Counter _expiredEdges;
    private readonly Counter _droppedSpans;
    private readonly ConcurrentDictionary<string, TenantChildren> _tenants = new(StringComparer.Ordinal);

    public GeneratorSelfMetrics(MetricsRegistry metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _spansReceived = metrics.Counter("tempo_metrics_generator_spans_received_total", "Spans forwarded to the metrics-generator, per tenant.", "tenant");
        _bytesReceived = metrics.Counter("tempo_metrics_generator_bytes_received_total", "Payload bytes forwarded to the metrics-generator, per tenant.", "tenant");
        _spansDiscarded = metrics.Counter("tempo_metrics_generator_spans_discarded_total", "Spans the metrics-generator did not process, by reason.", "tenant", "reason");
        _activeSeries = metrics.Gauge("tempo_metrics_generator_registry_active_series", "Active series in the tenant's registry.", "tenant");
        _maxActiveSeries = metrics.Gauge("tempo_metrics_generator_registry_max_active_series", "max_active_series in force for the tenant (0 = unlimited).", "tenant");
        _seriesLimited = metrics.Counter("tempo_metrics_generator_registry_series_limited_total", "New series folded into the overflow series because of max_active_series.", "tenant");
        _collections = metrics.Counter("tempo_metrics_generator_registry_collections_total", "Registry collections, per tenant.", "tenant");
        _collectionsFailed = metrics.Counter("tempo_metrics_generator_registry_collections_failed_total", "Collections whose samples the storage refused.", "tenant");
        _samples = metrics.Counter("tempo_metrics_generator_registry_samples_collected_total", "Samples produced by collections, per tenant.", "tenant");
        _edges = metrics.Counter("tempo_metrics_generator_processor_service_graphs_edges", "Total number of unique edges.", "tenant");
        _expiredEdges = metrics.Counter("tempo_metrics_generator_processor_service_graphs_expired_edges", "Edges that expired before finding their matching span.", "tenant");
        _droppedSpans = metrics.Counter("tempo_metrics_generator_processor_service_graphs_dropped_spans", "Spans dropped because the edge store held max_items edges.", "tenant");
    }

    public TenantChildren For(string tenant) => _tenants.GetOrAdd(tenant, static (t, self) => new TenantChildren(self, t), this);

    /// <summary>One tenant's series, looked up once.</summary>
    public sealed class TenantChildren
    {
        private readonly GeneratorSelfMetrics _owner;
        private readonly string _tenant;
        private readonly ConcurrentDictionary<string, Counter.Child> _discarded = new(StringComparer.Ordinal);

        internal TenantChildren(GeneratorSelfMetrics owner, string tenant)
        {
            _owner = owner;
            _tenant = tenant;
            SpansReceived = owner._spansReceived.WithLabels(tenant);
            BytesReceived = owner._bytesReceived.WithLabels(tenant);
            ActiveSeries = owner._activeSeries.WithLabels(tenant);
            MaxActiveSeries = owner._maxActiveSeries.WithLabels(tenant);
            SeriesLimited = owner._seriesLimited.WithLabels(tenant);
            Collections = owner._collections.WithLabels(tenant);
            CollectionsFailed = owner._collectionsFailed.WithLabels(tenant);
            Samples = owner._samples.WithLabels(tenant);
            ServiceGraphEdges = owner._edges.WithLabels(tenant);
            ServiceGraphExpiredEdges = owner._expiredEdges.WithLabels(tenant);
            ServiceGraphDroppedSpans = owner._droppedSpans.WithLabels(tenant);
        }

        public Counter.Child SpansReceived { get; }

        public Counter.Child BytesReceived { get; }

        public Gauge.Child ActiveSeries { get; }

        public Gauge.Child MaxActiveSeries { get; }

        public Counter.Child SeriesLimited { get; }

        public Counter.Child Collections { get; }

        public Counter.Child CollectionsFailed { get; }

        public Counter.Child Samples { get; }

        public Counter.Child ServiceGraphEdges { get; }

        public Counter.Child ServiceGraphExpiredEdges { get; }

        public Counter.Child ServiceGraphDroppedSpans { get; }

        public Counter.Child Discarded(string reason) =>
            _discarded.GetOrAdd(reason, static (r, self) => self._owner._spansDiscarded.WithLabels(self._tenant, r), this);
    }
}
