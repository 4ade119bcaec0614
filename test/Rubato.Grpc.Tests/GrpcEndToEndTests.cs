using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Rubato.Grpc.Tests;

public sealed class GrpcEndToEndTests
{
    private const string Service = "rubato.test.Echo";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static void MapEcho(IEndpointRouteBuilder e, GrpcServerOptions? options = null)
    {
        e.MapGrpcUnary(Service, "Echo", (ctx, req) => ValueTask.FromResult<ReadOnlyMemory<byte>>(req.ToArray()), options);
    }

    private static Uri AddressOf(GrpcTestHost host) => host.Address;

    [Fact]
    public async Task UnaryAsync_SmallMessage_RoundTripsBytesAndMetadata()
    {
        string? seenTenant = null;
        string? seenPeer = null;
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Echo", (ctx, req) =>
        {
            seenTenant = ctx.GetHeader("X-Scope-OrgID");
            seenPeer = ctx.Peer;
            var reply = new byte[req.Length + 1];
            req.Span.CopyTo(reply);
            reply[^1] = 0xFF;
            return ValueTask.FromResult<ReadOnlyMemory<byte>>(reply);
        }));
        using var client = new GrpcClient(host.Address);

        var reply = await client.UnaryAsync(Service, "Echo", new byte[] { 1, 2, 3 },
            new GrpcCallOptions { Headers = [new("X-Scope-OrgID", "tenant-7")] });

        Assert.Equal(new byte[] { 1, 2, 3, 0xFF }, reply);
        Assert.Equal("tenant-7", seenTenant);
        Assert.StartsWith("127.0.0.1:", seenPeer);
    }

    [Fact]
    public async Task UnaryAsync_EmptyMessage_RoundTrips()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var client = new GrpcClient(host.Address);

        var reply = await client.UnaryAsync(Service, "Echo", ReadOnlyMemory<byte>.Empty);

        Assert.Empty(reply);
    }

    [Fact]
    public async Task UnaryAsync_OneMebibyteMessage_RoundTrips()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var client = new GrpcClient(host.Address);
        var message = new byte[1024 * 1024];
        new Random(42).NextBytes(message);

        var reply = await client.UnaryAsync(Service, "Echo", message);

        Assert.Equal(message, reply);
    }

    [Fact]
    public async Task UnaryAsync_MessageAboveKestrelBodyLimit_AcceptedWhenGrpcLimitAllows()
    {
        // Kestrel caps request bodies at 30 MB by default; the gRPC per-message limit takes its place.
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Size",
            (ctx, req) => ValueTask.FromResult<ReadOnlyMemory<byte>>(BitConverter.GetBytes(req.Length)),
            new GrpcServerOptions { MaxReceiveMessageSize = 40 * 1024 * 1024 }));
        using var client = new GrpcClient(host.Address);

        var reply = await client.UnaryAsync(Service, "Size", new byte[32 * 1024 * 1024]);

        Assert.Equal(32 * 1024 * 1024, BitConverter.ToInt32(reply));
    }

    [Fact]
    public async Task UnaryAsync_GzipBothWays_RoundTripsAndUsesGzipOnTheWire()
    {
        string? requestEncoding = null;
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Echo", (ctx, req) =>
        {
            requestEncoding = ctx.GetHeader("grpc-encoding");
            return ValueTask.FromResult<ReadOnlyMemory<byte>>(req.ToArray());
        }, new GrpcServerOptions { EnableResponseCompression = true }));
        using var client = new GrpcClient(host.Address);
        var message = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("span name service.name=rubato ", 5000)));

        var reply = await client.UnaryAsync(Service, "Echo", message, new GrpcCallOptions { CompressRequest = true });

        Assert.Equal(message, reply);
        Assert.Equal("gzip", requestEncoding);

        // The response really is gzip: look at it with a raw HTTP/2 request.
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());
        using var response = await raw.SendAsync(RawRequest(host.Address, $"/{Service}/Echo", Frame(message), acceptEncoding: "gzip"));
        Assert.Equal("gzip", response.Headers.GetValues("grpc-encoding").Single());
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(1, body[0]); // compressed flag
        Assert.True(body.Length < message.Length / 10, $"compressed body {body.Length} bytes");
        using var gz = new GZipStream(new MemoryStream(body, 5, body.Length - 5), CompressionMode.Decompress);
        using var plain = new MemoryStream();
        await gz.CopyToAsync(plain);
        Assert.Equal(message, plain.ToArray());
    }

    [Fact]
    public async Task UnaryAsync_ResponseCompressionDisabledByDefault_ServerAnswersIdentity()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());

        using var response = await raw.SendAsync(RawRequest(host.Address, $"/{Service}/Echo", Frame([7, 7, 7]), acceptEncoding: "gzip"));
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.False(response.Headers.Contains("grpc-encoding"));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 3, 7, 7, 7 }, body);
        Assert.Equal("0", response.TrailingHeaders.GetValues("grpc-status").Single());
    }

    [Fact]
    public async Task UnaryAsync_Deadline_HandlerTokenFiresAndClientGetsDeadlineExceeded()
    {
        var handlerCancelled = new TaskCompletionSource<DateTime?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Slow", async (ctx, req) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                handlerCancelled.TrySetResult(ctx.Deadline);
                throw;
            }
            return req.ToArray();
        }));
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() =>
            // Long enough for the request to reach the handler even on a loaded machine; the handler never finishes by itself.
            client.UnaryAsync(Service, "Slow", new byte[] { 1 }, new GrpcCallOptions { Timeout = TimeSpan.FromMilliseconds(1500) }));

        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.StatusCode);
        var deadline = await handlerCancelled.Task.WaitAsync(Wait);
        Assert.NotNull(deadline);
    }

    [Fact]
    public async Task UnaryAsync_AbsoluteDeadline_SentAsTimeoutAndSeenByHandler()
    {
        DateTime? seen = null;
        string? wire = null;
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Echo", (ctx, req) =>
        {
            seen = ctx.Deadline;
            wire = ctx.GetHeader("grpc-timeout");
            return ValueTask.FromResult<ReadOnlyMemory<byte>>(req.ToArray());
        }));
        using var client = new GrpcClient(host.Address);
        var deadline = DateTime.UtcNow.AddMinutes(5);

        await client.UnaryAsync(Service, "Echo", new byte[] { 1 }, new GrpcCallOptions { Deadline = deadline, Timeout = TimeSpan.FromHours(1) });

        Assert.NotNull(wire);
        Assert.NotNull(seen);
        Assert.InRange(seen.Value, deadline.AddSeconds(-30), deadline.AddSeconds(1)); // the earlier of the two wins
    }

    [Fact]
    public async Task UnaryAsync_NoDeadline_HandlerSeesNone()
    {
        DateTime? seen = DateTime.MinValue;
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Echo", (ctx, req) =>
        {
            seen = ctx.Deadline;
            return ValueTask.FromResult<ReadOnlyMemory<byte>>(req.ToArray());
        }));
        using var client = new GrpcClient(host.Address);

        await client.UnaryAsync(Service, "Echo", new byte[] { 1 });

        Assert.Null(seen);
    }

    [Fact]
    public async Task UnaryAsync_MultipleConnectionsEnabledAndSharedHandler_Works()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var handler = GrpcClient.CreateHttpHandler(new GrpcClientOptions { EnableMultipleHttp2Connections = true });
        using var a = new GrpcClient(handler, host.Address);
        using var b = new GrpcClient(handler, host.Address);

        var replies = await Task.WhenAll(Enumerable.Range(0, 32).Select(i => (i % 2 == 0 ? a : b).UnaryAsync(Service, "Echo", new[] { (byte)i })));

        Assert.Equal(Enumerable.Range(0, 32).Select(i => (byte)i), replies.Select(r => r.Single()));
    }

    [Fact]
    public async Task UnaryAsync_ServerDeadlineShorterThanClientPatience_ServerAnswersDeadlineExceeded()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Slow", async (ctx, req) =>
        {
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            return req.ToArray();
        }));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());
        var request = RawRequest(host.Address, $"/{Service}/Slow", Frame([1]));
        request.Headers.TryAddWithoutValidation("grpc-timeout", "100m");

        using var response = await raw.SendAsync(request).WaitAsync(Wait);

        Assert.Equal("4", response.Headers.GetValues("grpc-status").Single());
        Assert.Equal("Deadline exceeded", response.Headers.GetValues("grpc-message").Single());
    }

    [Fact]
    public async Task UnaryAsync_ClientCancels_HandlerTokenFiresAndCallerSeesCancellation()
    {
        var handlerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlerCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Slow", async (ctx, req) =>
        {
            handlerStarted.SetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                handlerCancelled.SetResult();
                throw;
            }
            return req.ToArray();
        }));
        using var client = new GrpcClient(host.Address);
        using var cts = new CancellationTokenSource();

        var call = client.UnaryAsync(Service, "Slow", new byte[] { 1 }, cancellationToken: cts.Token);
        await handlerStarted.Task.WaitAsync(Wait);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await handlerCancelled.Task.WaitAsync(Wait);
    }

    [Theory]
    [InlineData(GrpcStatusCode.NotFound, "trace 0af7651916cd43dd8448eb211c80319c not found")]
    [InlineData(GrpcStatusCode.InvalidArgument, "bad % value: 100%\nline two\r\ttab")]
    [InlineData(GrpcStatusCode.FailedPrecondition, "unicode: ünïcödé — 日本語 🚀")]
    [InlineData(GrpcStatusCode.Unauthenticated, "")]
    public async Task UnaryAsync_HandlerThrowsGrpcException_ClientGetsStatusAndExactMessage(GrpcStatusCode code, string message)
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Fail",
            (ctx, req) => throw new GrpcException(code, message)));
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Fail", new byte[] { 1 }));

        Assert.Equal(code, ex.StatusCode);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public async Task UnaryAsync_HandlerThrowsOtherException_InternalWithSafeMessage()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Boom",
            (ctx, req) => throw new InvalidOperationException("secret connection string")));
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Boom", new byte[] { 1 }));

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
        Assert.DoesNotContain("secret", ex.Message);
        Assert.Equal("Exception was thrown by handler.", ex.Message);
    }

    [Fact]
    public async Task UnaryAsync_RequestLargerThanServerMax_ResourceExhausted()
    {
        var handlerCalls = 0;
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Echo", (ctx, req) =>
        {
            Interlocked.Increment(ref handlerCalls);
            return ValueTask.FromResult<ReadOnlyMemory<byte>>(req.ToArray());
        }, new GrpcServerOptions { MaxReceiveMessageSize = 1000 }));
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Echo", new byte[1001]));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal("received message larger than max (1001 vs. 1000)", ex.Message);
        Assert.Equal(0, handlerCalls);
        Assert.Single(await client.UnaryAsync(Service, "Echo", new byte[] { 5 })); // the connection is still fine
    }

    [Fact]
    public async Task UnaryAsync_GzipRequestInflatingPastServerMax_ResourceExhausted()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e, new GrpcServerOptions { MaxReceiveMessageSize = 64 * 1024 }));
        using var client = new GrpcClient(host.Address);

        // 1 MiB of zeros compresses to about 1 KiB: small on the wire, too large once inflated.
        var ex = await Assert.ThrowsAsync<GrpcException>(() =>
            client.UnaryAsync(Service, "Echo", new byte[1024 * 1024], new GrpcCallOptions { CompressRequest = true }));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Contains("after decompression", ex.Message);
    }

    [Fact]
    public async Task UnaryAsync_ResponseLargerThanClientMax_ResourceExhausted()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var client = new GrpcClient(host.Address, new GrpcClientOptions { MaxReceiveMessageSize = 100 });

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Echo", new byte[101]));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task UnaryAsync_UnknownMethodWithFallback_Unimplemented()
    {
        await using var host = await GrpcTestHost.StartAsync(e =>
        {
            MapEcho(e);
            e.MapGrpcFallback();
        });
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Nope", new byte[] { 1 }));

        Assert.Equal(GrpcStatusCode.Unimplemented, ex.StatusCode);
        Assert.Contains($"/{Service}/Nope", ex.Message);
    }

    [Fact]
    public async Task UnaryAsync_UnknownMethodWithoutFallback_UnimplementedFromHttp404()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync("other.Service", "Nope", new byte[] { 1 }));

        Assert.Equal(GrpcStatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task Fallback_NonGrpcRequest_Http404()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcFallback());
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(host.Address, "/x/y"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StringContent("{}", Encoding.UTF8, "application/json"),
        };

        using var response = await raw.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Server_WrongContentType_Http415()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());
        var request = RawRequest(host.Address, $"/{Service}/Echo", Frame([1]));
        request.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await raw.SendAsync(request);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Server_GrpcWebContentType_Http415()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());
        var request = RawRequest(host.Address, $"/{Service}/Echo", Frame([1]));
        request.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/grpc-web");

        using var response = await raw.SendAsync(request);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Server_UnsupportedRequestEncoding_UnimplementedNamingTheEncoding()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());
        var request = RawRequest(host.Address, $"/{Service}/Echo", Frame([1]));
        request.Headers.TryAddWithoutValidation("grpc-encoding", "snappy");

        using var response = await raw.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12", response.Headers.GetValues("grpc-status").Single());
        Assert.Contains("snappy", GrpcMessageEncoding.Decode(response.Headers.GetValues("grpc-message").Single()));
        Assert.Equal("identity,gzip", response.Headers.GetValues("grpc-accept-encoding").Single());
    }

    [Fact]
    public async Task Server_TwoRequestMessagesForUnary_Internal()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());

        using var response = await raw.SendAsync(RawRequest(host.Address, $"/{Service}/Echo", [.. Frame([1]), .. Frame([2])]));

        Assert.Equal("13", response.Headers.GetValues("grpc-status").Single());
    }

    [Fact]
    public async Task ServerStreamingAsync_ThousandMessages_ArriveInOrder()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcServerStreaming(Service, "Count", async (ctx, req, writer) =>
        {
            var count = BitConverter.ToInt32(req.Span);
            for (var i = 0; i < count; i++)
            {
                await writer.WriteAsync(BitConverter.GetBytes(i));
            }
        }));
        using var client = new GrpcClient(host.Address);

        var received = new List<int>();
        await foreach (var message in client.ServerStreamingAsync(Service, "Count", BitConverter.GetBytes(1000)))
        {
            received.Add(BitConverter.ToInt32(message.Span));
        }

        Assert.Equal(Enumerable.Range(0, 1000), received);
    }

    [Fact]
    public async Task ServerStreamingAsync_ErrorMidStream_MessagesThenStatus()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcServerStreaming(Service, "Count", async (ctx, req, writer) =>
        {
            for (var i = 0; i < 3; i++)
            {
                await writer.WriteAsync(BitConverter.GetBytes(i));
            }
            throw new GrpcException(GrpcStatusCode.ResourceExhausted, "too many traces\nstopped");
        }));
        using var client = new GrpcClient(host.Address);

        var received = new List<int>();
        var ex = await Assert.ThrowsAsync<GrpcException>(async () =>
        {
            await foreach (var message in client.ServerStreamingAsync(Service, "Count", new byte[] { 0 }))
            {
                received.Add(BitConverter.ToInt32(message.Span));
            }
        });

        Assert.Equal([0, 1, 2], received);
        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal("too many traces\nstopped", ex.Message);
    }

    [Fact]
    public async Task ServerStreamingAsync_MessagesArriveBeforeStreamEnds()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcServerStreaming(Service, "Held", async (ctx, req, writer) =>
        {
            await writer.WriteAsync(new byte[] { 1 });
            await release.Task.WaitAsync(ctx.CancellationToken);
            await writer.WriteAsync(new byte[] { 2 });
        }));
        using var client = new GrpcClient(host.Address);

        await using var e = client.ServerStreamingAsync(Service, "Held", new byte[] { 0 }).GetAsyncEnumerator();
        Assert.True(await e.MoveNextAsync().AsTask().WaitAsync(Wait)); // flushed while the handler still runs
        Assert.Equal(1, e.Current.Span[0]);
        release.SetResult();
        Assert.True(await e.MoveNextAsync());
        Assert.Equal(2, e.Current.Span[0]);
        Assert.False(await e.MoveNextAsync());
    }

    [Fact]
    public async Task ServerStreamingAsync_ConsumerStopsEarly_HandlerIsCancelled()
    {
        var handlerCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcServerStreaming(Service, "Endless", async (ctx, req, writer) =>
        {
            using var reg = ctx.CancellationToken.Register(() => handlerCancelled.TrySetResult());
            while (true)
            {
                await writer.WriteAsync(new byte[100]);
            }
        }));
        using var client = new GrpcClient(host.Address);

        var n = 0;
        await foreach (var _ in client.ServerStreamingAsync(Service, "Endless", new byte[] { 0 }))
        {
            if (++n == 10)
            {
                break;
            }
        }

        await handlerCancelled.Task.WaitAsync(Wait);
    }

    [Fact]
    public async Task ServerStreamingAsync_GzipResponses_Decoded()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcServerStreaming(Service, "Text", async (ctx, req, writer) =>
        {
            for (var i = 0; i < 50; i++)
            {
                await writer.WriteAsync(Encoding.UTF8.GetBytes($"message {i} " + new string('x', 1000)));
            }
        }, new GrpcServerOptions { EnableResponseCompression = true }));
        using var client = new GrpcClient(host.Address);

        var received = new List<string>();
        await foreach (var m in client.ServerStreamingAsync(Service, "Text", new byte[] { 0 }, new GrpcCallOptions { CompressRequest = true }))
        {
            received.Add(Encoding.UTF8.GetString(m.Span));
        }

        Assert.Equal(50, received.Count);
        Assert.Equal("message 49 " + new string('x', 1000), received[^1]);
    }

    [Fact]
    public async Task UnaryAsync_64ConcurrentCalls_MultiplexOnOneConnection()
    {
        var connections = new ConcurrentDictionary<string, byte>();
        var inFlight = 0;
        var maxInFlight = 0;
        var allIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Gate", async (ctx, req) =>
        {
            connections.TryAdd(ctx.HttpContext.Connection.Id, 0);
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref maxInFlight, now);
            if (now == 64)
            {
                allIn.TrySetResult();
            }
            await allIn.Task.WaitAsync(ctx.CancellationToken); // every call waits until all 64 are running at once
            Interlocked.Decrement(ref inFlight);
            return req.ToArray();
        }));
        using var client = new GrpcClient(host.Address);

        var calls = Enumerable.Range(0, 64).Select(i => client.UnaryAsync(Service, "Gate", BitConverter.GetBytes(i),
            new GrpcCallOptions { Timeout = Wait })).ToArray();
        var replies = await Task.WhenAll(calls);

        Assert.Equal(Enumerable.Range(0, 64), replies.Select(r => BitConverter.ToInt32(r)));
        Assert.Equal(64, maxInFlight);
        Assert.Single(connections);
    }

    [Fact]
    public async Task UnaryAsync_ServerNotListening_Unavailable()
    {
        int port;
        using (var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }
        using var client = new GrpcClient(new Uri($"http://127.0.0.1:{port}"));

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Echo", new byte[] { 1 }));

        Assert.Equal(GrpcStatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task Server_OptionsFromDependencyInjection_Applied()
    {
        await using var host = await GrpcTestHost.StartAsync(e => MapEcho(e),
            services: s => s.Configure<GrpcServerOptions>(o => o.MaxReceiveMessageSize = 10));
        using var client = new GrpcClient(host.Address);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Service, "Echo", new byte[11]));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task Server_ResponseTrailerFromHandler_Sent()
    {
        await using var host = await GrpcTestHost.StartAsync(e => e.MapGrpcUnary(Service, "Echo", (ctx, req) =>
        {
            ctx.AddResponseTrailer("x-rubato-inspected-bytes", "42");
            return ValueTask.FromResult<ReadOnlyMemory<byte>>(req.ToArray());
        }));
        using var raw = new HttpClient(GrpcClient.CreateHttpHandler());

        using var response = await raw.SendAsync(RawRequest(host.Address, $"/{Service}/Echo", Frame([1])));
        await response.Content.ReadAsByteArrayAsync();

        Assert.Equal("42", response.TrailingHeaders.GetValues("x-rubato-inspected-bytes").Single());
    }

    internal static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }

    internal static byte[] Frame(byte[] payload)
    {
        var frame = new byte[5 + payload.Length];
        GrpcFraming.WriteHeader(frame, false, payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    internal static HttpRequestMessage RawRequest(Uri address, string path, byte[] body, string? acceptEncoding = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(address, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (acceptEncoding is not null)
        {
            request.Headers.TryAddWithoutValidation("grpc-accept-encoding", acceptEncoding);
        }
        return request;
    }
}
