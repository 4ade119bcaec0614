using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests.Harness;

/// <summary>Knobs for the per-test config file; defaults match the contract's generous limits.</summary>
public sealed record RubatoConfig
{
    public bool MultitenancyEnabled { get; init; }
    public long RateLimitBytes { get; init; } = 30_000_000;
    public long BurstSizeBytes { get; init; } = 30_000_000;
    public long MaxTracesPerUser { get; init; } = 10_000;
    public long MaxBytesPerTrace { get; init; } = 5_000_000;

    /// <summary>Raw YAML appended at the top level (e.g. an unknown key for the validation test).</summary>
    public string ExtraYaml { get; init; } = "";

    /// <summary><c>storage.trace.backend</c>: local (default), s3, azure or gcs.</summary>
    public string Backend { get; init; } = "local";

    /// <summary>Content of a runtime overrides file (<c>per_tenant_override_config</c>); empty = none.</summary>
    public string PerTenantOverridesYaml { get; init; } = "";

    /// <summary>Raw YAML lines placed inside <c>storage.trace</c>, indented by four spaces (e.g. <c>    s3: {...}</c>).</summary>
    public string TraceStorageYaml { get; init; } = "";

    /// <summary>Raw YAML lines placed inside <c>overrides.defaults</c>, indented by four spaces (e.g. <c>    metrics_generator: {...}</c>).</summary>
    public string OverridesYaml { get; init; } = "";
}

/// <summary>The ports one server instance listens on; all on 127.0.0.1.</summary>
public sealed record RubatoPorts(
    int Http, int Grpc, int OtlpGrpc, int OtlpHttp, int Zipkin, int JaegerThriftHttp, int JaegerCompactUdp, int JaegerBinaryUdp, int JaegerGrpc)
{
    /// <summary>Seven distinct TCP and two distinct UDP ports (a repeated port would make rubato refuse its config).</summary>
    public static RubatoPorts Pick()
    {
        int[] t = FreePorts.Tcp(7);
        int[] u = FreePorts.Udp(2);
        return new(t[0], t[1], t[2], t[3], t[4], t[5], u[0], u[1], t[6]);
    }
}

/// <summary>
/// One real <c>rubato</c> child process (<c>dotnet rubato.dll -config.file=...</c>) with its own temp directory
/// (config, WAL, blocks) and free ports. Output is captured on the process's reader threads into a bounded queue and
/// written to the test output when the instance is disposed.
/// </summary>
public sealed class RubatoProcess : IAsyncDisposable
{
    private const int MaxLogLines = 4000;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    private readonly ITestOutputHelper? _output;
    private readonly string[] _extraArgs;
    private readonly ConcurrentQueue<string> _log = new();
    private Process? _process;
    private int _starts;

    private RubatoProcess(RubatoConfig config, ITestOutputHelper? output, string[] extraArgs)
    {
        Config = config;
        _output = output;
        _extraArgs = extraArgs;
        Dir = Directory.CreateTempSubdirectory("rubato-it-").FullName;
        Ports = RubatoPorts.Pick();
        Http = new HttpClient { BaseAddress = HttpBase, Timeout = TimeSpan.FromSeconds(30) };
    }

    public RubatoConfig Config { get; }

    public RubatoPorts Ports { get; private set; }

    /// <summary>Temp directory holding config.yaml, wal/ and blocks/; deleted on dispose.</summary>
    public string Dir { get; }

    public string ConfigPath => Path.Combine(Dir, "config.yaml");

    /// <summary>The WAL folder; a test may delete it between <see cref="KillAsync"/> and <see cref="RestartAsync"/>.</summary>
    public string WalDir => Path.Combine(Dir, "wal");

