using System.Collections.Concurrent;
using Rubato.Cache;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend;

/// <summary>Tempo's <c>MetadataMetrics</c> of tag searches.</summary>
public sealed class MetadataMetrics
{
    public ulong InspectedBytes { get; set; }

    public uint TotalJobs { get; set; }

    public uint CompletedJobs { get; set; }

    public uint TotalBlocks { get; set; }

    public ulong TotalBlockBytes { get; set; }
}

/// <summary>
/// The query-frontend's search path: admits requests through a per-tenant bound, plans jobs across the registered
/// <see cref="ISearchSource"/>s, runs them with bounded concurrency on thread-pool tasks, and merges results with the
/// engine's <see cref="SearchResultCombiner"/>, releasing the response as soon as <c>limit</c> traces are found
/// (the remaining jobs are cancelled and not awaited). Thread-safe; one instance serves every request.
/// </summary>
public sealed class SearchFrontend
{
    private readonly QueryFrontendConfig _config;
    private readonly IReadOnlyList<ISearchSource> _sources;
    private readonly IOverrides? _overrides;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, int> _outstanding = new(StringComparer.Ordinal);

    public SearchFrontend(QueryFrontendConfig config, IEnumerable<ISearchSource> sources, IOverrides? overrides = null, TimeProvider? time = null, SearchJobCache? jobCache = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(sources);
        config.Validate();
        _config = config;
        _sources = [.. sources];
        _overrides = overrides;
        _time = time ?? TimeProvider.System;
        JobCache = jobCache;
    }

    public QueryFrontendConfig Config => _config;

    /// <summary>The <c>frontend-search</c> cache of block job results; null when no cache has that role.</summary>
    public SearchJobCache? JobCache { get; }

    /// <summary>Requests admitted and not yet finished for a tenant.</summary>
    public int Outstanding(string tenantId) => _outstanding.TryGetValue(tenantId, out int n) ? n : 0;

    /// <summary>
    /// Admits one request for every tenant or throws 429 "too many outstanding requests"; dispose the lease when the
    /// response is done.
    /// </summary>
    public IDisposable Admit(IReadOnlyList<string> tenants)
    {
        ArgumentNullException.ThrowIfNull(tenants);
        var taken = new List<string>(tenants.Count);
        foreach (var t in tenants)
        {
            int n = _outstanding.AddOrUpdate(t, 1, (_, c) => c + 1);
            taken.Add(t);
            if (n > _config.MaxOutstandingPerTenant)
            {
                Release(taken);
                throw new SearchRequestException(429, "too many outstanding requests");
            }
        }

        return new Lease(this, taken);
    }

    /// <summary>400 when start..end is longer than the tenant's <c>max_search_duration</c> (else <c>max_duration</c>).</summary>
    public void CheckRange(IReadOnlyList<string> tenants, long startUnixSeconds, long endUnixSeconds)
    {
        ArgumentNullException.ThrowIfNull(tenants);
        if (startUnixSeconds == 0 && endUnixSeconds == 0)
        {
            return;
        }

        foreach (var t in tenants)
        {
            var max = _overrides?.ForTenant(t).Read.MaxSearchDuration is { } o && o > TimeSpan.Zero ? o : _config.Search.MaxDuration;
            if (max > TimeSpan.Zero && TimeSpan.FromSeconds(endUnixSeconds - startUnixSeconds) > max)
            {
                throw SearchRequestException.BadRequest(
                    $"range specified by start and end exceeds {ValueText.GoDuration(max.Ticks * 100)}. received start={startUnixSeconds} end={endUnixSeconds}");
            }
        }
    }

    /// <summary>Starts a search; the returned run's <see cref="SearchRun.Completion"/> gives the final result.</summary>
    /// <exception cref="SearchRequestException">The range is too long or the query cannot be searched.</exception>
    public SearchRun StartSearch(IReadOnlyList<string> tenants, SearchQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        CheckRange(tenants, query.StartUnixSeconds, query.EndUnixSeconds);
        var options = Options(query);
        CompiledSearch probe;
        try
        {
            probe = CompiledSearch.Compile(query.Root, options);
        }
        catch (TraceQLEvaluationException e)
        {
            throw SearchRequestException.BadRequest(e.Message);
        }

        var run = new SearchRun(new SearchResultCombiner(options.Limit, probe.MostRecent, options.SpansPerSpanSet));
        run.Start(this, tenants, query, options, cancellationToken);
        return run;
    }

