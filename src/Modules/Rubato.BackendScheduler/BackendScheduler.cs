using System.Globalization;
using System.Text;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;

namespace Rubato.BackendScheduler;

/// <summary>A job as the scheduler tracks it (for /status and tests).</summary>
public sealed record BackendJobView(BackendJob Job, JobStatus Status, DateTimeOffset? LastHeartbeat, DateTimeOffset? FinishedAt, string? Error);

/// <summary>
/// Tempo 3's backend-scheduler: a singleton that polls the block list (by listing, as the tenant-index builder), turns
/// it into compaction, retention and tenant-index jobs, and leases them to workers through <see cref="IBackendScheduler"/>.
/// </summary>
/// <remarks>
/// <para>Invariants: no block is the input of two unfinished compaction jobs (<c>_busy</c>); a block that a finished
/// job compacted is not selected again while the last poll still shows it live (<c>_finishedInputs</c>); a leased job
/// whose worker stopped heartbeating for <c>job_timeout</c> goes back to the queue (same id and inputs, attempt+1),
/// and after <c>max_job_attempts</c> it fails and frees its blocks. Work is idempotent (deterministic output ids), so a
/// re-issued job that the first worker did finish after all does no harm.</para>
/// <para>Threads: every method is thread-safe. State lives under one lock held only for in-memory work; object-store
/// I/O (<see cref="PollAsync"/>) happens outside it. The service loop calls Poll/Schedule*/Maintain; workers call
/// <see cref="NextAsync"/> and <see cref="UpdateJobAsync"/> from any thread.</para>
/// </remarks>
public sealed class BackendScheduler : IBackendScheduler
{
    private readonly BackendSchedulerConfig _cfg;
    private readonly IObjectStore _store;
    private readonly IOverrides _overrides;
    private readonly BlocklistPoller _poller;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, JobState> _jobs = new(StringComparer.Ordinal);

    // Pending job ids by priority: retention, then tenant index, then compaction. FIFO within each.
    private readonly LinkedList<string>[] _queues = [new(), new(), new()];
    private readonly Dictionary<Guid, string> _busy = [];
    private readonly HashSet<Guid> _finishedInputs = [];
    private readonly Dictionary<Guid, IReadOnlyList<Guid>?> _provenance = [];
    private readonly Dictionary<string, int> _outstanding = new(StringComparer.Ordinal);
    private readonly Counter? _created;
    private readonly Counter? _finished;
    private readonly Gauge? _outstandingGauge;
    private Blocklist _blocklist = Blocklist.Empty;
    private DateTimeOffset _lastRetention = DateTimeOffset.MinValue;
    private long _sequence;

    public BackendScheduler(BackendSchedulerConfig config, IObjectStore store, IOverrides overrides, BlocklistPollerOptions? pollerOptions = null, TimeProvider? time = null, MetricsRegistry? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(overrides);
        var v = new Common.Configuration.ConfigValidation();
        config.Validate("backend_scheduler", v);
        if (v.HasErrors)
        {
            throw new ArgumentException("invalid backend_scheduler config: " + string.Join("; ", v.Errors), nameof(config));
        }

        _cfg = config;
        _store = store;
        _overrides = overrides;
        _time = time ?? TimeProvider.System;
        _poller = new BlocklistPoller(store, BlocklistPollMode.Listing, pollerOptions, _time);
        if (metrics is not null)
        {
            _created = metrics.Counter("rubato_backend_scheduler_jobs_created_total", "Jobs created by the backend scheduler.", "type");
            _finished = metrics.Counter("rubato_backend_scheduler_jobs_finished_total", "Jobs finished, by type and final status.", "type", "status");
            _outstandingGauge = metrics.Gauge("rubato_backend_scheduler_outstanding_blocks", "Blocks the selector would compact now, per tenant.", "tenant");
        }
    }

    public BackendSchedulerConfig Config => _cfg;

