using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Rubato.TestSupport;

/// <summary>
/// A real server as a child process listening on 127.0.0.1:<see cref="Port"/> (a free port picked at creation), with
/// its own temporary data folder <see cref="DataDir"/> as working directory. <see cref="StartAsync()"/> returns once
/// the port accepts connections; <see cref="StopAsync"/> kills the process tree; starting again reuses the same port
/// and folder (a restarted cache server comes back empty, an object store keeps its files). Dispose stops the server
/// and deletes the folder.
/// </summary>
/// <remarks>
/// Not thread-safe: one test drives one server. The server's stdout/stderr are drained on thread-pool threads into a
/// bounded buffer (<see cref="Output"/>, first 64 KiB) that start-up failures quote.
/// </remarks>
public sealed class ServerProcess : IAsyncDisposable
{
    private const int MaxOutputChars = 64 * 1024;

    private readonly string _binary;
    private readonly string[] _args;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly TimeSpan _startTimeout;
    private readonly StringBuilder _output = new();
    private Process? _process;

    private ServerProcess(string binary, Func<int, string, string[]> args, TimeSpan startTimeout, IReadOnlyDictionary<string, string>? environment)
    {
        _binary = binary;
        _startTimeout = startTimeout;
        _environment = environment ?? new Dictionary<string, string>();
        Port = FreePorts.Tcp();
        DataDir = Directory.CreateTempSubdirectory("rubato-server-").FullName;
        _args = args(Port, DataDir);
    }

    public int Port { get; }

    /// <summary><c>127.0.0.1:port</c>.</summary>
    public string Address => $"127.0.0.1:{Port}";

    /// <summary>The server's working directory (its storage folder for the object stores); deleted on dispose.</summary>
    public string DataDir { get; }

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

    /// <summary>
    /// Creates the server on a free port and starts it; <paramref name="args"/> gets the port and the data folder.
    /// A server that exits or does not listen within <paramref name="startTimeout"/> throws with its output.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string binary, Func<int, string, string[]> args, TimeSpan startTimeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!File.Exists(binary))
        {
            throw new InvalidOperationException($"{binary} is not installed");
        }

        var server = new ServerProcess(binary, args, startTimeout, environment);
        try
        {
            await server.StartAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the stopped server again on the same port and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException($"{_binary} is already running on {Port}");
        }

        var psi = new ProcessStartInfo(_binary, _args)
        {
            WorkingDirectory = DataDir,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in _environment)
        {
            psi.Environment[name] = value;
        }

        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {_binary}");
        p.OutputDataReceived += (_, e) => Append(e.Data);
        p.ErrorDataReceived += (_, e) => Append(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _process = p;

        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (p.HasExited)
            {
                await p.WaitForExitAsync();
                int code = p.ExitCode;
                await StopAsync();
                throw new InvalidOperationException($"{_binary} exited with {code} before listening on {Port}: {Output}");
            }

            try
            {
                using var client = new TcpClient();
                using var connectTimeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
                await client.ConnectAsync(IPAddress.Loopback, Port, connectTimeout.Token);
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                if (clock.Elapsed > _startTimeout)
                {
                    await StopAsync();
                    throw new TimeoutException($"{_binary} did not listen on {Address} within {_startTimeout}: {Output}");
                }
            }

            await Task.Delay(20); // Polling interval while the port is not open yet, not a fixed wait.
        }
    }

    /// <summary>Kills the server with its process tree and waits for it to exit; a stopped server is left alone.</summary>
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

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(cts.Token);
        p.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still held open leaves the temporary folder behind.
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < MaxOutputChars)
            {
                _output.AppendLine(line);
            }
        }
    }
}
