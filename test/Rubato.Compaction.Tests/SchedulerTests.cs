using Rubato.BackendScheduler;
using Rubato.BackendWorker;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Xunit;

namespace Rubato.Compaction.Tests;

public sealed class SchedulerTests
{
    private static readonly long T0 = new DateTimeOffset(2026, 11, 20, 11, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    private static async Task<List<BlockMeta>> WriteBlocksAsync(Fixture f, int count, string tenant = Fixture.Tenant, int firstTrace = 0)
    {
        var metas = new List<BlockMeta>();
        for (int i = 0; i < count; i++)
        {
            int n = firstTrace + i;
            metas.Add(await f.WriteBlockAsync([(Traces.Id(n), Traces.Make(Traces.Id(n), T0 + 10, "svc", 1, 2))], tenant: tenant));
        }

        return metas;
    }

    private static BackendScheduler.BackendScheduler NewScheduler(Fixture f, BackendSchedulerConfig? config = null) =>
        new(config ?? new BackendSchedulerConfig(), f.Store, f.Overrides, time: f.Clock, metrics: new MetricsRegistry());

    private static async Task<List<BackendJob>> DrainAsync(IBackendScheduler s, string worker = "w")
    {
        var jobs = new List<BackendJob>();
        while (await s.NextAsync(worker, CancellationToken.None) is { } j)
        {
            jobs.Add(j);
        }

        return jobs;
    }

    [Fact]
    public async Task ScheduleCompactions_TenBlocks_JobsOfAtMostFourAndNoBlockInTwoJobs()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 10);
        var s = NewScheduler(f);
        await s.PollAsync(CancellationToken.None);

