using System.Collections.Concurrent;
using Rubato.Common.Contracts;

namespace Rubato.Distributor;

/// <summary>
/// Per-tenant token buckets over request bytes: a bucket holds at most <c>burst_size_bytes</c> tokens and refills at
/// <c>rate_limit_bytes</c> per second. A push of N bytes takes N tokens or is refused whole (nothing is taken).
/// </summary>
/// <remarks>
/// <para>With the <c>global</c> strategy each distributor refills at rate / healthy distributors (the burst is not
/// divided), like Tempo's global ingestion rate strategy.</para>
/// <para>Threads: any request thread. Each tenant's bucket has its own lock, held for a few arithmetic operations.
/// Limits are re-read from <see cref="IOverrides"/> when its <see cref="IOverrides.Version"/> changes.</para>
/// </remarks>
public sealed class IngestionRateLimiter
{
    private readonly IOverrides _overrides;
    private readonly TimeProvider _time;
    private readonly Func<int> _healthyDistributors;
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    /// <param name="healthyDistributors">Distributors sharing a global limit; null means 1 (single process).</param>
    public IngestionRateLimiter(IOverrides overrides, TimeProvider time, Func<int>? healthyDistributors = null)
    {
        _overrides = overrides;
        _time = time;
        _healthyDistributors = healthyDistributors ?? (() => 1);
    }

    /// <summary>Takes <paramref name="bytes"/> tokens from the tenant's bucket if it holds that many.</summary>
    public RateLimitDecision TryAcquire(string tenantId, long bytes)
    {
        long version = _overrides.Version;
        var bucket = _buckets.GetOrAdd(tenantId, static (t, self) => self.NewBucket(t), this);
        long now = _time.GetTimestamp();
        lock (bucket)
        {
            if (bucket.Version != version)
            {
                Configure(bucket, tenantId, version);
            }

            Refill(bucket, now);
            bool allowed = bytes <= bucket.Tokens;
            if (allowed)
            {
                bucket.Tokens -= bytes;
            }

            return new RateLimitDecision(allowed, (long)bucket.RatePerSecond, bucket.Burst, bucket.Global ? (long)bucket.RatePerSecond * bucket.Distributors : 0);
        }
    }

    /// <summary>Tokens left in the tenant's bucket now (for tests and status pages).</summary>
    public double Available(string tenantId)
    {
        if (!_buckets.TryGetValue(tenantId, out var bucket))
        {
            return ForTenantBurst(tenantId);
        }

        lock (bucket)
        {
            Refill(bucket, _time.GetTimestamp());
            return bucket.Tokens;
        }
    }

    private long ForTenantBurst(string tenantId) => Math.Max(0, _overrides.ForTenant(tenantId).Ingestion.BurstSizeBytes);

    private Bucket NewBucket(string tenantId)
    {
        var b = new Bucket { Version = long.MinValue, LastTimestamp = _time.GetTimestamp() };
        Configure(b, tenantId, _overrides.Version);
        b.Tokens = b.Burst; // A new tenant starts with a full bucket.
        return b;
    }

    private void Configure(Bucket b, string tenantId, long version)
    {
        var ing = _overrides.ForTenant(tenantId).Ingestion;
        b.Global = ing.RateStrategy == RateStrategies.Global;
        b.Distributors = b.Global ? Math.Max(1, _healthyDistributors()) : 1;
        b.RatePerSecond = Math.Max(0, ing.RateLimitBytes) / (double)b.Distributors;
        b.Burst = Math.Max(0, ing.BurstSizeBytes);
        b.Tokens = Math.Min(b.Tokens, b.Burst);
        b.Version = version;
    }

    private void Refill(Bucket b, long now)
    {
        double elapsed = _time.GetElapsedTime(b.LastTimestamp, now).TotalSeconds;
        if (elapsed > 0)
        {
            b.Tokens = Math.Min(b.Burst, b.Tokens + (elapsed * b.RatePerSecond));
            b.LastTimestamp = now;
        }
    }

    private sealed class Bucket
    {
        public long Version;
        public double Tokens;
        public double RatePerSecond;
        public long Burst;
        public bool Global;
        public int Distributors;
        public long LastTimestamp;
    }
}

/// <summary>Outcome of <see cref="IngestionRateLimiter.TryAcquire"/>, with the limits used (for the error message).</summary>
/// <param name="LocalLimit">Bytes per second this distributor allows the tenant.</param>
/// <param name="GlobalLimit">Cluster-wide bytes per second (global strategy), else 0.</param>
public readonly record struct RateLimitDecision(bool Allowed, long LocalLimit, long Burst, long GlobalLimit);
