using System.IO.Compression;

namespace Rubato.Grpc;

/// <summary>Settings of a <see cref="GrpcClient"/> and of the HTTP handler it creates.</summary>
public sealed class GrpcClientOptions
{
    /// <summary>Largest response message accepted, after decompression (gRPC's default: 4 MiB).</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Open more HTTP/2 connections when one reaches the server's concurrent-stream limit (default off:
    /// all calls multiplex on one connection per server).</summary>
    public bool EnableMultipleHttp2Connections { get; set; }

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>HTTP/2 PING interval while calls are active, to detect dead connections on long streams
    /// (infinite = off).</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = Timeout.InfiniteTimeSpan;

    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Level used when a call sets <see cref="GrpcCallOptions.CompressRequest"/>.</summary>
    public CompressionLevel RequestCompressionLevel { get; set; } = CompressionLevel.Fastest;

    internal void Validate()
    {
        if (MaxReceiveMessageSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxReceiveMessageSize), MaxReceiveMessageSize, "GrpcClientOptions.MaxReceiveMessageSize must be positive");
        }
    }
}

/// <summary>Per-call settings.</summary>
public sealed class GrpcCallOptions
{
    /// <summary>Request metadata, e.g. <c>("x-scope-orgid", "tenant-1")</c>. Names are sent lower-case.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Headers { get; init; }

    /// <summary>Time budget of the call, sent as <c>grpc-timeout</c>; when it passes the call fails with
    /// DEADLINE_EXCEEDED.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Absolute UTC deadline (e.g. propagated from <see cref="GrpcCallContext.Deadline"/>); combined with
    /// <see cref="Timeout"/>, the earlier one wins.</summary>
    public DateTime? Deadline { get; init; }

    /// <summary>gzip the request message (<c>grpc-encoding: gzip</c>).</summary>
    public bool CompressRequest { get; init; }

    internal TimeSpan? EffectiveTimeout()
    {
        var timeout = Timeout;
        if (Deadline is { } deadline)
        {
            var left = deadline.ToUniversalTime() - DateTime.UtcNow;
            timeout = timeout is { } t && t < left ? t : left;
        }
        return timeout;
    }
}
