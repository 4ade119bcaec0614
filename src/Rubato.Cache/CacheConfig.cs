using Rubato.Common.Configuration;

namespace Rubato.Cache;

/// <summary>
/// Tempo's top-level <c>cache:</c> section: <c>caches</c> is a list of cache instances, each serving one or more roles.
/// <code>
/// cache:
///   caches:
///     - roles: [bloom, parquet-footer]
///       memcached: { addresses: "10.0.0.1:11211,10.0.0.2:11211", timeout: 100ms }
///     - roles: [frontend-search]
///       redis: { endpoint: "redis:6379", timeout: 500ms, expiration: 1h }
/// </code>
/// <c>memory:</c> (an in-process LRU, <c>max_size_bytes</c>) is a Rubato addition for single-binary deployments.
/// </summary>
public sealed class CacheConfig : IValidatableConfig
{
    public List<CacheInstanceConfig> Caches { get; set; } = [];

    public void Validate(string prefix, ConfigValidation validation)
    {
        var seen = new Dictionary<CacheRole, int>();
        for (int i = 0; i < Caches.Count; i++)
        {
            string key = $"{prefix}.caches[{i}]";
            var c = Caches[i];
            if (c.Roles.Count == 0)
            {
                validation.Error($"{key}.roles", $"at least one role is required (one of {string.Join(", ", CacheRoles.Names)})");
            }

            foreach (string r in c.Roles)
            {
                if (!CacheRoles.TryParse(r, out var role))
                {
                    validation.Error($"{key}.roles", $"unknown cache role \"{r}\" (expected one of {string.Join(", ", CacheRoles.Names)})");
                }
                else if (seen.TryGetValue(role, out int other))
                {
                    validation.Error($"{key}.roles", $"role \"{r}\" is already served by {prefix}.caches[{other}]");
                }
                else
                {
                    seen[role] = i;
                }
            }

            int backends = (c.Memcached is null ? 0 : 1) + (c.Redis is null ? 0 : 1) + (c.Memory is null ? 0 : 1);
            if (backends != 1)
            {
                validation.Error(key, $"exactly one of memcached, redis or memory must be configured, found {backends}");
            }

            c.Memcached?.Validate($"{key}.memcached", validation);
            c.Redis?.Validate($"{key}.redis", validation);
            c.Memory?.Validate($"{key}.memory", validation);
        }
    }
}

/// <summary>One entry of <c>cache.caches</c>.</summary>
public sealed class CacheInstanceConfig
{
    /// <summary><c>roles</c>: role names (<see cref="CacheRoles.Names"/>).</summary>
    public List<string> Roles { get; set; } = [];

    public MemcachedConfig? Memcached { get; set; }

    public RedisConfig? Redis { get; set; }

    public MemoryCacheConfig? Memory { get; set; }
}

/// <summary>Tempo's memcached client keys (pkg/cache/memcached_client.go), defaults as Tempo's.</summary>
public sealed class MemcachedConfig : IValidatableConfig
{
    /// <summary><c>host</c>: a memcached host; used (port 11211) when <c>addresses</c> is empty. SRV lookup is not done.</summary>
    public string Host { get; set; } = "";

    /// <summary><c>service</c>: Tempo's SRV service name; accepted for compatibility, unused.</summary>
    public string Service { get; set; } = "memcached";

    /// <summary><c>addresses</c>: comma-separated <c>host:port</c> list; a <c>dns+</c> prefix is accepted (plain DNS).</summary>
    public string Addresses { get; set; } = "";

    /// <summary><c>timeout</c>: deadline of one get or set including connecting.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary><c>max_idle_conns</c>: idle connections kept per server.</summary>
    public int MaxIdleConns { get; set; } = 16;

    /// <summary><c>max_item_size</c>: values larger than this are not sent; 0 = no client-side limit.</summary>
    public int MaxItemSize { get; set; }

    /// <summary><c>update_interval</c>: Tempo's DNS refresh period; accepted for compatibility (addresses resolve per connect).</summary>
    public TimeSpan UpdateInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary><c>consistent_hash</c>: jump consistent hash over servers (true) or key hash modulo server count.</summary>
    public bool ConsistentHash { get; set; } = true;

    /// <summary><c>circuit_breaker_consecutive_failures</c>: failures in a row that open a server's breaker; 0 disables it.</summary>
    public int CircuitBreakerConsecutiveFailures { get; set; } = 10;

    /// <summary><c>circuit_breaker_timeout</c>: how long an open breaker refuses calls before one probe.</summary>
    public TimeSpan CircuitBreakerTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><c>circuit_breaker_interval</c>: Tempo's count-reset period; accepted (counts reset on any success).</summary>
    public TimeSpan CircuitBreakerInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><c>expiration</c>: TTL when a set passes none; 0 = never expire.</summary>
    public TimeSpan Expiration { get; set; }

    /// <summary>The servers as (host, port) pairs, from <c>addresses</c> or <c>host</c>.</summary>
    public IReadOnlyList<(string Host, int Port)> Servers()
    {
        var list = new List<(string, int)>();
        string source = Addresses.Trim().Length > 0 ? Addresses : Host;
        foreach (string raw in source.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            list.Add(ParseAddress(raw, 11211));
        }

        return list;
    }

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (Addresses.Trim().Length == 0 && Host.Trim().Length == 0)
        {
            validation.Error(prefix, "one of addresses or host is required");
        }

