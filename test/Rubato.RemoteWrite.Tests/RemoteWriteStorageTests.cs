using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Xunit;

namespace Rubato.RemoteWrite.Tests;

public class RemoteWriteStorageTests
{
    private static RemoteWriteStorageConfig Config(string path, string url, Action<RemoteWriteEndpointConfig>? endpoint = null)
    {
        var ep = new RemoteWriteEndpointConfig
        {
            Url = url,
            Name = "prom",
            RemoteTimeout = TimeSpan.FromSeconds(10),
            QueueConfig = new RemoteWriteQueueConfig { MaxSamplesPerSend = 50, MinBackoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(200) },
        };
        endpoint?.Invoke(ep);
        return new RemoteWriteStorageConfig
        {
            Path = path,
            RemoteWrite = [ep],
            RemoteWriteFlushDeadline = TimeSpan.FromSeconds(10),
            Wal = new RemoteWriteWalConfig { WalSegmentSize = 8192, MaxWalBytes = 0 },
        };
    }

    private static List<SeriesSample> Collection(int series, long ts, double value) =>
        Enumerable.Range(0, series).Select(i => Samples.Counter("s" + i, ts, value)).ToList();

    private static async Task<RemoteWriteStorage> StartAsync(RemoteWriteStorageConfig config, MetricsRegistry metrics, IReadOnlyDictionary<string, string>? external = null)
    {
        var storage = new RemoteWriteStorage(config, metrics, external);
        await storage.StartAsync(CancellationToken.None);
        return storage;
    }

    private static void AssertComplete(PromLikeReceiver receiver, int series, IEnumerable<long> timestamps)
    {
        var expected = timestamps.ToList();
        for (int i = 0; i < series; i++)
        {
            Assert.Equal(expected, receiver.Stored("s" + i).Select(x => x.Ts));
        }
    }

    [Fact]
    public async Task AppendAsync_ReceiverUp_SamplesArriveWithRemoteWriteHeadersAndExternalLabels()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        var metrics = new MetricsRegistry();
        var config = Config(dir.Path, receiver.Url, e => e.Headers["X-Custom"] = "yes");
        var storage = await StartAsync(config, metrics, new Dictionary<string, string> { ["cluster"] = "c1" });

        await storage.AppendAsync("tenant-a", Collection(3, 1000, 1), CancellationToken.None);
        await Wait.UntilAsync(() => receiver.StoredCount == 3, "3 samples stored");
        await storage.StopAsync();

