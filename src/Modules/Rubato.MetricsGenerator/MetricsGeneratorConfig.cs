using Rubato.Common.Configuration;
using Rubato.RemoteWrite;

namespace Rubato.MetricsGenerator;

/// <summary><c>metrics_generator:</c> with Tempo's keys and defaults (modules/generator/config.go).</summary>
public sealed class MetricsGeneratorConfig : IValidatableConfig
{
    /// <summary><c>processor:</c> defaults of each processor; a tenant's overrides replace non-empty values.</summary>
    public GeneratorProcessorConfig Processor { get; set; } = new();

    /// <summary><c>registry:</c> how series are kept and collected.</summary>
    public GeneratorRegistryConfig Registry { get; set; } = new();

    /// <summary><c>storage:</c> the sample WAL and remote-write endpoints (Rubato.RemoteWrite).</summary>
    public RemoteWriteStorageConfig Storage { get; set; } = new();

    /// <summary><c>metrics_ingestion_time_range_slack</c>: spans that ended longer ago than this are dropped.</summary>
    public TimeSpan MetricsIngestionTimeRangeSlack { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// <c>queue_size</c> (Rubato): forwarded pushes waiting to be processed. When full, new pushes are dropped and
    /// counted (<c>reason="queue_full"</c>); the distributor is never blocked.
    /// </summary>
    public int QueueSize { get; set; } = 1024;

    /// <summary>
    /// <c>queue_max_bytes</c> (Rubato): payload bytes the queue may hold; a push that would exceed it is dropped like
    /// one arriving at a full queue, so a burst of large pushes cannot take unbounded memory.
    /// </summary>
    public long QueueMaxBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary><c>workers</c> (Rubato): threads decoding queued pushes into metrics.</summary>
    public int Workers { get; set; } = 2;

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        Processor.Validate(prefix + ".processor", validation);
        Registry.Validate(prefix + ".registry", validation);
        Storage.Validate(prefix + ".storage", validation);
        if (MetricsIngestionTimeRangeSlack < TimeSpan.Zero)
        {
            validation.Error(prefix + ".metrics_ingestion_time_range_slack", $"must not be negative, got {MetricsIngestionTimeRangeSlack}");
        }

        if (QueueSize <= 0)
        {
            validation.Error(prefix + ".queue_size", $"must be positive, got {QueueSize}");
        }

        if (Workers <= 0)
        {
            validation.Error(prefix + ".workers", $"must be positive, got {Workers}");
        }

        if (QueueMaxBytes <= 0)
        {
            validation.Error(prefix + ".queue_max_bytes", $"must be positive, got {QueueMaxBytes}");
        }
    }

    internal static void ValidateBuckets(string key, List<double> buckets, ConfigValidation validation)
    {
        if (buckets.Count == 0)
        {
            validation.Error(key, "must list at least one bucket");
            return;
        }

        for (int i = 0; i < buckets.Count; i++)
        {
            if (!double.IsFinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
            {
                validation.Error(key, $"buckets must be finite and strictly increasing, got {string.Join(", ", buckets)}");
                return;
            }
        }
    }

    /// <summary>Prometheus' <c>ExponentialBuckets(start, factor, count)</c>.</summary>
    internal static List<double> Exponential(double start, double factor, int count)
    {
        var list = new List<double>(count);
        double v = start;
        for (int i = 0; i < count; i++)
        {
            list.Add(v);
            v *= factor;
        }

        return list;
    }
}

/// <summary><c>metrics_generator.processor:</c>.</summary>
public sealed class GeneratorProcessorConfig
{
    public ServiceGraphsConfig ServiceGraphs { get; set; } = new();

    public SpanMetricsConfig SpanMetrics { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        ServiceGraphs.Validate(prefix + ".service_graphs", validation);
        SpanMetrics.Validate(prefix + ".span_metrics", validation);
    }
}

/// <summary><c>metrics_generator.processor.span_metrics:</c>.</summary>
public sealed class SpanMetricsConfig
{
    /// <summary><c>histogram_buckets</c>: latency buckets in seconds, 0.002 … 16.384 doubling.</summary>
    public List<double> HistogramBuckets { get; set; } = MetricsGeneratorConfig.Exponential(0.002, 2, 14);

    /// <summary><c>intrinsic_dimensions</c>: which of service, span_name, span_kind, status_code, status_message label the series.</summary>
    public IntrinsicDimensionsConfig IntrinsicDimensions { get; set; } = new();

    /// <summary><c>dimensions</c>: span or resource attributes added as labels (names sanitized to label names).</summary>
    public List<string> Dimensions { get; set; } = [];

    /// <summary><c>enable_target_info</c>: emit <c>traces_target_info</c> from resource attributes, and a <c>job</c> label.</summary>
    public bool EnableTargetInfo { get; set; }

    /// <summary><c>target_info_excluded_dimensions</c>: resource attributes left out of <c>traces_target_info</c>.</summary>
    public List<string> TargetInfoExcludedDimensions { get; set; } = [];

