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

    public void Validate(string prefix, ConfigValidation validation)
    {
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
