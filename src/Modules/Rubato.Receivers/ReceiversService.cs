using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Services;
using Rubato.Grpc;
using Rubato.Receivers.Wire;

namespace Rubato.Receivers;

/// <summary>
/// Runs every enabled receiver: one Kestrel server listening on all TCP endpoints (OTLP gRPC and Jaeger gRPC as
/// cleartext HTTP/2; OTLP/HTTP, Zipkin and Jaeger thrift_http as HTTP/1.1) plus one <see cref="UdpReceiver"/> per
/// Jaeger agent port. Each route answers only on its own listener: connections are tagged with their receiver key
/// by Kestrel connection middleware, and a request whose route belongs to another receiver gets 404.
/// </summary>
/// <remarks>
/// Lifecycle (<see cref="BasicService"/>): Starting binds everything (port 0 picks a free port; see
/// <see cref="BoundEndpoints"/>); Stopping closes the listeners and waits for in-flight requests and queued
/// datagrams. Requests run on Kestrel's thread pool threads.
/// </remarks>
public sealed class ReceiversService : BasicService
{
    private readonly Host _host;

    public ReceiversService(ReceiversConfig config, ITracePusher pusher, TenantResolver tenants, MetricsRegistry metrics,
        ILoggerFactory loggerFactory, TimeSpan? retryAfterOnResourceExhausted = null)
        : this(new Host(config, pusher, tenants, metrics, loggerFactory, retryAfterOnResourceExhausted ?? TimeSpan.FromSeconds(5)))
    {
    }

    private ReceiversService(Host host)
        : base("receivers", host.StartAsync, null, host.StopAsync)
    {
        _host = host;
    }

    /// <summary>
    /// The addresses actually bound, keyed by <see cref="ReceiverKeys"/> (<c>otlp_grpc</c>, <c>otlp_http</c>,
    /// <c>zipkin</c>, <c>jaeger_grpc</c>, <c>jaeger_thrift_http</c>, <c>jaeger_thrift_compact</c>,
    /// <c>jaeger_thrift_binary</c>). Filled when the service is Running.
    /// </summary>
    public IReadOnlyDictionary<string, IPEndPoint> BoundEndpoints => _host.Bound;

    public const string OtlpTraceService = "opentelemetry.proto.collector.trace.v1.TraceService";
    public const string JaegerCollectorService = "jaeger.api_v2.CollectorService";

    private sealed record ReceiverTag(string Key);

    private sealed class Host
    {
        private const string ConnectionKeyItem = "rubato.receiver";

        private readonly ReceiversConfig _config;
        private readonly ReceiverHandlers _handlers;
        private readonly ReceiverMetrics _metrics;
        private readonly ILoggerFactory _loggerFactory;
        private readonly ILogger _logger;
        private readonly Dictionary<string, IPEndPoint> _bound = new(StringComparer.Ordinal);
        private readonly List<UdpReceiver> _udp = [];
        private WebApplication? _app;

        public Host(ReceiversConfig config, ITracePusher pusher, TenantResolver tenants, MetricsRegistry metrics, ILoggerFactory loggerFactory, TimeSpan retryAfter)
        {
            _config = config;
            _loggerFactory = loggerFactory;
            _logger = loggerFactory.CreateLogger("Rubato.Receivers");
            _metrics = new ReceiverMetrics(metrics);
            _handlers = new ReceiverHandlers(pusher, tenants, _metrics, _logger, retryAfter);
        }

        public IReadOnlyDictionary<string, IPEndPoint> Bound => _bound;

        public async Task StartAsync(CancellationToken ct)
        {
            var validation = new Rubato.Common.Configuration.ConfigValidation();
            _config.Validate("distributor.receivers", validation);
            if (validation.HasErrors)
            {
                throw new InvalidOperationException("invalid receivers config: " + string.Join("; ", validation.Errors));
            }

            var enabled = _config.Enabled();
            var tcp = enabled.Where(r => r.Section is not UdpEndpointConfig).ToList();
            try
            {
                foreach (var r in enabled.Where(r => r.Section is UdpEndpointConfig))
                {
                    var addr = EndpointParser.Resolve(r.Endpoint, out int port);
                    bool compact = r.Key == ReceiverKeys.JaegerThriftCompact;
                    var udp = new UdpReceiver(new IPEndPoint(addr[0], port), (UdpEndpointConfig)r.Section,
                        compact ? ThriftProtocol.Compact : ThriftProtocol.Binary, compact ? "thrift_compact" : "thrift_binary",
                        _handlers, _metrics, _logger);
                    _udp.Add(udp);
                    _bound[r.Key] = udp.LocalEndPoint;
                    udp.Start();
                }

                if (tcp.Count > 0)
                {
                    await StartKestrelAsync(tcp, ct);
                }
            }
            catch
            {
                await StopAsync(null);
                throw;
            }

            foreach (var (key, ep) in _bound)
            {
                _logger.LogInformation("receiver {Receiver} listening on {Endpoint}", key, ep);
            }
        }

