namespace Rubato.Cache;

/// <summary>
/// A byte cache. Implementations never throw for backend failures: a cache that is down or slow reads as a miss and
/// a failed set is dropped (both counted in <c>rubato_cache_requests_total</c>). Only caller cancellation throws.
/// Safe to call from any thread concurrently.
/// </summary>
public interface ICache : IAsyncDisposable
{
    /// <summary>The name used as the <c>cache</c> metric label (the roles joined with <c>|</c>, or a test name).</summary>
    string Name { get; }

    /// <summary>The value, or null on a miss (absent, expired, or the backend failed or timed out).</summary>
    /// <remarks>The returned array may be shared with the cache (the in-memory cache hands out its copy): do not mutate it.</remarks>
    ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Values for <paramref name="keys"/>, in the same order; null where missed.</summary>
    async ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        var result = new byte[]?[keys.Count];
        for (int i = 0; i < keys.Count; i++)
        {
            result[i] = await GetAsync(keys[i], cancellationToken);
        }

        return result;
    }

    /// <summary>
    /// Stores a copy of <paramref name="value"/>. <paramref name="ttl"/> null uses the cache's configured expiration
    /// (none when that is zero). Best effort: a value too large or a backend failure is dropped silently.
    /// </summary>
    ValueTask SetAsync(string key, ReadOnlyMemory<byte> value, TimeSpan? ttl = null, CancellationToken cancellationToken = default);
}
