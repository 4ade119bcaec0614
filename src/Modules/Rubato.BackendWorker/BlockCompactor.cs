using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;

namespace Rubato.BackendWorker;

/// <summary>The durable steps of a compaction, reported to <see cref="BlockCompactorOptions.StepCompleted"/> right after each.</summary>
public enum CompactionStep
{
    /// <summary><c>compaction.json</c> (the input list) is in the output folder; nothing else of the output yet.</summary>
    ProvenanceWritten,

    /// <summary>The output block is complete: data, index, blooms, then meta.json. Inputs still live.</summary>
    OutputWritten,

    /// <summary>One input got its <c>meta.compacted.json</c> (reported once per input, in ascending id order).</summary>
    InputMarked,
}

/// <summary>How the compactor builds output blocks, plus an observer of its durable steps.</summary>
public sealed class BlockCompactorOptions
{
    public double BloomFalsePositive { get; set; } = 0.01;

    public int BloomShardSizeBytes { get; set; } = 100 * 1024;

    public long RowGroupSizeBytes { get; set; } = 8L * 1024 * 1024;

    public BlockCompression Compression { get; set; } = BlockCompression.Brotli;

    /// <summary>
    /// Called on the compacting thread after each durable step with the block it concerns (output or input). An
    /// exception thrown here aborts the compaction exactly at that point (logging, metrics, crash tests).
    /// </summary>
    public Func<CompactionStep, Guid, CancellationToken, ValueTask>? StepCompleted { get; set; }
}

/// <summary>What one compaction did.</summary>
/// <param name="Resumed">True when the output already existed (an earlier run crashed after writing it) and only the inputs were marked.</param>
public sealed record CompactionResult(
    BlockMeta? Output,
    IReadOnlyList<Guid> Inputs,
    long TracesOut,
    long SpansIn,
    long SpansOut,
    long DuplicateSpansRemoved,
    long SpansDroppedOverLimit,
    long TracesOverLimit,
    bool Resumed);

/// <summary>
/// Merges input blocks of one tenant into one output block (Tempo's tempodb/compactor.go): streams every input in
/// trace-id order (a k-way merge over <see cref="IBackendBlock.IterateAsync"/>), combines each trace's parts with
/// <see cref="TraceCombiner.Combine"/> (a span stored twice, e.g. by two replicas or a replayed WAL, is kept once),
/// enforces <c>max_bytes_per_trace</c>, and writes one block with <see cref="Encodings.Default"/>.
/// </summary>
/// <remarks>
/// <para>Crash safety, in write order: (1) <c>compaction.json</c>; (2) the output's data objects; (3) its
/// <c>meta.json</c> — only now is it visible; (4) each input's <c>meta.compacted.json</c>. A crash before (3) leaves an
/// invisible partial output and untouched inputs: nothing visible changed, nothing lost. A crash between (3) and the
/// end leaves the data visible twice (output + some inputs), which queries combine away, and no data lost. The output
/// id is a function of the tenant and the sorted input ids (<see cref="BlockLifecycle.CompactionOutputId"/>), so
/// redoing the job overwrites a partial output rather than adding a second one, and when the redo finds the output's
/// meta.json it skips straight to (4). Every step is idempotent.</para>
/// <para>Memory: one decoded row group per input plus one row group of output columns. Single-threaded per call;
/// separate calls may run concurrently on different inputs.</para>
/// </remarks>
public sealed class BlockCompactor
{
    private readonly IObjectStore _store;
    private readonly IOverrides _overrides;
    private readonly BlockCompactorOptions _options;
    private readonly TimeProvider _time;
    private readonly Counter? _dropped;
    private readonly Counter? _duplicates;
    private readonly Counter? _compacted;

    public BlockCompactor(IObjectStore store, IOverrides overrides, BlockCompactorOptions? options = null, TimeProvider? time = null, MetricsRegistry? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(overrides);
        _store = store;
        _overrides = overrides;
        _options = options ?? new BlockCompactorOptions();
        _time = time ?? TimeProvider.System;
        if (metrics is not null)
        {
            _dropped = metrics.Counter("rubato_compaction_spans_dropped_total", "Spans dropped by compaction because their trace exceeded max_bytes_per_trace.", "tenant");
            _duplicates = metrics.Counter("rubato_compaction_duplicate_spans_total", "Duplicate spans (same span id and kind) removed by compaction.", "tenant");
            _compacted = metrics.Counter("rubato_compaction_blocks_compacted_total", "Input blocks marked compacted by compaction jobs.", "tenant");
        }
    }