        var req = receiver.Requests[0];
        Assert.Equal("snappy", req.Headers["content-encoding"]);
        Assert.Equal("application/x-protobuf", req.Headers["content-type"]);
        Assert.Equal("0.1.0", req.Headers["x-prometheus-remote-write-version"]);
        Assert.StartsWith("Rubato/", req.Headers["user-agent"], StringComparison.Ordinal);
        Assert.Equal("tenant-a", req.Headers["x-scope-orgid"]);
        Assert.Equal("yes", req.Headers["x-custom"]);
        Assert.All(req.Series, s => Assert.Contains(new SeriesLabel("cluster", "c1"), s.Labels));
        Assert.Equal(3, metrics.Counter("prometheus_remote_storage_samples_total", string.Empty, "remote_name", "url").Value("prom", receiver.Url));
    }

    [Fact]
    public async Task AppendAsync_OrgIdHeaderDisabled_NoOrgIdSent()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        var config = Config(dir.Path, receiver.Url);
        config.RemoteWriteAddOrgIdHeader = false;
        var storage = await StartAsync(config, new MetricsRegistry());

        await storage.AppendAsync("tenant-a", Collection(1, 1000, 1), CancellationToken.None);
        await Wait.UntilAsync(() => receiver.StoredCount == 1, "1 sample stored");
        await storage.StopAsync();

        Assert.False(receiver.Requests[0].Headers.ContainsKey("x-scope-orgid"));
    }

    [Fact]
    public async Task Sender_Receiver503ThenRecovers_RetriesWithGrowingBackoffAndLosesNothing()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        var arrivals = new List<DateTime>();
        receiver.Override = i =>
        {
            lock (arrivals)
            {
                arrivals.Add(DateTime.UtcNow);
            }

            return i < 5 ? (503, "unavailable") : null;
        };
        var metrics = new MetricsRegistry();
        var storage = await StartAsync(Config(dir.Path, receiver.Url), metrics);

        for (int c = 0; c < 10; c++)
        {
            await storage.AppendAsync("t", Collection(20, 1000 + c * 1000, c), CancellationToken.None);
        }

        await Wait.UntilAsync(() => receiver.StoredCount == 200, "200 samples stored");
        await storage.StopAsync();

        AssertComplete(receiver, 20, Enumerable.Range(0, 10).Select(c => 1000L + c * 1000));
        Assert.True(metrics.Counter("prometheus_remote_storage_samples_retried_total", string.Empty, "remote_name", "url").Value("prom", receiver.Url) >= 5 * 20);

        // Backoff doubles from min_backoff (20ms) up to max_backoff (200ms). Arrivals are stamped by the receiver's
        // handler, which a loaded machine may run late, shortening the next gap by that delay: each gap is held to 3/4
        // of its backoff (still apart from its neighbours' bounds) and the whole run to 9/10 of the sum of the backoffs.
        double[] minimumGaps = [20, 40, 80, 160, 200];
        for (int i = 0; i < minimumGaps.Length; i++)
        {
            double gap = (arrivals[i + 1] - arrivals[i]).TotalMilliseconds;
            Assert.True(gap >= minimumGaps[i] * 0.75, $"gap {i} was {gap} ms, expected at least 3/4 of {minimumGaps[i]} ms");
        }

        double total = (arrivals[minimumGaps.Length] - arrivals[0]).TotalMilliseconds;
        Assert.True(total >= minimumGaps.Sum() * 0.9, $"the retries took {total} ms, expected at least 9/10 of {minimumGaps.Sum()} ms");
    }

    [Fact]
    public async Task Sender_Receiver400_BatchDroppedAndCountedAndLaterSamplesSent()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        receiver.Override = i => i == 0 ? (400, "invalid label set") : null;
        var metrics = new MetricsRegistry();
        var storage = await StartAsync(Config(dir.Path, receiver.Url), metrics);

        await storage.AppendAsync("t", Collection(10, 1000, 1), CancellationToken.None);
        await Wait.UntilAsync(() => receiver.Requests.Count == 1, "first request");
        await storage.AppendAsync("t", Collection(10, 2000, 2), CancellationToken.None);
        await Wait.UntilAsync(() => receiver.StoredCount == 10, "second collection stored");
        await storage.StopAsync();

        AssertComplete(receiver, 10, [2000L]);
        Assert.Equal(10, metrics.Counter("prometheus_remote_storage_samples_failed_total", string.Empty, "remote_name", "url").Value("prom", receiver.Url));
    }

    [Fact]
    public async Task Sender_Receiver429WithoutRetryOn429_Dropped()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        receiver.Override = i => i == 0 ? (429, "rate limited") : null;
        var metrics = new MetricsRegistry();
        var storage = await StartAsync(Config(dir.Path, receiver.Url, e => e.QueueConfig.RetryOnHttp429 = false), metrics);

        await storage.AppendAsync("t", Collection(5, 1000, 1), CancellationToken.None);
        await Wait.UntilAsync(() => metrics.Counter("prometheus_remote_storage_samples_failed_total", string.Empty, "remote_name", "url").Value("prom", receiver.Url) == 5, "5 failed samples");
        await storage.StopAsync();

        Assert.Equal(0, receiver.StoredCount);
    }

    [Fact]
    public async Task Restart_CheckpointLost_ResendsAlreadyIngestedAsAcknowledgedAndDeliversNewSamples()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        var config = Config(dir.Path, receiver.Url);
        var storage = await StartAsync(config, new MetricsRegistry());
        for (int c = 0; c < 6; c++)
        {
            await storage.AppendAsync("t", Collection(7, 1000 + c * 1000, c), CancellationToken.None);
        }

        await Wait.UntilAsync(() => receiver.StoredCount == 42, "first run stored");
        await storage.StopAsync();

        // A crash between the acknowledgement and the checkpoint write: the WAL is resent from its start.
        foreach (var f in Directory.GetFiles(Path.Combine(dir.Path, "t"), "checkpoint-*"))
        {
            File.Delete(f);
        }

        var metrics = new MetricsRegistry();
        storage = await StartAsync(config, metrics);
        for (int c = 6; c < 12; c++)
        {
            await storage.AppendAsync("t", Collection(7, 1000 + c * 1000, c), CancellationToken.None);
        }

        await Wait.UntilAsync(() => receiver.StoredCount == 84 && storage.Pending("t", "prom") == 0, "second run stored and nothing pending");
        await storage.StopAsync();

        AssertComplete(receiver, 7, Enumerable.Range(0, 12).Select(c => 1000L + c * 1000));
        Assert.True(metrics.Counter("rubato_remote_write_samples_already_ingested_total", string.Empty, "remote_name", "url").Value("prom", receiver.Url) > 0);
        Assert.Equal(0, metrics.Counter("prometheus_remote_storage_samples_failed_total", string.Empty, "remote_name", "url").Value("prom", receiver.Url));
    }

    [Fact]
    public async Task Stop_ReceiverDown_ReturnsAfterFlushDeadlineAndNextStartSendsTheRest()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        bool down = true;
        receiver.Override = _ => Volatile.Read(ref down) ? (503, "down") : null;
        var config = Config(dir.Path, receiver.Url);
        config.RemoteWriteFlushDeadline = TimeSpan.FromMilliseconds(300);
        var metrics = new MetricsRegistry();
        var storage = await StartAsync(config, metrics);
        await storage.AppendAsync("t", Collection(4, 1000, 1), CancellationToken.None);
        await Wait.UntilAsync(() => receiver.Requests.Count >= 1, "a failed attempt");
        await storage.AppendAsync("t", Collection(4, 2000, 2), CancellationToken.None);

        // The gauge follows appends even while the sender is stuck retrying.
        Assert.Equal(8, metrics.Gauge("prometheus_remote_storage_samples_pending", string.Empty, "remote_name", "url").Value("prom", receiver.Url));

        var stop = storage.StopAsync();
        Assert.Same(stop, await Task.WhenAny(stop, Task.Delay(TimeSpan.FromSeconds(20))));
        Assert.Equal(0, receiver.StoredCount);

        Volatile.Write(ref down, false);
        storage = await StartAsync(config, new MetricsRegistry());
        await Wait.UntilAsync(() => receiver.StoredCount == 8, "samples sent after restart");
        await storage.StopAsync();

        AssertComplete(receiver, 4, [1000L, 2000L]);
    }

    [Fact]
    public async Task Stop_ReceiverUp_FlushesEverythingBeforeReturning()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        var storage = await StartAsync(Config(dir.Path, receiver.Url), new MetricsRegistry());
        for (int c = 0; c < 20; c++)
        {
            await storage.AppendAsync("t", Collection(30, 1000 + c * 1000, c), CancellationToken.None);
        }

        await storage.StopAsync();

        Assert.Equal(600, receiver.StoredCount);
    }

    [Fact]
    public async Task AppendAsync_InvalidTenant_ThrowsNamingIt()
    {
        using var dir = new TempDir();
        await using var receiver = await PromLikeReceiver.StartAsync();
        var storage = await StartAsync(Config(dir.Path, receiver.Url), new MetricsRegistry());

        var e = await Assert.ThrowsAsync<ArgumentException>(async () => await storage.AppendAsync("..", Collection(1, 1, 1), CancellationToken.None));
        await storage.StopAsync();

        Assert.Contains("'..'", e.Message, StringComparison.Ordinal);
    }
}
