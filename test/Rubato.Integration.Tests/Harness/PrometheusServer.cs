using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Rubato.Integration.Tests.Harness;

/// <summary>
/// A real Prometheus (Debian <c>prometheus</c>, 2.42 in CI) with its remote-write receiver, on a free 127.0.0.1 port
/// and its own TSDB directory. It can be stopped (SIGTERM) and started again on the same port and data directory
/// to simulate an outage; dispose kills it and deletes the directory.
/// </summary>
public sealed partial class PrometheusServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly StringBuilder _output = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private Process? _process;

    private PrometheusServer(int port, string dir)
    {
        Port = port;
        Dir = dir;
    }

    public int Port { get; }

    /// <summary>Holds <c>prometheus.yml</c> and the TSDB (<c>data/</c>).</summary>
    public string Dir { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    /// <summary>The remote-write receiver's URL.</summary>
    public string RemoteWriteUrl => BaseUrl + "/api/v1/write";

    public bool IsRunning => _process is { HasExited: false };

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<PrometheusServer> StartAsync()
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: install Debian's prometheus package (.ci/run does this)");
        }

        string dir = Directory.CreateTempSubdirectory("rubato-it-prometheus-").FullName;
        // No scrape jobs: everything in the TSDB arrives through remote write.
        File.WriteAllText(Path.Combine(dir, "prometheus.yml"), "global:\n  evaluation_interval: 1m\nscrape_configs: []\n");
        var server = new PrometheusServer(FreePorts.Tcp(), dir);
        try
        {
            await server.RestartAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the process (again) on the same port and data directory and waits for <c>/-/ready</c>.</summary>
    public async Task RestartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("prometheus is already running");
        }

        _process?.Dispose();
        var psi = new ProcessStartInfo(Binary,
        [
            "--web.enable-remote-write-receiver",
            $"--web.listen-address=127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}",
            $"--storage.tsdb.path={Path.Combine(Dir, "data")}",
            $"--config.file={Path.Combine(Dir, "prometheus.yml")}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ])
        {
            WorkingDirectory = Dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start prometheus");
        _process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"prometheus exited with {process.ExitCode} before it was ready: {Output}");
            }

            try
            {
                using var r = await _http.GetAsync(BaseUrl + "/-/ready");
                if (r.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (clock.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"prometheus was not ready on {BaseUrl} within {StartTimeout}: {Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Stops the process gracefully (SIGTERM, as systemd would) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        var process = _process;
        if (process is null || process.HasExited)
        {
            return;
        }

        if (Kill(process.Id, 15) != 0)
        {
            process.Kill();
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>An instant query; returns <c>data.result</c>.</summary>
    public async Task<JsonElement> QueryAsync(string promql, DateTimeOffset? at = null)
    {
        string url = $"{BaseUrl}/api/v1/query?query={Uri.EscapeDataString(promql)}";
        if (at is { } t)
        {
            url += "&time=" + (t.ToUnixTimeMilliseconds() / 1000.0).ToString("F3", CultureInfo.InvariantCulture);
        }

        using var r = await _http.GetAsync(url);
        string body = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"query {promql} failed: {(int)r.StatusCode} {body}");
        }

        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("data").GetProperty("result").Clone();
    }

    /// <summary>Instant vector query as (labels, value) pairs.</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> VectorAsync(string promql)
    {
        var result = await QueryAsync(promql);
        return result.EnumerateArray()
            .Select(e => (Labels(e), double.Parse(e.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)))
            .ToList();
    }

    /// <summary>
    /// Every raw sample of the series matching <paramref name="selector"/> in the last <paramref name="window"/>
    /// (a range-vector instant query returns stored samples, not interpolated ones).
    /// </summary>
    public async Task<List<(Dictionary<string, string> Labels, List<(long TimestampMs, double Value)> Samples)>> RawSamplesAsync(string selector, TimeSpan window)
    {
        var result = await QueryAsync($"{selector}[{(long)window.TotalSeconds}s]");
        return result.EnumerateArray()
            .Select(e => (Labels(e), e.GetProperty("values").EnumerateArray()
                .Select(v => ((long)Math.Round(v[0].GetDouble() * 1000), double.Parse(v[1].GetString()!, CultureInfo.InvariantCulture)))
                .ToList()))
            .ToList();
    }

    private static Dictionary<string, string> Labels(JsonElement e) =>
        e.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 64 * 1024)
            {
                _output.AppendLine(line);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_process is { HasExited: false } p)
            {
                p.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await p.WaitForExitAsync(cts.Token);
            }
        }
        finally
        {
            _process?.Dispose();
            _http.Dispose();
            try
            {
                Directory.Delete(Dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }
}
