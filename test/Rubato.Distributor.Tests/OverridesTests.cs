using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Overrides;
using Xunit;

namespace Rubato.Distributor.Tests;

public sealed class OverridesTests
{
    [Fact]
    public void ForTenant_NoRuntimeFile_ReturnsTempoDefaults()
    {
        using var o = new RuntimeOverrides(new OverridesConfig(), new MetricsRegistry());
        var l = o.ForTenant("anyone");
        Assert.Equal(RateStrategies.Local, l.Ingestion.RateStrategy);
        Assert.Equal(30_000_000, l.Ingestion.RateLimitBytes);
        Assert.Equal(30_000_000, l.Ingestion.BurstSizeBytes);
        Assert.Equal(10_000, l.Ingestion.MaxTracesPerUser);
        Assert.Equal(0, l.Ingestion.MaxGlobalTracesPerUser);
        Assert.Equal(0, l.Ingestion.MaxAttributeBytes);
        Assert.Equal(5_000_000, l.Global.MaxBytesPerTrace);
        Assert.Equal(TimeSpan.FromSeconds(10), new OverridesConfig().PerTenantOverridePeriod);
    }

    [Fact]
    public void Validate_LegacyFlatMainConfigKeys_AppliedToDefaultsWithDeprecationWarning()
    {
        var config = new OverridesConfig
        {
            MaxTracesPerUser = 50_000,
            IngestionRateLimitBytes = 15_000_000,
            MaxBytesPerTrace = 1_000,
            BlockRetention = TimeSpan.FromHours(48),
            MetricsGeneratorProcessors = ["service-graphs"],
        };
        var validation = new Rubato.Common.Configuration.ConfigValidation();
        config.Validate("overrides", validation);
        Assert.False(validation.HasErrors);
        Assert.Contains(validation.Warnings, w => w.Contains("max_traces_per_user", StringComparison.Ordinal));

        using var o = new RuntimeOverrides(config, new MetricsRegistry());
        var l = o.ForTenant("x");
        Assert.Equal(50_000, l.Ingestion.MaxTracesPerUser);
        Assert.Equal(15_000_000, l.Ingestion.RateLimitBytes);
        Assert.Equal(30_000_000, l.Ingestion.BurstSizeBytes);
        Assert.Equal(1_000, l.Global.MaxBytesPerTrace);
        Assert.Equal(TimeSpan.FromHours(48), l.Compaction.BlockRetention);
        Assert.Equal(["service-graphs"], l.MetricsGenerator.Processors);
    }

