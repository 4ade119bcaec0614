using System.Globalization;
using System.Text;
using Rubato.Common.Metrics;

namespace Rubato.Cache;

/// <summary>
/// A Redis client over RESP2: <c>GET key</c> (bulk string or null), <c>SET key value [PX ms]</c> (<c>+OK</c>),
/// and on each new connection <c>AUTH [username] password</c> and <c>SELECT db</c>. One endpoint (no Cluster or
/// Sentinel). Keys are binary-safe in Redis, so they are sent as UTF-8 unchanged. Resilience comes from
/// <see cref="RemoteCache"/>.
/// </summary>
public sealed class RedisCache : RemoteCache
{
    private readonly RemoteServer _server;
    private readonly RedisConfig _config;

    public RedisCache(string name, RedisConfig config, MetricsRegistry metrics)
        : base(name, config.Timeout, metrics)
    {
        if (config.Endpoint.Trim().Length == 0)
        {
            throw new ArgumentException("redis: endpoint is required", nameof(config));
        }

        var (host, port) = MemcachedConfig.ParseAddress(config.Endpoint.Trim(), 6379);
        int poolSize = config.PoolSize > 0 ? config.PoolSize : 10 * Environment.ProcessorCount;
        int failures = config.CircuitBreakerConsecutiveFailures == 0 ? int.MaxValue : config.CircuitBreakerConsecutiveFailures;
        _server = new RemoteServer(host, port, poolSize, new CircuitBreaker(failures, config.CircuitBreakerTimeout));
        _config = config;
    }

    private protected override RemoteServer PickServer(string key) => _server;

    private protected override async ValueTask InitializeAsync(CacheConnection connection, CancellationToken ct)
    {
        if (_config.Password.Length > 0)
        {
            byte[][] auth = _config.Username.Length > 0
                ? [Ascii("AUTH"), Encoding.UTF8.GetBytes(_config.Username), Encoding.UTF8.GetBytes(_config.Password)]
                : [Ascii("AUTH"), Encoding.UTF8.GetBytes(_config.Password)];
            await SendAsync(connection, auth, ReadOnlyMemory<byte>.Empty, ct);
            await ExpectOkAsync(connection, "AUTH", ct);
        }

        if (_config.Db != 0)
        {
            await SendAsync(connection, [Ascii("SELECT"), Ascii(_config.Db.ToString(CultureInfo.InvariantCulture))], ReadOnlyMemory<byte>.Empty, ct);
            await ExpectOkAsync(connection, "SELECT", ct);
        }
    }

    private protected override async ValueTask<byte[]?> GetCoreAsync(CacheConnection connection, string key, CancellationToken ct)
    {
        await SendAsync(connection, [Ascii("GET"), Encoding.UTF8.GetBytes(key)], ReadOnlyMemory<byte>.Empty, ct);
        return await ReadBulkAsync(connection, ct);
    }

    private static async ValueTask<byte[]?> ReadBulkAsync(CacheConnection connection, CancellationToken ct)
    {
        string line = await connection.ReadLineAsync(ct);
        if (line.Length == 0 || line[0] != '$')
        {
            throw new CacheProtocolException($"redis GET: unexpected reply \"{Truncate(line)}\"");
        }

        if (!int.TryParse(line.AsSpan(1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int length) || length < -1)
        {
            throw new CacheProtocolException($"redis GET: malformed bulk length \"{Truncate(line)}\"");
        }

        if (length == -1)
        {
            return null;
        }

        byte[] value = new byte[length];
        await connection.ReadBlockAsync(value, ct);
        return value;
    }

    /// <summary>Pipelined: every GET is written before the first reply is read (one round trip).</summary>
    private protected override async ValueTask GetManyCoreAsync(CacheConnection connection, string[] keys, byte[]?[] values, CancellationToken ct)
    {
        foreach (string key in keys)
        {
            await SendAsync(connection, [Ascii("GET"), Encoding.UTF8.GetBytes(key)], ReadOnlyMemory<byte>.Empty, ct);
        }

        for (int i = 0; i < keys.Length; i++)
        {
            values[i] = await ReadBulkAsync(connection, ct);
        }
    }

    private protected override async ValueTask<bool> SetCoreAsync(CacheConnection connection, string key, ReadOnlyMemory<byte> value, TimeSpan? ttl, CancellationToken ct)
    {
        var effective = ttl ?? _config.Expiration;
        byte[][] head = effective > TimeSpan.Zero
            ? [Ascii("SET"), Encoding.UTF8.GetBytes(key), [], Ascii("PX"), Ascii(ToMilliseconds(effective).ToString(CultureInfo.InvariantCulture))]
            : [Ascii("SET"), Encoding.UTF8.GetBytes(key), []];
        await SendAsync(connection, head, value, ct);
        string reply = await connection.ReadLineAsync(ct);
        if (reply == "+OK")
        {
            return true;
        }

        if (reply.StartsWith('-'))
        {
            return false; // e.g. -OOM: the server refused; the connection is still in sync.
        }

        throw new CacheProtocolException($"redis SET: unexpected reply \"{Truncate(reply)}\"");
    }

    /// <summary>
    /// Writes one command as a RESP array of bulk strings in a single write. An empty element at index 2 is replaced
    /// by <paramref name="value"/> (so the value is copied once, straight into the request buffer).
    /// </summary>
    private static async ValueTask SendAsync(CacheConnection connection, byte[][] args, ReadOnlyMemory<byte> value, CancellationToken ct)
    {
        int size = 16;
        for (int i = 0; i < args.Length; i++)
        {
            int len = i == 2 && args[i].Length == 0 ? value.Length : args[i].Length;
            size += 16 + len;
        }

        byte[] buffer = RequestBuffer.Rent(size);
        try
        {
            int pos = WriteAscii(buffer, 0, $"*{args.Length}\r\n");
            for (int i = 0; i < args.Length; i++)
            {
                var arg = i == 2 && args[i].Length == 0 ? value.Span : args[i];
                pos = WriteAscii(buffer, pos, $"${arg.Length.ToString(CultureInfo.InvariantCulture)}\r\n");
                arg.CopyTo(buffer.AsSpan(pos));
                pos += arg.Length;
                buffer[pos++] = (byte)'\r';
                buffer[pos++] = (byte)'\n';
            }

            await connection.WriteAsync(buffer.AsMemory(0, pos), ct);
        }
        finally
        {
            RequestBuffer.Return(buffer);
        }
    }

    private static async ValueTask ExpectOkAsync(CacheConnection connection, string command, CancellationToken ct)
    {
        string reply = await connection.ReadLineAsync(ct);
        if (reply != "+OK")
        {
            throw new CacheProtocolException($"redis {command} failed: \"{Truncate(reply)}\"");
        }
    }

    private static int WriteAscii(byte[] buffer, int pos, string s) => pos + Encoding.ASCII.GetBytes(s, buffer.AsSpan(pos));

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";

    private protected override void DisposeServers() => _server.Dispose();
}