    public async Task<SearchResult> SearchAsync(IReadOnlyList<string> tenants, SearchQuery query, CancellationToken cancellationToken) =>
        await StartSearch(tenants, query, cancellationToken).Completion.ConfigureAwait(false);

    /// <summary>Tag names over the same sources. A <c>q</c> that does not parse is ignored (full list).</summary>
    public async Task<(TagNamesCollector Names, MetadataMetrics Metrics)> SearchTagsAsync(IReadOnlyList<string> tenants, TagNamesQuery query, CancellationToken cancellationToken)
    {
        var run = StartTagNames(tenants, query, cancellationToken);
        await run.Completion.ConfigureAwait(false);
        return (run.Result, run.Metrics);
    }

    /// <summary>Typed values of one tag. A <c>q</c> that does not parse is ignored (full list), as Tempo does.</summary>
    public async Task<(TagValuesCollector Values, MetadataMetrics Metrics)> SearchTagValuesAsync(IReadOnlyList<string> tenants, TagValuesQuery query, CancellationToken cancellationToken)
    {
        var run = StartTagValues(tenants, query, cancellationToken);
        await run.Completion.ConfigureAwait(false);
        return (run.Result, run.Metrics);
    }

    /// <summary>
    /// Starts a tag-names search: jobs add names as they find them; the run completes, cancelling the jobs still
    /// running, as soon as the answer is full (<c>limit</c> names in every requested scope, or the tenant's
    /// <c>max_bytes_per_tag_values_query</c> spent).
    /// </summary>
    public TagSearchRun<TagNamesCollector> StartTagNames(IReadOnlyList<string> tenants, TagNamesQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        CheckRange(tenants, query.StartUnixSeconds, query.EndUnixSeconds);
        long maxBytes = MaxTagBytes(tenants);
        var run = new TagSearchRun<TagNamesCollector>(new TagNamesCollector(query.Scope, query.Limit, maxBytes), c => c.AddedCount, (c, i) => c.Since(i));
        var filter = SearchRequestParser.TryParseFilter(query.Query);
        var cache = JobCache is null ? null : new TagCacheOps<TagNamesCollector>(
            JobCache.Cache,
            (tenant, job) => TagJobCache.NamesKey(tenant, job, query, filter, maxBytes),
            TagJobCache.EncodeNames,
            value => TagJobCache.DecodeNames(value, query.Scope, query.Limit, maxBytes));
        run.Completion = RunTagJobsAsync(run, tenants, query.StartUnixSeconds, query.EndUnixSeconds, filter,
            () => new TagNamesCollector(query.Scope, query.Limit, maxBytes), (c, span) => c.Add(span), (into, c) => into.Add(c), c => c.IsFull,
            job => job.CollectTagNames, cache, cancellationToken);
        return run;
    }

    /// <summary>Starts a tag-values search; completes early (cancelling the other jobs) once <c>limit</c> values or the byte budget are reached.</summary>
    /// <exception cref="SearchRequestException">The tag is not a TraceQL attribute or intrinsic, or the range is too long.</exception>
    public TagSearchRun<TagValuesCollector> StartTagValues(IReadOnlyList<string> tenants, TagValuesQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        CheckRange(tenants, query.StartUnixSeconds, query.EndUnixSeconds);
        long maxBytes = MaxTagBytes(tenants);
        TagValuesCollector result;
        try
        {
            result = new TagValuesCollector(query.Tag, query.Limit, maxBytes);
        }
        catch (ArgumentException e)
        {
            throw SearchRequestException.BadRequest(e.Message);
        }

        var run = new TagSearchRun<TagValuesCollector>(result, c => c.Values.Count, (c, i) => c.Since(i));
        var filter = SearchRequestParser.TryParseFilter(query.Query);
        var cache = JobCache is null ? null : new TagCacheOps<TagValuesCollector>(
            JobCache.Cache,
            (tenant, job) => TagJobCache.ValuesKey(tenant, job, query, filter, maxBytes),
            TagJobCache.EncodeValues,
            value => TagJobCache.DecodeValues(value, query.Tag, query.Limit, maxBytes));
        run.Completion = RunTagJobsAsync(run, tenants, query.StartUnixSeconds, query.EndUnixSeconds, filter,
            () => new TagValuesCollector(query.Tag, query.Limit, maxBytes), (c, span) => c.Add(span), (into, c) => into.Add(c), c => c.IsFull,
            job => job.CollectTagValues, cache, cancellationToken);
        return run;
    }

