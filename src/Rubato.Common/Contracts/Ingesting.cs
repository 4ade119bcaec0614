using Rubato.Common.Ids;

namespace Rubato.Common.Contracts;

/// <summary>
/// The spans of one trace from one push, as protobuf <c>tempopb.Trace</c> bytes (field 1: repeated ResourceSpans),
/// which is byte-compatible with OTLP <c>TracesData</c>. Produced by the distributor's splitter.
/// </summary>
/// <param name="TraceId">The trace all spans in <paramref name="Payload"/> belong to.</param>
/// <param name="Payload">Protobuf bytes; owned by the caller until the push returns (the receiver copies what it keeps).</param>
/// <param name="SpanCount">Spans in the payload.</param>
/// <param name="StartUnixNano">Earliest span start in the payload.</param>
/// <param name="EndUnixNano">Latest span end in the payload.</param>
public readonly record struct TraceSegment(TraceId TraceId, ReadOnlyMemory<byte> Payload, int SpanCount, ulong StartUnixNano, ulong EndUnixNano);

/// <summary>Per-segment outcome of <see cref="IIngestSink.PushSegmentsAsync"/>.</summary>
/// <param name="Refusals">Null when every segment was accepted; otherwise one entry per segment (None = accepted).</param>
public readonly record struct IngestResult(RefusalReason[]? Refusals)
{
    public static IngestResult AllAccepted => new(null);
}

/// <summary>
/// Where the distributor sends trace segments: an ingester (in process in <c>all</c>, over gRPC later).
/// Implementations make every accepted segment durable (WAL) before returning.
/// </summary>
public interface IIngestSink
{
    ValueTask<IngestResult> PushSegmentsAsync(string tenantId, IReadOnlyList<TraceSegment> segments, CancellationToken cancellationToken);
}
