using System.Buffers;
using Stopwatch = System.Diagnostics.Stopwatch;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Rubato.Common.Contracts;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Common.Tenancy;
using Rubato.Grpc;
using Rubato.Receivers.Jaeger;
using Rubato.Receivers.Wire;
using Rubato.Receivers.Zipkin;

namespace Rubato.Receivers;

/// <summary>
/// The request handlers of every receiver. Each runs on the Kestrel request thread (or a UDP worker task), decodes,
/// resolves the tenant, calls <see cref="ITracePusher"/> and maps the <see cref="PushResult"/> to the protocol's
/// status. Stateless apart from the shared metrics; safe for concurrent use.
/// </summary>
internal sealed class ReceiverHandlers
{
    private const string ProtobufContentType = "application/x-protobuf";
    private const string JsonContentType = "application/json";

    private readonly ITracePusher _pusher;
    private readonly TenantResolver _tenants;
    private readonly ReceiverMetrics _metrics;
    private readonly ILogger _logger;
    private readonly string _retryAfterSeconds;
    private readonly TimeSpan _retryAfter;

    public ReceiverHandlers(ITracePusher pusher, TenantResolver tenants, ReceiverMetrics metrics, ILogger logger, TimeSpan retryAfter)
    {
        _pusher = pusher;
        _tenants = tenants;
        _metrics = metrics;
        _logger = logger;
        _retryAfter = retryAfter;
        _retryAfterSeconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
    }

    // ------------------------------------------------------------------ OTLP/HTTP

    public async Task OtlpHttpAsync(HttpContext http, long maxBodyBytes)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            string mediaType = MediaType(http.Request.ContentType);
            bool json = mediaType == JsonContentType;
            if (!json && mediaType != ProtobufContentType)
            {
                Fail("otlp", "http", "unsupported_media_type");
                await WriteText(http, StatusCodes.Status415UnsupportedMediaType, $"unsupported content type '{http.Request.ContentType}', use {ProtobufContentType} or {JsonContentType}");
                return;
            }

            var tenant = _tenants.Resolve(http.Request.Headers[TenantIds.HeaderName].FirstOrDefault());
            if (!tenant.Ok)
            {
                Fail("otlp", "http", tenant.Error == TenantError.Missing ? "no_tenant" : "invalid_tenant");
                await WriteOtlpStatus(http, json, tenant.HttpStatus, tenant.Error == TenantError.Missing ? GrpcStatusCode.Unauthenticated : GrpcStatusCode.InvalidArgument, tenant.Message!);
                return;
            }

            using var body = await ReadBodyAsync(http, maxBodyBytes, "otlp", "http");
            if (body.Error is { } bodyError)
            {
                await WriteOtlpStatus(http, json, bodyError.Status, GrpcStatusCode.InvalidArgument, bodyError.Message);
                return;
            }

            PushResult result;
            if (json)
            {
                Trace trace;
                try
                {
                    trace = OtlpJson.DecodeExportRequest(body.Span);
                }
                catch (Exception e) when (e is FormatException or OtlpValidationException)
                {
                    Fail("otlp", "http", "malformed");
                    await WriteOtlpStatus(http, json, 400, GrpcStatusCode.InvalidArgument, e.Message);
                    return;
                }

                result = await _pusher.PushTraceAsync(tenant.TenantId!, trace, http.RequestAborted);
            }
            else
            {
                // Hot path: the protobuf bytes go to the distributor untouched.
                try
                {
                    result = await _pusher.PushOtlpAsync(tenant.TenantId!, body.Memory, http.RequestAborted);
                }
                catch (Exception e) when (e is FormatException or OtlpValidationException)
                {
                    Fail("otlp", "http", "malformed");
                    await WriteOtlpStatus(http, json, 400, GrpcStatusCode.InvalidArgument, e.Message);
                    return;
                }
            }

            Count("otlp", "http", result);
            if (IsFailure(result))
            {
                SetRetryAfter(http, result.Reason);
                await WriteOtlpStatus(http, json, result.Reason.HttpStatus(), GrpcCode(result.Reason), Message(result));
                return;
            }

