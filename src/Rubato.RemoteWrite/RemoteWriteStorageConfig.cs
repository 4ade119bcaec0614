using Rubato.Common.Configuration;
using YamlDotNet.Serialization;

namespace Rubato.RemoteWrite;

/// <summary><c>metrics_generator.storage:</c> the WAL directory and the remote-write endpoints, with Tempo's keys.</summary>
public sealed class RemoteWriteStorageConfig
{
    /// <summary><c>path</c>: directory of the sample WAL (one subdirectory per tenant).</summary>
    public string Path { get; set; } = "/var/tempo/generator/wal";

    /// <summary><c>remote_write</c>: endpoints every sample is sent to; empty = samples are collected but not sent.</summary>
    public List<RemoteWriteEndpointConfig> RemoteWrite { get; set; } = [];

    /// <summary><c>remote_write_flush_deadline</c>: how long shutdown waits for queued samples to be sent.</summary>
    public TimeSpan RemoteWriteFlushDeadline { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary><c>remote_write_add_org_id_header</c>: send the tenant as <c>X-Scope-OrgID</c>.</summary>
    public bool RemoteWriteAddOrgIdHeader { get; set; } = true;

    /// <summary><c>wal</c>: segment size and the bounds after which unsent samples are dropped.</summary>
    public RemoteWriteWalConfig Wal { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (RemoteWrite.Count > 0 && string.IsNullOrWhiteSpace(Path))
        {
            validation.Error(prefix + ".path", "must be set when remote_write endpoints are configured");
        }

        if (RemoteWriteFlushDeadline < TimeSpan.Zero)
        {
            validation.Error(prefix + ".remote_write_flush_deadline", $"must not be negative, got {RemoteWriteFlushDeadline}");
        }

        Wal.Validate(prefix + ".wal", validation);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < RemoteWrite.Count; i++)
        {
            RemoteWrite[i].Validate($"{prefix}.remote_write[{i}]", validation);
            if (!names.Add(RemoteWrite[i].EffectiveName(i)))
            {
                validation.Error($"{prefix}.remote_write[{i}].name", $"'{RemoteWrite[i].EffectiveName(i)}' is used by another endpoint");
            }
        }
    }
}

/// <summary>One entry of <c>metrics_generator.storage.remote_write</c> (Prometheus' remote_write keys).</summary>
public sealed class RemoteWriteEndpointConfig
{
    /// <summary><c>url</c>: the receiver, e.g. <c>http://prometheus:9090/api/v1/write</c>.</summary>
    public string Url { get; set; } = string.Empty;

    /// <summary><c>name</c>: names the endpoint in metrics and logs; defaults to its position.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary><c>remote_timeout</c>: per-request timeout.</summary>
    public TimeSpan RemoteTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>headers</c>: extra HTTP headers on every request.</summary>
    public Dictionary<string, string> Headers { get; set; } = [];

    /// <summary><c>queue_config</c>: batching and retry (Prometheus' keys).</summary>
    public RemoteWriteQueueConfig QueueConfig { get; set; } = new();

    /// <summary>The name used in metrics, logs and the checkpoint file: <c>name</c>, or <c>endpoint-INDEX</c>.</summary>
    public string EffectiveName(int index) => string.IsNullOrEmpty(Name) ? $"endpoint-{index}" : Name;

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            validation.Error(prefix + ".url", $"must be an absolute http(s) URL, got '{Url}'");
        }

        if (RemoteTimeout <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".remote_timeout", $"must be positive, got {RemoteTimeout}");
        }

        if (Name.Length > 0 && !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            validation.Error(prefix + ".name", $"may only hold letters, digits, '-', '_' and '.', got '{Name}'");
        }

        foreach (var header in Headers.Keys)
        {
            if (ReservedHeaders.Contains(header))
            {
                validation.Error(prefix + ".headers", $"'{header}' is set by remote write itself and cannot be overridden");
            }
        }

        QueueConfig.Validate(prefix + ".queue_config", validation);
    }

    /// <summary>Headers the protocol owns (Prometheus refuses them in <c>headers</c> too).</summary>
    internal static readonly HashSet<string> ReservedHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Encoding", "Content-Type", "Content-Length", "X-Prometheus-Remote-Write-Version", "User-Agent", "Host",
    };
}

/// <summary><c>remote_write[].queue_config</c>: Prometheus' batching and retry keys and defaults.</summary>
public sealed class RemoteWriteQueueConfig
{
    /// <summary><c>max_samples_per_send</c>: samples per request (a WAL record is never split, so a request holds at least one).</summary>
    public int MaxSamplesPerSend { get; set; } = 2000;

    /// <summary><c>min_backoff</c>: first retry delay after a recoverable failure; doubled per retry.</summary>
    public TimeSpan MinBackoff { get; set; } = TimeSpan.FromMilliseconds(30);

    /// <summary><c>max_backoff</c>: cap of the retry delay.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary><c>retry_on_http_429</c>: retry on 429 (otherwise a 429 drops the batch like other 4xx).</summary>
    [YamlMember(Alias = "retry_on_http_429")]
    public bool RetryOnHttp429 { get; set; } = true;

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (MaxSamplesPerSend <= 0)
        {
            validation.Error(prefix + ".max_samples_per_send", $"must be positive, got {MaxSamplesPerSend}");
        }

        if (MinBackoff <= TimeSpan.Zero || MaxBackoff < MinBackoff)
        {
            validation.Error(prefix + ".min_backoff", $"must be positive and at most max_backoff, got {MinBackoff} and {MaxBackoff}");
        }
    }
}

/// <summary>
/// <c>metrics_generator.storage.wal</c>: the sample WAL. Tempo passes this section to the Prometheus agent WAL;
/// Rubato keeps its keys for segment size and age and adds a size bound per tenant.
/// </summary>
public sealed class RemoteWriteWalConfig
{
    /// <summary><c>wal_segment_size</c>: a segment is closed (and becomes deletable) once it reaches this size.</summary>
    public long WalSegmentSize { get; set; } = 128L * 1024 * 1024;

    /// <summary><c>truncate_frequency</c>: the active segment is also closed once its oldest record is this old, so sent data becomes deletable.</summary>
    public TimeSpan TruncateFrequency { get; set; } = TimeSpan.FromHours(2);

    /// <summary><c>max_wal_time</c>: a closed segment whose newest record is older than this is deleted even if unsent.</summary>
    public TimeSpan MaxWalTime { get; set; } = TimeSpan.FromHours(4);

    /// <summary><c>max_wal_bytes</c> (Rubato): per-tenant size bound; beyond it the oldest closed segments are deleted even if unsent. 0 = no bound.</summary>
    public long MaxWalBytes { get; set; } = 1024L * 1024 * 1024;

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (WalSegmentSize < 4096)
        {
            validation.Error(prefix + ".wal_segment_size", $"must be at least 4096 bytes, got {WalSegmentSize}");
        }

        if (TruncateFrequency <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".truncate_frequency", $"must be positive, got {TruncateFrequency}");
        }

        if (MaxWalTime <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".max_wal_time", $"must be positive, got {MaxWalTime}");
        }

        if (MaxWalBytes < 0 || (MaxWalBytes > 0 && MaxWalBytes < 2 * WalSegmentSize))
        {
            validation.Error(prefix + ".max_wal_bytes", $"must be 0 (no bound) or at least twice wal_segment_size, got {MaxWalBytes}");
        }
    }
}
