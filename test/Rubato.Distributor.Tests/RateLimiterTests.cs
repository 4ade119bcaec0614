using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Overrides;
using Xunit;

namespace Rubato.Distributor.Tests;

public sealed class RateLimiterTests
{
    private static RuntimeOverrides Overrides(long rate, long burst, string strategy = RateStrategies.Local)
    {
        var config = new OverridesConfig();
        config.Defaults.Ingestion.RateLimitBytes = rate;
        config.Defaults.Ingestion.BurstSizeBytes = burst;
        config.Defaults.Ingestion.RateStrategy = strategy;
        return new RuntimeOverrides(config, new MetricsRegistry());
    }

    [Fact]
    public void TryAcquire_NewTenant_StartsWithFullBurst()
    {
        using var o = Overrides(rate: 100, burst: 1000);
        var clock = new ManualClock();
        var limiter = new IngestionRateLimiter(o, clock);
        Assert.True(limiter.TryAcquire("t", 600).Allowed);
        Assert.True(limiter.TryAcquire("t", 400).Allowed);
        Assert.False(limiter.TryAcquire("t", 1).Allowed);
    }

    [Fact]
    public void TryAcquire_Refused_TakesNoTokens()
    {
        using var o = Overrides(rate: 100, burst: 1000);
        var clock = new ManualClock();
        var limiter = new IngestionRateLimiter(o, clock);
        Assert.True(limiter.TryAcquire("t", 900).Allowed);
        Assert.False(limiter.TryAcquire("t", 200).Allowed);
        Assert.True(limiter.TryAcquire("t", 100).Allowed);
    }

    [Fact]
    public void TryAcquire_AfterTime_RefillsAtRateUpToBurst()
    {
        using var o = Overrides(rate: 100, burst: 1000);
        var clock = new ManualClock();
        var limiter = new IngestionRateLimiter(o, clock);
        Assert.True(limiter.TryAcquire("t", 1000).Allowed);
        clock.Advance(TimeSpan.FromSeconds(2.5));
        Assert.Equal(250, limiter.Available("t"), 6);
        Assert.False(limiter.TryAcquire("t", 251).Allowed);
        Assert.True(limiter.TryAcquire("t", 250).Allowed);

        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1000, limiter.Available("t"), 6);
    }

    [Fact]
    public void TryAcquire_LargerThanBurst_AlwaysRefused()
    {
        using var o = Overrides(rate: 100, burst: 1000);
        var clock = new ManualClock();
        var limiter = new IngestionRateLimiter(o, clock);
        clock.Advance(TimeSpan.FromHours(1));
        var d = limiter.TryAcquire("t", 1001);
        Assert.False(d.Allowed);
        Assert.Equal(new RateLimitDecision(false, 100, 1000, 0), d);
    }

    [Fact]
    public void TryAcquire_Tenants_HaveSeparateBuckets()
    {
        using var o = Overrides(rate: 100, burst: 1000);
        var limiter = new IngestionRateLimiter(o, new ManualClock());
        Assert.True(limiter.TryAcquire("a", 1000).Allowed);
        Assert.True(limiter.TryAcquire("b", 1000).Allowed);
        Assert.False(limiter.TryAcquire("a", 1).Allowed);
    }

    [Fact]
    public void TryAcquire_OverridesReloaded_AppliesNewLimitsToExistingBucket()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "o.yaml");
        File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { rate_limit_bytes: 100, burst_size_bytes: 1000 }\n");
        using var o = new RuntimeOverrides(new OverridesConfig { PerTenantOverrideConfig = file }, new MetricsRegistry());
        Assert.True(o.ReloadNow());
        var clock = new ManualClock();
        var limiter = new IngestionRateLimiter(o, clock);
        Assert.True(limiter.TryAcquire("t", 1000).Allowed);
        Assert.False(limiter.TryAcquire("t", 100).Allowed);

        File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { rate_limit_bytes: 5000, burst_size_bytes: 5000 }\n");
        Assert.True(o.ReloadNow());
        clock.Advance(TimeSpan.FromSeconds(1));
        var d = limiter.TryAcquire("t", 4000);
        Assert.True(d.Allowed);
        Assert.Equal(5000, d.LocalLimit);
        Assert.Equal(5000, d.Burst);
    }

    [Fact]
    public void TryAcquire_GlobalStrategy_DividesRateNotBurst()
    {
        using var o = Overrides(rate: 300, burst: 1000, strategy: RateStrategies.Global);
        var clock = new ManualClock();
        var limiter = new IngestionRateLimiter(o, clock, () => 3);
        var d = limiter.TryAcquire("t", 1000);
        Assert.True(d.Allowed);
        Assert.Equal(100, d.LocalLimit);
        Assert.Equal(300, d.GlobalLimit);
        Assert.Equal(1000, d.Burst);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(100, limiter.Available("t"), 6);
    }
}
