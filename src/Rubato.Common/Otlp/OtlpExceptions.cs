namespace Rubato.Common.Otlp;

/// <summary>Malformed OTLP input (protobuf or JSON). The message names the problem and, for protobuf, the byte offset.</summary>
public sealed class OtlpFormatException : FormatException
{
    public OtlpFormatException(string message, long offset = -1)
        : base(message)
    {
        Offset = offset;
    }

    public OtlpFormatException(string message, Exception inner)
        : base(message, inner)
    {
        Offset = -1;
    }

    /// <summary>Byte offset into the input where the problem was found, or -1 when not known (JSON).</summary>
    public long Offset { get; }
}

/// <summary>Well-formed OTLP carrying invalid ids (wrong length, all zero). Maps to HTTP 400 / INVALID_ARGUMENT.</summary>
public sealed class OtlpValidationException : Exception
{
    public OtlpValidationException(string message)
        : base(message)
    {
    }
}
