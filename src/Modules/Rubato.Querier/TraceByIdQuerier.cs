using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Querier;

/// <summary>
/// Finds a trace by ID across every source that may hold part of it (recent data in ingesters, blocks in the
/// backend) and combines the parts, collapsing spans that more than one source returned.
/// </summary>
/// <remarks>Sources are asked concurrently; one failing source fails the query (a partial trace would look whole).</remarks>
public sealed class TraceByIdQuerier
{
    private readonly IReadOnlyList<ITraceByIdReader> _sources;

    public TraceByIdQuerier(IReadOnlyList<ITraceByIdReader> sources) => _sources = sources;

    /// <param name="tenantIds">One tenant, or several for a cross-tenant query (<c>a|b</c>).</param>
    /// <returns>The combined trace, or null when no source holds any span of it.</returns>
    public async Task<Trace?> FindAsync(IReadOnlyList<string> tenantIds, TraceId traceId, TimeRange range, CancellationToken cancellationToken)
    {
        var lookups = new List<Task<Trace?>>(_sources.Count * tenantIds.Count);
        foreach (var tenant in tenantIds)
        {
            foreach (var source in _sources)
            {
                lookups.Add(source.FindTraceByIdAsync(tenant, traceId, range, cancellationToken).AsTask());
            }
        }

        var parts = await Task.WhenAll(lookups).ConfigureAwait(false);
        var found = parts.Where(p => p is not null && p.ResourceSpans.Count > 0).Cast<Trace>().ToList();
        return found.Count switch
        {
            0 => null,
            _ => TraceCombiner.Combine(found),
        };
    }
}
