using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Rubato.Common.Metrics;

namespace Rubato.Cache;

/// <summary>
/// A memcached client over the text protocol (<c>get</c> → <c>VALUE key flags bytes</c> … <c>END</c>;
/// <c>set key flags exptime bytes</c> → <c>STORED</c>). Keys are spread over the servers by jump consistent hash
/// (or modulo when <c>consistent_hash</c> is false); each server has its own connection pool and circuit breaker.
/// Resilience (timeouts, misses on failure, breaker) comes from <see cref="RemoteCache"/>.
/// </summary>
public sealed class MemcachedCache : RemoteCache
{
    /// <summary>memcached's key limit in bytes.</summary>
    public const int MaxKeyLength = 250;

    private const int ThirtyDaysSeconds = 60 * 60 * 24 * 30;
    private readonly RemoteServer[] _servers;
    private readonly bool _consistentHash;
    private readonly int _maxItemSize;
    private readonly TimeSpan _expiration;

    public MemcachedCache(string name, MemcachedConfig config, MetricsRegistry metrics)
        : base(name, config.Timeout, metrics)
    {
        var servers = config.Servers();
        if (servers.Count == 0)
        {
            throw new ArgumentException("memcached: one of addresses or host is required", nameof(config));
        }

        // Servers are ordered so every Rubato process maps keys identically whatever order the config lists them.
        _servers = servers
            .OrderBy(s => s.Host, StringComparer.Ordinal).ThenBy(s => s.Port)
            .Select(s => new RemoteServer(s.Host, s.Port, config.MaxIdleConns,
                new CircuitBreaker(config.CircuitBreakerConsecutiveFailures == 0 ? int.MaxValue : config.CircuitBreakerConsecutiveFailures, config.CircuitBreakerTimeout)))
            .ToArray();
        _consistentHash = config.ConsistentHash;
        _maxItemSize = config.MaxItemSize;
        _expiration = config.Expiration;
    }

    /// <summary>
    /// The key as sent to memcached: unchanged when it is 1-250 printable ASCII characters without spaces (and does not
    /// start with the hash prefix), else <c>sha256:</c> plus the hex SHA-256 of its UTF-8 bytes (71 characters).
    /// </summary>
    public static string ToMemcachedKey(string key)
    {
        bool safe = key.Length is > 0 and <= MaxKeyLength && !key.StartsWith("sha256:", StringComparison.Ordinal);
        if (safe)
        {
            foreach (char ch in key)
            {
                if (ch is <= ' ' or > '~')
                {
                    safe = false;
                    break;
                }
            }
        }

        if (safe)
        {
            return key;
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }

    /// <summary>Jump consistent hash (Lamping and Veach 2014): maps a 64-bit key to a bucket in [0, buckets).</summary>
    public static int JumpHash(ulong key, int buckets)
    {
        long b = -1, j = 0;
        while (j < buckets)
        {
            b = j;
            key = (key * 2862933555777941757UL) + 1;
            j = (long)((b + 1) * ((double)(1L << 31) / ((key >> 33) + 1)));
        }

        return (int)b;
    }

    private static ulong Fnv1a64(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s)
        {
            h = (h ^ ch) * 1099511628211UL;
        }

        return h;
    }

    private protected override RemoteServer PickServer(string key)
    {
        if (_servers.Length == 1)
        {
            return _servers[0];
        }

        ulong h = Fnv1a64(key);
        return _servers[_consistentHash ? JumpHash(h, _servers.Length) : (int)(h % (ulong)_servers.Length)];
    }

    private protected override bool Fits(string key, int valueLength) => _maxItemSize <= 0 || valueLength <= _maxItemSize;

