using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Rubato.Cache.Tests;

/// <summary>
/// A real memcached or redis-server process on a free 127.0.0.1 port, for the integration tests. Installs the Debian
/// packages when the binaries are missing (apt-get, once per test run). Start waits until the port accepts
/// connections; Stop kills the process; Start again reuses the same port (both servers set SO_REUSEADDR).
/// </summary>
public sealed class CacheServer : IAsyncDisposable
{
    private static readonly SemaphoreSlim s_installLock = new(1, 1);
    private static bool s_aptUpdated;
    private readonly string _binary;
    private readonly Func<int, string[]> _args;
    private Process? _process;

    private CacheServer(string binary, Func<int, string[]> args, int port)
    {
        _binary = binary;
        _args = args;
        Port = port;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>memcached with <paramref name="extraArgs"/> (e.g. <c>-I 2m</c>).</summary>
    public static Task<CacheServer> StartMemcachedAsync(params string[] extraArgs) =>
        StartAsync("/usr/bin/memcached", "memcached", port => ["-l", "127.0.0.1", "-p", port.ToString(), "-U", "0", "-u", "root", .. extraArgs]);

    public static Task<CacheServer> StartRedisAsync(params string[] extraArgs) =>
        StartAsync("/usr/bin/redis-server", "redis-server", port =>
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", .. extraArgs]);

    private static async Task<CacheServer> StartAsync(string binary, string package, Func<int, string[]> args)
    {
        await EnsureInstalledAsync(binary, package);
        var server = new CacheServer(binary, args, FreePort());
        await server.StartAsync();
        return server;
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public async Task StartAsync()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException("server already running");
        }

        var psi = new ProcessStartInfo(_binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in _args(Port))
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
                _process = null;
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

    private static async Task EnsureInstalledAsync(string binary, string package)
    {
        if (File.Exists(binary))
        {
            return;
        }

        await s_installLock.WaitAsync();
        try
        {
            if (File.Exists(binary))
            {
                return;
            }

            if (!s_aptUpdated)
            {
                await RunAsync("apt-get", "update", "-qq");
                s_aptUpdated = true;
            }

            await RunAsync("apt-get", "install", "-y", "-qq", package);
            if (!File.Exists(binary))
            {
                throw new InvalidOperationException($"apt-get install {package} did not provide {binary}");
            }
        }
        finally
        {
            s_installLock.Release();
        }
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not run {file}");
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {await stderr}");
        }
    }
}

/// <summary>A TCP server that accepts connections and never answers: the "slow cache server".</summary>
public sealed class SilentServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _accepted = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public SilentServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var s = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_accepted)
                {
                    _accepted.Add(s);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _loop.Wait(TimeSpan.FromSeconds(5));
        lock (_accepted)
        {
            foreach (var s in _accepted)
            {
                s.Dispose();
            }
        }

        _stop.Dispose();
    }
}
