using System.Collections.Concurrent;
using Rubato.Common.Configuration;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Blocklist;

/// <summary>One tenant's blocks as one poll saw them.</summary>
/// <param name="Live">Blocks with <c>meta.json</c> and no <c>meta.compacted.json</c>, by start time then id.</param>
/// <param name="Compacted">Blocks marked compacted and not yet fully deleted.</param>
/// <param name="Incomplete">Block folders with neither marker: being written, or left by a crashed writer (listing only).</param>
/// <param name="WithProvenance">Live or incomplete blocks carrying <c>compaction.json</c>, i.e. compaction outputs (listing only).</param>
/// <param name="IndexCreatedAt">When the tenant index this came from was built; null when it came from a listing.</param>
public sealed record TenantBlocklist(
    string TenantId,
    IReadOnlyList<BlockMeta> Live,
    IReadOnlyList<CompactedBlockMeta> Compacted,
    IReadOnlyList<Guid> Incomplete,
    IReadOnlyList<Guid> WithProvenance,
    DateTimeOffset? IndexCreatedAt);

/// <summary>Every tenant's blocks at one poll. Immutable.</summary>
public sealed class Blocklist
{
    public Blocklist(IReadOnlyDictionary<string, TenantBlocklist> tenants, DateTimeOffset polledAt)
    {
        Tenants = tenants;
        PolledAt = polledAt;
    }

    public static Blocklist Empty { get; } = new(new Dictionary<string, TenantBlocklist>(StringComparer.Ordinal), DateTimeOffset.MinValue);

    public IReadOnlyDictionary<string, TenantBlocklist> Tenants { get; }

    public DateTimeOffset PolledAt { get; }

    public IReadOnlyList<BlockMeta> Live(string tenantId) => Tenants.TryGetValue(tenantId, out var t) ? t.Live : [];
}

/// <summary>Something that produces a fresh <see cref="Blocklist"/> (the poller; the reader's cache consumes it).</summary>
public interface IBlocklistSource
{
    Task<Blocklist> PollAsync(CancellationToken ct);
}

/// <summary>How a <see cref="BlocklistPoller"/> finds blocks.</summary>
public enum BlocklistPollMode
{
    /// <summary>Readers (queriers): read each tenant's <c>index.json.gz</c>; list only when it is missing, corrupt or stale.</summary>
    TenantIndex,

    /// <summary>The index builder (scheduler, tenant-index jobs): list every block folder.</summary>
    Listing,
}

/// <summary>Poller settings; names follow Tempo's <c>storage.trace.blocklist_*</c> keys.</summary>
public sealed class BlocklistPollerOptions
{
    /// <summary><c>blocklist_poll_fallback</c>: list the tenant when its index is missing or unreadable (default true).</summary>
    public bool PollFallback { get; set; } = true;

    /// <summary><c>blocklist_poll_stale_tenant_index</c>: an index older than this is ignored and the tenant listed; zero = never stale.</summary>
    public TimeSpan StaleTenantIndex { get; set; }

    /// <summary><c>blocklist_poll_concurrency</c>: tenants (listing: blocks) polled at once.</summary>
    public int PollConcurrency { get; set; } = 50;

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (StaleTenantIndex < TimeSpan.Zero)
        {
            validation.Error(prefix + ".blocklist_poll_stale_tenant_index", "must not be negative");
        }

        if (PollConcurrency < 1)
        {
            validation.Error(prefix + ".blocklist_poll_concurrency", $"must be at least 1, got {PollConcurrency}");
        }
    }
}

/// <summary>
/// Builds each tenant's block list, from the tenant index (readers) or from listing the store (the index builder),
/// following Tempo's consistency rules (see <see cref="ValidateConsistency"/> and docs/compaction.md): a block is
/// deleted only <c>compacted_block_retention</c> after it was marked compacted, and that is at least two
/// <c>blocklist_poll</c> periods, so a reader whose list (index age ≤ one poll, plus its own poll period) still
/// shows a block as live has refreshed before the block's objects go away.
/// </summary>
/// <remarks>
/// Thread-safe; <see cref="PollAsync"/> runs on the caller's thread (a service loop). Block metas are immutable once
/// written, so they are cached by block id and a listing costs one GET per new block only.
/// </remarks>
public sealed class BlocklistPoller : IBlocklistSource
{
    private readonly IObjectStore _store;
    private readonly BlocklistPollMode _mode;
    private readonly BlocklistPollerOptions _options;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<Guid, BlockMeta> _metas = new();
    private readonly ConcurrentDictionary<Guid, CompactedBlockMeta> _compacted = new();

