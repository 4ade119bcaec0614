using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Grpc;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend.Tests;

/// <summary>A clock fixed at <see cref="TestData.NowSeconds"/> (BCL TimeProvider, so range planning is deterministic).</summary>
public sealed class FixedTime : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeSeconds(TestData.NowSeconds);
}

public static class TestData
{
    public const long NowSeconds = 2_000_000_000;
    public const long T0 = NowSeconds - 600;

    public static Trace MakeTrace(ulong id, string service, string rootName, long startSeconds, ulong durationNanos, string attrKey, AnyValue attrValue,
        StatusCode status = StatusCode.Unset, string? childService = null)
    {
        var t = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
        var ss = new ScopeSpans();
        ulong start = (ulong)startSeconds * 1_000_000_000;
        var root = new Span
        {
            TraceId = new TraceId(0, id),
            SpanId = new SpanId(id * 16),
            Name = rootName,
            Kind = SpanKind.Server,
            StartTimeUnixNano = start,
            EndTimeUnixNano = start + durationNanos,
            StatusCode = status,
        };
        root.Attributes.Add(new KeyValue(attrKey, attrValue));
        ss.Spans.Add(root);
        rs.ScopeSpans.Add(ss);
        t.ResourceSpans.Add(rs);
        if (childService is not null)
        {
            var crs = new ResourceSpans();
            crs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(childService)));
            var css = new ScopeSpans();
            var child = new Span
            {
                TraceId = root.TraceId,
                SpanId = new SpanId((id * 16) + 1),
                ParentSpanId = root.SpanId,
                Name = "query",
                Kind = SpanKind.Client,
                StartTimeUnixNano = start + 1_000_000,
                EndTimeUnixNano = start + 21_000_000,
            };
            child.Attributes.Add(new KeyValue("db.system", AnyValue.String("postgres")));
            css.Spans.Add(child);
            crs.ScopeSpans.Add(css);
            t.ResourceSpans.Add(crs);
        }

        return t;
    }

    /// <summary>Three traces: GET (frontend+db), POST (frontend, error), job (worker).</summary>
    public static List<Trace> Small() =>
    [
        MakeTrace(1, "frontend", "GET /", T0, 100_000_000, "http.method", AnyValue.String("GET"), childService: "db"),
        MakeTrace(2, "frontend", "POST /", T0 + 10, 2_000_000_000, "http.method", AnyValue.String("POST"), StatusCode.Error),
        MakeTrace(3, "worker", "job", T0 + 20, 5_000_000, "job.id", AnyValue.Int(7)),
    ];

    public static ISearchSource Source(IReadOnlyList<Trace> traces, string name = "memory") =>
        DelegateSearchSource.Recent(name, (_, _, _) => new TraceModelFetcher(traces));
}

/// <summary>A fetcher that yields its traces, then signals and waits (for limit, cancellation and streaming tests).</summary>
public sealed class GatedFetcher(IReadOnlyList<Trace> first, IReadOnlyList<Trace> after, Task gate, bool ignoreCancellation) : ISpansetFetcher
{
    public TaskCompletionSource FirstYielded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var s in new TraceModelFetcher(first).FetchAsync(request, cancellationToken))
        {
            yield return s;
        }

        FirstYielded.TrySetResult();
        if (ignoreCancellation)
        {
            await gate;
        }
        else
        {
            try
            {
                await gate.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Not a token registration: one disposed by the unwinding iterator may never run.
                Cancelled.TrySetResult();
                throw;
            }
        }

        await foreach (var s in new TraceModelFetcher(after).FetchAsync(request, cancellationToken))
        {
            yield return s;
        }
    }
}

/// <summary>Kestrel on 127.0.0.1:0 (HTTP/1.1 + h2c) with the search API and StreamingQuerier mapped.</summary>
public sealed class FrontendHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FrontendHost(WebApplication app, Uri address, SearchFrontend frontend)
    {
        _app = app;
        Address = address;
        Frontend = frontend;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri Address { get; }

    public SearchFrontend Frontend { get; }

    public HttpClient Http { get; }

    public static async Task<FrontendHost> StartAsync(IEnumerable<ISearchSource> sources, QueryFrontendConfig? config = null, bool multitenancy = false, SearchJobCache? jobCache = null)
    {
        var frontend = new SearchFrontend(config ?? new QueryFrontendConfig(), sources, null, new FixedTime(), jobCache);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenHttp1AndH2c(new IPEndPoint(IPAddress.Loopback, 0)));
        var app = builder.Build();
        SearchApi.Map(app, frontend, multitenancy);
        StreamingQuerier.Map(app, frontend, multitenancy);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new FrontendHost(app, new Uri(address), frontend);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}