    public Uri HttpBase => new($"http://127.0.0.1:{Ports.Http}");
    public Uri OtlpGrpc => new($"http://127.0.0.1:{Ports.OtlpGrpc}");
    public Uri OtlpHttp => new($"http://127.0.0.1:{Ports.OtlpHttp}");
    public Uri ZipkinSpans => new($"http://127.0.0.1:{Ports.Zipkin}/api/v2/spans");
    public Uri JaegerThriftHttp => new($"http://127.0.0.1:{Ports.JaegerThriftHttp}/api/traces");

    /// <summary>Client for the server's HTTP API port.</summary>
    public HttpClient Http { get; private set; }

    public int Pid => _process?.Id ?? throw new InvalidOperationException("server not started");

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>Starts a server and waits until <c>GET /ready</c> answers 200.</summary>
    public static async Task<RubatoProcess> StartAsync(RubatoConfig? config = null, ITestOutputHelper? output = null, params string[] extraArgs)
    {
        var p = new RubatoProcess(config ?? new RubatoConfig(), output, extraArgs);
        try
        {
            await p.StartWithPortRetryAsync();
            return p;
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs the server with a config that is expected to make it exit; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(RubatoConfig config, TimeSpan timeout, params string[] extraArgs)
    {
        var p = new RubatoProcess(config, null, extraArgs);
        try
        {
            p.WriteConfig();
            var psi = p.StartInfo();
            using var proc = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
            var stdout = proc.StandardOutput.ReadToEndAsync();
            var stderr = proc.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await proc.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                proc.Kill(entireProcessTree: true);
                await proc.WaitForExitAsync();
                throw new TimeoutException($"rubato did not exit within {timeout}; stderr: {await stderr}");
            }

            return (proc.ExitCode, await stdout, await stderr);
        }
        finally
        {
            await p.DisposeAsync();
        }
    }

    /// <summary>SIGKILL (Process.Kill on Linux): no shutdown hooks run, exactly like a crash.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } proc)
        {
            proc.Kill(entireProcessTree: true);
            await proc.WaitForExitAsync();
        }
    }

    /// <summary>Kills the server if it runs and starts it again on the same directories and ports.</summary>
    public async Task RestartAsync()
    {
        await KillAsync();
        _log.Enqueue("---- restart ----");
        await StartOnceAsync();
    }

    /// <summary>The captured stdout+stderr lines so far.</summary>
    public string Logs => string.Join('\n', _log);

