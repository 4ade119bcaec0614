using System.Runtime.CompilerServices;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend;

/// <summary>The time range a source is asked to plan for, in Unix nanoseconds; 0/0 = everything it holds.</summary>
public readonly record struct SearchRange(long StartUnixNanos, long EndUnixNanos)
{
    public bool IsUnbounded => StartUnixNanos == 0 && EndUnixNanos == 0;
}

/// <summary>
/// The immutable block a job reads: its id, its time range in Unix seconds (start truncated, end rounded up, as in
/// meta.json), and the page (row group) range read; <c>Pages</c> 0 = the whole block.
/// </summary>
public readonly record struct SearchJobBlock(Guid BlockId, long StartUnixSeconds, long EndUnixSeconds, int StartPage = 0, int Pages = 0);

/// <summary>
/// One unit of search work: opens a fetcher over part of the data (one head, one block, a page range of a block).
/// <see cref="OpenAsync"/> runs on a frontend worker task; the fetcher it returns is enumerated once by that task.
/// </summary>
public sealed class SearchJob
{
    public SearchJob(string name, Func<CancellationToken, ValueTask<ISpansetFetcher>> open, bool isBlock = false, ulong bytes = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        OpenAsync = open ?? throw new ArgumentNullException(nameof(open));
        IsBlock = isBlock;
        Bytes = bytes;
    }

    /// <summary>Job description for logs and errors (e.g. "ingester", "block 4f…/pages 0-9").</summary>
    public string Name { get; }

    public Func<CancellationToken, ValueTask<ISpansetFetcher>> OpenAsync { get; }

    /// <summary>Counts toward <c>totalBlocks</c>/<c>totalBlockBytes</c> in the response metrics.</summary>
    public bool IsBlock { get; }

    public ulong Bytes { get; }

    /// <summary>
    /// The block (and page range) this job reads, when it reads exactly one immutable block; null for in-memory data.
    /// Set for block jobs so the frontend-search cache can key their results.
    /// </summary>
    public SearchJobBlock? Block { get; init; }

    /// <summary>
    /// Optional: adds the tag names of the job's data (startNanos, endNanos; 0/0 = all) to a collector without walking
    /// spans (a block's dictionaries and key columns); used by unfiltered tag searches. It must stop once the collector
    /// is full. Null: tag searches walk the job's spans.
    /// </summary>
    public Func<TagNamesCollector, long, long, CancellationToken, Task>? CollectTagNames { get; init; }

    /// <summary>Optional: like <see cref="CollectTagNames"/>, for the values of the collector's tag.</summary>
    public Func<TagValuesCollector, long, long, CancellationToken, Task>? CollectTagValues { get; init; }

    /// <summary>
    /// Optional: true once a read of this job's data ended early, quietly, because the data disappeared (an ingester's
    /// complete block deleted after compaction, see <see cref="VanishingDataFetcher"/>). Such a read holds part of the
    /// block, so the frontend-search cache does not store it. Null: the data cannot vanish.
    /// </summary>
    public Func<bool>? DataVanished { get; init; }

    /// <summary>A job over an already built fetcher.</summary>
    public static SearchJob ForFetcher(string name, ISpansetFetcher fetcher, bool isBlock = false, ulong bytes = 0)
    {
        ArgumentNullException.ThrowIfNull(fetcher);
        return new SearchJob(name, _ => ValueTask.FromResult(fetcher), isBlock, bytes);
    }
}

/// <summary>
/// Where searches read from. The frontend asks every registered source to plan jobs for a tenant and range:
/// recent sources (<see cref="IsRecent"/>: ingesters' in-memory heads) for the range newer than
/// <c>query_ingesters_until</c> (and for searches without start/end), the others (backend blocks) for the range older
/// than <c>query_backend_after</c>. Implementations must be thread-safe: plans for different requests run concurrently.
/// </summary>
public interface ISearchSource
{
    string Name { get; }

    bool IsRecent { get; }

    ValueTask<IReadOnlyList<SearchJob>> PlanAsync(string tenantId, SearchRange range, CancellationToken cancellationToken);
}

/// <summary>A source built from a delegate: one job per call (e.g. the ingester's <c>CreateFetcher</c>).</summary>
public sealed class DelegateSearchSource : ISearchSource
{
    private readonly Func<string, SearchRange, CancellationToken, ValueTask<IReadOnlyList<SearchJob>>> _plan;

    public DelegateSearchSource(string name, bool isRecent, Func<string, SearchRange, CancellationToken, ValueTask<IReadOnlyList<SearchJob>>> plan)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        IsRecent = isRecent;
        _plan = plan ?? throw new ArgumentNullException(nameof(plan));
    }

    public string Name { get; }

    public bool IsRecent { get; }

    /// <summary>A recent source with one job per plan from a fetcher factory (tenant, startNanos, endNanos).</summary>
    public static DelegateSearchSource Recent(string name, Func<string, long, long, ISpansetFetcher> createFetcher)
    {
        ArgumentNullException.ThrowIfNull(createFetcher);
        return new DelegateSearchSource(name, true, (tenant, range, _) =>
            ValueTask.FromResult<IReadOnlyList<SearchJob>>(
                [SearchJob.ForFetcher(name, createFetcher(tenant, range.StartUnixNanos, range.EndUnixNanos))]));
    }

    public ValueTask<IReadOnlyList<SearchJob>> PlanAsync(string tenantId, SearchRange range, CancellationToken cancellationToken) =>
        _plan(tenantId, range, cancellationToken);
}

/// <summary>
/// Wraps a fetcher over data that may disappear while it is recent (an ingester's complete block deleted after
/// compaction): when the wrapped fetcher fails with an exception <c>vanished</c> accepts, the fetch ends quietly with
/// what it yielded so far instead of failing the whole search. Other failures and cancellation pass through.
/// </summary>
public sealed class VanishingDataFetcher(ISpansetFetcher inner, Func<Exception, bool> vanished) : ISpansetFetcher, IFetchStatistics
{
    public ulong InspectedBytes => (inner as IFetchStatistics)?.InspectedBytes ?? 0;

    public async IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var e = inner.FetchAsync(request, cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await e.MoveNextAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (vanished(ex) && !cancellationToken.IsCancellationRequested)
            {
                more = false;
            }

            if (!more)
            {
                yield break;
            }

            yield return e.Current;
        }
    }
}
