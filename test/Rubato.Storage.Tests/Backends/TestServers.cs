using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>
/// Installs (once per test run) and starts the npm object-storage servers of <c>test/servers</c> on 127.0.0.1.
/// </summary>
/// <remarks>
/// node and npm are required: without them the fixtures throw with a clear message, so the tests fail rather than
/// skip (CI installs node). <c>npm ci</c> runs only when <c>test/servers/node_modules</c> lacks the servers.
/// </remarks>
public static class TestServers
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private static bool _installed;

    public static string RepoRoot { get; } = FindRoot();

    public static string ServersDir => Path.Combine(RepoRoot, "test", "servers");

    public static string Bin(string name) => Path.Combine(ServersDir, "node_modules", ".bin", name);

    /// <summary>Runs <c>npm ci</c> in test/servers unless both servers are already installed.</summary>
    public static async Task EnsureInstalledAsync()
    {
        await InstallLock.WaitAsync();
        try
        {
            if (_installed || (File.Exists(Bin("s3rver")) && File.Exists(Bin("azurite-blob"))))
            {
                _installed = true;
                return;
            }

            string npm = FindOnPath("npm") ?? throw new InvalidOperationException(
                "npm is not installed: the S3 and Azure backend tests need node and npm to run s3rver and azurite (apt-get install nodejs npm)");
            if (FindOnPath("node") is null)
            {
                throw new InvalidOperationException("node is not installed: the S3 and Azure backend tests need it (apt-get install nodejs npm)");
            }

            var psi = new ProcessStartInfo(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            {
                WorkingDirectory = ServersDir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
            await p.WaitForExitAsync(timeout.Token);
            if (p.ExitCode != 0)
            {
                throw new InvalidOperationException($"npm ci in {ServersDir} failed ({p.ExitCode}): {await stdout}{await stderr}");
            }

            _installed = true;
        }
        finally
        {
            InstallLock.Release();
        }
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static string? FindOnPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rubato.slnx")))
            {
                return dir.FullName;
            }
        }

        // Built outside the tree (--artifacts-path): the project records its repository at build time.
        string? recorded = typeof(TestServers).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RubatoRepoRoot")?.Value;
        if (recorded is not null && File.Exists(Path.Combine(recorded, "Rubato.slnx")))
        {
            return Path.GetFullPath(recorded);
        }

        throw new InvalidOperationException($"no Rubato.slnx above {AppContext.BaseDirectory} nor at the recorded '{recorded}'");
    }
}

/// <summary>One server process on 127.0.0.1:<see cref="Port"/>, killed with its process tree on dispose.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process, int port, string dataDir)
    {
        _process = process;
        Port = port;
        DataDir = dataDir;
    }

    public int Port { get; }

    public string DataDir { get; }

    /// <summary>Starts <paramref name="bin"/> (a test/servers executable) and waits until its port accepts connections.</summary>
    public static async Task<ServerProcess> StartAsync(string bin, Func<int, string, string[]> args, TimeSpan startTimeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        await TestServers.EnsureInstalledAsync();
        if (TestServers.FindOnPath("node") is null)
        {
            throw new InvalidOperationException($"node is not installed: the {bin} backend tests need it (apt-get install nodejs npm)");
        }

        string dataDir = Path.Combine(Path.GetTempPath(), "rubato-objstore-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        int port = TestServers.FreePort();
        var psi = new ProcessStartInfo(TestServers.Bin(bin), args(port, dataDir))
        {
            WorkingDirectory = dataDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {bin}");
        var server = new ServerProcess(process, port, dataDir);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{bin} exited with {process.ExitCode} before listening on {port}: {server.Output}");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return server;
            }
            catch (SocketException) when (deadline.Elapsed < startTimeout)
            {
                using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
                await tick.WaitForNextTickAsync();
            }
            catch (SocketException)
            {
                await server.DisposeAsync();
                throw new TimeoutException($"{bin} did not listen on 127.0.0.1:{port} within {startTimeout}: {server.Output}");
            }
        }
    }

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

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await _process.WaitForExitAsync(cts.Token);
            }
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(DataDir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
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
            if (_output.Length < 64 * 1024)
            {
                _output.AppendLine(line);
            }
        }
    }
}

/// <summary>npm <c>s3rver</c> 3.7.1 with one bucket; credentials S3RVER/S3RVER.</summary>
public sealed class S3rverFixture : IAsyncLifetime
{
    public const string Bucket = "rubato-test";

    public ServerProcess Server { get; private set; } = null!;

    public string Endpoint => $"127.0.0.1:{Server.Port}";

    public async Task InitializeAsync() =>
        Server = await ServerProcess.StartAsync(
            "s3rver",
            (port, dir) => ["-d", dir, "-a", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--configure-bucket", Bucket, "--silent"],
            TimeSpan.FromSeconds(60),
            // s3rver 3.7 seals ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (node 17+) only has in its
            // legacy provider: without it every truncated listing is a 500.
            new Dictionary<string, string> { ["NODE_OPTIONS"] = "--openssl-legacy-provider" });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>npm <c>azurite</c>'s blob service with the well-known development account.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public const string Account = "devstoreaccount1";

    /// <summary>Azurite's published development-account key (not a secret).</summary>
    public const string Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    public const string Container = "rubato-test";

    public ServerProcess Server { get; private set; } = null!;

    /// <summary>Tempo's <c>endpoint_suffix</c> for an emulator: <c>host:port</c>.</summary>
    public string EndpointSuffix => $"127.0.0.1:{Server.Port}";

    public async Task InitializeAsync()
    {
        Server = await ServerProcess.StartAsync(
            "azurite-blob",
            (port, dir) => ["--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", dir, "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
            TimeSpan.FromSeconds(60));
        using var store = new Rubato.Storage.Backend.Azure.AzureBlobObjectStore(new Rubato.Storage.Backend.AzureObjectStoreConfig
        {
            StorageAccountName = Account,
            StorageAccountKey = Key,
            ContainerName = Container,
            EndpointSuffix = EndpointSuffix,
        });
        await store.CreateContainerIfNotExistsAsync(default);
        await store.CreateContainerIfNotExistsAsync(default); // the second finds it there (409): still success
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
