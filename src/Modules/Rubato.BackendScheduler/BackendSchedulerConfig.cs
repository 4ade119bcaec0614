using Rubato.Common.Configuration;
using Rubato.Storage.Blocklist;

namespace Rubato.BackendScheduler;

/// <summary>
/// <c>backend_scheduler:</c>, with Tempo 3's layout (modules/backendscheduler/config.go and provider/config.go):
/// <code>
/// backend_scheduler:
///   tenant_measurement_interval: 1m
///   maintenance_interval: 1m
///   job_timeout: 15s            # Rubato: a lease lasts this long without a worker heartbeat
///   max_job_attempts: 3         # Rubato: leases of one job before it is given up
///   work: { prune_age: 1h, dead_job_timeout: 24h }
///   provider:
///     retention: { interval: 1h }
///     compaction:
///       measure_interval: 1m
///       max_jobs_per_tenant: 1000
///       min_input_blocks: 2
///       max_input_blocks: 4
///       min_cycle_interval: 30s
///       compaction: { compaction_window: 1h, max_compaction_objects: 6000000, max_block_bytes: 107374182400,
///                     block_retention: 336h, compacted_block_retention: 1h, retention_concurrency: 10 }
/// </code>
/// </summary>
public sealed class BackendSchedulerConfig : IValidatableConfig
{
    public TimeSpan TenantMeasurementInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary><c>maintenance_interval</c>: how often expired leases are re-issued and finished jobs pruned.</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary><c>job_timeout</c>: lease length; a worker that sends no heartbeat for this long loses the job.</summary>
    public TimeSpan JobTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary><c>max_job_attempts</c>: leases (first plus re-issues) before a job is marked failed for good.</summary>
    public int MaxJobAttempts { get; set; } = 3;

    public WorkConfig Work { get; set; } = new();

    public ProviderConfig Provider { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (TenantMeasurementInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".tenant_measurement_interval", "must be greater than 0");
        }

        if (MaintenanceInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".maintenance_interval", "must be greater than 0");
        }

        if (JobTimeout <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".job_timeout", "must be greater than 0");
        }

        if (MaxJobAttempts < 1)
        {
            validation.Error(prefix + ".max_job_attempts", $"must be at least 1, got {MaxJobAttempts}");
        }

        Work.Validate(prefix + ".work", validation);
        Provider.Validate(prefix + ".provider", validation);
    }

    /// <summary>
    /// The cross-section rules that need <c>storage.trace.blocklist_poll</c> (and the querier's
    /// <c>query_backend_after</c> when the caller has it): see <see cref="BlocklistPoller.ValidateConsistency"/>.
    /// </summary>
    public void ValidateWithStorage(TimeSpan blocklistPoll, TimeSpan? queryBackendAfter, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        BlocklistPoller.ValidateConsistency(blocklistPoll, Provider.Compaction.Compaction.CompactedBlockRetention, queryBackendAfter, validation);
    }
}

/// <summary><c>backend_scheduler.work</c>.</summary>
public sealed class WorkConfig
{
    /// <summary><c>prune_age</c>: finished jobs are kept (for /status) this long.</summary>
    public TimeSpan PruneAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary><c>dead_job_timeout</c>: a job still not finished this long after creation is failed.</summary>
    public TimeSpan DeadJobTimeout { get; set; } = TimeSpan.FromHours(24);

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (PruneAge <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".prune_age", "positive prune age required");
        }

        if (DeadJobTimeout <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".dead_job_timeout", "must be positive");
        }
    }
}

/// <summary><c>backend_scheduler.provider</c>.</summary>
public sealed class ProviderConfig
{
    public RetentionProviderConfig Retention { get; set; } = new();

    public CompactionProviderConfig Compaction { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        Retention.Validate(prefix + ".retention", validation);
        Compaction.Validate(prefix + ".compaction", validation);
    }
}

/// <summary><c>backend_scheduler.provider.retention</c>.</summary>
public sealed class RetentionProviderConfig
{
    /// <summary><c>interval</c>: every tenant gets a retention job this often.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (Interval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".interval", "must be greater than 0");
        }
    }
}

/// <summary><c>backend_scheduler.provider.compaction</c>.</summary>
public sealed class CompactionProviderConfig
{
    /// <summary><c>measure_interval</c>: how often outstanding blocks per tenant are measured (for /status and metrics).</summary>
    public TimeSpan MeasureInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary><c>max_jobs_per_tenant</c>: compaction jobs created for one tenant per cycle before moving on.</summary>
    public int MaxJobsPerTenant { get; set; } = 1000;

    public int MinInputBlocks { get; set; } = TimeWindowBlockSelector.DefaultMinInputBlocks;

    public int MaxInputBlocks { get; set; } = TimeWindowBlockSelector.DefaultMaxInputBlocks;

    /// <summary><c>min_cycle_interval</c>: time between scheduling cycles (tenant prioritisation + job creation).</summary>
    public TimeSpan MinCycleInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>compaction</c>: Tempo's compactor settings.</summary>
    public CompactorConfig Compaction { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (MaxJobsPerTenant <= 0)
        {
            validation.Error(prefix + ".max_jobs_per_tenant", "must be greater than 0");
        }

        if (MinCycleInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".min_cycle_interval", "must be greater than 0, and should be at least half the blocklist_poll cycle for general use");
        }

        if (MeasureInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".measure_interval", "must be greater than 0");
        }

        if (MinInputBlocks < 2)
        {
            validation.Error(prefix + ".min_input_blocks", $"must be at least 2, got {MinInputBlocks}");
        }

        if (MaxInputBlocks < MinInputBlocks)
        {
            validation.Error(prefix + ".max_input_blocks", $"must be at least min_input_blocks ({MinInputBlocks}), got {MaxInputBlocks}");
        }

        Compaction.Validate(prefix + ".compaction", validation);
    }
}