    /// <exception cref="InvalidOperationException">An input block does not exist (neither meta.json nor meta.compacted.json) or belongs to another tenant.</exception>
    public async Task<CompactionResult> CompactAsync(string tenantId, IReadOnlyList<Guid> inputIds, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);
        ArgumentNullException.ThrowIfNull(inputIds);
        Guid[] inputs = [.. inputIds.Distinct().Order()];
        if (inputs.Length == 0)
        {
            throw new ArgumentException("a compaction needs at least one input block", nameof(inputIds));
        }

        Guid outId = BlockLifecycle.CompactionOutputId(tenantId, inputs);
        var metas = new BlockMeta[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            metas[i] = await ReadInputMetaAsync(tenantId, inputs[i], ct).ConfigureAwait(false);
        }

        BlockMeta? output = null;
        long tracesOut = 0, spansIn = 0, spansOut = 0, duplicates = 0, dropped = 0, tracesOver = 0;
        byte[]? existing = await _store.GetAsync(ObjectKeys.BlockObject(tenantId, outId, ObjectKeys.MetaName), ct).ConfigureAwait(false);
        bool resumed = existing is not null;
        if (existing is not null)
        {
            // An earlier run completed the output and died before (or while) marking the inputs: finish that run.
            output = BlockMeta.FromJson(existing);
            tracesOut = output.TotalObjects;
            spansOut = output.SpanCount;
        }
        else
        {
            await BlockLifecycle.WriteProvenanceAsync(_store, tenantId, outId, inputs, ct).ConfigureAwait(false);
            await Step(CompactionStep.ProvenanceWritten, outId, ct).ConfigureAwait(false);

            long maxBytes = _overrides.ForTenant(tenantId).Global.MaxBytesPerTrace;
            using var builder = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions
            {
                TenantId = tenantId,
                BlockId = outId,
                CompactionLevel = metas.Max(m => m.CompactionLevel) + 1,
                ReplicationFactor = metas.Max(m => m.ReplicationFactor),
                BloomFalsePositive = _options.BloomFalsePositive,
                BloomShardSizeBytes = _options.BloomShardSizeBytes,
                RowGroupSizeBytes = _options.RowGroupSizeBytes,
                Compression = _options.Compression,
            });

            var enumerators = new IAsyncEnumerator<(TraceId Id, Trace Trace)>[metas.Length];
            try
            {
                var queue = new PriorityQueue<int, TraceId>(metas.Length);
                for (int i = 0; i < metas.Length; i++)
                {
                    var block = Encodings.FromVersion(metas[i].Version).OpenBlock(metas[i], _store);
                    enumerators[i] = block.IterateAsync(ct).GetAsyncEnumerator(ct);
                    if (await enumerators[i].MoveNextAsync().ConfigureAwait(false))
                    {
                        queue.Enqueue(i, enumerators[i].Current.Id);
                    }
                }

                var parts = new List<Trace>(metas.Length);
                while (queue.TryPeek(out _, out var id))
                {
                    parts.Clear();
                    while (queue.TryPeek(out int i, out var next) && next == id)
                    {
                        queue.Dequeue();
                        parts.Add(enumerators[i].Current.Trace);
                        if (await enumerators[i].MoveNextAsync().ConfigureAwait(false))
                        {
                            if (enumerators[i].Current.Id <= id)
                            {
                                throw new BlockCorruptException(ObjectKeys.BlockPrefix(tenantId, inputs[i]), 0, $"trace ids out of order: {enumerators[i].Current.Id} after {id}");
                            }

                            queue.Enqueue(i, enumerators[i].Current.Id);
                        }
                    }

                    foreach (var p in parts)
                    {
                        spansIn += p.SpanCount();
                    }

                    // Always combine, even a single part: it dedupes spans repeated inside one block too, and makes
                    // the output's span order canonical (which the size limit below relies on to be deterministic).
                    var combined = TraceCombiner.Combine(parts);
                    long combinedSpans = combined.SpanCount();
                    long removed = maxBytes > 0 ? EnforceMaxBytes(combined, maxBytes) : 0;
                    if (removed > 0)
                    {
                        dropped += removed;
                        tracesOver++;
                    }

                    long kept = combinedSpans - removed;
                    spansOut += kept;
                    if (kept > 0)
                    {
                        builder.AddTrace(id, combined);
                        tracesOut++;
                    }
                }
            }
            finally
            {
                foreach (var e in enumerators)
                {
                    if (e is not null)
                    {
                        await e.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }

            duplicates = spansIn - spansOut - dropped;
            if (builder.TraceCount > 0)
            {
                output = await builder.WriteAsync(_store, ct).ConfigureAwait(false);
                await Step(CompactionStep.OutputWritten, outId, ct).ConfigureAwait(false);
            }
        }

        var now = _time.GetUtcNow();
        foreach (var meta in metas)
        {
            await BlockLifecycle.MarkCompactedAsync(_store, meta, now, ct).ConfigureAwait(false);
            await Step(CompactionStep.InputMarked, meta.BlockId, ct).ConfigureAwait(false);
        }

        _dropped?.WithLabels(tenantId).Inc(dropped);
        _duplicates?.WithLabels(tenantId).Inc(duplicates);
        _compacted?.WithLabels(tenantId).Inc(metas.Length);
        return new CompactionResult(output, inputs, tracesOut, spansIn, spansOut, duplicates, dropped, tracesOver, resumed);
    }

