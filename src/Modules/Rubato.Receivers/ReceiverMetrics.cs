using Rubato.Common.Metrics;

namespace Rubato.Receivers;

/// <summary>The receivers' series in the shared <see cref="MetricsRegistry"/>.</summary>
/// <remarks>Thread-safe; children are looked up per request (one dictionary read), not per span.</remarks>
internal sealed class ReceiverMetrics
{
    public ReceiverMetrics(MetricsRegistry registry)
    {
        Accepted = registry.Counter("rubato_receiver_accepted_spans_total",
            "Spans the distributor accepted, by receiver and transport.", "receiver", "transport");
        Refused = registry.Counter("rubato_receiver_refused_spans_total",
            "Spans the distributor refused (limits, invalid input, unavailable), by receiver and transport.", "receiver", "transport");
        FailedRequests = registry.Counter("rubato_receiver_failed_requests_total",
            "Requests or datagrams rejected before reaching the distributor, by reason.", "receiver", "transport", "reason");
        Duration = registry.Histogram("rubato_receiver_request_duration_seconds",
            "Time to decode and push one request or datagram.", Histogram.DefaultSecondsBuckets, "receiver", "transport");
    }

    public Counter Accepted { get; }

    public Counter Refused { get; }

    /// <summary>Reasons: malformed, unsupported_media_type, too_large, no_tenant, invalid_tenant, queue_full.</summary>
    public Counter FailedRequests { get; }

    public Histogram Duration { get; }
}
