using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Rubato.Overrides;

/// <summary>A runtime overrides file that cannot be used; the message names the problem (and the line, when known).</summary>
public sealed class OverridesFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Parses Tempo's runtime overrides file (<c>per_tenant_override_config</c>):
/// <code>
/// overrides:
///   "tenant-a":
///     ingestion: { rate_limit_bytes: 1000000, burst_size_bytes: 2000000, max_traces_per_user: 500 }
///     global: { max_bytes_per_trace: 1000000 }
///   "*":
///     ingestion: { max_traces_per_user: 20000 }
/// </code>
/// The legacy flat layout (<c>ingestion_rate_limit_bytes</c>, <c>max_traces_per_user</c>, <c>max_bytes_per_trace</c>,
/// ...) is accepted too. Unknown keys are errors, as in Tempo (strict decoding).
/// </summary>
/// <remarks>
/// A tenant entry is used as a whole: it is not merged with <c>overrides.defaults</c>. A field the entry omits takes
/// the built-in default (the value it has when the main config sets nothing), not the zero Tempo's Go decoder leaves
/// there, so an entry that only raises <c>max_traces_per_user</c> does not silently set the tenant's rate limit to 0.
/// </remarks>
public static class RuntimeOverridesFile
{
    private static readonly IDeserializer Strict = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .WithDuplicateKeyChecking()
        .WithTypeConverter(GoDurationYamlConverter.Instance)
        .Build();

    private static readonly ISerializer Writer = new SerializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .WithTypeConverter(GoDurationYamlConverter.Instance)
        .Build();

    /// <summary>Parses and validates the file's text.</summary>
    /// <param name="defaults">The main config's defaults; only their <c>rate_strategy</c> is copied into entries (Tempo: not per tenant).</param>
    /// <returns>Tenant id (or <c>"*"</c>) → limits. Entries written as null are left out.</returns>
    /// <exception cref="OverridesFileException">The text is not a valid overrides file.</exception>
    public static IReadOnlyDictionary<string, TenantLimits> Parse(string yaml, TenantLimits defaults)
    {
        Dictionary<string, TenantLimits> result;
        if (string.IsNullOrWhiteSpace(yaml))
        {
            return new Dictionary<string, TenantLimits>(StringComparer.Ordinal);
        }

        try
        {
            var file = Strict.Deserialize<NewLayoutFile?>(yaml);
            result = Collect(file?.Overrides, e => e);
        }
        catch (YamlException newError)
        {
            try
            {
                var legacy = Strict.Deserialize<LegacyLayoutFile?>(yaml);
                result = Collect(legacy?.Overrides, e => e.ToTenantLimits());
            }
            catch (YamlException legacyError)
            {
                throw new OverridesFileException(
                    $"invalid runtime overrides: {Describe(newError)} (read as the legacy flat layout: {Describe(legacyError)})", newError);
            }
        }

        var validation = new ConfigValidation();
        foreach (var (tenant, limits) in result)
        {
            OverridesConfig.ValidateLimits($"overrides.\"{tenant}\"", limits, validation);
        }

        if (validation.HasErrors)
        {
            throw new OverridesFileException("invalid runtime overrides: " + string.Join("; ", validation.Errors));
        }

        foreach (var limits in result.Values)
        {
            // Validated above, then ignored: Tempo applies only the defaults' rate strategy.
            limits.Ingestion.RateStrategy = defaults.Ingestion.RateStrategy;
        }

        return result;
    }

    /// <summary>Renders defaults plus entries as YAML, the body of <c>/status/runtime_config</c>.</summary>
    public static string Render(TenantLimits defaults, IReadOnlyDictionary<string, TenantLimits> entries)
    {
        var doc = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["defaults"] = defaults,
            ["overrides"] = entries.OrderBy(e => e.Key, StringComparer.Ordinal).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal),
        };
        return "---\n" + Writer.Serialize(doc);
    }

    /// <summary>Renders one set of limits as YAML.</summary>
    public static string Render(TenantLimits limits) => Writer.Serialize(limits);

    private static Dictionary<string, TenantLimits> Collect<T>(Dictionary<string, T?>? entries, Func<T, TenantLimits> convert)
        where T : class
    {
        var result = new Dictionary<string, TenantLimits>(StringComparer.Ordinal);
        if (entries is null)
        {
            return result;
        }

        foreach (var (tenant, entry) in entries)
        {
            if (entry is not null)
            {
                result[tenant] = convert(entry);
            }
        }

        return result;
    }

    private static string Describe(YamlException e)
    {
        // YamlDotNet wraps converter failures; the innermost message names the actual problem.
        Exception inner = e;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        string where = e.Start.Line > 0 ? $"line {e.Start.Line}, column {e.Start.Column}: " : string.Empty;
        string what = inner is YamlException ye ? StripMark(ye.Message) : inner.Message;
        return where + what;
    }

    private static string StripMark(string message)
    {
        // "(Line: 3, Col: 5, Idx: 20) - (Line: 3, Col: 9, Idx: 24): Property 'x' not found" → the part after the marks.
        int i = message.IndexOf("): ", StringComparison.Ordinal);
        return i >= 0 && message.StartsWith("(Line", StringComparison.Ordinal) ? message[(i + 3)..] : message;
    }

    internal sealed class NewLayoutFile
    {
        public Dictionary<string, TenantLimits?>? Overrides { get; set; }
    }

    internal sealed class LegacyLayoutFile
    {
        public Dictionary<string, LegacyTenantLimits?>? Overrides { get; set; }
    }
}