    /// <summary>The block list of the last poll.</summary>
    public Blocklist Blocklist => Volatile.Read(ref _blocklist);

    /// <summary>Lists the store (as the index builder), then queues a tenant-index job per tenant and recovery jobs for unfinished compaction outputs.</summary>
    public async Task PollAsync(CancellationToken ct)
    {
        var polled = await _poller.PollAsync(ct).ConfigureAwait(false);

        // Provenance of compaction outputs seen for the first time (one GET each, cached for the block's life).
        var fresh = new List<(string Tenant, Guid Block)>();
        lock (_lock)
        {
            foreach (var t in polled.Tenants.Values)
            {
                fresh.AddRange(t.WithProvenance.Where(id => !_provenance.ContainsKey(id)).Select(id => (t.TenantId, id)));
            }
        }

        var read = new List<(Guid Block, IReadOnlyList<Guid>? Inputs)>();
        foreach (var (tenant, block) in fresh)
        {
            IReadOnlyList<Guid>? inputs;
            try
            {
                inputs = await BlockLifecycle.ReadProvenanceAsync(_store, tenant, block, ct).ConfigureAwait(false);
            }
            catch (FormatException)
            {
                inputs = null; // A malformed marker only disables recovery for that block.
            }

            read.Add((block, inputs));
        }

        lock (_lock)
        {
            foreach (var (block, inputs) in read)
            {
                _provenance[block] = inputs;
            }

            var present = new HashSet<Guid>(polled.Tenants.Values.SelectMany(t => t.WithProvenance));
            foreach (var id in _provenance.Keys.Where(id => !present.Contains(id)).ToList())
            {
                _provenance.Remove(id);
            }

            var live = new HashSet<Guid>(polled.Tenants.Values.SelectMany(t => t.Live.Select(m => m.BlockId)));
            _finishedInputs.RemoveWhere(id => !live.Contains(id));
            Volatile.Write(ref _blocklist, polled);

            foreach (var t in polled.Tenants.Values)
            {
                QueueRecoveryJobs(t, live);
                if (!HasUnfinished(t.TenantId, BackendJobType.TenantIndex))
                {
                    Enqueue(NewJob(BackendJobType.TenantIndex, t.TenantId, []));
                }
            }
        }
    }

    /// <summary>Creates compaction jobs from the last poll: tenants by priority, up to max_jobs_per_tenant each. Returns the count created.</summary>
    public int ScheduleCompactions()
    {
        var cc = _cfg.Provider.Compaction;
        var now = _time.GetUtcNow();
        int created = 0;
        lock (_lock)
        {
            var bl = _blocklist;
            var candidates = new List<(string Tenant, int Priority, List<IReadOnlyList<BlockMeta>> Runs)>();
            _outstanding.Clear();
            foreach (var t in bl.Tenants.Values)
            {
                var limits = _overrides.ForTenant(t.TenantId).Compaction;
                if (limits.CompactionDisabled)
                {
                    continue;
                }

                var window = limits.CompactionWindow > TimeSpan.Zero ? limits.CompactionWindow : cc.Compaction.CompactionWindow;
                var free = t.Live.Where(b => !_busy.ContainsKey(b.BlockId) && !_finishedInputs.Contains(b.BlockId));
                var selector = new TimeWindowBlockSelector(free, window, cc.Compaction.MaxCompactionObjects, cc.Compaction.MaxBlockBytes, cc.MinInputBlocks, cc.MaxInputBlocks, now);
                var runs = selector.All().ToList();
                int outstanding = runs.Sum(r => r.Count);
                _outstanding[t.TenantId] = outstanding;
                _outstandingGauge?.WithLabels(t.TenantId).Set(outstanding);

                // Tempo's blocklist-weighted priority: tenants with more blocks waiting (and longer lists) go first.
                if (outstanding >= cc.MinInputBlocks)
                {
                    candidates.Add((t.TenantId, outstanding + t.Live.Count, runs));
                }
            }

            foreach (var (tenant, _, runs) in candidates.OrderByDescending(c => c.Priority).ThenBy(c => c.Tenant, StringComparer.Ordinal))
            {
                foreach (var run in runs.Take(cc.MaxJobsPerTenant))
                {
                    Enqueue(NewJob(BackendJobType.Compaction, tenant, [.. run.Select(b => b.BlockId).Order()]));
                    created++;
                }
            }
        }

        return created;
    }

