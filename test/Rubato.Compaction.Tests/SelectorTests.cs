using Rubato.BackendScheduler;
using Rubato.Storage.Backend;
using Xunit;

namespace Rubato.Compaction.Tests;

public sealed class SelectorTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 20, 12, 30, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromHours(1);

    private static BlockMeta Block(DateTimeOffset end, uint level = 0, long objects = 10, ulong size = 1000, string version = "vRubato1", string encoding = "brotli") => new()
    {
        BlockId = Guid.NewGuid(),
        TenantId = "t",
        Version = version,
        Encoding = encoding,
        StartTime = end.AddMinutes(-5),
        EndTime = end,
        CompactionLevel = level,
        TotalObjects = objects,
        Size = size,
    };

    private static List<IReadOnlyList<BlockMeta>> Runs(IEnumerable<BlockMeta> blocks, long maxObjects = 1_000_000, ulong maxBytes = ulong.MaxValue, int min = 2, int max = 4) =>
        [.. new TimeWindowBlockSelector(blocks, Window, maxObjects, maxBytes, min, max, Now).All()];

    [Fact]
    public void Next_BlocksInDifferentWindows_NeverGroupedTogether()
    {
        var a = Block(Now.AddMinutes(-10));
        var b = Block(Now.AddHours(-2));
        Assert.Empty(Runs([a, b]));

        var a2 = Block(Now.AddMinutes(-20));
        var b2 = Block(Now.AddHours(-2).AddMinutes(-5));
        var runs = Runs([a, b, a2, b2]);
        Assert.Equal(2, runs.Count);
        Assert.Contains(runs, r => r.ToHashSet().SetEquals([a, a2]));
        Assert.Contains(runs, r => r.ToHashSet().SetEquals([b, b2]));
    }

    [Fact]
    public void Next_ActiveWindow_GroupsByLevelLowestLevelFirst()
    {
        var end = Now.AddMinutes(-10);
        var l0 = new[] { Block(end, 0), Block(end, 0) };
        var l1 = new[] { Block(end, 1), Block(end, 1) };
        var runs = Runs([l1[0], l0[0], l1[1], l0[1]]);
        Assert.Equal(2, runs.Count);
        Assert.True(runs[0].ToHashSet().SetEquals(l0));
        Assert.True(runs[1].ToHashSet().SetEquals(l1));
    }

    [Fact]
    public void Next_InactiveWindow_GroupsAcrossLevelsByWindowOnly()
    {
        var end = Now.AddDays(-3);
        var blocks = new[] { Block(end, 0), Block(end, 2), Block(end, 5) };
        var run = Assert.Single(Runs(blocks));
        Assert.Equal([0u, 2, 5], run.Select(b => b.CompactionLevel));
    }

    [Fact]
    public void Next_NewestWindowFirst_AndSmallestBlocksFirstWithinAGroup()
    {
        var older = new[] { Block(Now.AddHours(-3)), Block(Now.AddHours(-3)) };
        var newer = Enumerable.Range(0, 6).Select(i => Block(Now.AddMinutes(-5), objects: 100 - i)).ToArray();
        var runs = Runs([.. older, .. newer]);
        Assert.Equal(3, runs.Count);
        Assert.Equal([95L, 96, 97, 98], runs[0].Select(b => b.TotalObjects));
        Assert.Equal([99L, 100], runs[1].Select(b => b.TotalObjects));
        Assert.True(runs[2].ToHashSet().SetEquals(older));
    }

    [Fact]
    public void Next_TenBlocksInOneGroup_RunsOfAtMostFourAndNoSingletons()
    {
        var blocks = Enumerable.Range(0, 10).Select(_ => Block(Now.AddMinutes(-5))).ToList();
        var runs = Runs(blocks);
        Assert.Equal([4, 4, 2], runs.Select(r => r.Count));
        Assert.Equal(10, runs.SelectMany(r => r).Distinct().Count());

        var nine = Runs(blocks.Take(9));
        Assert.Equal([4, 4], nine.Select(r => r.Count)); // The ninth block waits for a partner.
    }

    [Fact]
    public void Next_MaxBlockBytes_CapsTheRun()
    {
        var blocks = Enumerable.Range(0, 4).Select(_ => Block(Now.AddMinutes(-5), size: 40)).ToList();
        Assert.Equal([2, 2], Runs(blocks, maxBytes: 100).Select(r => r.Count));
        Assert.Empty(Runs(blocks, maxBytes: 60));
    }

    [Fact]
    public void Next_MaxCompactionObjects_CapsTheRun()
    {
        var blocks = Enumerable.Range(0, 4).Select(_ => Block(Now.AddMinutes(-5), objects: 10)).ToList();
        Assert.Equal([3], Runs(blocks, maxObjects: 35).Select(r => r.Count));
    }

    [Fact]
    public void Next_DifferentVersionOrEncoding_NeverInOneRun()
    {
        var end = Now.AddMinutes(-5);
        var brotli = new[] { Block(end, encoding: "brotli"), Block(end, encoding: "brotli") };
        var none = new[] { Block(end, encoding: "none"), Block(end, encoding: "none") };
        var other = Block(end, version: "vOther");
        var runs = Runs([brotli[0], none[0], other, brotli[1], none[1]]);
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.Single(r.Select(b => (b.Version, b.Encoding)).Distinct()));
        Assert.DoesNotContain(runs.SelectMany(r => r), b => b == other);
    }

    [Fact]
    public void Next_MinInputBlocksThree_SkipsPairs()
    {
        var pair = Enumerable.Range(0, 2).Select(_ => Block(Now.AddMinutes(-5))).ToList();
        Assert.Empty(Runs(pair, min: 3));
        var triple = Enumerable.Range(0, 3).Select(_ => Block(Now.AddHours(-2))).ToList();
        Assert.Equal([3], Runs([.. pair, .. triple], min: 3).Select(r => r.Count));
    }

    [Fact]
    public void Next_WindowCrossingTheActiveCutOver_IsLeftAlone()
    {
        // Now is 12:30; now-24h is 12:30 the day before, inside the [12:00, 13:00) window of that day.
        var cut = Now.AddHours(-24).AddMinutes(-20);
        Assert.Empty(Runs([Block(cut), Block(cut)]));
    }
}
