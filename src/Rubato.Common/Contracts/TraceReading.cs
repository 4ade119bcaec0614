using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.Common.Contracts;

/// <summary>An inclusive time range in unix seconds; 0 on either side means unbounded (Tempo's start/end semantics).</summary>
public readonly record struct TimeRange(long StartUnixSeconds, long EndUnixSeconds)
{
    public static TimeRange All => default;

    /// <summary>True when [startNano, endNano] overlaps this range.</summary>
    public bool Overlaps(ulong startUnixNano, ulong endUnixNano)
    {
        if (StartUnixSeconds > 0 && endUnixNano / 1_000_000_000UL < (ulong)StartUnixSeconds)
        {
            return false;
        }

        return EndUnixSeconds <= 0 || startUnixNano / 1_000_000_000UL <= (ulong)EndUnixSeconds;
    }
}

/// <summary>
/// Finds the parts of a trace one source holds (an ingester's live traces, WAL and unflushed blocks; or the backend's
/// blocks). The querier combines the parts of all sources.
/// </summary>
public interface ITraceByIdReader
{
    /// <returns>The spans this source holds for the trace, or null when it holds none.</returns>
    ValueTask<Trace?> FindTraceByIdAsync(string tenantId, TraceId traceId, TimeRange range, CancellationToken cancellationToken);
}

/// <summary>Asks components holding in-memory data to flush it (the <c>/flush</c> endpoint).</summary>
public interface IFlushable
{
    Task FlushAsync(CancellationToken cancellationToken);
}
