using Rubato.Common.Configuration;
using Rubato.Storage.Blocklist;

namespace Rubato.BackendWorker;

/// <summary>
/// <c>backend_worker:</c> (Tempo 3's modules/backendworker/config.go):
/// <code>
/// backend_worker:
///   backend_scheduler_addr: ""    # unused in target all (in process); the gRPC client will use it
///   interval: 10s                 # idle wait between asking the scheduler for work
///   finish_on_shutdown_timeout: 30s
///   compaction: { block_retention: 336h, compacted_block_retention: 1h, retention_concurrency: 10, ... }
/// </code>
/// </summary>
public sealed class BackendWorkerConfig : IValidatableConfig
{
    public string BackendSchedulerAddr { get; set; } = string.Empty;

    /// <summary><c>interval</c>: how long an idle worker waits before asking for work again.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><c>finish_on_shutdown_timeout</c>: on stop, a running job gets this long to finish before it is cancelled.</summary>
    public TimeSpan FinishOnShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>compaction</c>: Tempo's compactor settings; the worker uses the retention keys.</summary>
    public CompactorConfig Compaction { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (Interval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".interval", "must be greater than 0");
        }

        if (FinishOnShutdownTimeout < TimeSpan.Zero)
        {
            validation.Error(prefix + ".finish_on_shutdown_timeout", "must not be negative");
        }

        Compaction.Validate(prefix + ".compaction", validation);
    }
}