    /// <summary>The smallest positive <c>max_bytes_per_tag_values_query</c> of the tenants; 0 = unlimited.</summary>
    private long MaxTagBytes(IReadOnlyList<string> tenants)
    {
        long max = 0;
        foreach (var t in tenants)
        {
            long m = _overrides?.ForTenant(t).Read.MaxBytesPerTagValuesQuery ?? 0;
            if (m > 0 && (max == 0 || m < max))
            {
                max = m;
            }
        }

        return max;
    }

    internal async Task<List<(string Tenant, SearchJob Job)>> PlanAsync(IReadOnlyList<string> tenants, long startSeconds, long endSeconds, CancellationToken ct)
    {
        var jobs = new List<(string, SearchJob)>();
        long nowSeconds = _time.GetUtcNow().ToUnixTimeSeconds();
        foreach (var tenant in tenants)
        {
            // A block can be planned by the ingester (flushed within complete_block_timeout) and by the backend list:
            // it is read once (merging would make the answer right anyway, but the work and the metrics would double).
            var blocks = new HashSet<SearchJobBlock>();
            foreach (var source in _sources)
            {
                SearchRange? range;
                if (startSeconds == 0 && endSeconds == 0)
                {
                    // Tempo: without start/end only recent data is searched.
                    range = source.IsRecent ? new SearchRange(0, 0) : null;
                }
                else if (source.IsRecent)
                {
                    long from = nowSeconds - (long)_config.Search.QueryIngestersUntil.TotalSeconds;
                    range = endSeconds >= from ? new SearchRange(ToNanos(startSeconds), EndNanos(endSeconds)) : null;
                }
                else
                {
                    long until = nowSeconds - (long)_config.Search.QueryBackendAfter.TotalSeconds;
                    range = startSeconds <= until ? new SearchRange(ToNanos(startSeconds), EndNanos(Math.Min(endSeconds, until))) : null;
                }

                if (range is { } r)
                {
                    foreach (var job in await source.PlanAsync(tenant, r, ct).ConfigureAwait(false))
                    {
                        if (job.Block is not { } b || blocks.Add(b))
                        {
                            jobs.Add((tenant, job));
                        }
                    }
                }
            }
        }

        return jobs;
    }

    internal static SearchOptions Options(SearchQuery q) => new()
    {
        Limit = q.Limit,
        SpansPerSpanSet = q.SpansPerSpanSet,
        StartUnixNanos = q.StartUnixSeconds == 0 && q.EndUnixSeconds == 0 ? 0 : ToNanos(q.StartUnixSeconds),
        EndUnixNanos = q.StartUnixSeconds == 0 && q.EndUnixSeconds == 0 ? 0 : EndNanos(q.EndUnixSeconds),
    };

    private static long ToNanos(long seconds) => seconds * 1_000_000_000;

    /// <summary>End seconds are inclusive: everything up to the last nanosecond of that second.</summary>
    private static long EndNanos(long seconds) => (seconds * 1_000_000_000) + 999_999_999;

