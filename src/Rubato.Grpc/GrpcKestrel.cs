using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Rubato.Grpc;

/// <summary>
/// Kestrel listen endpoints for gRPC over cleartext HTTP/2 (h2c with prior knowledge).
/// </summary>
/// <remarks>
/// Kestrel (through .NET 10) cannot serve HTTP/1.1 and h2c on one cleartext port by itself: with
/// <see cref="HttpProtocols.Http1AndHttp2"/> and no TLS it always selects HTTP/1.1 (ALPN is the only negotiation it
/// knows), and an h2c client fails. <see cref="ListenHttp1AndH2c"/> fixes that with <see cref="UseH2cDetection"/>,
/// a connection middleware that peeks the HTTP/2 client preface.
/// </remarks>
public static class GrpcKestrel
{
    /// <summary>An HTTP/2-only cleartext endpoint (gRPC only; HTTP/1.1 clients are refused).</summary>
    public static void ListenH2c(this KestrelServerOptions kestrel, IPEndPoint endpoint, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        kestrel.Listen(endpoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            configure?.Invoke(listen);
        });
    }

    /// <summary>
    /// One cleartext port for HTTP/1.1 (REST) and h2c prior-knowledge HTTP/2 (gRPC), e.g. Tempo's 3200 with
    /// <c>stream_over_http_enabled</c>. Connections whose first 24 bytes are the HTTP/2 preface are served as
    /// HTTP/2, all others as HTTP/1.1. (No <c>Upgrade: h2c</c>; gRPC clients never use it.)
    /// </summary>
    public static void ListenHttp1AndH2c(this KestrelServerOptions kestrel, IPEndPoint endpoint, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        // The marker makes Kestrel treat an h2c connection as "negotiated h2"; Kestrel then checks the request's
        // :scheme ("http") against the connection's ("https") and would reset the stream unless alternate schemes
        // are allowed. With it, Request.Scheme is what the client sent.
        kestrel.AllowAlternateSchemes = true;
        kestrel.Listen(endpoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            configure?.Invoke(listen);
            listen.UseH2cDetection();
        });
    }

    /// <summary>
    /// Adds the preface-peeking middleware to a cleartext <see cref="HttpProtocols.Http1AndHttp2"/> endpoint. Add it
    /// last (after any other connection middleware). It consumes nothing: Kestrel's HTTP parser sees every byte.
    /// </summary>
    public static ListenOptions UseH2cDetection(this ListenOptions listen, TimeSpan? prefaceTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var timeout = prefaceTimeout ?? TimeSpan.FromSeconds(10);
        listen.Use(next => connection => DetectAsync(connection, next, timeout));
        return listen;
    }

    /// <summary>The HTTP/2 client connection preface (RFC 9113 §3.4).</summary>
    internal static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>
    /// Outcome of comparing the first bytes with the preface: Http2 (all 24 match), Http1 (a byte differs; an
    /// HTTP/1.x request line differs at its first byte), or null (a matching prefix, need more bytes).
    /// </summary>
    internal static HttpProtocols? Classify(ReadOnlySequence<byte> start)
    {
        Span<byte> head = stackalloc byte[24];
        var n = (int)Math.Min(start.Length, head.Length);
        start.Slice(0, n).CopyTo(head);
        if (!Preface[..n].SequenceEqual(head[..n]))
        {
            return HttpProtocols.Http1;
        }
        return n == Preface.Length ? HttpProtocols.Http2 : null;
    }

    // Runs on the connection's accept task before Kestrel's HTTP connection handler.
    private static async Task DetectAsync(ConnectionContext connection, ConnectionDelegate next, TimeSpan timeout)
    {
        if (connection.Features.Get<ITlsConnectionFeature>() is null)
        {
            var input = connection.Transport.Input;
            using var cts = new CancellationTokenSource(timeout);
            HttpProtocols? protocol = null;
            try
            {
                while (protocol is null)
                {
                    var result = await input.ReadAsync(cts.Token);
                    protocol = Classify(result.Buffer);
                    if (protocol is not null || result.IsCompleted)
                    {
                        // Consume and examine nothing, so Kestrel's first read returns these bytes at once.
                        input.AdvanceTo(result.Buffer.Start);
                        protocol ??= HttpProtocols.Http1;
                        break;
                    }
                    input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                }
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                connection.Abort(new ConnectionAbortedException("no complete request start within the preface timeout"));
                return;
            }
            if (protocol == HttpProtocols.Http2)
            {
                // Kestrel picks HTTP/2 on an Http1AndHttp2 endpoint only when a TLS feature reports ALPN "h2".
                var marker = new H2cPriorKnowledgeFeature();
                connection.Features.Set<ITlsConnectionFeature>(marker);
                connection.Features.Set<ITlsApplicationProtocolFeature>(marker);
            }
        }
        await next(connection);
    }

    /// <summary>
    /// Marks a cleartext connection that began with the HTTP/2 preface. It carries no certificate: it exists only so
    /// that Kestrel's protocol selection reads "h2".
    /// </summary>
    public sealed class H2cPriorKnowledgeFeature : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public X509Certificate2? ClientCertificate { get => null; set => throw new NotSupportedException("h2c connections have no TLS"); }

        private static readonly byte[] H2 = "h2"u8.ToArray();

        public ReadOnlyMemory<byte> ApplicationProtocol => H2;

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);
    }
}