    [Fact]
    public void Validate_NegativeLegacyKey_ErrorNamesNewKey()
    {
        var validation = new Rubato.Common.Configuration.ConfigValidation();
        new OverridesConfig { MaxBytesPerTrace = -5 }.Validate("overrides", validation);
        Assert.Contains(validation.Errors, e => e.StartsWith("overrides.defaults.global.max_bytes_per_trace", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_NewLayout_TenantEntryThenWildcardThenDefaults()
    {
        var defaults = new TenantLimits();
        defaults.Ingestion.MaxTracesPerUser = 111;
        var entries = RuntimeOverridesFile.Parse(
            """
            overrides:
              "tenant-a":
                ingestion:
                  rate_limit_bytes: 1000
                  burst_size_bytes: 2000
                  max_traces_per_user: 5
                global:
                  max_bytes_per_trace: 777
                compaction:
                  block_retention: 48h
              "*":
                ingestion:
                  max_traces_per_user: 42
            """,
            defaults);

        Assert.Equal(1000, entries["tenant-a"].Ingestion.RateLimitBytes);
        Assert.Equal(2000, entries["tenant-a"].Ingestion.BurstSizeBytes);
        Assert.Equal(5, entries["tenant-a"].Ingestion.MaxTracesPerUser);
        Assert.Equal(777, entries["tenant-a"].Global.MaxBytesPerTrace);
        Assert.Equal(TimeSpan.FromHours(48), entries["tenant-a"].Compaction.BlockRetention);
        Assert.Equal(42, entries["*"].Ingestion.MaxTracesPerUser);
    }

    [Fact]
    public async Task ForTenant_RuntimeFile_OwnEntryWildcardAndRateStrategyFromDefaults()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "overrides.yaml");
        File.WriteAllText(file, """
            overrides:
              "tenant-a":
                ingestion: { max_traces_per_user: 5, rate_strategy: global }
              "*":
                ingestion: { max_traces_per_user: 42 }
            """);
        var config = new OverridesConfig { PerTenantOverrideConfig = file };
        config.Defaults.Ingestion.MaxTracesPerUser = 111;
        using var o = new RuntimeOverrides(config, new MetricsRegistry());
        await o.Service.StartAsync(CancellationToken.None);
        try
        {
            Assert.Equal(5, o.ForTenant("tenant-a").Ingestion.MaxTracesPerUser);
            Assert.Equal(42, o.ForTenant("tenant-b").Ingestion.MaxTracesPerUser);

            // The per-tenant entry is not merged with the defaults: omitted fields are built-in defaults.
            Assert.Equal(5_000_000, o.ForTenant("tenant-a").Global.MaxBytesPerTrace);

            // Tempo: the rate strategy cannot be overridden per tenant.
            Assert.Equal(RateStrategies.Local, o.ForTenant("tenant-a").Ingestion.RateStrategy);
            Assert.Equal(["*", "tenant-a", "tenant-c"], o.EffectiveLimits(["tenant-c"]).Keys);
            Assert.Contains("max_traces_per_user: 42", o.RenderRuntimeConfig());
        }
        finally
        {
            await o.Service.StopAsync();
        }
    }

    [Fact]
    public void ForTenant_NoWildcard_FallsBackToOperatorDefaults()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "o.yaml");
        File.WriteAllText(file, "overrides:\n  \"a\":\n    ingestion: { max_traces_per_user: 5 }\n");
        var config = new OverridesConfig { PerTenantOverrideConfig = file };
        config.Defaults.Ingestion.MaxTracesPerUser = 111;
        using var o = new RuntimeOverrides(config, new MetricsRegistry());
        Assert.True(o.ReloadNow());
        Assert.Equal(111, o.ForTenant("b").Ingestion.MaxTracesPerUser);
        Assert.Same(config.Defaults, o.ForTenant("b"));
    }

    [Fact]
    public void Parse_LegacyFlatKeys_MapToNewLayout()
    {
        var entries = RuntimeOverridesFile.Parse(
            """
            overrides:
              "legacy":
                ingestion_rate_limit_bytes: 100
                ingestion_burst_size_bytes: 200
                max_traces_per_user: 3
                max_bytes_per_trace: 400
                block_retention: 24h
            """,
            new TenantLimits());
        var l = entries["legacy"];
        Assert.Equal(100, l.Ingestion.RateLimitBytes);
        Assert.Equal(200, l.Ingestion.BurstSizeBytes);
        Assert.Equal(3, l.Ingestion.MaxTracesPerUser);
        Assert.Equal(400, l.Global.MaxBytesPerTrace);
        Assert.Equal(TimeSpan.FromHours(24), l.Compaction.BlockRetention);
    }

    [Fact]
    public void Parse_UnknownKey_ThrowsNamingTheKey()
    {
        var e = Assert.Throws<OverridesFileException>(() => RuntimeOverridesFile.Parse(
            "overrides:\n  \"a\":\n    ingestion:\n      max_tracez_per_user: 5\n",
            new TenantLimits()));
        Assert.Contains("max_tracez_per_user", e.Message);
    }

    [Theory]
    [InlineData("overrides: 5\n")]
    [InlineData("overrides:\n  t: 5\n")]
    [InlineData("- a\n- b\n")]
    [InlineData("overrides:\n  t:\n    ingestion:\n      max_traces_per_user: 99999999999\n")]
    [InlineData("overrides:\n  t:\n    compaction:\n      block_retention: 5 parsecs\n")]
    [InlineData("overrides:\n  t:\n    ingestion: [1, 2]\n")]
    [InlineData("overrides:\n  t:\n    ingestion:\n      rate_limit_bytes: 1\n    ingestion:\n      rate_limit_bytes: 2\n")]
    [InlineData("overrides: {\n")]
    [InlineData("overrides:\n  t:\n    ingestion: { rate_strategy: sometimes }\n")]
    public void Parse_BadDocument_ThrowsOverridesFileException(string yaml)
    {
        var e = Assert.Throws<OverridesFileException>(() => RuntimeOverridesFile.Parse(yaml, new TenantLimits()));
        Assert.StartsWith("invalid runtime overrides: ", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("overrides:\n")]
    [InlineData("overrides: {}\n")]
    [InlineData("overrides:\n  t:\n")]
    public void Parse_EmptyDocuments_NoEntries(string yaml)
    {
        Assert.Empty(RuntimeOverridesFile.Parse(yaml, new TenantLimits()));
    }

    [Fact]
    public void Parse_NegativeLimit_ThrowsNamingTheKey()
    {
        var e = Assert.Throws<OverridesFileException>(() => RuntimeOverridesFile.Parse(
            "overrides:\n  \"a\":\n    global:\n      max_bytes_per_trace: -1\n",
            new TenantLimits()));
        Assert.Contains("overrides.\"a\".global.max_bytes_per_trace", e.Message);
    }

    [Fact]
    public async Task RuntimeOverrides_FileChanged_ReloadsWithoutWaitingForThePeriod()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "overrides.yaml");
        File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { max_traces_per_user: 1 }\n");
        var config = new OverridesConfig { PerTenantOverrideConfig = file, PerTenantOverridePeriod = TimeSpan.FromHours(1) };
        using var o = new RuntimeOverrides(config, new MetricsRegistry());
        int changed = 0;
        o.Changed += () => Interlocked.Increment(ref changed);
        await o.Service.StartAsync(CancellationToken.None);
        try
        {
            long v0 = o.Version;
            Assert.Equal(1, o.ForTenant("t").Ingestion.MaxTracesPerUser);
            File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { max_traces_per_user: 2 }\n");
            await Wait.UntilAsync(() => o.ForTenant("t").Ingestion.MaxTracesPerUser == 2, TimeSpan.FromSeconds(15), "the changed file to be reloaded");
            Assert.True(o.Version > v0);
            Assert.True(Volatile.Read(ref changed) >= 1);
        }
        finally
        {
            await o.Service.StopAsync();
        }
    }

    [Fact]
    public async Task RuntimeOverrides_BadFile_KeepsPreviousLimitsAndCountsFailure()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "overrides.yaml");
        File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { max_traces_per_user: 7 }\n");
        var metrics = new MetricsRegistry();
        var config = new OverridesConfig { PerTenantOverrideConfig = file, PerTenantOverridePeriod = TimeSpan.FromHours(1) };
        var logs = new List<string>();
        using var o = new RuntimeOverrides(config, metrics, m => { lock (logs) { logs.Add(m); } });
        await o.Service.StartAsync(CancellationToken.None);
        try
        {
            long v = o.Version;
            File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { max_traces_per_user: [not a number\n");
            Assert.False(o.ReloadNow());
            Assert.Equal(7, o.ForTenant("t").Ingestion.MaxTracesPerUser);
            Assert.Equal(v, o.Version);
            Assert.NotNull(o.LastError);
            Assert.True(metrics.Counter("rubato_overrides_reloads_total", "", "result").Value("failure") >= 1);
            Assert.Equal(0, metrics.Gauge("rubato_overrides_last_reload_successful", "").Value());
            lock (logs)
            {
                Assert.Contains(logs, l => l.Contains("keeping the previous limits", StringComparison.Ordinal));
            }

            File.WriteAllText(file, "overrides:\n  \"t\":\n    ingestion: { max_traces_per_user: 8 }\n");
            Assert.True(o.ReloadNow());
            Assert.Equal(8, o.ForTenant("t").Ingestion.MaxTracesPerUser);
            Assert.Null(o.LastError);
        }
        finally
        {
            await o.Service.StopAsync();
        }
    }

    [Fact]
    public async Task StartAsync_MissingFile_FailsWithPath()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "absent.yaml");
        using var o = new RuntimeOverrides(new OverridesConfig { PerTenantOverrideConfig = file }, new MetricsRegistry());
        var e = await Assert.ThrowsAsync<OverridesFileException>(() => o.Service.StartAsync(CancellationToken.None));
        Assert.Contains(file, e.Message);
    }

    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("500ms", 500)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("14d", 1_209_600_000)]
    [InlineData("0", 0)]
    public void GoDuration_Parse_GoAndPrometheusSyntax(string text, long millis)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(millis), GoDuration.Parse(text));
    }

    [Theory]
    [InlineData("10")]
    [InlineData("5x")]
    [InlineData("")]
    public void GoDuration_Parse_BadInput_Throws(string text)
    {
        Assert.Throws<FormatException>(() => GoDuration.Parse(text));
    }

    [Fact]
    public void GoDuration_Format_RoundTrips()
    {
        foreach (var ts in new[] { TimeSpan.FromHours(336), TimeSpan.FromMinutes(90), TimeSpan.FromMilliseconds(250), TimeSpan.Zero })
        {
            Assert.Equal(ts, GoDuration.Parse(GoDuration.FormatCompact(ts)));
        }

        Assert.Equal("336h", GoDuration.FormatCompact(TimeSpan.FromHours(336)));
        Assert.Equal("1h30m", GoDuration.FormatCompact(TimeSpan.FromMinutes(90)));
    }
}