    /// <summary>
    /// Runs the tag jobs of <paramref name="run"/>. Jobs over in-memory data (and every job when a <c>q</c> filter is
    /// given) walk spans and add them to the run's collector under the run's lock, one spanset at a time, so streamed
    /// answers see names as they are found. Block jobs without a filter use the block's own tag reader
    /// (<see cref="SearchJob.CollectTagNames"/>: dictionaries and key columns, not spans) into a job-local collector
    /// merged when the block is done. Once the run's collector is full the run completes and the other jobs are
    /// cancelled: nothing more is read.
    /// With a <paramref name="cache"/>, a cacheable block job (<see cref="TagJobCache"/>) is first looked up and its
    /// cached collector merged like a finished block's; a job that ran to its own end (not cancelled, its data not
    /// vanished) stores its job-local collector in the background.
    /// </summary>
    private async Task RunTagJobsAsync<TCollector>(TagSearchRun<TCollector> run, IReadOnlyList<string> tenants, long start, long end, RootExpr? filter,
        Func<TCollector> create, Action<TCollector, EvalSpan> add, Action<TCollector, TCollector> merge, Func<TCollector, bool> isFull,
        Func<SearchJob, Func<TCollector, long, long, CancellationToken, Task>?> blockReader, TagCacheOps<TCollector>? cache, CancellationToken ct)
        where TCollector : class
    {
        var jobs = await PlanAsync(tenants, start, end, ct).ConfigureAwait(false);
        lock (run)
        {
            run.Metrics.TotalJobs = (uint)jobs.Count;
            foreach (var (_, job) in jobs)
            {
                if (job.IsBlock)
                {
                    run.Metrics.TotalBlocks++;
                    run.Metrics.TotalBlockBytes += job.Bytes;
                }
            }
        }

        var range = new SearchOptions
        {
            StartUnixNanos = start == 0 && end == 0 ? 0 : ToNanos(start),
            EndUnixNanos = start == 0 && end == 0 ? 0 : EndNanos(end),
        };
        // Merges what a job collected after its first `merged` entries into the run; true when the run is now full
        // (closed: the caller returns true and the other jobs are cancelled).
        bool MergeNew(TCollector job, ref int merged)
        {
            var fresh = run.Since(job, merged);
            merged = run.Count(job);
            lock (run)
            {
                if (run.Closed)
                {
                    return true;
                }

                merge(run.Result, fresh);
                return run.Closed = isFull(run.Result);
            }
        }

        await JobRunner.RunAsync(jobs, _config.Search.ConcurrentJobs, async (item, token) =>
        {
            string? key = cache?.KeyFor(item.Tenant, item.Job);
            if (key is not null && await TagJobCache.TryGetAsync(cache!.Cache, key, token).ConfigureAwait(false) is { } value && cache.Decode(value) is { } hit)
            {
                lock (run)
                {
                    if (run.Closed)
                    {
                        return true;
                    }

                    merge(run.Result, hit.Collector);
                    run.Metrics.CompletedJobs++;
                    run.Metrics.InspectedBytes += hit.InspectedBytes;
                    return run.Closed = isFull(run.Result);
                }
            }

            if (filter is null && blockReader(item.Job) is { } read)
            {
                var local = create();
                await read(local, range.StartUnixNanos, range.EndUnixNanos, token).ConfigureAwait(false);
                // The reader finished on its own (read the block, or filled the job-local collector): its result
                // does not depend on other jobs. Cancelled or vanished reads may have returned early: not stored.
                if (key is not null && !token.IsCancellationRequested && item.Job.DataVanished?.Invoke() != true)
                {
                    TagJobCache.SetInBackground(cache!.Cache, key, cache.Encode(local, 0));
                }

                lock (run)
                {
                    if (run.Closed)
                    {
                        return true;
                    }

                    merge(run.Result, local);
                    run.Metrics.CompletedJobs++;
                    return run.Closed = isFull(run.Result);
                }
            }

            FetchSpansRequest request;
            PipelineEvaluator? evaluator = null;
            if (filter is not null)
            {
                var compiled = CompiledSearch.Compile(filter, range);
                request = compiled.Request;
                evaluator = new PipelineEvaluator(filter.SearchPipeline!);
            }
            else
            {
                request = new FetchSpansRequest { StartUnixNanos = range.StartUnixNanos, EndUnixNanos = range.EndUnixNanos };
            }

            // Spans go into a job-local collector on this worker (no lock); only names/values new to it are merged into
            // the run's collector, under the run's lock. New names are rare once a job has seen a few traces, so jobs
            // over many blocks run in parallel instead of queueing on the lock.
            var job = create();
            int merged = 0;
            var fetcher = await item.Job.OpenAsync(token).ConfigureAwait(false);
            await foreach (var ss in fetcher.FetchAsync(request, token).ConfigureAwait(false))
            {
                if (run.Closed)
                {
                    return true;
                }

                if (evaluator is null)
                {
                    foreach (var s in ss.Spans)
                    {
                        add(job, s);
                    }
                }
                else
                {
                    foreach (var set in evaluator.Evaluate(ss))
                    {
                        foreach (var s in set.Spans)
                        {
                            add(job, s);
                        }
                    }
                }

                if ((run.Count(job) != merged || isFull(job)) && MergeNew(job, ref merged))
                {
                    return true;
                }
            }

            ulong inspected = fetcher is IFetchStatistics st ? st.InspectedBytes : 0;
            // Every span of the job was walked (a run closed mid-job returned above): a complete job result.
            if (key is not null && !token.IsCancellationRequested && item.Job.DataVanished?.Invoke() != true)
            {
                TagJobCache.SetInBackground(cache!.Cache, key, cache.Encode(job, inspected));
            }

            lock (run)
            {
                run.Metrics.CompletedJobs++;
                run.Metrics.InspectedBytes += inspected;
            }

            return false;
        }, ct).ConfigureAwait(false);
        lock (run)
        {
            // Late workers (cancelled but still unwinding) must not change the answer from here on.
            run.Closed = true;
        }
    }

