using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Metrics;

namespace Rubato.QueryFrontend;

/// <summary>
/// TraceQL metrics over every registered <see cref="ISearchSource"/>: one job for the ingester's live traces and WAL,
/// one per backend block overlapping the range; jobs run with bounded concurrency on thread-pool tasks and their
/// partial results are merged exactly (<see cref="MetricsShardResult.Merge"/>), then finalised once (second stages,
/// arithmetic). Thread-safe; one instance serves every request.
/// </summary>
/// <remarks>
/// Unlike search, metrics ask every source for the whole range rather than splitting it at
/// <c>query_backend_after</c>: a span is held by exactly one place (the ingester's heads until its block is written and
/// announced, then the block), so counting every source over the whole range, each block once, counts each span
/// once. During the instant between a block's announcement and the ingester dropping that head, a query can see
/// both copies.
/// </remarks>
public sealed class MetricsFrontend
{
    private readonly SearchFrontend _search;
    private readonly IReadOnlyList<ISearchSource> _sources;
    private readonly MetricsFrontendConfig _config;
    private readonly TimeProvider _time;

    public MetricsFrontend(SearchFrontend search, IEnumerable<ISearchSource> sources, MetricsFrontendConfig config, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(search);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(config);
        _search = search;
        _sources = [.. sources];
        _config = config;
        _time = time ?? TimeProvider.System;
    }

    public MetricsFrontendConfig Config => _config;

    public DateTimeOffset Now => _time.GetUtcNow();

    /// <summary>Admits a request (shared per-tenant bound with search); see <see cref="SearchFrontend.Admit"/>.</summary>
    public IDisposable Admit(IReadOnlyList<string> tenants) => _search.Admit(tenants);

    /// <summary>Starts a query; <see cref="MetricsRun.Completion"/> gives the final result.</summary>
    /// <exception cref="SearchRequestException">400 when the range is too long or the query cannot run.</exception>
    public MetricsRun Start(IReadOnlyList<string> tenants, MetricsQueryRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenants);
        ArgumentNullException.ThrowIfNull(request);
        var max = _config.MaxDuration;
        if (max > TimeSpan.Zero && request.EndUnixNanos - request.StartUnixNanos > max.Ticks * 100)
        {
            throw SearchRequestException.BadRequest(
                $"metrics query time range exceeds the maximum allowed duration of {ValueText.GoDuration(max.Ticks * 100)}");
        }

        CompiledMetricsQuery compiled;
        try
        {
            int exemplars = request.Instant ? 0 : request.Exemplars == 0 ? _config.MaxExemplars : Math.Min(request.Exemplars, _config.MaxExemplars);
            compiled = CompiledMetricsQuery.Compile(request.Root, request.Range(), exemplars);
        }
        catch (Exception e) when (e is TraceQLEvaluationException or ArgumentException)
        {
            throw SearchRequestException.BadRequest(e.Message);
        }

        int maxSeries = _config.MaxResponseSeries;
        if (request.MaxSeries > 0)
        {
            maxSeries = maxSeries == 0 ? request.MaxSeries : Math.Min(maxSeries, request.MaxSeries);
        }

        var run = new MetricsRun(compiled, maxSeries);
        run.Start(this, tenants, cancellationToken);
        return run;
    }

    public async Task<MetricsResult> QueryAsync(IReadOnlyList<string> tenants, MetricsQueryRequest request, CancellationToken cancellationToken) =>
        await Start(tenants, request, cancellationToken).Completion.ConfigureAwait(false);

    internal async Task<List<(string Tenant, SearchJob Job)>> PlanAsync(IReadOnlyList<string> tenants, MetricsRange range, CancellationToken ct)
    {
        var jobs = new List<(string, SearchJob)>();
        var window = new SearchRange(range.StartUnixNanos, range.EndUnixNanos);
        foreach (var tenant in tenants)
        {
            // A block can be planned twice: by the ingester (flushed within complete_block_timeout) and by the backend
            // list. Search merges traces so that is harmless; metrics would count its spans twice, so each block (page
            // range) runs once.
            var blocks = new HashSet<SearchJobBlock>();
            foreach (var source in _sources)
            {
                foreach (var job in await source.PlanAsync(tenant, window, ct).ConfigureAwait(false))
                {
                    if (job.Block is { } b && !blocks.Add(b))
                    {
                        continue;
                    }

                    jobs.Add((tenant, job));
                }
            }
        }

        return jobs;
    }
}

/// <summary>
/// One running metrics query: the merged partial (guarded by locking this run), a version counter for streaming
/// updates, and the completion. Workers merge job results under the lock; <see cref="Snapshot"/> finalises a copy.
/// </summary>
public sealed class MetricsRun
{
    private readonly CompiledMetricsQuery _compiled;
    private readonly int _maxSeries;
    private readonly MetricsShardResult _merged;
    private int _version;
    private int _taken;

    internal MetricsRun(CompiledMetricsQuery compiled, int maxSeries)
    {
        _compiled = compiled;
        _maxSeries = maxSeries;
        _merged = compiled.NewShard();
    }

    public CompiledMetricsQuery Compiled => _compiled;

    public Task<MetricsResult> Completion { get; private set; } = Task.FromResult(new MetricsResult());

    /// <summary>
    /// The result over the jobs finished so far, or null when nothing changed since the last call (streaming).
    /// Finalises a copy, so the running merge is not disturbed.
    /// </summary>
    public MetricsResult? Snapshot()
    {
        lock (this)
        {
            if (_version == _taken)
            {
                return null;
            }

            _taken = _version;
            var copy = _compiled.NewShard();
            copy.Merge(_merged);
            return _compiled.Finalize(copy, _maxSeries);
        }
    }

    internal void Start(MetricsFrontend frontend, IReadOnlyList<string> tenants, CancellationToken ct) =>
        Completion = RunAsync(frontend, tenants, ct);

    private async Task<MetricsResult> RunAsync(MetricsFrontend frontend, IReadOnlyList<string> tenants, CancellationToken ct)
    {
        var jobs = await frontend.PlanAsync(tenants, _compiled.Range, ct).ConfigureAwait(false);
        lock (this)
        {
            _merged.Stats.TotalJobs = (uint)jobs.Count;
            foreach (var (_, job) in jobs)
            {
                if (job.IsBlock)
                {
                    _merged.Stats.TotalBlocks++;
                    _merged.Stats.TotalBlockBytes += job.Bytes;
                }
            }
        }

        try
        {
            await JobRunner.RunAsync(jobs, frontend.Config.ConcurrentJobs, async (item, token) =>
            {
                var fetcher = await item.Job.OpenAsync(token).ConfigureAwait(false);
                var shard = await _compiled.RunShardAsync(fetcher, token).ConfigureAwait(false);
                lock (this)
                {
                    _merged.Merge(shard);
                    _version++;
                }

                return false;
            }, ct).ConfigureAwait(false);
        }
        catch (TraceQLEvaluationException e)
        {
            throw SearchRequestException.BadRequest(e.Message);
        }

        lock (this)
        {
            return _compiled.Finalize(_merged, _maxSeries);
        }
    }
}
