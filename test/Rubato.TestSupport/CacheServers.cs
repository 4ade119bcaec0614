using System.Globalization;

namespace Rubato.TestSupport;

/// <summary>
/// Real memcached and redis-server processes (the Debian packages) on a free 127.0.0.1 port. A missing binary is
/// installed with apt-get once per process (.ci/run installs both up front). Both servers set SO_REUSEADDR, so a
/// stopped server starts again on its port at once.
/// </summary>
public static class CacheServers
{
    public const string MemcachedBinary = "/usr/bin/memcached";
    public const string RedisBinary = "/usr/bin/redis-server";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private static readonly Dictionary<string, string> AptEnvironment = new() { ["DEBIAN_FRONTEND"] = "noninteractive" };
    private static bool _aptUpdated;

    /// <summary>memcached with <paramref name="extraArgs"/> (e.g. <c>-I 2m</c>); UDP off.</summary>
    public static async Task<ServerProcess> StartMemcachedAsync(params string[] extraArgs)
    {
        await EnsureInstalledAsync(MemcachedBinary, "memcached");
        return await ServerProcess.StartAsync(
            MemcachedBinary,
            (port, _) => ["-l", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-U", "0", "-u", "root", .. extraArgs],
            StartTimeout);
    }

    /// <summary>redis-server with <paramref name="extraArgs"/> (e.g. <c>--requirepass x</c>); no persistence.</summary>
    public static async Task<ServerProcess> StartRedisAsync(params string[] extraArgs)
    {
        await EnsureInstalledAsync(RedisBinary, "redis-server");
        return await ServerProcess.StartAsync(
            RedisBinary,
            (port, _) => ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", .. extraArgs],
            StartTimeout);
    }

    /// <summary><c>memcached</c> or <c>redis</c>.</summary>
    public static Task<ServerProcess> StartAsync(string kind) => kind switch
    {
        "memcached" => StartMemcachedAsync(),
        "redis" => StartRedisAsync(),
        _ => throw new ArgumentException($"unknown cache server '{kind}' (memcached or redis)", nameof(kind)),
    };

    private static async Task EnsureInstalledAsync(string binary, string package)
    {
        if (File.Exists(binary))
        {
            return;
        }

        await InstallLock.WaitAsync();
        try
        {
            if (File.Exists(binary))
            {
                return;
            }

            if (!_aptUpdated)
            {
                await Command.RunAsync("apt-get", ["update", "-qq"], AptEnvironment, TimeSpan.FromMinutes(5));
                _aptUpdated = true;
            }

            await Command.RunAsync("apt-get", ["install", "-y", "-qq", package], AptEnvironment, TimeSpan.FromMinutes(5));
            if (!File.Exists(binary))
            {
                throw new InvalidOperationException($"apt-get install {package} did not provide {binary}");
            }
        }
        finally
        {
            InstallLock.Release();
        }
    }
}