    /// <summary>How a tag search keys, encodes and decodes its block jobs in the <c>frontend-search</c> cache.</summary>
    private sealed record TagCacheOps<TCollector>(
        ICache Cache,
        Func<string, SearchJob, string?> KeyFor,
        Func<TCollector, ulong, byte[]> Encode,
        Func<byte[], (TCollector Collector, ulong InspectedBytes)?> Decode)
        where TCollector : class;

    private void Release(List<string> tenants)
    {
        foreach (var t in tenants)
        {
            _outstanding.AddOrUpdate(t, 0, (_, c) => c - 1);
        }
    }

    private sealed class Lease(SearchFrontend owner, List<string> tenants) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(tenants);
            }
        }
    }
}

/// <summary>
/// Runs jobs on up to <c>concurrency</c> worker tasks. The body returns true when the overall answer is complete:
/// the run then finishes at once, cancels the others and does not wait for them (a job stuck in I/O cannot hold the
/// response). The first job failure fails the run and cancels the rest.
/// </summary>
internal static class JobRunner
{
    public static Task RunAsync(List<(string Tenant, SearchJob Job)> jobs, int concurrency,
        Func<(string Tenant, SearchJob Job), CancellationToken, ValueTask<bool>> body, CancellationToken ct)
    {
        if (jobs.Count == 0)
        {
            return Task.CompletedTask;
        }

        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int next = -1;
        int workers = Math.Min(concurrency, jobs.Count);
        int running = workers;
        for (int w = 0; w < workers; w++)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    while (!cts.IsCancellationRequested)
                    {
                        int i = Interlocked.Increment(ref next);
                        if (i >= jobs.Count)
                        {
                            break;
                        }

                        if (await body(jobs[i], cts.Token).ConfigureAwait(false))
                        {
                            done.TrySetResult();
                            cts.Cancel();
                            break;
                        }
                    }
                }
                catch (OperationCanceledException) when (cts.IsCancellationRequested)
                {
                    // Cancelled by the caller (reported below) or by completion/another job's failure.
                }
                catch (Exception e)
                {
                    done.TrySetException(e);
                    cts.Cancel();
                }
                finally
                {
                    if (Interlocked.Decrement(ref running) == 0)
                    {
                        if (ct.IsCancellationRequested)
                        {
                            done.TrySetCanceled(ct);
                        }

                        done.TrySetResult();
                        cts.Dispose();
                    }
                }
            }, CancellationToken.None);
        }

        return done.Task.WaitAsync(ct);
    }
}

