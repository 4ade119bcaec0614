using Rubato.Common.Configuration;

namespace Rubato.Ingester;

/// <summary>
/// Tempo 2.x's <c>ingester:</c> keys (modules/ingester/config.go). The WAL path and block settings come from
/// <c>storage.trace.wal</c> / <c>storage.trace.block</c> through <see cref="IngesterOptions"/>.
/// </summary>
public sealed class IngesterConfig : IValidatableConfig
{
    /// <summary><c>trace_idle_period</c>: a trace without appends for this long stops counting as live.</summary>
    public TimeSpan TraceIdlePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary><c>max_trace_live</c>: a trace stops counting as live this long after it became live, even if busy.</summary>
    public TimeSpan MaxTraceLive { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>flush_check_period</c>: how often the head is checked for cutting and pending blocks are retried.</summary>
    public TimeSpan FlushCheckPeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary><c>max_block_duration</c>: the head is cut this long after its first append.</summary>
    public TimeSpan MaxBlockDuration { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary><c>max_block_bytes</c>: the head is cut once it holds this many payload bytes.</summary>
    public long MaxBlockBytes { get; set; } = 500L * 1024 * 1024;

    /// <summary>
    /// <c>complete_block_timeout</c>: how long a flushed block stays part of the ingester's recent data (Tempo keeps
    /// complete blocks in the ingester this long). Searches without start/end ask only recent data, so they find
    /// flushed traces for this long; the list of such blocks survives a restart (<c>blocks/complete-blocks.txt</c> in the WAL directory).
    /// Only block metas are held in memory. 0 turns it off.
    /// </summary>
    public TimeSpan CompleteBlockTimeout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// <c>max_unflushed_bytes</c> (Rubato): payload bytes the ingester may hold that are not yet in blocks. Beyond it,
    /// pushes are refused with 503 / UNAVAILABLE (clients retry) until flushing catches up, so a sustained load above
    /// the flush rate slows clients down instead of growing memory without bound. Nothing accepted is affected.
    /// 0 turns the limit off.
    /// </summary>
    public long MaxUnflushedBytes { get; set; } = 1024L * 1024 * 1024;

    /// <summary><c>concurrent_flushes</c>: tenants' blocks of one cut head written in parallel.</summary>
    public int ConcurrentFlushes { get; set; } = 4;

    /// <summary><c>flush_op_timeout</c>: one block write that takes longer is abandoned and retried later.</summary>
    public TimeSpan FlushOpTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// <c>flush_all_on_shutdown</c>: write every head to the backend when stopping, leaving an empty WAL. When false
    /// the WAL is kept and replayed at the next start.
    /// </summary>
    public bool FlushAllOnShutdown { get; set; } = true;

    public void Validate(string prefix, ConfigValidation validation)
    {
        Positive(validation, $"{prefix}.trace_idle_period", TraceIdlePeriod);
        Positive(validation, $"{prefix}.max_trace_live", MaxTraceLive);
        Positive(validation, $"{prefix}.flush_check_period", FlushCheckPeriod);
        Positive(validation, $"{prefix}.max_block_duration", MaxBlockDuration);
        Positive(validation, $"{prefix}.flush_op_timeout", FlushOpTimeout);
        if (CompleteBlockTimeout < TimeSpan.Zero)
        {
            validation.Error($"{prefix}.complete_block_timeout", "must not be negative");
        }

        if (MaxBlockBytes <= 0)
        {
            validation.Error($"{prefix}.max_block_bytes", $"must be positive, got {MaxBlockBytes}");
        }

        if (MaxUnflushedBytes < 0)
        {
            validation.Error($"{prefix}.max_unflushed_bytes", $"must not be negative, got {MaxUnflushedBytes}");
        }
        else if (MaxUnflushedBytes > 0 && MaxUnflushedBytes < MaxBlockBytes)
        {
            validation.Error($"{prefix}.max_unflushed_bytes", $"must be 0 (off) or at least max_block_bytes ({MaxBlockBytes}), got {MaxUnflushedBytes}");
        }

        if (ConcurrentFlushes <= 0)
        {
            validation.Error($"{prefix}.concurrent_flushes", $"must be positive, got {ConcurrentFlushes}");
        }

        if (MaxTraceLive < TraceIdlePeriod)
        {
            validation.Warning($"{prefix}.max_trace_live", "is shorter than trace_idle_period, so traces stop counting as live before they go idle");
        }
    }

    private static void Positive(ConfigValidation v, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            v.Error(key, $"must be a positive duration, got {value}");
        }
    }
}
