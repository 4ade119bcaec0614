using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rubato.Storage.Tests.Backends;

/// <summary>One request as the server received it: the raw request target keeps the client's exact percent-encoding.</summary>
public sealed record RecordedRequest(int Index, string Method, string RawTarget, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Path => RawTarget.Split('?')[0];

    public string Query => RawTarget.Contains('?') ? RawTarget[(RawTarget.IndexOf('?') + 1)..] : string.Empty;

    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : null;
}

/// <summary>
/// An in-process HTTP/1.1 server (Kestrel on 127.0.0.1, port 0) that records every request and answers through the
/// test's handler, which gets the request's zero-based arrival index.
/// </summary>
public sealed class RecordingServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private int _count;

    private RecordingServer(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = string.Empty;

    public int Port => new Uri(BaseUrl).Port;

    /// <summary>Requests in arrival order (a request is recorded once its body has been read).</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests.OrderBy(r => r.Index)];

    public int Count => Volatile.Read(ref _count);

    public static async Task<RecordingServer> StartAsync(Func<HttpContext, RecordedRequest, Task> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new RecordingServer(app);
        app.Run(async ctx =>
        {
            int index = Interlocked.Increment(ref server._count) - 1;
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted);
            var headers = ctx.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
            var rec = new RecordedRequest(index, ctx.Request.Method, ctx.Features.Get<IHttpRequestFeature>()!.RawTarget, headers, ms.ToArray());
            server._requests.Enqueue(rec);
            await handler(ctx, rec);
        });
        await app.StartAsync();
        server.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return server;
    }

    public static async Task Respond(HttpContext ctx, int status, string? body = null, string contentType = "application/json", params (string Name, string Value)[] headers)
    {
        ctx.Response.StatusCode = status;
        foreach (var (name, value) in headers)
        {
            ctx.Response.Headers[name] = value;
        }

        if (body is not null)
        {
            ctx.Response.ContentType = contentType;
            await ctx.Response.WriteAsync(body);
        }
    }

    public static async Task RespondBytes(HttpContext ctx, int status, byte[] body, params (string Name, string Value)[] headers)
    {
        ctx.Response.StatusCode = status;
        foreach (var (name, value) in headers)
        {
            ctx.Response.Headers[name] = value;
        }

        ctx.Response.ContentType = "application/octet-stream";
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
