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

    /// <summary>Byte offset in the input where decoding failed, or -1 when not known.</summary>
    public long Offset { get; }
}
