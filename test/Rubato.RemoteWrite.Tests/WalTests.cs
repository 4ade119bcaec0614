using Xunit;

namespace Rubato.RemoteWrite.Tests;

public class WalTests
{
    private static RemoteWriteWalConfig Config(long segmentSize = 1 << 20, long maxBytes = 0) =>
        new() { WalSegmentSize = segmentSize, MaxWalBytes = maxBytes, MaxWalTime = TimeSpan.FromHours(4), TruncateFrequency = TimeSpan.FromHours(2) };

    private static TenantWal Open(string dir, RemoteWriteWalConfig config, List<(string, long)>? dropped = null, TimeProvider? time = null, params string[] endpoints) =>
        new(dir, "t1", config, endpoints.Length == 0 ? ["e0"] : endpoints, time ?? TimeProvider.System, (e, n) => dropped?.Add((e, n)));

    private static List<long> ReadAllTimestamps(TenantWal wal, string endpoint = "e0", bool commit = true)
    {
        var result = new List<long>();
        using var batch = new WalBatch();
        while (wal.ReadBatch(endpoint, 1000, batch))
        {
            result.AddRange(Samples.Decode(batch.Body.Span).Select(x => x.Ts));
            if (commit)
            {
                wal.Commit(endpoint, batch);
            }
        }

        return result;
    }

    [Fact]
    public void Append_ThenReopen_ReplaysEveryRecordInOrder()
    {
        using var dir = new TempDir();
        using (var wal = Open(dir.Path, Config()))
        {
            for (int i = 0; i < 10; i++)
            {
                wal.Append([Samples.Record(3, 1000 + i)]);
            }
        }

        using var reopened = Open(dir.Path, Config());
        var ts = ReadAllTimestamps(reopened);

        Assert.Equal(Enumerable.Range(0, 10).SelectMany(i => Enumerable.Repeat(1000L + i, 3)), ts);
        Assert.Equal(new WalPosition(2, 0), reopened.EndAtOpen);
    }

    [Fact]
    public void ReadBatch_MaxSamples_StopsAtRecordBoundaryAfterReachingIt()
    {
        using var dir = new TempDir();
        using var wal = Open(dir.Path, Config());
        for (int i = 0; i < 5; i++)
        {
            wal.Append([Samples.Record(4, 1000 + i)]);
        }

        using var batch = new WalBatch();
        Assert.True(wal.ReadBatch("e0", 6, batch));

        // Two whole records: the first has 4 < 6 samples, so a second is added; then 8 >= 6 stops.
        Assert.Equal(8, batch.Samples);
        Assert.Equal(2, batch.Records);
    }

    [Fact]
    public void Reopen_TornTailAtEveryOffsetOfLastRecord_KeepsEarlierRecordsAndAcceptsNewOnes()
    {
        using var dir = new TempDir();
        string tenantDir = Path.Combine(dir.Path, "t1");
        long recordStart;
        long fileLength;
        string segment;
        using (var wal = Open(tenantDir, Config()))
        {
            wal.Append([Samples.Record(2, 1000)]);
            wal.Append([Samples.Record(2, 2000)]);
            segment = Directory.GetFiles(tenantDir, "segment-*").Single();
            recordStart = new FileInfo(segment).Length;
            wal.Append([Samples.Record(2, 3000)]);
            fileLength = new FileInfo(segment).Length;
        }

        byte[] full = File.ReadAllBytes(segment);
        for (long cut = recordStart; cut < fileLength; cut++)
        {
            using var copy = new TempDir();
            string copyTenant = Path.Combine(copy.Path, "t1");
            Directory.CreateDirectory(copyTenant);
            File.WriteAllBytes(Path.Combine(copyTenant, Path.GetFileName(segment)), full.AsSpan(0, (int)cut).ToArray());

            using var wal = Open(copyTenant, Config());
            wal.Append([Samples.Record(1, 4000)]);
            var ts = ReadAllTimestamps(wal);

            Assert.Equal([1000L, 1000, 2000, 2000, 4000], ts);
        }
    }

