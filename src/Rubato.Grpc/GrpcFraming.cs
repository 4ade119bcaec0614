using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Rubato.Grpc;

/// <summary>
/// The gRPC length-prefixed message: 1 byte compressed flag (0 or 1), 4 bytes big-endian length, then the payload.
/// </summary>
public static class GrpcFraming
{
    public const int HeaderSize = 5;

    public static void WriteHeader(Span<byte> destination, bool compressed, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }

    /// <summary>Writes header and payload into a pipe (copying the payload once into the pipe's buffers).</summary>
    public static void WriteMessage(PipeWriter writer, ReadOnlySpan<byte> payload, bool compressed = false)
    {
        var header = writer.GetSpan(HeaderSize);
        WriteHeader(header, compressed, payload.Length);
        writer.Advance(HeaderSize);
        writer.Write(payload);
    }

    /// <summary>
    /// Takes one complete message off the front of <paramref name="buffer"/>. Returns false (buffer untouched) when
    /// fewer bytes than a whole frame are present. Throws <see cref="GrpcException"/> as soon as the header shows a
    /// frame larger than <paramref name="maxMessageSize"/> (RESOURCE_EXHAUSTED, before the payload arrives) or an
    /// invalid flag (INTERNAL). On success, <paramref name="payload"/> is a slice of the input and
    /// <paramref name="buffer"/> starts after the frame.
    /// </summary>
    public static bool TryReadMessage(ref ReadOnlySequence<byte> buffer, int maxMessageSize, out bool compressed, out ReadOnlySequence<byte> payload)
    {
        payload = default;
        compressed = false;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }
        Span<byte> header = stackalloc byte[HeaderSize];
        var first = buffer.FirstSpan;
        if (first.Length >= HeaderSize)
        {
            first[..HeaderSize].CopyTo(header);
        }
        else
        {
            buffer.Slice(0, HeaderSize).CopyTo(header);
        }
        var flag = header[0];
        if (flag > 1)
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"invalid compressed flag {flag} in message frame header (expected 0 or 1)");
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > (uint)maxMessageSize)
        {
            throw new GrpcException(GrpcStatusCode.ResourceExhausted, $"received message larger than max ({length} vs. {maxMessageSize})");
        }
        if (buffer.Length - HeaderSize < length)
        {
            return false;
        }
        compressed = flag == 1;
        payload = buffer.Slice(HeaderSize, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }
}
