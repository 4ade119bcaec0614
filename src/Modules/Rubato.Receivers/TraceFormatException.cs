using Rubato.Common.Otlp;

namespace Rubato.Receivers;

/// <summary>
/// A request body a receiver cannot decode (bad JSON, truncated Thrift, malformed protobuf, invalid id).
/// Receivers answer it with HTTP 400 / gRPC INVALID_ARGUMENT and the message.
/// </summary>
public sealed class TraceFormatException : FormatException
{
    public TraceFormatException(string message, long offset = -1)
        : base(offset >= 0 ? $"{message} (at byte offset {offset})" : message)
    {
        Offset = offset;
    }

    public TraceFormatException(string message, Exception inner)
        : base(message, inner)
    {
        Offset = -1;
    }

    /// <summary>
    /// Wraps a protobuf wire error from the shared <see cref="ProtoReader"/>: its message already names the offset,
    /// so it is only prefixed with <c>protobuf: </c>, and its <see cref="OtlpFormatException.Offset"/> is kept.
    /// </summary>
    internal TraceFormatException(OtlpFormatException wireError)
        : base($"protobuf: {wireError.Message}", wireError)
    {
        Offset = wireError.Offset;
    }

    /// <summary>Byte offset in the input where decoding failed, or -1 when not known.</summary>
    public long Offset { get; }
}