        Assert.Equal(3, s.ScheduleCompactions());
        Assert.Equal(10, s.OutstandingBlocks()[Fixture.Tenant]);
        Assert.Equal(0, s.ScheduleCompactions()); // Every free block is already an input.
        Assert.Equal(0, s.OutstandingBlocks()[Fixture.Tenant]);
        var compactions = s.Jobs().Where(j => j.Job.Type == BackendJobType.Compaction).Select(j => j.Job).ToList();
        Assert.Equal([2, 4, 4], compactions.Select(j => j.InputBlockIds.Count).Order());
        var all = compactions.SelectMany(j => j.InputBlockIds).ToList();
        Assert.Equal(10, all.Count);
        Assert.Equal(10, all.Distinct().Count());
    }

    [Fact]
    public async Task NextAsync_PriorityRetentionThenIndexThenCompaction()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 2);
        var s = NewScheduler(f);
        await s.PollAsync(CancellationToken.None);
        s.ScheduleCompactions();
        s.ScheduleRetention();

        var order = (await DrainAsync(s)).Select(j => j.Type).ToList();
        Assert.Equal([BackendJobType.Retention, BackendJobType.TenantIndex, BackendJobType.Compaction], order);
    }

    [Fact]
    public async Task NextAsync_LeaseExpiredWithoutHeartbeat_ReissuedToAnotherWorkerWithNextAttempt()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 2);
        var s = NewScheduler(f, new BackendSchedulerConfig { JobTimeout = TimeSpan.FromSeconds(15) });
        await s.PollAsync(CancellationToken.None);
        s.ScheduleCompactions();
        var index = (await s.NextAsync("indexer", CancellationToken.None))!;
        await s.UpdateJobAsync(index.Id, JobStatus.Succeeded, null, CancellationToken.None);
        var first = (await s.NextAsync("w1", CancellationToken.None))!;
        Assert.Equal(BackendJobType.Compaction, first.Type);
        Assert.Equal(1, first.Attempt);
        Assert.Equal(TimeSpan.FromSeconds(15), first.LeaseDuration);

        // Heartbeats keep the lease.
        f.Clock.Advance(TimeSpan.FromSeconds(10));
        await s.UpdateJobAsync(first.Id, JobStatus.Running, null, CancellationToken.None);
        f.Clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Null(await s.NextAsync("w2", CancellationToken.None));

        f.Clock.Advance(TimeSpan.FromSeconds(6));
        var again = (await s.NextAsync("w2", CancellationToken.None))!;
        Assert.Equal(first.Id, again.Id);
        Assert.Equal(2, again.Attempt);
        Assert.Equal("w2", again.WorkerId);
        Assert.Equal(first.InputBlockIds, again.InputBlockIds);
        Assert.Equal(0, s.ScheduleCompactions()); // Its blocks stayed reserved while it waited.
    }

    [Fact]
    public async Task UpdateJobAsync_FailedMaxAttemptsTimes_JobFailsAndItsBlocksAreFreed()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 2);
        var s = NewScheduler(f, new BackendSchedulerConfig { MaxJobAttempts = 2 });
        await s.PollAsync(CancellationToken.None);
        s.ScheduleCompactions();
        _ = await s.NextAsync("indexer", CancellationToken.None);

        var j = (await s.NextAsync("w", CancellationToken.None))!;
        await s.UpdateJobAsync(j.Id, JobStatus.Failed, "boom 1", CancellationToken.None);
        j = (await s.NextAsync("w", CancellationToken.None))!;
        Assert.Equal(2, j.Attempt);
        await s.UpdateJobAsync(j.Id, JobStatus.Failed, "boom 2", CancellationToken.None);

        Assert.Null(await s.NextAsync("w", CancellationToken.None));
        var view = s.Jobs().Single(v => v.Job.Id == j.Id);
        Assert.Equal(JobStatus.Failed, view.Status);
        Assert.Equal("boom 2", view.Error);
        Assert.Equal(1, s.ScheduleCompactions());
    }

    [Fact]
    public async Task UpdateJobAsync_UnknownJob_ThrowsKeyNotFound()
    {
        using var f = new Fixture();
        var s = NewScheduler(f);
        await Assert.ThrowsAsync<KeyNotFoundException>(async () => await s.UpdateJobAsync("nope", JobStatus.Succeeded, null, CancellationToken.None));
    }

    [Fact]
    public async Task Worker_RunsScheduledJobs_CompactsWritesIndexAndInputsAreNotReselected()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 4);
        var s = NewScheduler(f);
        await s.PollAsync(CancellationToken.None);
        Assert.Equal(1, s.ScheduleCompactions());
        var worker = CrashTests.NewWorker(f, s);
        while (await worker.RunOnceAsync(CancellationToken.None))
        {
        }

        Assert.Equal(2, worker.Succeeded); // Tenant index + compaction.
        Assert.Equal(0, s.ScheduleCompactions()); // The last poll still lists the inputs live, but they are done.

        await s.PollAsync(CancellationToken.None);
        var live = Assert.Single(s.Blocklist.Live(Fixture.Tenant));
        Assert.Equal(1u, live.CompactionLevel);
        Assert.Equal(4, live.TotalObjects);
        Assert.Equal(0, s.ScheduleCompactions());
        Assert.True(await f.Store.ExistsAsync(TenantIndex.Key(Fixture.Tenant), CancellationToken.None));
    }

    [Fact]
    public async Task ScheduleRetention_OncePerInterval_AndNotWhileTheTenantStillHasOne()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 1, tenant: "a");
        await WriteBlocksAsync(f, 1, tenant: "b");
        var config = new BackendSchedulerConfig();
        config.Provider.Retention.Interval = TimeSpan.FromHours(1);
        var s = NewScheduler(f, config);
        await s.PollAsync(CancellationToken.None);

        Assert.Equal(2, s.ScheduleRetention());
        Assert.Equal(0, s.ScheduleRetention());
        f.Clock.Advance(TimeSpan.FromMinutes(61));
        Assert.Equal(0, s.ScheduleRetention()); // Both still pending.

        var worker = CrashTests.NewWorker(f, s);
        while (await worker.RunOnceAsync(CancellationToken.None))
        {
        }

        f.Clock.Advance(TimeSpan.FromMinutes(61));
        Assert.Equal(2, s.ScheduleRetention());
    }

    [Fact]
    public async Task ScheduleCompactions_TenantWithCompactionDisabled_GetsNoJobs()
    {
        using var f = new Fixture(runtimeOverrides: "overrides:\n  frozen:\n    compaction:\n      compaction_disabled: true\n");
        await WriteBlocksAsync(f, 2, tenant: "frozen");
        await WriteBlocksAsync(f, 2, tenant: "busy", firstTrace: 10);
        var s = NewScheduler(f);
        await s.PollAsync(CancellationToken.None);
        Assert.Equal(1, s.ScheduleCompactions());
        Assert.Equal(1, s.ScheduleRetention());
        Assert.All(s.Jobs().Where(j => j.Job.Type != BackendJobType.TenantIndex), j => Assert.Equal("busy", j.Job.TenantId));
    }

    [Fact]
    public async Task ScheduleCompactions_TenantWithMoreOutstandingBlocks_QueuedFirst()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 2, tenant: "small");
        await WriteBlocksAsync(f, 8, tenant: "large", firstTrace: 100);
        var s = NewScheduler(f);
        await s.PollAsync(CancellationToken.None);
        s.ScheduleCompactions();
        var compactions = (await DrainAsync(s)).Where(j => j.Type == BackendJobType.Compaction).Select(j => j.TenantId).ToList();
        Assert.Equal(["large", "large", "small"], compactions);
    }

    [Fact]
    public async Task StatusText_ListsActiveAndPendingJobsInATable()
    {
        using var f = new Fixture();
        await WriteBlocksAsync(f, 2);
        var s = NewScheduler(f);
        await s.PollAsync(CancellationToken.None);
        s.ScheduleCompactions();
        var leased = (await s.NextAsync("worker-7", CancellationToken.None))!;

        string text = s.StatusText();
        Assert.Contains("Active and pending jobs: 2", text);
        Assert.Contains("ID", text);
        Assert.Contains("STATUS", text);
        Assert.Contains(leased.Id, text);
        Assert.Contains("worker-7", text);
        Assert.Contains("Running", text);
        Assert.Contains("Pending", text);
        Assert.Contains(Fixture.Tenant + ": 2", text);
    }

    [Fact]
    public void Config_Validate_NamesBadKeys()
    {
        var c = new BackendSchedulerConfig { JobTimeout = TimeSpan.Zero };
        c.Provider.Compaction.MaxInputBlocks = 1;
        c.Provider.Compaction.Compaction.CompactionWindow = TimeSpan.Zero;
        var v = new Common.Configuration.ConfigValidation();
        c.Validate("backend_scheduler", v);
        Assert.Contains(v.Errors, e => e.StartsWith("backend_scheduler.job_timeout", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("backend_scheduler.provider.compaction.max_input_blocks", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("backend_scheduler.provider.compaction.compaction.compaction_window", StringComparison.Ordinal));

        var ok = new Common.Configuration.ConfigValidation();
        new BackendSchedulerConfig().Validate("backend_scheduler", ok);
        new BackendSchedulerConfig().ValidateWithStorage(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), ok);
        Assert.False(ok.HasErrors);
    }

    [Fact]
    public async Task Services_RunTogether_CompactTheTenantDownToOneBlockAndWriteItsIndex()
    {
        using var f = new Fixture();
        long start = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds();
        for (int i = 0; i < 8; i++)
        {
            await f.WriteBlockAsync([(Traces.Id(i), Traces.Make(Traces.Id(i), start, "svc", 1, 2))]);
        }

        var config = new BackendSchedulerConfig { MaintenanceInterval = TimeSpan.FromMilliseconds(20) };
        config.Provider.Compaction.MinCycleInterval = TimeSpan.FromMilliseconds(20);
        var scheduler = new BackendScheduler.BackendScheduler(config, f.Store, f.Overrides);
        var schedulerService = new BackendSchedulerService(scheduler, TimeSpan.FromMilliseconds(50));
        var worker = new BackendWorker.BackendWorker(
            "w",
            scheduler,
            new BlockCompactor(f.Store, f.Overrides),
            new RetentionRunner(f.Store, f.Overrides, new CompactorConfig()),
            new BlocklistPoller(f.Store, BlocklistPollMode.Listing));
        var workerService = new BackendWorkerService(worker, new BackendWorkerConfig { Interval = TimeSpan.FromMilliseconds(10) });
        await schedulerService.StartAsync(CancellationToken.None);
        await workerService.StartAsync(CancellationToken.None);
        try
        {
            var lister = new BlocklistPoller(f.Store, BlocklistPollMode.Listing);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            TenantBlocklist list;
            do
            {
                await Task.Delay(20);
                list = await lister.ListTenantAsync(Fixture.Tenant, CancellationToken.None);
            }
            while (!(list.Live.Count == 1 && list.Live[0].TotalObjects == 8) && DateTime.UtcNow < deadline);

            Assert.Single(list.Live);
            Assert.Equal(8, list.Live[0].TotalObjects);
            Assert.Equal(2u, list.Live[0].CompactionLevel); // 8 → 4+4 → 1.
            Assert.Equal(16, (await f.StoredSpansAsync()).Count);
            Assert.Equal(0, worker.Failed);
            Assert.Contains("Outstanding blocks per tenant", schedulerService.StatusText());
        }
        finally
        {
            await workerService.StopAsync();
            await schedulerService.StopAsync();
        }

        Assert.Equal(Rubato.Common.Services.ServiceState.Terminated, workerService.State);
        Assert.Equal(Rubato.Common.Services.ServiceState.Terminated, schedulerService.State);
    }
}
