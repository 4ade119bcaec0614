using Rubato.Common.Configuration;
using Rubato.Common.Contracts;

namespace Rubato.Overrides;

/// <summary>
/// The <c>overrides:</c> section of the main config (Tempo's new layout):
/// <code>
/// overrides:
///   defaults:
///     ingestion: { rate_strategy: local, rate_limit_bytes: 30000000, burst_size_bytes: 30000000, max_traces_per_user: 10000 }
///     global: { max_bytes_per_trace: 5000000 }
///   per_tenant_override_config: /etc/tempo/overrides.yaml
///   per_tenant_override_period: 10s
/// </code>
/// </summary>
public sealed class OverridesConfig : IValidatableConfig
{
    /// <summary><c>defaults</c>: limits of every tenant without its own runtime entry (and without a <c>"*"</c> entry).</summary>
    public TenantLimits Defaults { get; set; } = new();

    /// <summary><c>per_tenant_override_config</c>: path of the runtime overrides file; empty = none.</summary>
    public string PerTenantOverrideConfig { get; set; } = string.Empty;

    /// <summary><c>per_tenant_override_period</c>: how often the runtime file is re-read (it is also re-read on change).</summary>
    public TimeSpan PerTenantOverridePeriod { get; set; } = TimeSpan.FromSeconds(10);

    // Tempo's legacy flat layout (before `defaults:`), still found in many configs: `overrides: { max_traces_per_user:
    // 50000, ingestion_rate_limit_bytes: ... }`. Each key that is set replaces the matching field of Defaults.

    public string? IngestionRateStrategy { get; set; }

    public long? IngestionRateLimitBytes { get; set; }

    public long? IngestionBurstSizeBytes { get; set; }

    public int? IngestionMaxAttributeBytes { get; set; }

    public int? MaxTracesPerUser { get; set; }

    public int? MaxGlobalTracesPerUser { get; set; }

    public long? MaxBytesPerTrace { get; set; }

    public List<string>? Forwarders { get; set; }

    public List<string>? MetricsGeneratorProcessors { get; set; }

    public long? MetricsGeneratorMaxActiveSeries { get; set; }

    public TimeSpan? BlockRetention { get; set; }

    public TimeSpan? CompactionWindow { get; set; }

    public long? MaxBytesPerTagValuesQuery { get; set; }

    public int? MaxBlocksPerTagValuesQuery { get; set; }

    public TimeSpan? MaxSearchDuration { get; set; }

    /// <summary>
    /// Copies the legacy flat keys that are set into <see cref="Defaults"/> and returns the names used (empty when
    /// none). Idempotent; <see cref="Validate"/> and <see cref="RuntimeOverrides"/> call it.
    /// </summary>
    public IReadOnlyList<string> ApplyLegacyKeys()
    {
        var used = new List<string>();
        var d = Defaults;
        Set(IngestionRateStrategy, v => d.Ingestion.RateStrategy = v, "ingestion_rate_strategy", used);
        Set(IngestionRateLimitBytes, v => d.Ingestion.RateLimitBytes = v, "ingestion_rate_limit_bytes", used);
        Set(IngestionBurstSizeBytes, v => d.Ingestion.BurstSizeBytes = v, "ingestion_burst_size_bytes", used);
        Set(IngestionMaxAttributeBytes, v => d.Ingestion.MaxAttributeBytes = v, "ingestion_max_attribute_bytes", used);
        Set(MaxTracesPerUser, v => d.Ingestion.MaxTracesPerUser = v, "max_traces_per_user", used);
        Set(MaxGlobalTracesPerUser, v => d.Ingestion.MaxGlobalTracesPerUser = v, "max_global_traces_per_user", used);
        Set(MaxBytesPerTrace, v => d.Global.MaxBytesPerTrace = v, "max_bytes_per_trace", used);
        Set(Forwarders, v => d.Forwarders = [.. v], "forwarders", used);
        Set(MetricsGeneratorProcessors, v => d.MetricsGenerator.Processors = [.. v], "metrics_generator_processors", used);
        Set(MetricsGeneratorMaxActiveSeries, v => d.MetricsGenerator.MaxActiveSeries = v, "metrics_generator_max_active_series", used);
        Set(BlockRetention, v => d.Compaction.BlockRetention = v, "block_retention", used);
        Set(CompactionWindow, v => d.Compaction.CompactionWindow = v, "compaction_window", used);
        Set(MaxBytesPerTagValuesQuery, v => d.Read.MaxBytesPerTagValuesQuery = v, "max_bytes_per_tag_values_query", used);
        Set(MaxBlocksPerTagValuesQuery, v => d.Read.MaxBlocksPerTagValuesQuery = v, "max_blocks_per_tag_values_query", used);
        Set(MaxSearchDuration, v => d.Read.MaxSearchDuration = v, "max_search_duration", used);
        return used;
    }

