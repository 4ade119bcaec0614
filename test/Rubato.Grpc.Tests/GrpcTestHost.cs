using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rubato.Grpc.Tests;

/// <summary>How the test server listens on 127.0.0.1:0.</summary>
public enum ListenMode
{
    /// <summary><see cref="GrpcKestrel.ListenH2c"/>: HTTP/2 only.</summary>
    H2c,
    /// <summary><see cref="GrpcKestrel.ListenHttp1AndH2c"/>: HTTP/1.1 and h2c with preface detection.</summary>
    Http1AndH2c,
    /// <summary>Plain Kestrel <see cref="HttpProtocols.Http1AndHttp2"/> without our middleware.</summary>
    PlainHttp1AndHttp2,
}

/// <summary>A real Kestrel server on a free loopback port, stopped on dispose.</summary>
public sealed class GrpcTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public static async Task<GrpcTestHost> StartAsync(Action<IEndpointRouteBuilder> map, ListenMode mode = ListenMode.H2c,
        Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        services?.Invoke(builder.Services);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var endpoint = new IPEndPoint(IPAddress.Loopback, 0);
            switch (mode)
            {
                case ListenMode.H2c:
                    kestrel.ListenH2c(endpoint);
                    break;
                case ListenMode.Http1AndH2c:
                    kestrel.ListenHttp1AndH2c(endpoint);
                    break;
                default:
                    kestrel.Listen(endpoint, l => l.Protocols = HttpProtocols.Http1AndHttp2);
                    break;
            }
        });
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new GrpcTestHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}
