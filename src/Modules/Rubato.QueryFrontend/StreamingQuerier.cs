using Microsoft.AspNetCore.Routing;
using Rubato.Common.Otlp;
using Rubato.Common.Tenancy;
using Rubato.Grpc;

namespace Rubato.QueryFrontend;

/// <summary>
/// <c>tempopb.StreamingQuerier</c> (Search, SearchTags, SearchTagsV2, SearchTagValues, SearchTagValuesV2) over
/// <see cref="SearchFrontend"/>, with hand-written protobuf. Search streams partial results (the traces changed since
/// the last message) at most every <see cref="SearchFrontendConfig.StreamingUpdateInterval"/>, then the complete final
/// result split into packets of at most <see cref="SearchFrontendConfig.MaxStreamingPacketBytes"/>. Tag methods stream
/// the names/values found since the previous message at the same interval, then the complete answer in one message. Bad requests end the stream with
/// INVALID_ARGUMENT; a missing tenant with UNAUTHENTICATED; a full queue with RESOURCE_EXHAUSTED.
/// </summary>
public static class StreamingQuerier
{
    public const string ServiceName = "tempopb.StreamingQuerier";

    /// <summary>Maps the five methods on <paramref name="endpoints"/> (the gRPC port, and the HTTP port when streaming over HTTP is on).</summary>
    public static void Map(IEndpointRouteBuilder endpoints, SearchFrontend frontend, bool multitenancyEnabled, GrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(frontend);
        endpoints.MapGrpcServerStreaming(ServiceName, "Search", (ctx, req, w) => Guard(ctx, frontend, multitenancyEnabled, t => SearchAsync(frontend, t, req, w, ctx.CancellationToken)), options);
        endpoints.MapGrpcServerStreaming(ServiceName, "SearchTags", (ctx, req, w) => Guard(ctx, frontend, multitenancyEnabled, t => TagsAsync(frontend, t, req, w, v2: false, ctx.CancellationToken)), options);
        endpoints.MapGrpcServerStreaming(ServiceName, "SearchTagsV2", (ctx, req, w) => Guard(ctx, frontend, multitenancyEnabled, t => TagsAsync(frontend, t, req, w, v2: true, ctx.CancellationToken)), options);
        endpoints.MapGrpcServerStreaming(ServiceName, "SearchTagValues", (ctx, req, w) => Guard(ctx, frontend, multitenancyEnabled, t => TagValuesAsync(frontend, t, req, w, v2: false, ctx.CancellationToken)), options);
        endpoints.MapGrpcServerStreaming(ServiceName, "SearchTagValuesV2", (ctx, req, w) => Guard(ctx, frontend, multitenancyEnabled, t => TagValuesAsync(frontend, t, req, w, v2: true, ctx.CancellationToken)), options);
    }

    private static ValueTask Guard(GrpcCallContext ctx, SearchFrontend frontend, bool multitenancyEnabled, Func<IReadOnlyList<string>, Task> body) =>
        GuardAsync(ctx, frontend.Admit, multitenancyEnabled, body);

    /// <summary>
    /// Runs one streaming call: resolves the tenants from <c>X-Scope-OrgID</c>, takes a queue slot through
    /// <paramref name="admit"/> (per-tenant outstanding limit) for the whole stream, and maps request errors to gRPC
    /// statuses (401 → UNAUTHENTICATED, 429 → RESOURCE_EXHAUSTED, the rest and malformed messages → INVALID_ARGUMENT).
    /// </summary>
    internal static async ValueTask GuardAsync(GrpcCallContext ctx, Func<IReadOnlyList<string>, IDisposable> admit, bool multitenancyEnabled, Func<IReadOnlyList<string>, Task> body)
    {
        try
        {
            var tenants = SearchTenants.Resolve(multitenancyEnabled, ctx.GetHeader(TenantIds.HeaderName));
            using var lease = admit(tenants);
            await body(tenants).ConfigureAwait(false);
        }
        catch (SearchRequestException e)
        {
            var code = e.StatusCode switch
            {
                401 => GrpcStatusCode.Unauthenticated,
                429 => GrpcStatusCode.ResourceExhausted,
                _ => GrpcStatusCode.InvalidArgument,
            };
            throw new GrpcException(code, e.Message, e);
        }
        catch (OtlpFormatException e)
        {
            throw new GrpcException(GrpcStatusCode.InvalidArgument, "malformed request message: " + e.Message, e);
        }
    }