    public BlocklistPoller(IObjectStore store, BlocklistPollMode mode, BlocklistPollerOptions? options = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _mode = mode;
        _options = options ?? new BlocklistPollerOptions();
        var v = new ConfigValidation();
        _options.Validate("storage.trace", v);
        if (v.HasErrors)
        {
            throw new ArgumentException(string.Join("; ", v.Errors));
        }

        _time = time ?? TimeProvider.System;
    }

    public BlocklistPollMode Mode => _mode;

    /// <summary>Index reads that fell back to listing (missing, corrupt or stale index).</summary>
    public long FallbackCount => Interlocked.Read(ref _fallbacks);

    private long _fallbacks;

    /// <summary>
    /// Checks Tempo's rules: <c>compacted_block_retention</c> and <c>query_backend_after</c> must each be at least
    /// twice <c>blocklist_poll</c>. A reader's view of a block can lag by one poll of the index builder plus one poll
    /// of its own; waiting two polls before deleting a compacted block (or before asking the backend instead of the
    /// ingesters for recent data) guarantees every reader has seen the change first.
    /// </summary>
    /// <param name="queryBackendAfter">Null when the caller has no querier config to check.</param>
    public static void ValidateConsistency(TimeSpan blocklistPoll, TimeSpan compactedBlockRetention, TimeSpan? queryBackendAfter, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (blocklistPoll <= TimeSpan.Zero)
        {
            validation.Error("storage.trace.blocklist_poll", "must be positive");
            return;
        }

        if (compactedBlockRetention < 2 * blocklistPoll)
        {
            validation.Error(
                "compaction.compacted_block_retention",
                $"{GoDuration.Format(compactedBlockRetention)} must be at least 2 × storage.trace.blocklist_poll ({GoDuration.Format(2 * blocklistPoll)}), or queriers may read blocks that are being deleted");
        }

        if (queryBackendAfter is { } qba && qba < 2 * blocklistPoll)
        {
            validation.Error(
                "querier.query_backend_after",
                $"{GoDuration.Format(qba)} must be at least 2 × storage.trace.blocklist_poll ({GoDuration.Format(2 * blocklistPoll)}), or recent blocks may be missing from queriers' block lists");
        }
    }

    public async Task<Blocklist> PollAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var tenants = await _store.ListAsync(string.Empty, ct).ConfigureAwait(false);
        var result = new ConcurrentDictionary<string, TenantBlocklist>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(
            tenants,
            new ParallelOptions { MaxDegreeOfParallelism = _options.PollConcurrency, CancellationToken = ct },
            async (tenant, c) =>
            {
                // Tenants whose folder holds no block any more are kept (with empty lists), so the index builder
                // rewrites their index instead of leaving one that still names deleted blocks.
                result[tenant] = await PollTenantAsync(tenant, c).ConfigureAwait(false);
            }).ConfigureAwait(false);

        // Forget cached metas of blocks that are gone, so the caches stay the size of the store's block count.
        var present = new HashSet<Guid>(result.Values.SelectMany(t => t.Live.Select(m => m.BlockId).Concat(t.Compacted.Select(c => c.Meta.BlockId))));
        foreach (var id in _metas.Keys.Where(id => !present.Contains(id)).ToList())
        {
            _metas.TryRemove(id, out _);
        }

        foreach (var id in _compacted.Keys.Where(id => !present.Contains(id)).ToList())
        {
            _compacted.TryRemove(id, out _);
        }

