using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Rubato.Integration.Tests.Harness;

/// <summary>
/// The npm object-storage servers of <c>test/servers</c> (s3rver, azurite) for end-to-end runs, started on a free
/// 127.0.0.1 port and killed with their process tree on dispose. This duplicates, in trimmed form, the fixture of
/// <c>Rubato.Storage.Tests/Backends/TestServers.cs</c>: the two test projects do not reference each other.
/// </summary>
/// <remarks>
/// node and the installed servers are required (<c>.ci/run</c> runs <c>npm ci --prefix test/servers</c>); without
/// them start-up throws with a clear message so the test fails instead of skipping.
/// </remarks>
public sealed class ObjectStoreServer : IAsyncDisposable
{
    public const string S3Bucket = "rubato-it";
    public const string S3Key = "S3RVER";
    public const string AzureAccount = "devstoreaccount1";

    /// <summary>Azurite's published development-account key (not a secret).</summary>
    public const string AzureKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    public const string AzureContainer = "rubato-it";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ObjectStoreServer(Process process, int port, string dataDir)
    {
        _process = process;
        Port = port;
        DataDir = dataDir;
    }

    public int Port { get; }

    /// <summary>The server's own storage folder; deleted on dispose.</summary>
    public string DataDir { get; }

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

    /// <summary>s3rver 3.7 with bucket <see cref="S3Bucket"/>, credentials S3RVER/S3RVER.</summary>
    public static Task<ObjectStoreServer> StartS3rverAsync() =>
        StartAsync(
            "s3rver",
            (port, dir) => ["-d", dir, "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "--configure-bucket", S3Bucket, "--silent"],
            // s3rver seals ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
            new Dictionary<string, string> { ["NODE_OPTIONS"] = "--openssl-legacy-provider" });

    /// <summary>Azurite's blob service with the development account and container <see cref="AzureContainer"/> created.</summary>
    public static async Task<ObjectStoreServer> StartAzuriteAsync()
    {
        var server = await StartAsync(
            "azurite-blob",
            (port, dir) => ["--blobHost", "127.0.0.1", "--blobPort", port.ToString(CultureInfo.InvariantCulture), "-l", dir, "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
            null);
        try
        {
            // Rubato, like Tempo, expects the container to exist.
            using var store = new Rubato.Storage.Backend.Azure.AzureBlobObjectStore(new Rubato.Storage.Backend.AzureObjectStoreConfig
            {
                StorageAccountName = AzureAccount,
                StorageAccountKey = AzureKey,
                ContainerName = AzureContainer,
                EndpointSuffix = $"127.0.0.1:{server.Port}",
            });
            await store.CreateContainerIfNotExistsAsync(default);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
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

    private static async Task<ObjectStoreServer> StartAsync(string bin, Func<int, string, string[]> args, IReadOnlyDictionary<string, string>? environment)
    {
        string serversDir = Path.Combine(RepoPaths.Root, "test", "servers");
        string path = Path.Combine(serversDir, "node_modules", ".bin", bin);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path} is missing: run `npm ci --prefix test/servers` (.ci/run does this; node and npm are required)");
        }

        string dataDir = Directory.CreateTempSubdirectory("rubato-it-objstore-").FullName;
        int port = FreePorts.Tcp();
        var psi = new ProcessStartInfo(path, args(port, dataDir))
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
        var server = new ObjectStoreServer(process, port, dataDir);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync();
                int code = process.ExitCode;
                string output = server.Output;
                await server.DisposeAsync();
                throw new InvalidOperationException($"{bin} exited with {code} before listening on {port}: {output}");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return server;
            }
            catch (SocketException) when (clock.Elapsed < StartTimeout)
            {
                await Task.Delay(50);
            }
            catch (SocketException)
            {
                string output = server.Output;
                await server.DisposeAsync();
                throw new TimeoutException($"{bin} did not listen on 127.0.0.1:{port} within {StartTimeout}: {output}");
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