/// <summary>
/// One running search: the shared combiner (guarded by locking this run), traces changed since the last
/// <see cref="TakeChanges{T}"/> (for streaming), and the completion. Workers stop adding once the run is closed, so the
/// final result's trace objects are no longer mutated after <see cref="Completion"/> finishes.
/// </summary>
public sealed class SearchRun
{
    private readonly SearchResultCombiner _combiner;
    private readonly HashSet<TraceId> _changed = [];
    private readonly SearchMetrics _planned = new();
    private bool _closed;

    internal SearchRun(SearchResultCombiner combiner)
    {
        _combiner = combiner;
    }

    /// <summary>The final combined result.</summary>
    public Task<SearchResult> Completion { get; private set; } = Task.FromResult(new SearchResult());

    /// <summary>
    /// Renders (under the run's lock, so the traces cannot change meanwhile) the traces added or changed since the last
    /// call, each in its combined state so far, with the metrics so far; resets the change set.
    /// </summary>
    public T TakeChanges<T>(Func<SearchResult, T> render)
    {
        ArgumentNullException.ThrowIfNull(render);
        lock (this)
        {
            var all = _combiner.Result();
            all.Metrics.Add(_planned);
            var changed = new SearchResult { Traces = all.Traces.Where(t => _changed.Contains(t.TraceId)).ToList(), Metrics = all.Metrics };
            _changed.Clear();
            return render(changed);
        }
    }

    internal void Start(SearchFrontend frontend, IReadOnlyList<string> tenants, SearchQuery query, SearchOptions options, CancellationToken ct) =>
        Completion = RunAsync(frontend, tenants, query, options, ct);

    private async Task<SearchResult> RunAsync(SearchFrontend frontend, IReadOnlyList<string> tenants, SearchQuery query, SearchOptions options, CancellationToken ct)
    {
        var jobs = await frontend.PlanAsync(tenants, query.StartUnixSeconds, query.EndUnixSeconds, ct).ConfigureAwait(false);
        lock (this)
        {
            _planned.TotalJobs = (uint)jobs.Count;
            foreach (var (_, job) in jobs)
            {
                if (job.IsBlock)
                {
                    _planned.TotalBlocks++;
                    _planned.TotalBlockBytes += job.Bytes;
                }
            }
        }

        try
        {
            await JobRunner.RunAsync(jobs, frontend.Config.Search.ConcurrentJobs, (item, token) => RunJobAsync(frontend.JobCache, item.Tenant, item.Job, query, options, token), ct).ConfigureAwait(false);
        }
        catch (TraceQLEvaluationException e)
        {
            throw SearchRequestException.BadRequest(e.Message);
        }

        lock (this)
        {
            _closed = true;
            var result = _combiner.Result();
            result.Metrics.Add(_planned);
            return result;
        }
    }

    private async ValueTask<bool> RunJobAsync(SearchJobCache? cache, string tenant, SearchJob job, SearchQuery query, SearchOptions options, CancellationToken ct)
    {
        string? key = cache is null ? null : SearchJobCache.KeyFor(tenant, job, query);
        if (key is not null && await cache!.TryGetAsync(key, ct).ConfigureAwait(false) is { } cached)
        {
            return AddCached(cached);
        }

        // Compiled per job: the evaluator's caches are single-threaded.
        var compiled = CompiledSearch.Compile(query.Root, options);
        var fetcher = await job.OpenAsync(ct).ConfigureAwait(false);
        var metrics = new SearchMetrics { CompletedJobs = 1 };

        // A cacheable job also keeps its own result (its first `limit` traces, or most recent `limit`), which is what
        // the cache stores: the same whatever the other jobs found.
        var own = key is null ? null : new SearchResultCombiner(options.Limit, compiled.MostRecent, options.SpansPerSpanSet);
        bool complete = false;
        await foreach (var candidates in fetcher.FetchAsync(compiled.Request, ct).ConfigureAwait(false))
        {
            metrics.InspectedTraces++;
            metrics.InspectedSpans += (ulong)candidates.Spans.Count;
            var md = compiled.Evaluate(candidates);
            if (md is null)
            {
                continue;
            }

            own?.AddTrace(md);
            lock (this)
            {
                if (_closed)
                {
                    return true;
                }

                if (_combiner.AddTrace(md))
                {
                    _changed.Add(md.TraceId);
                }

                complete = _combiner.IsComplete;
            }

            if (complete)
            {
                // The search is answered. Unless this job's own result is complete too, it is partial (it depends on
                // what other jobs found first), so it is not cached.
                if (own is { IsComplete: false })
                {
                    own = null;
                }

                break;
            }
        }

        if (fetcher is IFetchStatistics st)
        {
            metrics.InspectedBytes = st.InspectedBytes;
        }

        // A read whose data vanished meanwhile ended early with part of the block: its result is not the block's.
        if (own is not null && job.DataVanished?.Invoke() != true)
        {
            var result = own.Result();
            result.Metrics.InspectedTraces = metrics.InspectedTraces;
            result.Metrics.InspectedSpans = metrics.InspectedSpans;
            result.Metrics.InspectedBytes = metrics.InspectedBytes;
            cache!.SetInBackground(key!, result);
        }

        lock (this)
        {
            if (!_closed)
            {
                _combiner.AddMetrics(metrics);
            }

            if (complete)
            {
                // Close now, before signalling: late workers must not mutate traces the response is about to write.
                _closed = true;
            }
        }

        return complete;
    }

