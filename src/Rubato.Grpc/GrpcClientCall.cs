using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;

namespace Rubato.Grpc;

/// <summary>
/// State of one client call: the HTTP/2 exchange, the message reader and the deadline timer. Used by one task at a
/// time. All failures leave here translated (see <see cref="Translate"/>).
/// </summary>
internal sealed class GrpcClientCall : IDisposable
{
    private const string UserAgent = "rubato-grpc/1.0";

    private readonly GrpcClient _client;
    private readonly GrpcCallOptions? _options;
    private readonly CancellationToken _callerToken;
    private readonly CancellationTokenSource? _deadlineCts;

    // Cancelled by Dispose when the call has not finished: HttpClient then resets the HTTP/2 stream (RST_STREAM
    // CANCEL) even if disposing the response alone did not, so the server's handler always sees its token fire.
    private CancellationTokenSource? _sendCts;
    private readonly TimeSpan? _timeout;
    private HttpRequestMessage? _request;
    private HttpResponseMessage? _response;
    private GrpcMessageReader? _reader;
    private PipeReader? _pipe;
    private bool _finished;
    private Uri? _uri;

    public GrpcClientCall(GrpcClient client, GrpcCallOptions? options, CancellationToken cancellationToken)
    {
        _client = client;
        _options = options;
        _callerToken = cancellationToken;
        _timeout = options?.EffectiveTimeout();
        if (_timeout is { } timeout)
        {
            _deadlineCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (timeout <= TimeSpan.Zero)
            {
                _deadlineCts.Cancel();
            }
            else if (timeout < TimeSpan.FromMilliseconds(uint.MaxValue - 1))
            {
                _deadlineCts.CancelAfter(timeout);
            }
        }
    }

    private CancellationToken Token => _deadlineCts?.Token ?? _callerToken;

    public ReadOnlyMemory<byte> Current => _reader is null ? default : _reader.Current;

