using Rubato.Common.Metrics;

namespace Rubato.RemoteWrite;

/// <summary>
/// Remote-write metrics on the shared registry, with Prometheus' remote storage names (Tempo exposes the same
/// ones from its embedded Prometheus). Endpoint metrics carry <c>remote_name</c> and <c>url</c>; counts are summed
/// over tenants.
/// </summary>
internal sealed class RemoteWriteMetrics
{
    public RemoteWriteMetrics(MetricsRegistry registry)
    {
        SamplesIn = registry.Counter("prometheus_remote_storage_samples_in_total", "Samples appended to the remote-write WAL.");
        Sent = registry.Counter("prometheus_remote_storage_samples_total", "Samples sent to remote storage and acknowledged.", "remote_name", "url");
        Failed = registry.Counter("prometheus_remote_storage_samples_failed_total", "Samples rejected for good by remote storage (4xx other than 429, out-of-order new samples).", "remote_name", "url");
        Retried = registry.Counter("prometheus_remote_storage_samples_retried_total", "Samples in requests that failed recoverably (5xx, 429, connection errors) and were sent again.", "remote_name", "url");
        Dropped = registry.Counter("prometheus_remote_storage_samples_dropped_total", "Unsent samples dropped from the WAL by its size or age bound.", "remote_name", "url");
        AlreadyIngested = registry.Counter("rubato_remote_write_samples_already_ingested_total", "Samples resent after a restart that remote storage already had (400 out of order / duplicate), treated as acknowledged.", "remote_name", "url");
        Pending = registry.Gauge("prometheus_remote_storage_samples_pending", "Samples in the WAL not yet acknowledged by this endpoint.", "remote_name", "url");
        WalBytes = registry.Gauge("rubato_remote_write_wal_bytes", "Size of the remote-write WAL segments of a tenant.", "tenant");
        WalSegments = registry.Gauge("rubato_remote_write_wal_segments", "Segment files in the remote-write WAL of a tenant.", "tenant");
    }

    public Counter SamplesIn { get; }

    public Counter Sent { get; }

    public Counter Failed { get; }

    public Counter Retried { get; }

    public Counter Dropped { get; }

    public Counter AlreadyIngested { get; }

    public Gauge Pending { get; }

    public Gauge WalBytes { get; }

    public Gauge WalSegments { get; }
}
