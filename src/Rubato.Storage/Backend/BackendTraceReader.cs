using System.Collections.Concurrent;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;

namespace Rubato.Storage.Backend;

public sealed class BackendTraceReaderOptions
{
    /// <summary>How old the cached block list may get before a query refreshes it (Tempo <c>blocklist_poll</c>, 5m).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Blocks searched at once per query.</summary>
    public int MaxConcurrentBlocks { get; set; } = 8;

    public void Validate()
    {
        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"PollInterval must be positive, got {PollInterval}");
        }

        if (MaxConcurrentBlocks < 1)
        {
            throw new ArgumentException($"MaxConcurrentBlocks must be at least 1, got {MaxConcurrentBlocks}");
        }
    }
}

/// <summary>
/// Finds traces in the object store's blocks: keeps a cached list of every tenant's live blocks (a block is live when
/// it has <c>meta.json</c> and no <c>meta.compacted.json</c>), filters it by time range and id range, asks the
/// blocks (bloom first) in parallel and combines what they hold with <see cref="TraceCombiner"/>.
/// </summary>
/// <remarks>
/// Thread-safe. The block list is an immutable snapshot swapped atomically by <see cref="RefreshAsync"/>, which runs
/// on the caller's thread: from <see cref="PollAsync"/>'s loop, or from a query that found the list older than
/// <see cref="BackendTraceReaderOptions.PollInterval"/>. Opened blocks (with their cached index and bloom shards) are
/// kept until the block disappears from a listing.
/// </remarks>
public sealed class BackendTraceReader : ITraceByIdReader
{
    private readonly IObjectStore _store;
    private readonly BackendTraceReaderOptions _options;
    private readonly TimeProvider _time;
    private readonly IBlocklistSource? _blocklist;
    private readonly BlockCaches? _caches;
    private readonly ConcurrentDictionary<Guid, IBackendBlock> _open = new();
    private readonly ConcurrentDictionary<Guid, BlockMeta> _pinned = new();
    private readonly ConcurrentDictionary<Guid, BlockMeta> _metaCache = new();
    private readonly SemaphoreSlim _refreshLock = new(1, 1);
    private readonly Lock _swapLock = new();
    private volatile Dictionary<string, BlockMeta[]> _blocks = new(StringComparer.Ordinal);
    private long _lastRefreshTicks = long.MinValue;

    /// <param name="blocklist">
    /// Where the block list comes from: null lists every block folder on each refresh (the original behaviour);
    /// a <see cref="BlocklistPoller"/> in <see cref="BlocklistPollMode.TenantIndex"/> mode reads each tenant's
    /// <c>index.json.gz</c> instead (one GET per tenant), which is what queriers should use.
    /// </param>
    /// <param name="caches">
    /// Shared caches (bloom shards, index, footer) for the <c>vRubato1</c> blocks this reader opens; null reads every
    /// block from the object store only. A cache outage never changes a result: failures read as misses.
    /// </param>
    public BackendTraceReader(IObjectStore store, BackendTraceReaderOptions? options = null, TimeProvider? time = null, IBlocklistSource? blocklist = null, BlockCaches? caches = null)
    {
        _blocklist = blocklist;
        _caches = caches;
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _options = options ?? new BackendTraceReaderOptions();
        _options.Validate();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Tenants with at least one live block in the cached list.</summary>
    public IReadOnlyList<string> Tenants() => [.. _blocks.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The cached live blocks of a tenant, by start time.</summary>
    public IReadOnlyList<BlockMeta> Blocks(string tenantId) => _blocks.TryGetValue(tenantId, out var b) ? b : [];

    /// <summary>Registers a block this process just wrote, so it is searchable before the next listing.</summary>
    public void AddBlock(BlockMeta meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        _pinned[meta.BlockId] = meta;
        _metaCache[meta.BlockId] = meta;
        lock (_swapLock)
        {
            var next = new Dictionary<string, BlockMeta[]>(_blocks, StringComparer.Ordinal);
            var list = next.TryGetValue(meta.TenantId, out var cur) ? cur.Where(b => b.BlockId != meta.BlockId).ToList() : [];
            list.Add(meta);
            next[meta.TenantId] = [.. list.OrderBy(b => b.StartTime).ThenBy(b => b.BlockId)];
            _blocks = next;
        }
    }

    /// <summary>Lists every tenant's blocks and swaps in the new list. Concurrent calls share one listing.</summary>
    public async Task RefreshAsync(CancellationToken ct = default)
    {
        await _refreshLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var found = new Dictionary<string, List<BlockMeta>>(StringComparer.Ordinal);
            var seen = new HashSet<Guid>();
            if (_blocklist is not null)
            {
                var polled = await _blocklist.PollAsync(ct).ConfigureAwait(false);
                foreach (var (tenant, list) in polled.Tenants)
                {
                    foreach (var meta in list.Live)
                    {
                        _metaCache[meta.BlockId] = meta;
                        seen.Add(meta.BlockId);
                        _pinned.TryRemove(meta.BlockId, out _);
                        (found.TryGetValue(tenant, out var l) ? l : found[tenant] = []).Add(meta);
                    }

                    // A block this process flushed and pinned may be compacted before any poll listed it live; it
                    // must not stay pinned, or queries would keep opening it after retention deleted it.
                    foreach (var c in list.Compacted)
                    {
                        _pinned.TryRemove(c.Meta.BlockId, out _);
                    }
                }
            }
            else
            {
                await ListInto(found, seen, ct).ConfigureAwait(false);
            }

            // Blocks registered with AddBlock but not listed yet (an eventually consistent store) stay visible.
            foreach (var meta in _pinned.Values)
            {
                if (seen.Add(meta.BlockId))
                {
                    (found.TryGetValue(meta.TenantId, out var l) ? l : found[meta.TenantId] = []).Add(meta);
                }
            }

            foreach (var id in _open.Keys)
            {
                if (!seen.Contains(id))
                {
                    _open.TryRemove(id, out _);
                    _metaCache.TryRemove(id, out _);
                }
            }

            lock (_swapLock)
            {
                _blocks = found.ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(b => b.StartTime).ThenBy(b => b.BlockId).ToArray(), StringComparer.Ordinal);
            }

            Interlocked.Exchange(ref _lastRefreshTicks, _time.GetTimestamp());
        }
        finally
        {
            _refreshLock.Release();
        }
    }