    /// <summary><c>enable_instance_label</c>: with target info, add <c>instance</c> (service.instance.id).</summary>
    public bool EnableInstanceLabel { get; set; } = true;

    public void Validate(string prefix, ConfigValidation validation) =>
        MetricsGeneratorConfig.ValidateBuckets(prefix + ".histogram_buckets", HistogramBuckets, validation);
}

/// <summary><c>metrics_generator.processor.span_metrics.intrinsic_dimensions:</c>.</summary>
public sealed class IntrinsicDimensionsConfig
{
    public bool Service { get; set; } = true;

    public bool SpanName { get; set; } = true;

    public bool SpanKind { get; set; } = true;

    public bool StatusCode { get; set; } = true;

    public bool StatusMessage { get; set; }
}

/// <summary><c>metrics_generator.processor.service_graphs:</c>.</summary>
public sealed class ServiceGraphsConfig
{
    /// <summary><c>wait</c>: how long an edge waits for its other half before it expires.</summary>
    public TimeSpan Wait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><c>max_items</c>: unpaired edges kept per tenant; spans that would add more are dropped.</summary>
    public int MaxItems { get; set; } = 10_000;

    /// <summary><c>workers</c>: Tempo's edge-expiry goroutines; Rubato expires edges on its collection thread and only validates this.</summary>
    public int Workers { get; set; } = 10;

    /// <summary><c>histogram_buckets</c>: latency buckets in seconds, 0.1 … 12.8 doubling.</summary>
    public List<double> HistogramBuckets { get; set; } = MetricsGeneratorConfig.Exponential(0.1, 2, 8);

    /// <summary><c>dimensions</c>: attributes (resource first, then span) added as labels.</summary>
    public List<string> Dimensions { get; set; } = [];

    /// <summary><c>peer_attributes</c>: span attributes that name an uninstrumented server (virtual node), in order.</summary>
    public List<string> PeerAttributes { get; set; } = ["peer.service", "db.name", "db.system"];

    /// <summary><c>enable_client_server_prefix</c>: dimension labels become <c>client_X</c> and <c>server_X</c>.</summary>
    public bool EnableClientServerPrefix { get; set; }

    /// <summary><c>enable_messaging_system_latency_histogram</c>: producer end → consumer start histogram.</summary>
    public bool EnableMessagingSystemLatencyHistogram { get; set; }

    /// <summary><c>enable_virtual_node_label</c>: add <c>virtual_node</c> (client/server/empty).</summary>
    public bool EnableVirtualNodeLabel { get; set; }

    public void Validate(string prefix, ConfigValidation validation)
    {
        MetricsGeneratorConfig.ValidateBuckets(prefix + ".histogram_buckets", HistogramBuckets, validation);
        if (Wait <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".wait", $"must be positive, got {Wait}");
        }

        if (MaxItems <= 0)
        {
            validation.Error(prefix + ".max_items", $"must be positive, got {MaxItems}");
        }

        if (Workers <= 0)
        {
            validation.Error(prefix + ".workers", $"must be positive, got {Workers}");
        }
    }
}

/// <summary><c>metrics_generator.registry:</c>.</summary>
public sealed class GeneratorRegistryConfig
{
    /// <summary><c>collection_interval</c>: how often every series is sampled and handed to storage.</summary>
    public TimeSpan CollectionInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary><c>stale_duration</c>: a series not updated for this long is removed.</summary>
    public TimeSpan StaleDuration { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary><c>external_labels</c>: added to every series.</summary>
    public Dictionary<string, string> ExternalLabels { get; set; } = [];

    /// <summary><c>inject_tenant_id_as</c>: label name carrying the tenant id; empty = none.</summary>
    public string InjectTenantIdAs { get; set; } = string.Empty;

    /// <summary><c>max_label_name_length</c>: longer label names are truncated.</summary>
    public int MaxLabelNameLength { get; set; } = 1024;

    /// <summary><c>max_label_value_length</c>: longer label values are truncated (bytes, at a UTF-8 boundary).</summary>
    public int MaxLabelValueLength { get; set; } = 2048;

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (CollectionInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".collection_interval", $"must be positive, got {CollectionInterval}");
        }

        if (StaleDuration <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".stale_duration", $"must be positive, got {StaleDuration}");
        }

        if (MaxLabelNameLength <= 0 || MaxLabelValueLength <= 0)
        {
            validation.Error(prefix + ".max_label_name_length", "max_label_name_length and max_label_value_length must be positive");
        }

        foreach (var name in ExternalLabels.Keys)
        {
            if (!Labels.IsValidName(name))
            {
                validation.Error(prefix + ".external_labels", $"'{name}' is not a valid Prometheus label name");
            }
        }

        if (InjectTenantIdAs.Length > 0 && !Labels.IsValidName(InjectTenantIdAs))
        {
            validation.Error(prefix + ".inject_tenant_id_as", $"'{InjectTenantIdAs}' is not a valid Prometheus label name");
        }
    }
}
