using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Services;
using Rubato.Grpc;
using Rubato.Server.Configuration;

namespace Rubato.Server.App;

/// <summary>
/// One Rubato process: builds the module graph for the configured target, starts the services in dependency order,
/// and stops them in reverse order on shutdown (SIGTERM, Ctrl+C, <c>/shutdown</c>, or a failed service).
/// </summary>
/// <remarks>
/// Threads: construction, <see cref="StartAsync"/> and <see cref="StopAsync"/> run on the caller's thread; HTTP handlers
/// run on Kestrel's thread pool and only read state that startup published before the listeners opened.
/// </remarks>
public sealed partial class RubatoApp : IAsyncDisposable
{
    private readonly RubatoConfig _config;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _log;
    private readonly ModuleManager _modules = new();
    private readonly TaskCompletionSource _shutdownRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<IFlushable> _flushables = [];
    private readonly List<string> _configWarnings;
    private IReadOnlyList<(string Name, IService Service)> _services = [];
    private WebApplication? _web;
    private ListenOptions? _httpListen;
    private ListenOptions? _grpcListen;
    private int _stopping;

    public RubatoApp(RubatoConfig config, ILoggerFactory loggerFactory, IReadOnlyList<string>? configWarnings = null)
    {
        _config = config;
        _loggerFactory = loggerFactory;
        _log = loggerFactory.CreateLogger("rubato");
        _configWarnings = configWarnings?.ToList() ?? [];
        Metrics = new MetricsRegistry();
        RegisterModules();
    }

    public MetricsRegistry Metrics { get; }

    /// <summary>Targets that <c>-target</c> accepts.</summary>
    public IReadOnlyList<string> ValidTargets => _modules.TargetableModules;

    /// <summary>The HTTP API address actually bound (useful when the configured port is 0).</summary>
    public IPEndPoint? HttpEndpoint { get; private set; }

    /// <summary>The gRPC address actually bound.</summary>
    public IPEndPoint? GrpcEndpoint { get; private set; }

    /// <summary>Completes when something asked the process to stop.</summary>
    public Task ShutdownRequested => _shutdownRequested.Task;

    /// <summary>True once every service of the target is Running.</summary>
    public bool IsReady => _services.Count > 0 && _services.All(s => s.Service.State == ServiceState.Running);

    public void RequestShutdown(string reason)
    {
        if (_shutdownRequested.TrySetResult())
        {
            _log.LogInformation("shutdown requested: {Reason}", reason);
        }
    }

    /// <summary>Initialises the target's modules and starts their services in dependency order.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        string target = _config.Target;
        if (!_modules.IsTargetable(target))
        {
            throw new ConfigException($"unknown target '{target}'; valid targets: {string.Join(", ", ValidTargets)}");
        }

        foreach (var w in _configWarnings)
        {
            _log.LogWarning("config: {Warning}", w);
        }

        _services = _modules.InitModules(target);
        foreach (var (name, service) in _services)
        {
            if (service is BasicService basic)
            {
                basic.Failed += (s, e) =>
                {
                    _log.LogError(e, "module {Module} failed", s.Name);
                    RequestShutdown($"module {s.Name} failed");
                };
            }

            _log.LogInformation("starting module {Module}", name);
            await service.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        _log.LogInformation("Rubato {Version} started; target={Target} http={Http} grpc={Grpc}", BuildInfo.Version, target, HttpEndpoint, GrpcEndpoint);
    }

    /// <summary>Stops the services in reverse start order; the HTTP server, started first, stops last.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 1)
        {
            return;
        }

        foreach (var (name, service) in _services.Reverse())
        {
            try
            {
                _log.LogInformation("stopping module {Module}", name);
                await service.StopAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _log.LogError(e, "module {Module} failed to stop cleanly", name);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (_web is not null)
        {
            await _web.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Builds the web host of the <c>server</c> module: the HTTP API port and the gRPC port.</summary>
    private WebApplication BuildWebHost()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "rubato",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_loggerFactory);

        // Signals are handled by Program, which stops the modules in order; the host must not stop Kestrel on its own.
        builder.Services.AddSingleton<IHostLifetime, ModuleOwnedLifetime>();
        var server = _config.Server;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = Math.Max(server.GrpcServerMaxRecvMsgSize, 16 * 1024 * 1024);
            k.Limits.Http2.MaxStreamsPerConnection = server.GrpcServerMaxConcurrentStreams;
            k.Limits.KeepAliveTimeout = server.HttpServerIdleTimeout;
            var httpAt = new IPEndPoint(ServerConfig.ResolveListenAddress(server.HttpListenAddress), server.HttpListenPort);
            var grpcAt = new IPEndPoint(ServerConfig.ResolveListenAddress(server.GrpcListenAddress), server.GrpcListenPort);

            // The API port speaks HTTP/1.1 and, for clients that open with the HTTP/2 preface (Grafana's streaming
            // gRPC with stream_over_http_enabled), h2c; the gRPC port speaks h2c only.
            k.ListenHttp1AndH2c(httpAt, l => _httpListen = l);
            k.ListenH2c(grpcAt, l => _grpcListen = l);
        });
        return builder.Build();
    }

    private IService CreateServerService(WebApplication web) => new BasicService(
        "server",
        starting: async ct =>
        {
            await web.StartAsync(ct).ConfigureAwait(false);

            // Kestrel writes the bound port back into the listen options, which matters when the config says port 0.
            HttpEndpoint = _httpListen?.IPEndPoint;
            GrpcEndpoint = _grpcListen?.IPEndPoint;
        },
        stopping: async _ =>
        {
            using var cts = new CancellationTokenSource(_config.Server.GracefulShutdownTimeout);
            await web.StopAsync(cts.Token).ConfigureAwait(false);
        });

    /// <summary>A host lifetime that ignores signals: the app's own shutdown path stops Kestrel last.</summary>
    private sealed class ModuleOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
