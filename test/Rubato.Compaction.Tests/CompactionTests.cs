using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Xunit;

namespace Rubato.Compaction.Tests;

public sealed class CompactionTests
{
    private static readonly long T0 = new DateTimeOffset(2026, 11, 20, 11, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    [Fact]
    public async Task CompactAsync_SameTracesPushedTwiceIntoSeparateBlocks_StoresOneCopyOfEachSpan()
    {
        using var f = new Fixture();
        var traces = Enumerable.Range(1, 50).Select(i => (Traces.Id(i), Traces.Make(Traces.Id(i), T0 + i, "svc", 1, 2, 3))).ToList();
        var a = await f.WriteBlockAsync(traces);

        // The same spans again (fresh objects, as a replica or a replayed WAL would write them).
        var b = await f.WriteBlockAsync(Enumerable.Range(1, 50).Select(i => (Traces.Id(i), Traces.Make(Traces.Id(i), T0 + i, "svc", 1, 2, 3))));
        Assert.Equal(300, (await f.StoredSpansAsync()).Count);

        var metrics = new MetricsRegistry();
        var result = await f.Compactor(metrics: metrics).CompactAsync(Fixture.Tenant, [a.BlockId, b.BlockId], CancellationToken.None);

        var stored = await f.StoredSpansAsync();
        Assert.Equal(150, stored.Count);
        Assert.Equal(150, stored.Distinct().Count());
        Assert.Equal(300, result.SpansIn);
        Assert.Equal(150, result.SpansOut);
        Assert.Equal(150, result.DuplicateSpansRemoved);
        Assert.Equal(150, metrics.Counter("rubato_compaction_duplicate_spans_total", string.Empty, "tenant").Value(Fixture.Tenant));
        Assert.Equal(50, result.Output!.TotalObjects);
    }

    [Fact]
    public async Task CompactAsync_FourBlocks_WritesOneBlockWithLevelTimeRangeAndCounts()
    {
        using var f = new Fixture();
        var metas = new List<BlockMeta>();
        for (int blk = 0; blk < 4; blk++)
        {
            // Block k holds traces 10k..10k+9; trace 5 appears in every block with a different span.
            var traces = Enumerable.Range(10 * (blk + 1), 10).Select(i => (Traces.Id(i), Traces.Make(Traces.Id(i), T0 + (blk * 100) + i, "svc-" + blk, (ulong)i)))
                .Append((Traces.Id(5), Traces.Make(Traces.Id(5), T0 + (blk * 100), "svc-" + blk, 1000 + (ulong)blk)));
            metas.Add(await f.WriteBlockAsync(traces, level: (uint)(blk == 2 ? 3 : 1)));
        }

        var result = await f.Compactor().CompactAsync(Fixture.Tenant, [.. metas.Select(m => m.BlockId)], CancellationToken.None);
        var o = result.Output!;

        var list = await new BlocklistPoller(f.Store, BlocklistPollMode.Listing).ListTenantAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Equal([o.BlockId], list.Live.Select(m => m.BlockId));
        Assert.Equal(metas.Select(m => m.BlockId).Order(), list.Compacted.Select(c => c.Meta.BlockId).Order());
        Assert.Equal(4u, o.CompactionLevel);
        Assert.Equal(41, o.TotalObjects);
        Assert.Equal(44, o.SpanCount);
        Assert.Equal(metas.Min(m => m.StartTime), o.StartTime);
        Assert.Equal(metas.Max(m => m.EndTime), o.EndTime);
        Assert.Equal(Traces.Id(5), o.MinId);
        Assert.Equal(Traces.Id(49), o.MaxId);
        Assert.Equal(BlockLifecycle.CompactionOutputId(Fixture.Tenant, metas.Select(m => m.BlockId)), o.BlockId);

        var reader = new BackendTraceReader(f.Store);
        var t5 = await reader.FindTraceByIdAsync(Fixture.Tenant, Traces.Id(5), TimeRange.All, CancellationToken.None);
        Assert.Equal([1000UL, 1001, 1002, 1003], t5!.AllSpans().Select(s => s.Span.SpanId.Value).Order().ToArray());
    }

    [Fact]
    public async Task CompactAsync_TraceOverMaxBytesPerTrace_DropsTheSameSpansEveryTimeAndCountsThem()
    {
        var limits = new TenantLimits();
        limits.Global.MaxBytesPerTrace = 1000;
        using var f = new Fixture(defaults: limits);
        ulong[] spans = [.. Enumerable.Range(1, 40).Select(i => (ulong)i)];
        var a = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", spans[..20])), (Traces.Id(2), Traces.Make(Traces.Id(2), T0, "svc", 7))]);
        var b = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", spans[20..]))]);

        var metrics = new MetricsRegistry();
        var first = await f.Compactor(metrics: metrics).CompactAsync(Fixture.Tenant, [a.BlockId, b.BlockId], CancellationToken.None);
        var keptFirst = (await f.StoredSpansAsync()).Where(s => s.Trace == Traces.Id(1)).Select(s => s.Span.Value).Order().ToList();

        Assert.Equal(1, first.TracesOverLimit);
        Assert.True(first.SpansDroppedOverLimit > 0);
        Assert.Equal(40, keptFirst.Count + first.SpansDroppedOverLimit);
        Assert.Equal(first.SpansDroppedOverLimit, metrics.Counter("rubato_compaction_spans_dropped_total", string.Empty, "tenant").Value(Fixture.Tenant));

        // Kept spans are a prefix in start-time order, and their estimated size fits the limit.
        Assert.Equal(Enumerable.Range(1, keptFirst.Count).Select(i => (ulong)i), keptFirst);

        // The small trace is untouched.
        Assert.Single(await f.StoredSpansAsync(), s => s.Trace == Traces.Id(2));

        // Deterministic: the same inputs in another store keep exactly the same spans.
        using var g = new Fixture(defaults: limits);
        var a2 = await g.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", spans[20..]))]);
        var b2 = await g.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", spans[..20])), (Traces.Id(2), Traces.Make(Traces.Id(2), T0, "svc", 7))]);
        await g.Compactor().CompactAsync(Fixture.Tenant, [a2.BlockId, b2.BlockId], CancellationToken.None);
        Assert.Equal(keptFirst, (await g.StoredSpansAsync()).Where(s => s.Trace == Traces.Id(1)).Select(s => s.Span.Value).Order());
    }

    [Fact]
    public async Task CompactAsync_InputMissing_ThrowsNamingTheBlock()
    {
        using var f = new Fixture();
        var a = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1))]);
        var missing = Guid.NewGuid();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => f.Compactor().CompactAsync(Fixture.Tenant, [a.BlockId, missing], CancellationToken.None));
        Assert.Contains(missing.ToString(), e.Message);
        Assert.False(await f.Store.ExistsAsync(ObjectKeys.BlockObject(Fixture.Tenant, a.BlockId, ObjectKeys.CompactedMetaName), CancellationToken.None));
    }

    [Fact]
    public void CompactionOutputId_SameInputsInAnyOrder_SameId()
    {
        Guid x = Guid.NewGuid(), y = Guid.NewGuid(), z = Guid.NewGuid();
        Assert.Equal(BlockLifecycle.CompactionOutputId("t", [x, y, z]), BlockLifecycle.CompactionOutputId("t", [z, x, y]));
        Assert.NotEqual(BlockLifecycle.CompactionOutputId("t", [x, y, z]), BlockLifecycle.CompactionOutputId("t", [x, y]));
        Assert.NotEqual(BlockLifecycle.CompactionOutputId("t", [x, y]), BlockLifecycle.CompactionOutputId("u", [x, y]));
    }
}
