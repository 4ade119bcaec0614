using System.Buffers;
using System.IO.Compression;
using Microsoft.AspNetCore.Http;

namespace Rubato.Grpc;

/// <summary>
/// Writes response messages of one call. Not thread-safe: await each write before the next. Each write is
/// flushed to the connection promptly (one HTTP/2 DATA frame per message, subject to flow control); a write waits
/// while the client is not reading (HTTP/2 flow control) and throws when the call is cancelled.
/// </summary>
public sealed class GrpcStreamWriter
{
    private readonly HttpResponse _response;
    private readonly bool _compress;
    private readonly CompressionLevel _level;
    private readonly CancellationToken _cancellationToken;
    private bool _compressing;

    internal GrpcStreamWriter(HttpResponse response, bool compress, CompressionLevel level, CancellationToken cancellationToken)
    {
        _response = response;
        _compress = compress;
        _level = level;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Messages written so far.</summary>
    public int MessagesWritten { get; private set; }

    /// <summary>Writes one message and flushes it. The memory may be reused once the returned task completes.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> message) => WriteAsync(message, flush: true);

    internal async ValueTask WriteAsync(ReadOnlyMemory<byte> message, bool flush)
    {
        _cancellationToken.ThrowIfCancellationRequested();
        var writer = _response.BodyWriter;
        if (MessagesWritten == 0 && _compress && !_response.HasStarted)
        {
            // grpc-encoding must precede the first message; decided once, on the first write.
            _response.Headers[GrpcProtocol.EncodingHeader] = "gzip";
            _compressing = true;
        }
        if (_compressing)
        {
            using var frame = GrpcCompression.CompressFrame(message.Span, _level);
            writer.Write(frame.Buffer.AsSpan(0, (int)frame.Length));
        }
        else
        {
            GrpcFraming.WriteMessage(writer, message.Span);
        }
        MessagesWritten++;
        if (flush)
        {
            var result = await writer.FlushAsync(_cancellationToken);
            if (result.IsCanceled || result.IsCompleted)
            {
                // The client went away (Kestrel completed the pipe): nothing more can be delivered.
                throw new OperationCanceledException("the client stopped reading the response", null, _cancellationToken);
            }
        }
    }
}
