using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Rubato.Grpc;

/// <summary>
/// Runs one server call on Kestrel's request task: validates the request, reads the single request message,
/// invokes the handler, and ends with <c>grpc-status</c>/<c>grpc-message</c> either as trailers (after messages)
/// or as a trailers-only response (headers frame with END_STREAM) when no message was written.
/// </summary>
internal sealed class GrpcServerCall(string service, string method, GrpcServerOptions options, ILogger logger,
    Func<GrpcCallContext, ReadOnlyMemory<byte>, GrpcStreamWriter, ValueTask> body)
{
    // CancellationTokenSource.CancelAfter accepts at most uint.MaxValue - 1 ms (~49.7 days); longer deadlines
    // are treated as none.
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    public async Task ExecuteAsync(HttpContext http)
    {
        var request = http.Request;
        var response = http.Response;
        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return;
        }
        response.ContentType = GrpcProtocol.ContentType;
        response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
        if (!HttpProtocol.IsHttp2(request.Protocol) && !HttpProtocol.IsHttp3(request.Protocol))
        {
            response.StatusCode = StatusCodes.Status426UpgradeRequired;
            WriteTrailersOnly(response, GrpcStatusCode.Internal, $"gRPC requires HTTP/2; request protocol is {request.Protocol}", null);
            return;
        }
        // The gRPC limit (MaxReceiveMessageSize, checked per frame header) replaces Kestrel's 30 MB body limit, which
        // would otherwise cap messages configured larger than that.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = null;
        }
        var encodingValue = request.Headers[GrpcProtocol.EncodingHeader].ToString();
        if (!GrpcCompression.TryParseEncoding(encodingValue, out var encoding))
        {
            WriteTrailersOnly(response, GrpcStatusCode.Unimplemented,
                $"unsupported grpc-encoding '{encodingValue}'; supported: {GrpcProtocol.SupportedEncodings}", null);
            return;
        }

        DateTime? deadline = null;
        CancellationTokenSource? deadlineCts = null;
        var timeoutValue = request.Headers[GrpcProtocol.TimeoutHeader];
        if (timeoutValue.Count > 0)
        {
            if (!GrpcTimeout.TryParse(timeoutValue.ToString(), out var timeout))
            {
                WriteTrailersOnly(response, GrpcStatusCode.Internal, $"malformed grpc-timeout '{timeoutValue}'", null);
                return;
            }
            if (timeout <= MaxTimer)
            {
                deadline = DateTime.UtcNow + timeout;
                deadlineCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
                deadlineCts.CancelAfter(timeout);
            }
        }

        var token = deadlineCts?.Token ?? http.RequestAborted;
        var context = new GrpcCallContext(http, service, method, token, deadline);
        var compress = options.EnableResponseCompression && GrpcCompression.AcceptsGzip(request.Headers[GrpcProtocol.AcceptEncodingHeader].ToString());
        var writer = new GrpcStreamWriter(response, compress, options.ResponseCompressionLevel, token);
        using var reader = new GrpcMessageReader(request.BodyReader, options.MaxReceiveMessageSize, encoding);
        GrpcStatusCode status;
        string? message;
        try
        {
            if (!await reader.ReadNextAsync(token))
            {
                throw new GrpcException(GrpcStatusCode.Internal, "request ended without a message");
            }
            await EnsureNoMoreMessagesAsync(request, token);
            await body(context, reader.Current, writer);
            status = GrpcStatusCode.OK;
            message = null;
        }
        catch (GrpcException ex) when (!http.RequestAborted.IsCancellationRequested)
        {
            status = ex.StatusCode;
            message = ex.Message;
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client cancelled or disconnected: there is nobody to send a status to (Kestrel resets the stream).
            deadlineCts?.Dispose();
            return;
        }
        catch (OperationCanceledException) when (deadlineCts?.IsCancellationRequested == true)
        {
            status = GrpcStatusCode.DeadlineExceeded;
            message = "Deadline exceeded";
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "gRPC handler /{Service}/{Method} failed", service, method);
            status = GrpcStatusCode.Internal;
            message = options.IncludeExceptionDetails
                ? $"Exception was thrown by handler. {ex.GetType().Name}: {ex.Message}"
                : "Exception was thrown by handler.";
        }
        finally
        {
            deadlineCts?.Dispose();
        }

        if (!response.HasStarted && writer.MessagesWritten == 0)
        {
            WriteTrailersOnly(response, status, message, context.ResponseTrailers);
            return;
        }
        response.AppendTrailer(GrpcProtocol.StatusHeader, GrpcStatusCodes.ToWire(status));
        if (!string.IsNullOrEmpty(message))
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcMessageEncoding.Encode(message));
        }
        if (context.ResponseTrailers is { } extra)
        {
            foreach (var (name, value) in extra)
            {
                response.AppendTrailer(name, value);
            }
        }
    }

    /// <summary>Unary and server-streaming requests carry exactly one message; anything after it is an error.</summary>
    private static async ValueTask EnsureNoMoreMessagesAsync(HttpRequest request, CancellationToken token)
    {
        var body = request.BodyReader;
        while (true)
        {
            var result = await body.ReadAsync(token);
            var length = result.Buffer.Length;
            body.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (length > 0)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "additional data after the single request message");
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    internal static void WriteTrailersOnly(HttpResponse response, GrpcStatusCode status, string? message, List<KeyValuePair<string, string>>? trailers)
    {
        var headers = response.Headers;
        headers[GrpcProtocol.StatusHeader] = GrpcStatusCodes.ToWire(status);
        if (!string.IsNullOrEmpty(message))
        {
            headers[GrpcProtocol.MessageHeader] = GrpcMessageEncoding.Encode(message);
        }
        headers.Remove(GrpcProtocol.EncodingHeader);
        if (trailers is not null)
        {
            foreach (var (name, value) in trailers)
            {
                headers.Append(name, value);
            }
        }
    }
}
