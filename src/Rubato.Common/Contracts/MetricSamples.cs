namespace Rubato.Common.Contracts;

/// <summary>One label pair of a Prometheus series.</summary>
public readonly record struct SeriesLabel(string Name, string Value);

/// <summary>
/// One sample of one series taken at a registry collection. <see cref="Labels"/> includes <c>__name__</c>, holds each
/// name once and is sorted by name (ordinal), as Prometheus remote write requires.
/// </summary>
public readonly record struct SeriesSample(SeriesLabel[] Labels, long TimestampMs, double Value);

/// <summary>
/// Where the metrics-generator's registry hands the samples of each collection (remote write behind a local WAL).
/// Called on the registry's collection thread, once per tenant per <c>collection_interval</c>.
/// </summary>
public interface IMetricsSampleAppender
{
    /// <summary>
    /// Makes one collection's samples of one tenant durable (WAL) before returning; sending to the remote-write
    /// endpoints happens in the background, so a Prometheus outage never blocks collection.
    /// </summary>
    ValueTask AppendAsync(string tenantId, IReadOnlyList<SeriesSample> samples, CancellationToken cancellationToken);
}
