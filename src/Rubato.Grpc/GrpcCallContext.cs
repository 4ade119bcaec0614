using System.Net;
using Microsoft.AspNetCore.Http;

namespace Rubato.Grpc;

/// <summary>Handler for a unary method: one request message in, one response message out.
/// <paramref name="request"/> is a pooled buffer valid until the returned task completes.</summary>
public delegate ValueTask<ReadOnlyMemory<byte>> GrpcUnaryHandler(GrpcCallContext context, ReadOnlyMemory<byte> request);

/// <summary>Handler for a server-streaming method: one request message in, any number of messages written to
/// <paramref name="responses"/>. <paramref name="request"/> is valid until the returned task completes.</summary>
public delegate ValueTask GrpcServerStreamingHandler(GrpcCallContext context, ReadOnlyMemory<byte> request, GrpcStreamWriter responses);

/// <summary>
/// What a handler knows about its call. Created per call on the request's thread; the handler may use it from any
/// one task at a time.
/// </summary>
public sealed class GrpcCallContext
{
    private List<KeyValuePair<string, string>>? _trailers;

    internal GrpcCallContext(HttpContext httpContext, string service, string method, CancellationToken cancellationToken, DateTime? deadline)
    {
        HttpContext = httpContext;
        Service = service;
        Method = method;
        CancellationToken = cancellationToken;
        Deadline = deadline;
    }

    /// <summary>The underlying ASP.NET Core request, for anything not surfaced here.</summary>
    public HttpContext HttpContext { get; }

    /// <summary>Fully qualified service name, e.g. <c>tempopb.StreamingQuerier</c>.</summary>
    public string Service { get; }

    public string Method { get; }

    /// <summary>Fires when the client disconnects or cancels, or when the <c>grpc-timeout</c> deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>UTC deadline from <c>grpc-timeout</c>, or null when the client set none.</summary>
    public DateTime? Deadline { get; }

    /// <summary>Request metadata (HTTP/2 headers); case-insensitive.</summary>
    public IHeaderDictionary RequestHeaders => HttpContext.Request.Headers;

    /// <summary>The first value of a metadata header (case-insensitive), or null.</summary>
    public string? GetHeader(string name)
    {
        var values = HttpContext.Request.Headers[name];
        return values.Count == 0 ? null : values[0];
    }

    public IPAddress? RemoteIpAddress => HttpContext.Connection.RemoteIpAddress;

    /// <summary>"address:port" of the client, as gRPC's peer string (without the ipv4:/ipv6: prefix).</summary>
    public string Peer
    {
        get
        {
            var c = HttpContext.Connection;
            return c.RemoteIpAddress is null ? "unknown" : new IPEndPoint(c.RemoteIpAddress, c.RemotePort).ToString();
        }
    }

    /// <summary>Adds response trailing metadata, sent with the status when the call ends.</summary>
    public void AddResponseTrailer(string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        (_trailers ??= []).Add(new(name, value));
    }

    internal List<KeyValuePair<string, string>>? ResponseTrailers => _trailers;
}
