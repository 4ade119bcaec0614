using Rubato.Common.Configuration;

namespace Rubato.Storage.Blocklist;

/// <summary>
/// Tempo's <c>tempodb.CompactorConfig</c> (the <c>compaction:</c> block under <c>backend_worker</c>,
/// <c>backend_scheduler.provider.compaction</c> and Tempo 2's <c>compactor</c>). The scheduler uses the selection keys,
/// the worker the retention keys; both read the same class so one YAML block can feed both.
/// </summary>
public sealed class CompactorConfig : IValidatableConfig
{
    /// <summary><c>compaction_window</c>: blocks are only compacted with blocks of the same window (by end time). Default 1h.</summary>
    public TimeSpan CompactionWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary><c>max_compaction_objects</c>: traces in one output block at most. Default 6,000,000.</summary>
    public long MaxCompactionObjects { get; set; } = 6_000_000;

    /// <summary><c>max_block_bytes</c>: bytes of input per job at most (an estimate of the output). Default 100 GiB.</summary>
    public ulong MaxBlockBytes { get; set; } = 100UL * 1024 * 1024 * 1024;

    /// <summary><c>block_retention</c>: blocks whose end time is older are marked compacted (then deleted). Default 336h. Per tenant: overrides <c>compaction.block_retention</c>.</summary>
    public TimeSpan BlockRetention { get; set; } = TimeSpan.FromHours(336);

    /// <summary><c>compacted_block_retention</c>: how long a compacted block stays before deletion. Default 1h; at least 2 × blocklist_poll.</summary>
    public TimeSpan CompactedBlockRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary><c>retention_concurrency</c>: blocks deleted at once by a retention job. Default 10.</summary>
    public int RetentionConcurrency { get; set; } = 10;

    /// <summary><c>max_time_per_tenant</c>: accepted for compatibility with Tempo 2's compactor; the scheduler bounds work per tenant by job count instead.</summary>
    public TimeSpan MaxTimePerTenant { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary><c>compaction_cycle</c>: accepted for compatibility with Tempo 2's compactor; the scheduler's cadence is <c>min_cycle_interval</c>.</summary>
    public TimeSpan CompactionCycle { get; set; } = TimeSpan.FromSeconds(30);

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (CompactionWindow <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".compaction_window", "must be positive (Tempo: compaction window can't be 0)");
        }
        else if (CompactionWindow < TimeSpan.FromSeconds(1))
        {
            validation.Error(prefix + ".compaction_window", "must be at least 1s (windows are whole seconds)");
        }

        if (MaxCompactionObjects < 1)
        {
            validation.Error(prefix + ".max_compaction_objects", $"must be at least 1, got {MaxCompactionObjects}");
        }

        if (MaxBlockBytes < 1)
        {
            validation.Error(prefix + ".max_block_bytes", "must be at least 1");
        }

        if (BlockRetention <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".block_retention", "must be positive");
        }

        if (CompactedBlockRetention <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".compacted_block_retention", "must be positive");
        }

        if (RetentionConcurrency < 1)
        {
            validation.Error(prefix + ".retention_concurrency", $"must be at least 1, got {RetentionConcurrency}");
        }

        if (MaxTimePerTenant < TimeSpan.Zero)
        {
            validation.Error(prefix + ".max_time_per_tenant", "must not be negative");
        }

        if (CompactionCycle < TimeSpan.Zero)
        {
            validation.Error(prefix + ".compaction_cycle", "must not be negative");
        }
    }

    public CompactorConfig Clone() => (CompactorConfig)MemberwiseClone();
}
