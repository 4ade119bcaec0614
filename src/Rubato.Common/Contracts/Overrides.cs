namespace Rubato.Common.Contracts;

// Per-tenant limits in Tempo's "new" overrides layout (modules/overrides/config.go). The same classes are used for
// `overrides.defaults` in the main config and for each tenant entry of the runtime file. The property initialisers
// are Tempo's built-in defaults. Properties are PascalCase; config loaders map them to snake_case YAML keys
// (RateLimitBytes → rate_limit_bytes). Durations are TimeSpan; TimeSpan.Zero means "not set / use the component's
// own setting" exactly where Tempo treats 0 that way.

/// <summary>Strategy names for <see cref="IngestionLimits.RateStrategy"/>.</summary>
public static class RateStrategies
{
    /// <summary>Each distributor enforces the full limit on its own.</summary>
    public const string Local = "local";

    /// <summary>The limit is divided among the healthy distributors of the ring.</summary>
    public const string Global = "global";
}

/// <summary><c>ingestion:</c> limits, enforced by the distributor (rate) and the ingester (live traces).</summary>
public sealed class IngestionLimits
{
    /// <summary><c>rate_strategy</c>: local or global. Only the defaults' value is used (Tempo: not per tenant).</summary>
    public string RateStrategy { get; set; } = RateStrategies.Local;

    /// <summary><c>rate_limit_bytes</c>: sustained bytes per second per tenant.</summary>
    public long RateLimitBytes { get; set; } = 30_000_000;

    /// <summary><c>burst_size_bytes</c>: token bucket capacity; one push larger than this is always refused.</summary>
    public long BurstSizeBytes { get; set; } = 30_000_000;

    /// <summary><c>max_traces_per_user</c>: live traces per tenant per ingester; 0 disables.</summary>
    public int MaxTracesPerUser { get; set; } = 10_000;

    /// <summary><c>max_global_traces_per_user</c>: cluster-wide live traces; 0 disables.</summary>
    public int MaxGlobalTracesPerUser { get; set; }

    /// <summary><c>tenant_shard_size</c>: shuffle-shard size; 0 = all.</summary>
    public int TenantShardSize { get; set; }

    /// <summary><c>max_attribute_bytes</c>: truncation limit for attribute keys/values; 0 = use the distributor's setting.</summary>
    public int MaxAttributeBytes { get; set; }

    /// <summary><c>artificial_delay</c>: minimum push latency (pads fast pushes); zero disables.</summary>
    public TimeSpan ArtificialDelay { get; set; }

    /// <summary><c>retry_info_enabled</c>: whether RESOURCE_EXHAUSTED replies carry retry info.</summary>
    public bool RetryInfoEnabled { get; set; } = true;

    public IngestionLimits Clone() => (IngestionLimits)MemberwiseClone();
}

/// <summary><c>global:</c> limits enforced in several components.</summary>
public sealed class GlobalLimits
{
    /// <summary><c>max_bytes_per_trace</c>: bytes of one trace an ingester holds unflushed; 0 disables.</summary>
    public long MaxBytesPerTrace { get; set; } = 5_000_000;

    public GlobalLimits Clone() => (GlobalLimits)MemberwiseClone();
}

/// <summary><c>read:</c> limits enforced by the query path.</summary>
public sealed class ReadLimits
{
    public long MaxBytesPerTagValuesQuery { get; set; } = 1_000_000;

    public int MaxBlocksPerTagValuesQuery { get; set; }

    /// <summary><c>max_search_duration</c>: zero = use the query-frontend's setting.</summary>
    public TimeSpan MaxSearchDuration { get; set; }

    /// <summary><c>max_metrics_duration</c>: zero = use the query-frontend's setting.</summary>
    public TimeSpan MaxMetricsDuration { get; set; }

    public bool LeftPadTraceIds { get; set; }

    public int MaxConditionGroupsPerTagQuery { get; set; } = 100;

    public bool UnsafeQueryHints { get; set; }

    public ReadLimits Clone() => (ReadLimits)MemberwiseClone();
}

/// <summary><c>compaction:</c> limits.</summary>
public sealed class CompactionLimits
{
    /// <summary><c>block_retention</c>: zero = use the compactor's retention (336h).</summary>
    public TimeSpan BlockRetention { get; set; }

    /// <summary><c>compaction_window</c>: zero = use the compactor's window.</summary>
    public TimeSpan CompactionWindow { get; set; }

    public bool CompactionDisabled { get; set; }

    public CompactionLimits Clone() => (CompactionLimits)MemberwiseClone();
}

/// <summary><c>metrics_generator.processor.service_graphs</c>.</summary>
public sealed class ServiceGraphsLimits
{
    public List<double> HistogramBuckets { get; set; } = [];

    public List<string> Dimensions { get; set; } = [];

