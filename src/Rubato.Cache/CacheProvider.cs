using Rubato.Common.Metrics;

namespace Rubato.Cache;

/// <summary>
/// Builds the caches of a <see cref="CacheConfig"/> and answers which one serves a role. Cache instances are named by
/// their roles joined with <c>|</c> (the <c>cache</c> metric label). Thread-safe after construction; dispose it to
/// close every connection pool.
/// </summary>
public sealed class CacheProvider : IAsyncDisposable
{
    private readonly ICache?[] _byRole = new ICache?[CacheRoles.Names.Count];
    private readonly List<ICache> _caches = [];

    /// <summary>Builds the caches. The config should have passed <see cref="CacheConfig.Validate"/>; bad entries throw.</summary>
    public CacheProvider(CacheConfig config, MetricsRegistry metrics)
    {
        foreach (var entry in config.Caches)
        {
            var roles = entry.Roles.Select(r => CacheRoles.TryParse(r, out var role)
                ? role
                : throw new ArgumentException($"cache: unknown cache role \"{r}\" (expected one of {string.Join(", ", CacheRoles.Names)})")).ToList();
            string name = string.Join('|', roles.Select(r => r.ToName()));
            ICache cache = entry switch
            {
                { Memcached: { } m } => new MemcachedCache(name, m, metrics),
                { Redis: { } r } => new RedisCache(name, r, metrics),
                { Memory: { } mem } => new MemoryCache(name, mem.MaxSizeBytes, mem.Expiration, metrics),
                _ => throw new ArgumentException($"cache: caches entry for roles {name} has no memcached, redis or memory section"),
            };
            _caches.Add(cache);
            foreach (var role in roles)
            {
                _byRole[(int)role] ??= cache;
            }
        }
    }

    /// <summary>Every configured cache.</summary>
    public IReadOnlyList<ICache> Caches => _caches;

    /// <summary>The cache serving <paramref name="role"/>, or null when none is configured (callers then skip caching).</summary>
    public ICache? For(CacheRole role) => _byRole[(int)role];

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _caches)
        {
            await c.DisposeAsync();
        }
    }
}