        private async Task StartKestrelAsync(List<EnabledReceiver> tcp, CancellationToken ct)
        {
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.Services.AddSingleton(_loggerFactory);
            builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
            builder.Services.AddRouting();
            var listens = new List<(string Key, ListenOptions Options)>();
            builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                // Body limits are enforced per receiver (max_request_body_size), after decompression too.
                k.Limits.MaxRequestBodySize = null;
                foreach (var r in tcp)
                {
                    var addr = EndpointParser.Resolve(r.Endpoint, out int port);
                    bool grpc = r.Section is GrpcEndpointConfig;
                    k.Listen(new IPEndPoint(addr[0], port), lo =>
                    {
                        // gRPC clients speak HTTP/2 with prior knowledge; cleartext Kestrel cannot negotiate it, so
                        // gRPC listeners are HTTP/2-only and the others HTTP/1.1.
                        lo.Protocols = grpc ? HttpProtocols.Http2 : HttpProtocols.Http1;
                        string key = r.Key;
                        lo.Use(next => connection =>
                        {
                            connection.Items[ConnectionKeyItem] = key;
                            return next(connection);
                        });
                        listens.Add((key, lo));
                    });
                }
            });

            var app = builder.Build();
            app.UseRouting();
            app.Use(static (http, next) =>
            {
                var tag = http.GetEndpoint()?.Metadata.GetMetadata<ReceiverTag>();
                if (tag is not null)
                {
                    var items = http.Features.Get<IConnectionItemsFeature>()?.Items;
                    object? key = null;
                    if (items is null || !items.TryGetValue(ConnectionKeyItem, out key) || !Equals(key, tag.Key))
                    {
                        http.Response.StatusCode = StatusCodes.Status404NotFound;
                        return Task.CompletedTask;
                    }
                }

                return next(http);
            });

            foreach (var r in tcp)
            {
                var tag = new ReceiverTag(r.Key);
                switch (r.Key)
                {
                    case ReceiverKeys.OtlpGrpc:
                        app.MapGrpcUnary(OtlpTraceService, "Export", _handlers.OtlpGrpcExportAsync,
                            new GrpcServerOptions { MaxReceiveMessageSize = ((GrpcEndpointConfig)r.Section).EffectiveMaxRecvMsgSizeBytes() }).WithMetadata(tag);
                        break;
                    case ReceiverKeys.JaegerGrpc:
                        app.MapGrpcUnary(JaegerCollectorService, "PostSpans", _handlers.JaegerPostSpansAsync,
                            new GrpcServerOptions { MaxReceiveMessageSize = ((GrpcEndpointConfig)r.Section).EffectiveMaxRecvMsgSizeBytes() }).WithMetadata(tag);
                        break;
                    case ReceiverKeys.OtlpHttp:
                        {
                            long limit = ((HttpEndpointConfig)r.Section).EffectiveMaxRequestBodyBytes();
                            app.MapPost("/v1/traces", (HttpContext h) => _handlers.OtlpHttpAsync(h, limit)).WithMetadata(tag);
                            break;
                        }

                    case ReceiverKeys.Zipkin:
                        {
                            long limit = ((HttpEndpointConfig)r.Section).EffectiveMaxRequestBodyBytes();
                            app.MapPost("/api/v2/spans", (HttpContext h) => _handlers.ZipkinAsync(h, limit, v1: false)).WithMetadata(tag);
                            app.MapPost("/api/v1/spans", (HttpContext h) => _handlers.ZipkinAsync(h, limit, v1: true)).WithMetadata(tag);
                            break;
                        }

                    case ReceiverKeys.JaegerThriftHttp:
                        {
                            long limit = ((HttpEndpointConfig)r.Section).EffectiveMaxRequestBodyBytes();
                            app.MapPost("/api/traces", (HttpContext h) => _handlers.JaegerThriftHttpAsync(h, limit)).WithMetadata(tag);
                            break;
                        }
                }
            }

            _app = app;
            await app.StartAsync(ct);
            foreach (var (key, lo) in listens)
            {
                // Kestrel writes the bound address (the real port for port 0) back into the ListenOptions.
                _bound[key] = lo.IPEndPoint!;
            }
        }

        public async Task StopAsync(Exception? _)
        {
            var app = Interlocked.Exchange(ref _app, null);
            if (app is not null)
            {
                // Graceful: stops accepting, waits for in-flight requests (up to the host's shutdown timeout).
                await app.StopAsync(CancellationToken.None);
                await app.DisposeAsync();
            }

            foreach (var u in _udp)
            {
                await u.StopAsync();
            }

            _udp.Clear();
        }
    }
}