    private protected override async ValueTask<byte[]?> GetCoreAsync(CacheConnection connection, string key, CancellationToken ct)
    {
        string mkey = ToMemcachedKey(key);
        await connection.WriteAsync(Encoding.ASCII.GetBytes($"get {mkey}\r\n"), ct);
        byte[]? value = null;
        while (true)
        {
            string line = await connection.ReadLineAsync(ct);
            if (line == "END")
            {
                return value;
            }

            if (!line.StartsWith("VALUE ", StringComparison.Ordinal))
            {
                throw new CacheProtocolException($"memcached get: unexpected reply \"{Truncate(line)}\"");
            }

            // VALUE <key> <flags> <bytes> [<cas>]
            string[] parts = line.Split(' ');
            if (parts.Length < 4 || !int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out int length) || value is not null)
            {
                throw new CacheProtocolException($"memcached get: malformed VALUE line \"{Truncate(line)}\"");
            }

            value = new byte[length];
            await connection.ReadBlockAsync(value, ct);
            if (parts[1] != mkey)
            {
                throw new CacheProtocolException($"memcached get: reply for key \"{Truncate(parts[1])}\", asked for \"{Truncate(mkey)}\"");
            }
        }
    }

    /// <summary>One <c>get k1 k2 …</c> per 100 keys; hits come back as VALUE blocks in any subset, then END.</summary>
    private protected override async ValueTask GetManyCoreAsync(CacheConnection connection, string[] keys, byte[]?[] values, CancellationToken ct)
    {
        const int batch = 100;
        for (int start = 0; start < keys.Length; start += batch)
        {
            int end = Math.Min(keys.Length, start + batch);
            var positions = new Dictionary<string, List<int>>(StringComparer.Ordinal);
            var request = new StringBuilder("get");
            for (int i = start; i < end; i++)
            {
                string mkey = ToMemcachedKey(keys[i]);
                if (!positions.TryGetValue(mkey, out var list))
                {
                    positions[mkey] = list = [];
                    request.Append(' ').Append(mkey);
                }

                list.Add(i);
            }

            await connection.WriteAsync(Encoding.ASCII.GetBytes(request.Append("\r\n").ToString()), ct);
            while (true)
            {
                string line = await connection.ReadLineAsync(ct);
                if (line == "END")
                {
                    break;
                }

                string[] parts = line.Split(' ');
                if (parts.Length < 4 || parts[0] != "VALUE" || !int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out int length))
                {
                    throw new CacheProtocolException($"memcached get: unexpected reply \"{Truncate(line)}\"");
                }

                byte[] value = new byte[length];
                await connection.ReadBlockAsync(value, ct);
                if (!positions.TryGetValue(parts[1], out var at))
                {
                    throw new CacheProtocolException($"memcached get: reply for a key not asked for \"{Truncate(parts[1])}\"");
                }

                foreach (int i in at)
                {
                    values[i] = value;
                }
            }
        }
    }

    private protected override async ValueTask<bool> SetCoreAsync(CacheConnection connection, string key, ReadOnlyMemory<byte> value, TimeSpan? ttl, CancellationToken ct)
    {
        string mkey = ToMemcachedKey(key);
        long exptime = ExpTime(ttl ?? _expiration);
        string header = $"set {mkey} 0 {exptime.ToString(CultureInfo.InvariantCulture)} {value.Length.ToString(CultureInfo.InvariantCulture)}\r\n";
        int total = header.Length + value.Length + 2;
        byte[] buffer = RequestBuffer.Rent(total);
        try
        {
            int n = Encoding.ASCII.GetBytes(header, buffer);
            value.Span.CopyTo(buffer.AsSpan(n));
            buffer[n + value.Length] = (byte)'\r';
            buffer[n + value.Length + 1] = (byte)'\n';
            await connection.WriteAsync(buffer.AsMemory(0, total), ct);
        }
        finally
        {
            RequestBuffer.Return(buffer);
        }

        string reply = await connection.ReadLineAsync(ct);
        if (reply == "STORED")
        {
            return true;
        }

        if (reply.StartsWith("SERVER_ERROR", StringComparison.Ordinal))
        {
            return false; // e.g. "object too large for cache": the server is fine and the connection in sync.
        }

        throw new CacheProtocolException($"memcached set: unexpected reply \"{Truncate(reply)}\"");
    }

    /// <summary>memcached reads exptime above 30 days as a Unix timestamp, so longer TTLs are sent as one.</summary>
    private static long ExpTime(TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero)
        {
            return 0;
        }

        long seconds = Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds));
        return seconds <= ThirtyDaysSeconds ? seconds : DateTimeOffset.UtcNow.ToUnixTimeSeconds() + seconds;
    }

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";

    private protected override void DisposeServers()
    {
        foreach (var s in _servers)
        {
            s.Dispose();
        }
    }
}