    public List<string> PeerAttributes { get; set; } = [];

    public bool EnableClientServerPrefix { get; set; }

    public bool EnableMessagingSystemLatencyHistogram { get; set; }

    public bool EnableVirtualNodeLabel { get; set; }
}

/// <summary><c>metrics_generator.processor.span_metrics</c>.</summary>
public sealed class SpanMetricsLimits
{
    public List<double> HistogramBuckets { get; set; } = [];

    public List<string> Dimensions { get; set; } = [];

    public Dictionary<string, bool> IntrinsicDimensions { get; set; } = [];

    public bool EnableTargetInfo { get; set; }

    public List<string> TargetInfoExcludedDimensions { get; set; } = [];
}

/// <summary><c>metrics_generator.processor</c>.</summary>
public sealed class GeneratorProcessorLimits
{
    public ServiceGraphsLimits ServiceGraphs { get; set; } = new();

    public SpanMetricsLimits SpanMetrics { get; set; } = new();
}

/// <summary><c>metrics_generator.forwarder</c>.</summary>
public sealed class GeneratorForwarderLimits
{
    public int QueueSize { get; set; }

    public int Workers { get; set; }
}

/// <summary><c>metrics_generator:</c> per-tenant settings of the metrics-generator.</summary>
public sealed class MetricsGeneratorLimits
{
    public int RingSize { get; set; }

    /// <summary><c>processors</c>: enabled processors, e.g. <c>service-graphs</c>, <c>span-metrics</c>.</summary>
    public List<string> Processors { get; set; } = [];

    public long MaxActiveSeries { get; set; }

    public TimeSpan CollectionInterval { get; set; }

    public bool DisableCollection { get; set; }

    public string TraceIdLabelName { get; set; } = string.Empty;

    public Dictionary<string, string> RemoteWriteHeaders { get; set; } = [];

    public GeneratorForwarderLimits Forwarder { get; set; } = new();

    public GeneratorProcessorLimits Processor { get; set; } = new();

    public TimeSpan IngestionTimeRangeSlack { get; set; }
}

/// <summary>One entry of <c>storage.parquet_dedicated_columns</c>.</summary>
public sealed class DedicatedColumn
{
    /// <summary><c>scope</c>: resource, span or event.</summary>
    public string Scope { get; set; } = string.Empty;

    public string Name { get; set; } = string.Empty;

    /// <summary><c>type</c>: string or int.</summary>
    public string Type { get; set; } = string.Empty;

    public List<string> Options { get; set; } = [];
}

/// <summary><c>storage:</c> per-tenant block settings.</summary>
public sealed class StorageLimits
{
    public List<DedicatedColumn> ParquetDedicatedColumns { get; set; } = [];
}

/// <summary><c>cost_attribution:</c> usage tracker dimensions.</summary>
public sealed class CostAttributionLimits
{
    public long MaxCardinality { get; set; }

    public Dictionary<string, string> Dimensions { get; set; } = [];
}

/// <summary>
/// Every limit of one tenant: <c>overrides.defaults</c>, or one tenant's entry in the runtime overrides file.
/// </summary>
/// <remarks>
/// Instances handed out by <see cref="IOverrides.ForTenant"/> are shared snapshots: callers must not mutate them.
/// A reload builds new instances instead of changing old ones, so a reader never sees a half-applied file.
/// </remarks>
public sealed class TenantLimits
{
    public IngestionLimits Ingestion { get; set; } = new();

    public ReadLimits Read { get; set; } = new();

    public CompactionLimits Compaction { get; set; } = new();

    public MetricsGeneratorLimits MetricsGenerator { get; set; } = new();

    /// <summary><c>forwarders</c>: names of forwarders the distributor copies this tenant's spans to.</summary>
    public List<string> Forwarders { get; set; } = [];

    public GlobalLimits Global { get; set; } = new();

    public StorageLimits Storage { get; set; } = new();

    public CostAttributionLimits CostAttribution { get; set; } = new();
}

/// <summary>The limits in force for each tenant, as the overrides module resolves them.</summary>
/// <remarks>Thread-safe; <see cref="ForTenant"/> is called on every push, so it is a dictionary lookup.</remarks>
public interface IOverrides
{
    /// <summary>
    /// The tenant's limits: its own runtime entry, else the <c>"*"</c> entry, else the defaults. Entries replace the
    /// defaults as whole objects (they are not merged field by field). <see cref="IngestionLimits.RateStrategy"/>
    /// always comes from the defaults.
    /// </summary>
    TenantLimits ForTenant(string tenantId);

    /// <summary>Increments every time a new set of limits comes into force; caches compare it to refresh.</summary>
    long Version { get; }

    /// <summary>Raised (on the reloading thread) after <see cref="Version"/> changed.</summary>
    event Action? Changed;
}
