using Rubato.BackendScheduler;
using Rubato.BackendWorker;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Xunit;

namespace Rubato.Compaction.Tests;

/// <summary>
/// A compaction interrupted at each durable step, then run again: no data lost, no span stored twice, and no partial
/// block ever visible to <see cref="BackendTraceReader"/>. The interruption is an exception thrown at the step (from
/// the compactor's step observer, or from the store when the output's meta.json is about to be written), which leaves
/// the object store exactly as a kill -9 at that point would (every Put is atomic).
/// </summary>
public sealed class CrashTests
{
    private static readonly long T0 = new DateTimeOffset(2026, 11, 20, 11, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    public enum CrashPoint
    {
        AfterProvenance,
        AfterOutputDataBeforeMeta,
        AfterMetaBeforeMarking,
        AfterMarkingSomeInputs,
    }

    [Theory]
    [InlineData(CrashPoint.AfterProvenance)]
    [InlineData(CrashPoint.AfterOutputDataBeforeMeta)]
    [InlineData(CrashPoint.AfterMetaBeforeMarking)]
    [InlineData(CrashPoint.AfterMarkingSomeInputs)]
    public async Task CompactAsync_CrashAtEachStepThenRerun_NoLossNoDuplicatesNoPartialBlockVisible(CrashPoint point)
    {
        using var f = new Fixture();
        var (inputs, expected) = await WriteOverlappingBlocksAsync(f);
        Guid outId = BlockLifecycle.CompactionOutputId(Fixture.Tenant, inputs);

        await CrashAsync(f, point, inputs, outId);

        // Mid-crash: readers see every span, once, and never the output unless its meta.json was written.
        var reader = new BackendTraceReader(f.Store);
        await AssertReaderSeesExactlyAsync(reader, expected);
        bool outputVisible = reader.Blocks(Fixture.Tenant).Any(b => b.BlockId == outId);
        Assert.Equal(point is CrashPoint.AfterMetaBeforeMarking or CrashPoint.AfterMarkingSomeInputs, outputVisible);

        // Rerun the same job.
        var result = await f.Compactor().CompactAsync(Fixture.Tenant, inputs, CancellationToken.None);
        Assert.Equal(outId, result.Output!.BlockId);
        Assert.Equal(point is CrashPoint.AfterMetaBeforeMarking or CrashPoint.AfterMarkingSomeInputs, result.Resumed);

        await AssertCompactedOnceAsync(f, inputs, outId, expected);
    }

    [Theory]
    [InlineData(CrashPoint.AfterOutputDataBeforeMeta)]
    [InlineData(CrashPoint.AfterMetaBeforeMarking)]
    [InlineData(CrashPoint.AfterMarkingSomeInputs)]
    public async Task Scheduler_RestartAfterWorkerCrash_ReissuesTheSameJobAndItCompletesWithoutDuplicates(CrashPoint point)
    {
        using var f = new Fixture();
        var (inputs, expected) = await WriteOverlappingBlocksAsync(f);
        Guid outId = BlockLifecycle.CompactionOutputId(Fixture.Tenant, inputs);
        await CrashAsync(f, point, inputs, outId);

        // A brand-new scheduler (the old one died with the worker) finds the output's compaction.json.
        var scheduler = new BackendScheduler.BackendScheduler(new BackendSchedulerConfig(), f.Store, f.Overrides, time: f.Clock);
        await scheduler.PollAsync(CancellationToken.None);
        var recovery = Assert.Single(scheduler.Jobs(), j => j.Job.Type == BackendJobType.Compaction);
        Assert.Equal(inputs.Order(), recovery.Job.InputBlockIds);

        // The remaining inputs are reserved: the selector does not hand them to a second job.
        Assert.Equal(0, scheduler.ScheduleCompactions());

        var worker = NewWorker(f, scheduler);
        while (await worker.RunOnceAsync(CancellationToken.None))
        {
        }

        Assert.Equal(0, worker.Failed);
        Assert.Equal(JobStatus.Succeeded, scheduler.Jobs().Single(j => j.Job.Id == recovery.Job.Id).Status);
        await AssertCompactedOnceAsync(f, inputs, outId, expected);
    }

    internal static BackendWorker.BackendWorker NewWorker(Fixture f, IBackendScheduler scheduler) =>
        new("worker-1", scheduler, f.Compactor(), new RetentionRunner(f.Store, f.Overrides, new CompactorConfig(), f.Clock), new BlocklistPoller(f.Store, BlocklistPollMode.Listing, null, f.Clock), f.Clock);

    private static async Task CrashAsync(Fixture f, CrashPoint point, Guid[] inputs, Guid outId)
    {
        int marked = 0;
        IObjectStore store = f.Store;
        Func<CompactionStep, Guid, CancellationToken, ValueTask>? step = null;
        switch (point)
        {
            case CrashPoint.AfterProvenance:
                step = (s, _, _) => s == CompactionStep.ProvenanceWritten ? throw new IOException("crash") : ValueTask.CompletedTask;
                break;
            case CrashPoint.AfterOutputDataBeforeMeta:
                store = new CrashingStore(f.Store, ObjectKeys.BlockObject(Fixture.Tenant, outId, ObjectKeys.MetaName));
                break;
            case CrashPoint.AfterMetaBeforeMarking:
                step = (s, _, _) => s == CompactionStep.OutputWritten ? throw new IOException("crash") : ValueTask.CompletedTask;
                break;
            case CrashPoint.AfterMarkingSomeInputs:
                step = (s, _, _) => s == CompactionStep.InputMarked && ++marked == 2 ? throw new IOException("crash") : ValueTask.CompletedTask;
                break;
        }

        var compactor = new BlockCompactor(store, f.Overrides, new BlockCompactorOptions { StepCompleted = step, RowGroupSizeBytes = 4096 }, f.Clock);
        await Assert.ThrowsAsync<IOException>(() => compactor.CompactAsync(Fixture.Tenant, inputs, CancellationToken.None));

        var files = await f.Store.ListAsync(ObjectKeys.BlockPrefix(Fixture.Tenant, outId), CancellationToken.None);
        Assert.Contains(BlockLifecycle.ProvenanceName, files);
        Assert.Equal(point is CrashPoint.AfterMetaBeforeMarking or CrashPoint.AfterMarkingSomeInputs, files.Contains(ObjectKeys.MetaName));
        if (point == CrashPoint.AfterOutputDataBeforeMeta)
        {
            Assert.Contains("data", files); // The output's data really is there, just not its meta.json.
        }

        int markedNow = 0;
        foreach (var id in inputs)
        {
            markedNow += await f.Store.ExistsAsync(ObjectKeys.BlockObject(Fixture.Tenant, id, ObjectKeys.CompactedMetaName), CancellationToken.None) ? 1 : 0;
        }

        Assert.Equal(point == CrashPoint.AfterMarkingSomeInputs ? 2 : 0, markedNow);
    }

    /// <summary>Three blocks; every trace is in two of them, sharing one span (written twice) and each adding one.</summary>
    internal static async Task<(Guid[] Inputs, Dictionary<TraceId, ulong[]> Expected)> WriteOverlappingBlocksAsync(Fixture f)
    {
        var expected = new Dictionary<TraceId, ulong[]>();
        var blocks = new List<(TraceId, Rubato.Common.Model.Trace)>[3];
        for (int b = 0; b < 3; b++)
        {
            blocks[b] = [];
        }

        for (int i = 1; i <= 60; i++)
        {
            var id = Traces.Id(i);
            int first = i % 3, second = (i + 1) % 3;
            blocks[first].Add((id, Traces.Make(id, T0 + i, "svc", 1, 100 + (ulong)first)));
            blocks[second].Add((id, Traces.Make(id, T0 + i, "svc", 1, 100 + (ulong)second)));
            expected[id] = [1, 100 + (ulong)Math.Min(first, second), 100 + (ulong)Math.Max(first, second)];
        }

        var inputs = new Guid[3];
        for (int b = 0; b < 3; b++)
        {
            inputs[b] = (await f.WriteBlockAsync(blocks[b])).BlockId;
        }

        return ([.. inputs.Order()], expected);
    }

    internal static async Task AssertReaderSeesExactlyAsync(BackendTraceReader reader, Dictionary<TraceId, ulong[]> expected)
    {
        await reader.RefreshAsync(CancellationToken.None);
        foreach (var (id, spans) in expected)
        {
            var t = await reader.FindTraceByIdAsync(Fixture.Tenant, id, TimeRange.All, CancellationToken.None);
            Assert.NotNull(t);
            Assert.Equal(spans, t.AllSpans().Select(s => s.Span.SpanId.Value).Order().ToArray());
        }
    }

    internal static async Task AssertCompactedOnceAsync(Fixture f, Guid[] inputs, Guid outId, Dictionary<TraceId, ulong[]> expected)
    {
        var list = await new BlocklistPoller(f.Store, BlocklistPollMode.Listing).ListTenantAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Equal([outId], list.Live.Select(b => b.BlockId));
        Assert.Equal(inputs.Order(), list.Compacted.Select(c => c.Meta.BlockId).Order());
        Assert.Empty(list.Incomplete);

        var stored = await f.StoredSpansAsync();
        Assert.Equal(expected.Values.Sum(v => v.Length), stored.Count);
        Assert.Equal(stored.Count, stored.Distinct().Count());
        await AssertReaderSeesExactlyAsync(new BackendTraceReader(f.Store), expected);
    }

    /// <summary>A real store that dies (throws) instead of writing one key: the process "crashes" right before that Put.</summary>
    private sealed class CrashingStore(IObjectStore inner, string crashBeforeKey) : IObjectStore
    {
        public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) =>
            key == crashBeforeKey ? throw new IOException("crash before " + key) : inner.PutAsync(key, data, ct);

        public Task PutAsync(string key, Stream data, CancellationToken ct) =>
            key == crashBeforeKey ? throw new IOException("crash before " + key) : inner.PutAsync(key, data, ct);

        public Task<byte[]?> GetAsync(string key, CancellationToken ct) => inner.GetAsync(key, ct);

        public Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct) => inner.ReadRangeAsync(key, offset, buffer, ct);

        public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public Task<bool> ExistsAsync(string key, CancellationToken ct) => inner.ExistsAsync(key, ct);

        public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);
    }
}
