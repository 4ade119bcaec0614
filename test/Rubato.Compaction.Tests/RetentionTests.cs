using Rubato.BackendWorker;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Xunit;

namespace Rubato.Compaction.Tests;

public sealed class RetentionTests
{
    private static async Task<Rubato.Storage.Backend.BlockMeta> BlockEndingAt(Fixture f, DateTimeOffset end, int n, string tenant = Fixture.Tenant) =>
        await f.WriteBlockAsync([(Traces.Id(n), Traces.Make(Traces.Id(n), end.ToUnixTimeSeconds() - 2, "svc", 1))], tenant: tenant);

    [Fact]
    public async Task RunAsync_BlocksOlderThanRetention_MarkedCompactedExactlyThoseAndOthersUntouched()
    {
        using var f = new Fixture();
        var now = f.Clock.GetUtcNow();
        var config = new CompactorConfig { BlockRetention = TimeSpan.FromHours(10) };
        var old1 = await BlockEndingAt(f, now.AddHours(-11), 1);
        var old2 = await BlockEndingAt(f, now.AddHours(-30), 2);
        var fresh = await BlockEndingAt(f, now.AddHours(-9), 3);

        var r = await new RetentionRunner(f.Store, f.Overrides, config, f.Clock).RunAsync(Fixture.Tenant, CancellationToken.None);

        Assert.Equal(new[] { old1.BlockId, old2.BlockId }.Order(), r.MarkedCompacted.Order());
        Assert.Empty(r.Deleted);
        var list = await new BlocklistPoller(f.Store, BlocklistPollMode.Listing).ListTenantAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Equal([fresh.BlockId], list.Live.Select(b => b.BlockId));
        Assert.All(list.Compacted, c => Assert.Equal(now, c.CompactedTime));
    }

    [Fact]
    public async Task RunAsync_CompactedBlocks_DeletedOnlyAfterCompactedBlockRetentionAndCompletely()
    {
        using var f = new Fixture();
        var config = new CompactorConfig { BlockRetention = TimeSpan.FromHours(10), CompactedBlockRetention = TimeSpan.FromHours(1) };
        var runner = new RetentionRunner(f.Store, f.Overrides, config, f.Clock);
        var old = await BlockEndingAt(f, f.Clock.GetUtcNow().AddHours(-11), 1);
        await runner.RunAsync(Fixture.Tenant, CancellationToken.None);

        f.Clock.Advance(TimeSpan.FromMinutes(59));
        var early = await runner.RunAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Empty(early.Deleted);
        Assert.NotEmpty(await f.Store.ListAsync(ObjectKeys.BlockPrefix(Fixture.Tenant, old.BlockId), CancellationToken.None));

        f.Clock.Advance(TimeSpan.FromMinutes(2));
        var late = await runner.RunAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Equal([old.BlockId], late.Deleted);
        Assert.Empty(await f.Store.ListAsync(ObjectKeys.BlockPrefix(Fixture.Tenant, old.BlockId), CancellationToken.None));
        Assert.False(Directory.Exists(Path.Combine(f.Store.RootPath, Fixture.Tenant, old.BlockId.ToString("D"))));
    }

    [Fact]
    public async Task RunAsync_PerTenantBlockRetentionOverride_AppliesToThatTenantOnly()
    {
        using var f = new Fixture(runtimeOverrides: "overrides:\n  short:\n    compaction:\n      block_retention: 2h\n");
        var config = new CompactorConfig { BlockRetention = TimeSpan.FromHours(10) };
        var runner = new RetentionRunner(f.Store, f.Overrides, config, f.Clock);
        var end = f.Clock.GetUtcNow().AddHours(-3);
        var shortBlock = await BlockEndingAt(f, end, 1, tenant: "short");
        await BlockEndingAt(f, end, 2, tenant: "long");

        Assert.Equal(TimeSpan.FromHours(2), runner.RetentionFor("short"));
        Assert.Equal(TimeSpan.FromHours(10), runner.RetentionFor("long"));
        Assert.Equal([shortBlock.BlockId], (await runner.RunAsync("short", CancellationToken.None)).MarkedCompacted);
        Assert.Empty((await runner.RunAsync("long", CancellationToken.None)).MarkedCompacted);
    }

    [Fact]
    public async Task DeleteBlockAsync_CrashAfterMetaJsonDeleted_BlockStaysInvisibleAndNextPassFinishesIt()
    {
        using var f = new Fixture();
        var config = new CompactorConfig { BlockRetention = TimeSpan.FromHours(10), CompactedBlockRetention = TimeSpan.FromHours(1) };
        var runner = new RetentionRunner(f.Store, f.Overrides, config, f.Clock);
        var b = await BlockEndingAt(f, f.Clock.GetUtcNow().AddHours(-11), 1);
        await runner.RunAsync(Fixture.Tenant, CancellationToken.None);
        f.Clock.Advance(TimeSpan.FromHours(2));

        // The state a crash right after DeleteBlockAsync's first step leaves: meta.json gone, the rest still there.
        await f.Store.DeleteAsync(ObjectKeys.BlockObject(Fixture.Tenant, b.BlockId, ObjectKeys.MetaName), CancellationToken.None);
        var reader = new BackendTraceReader(f.Store);
        await reader.RefreshAsync(CancellationToken.None);
        Assert.Empty(reader.Blocks(Fixture.Tenant));
        var list = await new BlocklistPoller(f.Store, BlocklistPollMode.Listing).ListTenantAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Equal([b.BlockId], list.Compacted.Select(c => c.Meta.BlockId));

        Assert.Equal([b.BlockId], (await runner.RunAsync(Fixture.Tenant, CancellationToken.None)).Deleted);
        Assert.Empty(await f.Store.ListAsync(ObjectKeys.BlockPrefix(Fixture.Tenant, b.BlockId), CancellationToken.None));
    }
}
