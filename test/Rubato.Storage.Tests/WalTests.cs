using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Storage.Wal;
using Xunit;

namespace Rubato.Storage.Tests;

public sealed class WalTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private WalOptions Options(SyncPolicy policy = SyncPolicy.Write) => new() { Path = Path.Combine(_dir.Path, "wal"), SyncPolicy = policy };

    private static TraceSegment Seg(int i, int size = 40) =>
        new(new TraceId((ulong)i, (ulong)i * 3), Enumerable.Range(0, size).Select(b => (byte)(b + i)).ToArray(), i % 7 + 1, (ulong)i * 100, ((ulong)i * 100) + 50);

    [Theory]
    [InlineData(SyncPolicy.Write)]
    [InlineData(SyncPolicy.Fsync)]
    public async Task AppendAsync_ThenReplay_ReturnsRecordsInOrder(SyncPolicy policy)
    {
        long gen;
        await using (var wal = await WriteAheadLog.OpenAsync(Options(policy), default))
        {
            gen = await wal.AppendAsync("tenant-a", [Seg(1), Seg(2)], default);
            Assert.Equal(gen, await wal.AppendAsync("tenant-b", [Seg(3, 0)], default));
            Assert.Equal(3, wal.Stats.AppendedRecords);
            Assert.True(wal.Stats.Writes >= 1);
            Assert.Equal(policy == SyncPolicy.Fsync ? wal.Stats.Writes : 0, wal.Stats.Fsyncs);
            long discarded = -1;
            var recs = wal.ReadGeneration(gen, d => discarded = d).ToList();
            Assert.Equal(0, discarded);
            Assert.Equal(3, recs.Count);
        }

        await using var reopened = await WriteAheadLog.OpenAsync(Options(policy), default);
        var replay = reopened.ReplayGeneration(gen);
        Assert.Equal(0, replay.DiscardedBytes);
        Assert.Equal(["tenant-a", "tenant-a", "tenant-b"], replay.Records.Select(r => r.TenantId));
        for (int i = 0; i < 3; i++)
        {
            var expected = Seg(i + 1, i == 2 ? 0 : 40);
            var r = replay.Records[i];
            Assert.Equal(expected.TraceId, r.TraceId);
            Assert.Equal(expected.Payload.ToArray(), r.Payload.ToArray());
            Assert.Equal(expected.SpanCount, r.SpanCount);
            Assert.Equal(expected.StartUnixNano, r.StartUnixNano);
            Assert.Equal(expected.EndUnixNano, r.EndUnixNano);
        }
    }

    [Fact]
    public async Task AppendAsync_ConcurrentAppenders_AllReplayedExactlyOnceAndBatched()
    {
        const int tasks = 16, perTask = 500;
        long gen = 0;
        await using (var wal = await WriteAheadLog.OpenAsync(Options(SyncPolicy.Fsync), default))
        {
            var gens = await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
            {
                long g = 0;
                for (int i = 0; i < perTask; i++)
                {
                    g = await wal.AppendAsync("t" + t, [Seg((t * perTask) + i, 16)], default);
                }

                return g;
            })));
            gen = gens[0];
            Assert.All(gens, g => Assert.Equal(gen, g));
            Assert.Equal(tasks * perTask, wal.Stats.Appends);
            Assert.True(wal.Stats.Fsyncs < tasks * perTask, $"expected group commit, got {wal.Stats.Fsyncs} fsyncs for {tasks * perTask} appends");
        }

        await using var reopened = await WriteAheadLog.OpenAsync(Options(), default);
        var recs = reopened.ReplayGeneration(gen).Records;
        Assert.Equal(tasks * perTask, recs.Count);
        var ids = recs.Select(r => r.TraceId).ToHashSet();
        Assert.Equal(tasks * perTask, ids.Count);
        Assert.All(recs, r => Assert.Equal("t" + ((int)r.TraceId.High / perTask), r.TenantId));
    }

    [Fact]
    public async Task ReplayGeneration_TornTailAtEveryOffset_KeepsEarlierRecords()
    {
        long gen;
        string path;
        await using (var wal = await WriteAheadLog.OpenAsync(Options(), default))
        {
            gen = await wal.AppendAsync("tenant", [Seg(1), Seg(2), Seg(3)], default);
            path = Directory.GetFiles(Options().Path).Single();
        }

        byte[] full = File.ReadAllBytes(path);
        var all = WriteAheadLog.ReplayFile(path).Records;
        Assert.Equal(3, all.Count);
        int lastRecordStart = full.Length - (WriteAheadLog.RecordHeaderSize + 2 + 6 + 16 + 8 + 8 + 4 + 40);
        for (int cut = lastRecordStart; cut < full.Length; cut++)
        {
            File.WriteAllBytes(path, full.AsSpan(0, cut).ToArray());
            var replay = WriteAheadLog.ReplayFile(path);
            Assert.Equal(2, replay.Records.Count);
            Assert.Equal(cut - lastRecordStart, replay.DiscardedBytes);
            Assert.Equal(Seg(2).Payload.ToArray(), replay.Records[1].Payload.ToArray());
        }

        // A flipped byte in the last record's payload: the CRC rejects it, earlier records survive.
        var corrupt = full.ToArray();
        corrupt[^5] ^= 0xFF;
        File.WriteAllBytes(path, corrupt);
        var r2 = WriteAheadLog.ReplayFile(path);
        Assert.Equal(2, r2.Records.Count);
        Assert.Equal(full.Length - lastRecordStart, r2.DiscardedBytes);
    }

    [Fact]
    public async Task Rotate_StartsNewGeneration_DeleteRemovesOld_NumberingSurvivesReopen()
    {
        await using (var wal = await WriteAheadLog.OpenAsync(Options(), default))
        {
            long g1 = await wal.AppendAsync("t", [Seg(1)], default);
            Assert.Equal(1, g1);
            Assert.Equal(g1, wal.Rotate());
            long g2 = await wal.AppendAsync("t", [Seg(2)], default);
            Assert.Equal(2, g2);
            Assert.Equal([1L, 2L], wal.Generations());
            Assert.Throws<InvalidOperationException>(() => wal.DeleteGeneration(2));
            wal.DeleteGeneration(1);
            Assert.Equal([2L], wal.Generations());
            Assert.Empty(wal.ReadGeneration(1));
            Assert.Single(wal.ReadGeneration(2));
        }

        await using var reopened = await WriteAheadLog.OpenAsync(Options(), default);
        Assert.Equal(3, reopened.CurrentGeneration);
        Assert.Equal([2L, 3L], reopened.Generations());
        Assert.Equal(3, await reopened.AppendAsync("t", [Seg(3)], default));
        Assert.Equal(Seg(2).TraceId, reopened.ReadGeneration(2).Single().TraceId);
    }

    [Fact]
    public async Task AppendAsync_SegmentSizeHint_RotatesByItself()
    {
        var o = Options();
        o.SegmentSizeHintBytes = 300;
        await using var wal = await WriteAheadLog.OpenAsync(o, default);
        var gens = new List<long>();
        for (int i = 0; i < 10; i++)
        {
            gens.Add(await wal.AppendAsync("t", [Seg(i, 100)], default));
        }

        Assert.True(gens[^1] > gens[0]);
        int total = wal.Generations().Sum(g => wal.ReadGeneration(g).Count());
        Assert.Equal(10, total);
    }

    [Fact]
    public async Task AppendAsync_AfterDispose_Throws()
    {
        var wal = await WriteAheadLog.OpenAsync(Options(), default);
        await wal.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => { _ = wal.AppendAsync("t", [Seg(1)], default); });
    }

    [Fact]
    public async Task OpenAsync_BadOptions_Throws()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => WriteAheadLog.OpenAsync(new WalOptions(), default));
    }
}