            http.Response.StatusCode = 200;
            long rejected = result.RefusedSpans;
            string? partialMessage = rejected > 0 ? Message(result) : null;
            if (json)
            {
                http.Response.ContentType = JsonContentType;
                var buffer = new ArrayBufferWriter<byte>(64);
                using (var w = new Utf8JsonWriter(buffer))
                {
                    OtlpJson.WriteExportResponse(w, rejected, partialMessage);
                }

                await http.Response.Body.WriteAsync(buffer.WrittenMemory, http.RequestAborted);
            }
            else
            {
                http.Response.ContentType = ProtobufContentType;
                await http.Response.Body.WriteAsync(OtlpProto.EncodeExportResponse(rejected, partialMessage), http.RequestAborted);
            }
        }
        finally
        {
            Observe("otlp", "http", started);
        }
    }

    /// <summary>
    /// OTLP/HTTP errors are a <c>google.rpc.Status</c> in the request's encoding: protobuf {code=1, message=2} or
    /// JSON {"code":…,"message":…}.
    /// </summary>
    private static Task WriteOtlpStatus(HttpContext http, bool json, int httpStatus, GrpcStatusCode code, string message)
    {
        http.Response.StatusCode = httpStatus;
        if (json)
        {
            http.Response.ContentType = JsonContentType;
            var buffer = new ArrayBufferWriter<byte>(64 + message.Length);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("code", (int)code);
                w.WriteString("message", message);
                w.WriteEndObject();
            }

            return http.Response.Body.WriteAsync(buffer.WrittenMemory).AsTask();
        }

        http.Response.ContentType = ProtobufContentType;
        using var pw = new ProtoWriter(64 + (message.Length * 3));
        WriteStatusCodeAndMessage(pw, code, message);
        return http.Response.Body.WriteAsync(pw.ToArray()).AsTask();
    }

    // ------------------------------------------------------------------ OTLP/gRPC and Jaeger gRPC

    public async ValueTask<ReadOnlyMemory<byte>> OtlpGrpcExportAsync(GrpcCallContext call, ReadOnlyMemory<byte> request)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            string tenant = ResolveGrpcTenant(call, "otlp");
            PushResult result;
            try
            {
                result = await _pusher.PushOtlpAsync(tenant, request, call.CancellationToken);
            }
            catch (Exception e) when (e is FormatException or OtlpValidationException)
            {
                Fail("otlp", "grpc", "malformed");
                throw new GrpcException(GrpcStatusCode.InvalidArgument, e.Message);
            }

            Count("otlp", "grpc", result);
            if (IsFailure(result))
            {
                var code = GrpcCode(result.Reason);
                if (code == GrpcStatusCode.ResourceExhausted)
                {
                    // OTLP exporters retry RESOURCE_EXHAUSTED only when the status carries RetryInfo (Tempo's
                    // retry_info_enabled), and then wait the given delay.
                    call.AddResponseTrailer("grpc-status-details-bin", StatusDetailsWithRetryInfo(code, Message(result)));
                }

                throw new GrpcException(code, Message(result));
            }

            return result.RefusedSpans > 0 ? OtlpProto.EncodeExportResponse(result.RefusedSpans, Message(result)) : ReadOnlyMemory<byte>.Empty;
        }
        finally
        {
            Observe("otlp", "grpc", started);
        }
    }

    public async ValueTask<ReadOnlyMemory<byte>> JaegerPostSpansAsync(GrpcCallContext call, ReadOnlyMemory<byte> request)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            string tenant = ResolveGrpcTenant(call, "jaeger");
            Trace trace;
            try
            {
                trace = JaegerProtoDecoder.DecodePostSpansRequest(request.Span);
            }
            catch (TraceFormatException e)
            {
                Fail("jaeger", "grpc", "malformed");
                throw new GrpcException(GrpcStatusCode.InvalidArgument, e.Message);
            }

            var result = await _pusher.PushTraceAsync(tenant, trace, call.CancellationToken);
            Count("jaeger", "grpc", result);
            if (IsFailure(result) || result.RefusedSpans > 0)
            {
                // Jaeger's PostSpansResponse has no partial-success field: any refusal is an error.
                throw new GrpcException(GrpcCode(result.Reason == RefusalReason.None ? RefusalReason.InvalidInput : result.Reason), Message(result));
            }

            // PostSpansResponse is empty.
            return ReadOnlyMemory<byte>.Empty;
        }
        finally
        {
            Observe("jaeger", "grpc", started);
        }
    }

    /// <summary>
    /// Base64 (unpadded, as gRPC emits binary metadata) of a <c>google.rpc.Status{code=1, message=2, details=3}</c>
    /// whose one detail is an <c>Any</c> holding <c>google.rpc.RetryInfo{retry_delay=1 Duration{seconds=1, nanos=2}}</c>.
    /// </summary>
    internal string StatusDetailsWithRetryInfo(GrpcStatusCode code, string message)
    {
        using var status = new ProtoWriter(128 + (message.Length * 3));
        WriteStatusCodeAndMessage(status, code, message);
        int any = status.BeginMessage(3);
        status.WriteStringField(1, "type.googleapis.com/google.rpc.RetryInfo");
        int retryInfo = status.BeginMessage(2);
        int duration = status.BeginMessage(1);
        WriteNonZeroInt64(status, 1, (long)_retryAfter.TotalSeconds);
        WriteNonZeroInt64(status, 2, _retryAfter.Ticks % TimeSpan.TicksPerSecond * 100);
        status.EndMessage(duration);
        status.EndMessage(retryInfo);
        status.EndMessage(any);
        return Convert.ToBase64String(status.WrittenSpan).TrimEnd('=');
    }

    /// <summary><c>google.rpc.Status</c> fields 1 and 2, omitting proto3 defaults (code 0, empty message).</summary>
    private static void WriteStatusCodeAndMessage(ProtoWriter w, GrpcStatusCode code, string message)
    {
        WriteNonZeroInt64(w, 1, (int)code);
        if (!string.IsNullOrEmpty(message))
        {
            w.WriteStringField(2, message);
        }
    }

    private static void WriteNonZeroInt64(ProtoWriter w, int field, long value)
    {
        if (value != 0)
        {
            w.WriteVarintField(field, (ulong)value);
        }
    }

    private string ResolveGrpcTenant(GrpcCallContext call, string receiver)
    {
        var tenant = _tenants.Resolve(call.GetHeader("x-scope-orgid"));
        if (tenant.Ok)
        {
            return tenant.TenantId!;
        }

        bool missing = tenant.Error == TenantError.Missing;
        Fail(receiver, "grpc", missing ? "no_tenant" : "invalid_tenant");
        throw new GrpcException(missing ? GrpcStatusCode.Unauthenticated : GrpcStatusCode.InvalidArgument, tenant.Message!);
    }

    // ------------------------------------------------------------------ Zipkin

    public async Task ZipkinAsync(HttpContext http, long maxBodyBytes, bool v1)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            string mediaType = MediaType(http.Request.ContentType);
            bool proto = !v1 && mediaType == ProtobufContentType;
            if (mediaType.Length != 0 && mediaType != JsonContentType && !proto)
            {
                Fail("zipkin", "http", "unsupported_media_type");
                await WriteText(http, StatusCodes.Status415UnsupportedMediaType,
                    $"unsupported content type '{http.Request.ContentType}': use {JsonContentType}{(v1 ? string.Empty : " or " + ProtobufContentType)}");
                return;
            }

            await TranslatedHttpAsync(http, maxBodyBytes, "zipkin", "http", body =>
            {
                var spans = proto ? ZipkinProtoDecoder.DecodeListOfSpans(body)
                    : v1 ? ZipkinJsonDecoder.DecodeV1(body)
                    : ZipkinJsonDecoder.DecodeV2(body);
                return ZipkinTranslator.ToTrace(spans);
            });
        }
        finally
        {
            Observe("zipkin", "http", started);
        }
    }

    // ------------------------------------------------------------------ Jaeger thrift over HTTP

    public async Task JaegerThriftHttpAsync(HttpContext http, long maxBodyBytes)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            ThriftProtocol protocol;
            switch (MediaType(http.Request.ContentType))
            {
                case "application/x-thrift":
                case "application/vnd.apache.thrift.binary":
                    protocol = ThriftProtocol.Binary;
                    break;
                case "application/vnd.apache.thrift.compact":
                    protocol = ThriftProtocol.Compact;
                    break;
                default:
                    // Jaeger's collector answers an unknown content type with 400.
                    Fail("jaeger", "thrift_http", "unsupported_media_type");
                    await WriteText(http, StatusCodes.Status400BadRequest, $"Unsupported content type: {http.Request.ContentType}");
                    return;
            }

            await TranslatedHttpAsync(http, maxBodyBytes, "jaeger", "thrift_http", body => JaegerThriftDecoder.DecodeBatch(body, protocol));
        }
        finally
        {
            Observe("jaeger", "thrift_http", started);
        }
    }

    private delegate Trace Translate(ReadOnlySpan<byte> body);

    /// <summary>Zipkin and Jaeger HTTP: plain-text errors, 202 Accepted on success (as Zipkin and Jaeger answer).</summary>
    private async Task TranslatedHttpAsync(HttpContext http, long maxBodyBytes, string receiver, string transport, Translate translate)
    {
        var tenant = _tenants.Resolve(http.Request.Headers[TenantIds.HeaderName].FirstOrDefault());
        if (!tenant.Ok)
        {
            Fail(receiver, transport, tenant.Error == TenantError.Missing ? "no_tenant" : "invalid_tenant");
            await WriteText(http, tenant.HttpStatus, tenant.Message!);
            return;
        }

        Trace trace;
        using (var body = await ReadBodyAsync(http, maxBodyBytes, receiver, transport))
        {
            if (body.Error is { } bodyError)
            {
                await WriteText(http, bodyError.Status, bodyError.Message);
                return;
            }

            try
            {
                trace = translate(body.Span);
            }
            catch (TraceFormatException e)
            {
                Fail(receiver, transport, "malformed");
                await WriteText(http, 400, e.Message);
                return;
            }
        }

        var result = await _pusher.PushTraceAsync(tenant.TenantId!, trace, http.RequestAborted);
        Count(receiver, transport, result);
        if (IsFailure(result))
        {
            SetRetryAfter(http, result.Reason);
            await WriteText(http, result.Reason.HttpStatus(), Message(result));
            return;
        }

        http.Response.StatusCode = StatusCodes.Status202Accepted;
    }

    // ------------------------------------------------------------------ Jaeger agent UDP

    /// <summary>
    /// One agent datagram (a UDP worker task runs this). Jaeger UDP carries no headers, so with multitenancy on
    /// there is no tenant: like Tempo (whose push then fails with "no org id"), the batch is dropped and counted.
    /// </summary>
    public async Task DatagramAsync(ReadOnlyMemory<byte> datagram, ThriftProtocol protocol, string transport, CancellationToken ct)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            Trace trace;
            try
            {
                trace = JaegerThriftDecoder.DecodeEmitBatch(datagram.Span, protocol);
            }
            catch (TraceFormatException e)
            {
                Fail("jaeger", transport, "malformed");
                _logger.LogDebug("jaeger {Transport}: dropped malformed datagram: {Error}", transport, e.Message);
                return;
            }

            var tenant = _tenants.Resolve(null);
            if (!tenant.Ok)
            {
                Fail("jaeger", transport, "no_tenant");
                _metrics.Refused.WithLabels("jaeger", transport).Inc(trace.SpanCount());
                _logger.LogDebug("jaeger {Transport}: dropped {Spans} spans: multitenancy is enabled and UDP has no X-Scope-OrgID", transport, trace.SpanCount());
                return;
            }

            var result = await _pusher.PushTraceAsync(tenant.TenantId!, trace, ct);
            Count("jaeger", transport, result);
            if (IsFailure(result))
            {
                _logger.LogDebug("jaeger {Transport}: {Spans} spans refused: {Reason} {Message}", transport, result.RefusedSpans, result.Reason.Label(), result.Message);
            }
        }
        finally
        {
            Observe("jaeger", transport, started);
        }
    }

    // ------------------------------------------------------------------ shared

    private static bool IsFailure(PushResult r) => r.Reason != RefusalReason.None && r.AcceptedSpans == 0;

    private static string Message(PushResult r) => r.Message ?? r.Reason.Label();

    public static GrpcStatusCode GrpcCode(RefusalReason reason) => reason switch
    {
        RefusalReason.InvalidInput => GrpcStatusCode.InvalidArgument,
        RefusalReason.RateLimited or RefusalReason.TraceTooLarge or RefusalReason.LiveTracesExceeded => GrpcStatusCode.ResourceExhausted,
        RefusalReason.Unavailable => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.OK,
    };

    private void SetRetryAfter(HttpContext http, RefusalReason reason)
    {
        int status = reason.HttpStatus();
        if (status is 429 or 503)
        {
            http.Response.Headers.RetryAfter = _retryAfterSeconds;
        }
    }

    private void Count(string receiver, string transport, PushResult r)
    {
        if (r.AcceptedSpans > 0)
        {
            _metrics.Accepted.WithLabels(receiver, transport).Inc(r.AcceptedSpans);
        }

        if (r.RefusedSpans > 0)
        {
            _metrics.Refused.WithLabels(receiver, transport).Inc(r.RefusedSpans);
        }
    }

    private void Fail(string receiver, string transport, string reason) =>
        _metrics.FailedRequests.WithLabels(receiver, transport, reason).Inc();

    private void Observe(string receiver, string transport, long started) =>
        _metrics.Duration.WithLabels(receiver, transport).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);

    private static string MediaType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return string.Empty;
        }

        int semi = contentType.IndexOf(';');
        return (semi >= 0 ? contentType[..semi] : contentType).Trim().ToLowerInvariant();
    }

    private static async Task WriteText(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync(message + "\n", Encoding.UTF8);
    }

    internal readonly record struct BodyError(int Status, string Message);

    /// <summary>A request body in a pooled buffer; dispose returns the buffer.</summary>
    internal sealed class PooledBody : IDisposable
    {
        private byte[]? _buffer;

        public PooledBody(byte[]? buffer, int length, BodyError? error)
        {
            _buffer = buffer;
            Length = length;
            Error = error;
        }

        public int Length { get; }

        public BodyError? Error { get; }

        public ReadOnlyMemory<byte> Memory => _buffer is null ? ReadOnlyMemory<byte>.Empty : _buffer.AsMemory(0, Length);

        public ReadOnlySpan<byte> Span => Memory.Span;

        public void Dispose()
        {
            var b = Interlocked.Exchange(ref _buffer, null);
            if (b is not null)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }
    }

    /// <summary>
    /// Reads the body into a pooled buffer, undoing <c>Content-Encoding: gzip|deflate</c>. The limit applies to the
    /// wire bytes and again to the decompressed bytes (a small gzip bomb cannot expand past it): 413 beyond it.
    /// </summary>
    private async Task<PooledBody> ReadBodyAsync(HttpContext http, long limit, string receiver, string transport)
    {
        var req = http.Request;
        if (req.ContentLength is long declared && declared > limit)
        {
            Fail(receiver, transport, "too_large");
            return new PooledBody(null, 0, new BodyError(413, $"request body of {declared} bytes exceeds the limit of {limit} bytes"));
        }

        string encoding = req.Headers.ContentEncoding.ToString().Trim().ToLowerInvariant();
        Stream source = req.Body;
        Stream? decoder = encoding switch
        {
            "" or "identity" => null,
            "gzip" or "x-gzip" => new GZipStream(source, CompressionMode.Decompress, leaveOpen: true),
            "deflate" or "zlib" => new ZLibStream(source, CompressionMode.Decompress, leaveOpen: true),
            _ => Stream.Null,
        };
        if (decoder == Stream.Null)
        {
            Fail(receiver, transport, "unsupported_encoding");
            return new PooledBody(null, 0, new BodyError(400, $"unsupported Content-Encoding '{encoding}': use gzip or deflate"));
        }

        var stream = decoder ?? source;
        int initial = (int)Math.Min(Math.Max(req.ContentLength ?? 16 * 1024, 1024) + 1, Math.Min(limit + 1, int.MaxValue));
        byte[] buffer = ArrayPool<byte>.Shared.Rent(initial);
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > limit)
                    {
                        break;
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, Math.Min(limit + 1, int.MaxValue)));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                int n = await stream.ReadAsync(buffer.AsMemory(length), http.RequestAborted);
                if (n == 0)
                {
                    break;
                }

                length += n;
                if (length > limit)
                {
                    break;
                }
            }
        }
        catch (InvalidDataException e)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Fail(receiver, transport, "malformed");
            return new PooledBody(null, 0, new BodyError(400, $"cannot decompress {encoding} body: {e.Message}"));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Fail(receiver, transport, "too_large");
            return new PooledBody(null, 0, new BodyError(413, e.Message));
        }
        finally
        {
            if (decoder is not null)
            {
                await decoder.DisposeAsync();
            }
        }

        if (length > limit)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Fail(receiver, transport, "too_large");
            return new PooledBody(null, 0, new BodyError(413, $"request body exceeds the limit of {limit} bytes{(decoder is null ? string.Empty : " after decompression")}"));
        }

        return new PooledBody(buffer, length, null);
    }
}
