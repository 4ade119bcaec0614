namespace Rubato.Receivers.Zipkin;

/// <summary>A Zipkin endpoint (v2 <c>localEndpoint</c>/<c>remoteEndpoint</c>, v1 annotation endpoint).</summary>
public sealed class ZipkinEndpoint
{
    public string? ServiceName { get; set; }

    public string? Ipv4 { get; set; }

    public string? Ipv6 { get; set; }

    public int Port { get; set; }
}

/// <summary>A Zipkin annotation: a timestamped string.</summary>
public readonly record struct ZipkinAnnotation(long TimestampMicros, string Value);

/// <summary>
/// One span in Zipkin's v2 model, as decoded from JSON (v2 directly, v1 after conversion), before translation.
/// Ids are kept as the hex strings the client sent and validated by the translator.
/// </summary>
public sealed class ZipkinSpan
{
    public string TraceId { get; set; } = string.Empty;

    public string Id { get; set; } = string.Empty;

    public string? ParentId { get; set; }

    public string? Name { get; set; }

    /// <summary>CLIENT, SERVER, PRODUCER, CONSUMER or null.</summary>
    public string? Kind { get; set; }

    /// <summary>Epoch microseconds, null when absent.</summary>
    public long? Timestamp { get; set; }

    /// <summary>Microseconds, null when absent.</summary>
    public long? Duration { get; set; }

    public bool Debug { get; set; }

    public bool Shared { get; set; }

    public ZipkinEndpoint? LocalEndpoint { get; set; }

    public ZipkinEndpoint? RemoteEndpoint { get; set; }

    public List<ZipkinAnnotation> Annotations { get; } = [];

    /// <summary>Tags in arrival order (keys unique: a later duplicate replaces the earlier value).</summary>
    public List<KeyValuePair<string, string>> Tags { get; } = [];

    public void SetTag(string key, string value)
    {
        for (int i = 0; i < Tags.Count; i++)
        {
            if (Tags[i].Key == key)
            {
                Tags[i] = new(key, value);
                return;
            }
        }

        Tags.Add(new(key, value));
    }
}