    private static void Set<T>(T? value, Action<T> apply, string key, List<string> used)
        where T : class
    {
        if (value is not null)
        {
            apply(value);
            used.Add(key);
        }
    }

    private static void Set<T>(T? value, Action<T> apply, string key, List<string> used)
        where T : struct
    {
        if (value is { } v)
        {
            apply(v);
            used.Add(key);
        }
    }

    public void Validate(string prefix, ConfigValidation validation)
    {
        var legacy = ApplyLegacyKeys();
        if (legacy.Count > 0)
        {
            validation.Warning(prefix, $"legacy flat keys ({string.Join(", ", legacy)}) are deprecated; move them under {prefix}.defaults (e.g. defaults.ingestion.max_traces_per_user)");
        }

        if (!string.IsNullOrEmpty(PerTenantOverrideConfig) && PerTenantOverridePeriod <= TimeSpan.Zero)
        {
            validation.Error($"{prefix}.per_tenant_override_period", "must be positive when per_tenant_override_config is set");
        }

        ValidateLimits($"{prefix}.defaults", Defaults, validation);
    }

    /// <summary>Checks one set of limits; used for the defaults and for every entry of the runtime file.</summary>
    public static void ValidateLimits(string prefix, TenantLimits limits, ConfigValidation validation)
    {
        var ing = limits.Ingestion;
        if (ing.RateStrategy is not (RateStrategies.Local or RateStrategies.Global))
        {
            validation.Error($"{prefix}.ingestion.rate_strategy", $"must be \"local\" or \"global\", got \"{ing.RateStrategy}\"");
        }

        if (ing.RateLimitBytes < 0)
        {
            validation.Error($"{prefix}.ingestion.rate_limit_bytes", "must not be negative");
        }

        if (ing.BurstSizeBytes < 0)
        {
            validation.Error($"{prefix}.ingestion.burst_size_bytes", "must not be negative");
        }

        if (ing.MaxTracesPerUser < 0)
        {
            validation.Error($"{prefix}.ingestion.max_traces_per_user", "must not be negative (0 disables the limit)");
        }

        if (ing.MaxGlobalTracesPerUser < 0)
        {
            validation.Error($"{prefix}.ingestion.max_global_traces_per_user", "must not be negative (0 disables the limit)");
        }

        if (ing.MaxAttributeBytes < 0)
        {
            validation.Error($"{prefix}.ingestion.max_attribute_bytes", "must not be negative (0 uses the distributor's setting)");
        }

        if (ing.ArtificialDelay < TimeSpan.Zero)
        {
            validation.Error($"{prefix}.ingestion.artificial_delay", "must not be negative");
        }

        if (limits.Global.MaxBytesPerTrace < 0)
        {
            validation.Error($"{prefix}.global.max_bytes_per_trace", "must not be negative (0 disables the limit)");
        }

        if (limits.Compaction.BlockRetention < TimeSpan.Zero)
        {
            validation.Error($"{prefix}.compaction.block_retention", "must not be negative");
        }

        if (limits.Read.MaxBytesPerTagValuesQuery < 0)
        {
            validation.Error($"{prefix}.read.max_bytes_per_tag_values_query", "must not be negative");
        }

        for (int i = 0; i < limits.Storage.ParquetDedicatedColumns.Count; i++)
        {
            var c = limits.Storage.ParquetDedicatedColumns[i];
            string key = $"{prefix}.storage.parquet_dedicated_columns[{i}]";
            if (string.IsNullOrEmpty(c.Name))
            {
                validation.Error(key + ".name", "is required");
            }

            if (c.Scope is not ("" or "resource" or "span" or "event"))
            {
                validation.Error(key + ".scope", $"must be resource, span or event, got \"{c.Scope}\"");
            }

            if (c.Type is not ("" or "string" or "int"))
            {
                validation.Error(key + ".type", $"must be string or int, got \"{c.Type}\"");
            }
        }
    }
}
