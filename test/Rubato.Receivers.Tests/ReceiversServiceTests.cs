using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Otlp;
using Rubato.Common.Services;
using Rubato.Common.Tenancy;
using Rubato.Grpc;
using Rubato.Receivers.Tests.Support;
using Rubato.Receivers.Wire;
using Xunit;

namespace Rubato.Receivers.Tests;

public class ReceiversServiceTests
{
    private static ByteArrayContent Body(byte[] bytes, string contentType, string? encoding = null)
    {
        var c = new ByteArrayContent(bytes);
        c.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (encoding is not null)
        {
            c.Headers.ContentEncoding.Add(encoding);
        }

        return c;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest))
        {
            gz.Write(data);
        }

        return ms.ToArray();
    }

    private static byte[] ZipkinV2Json() => Encoding.UTF8.GetBytes("""
        [{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","name":"get","kind":"SERVER","timestamp":1556604172355737,"duration":10,"localEndpoint":{"serviceName":"web"}}]
        """);

    /// <summary>Decodes a google.rpc.Status {code=1, message=2} protobuf.</summary>
    private static (int Code, string Message) DecodeStatus(byte[] bytes)
    {
        int code = 0;
        string message = string.Empty;
        int i = 0;
        while (i < bytes.Length)
        {
            int tag = bytes[i++];
            if (tag == 0x08)
            {
                code = bytes[i++];
            }
            else if (tag == 0x12)
            {
                int len = bytes[i++];
                message = Encoding.UTF8.GetString(bytes, i, len);
                i += len;
            }
            else
            {
                throw new InvalidDataException($"unexpected tag {tag}");
            }
        }

        return (code, message);
    }

    [Fact]
    public async Task Start_AllReceiversOnPortZero_BindsEveryEndpoint()
    {
        await using var h = await ReceiversHarness.StartAsync();
        Assert.Equal(ServiceState.Running, h.Service.State);
        Assert.Equal(
            ["jaeger_grpc", "jaeger_thrift_binary", "jaeger_thrift_compact", "jaeger_thrift_http", "otlp_grpc", "otlp_http", "zipkin"],
            h.Service.BoundEndpoints.Keys.Order(StringComparer.Ordinal));
        Assert.All(h.Service.BoundEndpoints.Values, ep => Assert.NotEqual(0, ep.Port));
        Assert.Equal(5, h.Service.BoundEndpoints.Where(kv => !kv.Key.StartsWith("jaeger_thrift_c", StringComparison.Ordinal) && !kv.Key.EndsWith("binary", StringComparison.Ordinal)).Select(kv => kv.Value.Port).Distinct().Count());
    }

    [Fact]
    public async Task OtlpHttp_Protobuf_BytesReachPusherUnchanged()
    {
        await using var h = await ReceiversHarness.StartAsync();
        var request = ReceiversHarness.OtlpRequest();
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(request, "application/x-protobuf"));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("application/x-protobuf", resp.Content.Headers.ContentType?.MediaType);
        Assert.Empty(await resp.Content.ReadAsByteArrayAsync());
        var push = await h.Pusher.NextAsync();
        Assert.Equal(TenantIds.SingleTenant, push.Tenant);
        Assert.Equal(request, push.OtlpBytes);
        Assert.Equal(2, h.Counter("rubato_receiver_accepted_spans_total", "otlp", "http"));
        Assert.Contains("rubato_receiver_request_duration_seconds_count{receiver=\"otlp\",transport=\"http\"} 1", h.Metrics.Render());
    }

    [Fact]
    public async Task OtlpHttp_Json_TranslatedAndPushed()
    {
        await using var h = await ReceiversHarness.StartAsync();
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            OtlpJson.WriteExportRequest(ReceiversHarness.SampleTrace(), w);
        }

        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(buffer.ToArray(), "application/json; charset=utf-8"));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("{}", await resp.Content.ReadAsStringAsync());
        var push = await h.Pusher.NextAsync();
        Assert.Equal(2, push.Trace!.SpanCount());
        Assert.Equal("checkout", push.Trace.ResourceSpans[0].Resource.ServiceName());
    }

    [Fact]
    public async Task OtlpHttp_Gzip_Decompressed()
    {
        await using var h = await ReceiversHarness.StartAsync();
        var request = ReceiversHarness.OtlpRequest();
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(Gzip(request), "application/x-protobuf", "gzip"));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal(request, (await h.Pusher.NextAsync()).OtlpBytes);
    }

    [Fact]
    public async Task OtlpHttp_Deflate_Decompressed()
    {
        await using var h = await ReceiversHarness.StartAsync();
        var request = ReceiversHarness.OtlpRequest();
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest))
        {
            z.Write(request);
        }

        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(ms.ToArray(), "application/x-protobuf", "deflate"));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal(request, (await h.Pusher.NextAsync()).OtlpBytes);
    }

    [Fact]
    public async Task OtlpHttp_UnknownEncoding_400()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body([1, 2], "application/x-protobuf", "br"));
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        Assert.Contains("unsupported Content-Encoding 'br'", DecodeStatus(await resp.Content.ReadAsByteArrayAsync()).Message);
    }

    [Fact]
    public async Task OtlpHttp_WrongContentType_415()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body([1, 2, 3], "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, resp.StatusCode);
        Assert.Contains("unsupported content type 'text/plain'", await resp.Content.ReadAsStringAsync());
        Assert.Empty(h.Pusher.All);
        Assert.Equal(1, h.Counter("rubato_receiver_failed_requests_total", "otlp", "http", "unsupported_media_type"));
    }

    [Fact]
    public async Task OtlpHttp_BodyOverLimit_413()
    {
        await using var h = await ReceiversHarness.StartAsync(configure: c => c.Otlp!.Protocols!.Http!.MaxRequestBodySize = 1000);
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(new byte[5000], "application/x-protobuf"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, resp.StatusCode);
        Assert.Contains("exceeds the limit of 1000 bytes", DecodeStatus(await resp.Content.ReadAsByteArrayAsync()).Message);
        Assert.Empty(h.Pusher.All);
    }

    [Fact]
    public async Task OtlpHttp_GzipExpandingOverLimit_413()
    {
        await using var h = await ReceiversHarness.StartAsync(configure: c => c.Otlp!.Protocols!.Http!.MaxRequestBodySize = 10_000);
        var bomb = Gzip(new byte[1_000_000]);
        Assert.True(bomb.Length < 10_000);
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(bomb, "application/x-protobuf", "gzip"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, resp.StatusCode);
        Assert.Contains("after decompression", DecodeStatus(await resp.Content.ReadAsByteArrayAsync()).Message);
    }

    [Fact]
    public async Task OtlpHttp_MalformedJson_400WithJsonStatus()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body("{\"resourceSpans\":5}"u8.ToArray(), "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        Assert.Equal(3, doc.RootElement.GetProperty("code").GetInt32());
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("message").GetString()));
        Assert.Empty(h.Pusher.All);
    }

    [Fact]
    public async Task OtlpHttp_MalformedProtobuf_400WithProtobufStatus()
    {
        await using var h = await ReceiversHarness.StartAsync();
        // The distributor rejects bytes it cannot scan by throwing a FormatException (the double decodes them).
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body([0x0a, 0x50, 0x01], "application/x-protobuf"));
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        Assert.Equal("application/x-protobuf", resp.Content.Headers.ContentType?.MediaType);
        var (code, message) = DecodeStatus(await resp.Content.ReadAsByteArrayAsync());
        Assert.Equal(3, code);
        Assert.NotEmpty(message);
    }

    public static TheoryData<RefusalReason, int, int, bool> Refusals => new()
    {
        { RefusalReason.InvalidInput, 400, 3, false },
        { RefusalReason.RateLimited, 429, 8, true },
        { RefusalReason.TraceTooLarge, 429, 8, true },
        { RefusalReason.LiveTracesExceeded, 429, 8, true },
        { RefusalReason.Unavailable, 503, 14, true },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task OtlpHttp_Refused_MapsStatusAndRetryAfter(RefusalReason reason, int http, int grpc, bool retryAfter)
    {
        await using var h = await ReceiversHarness.StartAsync();
        h.Pusher.Respond = n => PushResult.Refused(n, reason, $"refused: {reason.Label()}");
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf"));
        Assert.Equal(http, (int)resp.StatusCode);
        Assert.Equal(retryAfter ? TimeSpan.FromSeconds(5) : null, resp.Headers.RetryAfter?.Delta);
        Assert.Equal((grpc, $"refused: {reason.Label()}"), DecodeStatus(await resp.Content.ReadAsByteArrayAsync()));
        Assert.Equal(2, h.Counter("rubato_receiver_refused_spans_total", "otlp", "http"));
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task OtlpGrpc_Refused_MapsGrpcStatus(RefusalReason reason, int http, int grpc, bool retryAfter)
    {
        _ = (http, retryAfter);
        await using var h = await ReceiversHarness.StartAsync();
        h.Pusher.Respond = n => PushResult.Refused(n, reason, "nope");
        using var client = h.Grpc("otlp_grpc");
        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(ReceiversService.OtlpTraceService, "Export", ReceiversHarness.OtlpRequest()));
        Assert.Equal((GrpcStatusCode)grpc, ex.StatusCode);
        Assert.Equal("nope", ex.StatusMessage);
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Zipkin_Refused_MapsHttpStatus(RefusalReason reason, int http, int grpc, bool retryAfter)
    {
        _ = grpc;
        await using var h = await ReceiversHarness.StartAsync();
        h.Pusher.Respond = n => PushResult.Refused(n, reason, "zipkin refused");
        using var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v2/spans"), Body(ZipkinV2Json(), "application/json"));
        Assert.Equal(http, (int)resp.StatusCode);
        Assert.Equal(retryAfter, resp.Headers.RetryAfter is not null);
        Assert.Contains("zipkin refused", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task OtlpHttp_PartialSuccess_200WithRejectedCount()
    {
        await using var h = await ReceiversHarness.StartAsync();
        h.Pusher.Respond = n => new PushResult(n - 1, 1, RefusalReason.LiveTracesExceeded, "1 span over the live traces limit");
        using var resp = await h.Http.PostAsync(h.Url("otlp_http", "/v1/traces"), Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf"));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal(OtlpProto.EncodeExportResponse(1, "1 span over the live traces limit"), await resp.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, h.Counter("rubato_receiver_accepted_spans_total", "otlp", "http"));
        Assert.Equal(1, h.Counter("rubato_receiver_refused_spans_total", "otlp", "http"));
    }

    [Fact]
    public async Task OtlpGrpc_Export_BytesReachPusherUnchanged()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var client = h.Grpc("otlp_grpc");
        var request = ReceiversHarness.OtlpRequest();
        var reply = await client.UnaryAsync(ReceiversService.OtlpTraceService, "Export", request);
        Assert.Empty(reply);
        var push = await h.Pusher.NextAsync();
        Assert.Equal(request, push.OtlpBytes);
        Assert.Equal(2, h.Counter("rubato_receiver_accepted_spans_total", "otlp", "grpc"));
    }

    [Fact]
    public async Task OtlpGrpc_PartialSuccess_ResponseCarriesRejected()
    {
        await using var h = await ReceiversHarness.StartAsync();
        h.Pusher.Respond = n => new PushResult(1, n - 1, RefusalReason.TraceTooLarge, "too big");
        using var client = h.Grpc("otlp_grpc");
        var reply = await client.UnaryAsync(ReceiversService.OtlpTraceService, "Export", ReceiversHarness.OtlpRequest());
        Assert.Equal(OtlpProto.EncodeExportResponse(1, "too big"), reply);
    }

    [Fact]
    public async Task MultiTenancy_OtlpHttp_HeaderRequiredAndValidated()
    {
        await using var h = await ReceiversHarness.StartAsync(multitenancy: true);
        var url = h.Url("otlp_http", "/v1/traces");

        using (var missing = await h.Http.PostAsync(url, Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
            Assert.Equal((16, "no org id"), DecodeStatus(await missing.Content.ReadAsByteArrayAsync()));
        }

        using (var bad = new HttpRequestMessage(HttpMethod.Post, url) { Content = Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf") })
        {
            bad.Headers.Add("X-Scope-OrgID", "a|b");
            using var resp = await h.Http.SendAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        }

        using (var good = new HttpRequestMessage(HttpMethod.Post, url) { Content = Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf") })
        {
            good.Headers.Add("X-Scope-OrgID", "team-a");
            using var resp = await h.Http.SendAsync(good);
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        }

        var push = Assert.Single(h.Pusher.All);
        Assert.Equal("team-a", push.Tenant);
    }

    [Fact]
    public async Task MultiTenancy_Zipkin_MissingHeader401NoOrgId()
    {
        await using var h = await ReceiversHarness.StartAsync(multitenancy: true);
        using var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v2/spans"), Body(ZipkinV2Json(), "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
        Assert.Equal("no org id", (await resp.Content.ReadAsStringAsync()).Trim());
    }

    [Fact]
    public async Task MultiTenancy_Grpc_MetadataRequiredAndValidated()
    {
        await using var h = await ReceiversHarness.StartAsync(multitenancy: true);
        using var otlp = h.Grpc("otlp_grpc");
        var missing = await Assert.ThrowsAsync<GrpcException>(() => otlp.UnaryAsync(ReceiversService.OtlpTraceService, "Export", ReceiversHarness.OtlpRequest()));
        Assert.Equal((GrpcStatusCode.Unauthenticated, "no org id"), (missing.StatusCode, missing.StatusMessage));

        var invalid = await Assert.ThrowsAsync<GrpcException>(() => otlp.UnaryAsync(ReceiversService.OtlpTraceService, "Export", ReceiversHarness.OtlpRequest(),
            new GrpcCallOptions { Headers = [new("x-scope-orgid", "..")] }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, invalid.StatusCode);

        await otlp.UnaryAsync(ReceiversService.OtlpTraceService, "Export", ReceiversHarness.OtlpRequest(),
            new GrpcCallOptions { Headers = [new("x-scope-orgid", "team-b")] });
        using var jaeger = h.Grpc("jaeger_grpc");
        await jaeger.UnaryAsync(ReceiversService.JaegerCollectorService, "PostSpans", JaegerProtoDecoderTests.Request(),
            new GrpcCallOptions { Headers = [new("x-scope-orgid", "team-c")] });
        Assert.Equal(["team-b", "team-c"], h.Pusher.All.Select(p => p.Tenant));
    }

    [Fact]
    public async Task Routes_OnlyAnswerOnTheirOwnPort()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using (var resp = await h.Http.PostAsync(h.Url("zipkin", "/v1/traces"), Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf")))
        {
            Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode);
        }

        using (var resp = await h.Http.PostAsync(h.Url("otlp_http", "/api/v2/spans"), Body(ZipkinV2Json(), "application/json")))
        {
            Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode);
        }

        using (var resp = await h.Http.PostAsync(h.Url("jaeger_thrift_http", "/v1/traces"), Body(ReceiversHarness.OtlpRequest(), "application/x-protobuf")))
        {
            Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode);
        }

        using var jaegerPortClient = h.Grpc("jaeger_grpc");
        var ex = await Assert.ThrowsAsync<GrpcException>(() => jaegerPortClient.UnaryAsync(ReceiversService.OtlpTraceService, "Export", ReceiversHarness.OtlpRequest()));
        Assert.NotEqual(GrpcStatusCode.OK, ex.StatusCode);
        Assert.Empty(h.Pusher.All);
    }

    [Fact]
    public async Task Zipkin_V2AndV1_Accepted202()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using (var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v2/spans"), Body(Gzip(ZipkinV2Json()), "application/json", "gzip")))
        {
            Assert.Equal(HttpStatusCode.Accepted, resp.StatusCode);
        }

        var v2 = await h.Pusher.NextAsync();
        Assert.Equal("web", v2.Trace!.ResourceSpans[0].Resource.ServiceName());

        byte[] v1 = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Corpus", "zipkin", "v1-zipkin-js.json"));
        using (var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v1/spans"), Body(v1, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Accepted, resp.StatusCode);
        }

        Assert.Equal(4, (await h.Pusher.NextAsync()).Trace!.SpanCount());
        Assert.Equal(5, h.Counter("rubato_receiver_accepted_spans_total", "zipkin", "http"));
    }

    [Fact]
    public async Task Zipkin_MalformedJson_400WithMessage()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v2/spans"), Body("[{\"traceId\":\"zz\",\"id\":\"1\"}]"u8.ToArray(), "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
        Assert.Contains("traceId 'zz' is not 1..32 hex digits", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Zipkin_Protobuf_Accepted202()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v2/spans"), Body(ZipkinProtoDecoderTests.ListOfSpans(), "application/x-protobuf"));
        Assert.Equal(HttpStatusCode.Accepted, resp.StatusCode);
        Assert.Equal("frontend", (await h.Pusher.NextAsync()).Trace!.ResourceSpans[0].Resource.ServiceName());
    }

    [Fact]
    public async Task Zipkin_OtherContentType_415()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var resp = await h.Http.PostAsync(h.Url("zipkin", "/api/v2/spans"), Body([1], "application/x-thrift"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, resp.StatusCode);
    }

    [Theory]
    [InlineData("application/x-thrift", ThriftProtocol.Binary)]
    [InlineData("application/vnd.apache.thrift.binary", ThriftProtocol.Binary)]
    [InlineData("application/vnd.apache.thrift.compact", ThriftProtocol.Compact)]
    public async Task JaegerThriftHttp_Batch_Accepted202(string contentType, ThriftProtocol protocol)
    {
        await using var h = await ReceiversHarness.StartAsync();
        var body = JaegerThriftFixture.Batch(protocol, "frontend", null, JaegerThriftDecoderTests.RichSpans);
        using var resp = await h.Http.PostAsync(h.Url("jaeger_thrift_http", "/api/traces"), Body(body, contentType));
        Assert.Equal(HttpStatusCode.Accepted, resp.StatusCode);
        var push = await h.Pusher.NextAsync();
        Assert.Equal(4, push.Trace!.SpanCount());
        Assert.Equal("frontend", push.Trace.ResourceSpans[0].Resource.ServiceName());
    }

    [Fact]
    public async Task JaegerThriftHttp_UnknownContentTypeOrTruncated_400()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using (var resp = await h.Http.PostAsync(h.Url("jaeger_thrift_http", "/api/traces"), Body([1], "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
            Assert.Contains("Unsupported content type", await resp.Content.ReadAsStringAsync());
        }

        var body = JaegerThriftFixture.Batch(ThriftProtocol.Binary, "frontend", null, JaegerThriftDecoderTests.RichSpans);
        using (var resp = await h.Http.PostAsync(h.Url("jaeger_thrift_http", "/api/traces"), Body(body[..^10], "application/x-thrift")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
            Assert.Contains("thrift", await resp.Content.ReadAsStringAsync());
        }

        Assert.Empty(h.Pusher.All);
    }

    [Fact]
    public async Task JaegerGrpc_PostSpans_TranslatedAndEmptyReply()
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var client = h.Grpc("jaeger_grpc");
        var reply = await client.UnaryAsync(ReceiversService.JaegerCollectorService, "PostSpans", JaegerProtoDecoderTests.Request());
        Assert.Empty(reply);
        var push = await h.Pusher.NextAsync();
        Assert.Equal(JaegerThriftDecoderTests.Normalize(JaegerProtoDecoderTests.Expected), TraceDump.Dump(push.Trace!));

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(ReceiversService.JaegerCollectorService, "PostSpans", new byte[] { 0x0a, 0x05, 0x0a }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, ex.StatusCode);
    }

    [Theory]
    [InlineData("jaeger_thrift_compact", ThriftProtocol.Compact)]
    [InlineData("jaeger_thrift_binary", ThriftProtocol.Binary)]
    public async Task JaegerUdp_EmitBatch_Pushed(string key, ThriftProtocol protocol)
    {
        await using var h = await ReceiversHarness.StartAsync();
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        // A malformed datagram first: it is counted and does not stop the loop.
        await udp.SendAsync(new byte[] { 1, 2, 3 }, h.Endpoint(key));
        var datagram = JaegerThriftFixture.EmitBatch(protocol, "frontend", null, JaegerThriftDecoderTests.RichSpans);
        await udp.SendAsync(datagram, h.Endpoint(key));
        var push = await h.Pusher.NextAsync();
        Assert.Equal(TenantIds.SingleTenant, push.Tenant);
        Assert.Equal(4, push.Trace!.SpanCount());
        string transport = key["jaeger_".Length..];
        await ReceiversHarness.WaitUntilAsync(() => h.Counter("rubato_receiver_accepted_spans_total", "jaeger", transport) == 4, "accepted spans metric");
        Assert.Equal(1, h.Counter("rubato_receiver_failed_requests_total", "jaeger", transport, "malformed"));
    }

    [Fact]
    public async Task JaegerUdp_MultitenancyOn_DroppedAndCounted()
    {
        await using var h = await ReceiversHarness.StartAsync(multitenancy: true);
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        var datagram = JaegerThriftFixture.EmitBatch(ThriftProtocol.Compact, "frontend", null, JaegerThriftDecoderTests.RichSpans);
        await udp.SendAsync(datagram, h.Endpoint("jaeger_thrift_compact"));
        await ReceiversHarness.WaitUntilAsync(
            () => h.Counter("rubato_receiver_failed_requests_total", "jaeger", "thrift_compact", "no_tenant") == 1, "no_tenant counter");
        Assert.Equal(4, h.Counter("rubato_receiver_refused_spans_total", "jaeger", "thrift_compact"));
        Assert.Empty(h.Pusher.All);
    }

    [Fact]
    public async Task Stop_ClosesListeners()
    {
        var h = await ReceiversHarness.StartAsync();
        var url = h.Url("zipkin", "/api/v2/spans");
        await h.DisposeAsync();
        Assert.Equal(ServiceState.Terminated, h.Service.State);
        using var http = new HttpClient();
        await Assert.ThrowsAsync<HttpRequestException>(() => http.PostAsync(url, Body(ZipkinV2Json(), "application/json")));
    }

    [Fact]
    public async Task Start_PortInUse_FailsAndReleasesOtherListeners()
    {
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        int taken = ((IPEndPoint)blocker.LocalEndpoint).Port;
        var config = ReceiversHarness.AllOnPortZero();
        config.Zipkin!.Endpoint = $"127.0.0.1:{taken}";
        var service = new ReceiversService(config, new RecordingPusher(), new TenantResolver(false), new MetricsRegistry(), NullLoggerFactory.Instance);
        await Assert.ThrowsAnyAsync<Exception>(() => service.StartAsync(CancellationToken.None));
        Assert.Equal(ServiceState.Failed, service.State);
        await service.StopAsync();
    }

    [Fact]
    public async Task Start_InvalidConfig_FailsNamingKey()
    {
        var config = new ReceiversConfig { Zipkin = new ZipkinReceiverConfig { Endpoint = "nope" } };
        var service = new ReceiversService(config, new RecordingPusher(), new TenantResolver(false), new MetricsRegistry(), NullLoggerFactory.Instance);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => service.StartAsync(CancellationToken.None));
        Assert.Contains("distributor.receivers.zipkin.endpoint", ex.Message);
    }
}

public class OtlpGrpcRetryInfoTests
{
    [Fact]
    public async Task OtlpGrpc_RateLimited_TrailersCarryRetryInfo()
    {
        await using var h = await ReceiversHarness.StartAsync();
        h.Pusher.Respond = n => PushResult.Refused(n, RefusalReason.RateLimited, "slow down");
        var request = ReceiversHarness.OtlpRequest();
        var framed = new byte[5 + request.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(framed.AsSpan(1), request.Length);
        request.CopyTo(framed, 5);
        using var client = new HttpClient();
        using var msg = new HttpRequestMessage(HttpMethod.Post, h.Url("otlp_grpc", "/" + ReceiversService.OtlpTraceService + "/Export"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(framed),
        };
        msg.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        msg.Headers.TryAddWithoutValidation("te", "trailers");
        using var resp = await client.SendAsync(msg);
        await resp.Content.ReadAsByteArrayAsync();
        string? details = resp.TrailingHeaders.TryGetValues("grpc-status-details-bin", out var t) ? t.First()
            : resp.Headers.TryGetValues("grpc-status-details-bin", out var hd) ? hd.First() : null;
        Assert.NotNull(details);
        string padded = details + new string('=', (4 - (details.Length % 4)) % 4);
        byte[] status = Convert.FromBase64String(padded);
        // Status{code=8 (RESOURCE_EXHAUSTED), message, details=[Any{RetryInfo{retry_delay{seconds=5}}}]}
        Assert.Equal([0x08, 0x08], status[..2]);
        string text = System.Text.Encoding.ASCII.GetString(status);
        Assert.Contains("slow down", text);
        Assert.Contains("type.googleapis.com/google.rpc.RetryInfo", text);
        Assert.Equal([0x0a, 0x02, 0x08, 0x05], status[^4..]);
    }
}
