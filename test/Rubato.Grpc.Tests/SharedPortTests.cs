using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace Rubato.Grpc.Tests;

/// <summary>
/// Tempo's port 3200 serves REST over HTTP/1.1 and (stream_over_http_enabled) gRPC from Grafana on the same
/// cleartext port. These tests pin down what plain Kestrel does and what <see cref="GrpcKestrel.ListenHttp1AndH2c"/> adds.
/// </summary>
public sealed class SharedPortTests
{
    private const string Service = "tempopb.StreamingQuerier";

    private static Task<GrpcTestHost> StartAsync(ListenMode mode) => GrpcTestHost.StartAsync(e =>
    {
        e.MapGet("/api/echo", (HttpContext c) => Results.Text($"rest over {c.Request.Protocol} scheme {c.Request.Scheme}"));
        e.MapGrpcServerStreaming(Service, "Search", async (ctx, req, writer) =>
        {
            await writer.WriteAsync(req.ToArray());
            await writer.WriteAsync(System.Text.Encoding.ASCII.GetBytes(ctx.HttpContext.Request.Protocol + " " + ctx.HttpContext.Request.Scheme));
        });
    }, mode);

    private static async Task<string> GetHttp11Async(Uri address)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(address, "/api/echo"))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        Assert.Equal(HttpVersion.Version11, response.Version);
        return await response.Content.ReadAsStringAsync();
    }

    private static async Task<List<string>> StreamAsync(Uri address)
    {
        using var client = new GrpcClient(address);
        var messages = new List<string>();
        await foreach (var m in client.ServerStreamingAsync(Service, "Search", "q"u8.ToArray(), new GrpcCallOptions { Timeout = TimeSpan.FromSeconds(20) }))
        {
            messages.Add(System.Text.Encoding.ASCII.GetString(m.Span));
        }
        return messages;
    }

    [Fact]
    public async Task PlainKestrelHttp1AndHttp2_CleartextH2cClient_Fails()
    {
        // Kestrel without TLS picks HTTP/1.1 for Http1AndHttp2 (no ALPN to negotiate with): prior-knowledge h2c fails.
        await using var host = await StartAsync(ListenMode.PlainHttp1AndHttp2);

        Assert.Equal("rest over HTTP/1.1 scheme http", await GetHttp11Async(host.Address));
        var ex = await Assert.ThrowsAsync<GrpcException>(() => StreamAsync(host.Address));
        Assert.NotEqual(GrpcStatusCode.OK, ex.StatusCode);
    }

    [Fact]
    public async Task ListenHttp1AndH2c_RestOverHttp11AndGrpcOverH2c_BothServedOnOnePort()
    {
        await using var host = await StartAsync(ListenMode.Http1AndH2c);

        // Interleave both kinds, on fresh and reused connections.
        for (var round = 0; round < 3; round++)
        {
            Assert.Equal("rest over HTTP/1.1 scheme http", await GetHttp11Async(host.Address));
            Assert.Equal(["q", "HTTP/2 http"], await StreamAsync(host.Address));
        }
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
            i % 2 == 0 ? await GetHttp11Async(host.Address) : string.Join(",", await StreamAsync(host.Address))));
        Assert.Equal(4, concurrent.Count(s => s == "rest over HTTP/1.1 scheme http"));
        Assert.Equal(4, concurrent.Count(s => s == "q,HTTP/2 http"));
    }

    [Fact]
    public async Task ListenHttp1AndH2c_GrpcMethodOverHttp11_Http426WithInternalStatus()
    {
        await using var host = await StartAsync(ListenMode.Http1AndH2c);
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(host.Address, $"/{Service}/Search"))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(GrpcEndToEndTests.Frame([1])),
        };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.UpgradeRequired, response.StatusCode);
        Assert.Equal("13", response.Headers.GetValues("grpc-status").Single());
    }

    [Fact]
    public async Task ListenHttp1AndH2c_ClientSendsPrefaceSlowly_StillDetected()
    {
        await using var host = await StartAsync(ListenMode.Http1AndH2c);
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, host.Address.Port);
        var stream = socket.GetStream();
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

        // Byte by byte: the middleware must keep waiting while the bytes match the preface.
        foreach (var b in preface)
        {
            await stream.WriteAsync(new[] { b });
            await stream.FlushAsync();
        }
        await stream.WriteAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }); // empty SETTINGS frame

        // An HTTP/2 server answers with its own SETTINGS frame (type 4) first.
        var header = new byte[9];
        await stream.ReadExactlyAsync(header).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(4, header[3]);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n", "Http1")]
    [InlineData("P", null)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n", null)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "Http2")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\u0004", "Http2")]
    [InlineData("POST /x HTTP/1.1\r\n", "Http1")]
    [InlineData("PRI * HTTP/1.1\r\n", "Http1")]
    public void Classify_FirstBytes_PicksProtocolOrWaits(string start, string? expected)
    {
        var result = GrpcKestrel.Classify(new System.Buffers.ReadOnlySequence<byte>(System.Text.Encoding.Latin1.GetBytes(start)));

        Assert.Equal(expected, result?.ToString());
    }
}
