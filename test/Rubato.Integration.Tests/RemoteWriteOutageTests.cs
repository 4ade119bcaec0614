using System.Globalization;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Integration.Tests.Harness;
using Rubato.RemoteWrite;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// Remote write straight from <see cref="RemoteWriteStorage"/> into a real Prometheus that goes away and comes
/// back: every appended sample must end up in Prometheus exactly once. <c>RUBATO_RW_OUTAGE_SECONDS</c> turns the
/// outage into a timed one (one collection per second for that long), for the by-hand run in docs/benchmarks.md.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class RemoteWriteOutageTests(ITestOutputHelper output)
{
    private const int Series = 6;

    [Fact]
    public async Task RemoteWriteStorage_PrometheusStoppedAndRestarted_NoSampleMissing()
    {
        await using var prometheus = await PrometheusServer.StartAsync();
        string walDir = Directory.CreateTempSubdirectory("rubato-it-rw-wal-").FullName;
        var metrics = new MetricsRegistry();
        var config = new RemoteWriteStorageConfig
        {
            Path = walDir,
            RemoteWrite =
            [
                new RemoteWriteEndpointConfig
                {
                    Url = prometheus.RemoteWriteUrl,
                    Name = "prom",
                    RemoteTimeout = TimeSpan.FromSeconds(5),
                    QueueConfig = new RemoteWriteQueueConfig { MaxSamplesPerSend = 10, MinBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromSeconds(1) },
                },
            ],
            Wal = new RemoteWriteWalConfig { WalSegmentSize = 16 * 1024, MaxWalBytes = 0 },
        };
        var storage = new RemoteWriteStorage(config, metrics, log: m => output.WriteLine(m));
        await storage.StartAsync(CancellationToken.None);
        var retried = metrics.Counter("prometheus_remote_storage_samples_retried_total", string.Empty, "remote_name", "url");
        try
        {
            // Timestamps one second apart ending near now, like one collection per second.
            long t0 = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds() * 1000;
            var expected = new List<(long Ts, double Value)>[Series];
            for (int i = 0; i < Series; i++)
            {
                expected[i] = [];
            }

            int collection = 0;
            async Task CollectAsync()
            {
                long ts = t0 + collection * 1000L;
                var samples = new List<SeriesSample>();
                for (int i = 0; i < Series; i++)
                {
                    double value = collection * (i + 1);
                    samples.Add(new SeriesSample([new("__name__", "rubato_rw_outage_total"), new("series", "s" + i)], ts, value));
                    expected[i].Add((ts, value));
                }

                collection++;
                await storage.AppendAsync("outage-tenant", samples, CancellationToken.None);
            }

            for (int c = 0; c < 5; c++)
            {
                await CollectAsync();
            }

            await Conditions.UntilAsync(() => Task.FromResult(storage.Pending("outage-tenant", "prom") == 0), "the first collections sent", TimeSpan.FromSeconds(60));

            await prometheus.StopAsync();
            var outageStart = DateTime.UtcNow;
            string? timed = Environment.GetEnvironmentVariable("RUBATO_RW_OUTAGE_SECONDS");
            if (int.TryParse(timed, NumberStyles.Integer, CultureInfo.InvariantCulture, out int seconds) && seconds > 0)
            {
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
                while (DateTime.UtcNow - outageStart < TimeSpan.FromSeconds(seconds))
                {
                    await CollectAsync();
                    await timer.WaitForNextTickAsync();
                }
            }
            else
            {
                // A few collections while the sender is failing, and at least one observed failed attempt.
                for (int c = 0; c < 4; c++)
                {
                    await CollectAsync();
                }

                await Conditions.UntilAsync(() => Task.FromResult(retried.Value("prom", prometheus.RemoteWriteUrl) > 0), "a failed send during the outage", TimeSpan.FromSeconds(60));
                for (int c = 0; c < 4; c++)
                {
                    await CollectAsync();
                }
            }

            long pendingAtRestart = storage.Pending("outage-tenant", "prom");
            var outage = DateTime.UtcNow - outageStart;
            await prometheus.RestartAsync();
            for (int c = 0; c < 3; c++)
            {
                await CollectAsync();
            }

            var caughtUp = System.Diagnostics.Stopwatch.StartNew();
            await Conditions.UntilAsync(() => Task.FromResult(storage.Pending("outage-tenant", "prom") == 0), "the WAL sent after the restart", TimeSpan.FromSeconds(120));
            output.WriteLine($"outage {outage.TotalSeconds:F1}s, {collection} collections, {pendingAtRestart} samples pending at restart, caught up {caughtUp.ElapsedMilliseconds} ms after restart");

            var stored = await prometheus.RawSamplesAsync("rubato_rw_outage_total", TimeSpan.FromHours(1));
            Assert.Equal(Series, stored.Count);
            foreach (var (labels, samples) in stored)
            {
                Assert.Equal("rubato_rw_outage_total", labels["__name__"]);
                int i = int.Parse(labels["series"].AsSpan(1), CultureInfo.InvariantCulture);
                Assert.Equal(expected[i], samples);
            }

            Assert.True(pendingAtRestart > 0, "the outage left nothing pending, so it tested nothing");
            Assert.True(retried.Value("prom", prometheus.RemoteWriteUrl) > 0);
        }
        finally
        {
            await storage.StopAsync();
            Directory.Delete(walDir, recursive: true);
        }
    }

    [Fact]
    public async Task RemoteWriteStorage_RestartWithLostCheckpoint_ResendIsAcceptedAsAlreadyIngestedAndNothingIsStuck()
    {
        await using var prometheus = await PrometheusServer.StartAsync();
        string walDir = Directory.CreateTempSubdirectory("rubato-it-rw-wal-").FullName;
        var config = new RemoteWriteStorageConfig
        {
            Path = walDir,
            RemoteWrite = [new RemoteWriteEndpointConfig { Url = prometheus.RemoteWriteUrl, Name = "prom", QueueConfig = new RemoteWriteQueueConfig { MaxSamplesPerSend = 8 } }],
        };
        long t0 = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds() * 1000;
        List<SeriesSample> Collection(int c) =>
            Enumerable.Range(0, 3).Select(i => new SeriesSample([new("__name__", "rubato_rw_resend_total"), new("series", "s" + i)], t0 + c * 1000L, c)).ToList();

        var storage = new RemoteWriteStorage(config, new MetricsRegistry(), log: m => output.WriteLine(m));
        await storage.StartAsync(CancellationToken.None);
        for (int c = 0; c < 10; c++)
        {
            await storage.AppendAsync("t", Collection(c), CancellationToken.None);
        }

        await storage.StopAsync();

        // As if the process died after Prometheus acknowledged but before the checkpoint was written.
        foreach (var f in Directory.GetFiles(Path.Combine(walDir, "t"), "checkpoint-*"))
        {
            File.Delete(f);
        }

        var metrics = new MetricsRegistry();
        storage = new RemoteWriteStorage(config, metrics, log: m => output.WriteLine(m));
        await storage.StartAsync(CancellationToken.None);
        try
        {
            for (int c = 10; c < 15; c++)
            {
                await storage.AppendAsync("t", Collection(c), CancellationToken.None);
            }

            await Conditions.UntilAsync(() => Task.FromResult(storage.Pending("t", "prom") == 0), "the resend to finish", TimeSpan.FromSeconds(60));
            var stored = await prometheus.RawSamplesAsync("rubato_rw_resend_total", TimeSpan.FromHours(1));
            Assert.Equal(3, stored.Count);
            Assert.All(stored, s => Assert.Equal(Enumerable.Range(0, 15).Select(c => (t0 + c * 1000L, (double)c)), s.Samples));
            var labels = new[] { "prom", prometheus.RemoteWriteUrl };
            Assert.True(metrics.Counter("rubato_remote_write_samples_already_ingested_total", string.Empty, "remote_name", "url").Value(labels) > 0);
            Assert.Equal(0, metrics.Counter("prometheus_remote_storage_samples_failed_total", string.Empty, "remote_name", "url").Value(labels));
        }
        finally
        {
            await storage.StopAsync();
            Directory.Delete(walDir, recursive: true);
        }
    }
}