    private async Task ListInto(Dictionary<string, List<BlockMeta>> found, HashSet<Guid> seen, CancellationToken ct)
    {
        foreach (string tenant in await _store.ListAsync(string.Empty, ct).ConfigureAwait(false))
        {
            foreach (string block in await _store.ListAsync(tenant, ct).ConfigureAwait(false))
            {
                if (!Guid.TryParse(block, out var blockId))
                {
                    continue; // e.g. a tenant index file.
                }

                var files = await _store.ListAsync(tenant + "/" + block, ct).ConfigureAwait(false);
                if (files.Contains(ObjectKeys.CompactedMetaName))
                {
                    _pinned.TryRemove(blockId, out _); // Compacted before it was ever listed live: stop pinning it.
                    continue;
                }

                if (!files.Contains(ObjectKeys.MetaName))
                {
                    continue;
                }

                if (!_metaCache.TryGetValue(blockId, out var meta))
                {
                    byte[]? json = await _store.GetAsync(tenant + "/" + block + "/" + ObjectKeys.MetaName, ct).ConfigureAwait(false);
                    if (json is null)
                    {
                        continue; // Deleted between the listing and the read.
                    }

                    meta = BlockMeta.FromJson(json);
                    _metaCache[blockId] = meta;
                }

                seen.Add(blockId);
                _pinned.TryRemove(blockId, out _);
                (found.TryGetValue(tenant, out var l) ? l : found[tenant] = []).Add(meta);
            }
        }
    }

    /// <summary>Refreshes every <see cref="BackendTraceReaderOptions.PollInterval"/> until cancelled (a service's run loop).</summary>
    public async Task PollAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.PollInterval, _time);
        do
        {
            await RefreshAsync(ct).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
    }

    public async ValueTask<Trace?> FindTraceByIdAsync(string tenantId, TraceId traceId, TimeRange range, CancellationToken cancellationToken)
    {
        long last = Interlocked.Read(ref _lastRefreshTicks);
        if (last == long.MinValue || _time.GetElapsedTime(last) > _options.PollInterval)
        {
            await RefreshAsync(cancellationToken).ConfigureAwait(false);
        }

        var candidates = Blocks(tenantId)
            .Where(b => b.Overlaps(range) && ((b.MinId.IsEmpty && b.MaxId.IsEmpty) || (traceId >= b.MinId && traceId <= b.MaxId)))
            .ToArray();
        if (candidates.Length == 0)
        {
            return null;
        }

        var parts = new Trace?[candidates.Length];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, candidates.Length),
            new ParallelOptions { MaxDegreeOfParallelism = _options.MaxConcurrentBlocks, CancellationToken = cancellationToken },
            async (i, ct) => parts[i] = await Open(candidates[i]).FindTraceByIdAsync(traceId, ct).ConfigureAwait(false)).ConfigureAwait(false);

        var found = parts.Where(p => p is not null).Select(p => p!).ToList();
        return found.Count switch
        {
            0 => null,
            1 => found[0],

            // Parts of one trace in several blocks (not yet compacted together): dedupe spans and group resources.
            _ => TraceCombiner.Combine(found),
        };
    }

    private IBackendBlock Open(BlockMeta meta) =>
        _open.GetOrAdd(
            meta.BlockId,
            static (_, s) => s.Caches is not null && s.Meta.Version == FormatV1.Version
                ? new BackendBlockV1(s.Meta, s.Store, s.Caches)
                : Encodings.FromVersion(s.Meta.Version).OpenBlock(s.Meta, s.Store),
            (Meta: meta, Store: _store, Caches: _caches));
}
