using Rubato.Common.Configuration;
using Rubato.Common.Metrics;
using Xunit;

namespace Rubato.Cache.Tests;

public sealed class CacheProviderTests
{
    [Fact]
    public async Task For_ConfiguredRoles_ReturnsTheirCacheAndNullForOthers()
    {
        var config = new CacheConfig
        {
            Caches =
            [
                new CacheInstanceConfig { Roles = ["bloom", "parquet-footer"], Memory = new MemoryCacheConfig { MaxSizeBytes = 1000 } },
                new CacheInstanceConfig { Roles = ["frontend-search"], Redis = new RedisConfig { Endpoint = "127.0.0.1:1" } },
                new CacheInstanceConfig { Roles = ["parquet-page"], Memcached = new MemcachedConfig { Addresses = "127.0.0.1:1,127.0.0.1:2" } },
            ],
        };
        var validation = new ConfigValidation();
        config.Validate("cache", validation);
        Assert.Empty(validation.Errors);

        await using var provider = new CacheProvider(config, new MetricsRegistry());
        var bloom = provider.For(CacheRole.Bloom);
        Assert.IsType<MemoryCache>(bloom);
        Assert.Same(bloom, provider.For(CacheRole.ParquetFooter));
        Assert.Equal("bloom|parquet-footer", bloom!.Name);
        Assert.IsType<RedisCache>(provider.For(CacheRole.FrontendSearch));
        Assert.IsType<MemcachedCache>(provider.For(CacheRole.ParquetPage));
        Assert.Null(provider.For(CacheRole.TraceIdIndex));
        Assert.Equal(3, provider.Caches.Count);
    }

    [Fact]
    public void Validate_BadEntries_NameTheKeyAndProblem()
    {
        var config = new CacheConfig
        {
            Caches =
            [
                new CacheInstanceConfig { Roles = ["bloom", "blooms"], Memory = new MemoryCacheConfig() },
                new CacheInstanceConfig { Roles = ["bloom"], Memcached = new MemcachedConfig(), Redis = new RedisConfig { Endpoint = "r:6379" } },
                new CacheInstanceConfig { Roles = ["parquet-page"], Memcached = new MemcachedConfig { Addresses = "dnssrv+_memcached._tcp.mc", Timeout = TimeSpan.Zero } },
                new CacheInstanceConfig { Roles = ["trace-id-index"], Redis = new RedisConfig { Endpoint = "a:1,b:2", MasterName = "m" } },
            ],
        };
        var v = new ConfigValidation();
        config.Validate("cache", v);
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[0].roles:", StringComparison.Ordinal) && e.Contains("\"blooms\""));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[1].roles:", StringComparison.Ordinal) && e.Contains("cache.caches[0]"));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[1]:", StringComparison.Ordinal) && e.Contains("exactly one"));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[1].memcached:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[2].memcached.addresses:", StringComparison.Ordinal) && e.Contains("SRV"));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[2].memcached.timeout:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[3].redis.endpoint:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("cache.caches[3].redis.master_name:", StringComparison.Ordinal));
    }

    [Fact]
    public void Servers_AddressForms_AreParsed()
    {
        var c = new MemcachedConfig { Addresses = "dns+mc-0:11211, 10.0.0.2:11300,[::1]:11211,mc-3" };
        Assert.Equal([("mc-0", 11211), ("10.0.0.2", 11300), ("::1", 11211), ("mc-3", 11211)], c.Servers());
        Assert.Equal([("memcached", 11211)], new MemcachedConfig { Host = "memcached" }.Servers());
    }

    [Fact]
    public void CacheRoles_EveryName_RoundTrips()
    {
        foreach (CacheRole role in Enum.GetValues<CacheRole>())
        {
            Assert.True(CacheRoles.TryParse(role.ToName(), out var parsed));
            Assert.Equal(role, parsed);
        }

        Assert.Equal(["bloom", "trace-id-index", "parquet-footer", "parquet-column-idx", "parquet-offset-idx", "parquet-page", "frontend-search"], CacheRoles.Names);
        Assert.False(CacheRoles.TryParse("page", out _));
    }

    [Fact]
    public void CircuitBreaker_OpensAfterThresholdAndLetsOneProbeThroughLater()
    {
        var clock = new Clock();
        var b = new CircuitBreaker(2, TimeSpan.FromSeconds(10), clock);
        Assert.True(b.TryEnter());
        b.OnFailure();
        Assert.True(b.TryEnter());
        b.OnFailure();
        Assert.False(b.TryEnter());
        clock.Ticks += TimeSpan.FromSeconds(11).Ticks;
        Assert.True(b.TryEnter()); // The probe.
        Assert.False(b.TryEnter()); // Only one at a time.
        b.OnSuccess();
        Assert.True(b.TryEnter());
        Assert.True(b.TryEnter());
    }

    [Fact]
    public void CircuitBreaker_AbandonedProbe_LetsTheNextProbeThrough()
    {
        var clock = new Clock();
        var b = new CircuitBreaker(1, TimeSpan.FromSeconds(1), clock);
        b.OnFailure();
        clock.Ticks += TimeSpan.FromSeconds(2).Ticks;
        Assert.True(b.TryEnter());
        b.Abandon();
        Assert.True(b.TryEnter());
        b.OnFailure();
        Assert.False(b.TryEnter()); // Open again for another period.
    }

    private sealed class Clock : TimeProvider
    {
        public long Ticks { get; set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Ticks;
    }
}