        try
        {
            Servers();
        }
        catch (FormatException e)
        {
            validation.Error($"{prefix}.addresses", e.Message);
        }

        if (Timeout <= TimeSpan.Zero)
        {
            validation.Error($"{prefix}.timeout", "must be positive");
        }

        if (MaxIdleConns < 0 || MaxItemSize < 0 || CircuitBreakerConsecutiveFailures < 0)
        {
            validation.Error(prefix, "max_idle_conns, max_item_size and circuit_breaker_consecutive_failures must not be negative");
        }
    }

    internal static (string Host, int Port) ParseAddress(string raw, int defaultPort)
    {
        string a = raw;
        if (a.StartsWith("dnssrv+", StringComparison.Ordinal) || a.StartsWith("dnssrvnoa+", StringComparison.Ordinal))
        {
            throw new FormatException($"address \"{raw}\": DNS SRV discovery is not supported, list host:port addresses");
        }

        if (a.StartsWith("dns+", StringComparison.Ordinal))
        {
            a = a[4..];
        }

        string host;
        string? portText;
        if (a.StartsWith('['))
        {
            int close = a.IndexOf(']');
            if (close < 0 || (close + 1 < a.Length && a[close + 1] != ':'))
            {
                throw new FormatException($"address \"{raw}\" is not [ipv6]:port");
            }

            host = a[1..close];
            portText = close + 1 < a.Length ? a[(close + 2)..] : null;
        }
        else if (a.Count(ch => ch == ':') == 1)
        {
            int colon = a.IndexOf(':');
            host = a[..colon];
            portText = a[(colon + 1)..];
        }
        else
        {
            host = a; // No port, or a bare IPv6 address.
            portText = null;
        }

        if (host.Length == 0)
        {
            throw new FormatException($"address \"{raw}\" has no host");
        }

        int port = defaultPort;
        if (portText is not null && (!int.TryParse(portText, out port) || port is <= 0 or > 65535))
        {
            throw new FormatException($"address \"{raw}\" has an invalid port");
        }

        return (host, port);
    }
}

/// <summary>Tempo's Redis keys (pkg/cache/redis_client.go). Sentinel, cluster and TLS are not supported.</summary>
public sealed class RedisConfig : IValidatableConfig
{
    /// <summary><c>endpoint</c>: <c>host:port</c> of one Redis server.</summary>
    public string Endpoint { get; set; } = "";

    /// <summary><c>master_name</c>: Sentinel master; must be empty (Sentinel is not supported).</summary>
    public string MasterName { get; set; } = "";

    /// <summary><c>timeout</c>: deadline of one get or set including connecting and AUTH/SELECT.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary><c>expiration</c>: TTL when a set passes none; 0 = never expire.</summary>
    public TimeSpan Expiration { get; set; }

    /// <summary><c>db</c>: database index selected on every connection.</summary>
    public int Db { get; set; }

    /// <summary><c>pool_size</c>: idle connections kept; 0 = 10 per CPU (go-redis' default).</summary>
    public int PoolSize { get; set; }

    /// <summary><c>username</c>: Redis 6 ACL user for AUTH (with <c>password</c>).</summary>
    public string Username { get; set; } = "";

    /// <summary><c>password</c>: sent with AUTH when not empty.</summary>
    public string Password { get; set; } = "";

    /// <summary><c>idle_timeout</c>, <c>max_connection_age</c>: accepted for compatibility, unused.</summary>
    public TimeSpan IdleTimeout { get; set; }

    public TimeSpan MaxConnectionAge { get; set; }

    /// <summary>Rubato addition: failures in a row that open the breaker; 0 disables it.</summary>
    public int CircuitBreakerConsecutiveFailures { get; set; } = 10;

    /// <summary>Rubato addition: how long an open breaker refuses calls before one probe.</summary>
    public TimeSpan CircuitBreakerTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (Endpoint.Trim().Length == 0)
        {
            validation.Error($"{prefix}.endpoint", "required");
        }
        else if (Endpoint.Contains(','))
        {
            validation.Error($"{prefix}.endpoint", "only one endpoint is supported (no Redis Cluster or Sentinel)");
        }
        else
        {
            try
            {
                MemcachedConfig.ParseAddress(Endpoint.Trim(), 6379);
            }
            catch (FormatException e)
            {
                validation.Error($"{prefix}.endpoint", e.Message);
            }
        }

        if (MasterName.Length > 0)
        {
            validation.Error($"{prefix}.master_name", "Redis Sentinel is not supported");
        }

        if (Timeout <= TimeSpan.Zero)
        {
            validation.Error($"{prefix}.timeout", "must be positive");
        }

        if (Db < 0 || PoolSize < 0)
        {
            validation.Error(prefix, "db and pool_size must not be negative");
        }
    }
}

/// <summary>Rubato's in-process cache (<c>memory:</c>).</summary>
public sealed class MemoryCacheConfig : IValidatableConfig
{
    /// <summary><c>max_size_bytes</c>: total of key lengths plus value lengths held.</summary>
    public long MaxSizeBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary><c>expiration</c>: TTL when a set passes none; 0 = never expire.</summary>
    public TimeSpan Expiration { get; set; }

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (MaxSizeBytes <= 0)
        {
            validation.Error($"{prefix}.max_size_bytes", "must be positive");
        }
    }
}