    /// <summary>The last <paramref name="lines"/> captured lines, for failure messages.</summary>
    public string LogTail(int lines = 40)
    {
        var all = _log.ToArray();
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (InvalidOperationException)
        {
        }

        _process?.Dispose();
        Http.Dispose();
        if (_output is not null && !_log.IsEmpty)
        {
            var tail = _log.ToArray();
            try
            {
                _output.WriteLine($"---- rubato output (last {Math.Min(tail.Length, 300)} of {tail.Length} lines) ----");
                foreach (var line in tail.Skip(Math.Max(0, tail.Length - 300)))
                {
                    _output.WriteLine(line);
                }
            }
            catch (InvalidOperationException)
            {
                // The test has already finished and its output helper is closed.
            }
        }

        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task StartWithPortRetryAsync()
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await StartOnceAsync();
                return;
            }
            catch (RubatoStartException e) when (attempt < 3 && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                // Lost the race for a port picked by FreePorts: pick new ones.
                Ports = RubatoPorts.Pick();
                Http.Dispose();
                Http = new HttpClient { BaseAddress = HttpBase, Timeout = TimeSpan.FromSeconds(30) };
            }
        }
    }

    private async Task StartOnceAsync()
    {
        WriteConfig();
        _process?.Dispose();
        var proc = new Process { StartInfo = StartInfo(), EnableRaisingEvents = true };
        int generation = Interlocked.Increment(ref _starts);
        proc.OutputDataReceived += (_, e) => Capture(generation, "out", e.Data);
        proc.ErrorDataReceived += (_, e) => Capture(generation, "err", e.Data);
        if (!proc.Start())
        {
            throw new RubatoStartException("could not start dotnet");
        }

        proc.BeginOutputReadLine();
        proc.BeginErrorReadLine();
        _process = proc;

        var deadline = Stopwatch.StartNew();
        using var probe = new HttpClient { BaseAddress = HttpBase, Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            if (proc.HasExited)
            {
                await proc.WaitForExitAsync(); // flush the output readers
                throw new RubatoStartException($"rubato exited with code {proc.ExitCode} before becoming ready:\n{Logs}");
            }

            try
            {
                using var response = await probe.GetAsync("/ready");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }

            if (deadline.Elapsed > ReadyTimeout)
            {
                throw new RubatoStartException($"rubato not ready after {ReadyTimeout.TotalSeconds}s:\n{Logs}");
            }

            await Task.Delay(100);
        }
    }

    private void Capture(int generation, string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        _log.Enqueue($"[{generation}:{stream}] {line}");
        while (_log.Count > MaxLogLines && _log.TryDequeue(out _))
        {
        }
    }

    private ProcessStartInfo StartInfo()
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Dir,
        };
        psi.ArgumentList.Add(RepoPaths.ServerDll);
        psi.ArgumentList.Add($"-config.file={ConfigPath}");
        foreach (var a in _extraArgs)
        {
            psi.ArgumentList.Add(a);
        }

        // Keep the child small on a 2-core box shared with the test process.
        psi.Environment["DOTNET_gcServer"] = "0";
        return psi;
    }

    private void WriteConfig()
    {
        var c = Config;
        var p = Ports;
        string wal = Path.Combine(Dir, "wal");
        string blocks = Path.Combine(Dir, "blocks");
        var yaml = new StringBuilder();
        yaml.Append(CultureInfo.InvariantCulture, $$"""
            server:
              http_listen_address: 127.0.0.1
              http_listen_port: {{p.Http}}
              grpc_listen_address: 127.0.0.1
              grpc_listen_port: {{p.Grpc}}
            multitenancy_enabled: {{(c.MultitenancyEnabled ? "true" : "false")}}
            distributor:
              receivers:
                otlp:
                  protocols:
                    grpc: { endpoint: "127.0.0.1:{{p.OtlpGrpc}}" }
                    http: { endpoint: "127.0.0.1:{{p.OtlpHttp}}" }
                zipkin: { endpoint: "127.0.0.1:{{p.Zipkin}}" }
                jaeger:
                  protocols:
                    thrift_http: { endpoint: "127.0.0.1:{{p.JaegerThriftHttp}}" }
                    thrift_compact: { endpoint: "127.0.0.1:{{p.JaegerCompactUdp}}" }
                    thrift_binary: { endpoint: "127.0.0.1:{{p.JaegerBinaryUdp}}" }
                    grpc: { endpoint: "127.0.0.1:{{p.JaegerGrpc}}" }
            ingester:
              max_block_duration: 5m
            storage:
              trace:
                backend: {{c.Backend}}
                wal: { path: "{{wal}}" }
                local: { path: "{{blocks}}" }
            {{c.TraceStorageYaml}}
            overrides:
              defaults:
                ingestion: { rate_limit_bytes: {{c.RateLimitBytes}}, burst_size_bytes: {{c.BurstSizeBytes}}, max_traces_per_user: {{c.MaxTracesPerUser}} }
                global: { max_bytes_per_trace: {{c.MaxBytesPerTrace}} }
            {{c.OverridesYaml}}

            """);
        if (c.PerTenantOverridesYaml.Length > 0)
        {
            string overridesPath = Path.Combine(Dir, "overrides.yaml");
            File.WriteAllText(overridesPath, c.PerTenantOverridesYaml);
            yaml.Append(CultureInfo.InvariantCulture, $"  per_tenant_override_config: \"{overridesPath}\"\n");
        }

        yaml.Append(c.ExtraYaml);
        File.WriteAllText(ConfigPath, yaml.ToString());
    }
}

/// <summary>The server did not become ready; the message carries its output.</summary>
public sealed class RubatoStartException(string message) : Exception(message);