    public async ValueTask StartAsync(Uri uri, ReadOnlyMemory<byte> message)
    {
        _uri = uri;
        try
        {
            Token.ThrowIfCancellationRequested();
            var compress = _options?.CompressRequest == true;
            var request = _request = new HttpRequestMessage(HttpMethod.Post, uri)
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = new GrpcRequestContent(message, compress, _client.Options.RequestCompressionLevel),
            };
            var headers = request.Headers;
            headers.TryAddWithoutValidation("TE", "trailers");
            headers.TryAddWithoutValidation("User-Agent", UserAgent);
            headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
            if (compress)
            {
                headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, "gzip");
            }
            if (_timeout is { } timeout)
            {
                headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(timeout));
            }
            if (_options?.Headers is { } metadata)
            {
                foreach (var (name, value) in metadata)
                {
                    if (!headers.TryAddWithoutValidation(name, value))
                    {
                        throw new ArgumentException($"metadata header '{name}' cannot be sent as gRPC request metadata");
                    }
                }
            }

            _sendCts = CancellationTokenSource.CreateLinkedTokenSource(Token);
            var response = _response = await _client.SendAsync(request, _sendCts.Token);
            var status = ReadStatus(response.Headers.NonValidated);
            if (status is { } trailersOnly)
            {
                // Trailers-only response (HEADERS with END_STREAM): the status is in the headers.
                _finished = true;
                ThrowIfNotOk(trailersOnly.Code, trailersOnly.Message);
                return;
            }
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var code = GrpcStatusCodes.FromHttpStatus((int)response.StatusCode);
                throw new GrpcException(code, $"bad HTTP status {(int)response.StatusCode} {response.ReasonPhrase} from {uri}");
            }
            var contentType = response.Content.Headers.NonValidated.TryGetValues("Content-Type", out var ct) ? ct.ToString() : null;
            if (!GrpcProtocol.IsGrpcContentType(contentType))
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"response content-type '{contentType}' from {uri} is not application/grpc");
            }
            var encodingValue = response.Headers.NonValidated.TryGetValues(GrpcProtocol.EncodingHeader, out var enc) ? enc.ToString() : null;
            if (!GrpcCompression.TryParseEncoding(encodingValue, out var encoding))
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"response grpc-encoding '{encodingValue}' is not supported");
            }
            var stream = await response.Content.ReadAsStreamAsync(Token);
            var pipe = _pipe = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 4096, leaveOpen: false));
            _reader = new GrpcMessageReader(pipe, _client.Options.MaxReceiveMessageSize, encoding);
        }
        catch (Exception ex) when (Translate(ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>Next message; false after the stream ended with status OK. A non-OK status throws.</summary>
    public async ValueTask<bool> MoveNextAsync()
    {
        if (_finished)
        {
            return false;
        }
        try
        {
            if (await _reader!.ReadNextAsync(Token))
            {
                return true;
            }
            _finished = true;
            var status = ReadStatus(_response!.TrailingHeaders.NonValidated)
                ?? throw new GrpcException(GrpcStatusCode.Internal, $"response from {_uri} ended without a grpc-status trailer");
            ThrowIfNotOk(status.Code, status.Message);
            return false;
        }
        catch (Exception ex) when (Translate(ex) is { } translated)
        {
            throw translated;
        }
    }

    private static (GrpcStatusCode Code, string Message)? ReadStatus(HttpHeadersNonValidated headers)
    {
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statusValues))
        {
            return null;
        }
        var text = statusValues.ToString();
        if (!GrpcStatusCodes.TryParse(text, out var code))
        {
            return (GrpcStatusCode.Unknown, $"malformed grpc-status '{text}'");
        }
        var message = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messageValues)
            ? GrpcMessageEncoding.Decode(messageValues.ToString())
            : string.Empty;
        return (code, message);
    }

    private static void ThrowIfNotOk(GrpcStatusCode code, string message)
    {
        if (code != GrpcStatusCode.OK)
        {
            throw new GrpcException(code, message);
        }
    }

    /// <summary>
    /// Maps a failure to what the caller sees: the caller's own cancellation stays an OperationCanceledException;
    /// a passed deadline becomes DEADLINE_EXCEEDED (whatever the transport reported meanwhile); a stream reset
    /// maps by its HTTP/2 error code; other transport errors become UNAVAILABLE. Returns null to rethrow as is.
    /// </summary>
    private Exception? Translate(Exception ex)
    {
        if (_callerToken.IsCancellationRequested)
        {
            return ex is OperationCanceledException ? null : new OperationCanceledException("the gRPC call was cancelled by the caller", ex, _callerToken);
        }
        // A status the server sent stays as sent, even if the local deadline fired meanwhile.
        if (_deadlineCts?.IsCancellationRequested == true && ex is not GrpcException)
        {
            return new GrpcException(GrpcStatusCode.DeadlineExceeded, $"deadline exceeded ({_timeout!.Value.TotalMilliseconds:0.###} ms) calling {_uri}", ex);
        }
        return ex switch
        {
            GrpcException => null,
            ArgumentException => null,
            HttpProtocolException p => new GrpcException(p.ErrorCode switch
            {
                0x8 => GrpcStatusCode.Cancelled, // CANCEL
                0x7 => GrpcStatusCode.Unavailable, // REFUSED_STREAM: safe to retry
                0xb => GrpcStatusCode.ResourceExhausted, // ENHANCE_YOUR_CALM
                0xc => GrpcStatusCode.PermissionDenied, // INADEQUATE_SECURITY
                _ => GrpcStatusCode.Internal,
            }, $"HTTP/2 stream to {_uri} reset (error code 0x{p.ErrorCode:x}): {p.Message}", p),
            HttpRequestException h => new GrpcException(GrpcStatusCode.Unavailable, $"cannot reach {_uri}: {h.Message}", h),
            IOException io => new GrpcException(GrpcStatusCode.Unavailable, $"connection to {_uri} failed: {io.Message}", io),
            OperationCanceledException oce => new GrpcException(GrpcStatusCode.Cancelled, $"call to {_uri} was cancelled: {oce.Message}", oce),
            _ => null,
        };
    }

    public void Dispose()
    {
        // Disposing an unfinished response resets the HTTP/2 stream (RST_STREAM CANCEL): the server's handler sees
        // its cancellation token fire. Cancelling the send token first makes the reset certain.
        if (!_finished)
        {
            try
            {
                _sendCts?.Cancel();
            }
            catch (AggregateException)
            {
                // A cancellation callback failed; the response is disposed below either way.
            }
        }

        _reader?.Dispose();
        _pipe?.Complete(); // returns its pooled segments and disposes the response stream
        _response?.Dispose();
        _request?.Dispose();
        _deadlineCts?.Dispose();
        _sendCts?.Dispose();
    }
}
