using System.Buffers;
using System.IO.Compression;

namespace Rubato.Grpc;

/// <summary>Message encodings this layer speaks (<c>grpc-encoding</c>).</summary>
public enum GrpcEncoding
{
    Identity = 0,
    Gzip = 1,
}

/// <summary>gzip per message, as gRPC's compressed flag asks. Costs: one zlib state per call of each method.</summary>
public static class GrpcCompression
{
    /// <summary>Parses a <c>grpc-encoding</c> value; absent or empty means identity.</summary>
    public static bool TryParseEncoding(string? value, out GrpcEncoding encoding)
    {
        encoding = GrpcEncoding.Identity;
        if (string.IsNullOrEmpty(value) || value.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        if (value.Equals("gzip", StringComparison.OrdinalIgnoreCase))
        {
            encoding = GrpcEncoding.Gzip;
            return true;
        }
        return false;
    }

    /// <summary>True when a <c>grpc-accept-encoding</c> list (comma separated) names gzip.</summary>
    public static bool AcceptsGzip(string? acceptEncoding)
    {
        if (string.IsNullOrEmpty(acceptEncoding))
        {
            return false;
        }
        foreach (var range in acceptEncoding.AsSpan().Split(','))
        {
            if (acceptEncoding.AsSpan()[range].Trim().Equals("gzip", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>gzip-compresses <paramref name="message"/> into a pooled buffer that starts with a filled-in
    /// frame header (compressed flag set). The caller writes <c>Buffer[..Length]</c> and disposes the result.</summary>
    internal static PooledBufferStream CompressFrame(ReadOnlySpan<byte> message, CompressionLevel level)
    {
        var output = new PooledBufferStream(GrpcFraming.HeaderSize + (message.Length / 2) + 64, GrpcFraming.HeaderSize);
        try
        {
            using (var gzip = new GZipStream(output, level, leaveOpen: true))
            {
                gzip.Write(message);
            }
            GrpcFraming.WriteHeader(output.Buffer, compressed: true, (int)output.Length - GrpcFraming.HeaderSize);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Decompresses into <paramref name="buffer"/> (a pooled array, grown through the pool as needed) and returns
    /// the decompressed length. Stops with RESOURCE_EXHAUSTED as soon as the output exceeds
    /// <paramref name="maxMessageSize"/>, so a small "zip bomb" cannot allocate more than the limit.
    /// </summary>
    internal static int Decompress(ReadOnlySequence<byte> compressed, ref byte[] buffer, int maxMessageSize)
    {
        try
        {
            using var gzip = new GZipStream(new SequenceReadStream(compressed), CompressionMode.Decompress);
            var total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (total > maxMessageSize)
                    {
                        throw TooLarge(maxMessageSize);
                    }
                    var target = (int)Math.Min((long)maxMessageSize + 1, Math.Max(4096L, (long)buffer.Length * 2));
                    Grow(ref buffer, target, total);
                }
                var n = gzip.Read(buffer, total, buffer.Length - total);
                if (n == 0)
                {
                    break;
                }
                total += n;
                if (total > maxMessageSize)
                {
                    throw TooLarge(maxMessageSize);
                }
            }
            return total;
        }
        catch (InvalidDataException ex)
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"failed to decompress gzip message: {ex.Message}", ex);
        }
    }

    internal static void Grow(ref byte[] buffer, int minimumLength, int preserve)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(minimumLength);
        if (preserve > 0)
        {
            buffer.AsSpan(0, preserve).CopyTo(bigger);
        }
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        buffer = bigger;
    }

    private static GrpcException TooLarge(int max) =>
        new(GrpcStatusCode.ResourceExhausted, $"received message after decompression larger than max ({max})");
}