    /// <summary>Adds a cached job result as if the job had just produced it; true when the search is complete.</summary>
    private bool AddCached(SearchResult cached)
    {
        lock (this)
        {
            if (_closed)
            {
                return true;
            }

            foreach (var md in cached.Traces)
            {
                if (_combiner.AddTrace(md))
                {
                    _changed.Add(md.TraceId);
                }
            }

            var metrics = new SearchMetrics();
            metrics.Add(cached.Metrics);
            metrics.CompletedJobs = 1;
            _combiner.AddMetrics(metrics);
            if (_combiner.IsComplete)
            {
                _closed = true;
                return true;
            }

            return false;
        }
    }
}

/// <summary>
/// One running tag-names or tag-values search: the shared collector and metrics (guarded by locking this run), and
/// the completion. <see cref="TakeNew"/> gives what was found since its last call, for streamed answers. Once the
/// run is closed (full, or finished) workers stop adding, so <see cref="Result"/> no longer changes after
/// <see cref="Completion"/> finishes.
/// </summary>
public sealed class TagSearchRun<TCollector>
    where TCollector : class
{
    private readonly Func<TCollector, int> _count;
    private readonly Func<TCollector, int, TCollector> _since;
    private int _sent;

    internal TagSearchRun(TCollector result, Func<TCollector, int> count, Func<TCollector, int, TCollector> since)
    {
        Result = result;
        _count = count;
        _since = since;
    }

    /// <summary>The combined answer; read it after <see cref="Completion"/> (or under a lock on this run).</summary>
    public TCollector Result { get; }

    public MetadataMetrics Metrics { get; } = new();

    public Task Completion { get; internal set; } = Task.CompletedTask;

    // Read without the lock by workers as a cheap early exit; set under the lock.
    private volatile bool _closed;

    internal bool Closed
    {
        get => _closed;
        set => _closed = value;
    }

    /// <summary>Entries in a collector of this run's kind (names added, or values).</summary>
    internal int Count(TCollector c) => _count(c);

    /// <summary>A collector with the entries of <paramref name="c"/> after the first <paramref name="index"/>.</summary>
    internal TCollector Since(TCollector c, int index) => _since(c, index);

    /// <summary>
    /// Names or values found since the last call (null when none), with a copy of the metrics so far. Renders under the
    /// run's lock so the collector cannot change meanwhile.
    /// </summary>
    public T? TakeNew<T>(Func<TCollector, MetadataMetrics, T> render)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(render);
        lock (this)
        {
            int n = _count(Result);
            if (n == _sent)
            {
                return null;
            }

            var fresh = _since(Result, _sent);
            _sent = n;
            var m = new MetadataMetrics
            {
                InspectedBytes = Metrics.InspectedBytes,
                TotalJobs = Metrics.TotalJobs,
                CompletedJobs = Metrics.CompletedJobs,
                TotalBlocks = Metrics.TotalBlocks,
                TotalBlockBytes = Metrics.TotalBlockBytes,
            };
            return render(fresh, m);
        }
    }
}