        return new Blocklist(new Dictionary<string, TenantBlocklist>(result, StringComparer.Ordinal), now);
    }

    /// <summary>One tenant, by this poller's mode.</summary>
    public async Task<TenantBlocklist> PollTenantAsync(string tenantId, CancellationToken ct)
    {
        if (_mode == BlocklistPollMode.Listing)
        {
            return await ListTenantAsync(tenantId, ct).ConfigureAwait(false);
        }

        TenantIndex? index = null;
        try
        {
            byte[]? data = await _store.GetAsync(TenantIndex.Key(tenantId), ct).ConfigureAwait(false);
            index = data is null ? null : TenantIndex.FromGzipJson(data);
        }
        catch (FormatException) when (_options.PollFallback)
        {
            index = null;
        }

        bool stale = index is not null && _options.StaleTenantIndex > TimeSpan.Zero && _time.GetUtcNow() - index.CreatedAt > _options.StaleTenantIndex;
        if (index is null || stale)
        {
            if (!_options.PollFallback)
            {
                throw new InvalidOperationException(stale
                    ? $"tenant index of '{tenantId}' is older than blocklist_poll_stale_tenant_index and blocklist_poll_fallback is off"
                    : $"tenant '{tenantId}' has no readable {TenantIndex.ObjectName} and blocklist_poll_fallback is off");
            }

            Interlocked.Increment(ref _fallbacks);
            return await ListTenantAsync(tenantId, ct).ConfigureAwait(false);
        }

        return new TenantBlocklist(
            tenantId,
            [.. index.Meta.OrderBy(m => m.StartTime).ThenBy(m => m.BlockId)],
            index.Compacted,
            [],
            [],
            index.CreatedAt);
    }

    /// <summary>Lists every block folder of the tenant (whatever the mode).</summary>
    public async Task<TenantBlocklist> ListTenantAsync(string tenantId, CancellationToken ct)
    {
        var live = new ConcurrentBag<BlockMeta>();
        var compacted = new ConcurrentBag<CompactedBlockMeta>();
        var incomplete = new ConcurrentBag<Guid>();
        var provenance = new ConcurrentBag<Guid>();
        var names = await _store.ListAsync(tenantId, ct).ConfigureAwait(false);
        await Parallel.ForEachAsync(
            names,
            new ParallelOptions { MaxDegreeOfParallelism = _options.PollConcurrency, CancellationToken = ct },
            async (name, c) =>
            {
                if (!Guid.TryParse(name, out var blockId))
                {
                    return; // index.json.gz and anything else that is not a block folder.
                }

                var files = await _store.ListAsync(tenantId + "/" + name, c).ConfigureAwait(false);
                bool hasCompacted = files.Contains(ObjectKeys.CompactedMetaName);
                bool hasMeta = files.Contains(ObjectKeys.MetaName);
                if (hasCompacted)
                {
                    var cm = await ReadCompactedAsync(tenantId, blockId, c).ConfigureAwait(false);
                    if (cm is not null)
                    {
                        compacted.Add(cm);
                    }

                    return;
                }

                if (files.Contains(BlockLifecycle.ProvenanceName))
                {
                    provenance.Add(blockId);
                }

                if (!hasMeta)
                {
                    incomplete.Add(blockId);
                    return;
                }

                var meta = await ReadMetaAsync(tenantId, blockId, c).ConfigureAwait(false);
                if (meta is not null)
                {
                    live.Add(meta);
                }
            }).ConfigureAwait(false);

        // Forget this tenant's cached metas of blocks that are gone (long-lived pollers that only list single
        // tenants, e.g. the tenant-index job's, would otherwise keep every block ever seen).
        var here = new HashSet<Guid>(live.Select(m => m.BlockId).Concat(compacted.Select(c => c.Meta.BlockId)));
        foreach (var (id, m) in _metas)
        {
            if (m.TenantId == tenantId && !here.Contains(id))
            {
                _metas.TryRemove(id, out _);
            }
        }

        foreach (var (id, m) in _compacted)
        {
            if (m.Meta.TenantId == tenantId && !here.Contains(id))
            {
                _compacted.TryRemove(id, out _);
            }
        }

        return new TenantBlocklist(
            tenantId,
            [.. live.OrderBy(m => m.StartTime).ThenBy(m => m.BlockId)],
            [.. compacted.OrderBy(m => m.CompactedTime).ThenBy(m => m.Meta.BlockId)],
            [.. incomplete.Order()],
            [.. provenance.Order()],
            null);
    }

    /// <summary>Lists the tenant and writes its <c>index.json.gz</c> (the tenant-index job).</summary>
    public async Task<TenantIndex> WriteTenantIndexAsync(string tenantId, CancellationToken ct)
    {
        var listed = await ListTenantAsync(tenantId, ct).ConfigureAwait(false);
        var index = new TenantIndex(_time.GetUtcNow(), listed.Live, listed.Compacted);
        await _store.PutAsync(TenantIndex.Key(tenantId), index.ToGzipJson(), ct).ConfigureAwait(false);
        return index;
    }

    private async Task<BlockMeta?> ReadMetaAsync(string tenantId, Guid blockId, CancellationToken ct)
    {
        if (_metas.TryGetValue(blockId, out var m))
        {
            return m;
        }

        byte[]? json = await _store.GetAsync(ObjectKeys.BlockObject(tenantId, blockId, ObjectKeys.MetaName), ct).ConfigureAwait(false);
        if (json is null)
        {
            return null; // Deleted or marked between the listing and the read.
        }

        m = BlockMeta.FromJson(json);
        _metas[blockId] = m;
        return m;
    }

    private async Task<CompactedBlockMeta?> ReadCompactedAsync(string tenantId, Guid blockId, CancellationToken ct)
    {
        if (_compacted.TryGetValue(blockId, out var m))
        {
            return m;
        }

        byte[]? json = await _store.GetAsync(ObjectKeys.BlockObject(tenantId, blockId, ObjectKeys.CompactedMetaName), ct).ConfigureAwait(false);
        if (json is null)
        {
            return null;
        }

        m = CompactedBlockMeta.FromJson(json);
        _compacted[blockId] = m;
        _metas.TryRemove(blockId, out _);
        return m;
    }
}
