using Rubato.Common.Configuration;

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

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (RemoteWrite.Count > 0 && string.IsNullOrWhiteSpace(Path))
        {
            validation.Error(prefix + ".path", "must be set when remote_write endpoints are configured");
        }

        for (int i = 0; i < RemoteWrite.Count; i++)
        {
            RemoteWrite[i].Validate($"{prefix}.remote_write[{i}]", validation);
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
    }
}