/// <summary>Tempo's legacy flat per-tenant keys (modules/overrides/config_legacy.go), mapped onto the new layout.</summary>
internal sealed class LegacyTenantLimits
{
    private static readonly TenantLimits Builtin = new();

    public string IngestionRateStrategy { get; set; } = Builtin.Ingestion.RateStrategy;

    public long IngestionRateLimitBytes { get; set; } = Builtin.Ingestion.RateLimitBytes;

    public long IngestionBurstSizeBytes { get; set; } = Builtin.Ingestion.BurstSizeBytes;

    public int IngestionTenantShardSize { get; set; }

    public int IngestionMaxAttributeBytes { get; set; }

    public TimeSpan IngestionArtificialDelay { get; set; }

    public int MaxTracesPerUser { get; set; } = Builtin.Ingestion.MaxTracesPerUser;

    public int MaxGlobalTracesPerUser { get; set; }

    public List<string> Forwarders { get; set; } = [];

    public int MetricsGeneratorRingSize { get; set; }

    public List<string> MetricsGeneratorProcessors { get; set; } = [];

    public long MetricsGeneratorMaxActiveSeries { get; set; }

    public TimeSpan MetricsGeneratorCollectionInterval { get; set; }

    public bool MetricsGeneratorDisableCollection { get; set; }

    public TimeSpan MetricsGeneratorIngestionTimeRangeSlack { get; set; }

    public TimeSpan BlockRetention { get; set; }

    public TimeSpan CompactionWindow { get; set; }

    public bool CompactionDisabled { get; set; }

    public long MaxBytesPerTagValuesQuery { get; set; } = Builtin.Read.MaxBytesPerTagValuesQuery;

    public int MaxBlocksPerTagValuesQuery { get; set; }

    public TimeSpan MaxSearchDuration { get; set; }

    public TimeSpan MaxMetricsDuration { get; set; }

    public long MaxBytesPerTrace { get; set; } = Builtin.Global.MaxBytesPerTrace;

    public List<DedicatedColumn> ParquetDedicatedColumns { get; set; } = [];

    public TenantLimits ToTenantLimits() => new()
    {
        Ingestion = new IngestionLimits
        {
            RateStrategy = IngestionRateStrategy,
            RateLimitBytes = IngestionRateLimitBytes,
            BurstSizeBytes = IngestionBurstSizeBytes,
            TenantShardSize = IngestionTenantShardSize,
            MaxAttributeBytes = IngestionMaxAttributeBytes,
            ArtificialDelay = IngestionArtificialDelay,
            MaxTracesPerUser = MaxTracesPerUser,
            MaxGlobalTracesPerUser = MaxGlobalTracesPerUser,
        },
        Forwarders = Forwarders,
        MetricsGenerator = new MetricsGeneratorLimits
        {
            RingSize = MetricsGeneratorRingSize,
            Processors = MetricsGeneratorProcessors,
            MaxActiveSeries = MetricsGeneratorMaxActiveSeries,
            CollectionInterval = MetricsGeneratorCollectionInterval,
            DisableCollection = MetricsGeneratorDisableCollection,
            IngestionTimeRangeSlack = MetricsGeneratorIngestionTimeRangeSlack,
        },
        Compaction = new CompactionLimits
        {
            BlockRetention = BlockRetention,
            CompactionWindow = CompactionWindow,
            CompactionDisabled = CompactionDisabled,
        },
        Read = new ReadLimits
        {
            MaxBytesPerTagValuesQuery = MaxBytesPerTagValuesQuery,
            MaxBlocksPerTagValuesQuery = MaxBlocksPerTagValuesQuery,
            MaxSearchDuration = MaxSearchDuration,
            MaxMetricsDuration = MaxMetricsDuration,
        },
        Global = new GlobalLimits { MaxBytesPerTrace = MaxBytesPerTrace },
        Storage = new StorageLimits { ParquetDedicatedColumns = ParquetDedicatedColumns },
    };
}