    /// <summary>Queues one retention job per tenant when <c>provider.retention.interval</c> has passed since the last round (or <paramref name="force"/>). Returns the count created.</summary>
    public int ScheduleRetention(bool force = false)
    {
        var now = _time.GetUtcNow();
        int created = 0;
        lock (_lock)
        {
            if (!force && now - _lastRetention < _cfg.Provider.Retention.Interval)
            {
                return 0;
            }

            _lastRetention = now;
            foreach (var t in _blocklist.Tenants.Values)
            {
                if (_overrides.ForTenant(t.TenantId).Compaction.CompactionDisabled || HasUnfinished(t.TenantId, BackendJobType.Retention))
                {
                    continue;
                }

                Enqueue(NewJob(BackendJobType.Retention, t.TenantId, []));
                created++;
            }
        }

        return created;
    }

    /// <summary>Re-issues jobs whose lease expired, fails dead jobs, prunes finished ones older than prune_age.</summary>
    public void Maintain()
    {
        lock (_lock)
        {
            MaintainLocked(_time.GetUtcNow());
        }
    }

    public ValueTask<BackendJob?> NextAsync(string workerId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(workerId);
        cancellationToken.ThrowIfCancellationRequested();
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            MaintainLocked(now);
            foreach (var q in _queues)
            {
                while (q.First is { } node)
                {
                    q.RemoveFirst();
                    if (!_jobs.TryGetValue(node.Value, out var st) || st.Status != JobStatus.Pending)
                    {
                        continue;
                    }

                    st.Job = st.Job with { LeasedAt = now, WorkerId = workerId, Attempt = st.Job.Attempt + 1, LeaseDuration = _cfg.JobTimeout };
                    st.Status = JobStatus.Running;
                    st.LastHeartbeat = now;
                    return ValueTask.FromResult<BackendJob?>(st.Job);
                }
            }
        }

