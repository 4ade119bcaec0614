using System.Globalization;
using Rubato.Storage.Backend;
using Rubato.Storage.Backend.Azure;

namespace Rubato.TestSupport;

/// <summary>
/// The npm object-storage servers of <c>test/servers</c> (s3rver 3.7, azurite's blob service) on a free 127.0.0.1
/// port, and the matching Rubato store configs. node and npm are required: without them start-up throws with a clear
/// message, so tests fail rather than skip; <c>npm ci</c> runs once when <c>test/servers/node_modules</c> lacks the
/// servers (.ci/run does it up front).
/// </summary>
public static class ObjectStoreServers
{
    /// <summary>s3rver's credentials (access and secret key).</summary>
    public const string S3Key = "S3RVER";

    public const string AzureAccount = "devstoreaccount1";

    /// <summary>Azurite's published development-account key (not a secret).</summary>
    public const string AzureKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private static bool _installed;

    public static string ServersDir => Path.Combine(RepoRoot.Path, "test", "servers");

    public static string Bin(string name) => Path.Combine(ServersDir, "node_modules", ".bin", name);

    /// <summary>s3rver with <paramref name="bucket"/> created; credentials <see cref="S3Key"/>.</summary>
    public static async Task<ServerProcess> StartS3rverAsync(string bucket)
    {
        await EnsureInstalledAsync();
        return await ServerProcess.StartAsync(
            Bin("s3rver"),
            (port, dir) => ["-d", dir, "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "--configure-bucket", bucket, "--silent"],
            StartTimeout,
            // s3rver 3.7 seals ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (node 17+) only has in its
            // legacy provider: without it every truncated listing is a 500.
            new Dictionary<string, string> { ["NODE_OPTIONS"] = "--openssl-legacy-provider" });
    }

    /// <summary>Azurite's blob service with the development account and <paramref name="container"/> created.</summary>
    public static async Task<ServerProcess> StartAzuriteAsync(string container)
    {
        await EnsureInstalledAsync();
        var server = await ServerProcess.StartAsync(
            Bin("azurite-blob"),
            (port, dir) => ["--blobHost", "127.0.0.1", "--blobPort", port.ToString(CultureInfo.InvariantCulture), "-l", dir, "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
            StartTimeout);
        try
        {
            // Rubato, like Tempo, expects the container to exist.
            using var store = new AzureBlobObjectStore(AzureConfig(server, container));
            await store.CreateContainerIfNotExistsAsync(default);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>A store config for s3rver: path style, plain HTTP, recursive listing (s3rver's delimiter listings are incomplete).</summary>
    public static S3ObjectStoreConfig S3Config(ServerProcess server, string bucket) => new()
    {
        Bucket = bucket,
        Endpoint = server.Address,
        Insecure = true,
        Forcepathstyle = true,
        Region = "us-east-1",
        AccessKey = S3Key,
        SecretKey = S3Key,
        ListRecursive = true,
    };

    /// <summary>A store config for Azurite: the development account, <c>endpoint_suffix</c> = <c>host:port</c> (path style).</summary>
    public static AzureObjectStoreConfig AzureConfig(ServerProcess server, string container) => new()
    {
        StorageAccountName = AzureAccount,
        StorageAccountKey = AzureKey,
        ContainerName = container,
        EndpointSuffix = server.Address,
    };

    /// <summary>Runs <c>npm ci</c> in test/servers unless both servers are already installed.</summary>
    public static async Task EnsureInstalledAsync()
    {
        await InstallLock.WaitAsync();
        try
        {
            if (FindOnPath("node") is null)
            {
                throw new InvalidOperationException("node is not installed: the S3 and Azure backend tests need it to run s3rver and azurite (apt-get install nodejs npm)");
            }

            if (_installed || (File.Exists(Bin("s3rver")) && File.Exists(Bin("azurite-blob"))))
            {
                _installed = true;
                return;
            }

            string npm = FindOnPath("npm") ?? throw new InvalidOperationException(
                $"npm is not installed and {ServersDir}/node_modules lacks s3rver and azurite: apt-get install nodejs npm, then npm ci --prefix test/servers");
            await Command.RunAsync(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], null, TimeSpan.FromMinutes(8), ServersDir);
            _installed = true;
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
}
