using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Otlp;

namespace Rubato.Querier;

/// <summary>
/// <c>GET /api/traces/{traceID}</c> and <c>GET /api/v2/traces/{traceID}</c>, with Tempo's parameters
/// (<c>start</c>, <c>end</c> in unix seconds) and responses (OTLP JSON, or <c>tempopb.Trace</c> protobuf for
/// <c>Accept: application/protobuf</c>; 404 when no span is found; 400 for a malformed id or range).
/// </summary>
public static class TraceByIdApi
{
    public const string ProtobufContentType = "application/protobuf";

    public static void Map(IEndpointRouteBuilder endpoints, TraceByIdQuerier querier, QueryTenants tenants, MetricsRegistry metrics, string prefix = "")
    {
        var latency = metrics.Histogram("rubato_request_duration_seconds", "Time to answer an HTTP API request.", Histogram.DefaultSecondsBuckets, "route", "status_code");
        endpoints.MapGet(prefix + "/api/traces/{traceID}", (HttpContext ctx, string traceID) => HandleAsync(ctx, traceID, v2: false, querier, tenants, latency));
        endpoints.MapGet(prefix + "/api/v2/traces/{traceID}", (HttpContext ctx, string traceID) => HandleAsync(ctx, traceID, v2: true, querier, tenants, latency));
    }

    private static async Task HandleAsync(HttpContext ctx, string rawId, bool v2, TraceByIdQuerier querier, QueryTenants tenants, Histogram latency)
    {
        long started = Stopwatch.GetTimestamp();
        int status = await AnswerAsync(ctx, rawId, v2, querier, tenants).ConfigureAwait(false);
        latency.WithLabels(v2 ? "api_v2_traces" : "api_traces", status.ToString(CultureInfo.InvariantCulture))
            .Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    private static async Task<int> AnswerAsync(HttpContext ctx, string rawId, bool v2, TraceByIdQuerier querier, QueryTenants tenants)
    {
        var (tenantIds, tenantError) = tenants.Resolve(ctx);
        if (tenantError is not null)
        {
            await tenantError.ExecuteAsync(ctx).ConfigureAwait(false);
            return ctx.Response.StatusCode;
        }

        if (ParseTraceId(rawId) is { } idError)
        {
            return await TextAsync(ctx, 400, idError).ConfigureAwait(false);
        }

        _ = TraceId.TryParseHex(rawId, out var traceId);
        if (!TryParseRange(ctx.Request.Query, out var range, out var rangeError))
        {
            return await TextAsync(ctx, 400, rangeError!).ConfigureAwait(false);
        }

        var trace = await querier.FindAsync(tenantIds!, traceId, range, ctx.RequestAborted).ConfigureAwait(false);
        if (trace is null)
        {
            return await TextAsync(ctx, 404, "trace not found").ConfigureAwait(false);
        }

        bool wantsProto = ctx.Request.Headers.Accept.Any(a => a is not null && a.Contains(ProtobufContentType, StringComparison.OrdinalIgnoreCase));
        ctx.Response.StatusCode = 200;
        if (wantsProto)
        {
            // tempopb.Trace for v1; v2 answers with TraceByIDResponse { trace = 1 } around it.
            byte[] body = OtlpProto.EncodeTrace(trace);
            if (v2)
            {
                body = WrapField1(body);
            }

            ctx.Response.ContentType = ProtobufContentType;
            await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted).ConfigureAwait(false);
            return 200;
        }

        ctx.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(ctx.Response.BodyWriter))
        {
            if (v2)
            {
                OtlpJson.WriteTempoTraceByIdV2Response(trace, writer);
            }
            else
            {
                OtlpJson.WriteTempoTraceV1(trace, writer);
            }

            await writer.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
        }

        return 200;
    }

    /// <returns>Null when the id is valid, else Tempo's message for it.</returns>
    public static string? ParseTraceId(string raw)
    {
        if (raw.Length > 32)
        {
            return $"invalid trace id '{raw}': trace IDs can't be larger than 128 bits";
        }

        foreach (char c in raw)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return $"invalid trace id '{raw}': trace IDs can only contain hex characters";
            }
        }

        if (!TraceId.TryParseHex(raw, out _))
        {
            return $"invalid trace id '{raw}'";
        }

        return null;
    }

    /// <summary>Reads <c>start</c> and <c>end</c> (unix seconds); both optional, start must not be after end.</summary>
    public static bool TryParseRange(IQueryCollection query, out TimeRange range, out string? error)
    {
        range = TimeRange.All;
        error = null;
        long start = 0, end = 0;
        if (query.TryGetValue("start", out var s) && s.ToString().Length > 0 && !long.TryParse(s.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out start))
        {
            error = $"invalid start: '{s}' is not a unix timestamp in seconds";
            return false;
        }

        if (query.TryGetValue("end", out var e) && e.ToString().Length > 0 && !long.TryParse(e.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out end))
        {
            error = $"invalid end: '{e}' is not a unix timestamp in seconds";
            return false;
        }

        if (start < 0 || end < 0)
        {
            error = "start and end must not be negative";
            return false;
        }

        if (start > 0 && end > 0 && start > end)
        {
            error = "http parameter start must be before end";
            return false;
        }

        range = new TimeRange(start, end);
        return true;
    }

    private static async Task<int> TextAsync(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        await ctx.Response.WriteAsync(message, ctx.RequestAborted).ConfigureAwait(false);
        return status;
    }

    /// <summary>Wraps a message as field 1 (length-delimited) of an outer message.</summary>
    private static byte[] WrapField1(byte[] inner)
    {
        Span<byte> prefix = stackalloc byte[11];
        prefix[0] = 0x0A;
        int n = 1;
        ulong len = (ulong)inner.Length;
        while (len >= 0x80)
        {
            prefix[n++] = (byte)(len | 0x80);
            len >>= 7;
        }

        prefix[n++] = (byte)len;
        var result = new byte[n + inner.Length];
        prefix[..n].CopyTo(result);
        inner.CopyTo(result.AsSpan(n));
        return result;
    }
}
