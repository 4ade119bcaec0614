using Rubato.Common.Contracts;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;

namespace Rubato.BackendWorker;

/// <summary>What one retention pass over a tenant did.</summary>
public sealed record RetentionResult(string TenantId, TimeSpan BlockRetention, IReadOnlyList<Guid> MarkedCompacted, IReadOnlyList<Guid> Deleted);

/// <summary>
/// A tenant's retention (Tempo's tempodb retention loop): every live block whose end time is older than
/// <c>block_retention</c> (the tenant's <c>compaction.block_retention</c> override, or the configured default when
/// that is 0) is marked compacted; every compacted block marked longer ago than <c>compacted_block_retention</c> is
/// deleted with <see cref="BlockLifecycle.DeleteBlockAsync"/> (meta.json first, meta.compacted.json last).
/// </summary>
/// <remarks>
/// Works from a fresh listing, never the tenant index, so it never deletes on stale information. Deletion of one
/// block is sequential; up to <c>retention_concurrency</c> blocks are deleted at once. Thread-safe.
/// </remarks>
public sealed class RetentionRunner
{
    private readonly IObjectStore _store;
    private readonly IOverrides _overrides;
    private readonly CompactorConfig _config;
    private readonly TimeProvider _time;
    private readonly BlocklistPoller _lister;

    public RetentionRunner(IObjectStore store, IOverrides overrides, CompactorConfig config, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(overrides);
        ArgumentNullException.ThrowIfNull(config);
        _store = store;
        _overrides = overrides;
        _config = config;
        _time = time ?? TimeProvider.System;
        _lister = new BlocklistPoller(store, BlocklistPollMode.Listing, null, _time);
    }

    /// <summary>The retention in force for a tenant: its override, or the configured default when the override is 0.</summary>
    public TimeSpan RetentionFor(string tenantId)
    {
        var r = _overrides.ForTenant(tenantId).Compaction.BlockRetention;
        return r > TimeSpan.Zero ? r : _config.BlockRetention;
    }

    public async Task<RetentionResult> RunAsync(string tenantId, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);
        var now = _time.GetUtcNow();
        var retention = RetentionFor(tenantId);
        var list = await _lister.ListTenantAsync(tenantId, ct).ConfigureAwait(false);

        var marked = new List<Guid>();
        foreach (var b in list.Live)
        {
            if (b.EndTime < now - retention && await BlockLifecycle.MarkCompactedAsync(_store, b, now, ct).ConfigureAwait(false))
            {
                marked.Add(b.BlockId);
            }
        }

        var expired = list.Compacted.Where(c => c.CompactedTime < now - _config.CompactedBlockRetention).Select(c => c.Meta.BlockId).ToList();
        await Parallel.ForEachAsync(
            expired,
            new ParallelOptions { MaxDegreeOfParallelism = _config.RetentionConcurrency, CancellationToken = ct },
            (id, c) => new ValueTask(BlockLifecycle.DeleteBlockAsync(_store, tenantId, id, c))).ConfigureAwait(false);
        return new RetentionResult(tenantId, retention, marked, expired);
    }
}