        return ValueTask.FromResult<BackendJob?>(null);
    }

    public ValueTask UpdateJobAsync(string jobId, JobStatus status, string? error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!_jobs.TryGetValue(jobId, out var st))
            {
                throw new KeyNotFoundException($"backend scheduler has no job '{jobId}'");
            }

            if (st.Status is JobStatus.Succeeded or JobStatus.Failed)
            {
                return ValueTask.CompletedTask; // A late report from a worker whose lease was re-issued and finished elsewhere.
            }

            switch (status)
            {
                case JobStatus.Running:
                    st.LastHeartbeat = now;
                    break;
                case JobStatus.Succeeded:
                    Finish(st, JobStatus.Succeeded, null, now);
                    if (st.Job.Type == BackendJobType.Compaction)
                    {
                        _finishedInputs.UnionWith(st.Job.InputBlockIds);
                    }

                    break;
                case JobStatus.Failed:
                    RetryOrFail(st, error ?? "worker reported failure", now);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(status), status, "workers report Running, Succeeded or Failed");
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Every tracked job (pending, running and recently finished), oldest first.</summary>
    public IReadOnlyList<BackendJobView> Jobs()
    {
        lock (_lock)
        {
            return [.. _jobs.Values.OrderBy(s => s.Job.CreatedAt).ThenBy(s => s.Seq).Select(s => new BackendJobView(s.Job, s.Status, s.LastHeartbeat, s.FinishedAt, s.Error))];
        }
    }

    /// <summary>Blocks the selector would compact per tenant, as of the last <see cref="ScheduleCompactions"/>.</summary>
    public IReadOnlyDictionary<string, int> OutstandingBlocks()
    {
        lock (_lock)
        {
            return new Dictionary<string, int>(_outstanding, StringComparer.Ordinal);
        }
    }

    /// <summary>The <c>/status/backendscheduler</c> page: active and pending jobs as a table, then the finished ones.</summary>
    public string StatusText() => BackendJobsStatus.Render(Jobs(), OutstandingBlocks(), _time.GetUtcNow());

    private void QueueRecoveryJobs(TenantBlocklist t, HashSet<Guid> live)
    {
        // A compaction output whose recorded inputs are still live: its job was interrupted (worker crash, scheduler
        // restart). Re-issuing the same input set yields the same output id, so the worker either finishes marking
        // (output complete) or rewrites the output over the partial one. Never on inputs another job holds.
        foreach (var block in t.WithProvenance)
        {
            if (!_provenance.TryGetValue(block, out var inputs) || inputs is null || inputs.Count == 0)
            {
                continue;
            }

            if (!inputs.Any(live.Contains) || inputs.Any(_busy.ContainsKey) || inputs.Any(_finishedInputs.Contains))
            {
                continue;
            }

            if (BlockLifecycle.CompactionOutputId(t.TenantId, inputs) != block)
            {
                continue; // Not written by our deterministic naming: do not trust it.
            }

            Enqueue(NewJob(BackendJobType.Compaction, t.TenantId, [.. inputs.Order()]));
        }
    }

    private BackendJob NewJob(BackendJobType type, string tenant, IReadOnlyList<Guid> inputs)
    {
        long seq = Interlocked.Increment(ref _sequence);
        return new BackendJob
        {
            // Unique across scheduler restarts (the random part) and readable in /status (type and sequence).
            Id = string.Create(CultureInfo.InvariantCulture, $"{type.ToString().ToLowerInvariant()}-{seq}-{Guid.NewGuid().ToString("N")[..8]}"),
            Type = type,
            TenantId = tenant,
            InputBlockIds = inputs,
            CreatedAt = _time.GetUtcNow(),
            LeaseDuration = _cfg.JobTimeout,
        };
    }

    private void Enqueue(BackendJob job)
    {
        var st = new JobState(job, Interlocked.Increment(ref _sequence));
        _jobs.Add(job.Id, st);
        foreach (var id in job.InputBlockIds)
        {
            _busy[id] = job.Id;
        }

        _queues[Priority(job.Type)].AddLast(job.Id);
        _created?.WithLabels(job.Type.ToString()).Inc();
    }

    private static int Priority(BackendJobType t) => t switch
    {
        BackendJobType.Retention => 0,
        BackendJobType.TenantIndex => 1,
        _ => 2,
    };

    private bool HasUnfinished(string tenant, BackendJobType type) =>
        _jobs.Values.Any(s => s.Job.Type == type && s.Job.TenantId == tenant && s.Status is JobStatus.Pending or JobStatus.Running);

    private void MaintainLocked(DateTimeOffset now)
    {
        foreach (var st in _jobs.Values.ToList())
        {
            if (st.Status == JobStatus.Running && now - st.LastHeartbeat!.Value > st.Job.LeaseDuration)
            {
                RetryOrFail(st, $"lease expired: worker {st.Job.WorkerId} sent no heartbeat for {st.Job.LeaseDuration}", now);
            }
            else if (st.Status is JobStatus.Pending or JobStatus.Running && now - st.Job.CreatedAt > _cfg.Work.DeadJobTimeout)
            {
                Finish(st, JobStatus.Failed, $"dead: not finished within dead_job_timeout {_cfg.Work.DeadJobTimeout}", now);
            }
            else if (st.FinishedAt is { } f && now - f > _cfg.Work.PruneAge)
            {
                _jobs.Remove(st.Job.Id);
            }
        }
    }

    private void RetryOrFail(JobState st, string error, DateTimeOffset now)
    {
        st.Error = error;
        if (st.Job.Attempt >= _cfg.MaxJobAttempts)
        {
            Finish(st, JobStatus.Failed, error, now);
            return;
        }

        // Back to the queue, keeping its blocks reserved: nobody else may start on them meanwhile.
        st.Status = JobStatus.Pending;
        st.Job = st.Job with { LeasedAt = null, WorkerId = null };
        _queues[Priority(st.Job.Type)].AddLast(st.Job.Id);
    }

    private void Finish(JobState st, JobStatus status, string? error, DateTimeOffset now)
    {
        st.Status = status;
        st.Error = error;
        st.FinishedAt = now;
        foreach (var id in st.Job.InputBlockIds)
        {
            if (_busy.TryGetValue(id, out var owner) && owner == st.Job.Id)
            {
                _busy.Remove(id);
            }
        }

        _finished?.WithLabels(st.Job.Type.ToString(), status.ToString()).Inc();
    }

    private sealed class JobState(BackendJob job, long seq)
    {
        public BackendJob Job { get; set; } = job;

        public long Seq { get; } = seq;

        public JobStatus Status { get; set; } = JobStatus.Pending;

        public DateTimeOffset? LastHeartbeat { get; set; }

        public DateTimeOffset? FinishedAt { get; set; }

        public string? Error { get; set; }
    }
}

