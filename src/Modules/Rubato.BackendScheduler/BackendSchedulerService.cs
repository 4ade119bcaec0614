using Rubato.Common.Services;

namespace Rubato.BackendScheduler;

/// <summary>
/// The backend scheduler as a module service. Starting: one blocklist poll (so tenant-index jobs are queued at
/// once). Running, on a timer of <c>min(min_cycle_interval, maintenance_interval)</c>: re-issue expired leases, poll
/// the block list every <c>storage.trace.blocklist_poll</c>, queue retention jobs every
/// <c>provider.retention.interval</c>, and create compaction jobs. An error in one cycle is logged and the next cycle
/// tries again; only cancellation ends the loop.
/// </summary>
public sealed class BackendSchedulerService : BasicService
{
    public const string ModuleName = "backend-scheduler";

    public BackendSchedulerService(BackendScheduler scheduler, TimeSpan blocklistPoll, TimeProvider? time = null, Action<string>? log = null)
        : base(
            ModuleName,
            starting: ct => StartAsync(scheduler, log, ct),
            running: ct => RunAsync(scheduler, blocklistPoll, time ?? TimeProvider.System, log, ct))
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(blocklistPoll, TimeSpan.Zero);
        Scheduler = scheduler;
    }

    public BackendScheduler Scheduler { get; }

    /// <summary>The text of <c>/status/backendscheduler</c>.</summary>
    public string StatusText() => Scheduler.StatusText();

    private static async Task StartAsync(BackendScheduler scheduler, Action<string>? log, CancellationToken ct)
    {
        try
        {
            await scheduler.PollAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log?.Invoke($"backend scheduler: first blocklist poll failed, will retry: {e.Message}");
        }
    }

    private static async Task RunAsync(BackendScheduler scheduler, TimeSpan blocklistPoll, TimeProvider time, Action<string>? log, CancellationToken ct)
    {
        var cfg = scheduler.Config;
        var tick = cfg.Provider.Compaction.MinCycleInterval < cfg.MaintenanceInterval ? cfg.Provider.Compaction.MinCycleInterval : cfg.MaintenanceInterval;
        long lastPoll = time.GetTimestamp();
        using var timer = new PeriodicTimer(tick, time);
        do
        {
            try
            {
                scheduler.Maintain();
                if (time.GetElapsedTime(lastPoll) >= blocklistPoll)
                {
                    await scheduler.PollAsync(ct).ConfigureAwait(false);
                    lastPoll = time.GetTimestamp();
                }

                scheduler.ScheduleRetention();
                scheduler.ScheduleCompactions();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log?.Invoke($"backend scheduler: cycle failed, retrying next cycle: {e.Message}");
            }
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
    }
}
