using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Rubato.Common.Otlp;
using Rubato.Common.Tenancy;
using Rubato.Grpc;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Metrics;

namespace Rubato.QueryFrontend;

/// <summary>
/// TraceQL metrics APIs: HTTP <c>GET /api/metrics/query_range</c> and <c>/api/metrics/query</c> (Tempo's protojson
/// <c>QueryRangeResponse</c>/<c>QueryInstantResponse</c>) and the server-streaming gRPC methods
/// <c>tempopb.StreamingQuerier/MetricsQueryRange</c> and <c>/MetricsQueryInstant</c>, which send the result over the jobs
/// finished so far at most every <see cref="MetricsFrontendConfig.StreamingUpdateInterval"/> and then the final result.
/// Errors: 400 (INVALID_ARGUMENT) with a plain-text message for bad parameters or a non-metrics query, 401
/// (UNAUTHENTICATED) without a tenant, 429 (RESOURCE_EXHAUSTED) when the tenant's queue is full. A client that goes away
/// cancels the query's jobs.
/// </summary>
public static class MetricsApi
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Maps the HTTP routes.</summary>
    public static void MapHttp(IEndpointRouteBuilder endpoints, MetricsFrontend frontend, bool multitenancyEnabled)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(frontend);
        endpoints.MapGet("/api/metrics/query_range", ctx => HandleHttp(ctx, frontend, multitenancyEnabled, instant: false));
        endpoints.MapGet("/api/metrics/query", ctx => HandleHttp(ctx, frontend, multitenancyEnabled, instant: true));
    }

    /// <summary>Maps the two streaming gRPC methods (the gRPC port, and the HTTP port with stream_over_http_enabled).</summary>
    public static void MapGrpc(IEndpointRouteBuilder endpoints, MetricsFrontend frontend, bool multitenancyEnabled, GrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(frontend);
        endpoints.MapGrpcServerStreaming(StreamingQuerier.ServiceName, "MetricsQueryRange",
            (ctx, req, w) => GuardGrpc(ctx, frontend, multitenancyEnabled, t => StreamAsync(frontend, t, MetricsProto.DecodeRangeRequest(req.Span, frontend.Now), w, ctx.CancellationToken)), options);
        endpoints.MapGrpcServerStreaming(StreamingQuerier.ServiceName, "MetricsQueryInstant",
            (ctx, req, w) => GuardGrpc(ctx, frontend, multitenancyEnabled, t => StreamAsync(frontend, t, MetricsProto.DecodeInstantRequest(req.Span, frontend.Now), w, ctx.CancellationToken)), options);
    }

    private static async Task HandleHttp(HttpContext ctx, MetricsFrontend frontend, bool multitenancyEnabled, bool instant)
    {
        var ct = ctx.RequestAborted;
        try
        {
            var tenants = SearchTenants.Resolve(multitenancyEnabled, ctx.Request.Headers[TenantIds.HeaderName].ToString());
            using var lease = frontend.Admit(tenants);
            var query = ctx.Request.Query;
            string? Param(string name) => query.TryGetValue(name, out var v) && v.Count > 0 ? v[0] : null;
            var request = instant ? MetricsRequestParser.ParseInstant(Param, frontend.Now) : MetricsRequestParser.ParseRange(Param, frontend.Now);
            var result = await frontend.QueryAsync(tenants, request, ct).ConfigureAwait(false);
            ctx.Response.ContentType = "application/json";
            await using (var w = new Utf8JsonWriter(ctx.Response.BodyWriter, WriterOptions))
            {
                if (instant)
                {
                    MetricsJson.WriteInstant(w, result);
                }
                else
                {
                    MetricsJson.WriteRange(w, result);
                }
            }

            await ctx.Response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (SearchRequestException e)
        {
            ctx.Response.StatusCode = e.StatusCode;
            ctx.Response.ContentType = "text/plain; charset=utf-8";
            await ctx.Response.WriteAsync(e.Message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away (Tempo logs 499); the jobs were cancelled through the token.
            ctx.Response.StatusCode = 499;
        }
    }

    private static ValueTask GuardGrpc(GrpcCallContext ctx, MetricsFrontend frontend, bool multitenancyEnabled, Func<IReadOnlyList<string>, Task> body) =>
        StreamingQuerier.GuardAsync(ctx, frontend.Admit, multitenancyEnabled, body);

    private static async Task StreamAsync(MetricsFrontend frontend, IReadOnlyList<string> tenants, MetricsQueryRequest request, GrpcStreamWriter writer, CancellationToken ct)
    {
        var run = frontend.Start(tenants, request, ct);
        var interval = frontend.Config.StreamingUpdateInterval;
        while (!run.Completion.IsCompleted)
        {
            try
            {
                await run.Completion.WaitAsync(interval, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                if (run.Snapshot() is { } partial)
                {
                    using var msg = request.Instant ? MetricsProto.EncodeInstant(partial) : MetricsProto.EncodeRange(partial);
                    await writer.WriteAsync(msg.WrittenMemory).ConfigureAwait(false);
                }
            }
            catch (Exception) when (run.Completion.IsCompleted)
            {
                // Observed below.
            }
        }

        var final = await run.Completion.ConfigureAwait(false);
        using var last = request.Instant ? MetricsProto.EncodeInstant(final) : MetricsProto.EncodeRange(final);
        await writer.WriteAsync(last.WrittenMemory).ConfigureAwait(false);
    }
}

/// <summary>
/// Tempo's protojson for metrics responses: <c>{"series":[{"labels":[{"key":..,"value":{"stringValue":..}}],
/// "samples":[{"timestampMs":"…","value":1.5}],"promLabels":"{…}","exemplars":[…]}],"metrics":{…}}</c>; instant:
/// <c>{"series":[{"labels":[…],"value":3,"promLabels":"{…}"}],"metrics":{…}}</c>. int64 values are strings; samples
/// without a finite value are left out; a partial response (series limit) carries <c>"status":"PARTIAL"</c> and a message.
/// </summary>
public static class MetricsJson
{
    public static void WriteRange(Utf8JsonWriter w, MetricsResult result)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(result);
        w.WriteStartObject();
        w.WriteStartArray("series");
        foreach (var s in result.Series)
        {
            w.WriteStartObject();
            WriteLabels(w, "labels", s.Labels);
            w.WriteStartArray("samples");
            for (int i = 0; i < s.Values.Length; i++)
            {
                if (double.IsFinite(s.Values[i]))
                {
                    w.WriteStartObject();
                    w.WriteString("timestampMs", result.Range.TimestampMsOf(i).ToString(CultureInfo.InvariantCulture));
                    w.WriteNumber("value", s.Values[i]);
                    w.WriteEndObject();
                }
            }

            w.WriteEndArray();
            w.WriteString("promLabels", s.PromLabels);
            if (s.Exemplars.Count > 0)
            {
                w.WriteStartArray("exemplars");
                foreach (var e in s.Exemplars)
                {
                    w.WriteStartObject();
                    WriteLabels(w, "labels", e.Labels);
                    if (double.IsFinite(e.Value))
                    {
                        w.WriteNumber("value", e.Value);
                    }

                    w.WriteString("timestampMs", e.TimestampMs.ToString(CultureInfo.InvariantCulture));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        WriteTail(w, result);
        w.WriteEndObject();
    }

    public static void WriteInstant(Utf8JsonWriter w, MetricsResult result)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(result);
        w.WriteStartObject();
        w.WriteStartArray("series");
        foreach (var s in result.Series)
        {
            if (!double.IsFinite(s.Values[0]))
            {
                continue;
            }

            w.WriteStartObject();
            WriteLabels(w, "labels", s.Labels);
            w.WriteNumber("value", s.Values[0]);
            w.WriteString("promLabels", s.PromLabels);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        WriteTail(w, result);
        w.WriteEndObject();
    }

    /// <summary>A label value as protojson <c>AnyValue</c>: strings (also status, kind, durations), ints as strings, doubles, bools; nil as <c>{}</c>.</summary>
    internal static void WriteLabels(Utf8JsonWriter w, string name, IReadOnlyList<SeriesLabel> labels)
    {
        w.WriteStartArray(name);
        foreach (var l in labels)
        {
            w.WriteStartObject();
            w.WriteString("key", l.Name);
            w.WritePropertyName("value");
            if (l.Value.Kind == ValueKind.Nil)
            {
                // A nil label (by() over an attribute a span lacks) is an empty AnyValue.
                w.WriteStartObject();
                w.WriteEndObject();
            }
            else
            {
                SearchResultJson.WriteAnyValue(w, l.Value);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteTail(Utf8JsonWriter w, MetricsResult result)
    {
        var m = result.Stats;
        w.WriteStartObject("metrics");
        if (m.InspectedTraces != 0)
        {
            w.WriteNumber("inspectedTraces", m.InspectedTraces);
        }

        if (m.InspectedBytes != 0)
        {
            w.WriteString("inspectedBytes", m.InspectedBytes.ToString(CultureInfo.InvariantCulture));
        }

        if (m.TotalBlocks != 0)
        {
            w.WriteNumber("totalBlocks", m.TotalBlocks);
        }

        if (m.CompletedJobs != 0)
        {
            w.WriteNumber("completedJobs", m.CompletedJobs);
        }

        if (m.TotalJobs != 0)
        {
            w.WriteNumber("totalJobs", m.TotalJobs);
        }

        if (m.TotalBlockBytes != 0)
        {
            w.WriteString("totalBlockBytes", m.TotalBlockBytes.ToString(CultureInfo.InvariantCulture));
        }

        if (m.InspectedSpans != 0)
        {
            w.WriteString("inspectedSpans", m.InspectedSpans.ToString(CultureInfo.InvariantCulture));
        }

        w.WriteEndObject();
        if (result.Partial)
        {
            w.WriteString("status", "PARTIAL");
            w.WriteString("message", result.Message);
        }
    }
}

/// <summary>
/// Hand-written protobuf of Tempo's metrics messages (tempo.proto): <c>QueryRangeRequest</c> 1 query, 2 start, 3 end,
/// 4 step (Unix ns), 16 exemplars, 17 maxSeries; <c>QueryInstantRequest</c> 1 query, 2 start, 3 end, 4 maxSeries;
/// <c>QueryRangeResponse</c>/<c>QueryInstantResponse</c> 1 series, 2 metrics (<c>SearchMetrics</c>), 3 status
/// (PARTIAL = 1), 4 message; <c>TimeSeries</c> 1 labels, 2 samples, 3 promLabels, 4 exemplars; <c>Sample</c> 1 value
/// (double), 2 timestamp_ms; <c>Exemplar</c> 1 labels, 2 value, 3 timestamp_ms; <c>InstantSeries</c> 1 labels,
/// 2 value, 3 promLabels; labels are <c>common.v1.KeyValue</c> (1 key, 2 AnyValue: 1 string, 2 bool, 3 int, 4 double).
/// </summary>
public static class MetricsProto
{
    public static MetricsQueryRequest DecodeRangeRequest(ReadOnlySpan<byte> data, DateTimeOffset now)
    {
        var r = new ProtoReader(data);
        string? query = null;
        ulong start = 0, end = 0, step = 0;
        uint exemplars = 0, maxSeries = 0;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1 when wt == WireType.LengthDelimited: query = r.ReadString(); break;
                case 2 when wt == WireType.Varint: start = r.ReadVarint(); break;
                case 3 when wt == WireType.Varint: end = r.ReadVarint(); break;
                case 4 when wt == WireType.Varint: step = r.ReadVarint(); break;
                case 16 when wt == WireType.Varint: exemplars = r.ReadVarint32(); break;
                case 17 when wt == WireType.Varint: maxSeries = r.ReadVarint32(); break;
                default: r.SkipField(field, wt); break;
            }
        }

        return MetricsRequestParser.FromValues(query, start, end, step, exemplars, maxSeries, instant: false, now);
    }

    public static MetricsQueryRequest DecodeInstantRequest(ReadOnlySpan<byte> data, DateTimeOffset now)
    {
        var r = new ProtoReader(data);
        string? query = null;
        ulong start = 0, end = 0;
        uint maxSeries = 0;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1 when wt == WireType.LengthDelimited: query = r.ReadString(); break;
                case 2 when wt == WireType.Varint: start = r.ReadVarint(); break;
                case 3 when wt == WireType.Varint: end = r.ReadVarint(); break;
                case 4 when wt == WireType.Varint: maxSeries = r.ReadVarint32(); break;
                default: r.SkipField(field, wt); break;
            }
        }

        return MetricsRequestParser.FromValues(query, start, end, 0, 0, maxSeries, instant: true, now);
    }

    /// <summary>Encodes a <c>QueryRangeRequest</c> (clients and tests).</summary>
    public static byte[] EncodeRangeRequest(string query, ulong startNs, ulong endNs, ulong stepNs, uint exemplars = 0)
    {
        using var w = new ProtoWriter();
        w.WriteStringField(1, query);
        w.WriteVarintField(2, startNs);
        w.WriteVarintField(3, endNs);
        w.WriteVarintField(4, stepNs);
        if (exemplars != 0)
        {
            w.WriteVarintField(16, exemplars);
        }

        return w.ToArray();
    }

    /// <summary>Encodes a <c>QueryInstantRequest</c> (clients and tests).</summary>
    public static byte[] EncodeInstantRequest(string query, ulong startNs, ulong endNs)
    {
        using var w = new ProtoWriter();
        w.WriteStringField(1, query);
        w.WriteVarintField(2, startNs);
        w.WriteVarintField(3, endNs);
        return w.ToArray();
    }

    public static ProtoWriter EncodeRange(MetricsResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var w = new ProtoWriter();
        foreach (var s in result.Series)
        {
            int ts = w.BeginMessage(1);
            WriteLabels(w, 1, s.Labels);
            for (int i = 0; i < s.Values.Length; i++)
            {
                if (double.IsFinite(s.Values[i]))
                {
                    int sm = w.BeginMessage(2);
                    w.WriteFixed64Field(1, BitConverter.DoubleToUInt64Bits(s.Values[i]));
                    w.WriteVarintField(2, (ulong)result.Range.TimestampMsOf(i));
                    w.EndMessage(sm);
                }
            }

            w.WriteStringField(3, s.PromLabels);
            foreach (var e in s.Exemplars)
            {
                int em = w.BeginMessage(4);
                WriteLabels(w, 1, e.Labels);
                w.WriteFixed64Field(2, BitConverter.DoubleToUInt64Bits(e.Value));
                w.WriteVarintField(3, (ulong)e.TimestampMs);
                w.EndMessage(em);
            }

            w.EndMessage(ts);
        }

        WriteTail(w, result);
        return w;
    }

    public static ProtoWriter EncodeInstant(MetricsResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var w = new ProtoWriter();
        foreach (var s in result.Series)
        {
            if (!double.IsFinite(s.Values[0]))
            {
                continue;
            }

            int ts = w.BeginMessage(1);
            WriteLabels(w, 1, s.Labels);
            w.WriteFixed64Field(2, BitConverter.DoubleToUInt64Bits(s.Values[0]));
            w.WriteStringField(3, s.PromLabels);
            w.EndMessage(ts);
        }

        WriteTail(w, result);
        return w;
    }

    private static void WriteLabels(ProtoWriter w, int field, IReadOnlyList<SeriesLabel> labels)
    {
        foreach (var l in labels)
        {
            int kv = w.BeginMessage(field);
            w.WriteStringField(1, l.Name);
            int av = w.BeginMessage(2);
            if (l.Value.Kind != ValueKind.Nil)
            {
                StreamingProto.WriteAnyValueBody(w, l.Value);
            }

            w.EndMessage(av);
            w.EndMessage(kv);
        }
    }

    private static void WriteTail(ProtoWriter w, MetricsResult result)
    {
        var m = result.Stats;
        int t = w.BeginMessage(2);
        WriteNonZero(w, 1, m.InspectedTraces);
        WriteNonZero(w, 2, m.InspectedBytes);
        WriteNonZero(w, 3, m.TotalBlocks);
        WriteNonZero(w, 4, m.CompletedJobs);
        WriteNonZero(w, 5, m.TotalJobs);
        WriteNonZero(w, 6, m.TotalBlockBytes);
        WriteNonZero(w, 7, m.InspectedSpans);
        w.EndMessage(t);
        if (result.Partial)
        {
            w.WriteVarintField(3, 1);
            w.WriteStringField(4, result.Message);
        }
    }

    private static void WriteNonZero(ProtoWriter w, int field, ulong v)
    {
        if (v != 0)
        {
            w.WriteVarintField(field, v);
        }
    }
}
