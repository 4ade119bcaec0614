using Rubato.Common.Contracts;
using Rubato.Common.Services;
using Rubato.Storage.Blocklist;

namespace Rubato.BackendWorker;

/// <summary>
/// Tempo 3's backend-worker: asks <see cref="IBackendScheduler"/> for a job, runs it (compaction, retention or
/// tenant index), heartbeats while it runs, and reports the outcome.
/// </summary>
/// <remarks>
/// One job at a time per instance. <see cref="RunOnceAsync"/> runs on the caller's thread (the service loop); the
/// heartbeat runs on a timer thread and only calls <see cref="IBackendScheduler.UpdateJobAsync"/>.
/// </remarks>
public sealed class BackendWorker
{
    private readonly IBackendScheduler _scheduler;
    private readonly BlockCompactor _compactor;
    private readonly RetentionRunner _retention;
    private readonly BlocklistPoller _indexBuilder;
    private readonly TimeProvider _time;
    private readonly Action<string>? _log;

    public BackendWorker(string workerId, IBackendScheduler scheduler, BlockCompactor compactor, RetentionRunner retention, BlocklistPoller indexBuilder, TimeProvider? time = null, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(workerId);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(compactor);
        ArgumentNullException.ThrowIfNull(retention);
        ArgumentNullException.ThrowIfNull(indexBuilder);
        if (indexBuilder.Mode != BlocklistPollMode.Listing)
        {
            throw new ArgumentException("the tenant index must be built from a listing: pass a BlocklistPoller in Listing mode", nameof(indexBuilder));
        }

        WorkerId = workerId;
        _scheduler = scheduler;
        _compactor = compactor;
        _retention = retention;
        _indexBuilder = indexBuilder;
        _time = time ?? TimeProvider.System;
        _log = log;
    }

    public string WorkerId { get; }

    /// <summary>Jobs finished successfully by this worker.</summary>
    public long Succeeded => Interlocked.Read(ref _succeeded);

    /// <summary>Jobs that failed on this worker.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    private long _succeeded;
    private long _failed;

    /// <summary>
    /// Leases one job and runs it to the end. Returns false when the scheduler had no work. A job that throws is
    /// reported <see cref="JobStatus.Failed"/> (the scheduler retries it); only <paramref name="ct"/> cancelling the
    /// lease request itself propagates.
    /// </summary>
    /// <param name="jobCt">Cancels a running job (shutdown after finish_on_shutdown_timeout); defaults to <paramref name="ct"/>.</param>
    public async Task<bool> RunOnceAsync(CancellationToken ct, CancellationToken? jobCt = null)
    {
        var job = await _scheduler.NextAsync(WorkerId, ct).ConfigureAwait(false);
        if (job is null)
        {
            return false;
        }

        var token = jobCt ?? ct;
        using var heartbeatCts = CancellationTokenSource.CreateLinkedTokenSource(token);
        var heartbeat = HeartbeatAsync(job, heartbeatCts.Token);
        string? error = null;
        try
        {
            await RunJobAsync(job, token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = token.IsCancellationRequested ? "worker shutting down: " + e.Message : e.GetType().Name + ": " + e.Message;
            _log?.Invoke($"backend worker {WorkerId}: job {job.Id} ({job.Type}, tenant {job.TenantId}) failed: {error}");
        }
        finally
        {
            await heartbeatCts.CancelAsync().ConfigureAwait(false);
            await heartbeat.ConfigureAwait(false);
        }

        try
        {
            await _scheduler.UpdateJobAsync(job.Id, error is null ? JobStatus.Succeeded : JobStatus.Failed, error, CancellationToken.None).ConfigureAwait(false);
        }
        catch (KeyNotFoundException)
        {
            // The scheduler forgot the job (restart or prune); the work is idempotent, nothing to undo.
        }

        Interlocked.Increment(ref error is null ? ref _succeeded : ref _failed);
        return true;
    }

    /// <summary>Runs one job without talking to the scheduler (also used by tests and tools).</summary>
    public async Task RunJobAsync(BackendJob job, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(job);
        switch (job.Type)
        {
            case BackendJobType.Compaction:
                var c = await _compactor.CompactAsync(job.TenantId, job.InputBlockIds, ct).ConfigureAwait(false);
                _log?.Invoke($"backend worker {WorkerId}: compacted {c.Inputs.Count} blocks of '{job.TenantId}' into {c.Output?.BlockId.ToString() ?? "nothing"} (traces {c.TracesOut}, spans {c.SpansIn}→{c.SpansOut}, duplicates {c.DuplicateSpansRemoved}, dropped {c.SpansDroppedOverLimit}{(c.Resumed ? ", resumed" : string.Empty)})");
                break;
            case BackendJobType.Retention:
                var r = await _retention.RunAsync(job.TenantId, ct).ConfigureAwait(false);
                if (r.MarkedCompacted.Count > 0 || r.Deleted.Count > 0)
                {
                    _log?.Invoke($"backend worker {WorkerId}: retention of '{job.TenantId}' ({r.BlockRetention}): marked {r.MarkedCompacted.Count}, deleted {r.Deleted.Count}");
                }

                break;
            case BackendJobType.TenantIndex:
                await _indexBuilder.WriteTenantIndexAsync(job.TenantId, ct).ConfigureAwait(false);
                break;
            default:
                throw new NotSupportedException($"backend worker cannot run jobs of type {job.Type}");
        }
    }

    private async Task HeartbeatAsync(BackendJob job, CancellationToken ct)
    {
        var period = job.LeaseDuration > TimeSpan.Zero ? job.LeaseDuration / 3 : TimeSpan.FromSeconds(5);
        try
        {
            using var timer = new PeriodicTimer(period, _time);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await _scheduler.UpdateJobAsync(job.Id, JobStatus.Running, null, ct).ConfigureAwait(false);
                }
                catch (KeyNotFoundException)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Job finished.
        }
    }
}

/// <summary>The backend worker as a module service: leases and runs jobs until stopped.</summary>
/// <remarks>
/// On stop the running job gets <c>finish_on_shutdown_timeout</c> to finish before it is cancelled (a cancelled
/// compaction leaves only invisible partial output, which the re-issued job overwrites).
/// </remarks>
public sealed class BackendWorkerService : BasicService
{
    public const string ModuleName = "backend-worker";

    public BackendWorkerService(BackendWorker worker, BackendWorkerConfig config, TimeProvider? time = null, Action<string>? log = null)
        : base(ModuleName, running: ct => RunAsync(worker, config, time ?? TimeProvider.System, log, ct))
    {
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentNullException.ThrowIfNull(config);
    }

    private static async Task RunAsync(BackendWorker worker, BackendWorkerConfig config, TimeProvider time, Action<string>? log, CancellationToken ct)
    {
        using var jobCts = new CancellationTokenSource();
        await using var reg = ct.Register(() => jobCts.CancelAfter(config.FinishOnShutdownTimeout));
        while (!ct.IsCancellationRequested)
        {
            bool worked;
            try
            {
                worked = await worker.RunOnceAsync(ct, jobCts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log?.Invoke($"backend worker {worker.WorkerId}: asking the scheduler for work failed: {e.Message}");
                worked = false;
            }

            if (!worked)
            {
                await Task.Delay(config.Interval, time, ct).ConfigureAwait(false);
            }
        }
    }
}
