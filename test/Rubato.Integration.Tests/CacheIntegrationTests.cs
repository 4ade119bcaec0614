using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Rubato.Integration.Tests.Harness;
using Rubato.LoadGen.Otlp;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// A real rubato process with a real memcached or redis-server as its bloom / trace-id-index / parquet-footer cache:
/// flushed traces come back identical whether the cache is warm, dead or restarted empty, and a dead cache never makes
/// a query slow. Rubato keeps an opened block's bloom shards and index in process, so the remote cache is consulted
/// when a process opens a block for the first time: each phase therefore restarts rubato on the same data.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class CacheIntegrationTests(ITestOutputHelper output)
{
    private const int Traces = 60;
    private const int SpansPerTrace = 5;

    /// <summary>Each trace-by-id query must stay well under this even while the cache server is dead.</summary>
    private static readonly TimeSpan MaxQueryTime = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData("memcached")]
    [InlineData("redis")]
    public async Task TraceById_CacheWarmKilledAndRestarted_SameResultsAndFast(string kind)
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {what}");
        await using var cache = await CacheDaemon.StartAsync(kind);
        string backend = kind == "memcached"
            ? $"memcached: {{ addresses: \"{cache.Address}\", timeout: 200ms }}"
            : $"redis: {{ endpoint: \"{cache.Address}\", timeout: 200ms }}";
        var config = new RubatoConfig
        {
            ExtraYaml = $"cache:\n  caches:\n    - roles: [bloom, trace-id-index, parquet-footer]\n      {backend}\n",
        };
        await using var server = await RubatoProcess.StartAsync(config, output);
        Phase($"{kind} on {cache.Address}, rubato ready");

        var batch = Pushes.NewBatch(Traces, SpansPerTrace);
        using (var sender = new GrpcOtlpSender(server.OtlpGrpc))
        {
            var result = await sender.SendAsync(batch.Body, null, CancellationToken.None);
            Assert.True(result.Ok, $"push failed: {result.Status} {result.Message}");
        }

        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in batch.Traces)
        {
            string hex = Pushes.Hex(t.TraceId);
            var spans = await server.WaitForTraceAsync(hex, SpansPerTrace);
            expected[hex] = Canonical(spans);
            var want = t.SpanIds.Select(id => id.ToString("x16", CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal);
            Assert.Equal(want, spans.Select(s => s.SpanId).Order(StringComparer.Ordinal));
        }

        Phase("pushed, flushed, every trace found (cold cache)");

        // A new process opens the blocks again: bloom shards and index now come from the cache.
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, expected, "warm cache after a rubato restart");
        double hits = await CacheHitsAsync(server);
        Assert.True(hits > 0, $"expected cache hits after a restart with a warm {kind}, /metrics shows {hits}");
        Phase($"warm cache: {hits} hits");

        await cache.StopAsync();
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, expected, $"{kind} killed");
        Phase($"{kind} killed: same results");

        await cache.StartAsync();
        await AssertSameAndFastAsync(server, expected, $"{kind} restarted (rubato kept running)");
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, expected, $"{kind} restarted empty, rubato restarted");
        await server.RestartAsync();
        await AssertSameAndFastAsync(server, expected, $"{kind} refilled, rubato restarted again");
        double hitsAgain = await CacheHitsAsync(server);
        Assert.True(hitsAgain > 0, $"expected cache hits once {kind} was back and refilled, /metrics shows {hitsAgain}");
        Phase($"{kind} restarted: same results, {hitsAgain} hits");
    }

    private async Task AssertSameAndFastAsync(RubatoProcess server, Dictionary<string, string> expected, string when)
    {
        // The first query after a restart may wait for the block list to load; WaitForTraceAsync bounds that wait.
        string first = expected.Keys.First();
        await server.WaitForTraceAsync(first, SpansPerTrace, timeout: TimeSpan.FromSeconds(60));
        var slowest = TimeSpan.Zero;
        foreach (var (hex, want) in expected)
        {
            var sw = Stopwatch.StartNew();
            var (status, body) = await server.GetTraceAsync(hex);
            sw.Stop();
            Assert.True(status == HttpStatusCode.OK, $"{when}: trace {hex} answered {(int)status}: {body}\n{server.LogTail()}");
            Assert.Equal(want, Canonical(TraceJson.Parse(body)));
            Assert.True(sw.Elapsed < MaxQueryTime, $"{when}: trace {hex} took {sw.Elapsed.TotalMilliseconds:F0} ms");
            slowest = sw.Elapsed > slowest ? sw.Elapsed : slowest;
        }

        output.WriteLine($"{when}: {expected.Count} traces equal, slowest query {slowest.TotalMilliseconds:F0} ms");
    }

    /// <summary>Every field of every span, spans in span id order, attributes by key: equal strings mean equal traces.</summary>
    private static string Canonical(IReadOnlyList<SpanView> spans) =>
        string.Join('\n', spans.OrderBy(s => s.SpanId, StringComparer.Ordinal).Select(s =>
            $"{s.TraceId}|{s.SpanId}|{s.ParentSpanId}|{s.Name}|{s.Kind}|{s.StartTimeUnixNano}|{s.EndTimeUnixNano}|" +
            string.Join(',', s.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}={a.Value}"))));

    /// <summary>Sum of <c>rubato_cache_requests_total{...,result="hit"}</c> over every cache.</summary>
    private static async Task<double> CacheHitsAsync(RubatoProcess server)
    {
        string text = await server.Http.GetStringAsync("/metrics");
        double sum = 0;
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith("rubato_cache_requests_total{", StringComparison.Ordinal) && line.Contains("result=\"hit\"", StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }

    /// <summary>
    /// A memcached or redis-server child process on a free 127.0.0.1 port (the approach of Rubato.Cache.Tests'
    /// CacheServer). Start waits until the port accepts connections; Stop kills it; Start again reuses the port.
    /// The Debian binaries must be installed (.ci/run installs them); a missing one fails the test with its path.
    /// </summary>
    private sealed class CacheDaemon : IAsyncDisposable
    {
        private readonly string _binary;
        private readonly string[] _args;
        private Process? _process;

        private CacheDaemon(string binary, string[] args, int port)
        {
            _binary = binary;
            _args = args;
            Port = port;
        }

        public int Port { get; }

        public string Address => $"127.0.0.1:{Port}";

        public static async Task<CacheDaemon> StartAsync(string kind)
        {
            int port = FreePort();
            string p = port.ToString(CultureInfo.InvariantCulture);
            var daemon = kind == "memcached"
                ? new CacheDaemon("/usr/bin/memcached", ["-l", "127.0.0.1", "-p", p, "-U", "0", "-u", "root"], port)
                : new CacheDaemon("/usr/bin/redis-server", ["--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], port);
            Assert.True(File.Exists(daemon._binary), $"{daemon._binary} is not installed (apt-get install {kind}{(kind == "redis" ? "-server" : "")})");
            await daemon.StartAsync();
            return daemon;
        }

        private static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public async Task StartAsync()
        {
            var psi = new ProcessStartInfo(_binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in _args)
            {
                psi.ArgumentList.Add(a);
            }

            var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {_binary}");
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            _process = p;
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (true)
            {
                if (p.HasExited)
                {
                    throw new InvalidOperationException($"{_binary} exited with {p.ExitCode} before listening on {Port}");
                }

                try
                {
                    using var client = new TcpClient();
                    using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
                    await client.ConnectAsync(IPAddress.Loopback, Port, cts.Token);
                    return;
                }
                catch (Exception) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(20); // Polling interval while waiting for the port, not a fixed wait.
                }
            }
        }

        public async Task StopAsync()
        {
            var p = _process;
            if (p is null)
            {
                return;
            }

            _process = null;
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }

            await p.WaitForExitAsync();
            p.Dispose();
        }

        public async ValueTask DisposeAsync() => await StopAsync();
    }
}
