using System.Buffers;
using System.IO.Compression;
using System.Net;

namespace Rubato.Grpc;

/// <summary>
/// The request body of a unary or server-streaming call: one framed message. Framing (and gzip) happen inside
/// <see cref="SerializeToStreamAsync(Stream, TransportContext?, CancellationToken)"/> into a pooled buffer that is
/// returned before the method ends, so no pooled memory outlives the write even when HttpClient abandons the body
/// (e.g. the server answered early). The caller's message memory is read only during that write.
/// </summary>
internal sealed class GrpcRequestContent : HttpContent
{
    private readonly ReadOnlyMemory<byte> _message;
    private readonly bool _compress;
    private readonly CompressionLevel _level;

    public GrpcRequestContent(ReadOnlyMemory<byte> message, bool compress, CompressionLevel level)
    {
        _message = message;
        _compress = compress;
        _level = level;
        Headers.TryAddWithoutValidation("Content-Type", GrpcProtocol.ContentType);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        if (_compress)
        {
            using var frame = GrpcCompression.CompressFrame(_message.Span, _level);
            await stream.WriteAsync(frame.Buffer.AsMemory(0, (int)frame.Length), cancellationToken);
            return;
        }
        // One contiguous write: one DATA frame instead of a 5-byte frame followed by the payload.
        var length = GrpcFraming.HeaderSize + _message.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            GrpcFraming.WriteHeader(buffer, compressed: false, _message.Length);
            _message.Span.CopyTo(buffer.AsSpan(GrpcFraming.HeaderSize));
            await stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Unknown length: no content-length header; the body ends with END_STREAM as gRPC clients do.
    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