    private static async Task SearchAsync(SearchFrontend frontend, IReadOnlyList<string> tenants, ReadOnlyMemory<byte> request, GrpcStreamWriter writer, CancellationToken ct)
    {
        var query = StreamingProto.DecodeSearchRequest(request.Span, frontend.Config.Search);
        var run = frontend.StartSearch(tenants, query, ct);
        var interval = frontend.Config.Search.StreamingUpdateInterval;
        while (!run.Completion.IsCompleted)
        {
            try
            {
                await run.Completion.WaitAsync(interval, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                using var partial = run.TakeChanges(r => r.Traces.Count == 0 ? null : StreamingProto.EncodeSearchResponse(r, 0, r.Traces.Count));
                if (partial is not null)
                {
                    await writer.WriteAsync(partial.WrittenMemory).ConfigureAwait(false);
                }
            }
            catch (Exception) when (run.Completion.IsCompleted)
            {
                // Observed below.
            }
        }

        var final = await run.Completion.ConfigureAwait(false);
        int limit = frontend.Config.Search.MaxStreamingPacketBytes;
        int from = 0;
        do
        {
            int to = StreamingProto.PacketEnd(final, from, limit);
            using var packet = StreamingProto.EncodeSearchResponse(final, from, to);
            await writer.WriteAsync(packet.WrittenMemory).ConfigureAwait(false);
            from = to;
        }
        while (from < final.Traces.Count);
    }

    private static async Task TagsAsync(SearchFrontend frontend, IReadOnlyList<string> tenants, ReadOnlyMemory<byte> request, GrpcStreamWriter writer, bool v2, CancellationToken ct)
    {
        var query = StreamingProto.DecodeTagsRequest(request.Span);
        if (!v2)
        {
            query = query with { Query = null };
        }

        var run = frontend.StartTagNames(tenants, query, ct);
        await StreamTagRunAsync(frontend, run, (names, metrics) => v2 ? StreamingProto.EncodeTagsV2(names, metrics) : StreamingProto.EncodeTagsV1(names, metrics), writer, ct).ConfigureAwait(false);
    }

    private static async Task TagValuesAsync(SearchFrontend frontend, IReadOnlyList<string> tenants, ReadOnlyMemory<byte> request, GrpcStreamWriter writer, bool v2, CancellationToken ct)
    {
        var query = StreamingProto.DecodeTagValuesRequest(request.Span, scoped: v2);
        if (!v2)
        {
            query = query with { Query = null };
        }

        var run = frontend.StartTagValues(tenants, query, ct);
        await StreamTagRunAsync(frontend, run, (values, metrics) => v2 ? StreamingProto.EncodeTagValuesV2(values, metrics) : StreamingProto.EncodeTagValuesV1(values, metrics), writer, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams a tag run: every <see cref="SearchFrontendConfig.StreamingUpdateInterval"/> the names/values found since
    /// the previous message (none sent when nothing is new; intrinsics only in the final message), then one final
    /// message with the complete answer. Runs on the request's task; the client going away cancels the run's jobs.
    /// </summary>
    private static async Task StreamTagRunAsync<TCollector>(SearchFrontend frontend, TagSearchRun<TCollector> run, Func<TCollector, MetadataMetrics, ProtoWriter> encode,
        GrpcStreamWriter writer, CancellationToken ct)
        where TCollector : class
    {
        var interval = frontend.Config.Search.StreamingUpdateInterval;
        while (!run.Completion.IsCompleted)
        {
            try
            {
                await run.Completion.WaitAsync(interval, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                using var partial = run.TakeNew(encode);
                if (partial is not null)
                {
                    await writer.WriteAsync(partial.WrittenMemory).ConfigureAwait(false);
                }
            }
            catch (Exception) when (run.Completion.IsCompleted)
            {
                // Observed below.
            }
        }

        await run.Completion.ConfigureAwait(false);
        using var final = encode(run.Result, run.Metrics);
        await writer.WriteAsync(final.WrittenMemory).ConfigureAwait(false);
    }
}
