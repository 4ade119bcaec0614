using Rubato.Common.Model;

namespace Rubato.Common.Contracts;

/// <summary>Why spans were refused. Each maps to the status and reason string Tempo uses.</summary>
public enum RefusalReason
{
    None = 0,

    /// <summary>Malformed request or ids: HTTP 400 / gRPC INVALID_ARGUMENT.</summary>
    InvalidInput,

    /// <summary>Tenant ingestion rate exceeded: HTTP 429 / gRPC RESOURCE_EXHAUSTED, reason <c>RATE_LIMITED</c>.</summary>
    RateLimited,

    /// <summary>A trace grew past <c>global.max_bytes_per_trace</c>: 429 / RESOURCE_EXHAUSTED, <c>TRACE_TOO_LARGE</c>.</summary>
    TraceTooLarge,

    /// <summary>Tenant has <c>max_traces_per_user</c> live traces: 429 / RESOURCE_EXHAUSTED, <c>LIVE_TRACES_EXCEEDED</c>.</summary>
    LiveTracesExceeded,

    /// <summary>The server is stopping or the ingester cannot take writes: HTTP 503 / gRPC UNAVAILABLE.</summary>
    Unavailable,
}

public static class RefusalReasons
{
    /// <summary>The label value used in <c>rubato_discarded_spans_total{reason=...}</c> and in error messages (Tempo's strings).</summary>
    public static string Label(this RefusalReason r) => r switch
    {
        RefusalReason.InvalidInput => "INVALID_INPUT",
        RefusalReason.RateLimited => "RATE_LIMITED",
        RefusalReason.TraceTooLarge => "TRACE_TOO_LARGE",
        RefusalReason.LiveTracesExceeded => "LIVE_TRACES_EXCEEDED",
        RefusalReason.Unavailable => "UNAVAILABLE",
        _ => "NONE",
    };

    public static int HttpStatus(this RefusalReason r) => r switch
    {
        RefusalReason.None => 200,
        RefusalReason.InvalidInput => 400,
        RefusalReason.Unavailable => 503,
        _ => 429,
    };
}

/// <summary>
/// Outcome of one push. Spans counted in <see cref="AcceptedSpans"/> are durable (in the WAL) when this is returned;
/// refused spans were never stored, so a client retry cannot lose data (it may only duplicate spans, which are collapsed).
/// </summary>
public readonly record struct PushResult(int AcceptedSpans, int RefusedSpans, RefusalReason Reason, string? Message)
{
    public bool IsFullSuccess => RefusedSpans == 0 && Reason == RefusalReason.None;

    public static PushResult Ok(int spans) => new(spans, 0, RefusalReason.None, null);

    public static PushResult Refused(int refused, RefusalReason reason, string message) => new(0, refused, reason, message);
}

/// <summary>
/// The distributor's entry point, called by every receiver (OTLP, Zipkin, Jaeger) on its request thread.
/// Implementations validate, apply tenant limits and forward; they return only once accepted spans are durable.
/// </summary>
public interface ITracePusher
{
    /// <summary>
    /// Pushes an OTLP <c>ExportTraceServiceRequest</c> (equivalently <c>TracesData</c>) in protobuf encoding.
    /// The hot path: the bytes are scanned, never materialised into <see cref="Trace"/> objects.
    /// </summary>
    ValueTask<PushResult> PushOtlpAsync(string tenantId, ReadOnlyMemory<byte> exportTraceServiceRequest, CancellationToken cancellationToken);

    /// <summary>Pushes spans already translated to the model (Zipkin, Jaeger, OTLP JSON receivers).</summary>
    ValueTask<PushResult> PushTraceAsync(string tenantId, Trace spans, CancellationToken cancellationToken);
}