/// <summary>Renders the scheduler's jobs as the text of <c>/status/backendscheduler</c>.</summary>
public static class BackendJobsStatus
{
    public static string Render(IReadOnlyList<BackendJobView> jobs, IReadOnlyDictionary<string, int> outstanding, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(outstanding);
        var sb = new StringBuilder();
        var active = jobs.Where(j => j.Status is JobStatus.Running or JobStatus.Pending).OrderBy(j => j.Status == JobStatus.Running ? 0 : 1).ToList();
        sb.Append("Active and pending jobs: ").Append(active.Count).Append('\n');
        Table(sb, active, now);
        var done = jobs.Where(j => j.Status is JobStatus.Succeeded or JobStatus.Failed).OrderByDescending(j => j.FinishedAt).ToList();
        sb.Append('\n').Append("Finished jobs (kept for work.prune_age): ").Append(done.Count).Append('\n');
        Table(sb, done, now);
        sb.Append('\n').Append("Outstanding blocks per tenant:\n");
        foreach (var (tenant, n) in outstanding.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append("  ").Append(tenant).Append(": ").Append(n.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        return sb.ToString();
    }

    private static void Table(StringBuilder sb, List<BackendJobView> jobs, DateTimeOffset now)
    {
        string[] header = ["ID", "TYPE", "TENANT", "STATUS", "ATTEMPT", "WORKER", "AGE", "INPUTS", "ERROR"];
        var rows = new List<string[]> { header };
        foreach (var j in jobs)
        {
            rows.Add([
                j.Job.Id,
                j.Job.Type.ToString(),
                j.Job.TenantId,
                j.Status.ToString(),
                j.Job.Attempt.ToString(CultureInfo.InvariantCulture),
                j.Job.WorkerId ?? "-",
                Common.Configuration.GoDuration.Format(TimeSpan.FromSeconds(Math.Max(0, Math.Floor((now - j.Job.CreatedAt).TotalSeconds)))),
                j.Job.InputBlockIds.Count == 0 ? "-" : string.Join(',', j.Job.InputBlockIds),
                j.Error ?? string.Empty,
            ]);
        }

        int[] widths = new int[header.Length];
        foreach (var r in rows)
        {
            for (int i = 0; i < r.Length; i++)
            {
                widths[i] = Math.Max(widths[i], r[i].Length);
            }
        }

        foreach (var r in rows)
        {
            for (int i = 0; i < r.Length; i++)
            {
                sb.Append(r[i].PadRight(widths[i]));
                if (i < r.Length - 1)
                {
                    sb.Append("  ");
                }
            }

            sb.Append('\n');
        }
    }
}
