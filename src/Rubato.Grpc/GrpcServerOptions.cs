using System.IO.Compression;

namespace Rubato.Grpc;

/// <summary>
/// Server settings. Passed to a Map call, or registered with <c>services.Configure&lt;GrpcServerOptions&gt;(…)</c>;
/// read once when the endpoint is mapped.
/// </summary>
public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted, after decompression (gRPC's default: 4 MiB).</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// gzip response messages when the client lists gzip in <c>grpc-accept-encoding</c>. Off by default: on loopback
    /// and in-cluster links it costs more CPU than it saves (see docs/grpc.md for figures).
    /// </summary>
    public bool EnableResponseCompression { get; set; }

    public CompressionLevel ResponseCompressionLevel { get; set; } = CompressionLevel.Fastest;

    /// <summary>Put the exception type and message of an unexpected handler failure into the INTERNAL status
    /// message. Off by default: exception text can leak internals to callers.</summary>
    public bool IncludeExceptionDetails { get; set; }

    internal void Validate()
    {
        if (MaxReceiveMessageSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxReceiveMessageSize), MaxReceiveMessageSize, "GrpcServerOptions.MaxReceiveMessageSize must be positive");
        }
    }
}
