using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;

namespace Rubato.Grpc;

/// <summary>
/// A gRPC client over HTTP/2 cleartext with prior knowledge (h2c). Thread-safe: share one instance (or one
/// handler) per target; concurrent calls multiplex as HTTP/2 streams on one connection.
/// Cancellation via the caller's token surfaces as <see cref="OperationCanceledException"/>; every other failure
/// (non-OK status, deadline, transport error) as <see cref="GrpcException"/>.
/// </summary>
public sealed class GrpcClient : IDisposable
{
    private readonly HttpMessageInvoker _invoker;
    private readonly string _baseAddress;
    private readonly GrpcClientOptions _options;
    private readonly ConcurrentDictionary<(string Service, string Method), Uri> _uris = new();

    /// <summary>A client that owns its own <see cref="SocketsHttpHandler"/>.</summary>
    public GrpcClient(Uri address, GrpcClientOptions? options = null)
        : this(CreateHttpHandler(options), address, options, disposeHandler: true)
    {
    }

    /// <summary>A client over a given handler (e.g. one <see cref="CreateHttpHandler"/> result shared by many
    /// clients). The handler must not force HTTP/1.1 or use a proxy.</summary>
    public GrpcClient(HttpMessageHandler handler, Uri address, GrpcClientOptions? options = null, bool disposeHandler = false)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(address);
        if (!address.IsAbsoluteUri || address.Scheme != Uri.UriSchemeHttp)
        {
            throw new ArgumentException($"gRPC address '{address}' must be an absolute http:// URI (h2c; TLS is not supported)", nameof(address));
        }
        _options = options ?? new GrpcClientOptions();
        _options.Validate();
        _invoker = new HttpMessageInvoker(handler, disposeHandler);
        _baseAddress = address.GetLeftPart(UriPartial.Path).TrimEnd('/');
        Address = address;
    }

    public Uri Address { get; }

    internal GrpcClientOptions Options => _options;

    /// <summary>A handler configured for h2c gRPC: no proxy, no cookies, no redirects, no automatic decompression.</summary>
    public static SocketsHttpHandler CreateHttpHandler(GrpcClientOptions? options = null)
    {
        options ??= new GrpcClientOptions();
        options.Validate();
        return new SocketsHttpHandler
        {
            UseProxy = false, // an http_proxy in the environment must not capture h2c traffic
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            EnableMultipleHttp2Connections = options.EnableMultipleHttp2Connections,
            ConnectTimeout = options.ConnectTimeout,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        };
    }

    /// <summary>One request message, one response message (a new array the caller owns).</summary>
    public async Task<byte[]> UnaryAsync(string service, string method, ReadOnlyMemory<byte> request,
        GrpcCallOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var call = new GrpcClientCall(this, options, cancellationToken);
        await call.StartAsync(GetUri(service, method), request);
        if (!await call.MoveNextAsync())
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"unary call /{service}/{method} returned OK without a response message");
        }
        var reply = call.Current.ToArray();
        if (await call.MoveNextAsync())
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"unary call /{service}/{method} returned more than one response message");
        }
        return reply;
    }

    /// <summary>
    /// One request message, a stream of response messages. Each yielded memory is a pooled buffer valid until the
    /// enumerator moves on (copy it to keep it). Ends normally on status OK; a non-OK status — also one arriving
    /// after some messages — throws <see cref="GrpcException"/> from MoveNextAsync. Disposing the enumerator early
    /// cancels the call on the server.
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> ServerStreamingAsync(string service, string method, ReadOnlyMemory<byte> request,
        GrpcCallOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = new GrpcClientCall(this, options, cancellationToken);
        await call.StartAsync(GetUri(service, method), request);
        while (await call.MoveNextAsync())
        {
            yield return call.Current;
        }
    }

    internal Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        _invoker.SendAsync(request, cancellationToken);

    private Uri GetUri(string service, string method)
    {
        if (_uris.TryGetValue((service, method), out var uri))
        {
            return uri;
        }
        ArgumentException.ThrowIfNullOrWhiteSpace(service);
        ArgumentException.ThrowIfNullOrWhiteSpace(method);
        if (_uris.Count > 10_000)
        {
            _uris.Clear(); // bound the cache if a caller builds names dynamically
        }
        return _uris[(service, method)] = new Uri(_baseAddress + "/" + service + "/" + method, UriKind.Absolute);
    }

    public void Dispose() => _invoker.Dispose();
}