    [Fact]
    public void Reopen_CorruptByteInLastRecord_RecordIsDroppedByCrc()
    {
        using var dir = new TempDir();
        string segment;
        using (var wal = Open(dir.Path, Config()))
        {
            wal.Append([Samples.Record(1, 1000)]);
            wal.Append([Samples.Record(1, 2000)]);
            segment = Directory.GetFiles(dir.Path, "segment-*").Single();
        }

        byte[] bytes = File.ReadAllBytes(segment);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(segment, bytes);

        using var reopened = Open(dir.Path, Config());
        Assert.Equal([1000L], ReadAllTimestamps(reopened));
    }

    [Fact]
    public void Commit_CheckpointSurvivesReopen_OnlyUncommittedIsReadAgain()
    {
        using var dir = new TempDir();
        using (var wal = Open(dir.Path, Config(), null, null, "a", "b"))
        {
            wal.Append([Samples.Record(1, 1000)]);
            wal.Append([Samples.Record(1, 2000)]);
            using var batch = new WalBatch();
            Assert.True(wal.ReadBatch("a", 1, batch));
            wal.Commit("a", batch);

            // Read but not committed (a crash mid-send): must come again after the restart.
            Assert.True(wal.ReadBatch("a", 1, batch));
            wal.Append([Samples.Record(1, 3000)]);
        }

        using var reopened = Open(dir.Path, Config(), null, null, "a", "b");
        Assert.Equal([2000L, 3000], ReadAllTimestamps(reopened, "a"));
        Assert.Equal([1000L, 2000, 3000], ReadAllTimestamps(reopened, "b"));
        Assert.Equal(0, reopened.Pending("a"));
    }

    [Fact]
    public void Commit_AllEndpointsPastSegment_SegmentIsDeleted()
    {
        using var dir = new TempDir();
        using var wal = Open(dir.Path, Config(segmentSize: 4096), null, null, "a", "b");
        for (int i = 0; i < 60; i++)
        {
            wal.Append([Samples.Record(5, 1000 + i)]);
        }

        int segments = wal.SegmentCount;
        Assert.True(segments > 3, wal.ToString());

        Assert.Equal(300, ReadAllTimestamps(wal, "a").Count);
        Assert.Equal(segments, wal.SegmentCount);

        Assert.Equal(300, ReadAllTimestamps(wal, "b").Count);
        Assert.True(wal.SegmentCount <= 2, wal.ToString());
        Assert.Equal(wal.SegmentCount, Directory.GetFiles(dir.Path, "segment-*").Length);
    }

    [Fact]
    public void Append_OverMaxWalBytes_DropsOldestUnsentSegmentsAndCountsThem()
    {
        using var dir = new TempDir();
        var dropped = new List<(string, long)>();
        using var wal = Open(dir.Path, Config(segmentSize: 4096, maxBytes: 16384), dropped);
        for (int i = 0; i < 200; i++)
        {
            wal.Append([Samples.Record(5, 1000 + i)]);
        }

        Assert.True(wal.TotalBytes <= 16384 + 4096, wal.ToString());
        var ts = ReadAllTimestamps(wal);

        // What was dropped plus what is still readable is exactly what was appended, and the newest survived.
        Assert.Equal(1000L, dropped.Sum(d => d.Item2) + ts.Count);
        Assert.Equal(1199L, ts[^1]);
        Assert.Equal(ts.OrderBy(x => x), ts);
    }

    [Fact]
    public void Append_SegmentOlderThanMaxWalTime_DroppedEvenIfUnsent()
    {
        using var dir = new TempDir();
        var time = new ManualTime();
        var dropped = new List<(string, long)>();
        var config = Config();
        config.TruncateFrequency = TimeSpan.FromMinutes(30);
        config.MaxWalTime = TimeSpan.FromHours(1);
        using var wal = Open(dir.Path, config, dropped, time);
        wal.Append([Samples.Record(3, 1000)]);
        time.Advance(TimeSpan.FromMinutes(31));
        wal.Append([Samples.Record(3, 2000)]);
        Assert.Empty(dropped);

        time.Advance(TimeSpan.FromMinutes(31));
        wal.Append([Samples.Record(3, 3000)]);
        Assert.Equal([("e0", 3L)], dropped);
        Assert.Equal([2000L, 2000, 2000, 3000, 3000, 3000], ReadAllTimestamps(wal));
    }
}