    /// <summary>
    /// Keeps the longest prefix of the trace's spans, in the combiner's canonical order (resources, scopes, then spans
    /// by start time, id, kind), whose estimated size fits <paramref name="maxBytes"/>; drops the rest. Deterministic:
    /// the same set of spans always keeps the same subset. Returns the number dropped.
    /// </summary>
    public static long EnforceMaxBytes(Trace trace, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(trace);
        long total = 0;
        long dropped = 0;
        bool full = false;
        foreach (var rs in trace.ResourceSpans)
        {
            foreach (var ss in rs.ScopeSpans)
            {
                int keep = 0;
                for (int i = 0; i < ss.Spans.Count; i++)
                {
                    if (!full)
                    {
                        long size = SpanSize.Estimate(ss.Spans[i]);
                        if (total + size <= maxBytes)
                        {
                            total += size;
                            ss.Spans[keep++] = ss.Spans[i];
                            continue;
                        }

                        full = true;
                    }

                    dropped++;
                }

                ss.Spans.RemoveRange(keep, ss.Spans.Count - keep);
            }

            rs.ScopeSpans.RemoveAll(s => s.Spans.Count == 0);
        }

        trace.ResourceSpans.RemoveAll(r => r.ScopeSpans.Count == 0);
        return dropped;
    }

    private async Task<BlockMeta> ReadInputMetaAsync(string tenantId, Guid blockId, CancellationToken ct)
    {
        BlockMeta meta;
        byte[]? json = await _store.GetAsync(ObjectKeys.BlockObject(tenantId, blockId, ObjectKeys.MetaName), ct).ConfigureAwait(false);
        if (json is not null)
        {
            meta = BlockMeta.FromJson(json);
        }
        else
        {
            // Already marked compacted (by this job's earlier run, or by retention): its data is still there until
            // compacted_block_retention passes, and its compacted meta carries the full meta.
            byte[]? compacted = await _store.GetAsync(ObjectKeys.BlockObject(tenantId, blockId, ObjectKeys.CompactedMetaName), ct).ConfigureAwait(false);
            meta = compacted is not null
                ? CompactedBlockMeta.FromJson(compacted).Meta
                : throw new InvalidOperationException($"compaction input block {blockId} of tenant '{tenantId}' does not exist");
        }

        if (meta.TenantId != tenantId || meta.BlockId != blockId)
        {
            throw new InvalidOperationException($"compaction input {tenantId}/{blockId} has meta for {meta.TenantId}/{meta.BlockId}");
        }

        return meta;
    }

    private ValueTask Step(CompactionStep step, Guid block, CancellationToken ct) =>
        _options.StepCompleted is { } f ? f(step, block, ct) : ValueTask.CompletedTask;
}
