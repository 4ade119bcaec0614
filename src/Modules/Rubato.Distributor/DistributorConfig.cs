using Rubato.Common.Configuration;

namespace Rubato.Distributor;

/// <summary>
/// The distributor's keys of Tempo's <c>distributor:</c> section, except <c>receivers</c> (owned by the receivers
/// module, which the server merges into the same section).
/// </summary>
public sealed class DistributorConfig : IValidatableConfig
{
    /// <summary><c>log_received_spans</c>: log every received span (debugging; costs a decode per push).</summary>
    public SpanLoggingConfig LogReceivedSpans { get; set; } = new();

    /// <summary><c>log_discarded_spans</c>: log spans refused by limits.</summary>
    public SpanLoggingConfig LogDiscardedSpans { get; set; } = new();

    /// <summary>
    /// <c>max_attribute_bytes</c>: attribute keys and string values longer than this are truncated (counted in
    /// <c>rubato_distributor_attributes_truncated_total</c>); 0 disables. A tenant's
    /// <c>ingestion.max_attribute_bytes</c> above 0 takes precedence.
    /// </summary>
    public int MaxAttributeBytes { get; set; } = 2048;

    /// <summary>
    /// <c>retry_after_on_resource_exhausted</c>: the delay receivers advertise (HTTP <c>Retry-After</c>, gRPC
    /// RetryInfo) when spans are refused with 429 / RESOURCE_EXHAUSTED; zero omits it.
    /// </summary>
    public TimeSpan RetryAfterOnResourceExhausted { get; set; } = TimeSpan.FromSeconds(5);

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (MaxAttributeBytes < 0)
        {
            validation.Error($"{prefix}.max_attribute_bytes", "must not be negative (0 disables truncation)");
        }

        if (RetryAfterOnResourceExhausted < TimeSpan.Zero)
        {
            validation.Error($"{prefix}.retry_after_on_resource_exhausted", "must not be negative");
        }
    }
}

/// <summary><c>log_received_spans</c> / <c>log_discarded_spans</c>.</summary>
public sealed class SpanLoggingConfig
{
    public bool Enabled { get; set; }

    /// <summary><c>include_all_attributes</c>: log every span attribute, not just the identifying fields.</summary>
    public bool IncludeAllAttributes { get; set; }

    /// <summary><c>filter_by_status_error</c>: log only spans whose status is ERROR.</summary>
    public bool FilterByStatusError { get; set; }
}
