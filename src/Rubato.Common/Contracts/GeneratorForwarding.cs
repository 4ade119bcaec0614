namespace Rubato.Common.Contracts;

/// <summary>
/// Where the distributor copies accepted trace segments for the metrics-generator (Tempo's distributor →
/// generator forwarding). Called on the pushing thread after the ingest acknowledgement is decided.
/// </summary>
public interface IGeneratorForwarder
{
    /// <summary>
    /// Hands over the segments the ingester accepted. The payload memory is only valid during the call, so the
    /// implementation copies what it keeps. Must not block or throw: when the generator cannot keep up it drops
    /// (and counts) the spans; the push outcome never depends on the generator.
    /// </summary>
    void Forward(string tenantId, IReadOnlyList<TraceSegment> acceptedSegments);
}
