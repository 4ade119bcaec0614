using System.Collections.Concurrent;
using System.Net;
using IronSnappy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rubato.RemoteWrite.Tests;

/// <summary>One request as received: its headers and decoded series.</summary>
internal sealed record ReceivedWrite(int Index, IReadOnlyDictionary<string, string> Headers, List<DecodedSeries> Series, int Status);

/// <summary>
/// A remote-write receiver on Kestrel (127.0.0.1, port 0) that appends like Prometheus' TSDB head: per series,
/// a sample older than the newest is "out of order", the same timestamp with another value is a "duplicate
/// sample", the same timestamp and value is accepted silently, and any error rolls the whole request back
/// (400). <see cref="Override"/> lets a test answer with its own status before that logic runs.
/// </summary>
internal sealed class PromLikeReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly object _lock = new();
    private readonly Dictionary<string, List<(long Ts, double Value)>> _stored = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<ReceivedWrite> _requests = new();
    private int _count;

    private PromLikeReceiver(WebApplication app) => _app = app;

    public string Url { get; private set; } = string.Empty;

    /// <summary>Given the request index, an HTTP status (and body) to answer instead of storing, or null to store.</summary>
    public Func<int, (int Status, string Body)?> Override { get; set; } = _ => null;

    public IReadOnlyList<ReceivedWrite> Requests => [.. _requests.OrderBy(r => r.Index)];

    /// <summary>Stored samples of one series (keyed by its label <c>series</c>), in append order.</summary>
    public List<(long Ts, double Value)> Stored(string series)
    {
        lock (_lock)
        {
            return _stored.TryGetValue(series, out var l) ? [.. l] : [];
        }
    }

    public int StoredCount
    {
        get
        {
            lock (_lock)
            {
                return _stored.Values.Sum(l => l.Count);
            }
        }
    }

    public static async Task<PromLikeReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new PromLikeReceiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync();
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/api/v1/write";
        return receiver;
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        int index = Interlocked.Increment(ref _count) - 1;
        using var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted);
        var headers = ctx.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        var series = PromWire.DecodeWriteRequest(Snappy.Decode(ms.ToArray()));
        var (status, body) = Override(index) ?? Append(series);
        _requests.Enqueue(new ReceivedWrite(index, headers, series, status));
        ctx.Response.StatusCode = status;
        if (body.Length > 0)
        {
            await ctx.Response.WriteAsync(body);
        }
    }

    private (int, string) Append(List<DecodedSeries> series)
    {
        lock (_lock)
        {
            var pending = new Dictionary<string, List<(long, double)>>(StringComparer.Ordinal);
            foreach (var s in series)
            {
                string key = s.Labels.First(l => l.Name == "series").Value;
                var existing = _stored.TryGetValue(key, out var l) ? l : [];
                var added = pending.TryGetValue(key, out var p) ? p : pending[key] = [];
                foreach (var sample in s.Samples)
                {
                    var last = added.Count > 0 ? added[^1] : existing.Count > 0 ? existing[^1] : ((long, double)?)null;
                    if (last is { } prev)
                    {
                        if (sample.TimestampMs < prev.Item1)
                        {
                            return (400, "out of order sample");
                        }

                        if (sample.TimestampMs == prev.Item1)
                        {
                            if (BitConverter.DoubleToInt64Bits(sample.Value) != BitConverter.DoubleToInt64Bits(prev.Item2))
                            {
                                return (400, "duplicate sample for timestamp");
                            }

                            continue;
                        }
                    }

                    added.Add((sample.TimestampMs, sample.Value));
                }
            }

            foreach (var (key, added) in pending)
            {
                if (!_stored.TryGetValue(key, out var l))
                {
                    _stored[key] = l = [];
                }

                l.AddRange(added);
            }

            return (204, string.Empty);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
