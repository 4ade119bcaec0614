using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Common.Services;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Wal;

namespace Rubato.Ingester;

/// <summary>
/// Holds recent traces: every accepted segment is appended to the WAL, then kept in memory in the "head" of the WAL
/// generation it went to, until the head is cut into per-tenant blocks in the object store.
/// </summary>
/// <remarks>
/// <para><b>Acknowledgement.</b> A push checks limits first (live traces per tenant, bytes per trace) and refuses
/// segments then; the rest go to the WAL in one append, and only after the append is durable are they inserted in
/// memory and reported accepted. Nothing accepted is dropped later: a head leaves memory, and its WAL generation is
/// deleted, only after its blocks are written and announced.</para>
/// <para><b>Rotation.</b> The cutter swaps the current epoch and rotates the WAL under <c>_epochLock</c>; every
/// push registers in the epoch current when it starts. Pushes registered in the closed epoch may append to the
/// closed generation (or, if the WAL rotated under them, to the new one), so the cutter waits until they have all
/// inserted before building blocks from the closed head. Pushes registered after the swap append to the new
/// generation. A cut happens whenever the open generation has a head or pushes are in flight, so records of an
/// old epoch that landed in the new generation go out with it at the next cut (at the latest, at stop).</para>
/// <para><b>Threads.</b> Pushes and reads run concurrently on request threads. Locks: <c>_epochLock</c> (epoch
/// swap, in-flight counts), one lock per <see cref="TenantState"/> (limit checks), one per <see cref="Head"/>
/// (its maps), <c>_headsLock</c> (the generation → head map). None is held across an await. Cutting and flushing
/// are serialised by <c>_flushGate</c> and run on the service loop or on a <see cref="FlushAsync"/> caller.</para>
/// <para><b>Block ids</b> are derived from (instance id, generation, tenant, a fingerprint of the records), so
/// replaying a WAL generation after a crash rewrites the same block rather than adding a duplicate, and a
/// generation number reused after the WAL was emptied can never overwrite an older block.</para>
/// </remarks>
public sealed class Ingester : IIngestSink, ITraceByIdReader, IFlushable, IAsyncDisposable
{
    /// <summary>How often a tenant at its live-trace limit may sweep idle traces on the push path.</summary>
    private static readonly TimeSpan PushSweepInterval = TimeSpan.FromSeconds(1);

    private readonly IngesterConfig _config;
    private readonly IngesterOptions _options;
    private readonly IOverrides _overrides;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly object _epochLock = new();
    private readonly object _headsLock = new();
    private readonly SortedDictionary<long, Head> _heads = [];
    private readonly SortedSet<long> _pendingGenerations = [];
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly ConcurrentDictionary<string, TenantState> _tenants = new(StringComparer.Ordinal);
    private readonly Gauge _liveTraces;
    private readonly Counter.Child _walBytes;
    private readonly Counter.Child _walRecords;
    private readonly Counter _blocksFlushed;
    private readonly Counter.Child _flushFailures;
    private readonly Histogram.Child _flushDuration;
    private readonly Counter.Child _replayedRecords;
    private readonly Counter.Child _replayedBytes;
    private readonly Counter.Child _replayDiscardedBytes;
    private readonly Gauge.Child _unflushedGauge;
    private readonly Counter.Child _backpressureRefusals;

    // Blocks this ingester flushed within complete_block_timeout (Tempo's "complete blocks"), newest last; guarded by
    // _completeLock. Only metas are held: the data is read back from the store by search jobs.
    private readonly object _completeLock = new();
    private readonly List<CompleteBlock> _complete = [];

    // Serialises rewrites of the complete-blocks file (flushes of one head write tenants' blocks in parallel).
    private readonly object _completeFileLock = new();

    // Wakes the flush loop as soon as the open head reaches max_block_bytes (count 0 or 1).
    private readonly SemaphoreSlim _wake = new(0, 1);

    // Payload bytes held in heads and not yet written to blocks; the max_unflushed_bytes backpressure reads it.
    private long _unflushedBytes;
    private WriteAheadLog? _wal;
    private Epoch _current;
    private volatile bool _accepting;

    public Ingester(IngesterConfig config, IngesterOptions options, IOverrides overrides, MetricsRegistry metrics)
    {
        var validation = new ConfigValidation();
        config.Validate("ingester", validation);
        if (validation.HasErrors)
        {
            throw new ArgumentException(string.Join("; ", validation.Errors), nameof(config));
        }

        if (string.IsNullOrWhiteSpace(options.InstanceId))
        {
            throw new ArgumentException("IngesterOptions.InstanceId must be set (ingester.lifecycler.id)", nameof(options));
        }

        _config = config;
        _options = options;
        _overrides = overrides;
        _time = options.Time;
        _log = options.Log ?? (_ => { });
        _current = new Epoch();
        _liveTraces = metrics.Gauge("rubato_ingester_live_traces", "Traces that received spans within trace_idle_period, per tenant.", "tenant");
        _walBytes = metrics.Counter("rubato_ingester_wal_appended_bytes_total", "Payload bytes appended to the WAL.").WithLabels();
        _walRecords = metrics.Counter("rubato_ingester_wal_appended_records_total", "Trace segments appended to the WAL.").WithLabels();
        _blocksFlushed = metrics.Counter("rubato_ingester_blocks_flushed_total", "Blocks written to the backend, per tenant.", "tenant");
        _flushFailures = metrics.Counter("rubato_ingester_flush_failures_total", "Failed attempts to write a cut head to the backend (retried).").WithLabels();
        _flushDuration = metrics.Histogram("rubato_ingester_flush_duration_seconds", "Time to write one cut head (all its tenants' blocks).", Histogram.DefaultSecondsBuckets).WithLabels();
        _replayedRecords = metrics.Counter("rubato_ingester_replayed_records_total", "WAL records replayed at start.").WithLabels();
        _replayedBytes = metrics.Counter("rubato_ingester_replayed_bytes_total", "WAL payload bytes replayed at start.").WithLabels();
        _replayDiscardedBytes = metrics.Counter("rubato_ingester_replay_discarded_bytes_total", "Torn or corrupt WAL tail bytes skipped at replay.").WithLabels();
        _unflushedGauge = metrics.Gauge("rubato_ingester_unflushed_bytes", "Payload bytes held in memory and not yet written to blocks.").WithLabels();
        _backpressureRefusals = metrics.Counter("rubato_ingester_backpressure_refusals_total", "Pushes refused because max_unflushed_bytes were waiting to be flushed.").WithLabels();
        Service = new BasicService("ingester", StartingAsync, RunningAsync, StoppingAsync);
    }

    /// <summary>The lifecycle the module manager drives: Starting replays the WAL, Stopping flushes.</summary>
    public BasicService Service { get; }

    /// <summary>Generations held in memory (open and cut-but-unflushed); for tests and status pages.</summary>
    public int HeadCount
    {
        get
        {
            lock (_headsLock)
            {
                return _heads.Count;
            }
        }
    }

    /// <summary>Live traces of a tenant right now (after sweeping idle ones).</summary>
    public int LiveTraces(string tenantId)
    {
        if (!_tenants.TryGetValue(tenantId, out var state))
        {
            return 0;
        }

        lock (state)
        {
            Sweep(state, _time.GetTimestamp());
            return state.Live.Count;
        }
    }

    public async ValueTask<IngestResult> PushSegmentsAsync(string tenantId, IReadOnlyList<TraceSegment> segments, CancellationToken cancellationToken)
    {
        if (segments.Count == 0)
        {
            return IngestResult.AllAccepted;
        }

        if (!_accepting)
        {
            return new IngestResult(Filled(segments.Count, RefusalReason.Unavailable));
        }

        if (_config.MaxUnflushedBytes > 0 && Interlocked.Read(ref _unflushedBytes) >= _config.MaxUnflushedBytes)
        {
            // Flushing has fallen behind: refuse (retryably) before anything is reserved or written.
            _backpressureRefusals.Inc();
            WakeFlushLoop();
            return new IngestResult(Filled(segments.Count, RefusalReason.Unavailable));
        }

        var limits = _overrides.ForTenant(tenantId);
        var state = _tenants.GetOrAdd(tenantId, static (t, g) => new TenantState(t, g.WithLabels(t)), _liveTraces);
        long now = _time.GetTimestamp();
        RefusalReason[]? refusals = Reserve(state, limits, segments, now);
        IReadOnlyList<TraceSegment> accepted = refusals is null ? segments : Accepted(segments, refusals);
        if (accepted.Count == 0)
        {
            return new IngestResult(refusals);
        }

        // Copy before the append: the caller owns the segment memory only until this push returns.
        var copies = new byte[accepted.Count][];
        long bytes = 0;
        for (int i = 0; i < accepted.Count; i++)
        {
            copies[i] = accepted[i].Payload.ToArray();
            bytes += copies[i].Length;
        }

        var epoch = TryEnterEpoch();
        if (epoch is null)
        {
            // Stopping began after the limit check: nothing was written, so refuse what was about to be taken.
            Release(state, accepted);
            var unavailable = refusals ?? new RefusalReason[segments.Count];
            for (int i = 0; i < unavailable.Length; i++)
            {
                if (unavailable[i] == RefusalReason.None)
                {
                    unavailable[i] = RefusalReason.Unavailable;
                }
            }

            return new IngestResult(unavailable);
        }

        long generation;
        try
        {
            // Not cancellable: an append that started must finish and be inserted, so that the WAL generation
            // and its in-memory head always hold the same records.
            generation = await _wal!.AppendAsync(tenantId, accepted, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            Release(state, accepted);
            ExitEpoch(epoch);
            throw;
        }

        try
        {
            Insert(generation, tenantId, accepted, copies, now);
        }
        finally
        {
            ExitEpoch(epoch);
        }

        _walBytes.Inc(bytes);
        _walRecords.Inc(accepted.Count);
        return new IngestResult(refusals);
    }

    public ValueTask<Trace?> FindTraceByIdAsync(string tenantId, TraceId traceId, TimeRange range, CancellationToken cancellationToken)
    {
        Head[] heads;
        lock (_headsLock)
        {
            heads = [.. _heads.Values];
        }

        List<byte[]>? payloads = null;
        foreach (var head in heads)
        {
            lock (head)
            {
                if (head.Tenants.TryGetValue(tenantId, out var traces) && traces.TryGetValue(traceId, out var t) && range.Overlaps(t.StartUnixNano, t.EndUnixNano))
                {
                    (payloads ??= []).AddRange(t.Payloads);
                }
            }
        }

        if (payloads is null)
        {
            return ValueTask.FromResult<Trace?>(null);
        }

        // Decoding happens outside every lock; payloads are immutable once inserted.
        var parts = new List<Trace>(payloads.Count);
        foreach (byte[] p in payloads)
        {
            parts.Add(OtlpProto.DecodeTrace(p));
        }

        return ValueTask.FromResult<Trace?>(TraceCombiner.Combine(parts));
    }

    /// <summary>
    /// A TraceQL fetcher over the tenant's traces in every in-memory head (open and cut-but-unflushed) whose time
    /// range overlaps [<paramref name="startUnixNanos"/>, <paramref name="endUnixNanos"/>] (0/0 = everything). A trace
    /// is visible as soon as its push was acknowledged (acknowledgement follows the in-memory insert).
    /// </summary>
    /// <remarks>
    /// Snapshot semantics: each fetch takes the payload lists under each head's lock (copying references only; payloads
    /// are immutable once inserted), then decodes and combines per trace outside every lock on the caller's thread, so a
    /// slow search never blocks pushes. A trace split across heads (pushes either side of a cut) is combined into one.
    /// Tag search uses the same fetcher with an empty request (every span). Cost: one decode per payload per fetch.
    /// </remarks>
    public Rubato.TraceQL.Engine.ISpansetFetcher CreateFetcher(string tenantId, long startUnixNanos, long endUnixNanos)
    {
        ArgumentNullException.ThrowIfNull(tenantId);
        return new Rubato.TraceQL.Engine.TraceModelFetcher(SnapshotTraces(tenantId, startUnixNanos, endUnixNanos));
    }

    /// <summary>Trace ids held in memory for a tenant right now (all heads); for status pages and tests.</summary>
    public int InMemoryTraceCount(string tenantId)
    {
        var ids = new HashSet<TraceId>();
        foreach (var head in SnapshotHeads())
        {
            lock (head)
            {
                if (head.Tenants.TryGetValue(tenantId, out var traces))
                {
                    ids.UnionWith(traces.Keys);
                }
            }
        }

        return ids.Count;
    }

    /// <summary>
    /// The tenant's blocks this ingester flushed within <c>complete_block_timeout</c> (Tempo's ingester "complete
    /// blocks"), oldest first. A search without start/end asks only recent data, so these keep flushed traces
    /// searchable there (after <c>/flush</c>, after a cut, and across a restart) until the timeout passes; by then
    /// the querier's block list has long picked them up. Cheap: metas only, filtered under a short lock.
    /// </summary>
    public IReadOnlyList<BlockMeta> CompleteBlocks(string tenantId)
    {
        ArgumentNullException.ThrowIfNull(tenantId);
        var cutoff = _time.GetUtcNow() - _config.CompleteBlockTimeout;
        lock (_completeLock)
        {
            return [.. _complete.Where(b => b.FlushedAt > cutoff && b.Meta.TenantId == tenantId).Select(b => b.Meta)];
        }
    }

    private Head[] SnapshotHeads()
    {
        lock (_headsLock)
        {
            return [.. _heads.Values];
        }
    }

    private IEnumerable<Trace> SnapshotTraces(string tenantId, long startUnixNanos, long endUnixNanos)
    {
        // Enumerated lazily when the fetch starts (not when the fetcher is created), so a search sees every push
        // acknowledged before it began reading.
        var byTrace = new Dictionary<TraceId, List<byte[]>>();
        foreach (var head in SnapshotHeads())
        {
            lock (head)
            {
                if (!head.Tenants.TryGetValue(tenantId, out var traces))
                {
                    continue;
                }

                foreach (var (id, t) in traces)
                {
                    if (endUnixNanos > 0 && (t.StartUnixNano > (ulong)endUnixNanos || t.EndUnixNano < (ulong)Math.Max(0, startUnixNanos)))
                    {
                        continue;
                    }

                    if (!byTrace.TryGetValue(id, out var list))
                    {
                        byTrace[id] = list = new List<byte[]>(t.Payloads.Count);
                    }

                    list.AddRange(t.Payloads);
                }
            }
        }

        foreach (var payloads in byTrace.Values)
        {
            if (payloads.Count == 1)
            {
                yield return OtlpProto.DecodeTrace(payloads[0]);
                continue;
            }

            var parts = new List<Trace>(payloads.Count);
            foreach (byte[] p in payloads)
            {
                parts.Add(OtlpProto.DecodeTrace(p));
            }

            yield return TraceCombiner.Combine(parts);
        }
    }

    /// <summary>Cuts the current head now and writes every cut head to the backend (the <c>/flush</c> endpoint).</summary>
    /// <exception cref="InvalidOperationException">The ingester is not running.</exception>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_wal is null)
        {
            throw new InvalidOperationException("the ingester is not running");
        }

        await _flushGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CutAsync().ConfigureAwait(false);
            await FlushPendingAsync(throwOnError: true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _flushGate.Release();
        }
    }

    /// <summary>
    /// Closes the WAL without flushing (what a crash leaves behind: the next start replays it). Use
    /// <see cref="IService.StopAsync"/> on <see cref="Service"/> for an orderly stop.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        _accepting = false;
        var wal = Interlocked.Exchange(ref _wal, null);
        if (wal is not null)
        {
            await wal.DisposeAsync().ConfigureAwait(false);
        }
    }

    // ---- push path -------------------------------------------------------------------------------------------

    /// <summary>Checks and reserves limits for every segment; returns null when all are accepted.</summary>
    private RefusalReason[]? Reserve(TenantState state, TenantLimits limits, IReadOnlyList<TraceSegment> segments, long now)
    {
        int maxTraces = MaxTracesPerUser(limits);
        long maxBytes = limits.Global.MaxBytesPerTrace;
        RefusalReason[]? refusals = null;
        lock (state)
        {
            for (int i = 0; i < segments.Count; i++)
            {
                var seg = segments[i];
                bool isLive = state.Live.TryGetValue(seg.TraceId, out var live);
                if (!isLive && maxTraces > 0 && state.Live.Count >= maxTraces)
                {
                    if (_time.GetElapsedTime(state.LastSweepTimestamp, now) >= PushSweepInterval)
                    {
                        Sweep(state, now);
                    }

                    if (state.Live.Count >= maxTraces)
                    {
                        (refusals ??= new RefusalReason[segments.Count])[i] = RefusalReason.LiveTracesExceeded;
                        continue;
                    }
                }

                long held = state.UnflushedBytes.GetValueOrDefault(seg.TraceId);
                if (maxBytes > 0 && held + seg.Payload.Length > maxBytes)
                {
                    (refusals ??= new RefusalReason[segments.Count])[i] = RefusalReason.TraceTooLarge;
                    continue;
                }

                state.UnflushedBytes[seg.TraceId] = held + seg.Payload.Length;
                state.Live[seg.TraceId] = new LiveTrace(isLive ? live.FirstTimestamp : now, now);
            }

            state.LiveGauge.Set(state.Live.Count);
        }

        return refusals;
    }

    /// <summary>
    /// The live-trace limit this ingester enforces: the smaller non-zero of <c>max_traces_per_user</c> and
    /// <c>max_global_traces_per_user</c> / healthy ingesters × replication factor; 0 = unlimited.
    /// </summary>
    public int MaxTracesPerUser(TenantLimits limits)
    {
        int local = Math.Max(0, limits.Ingestion.MaxTracesPerUser);
        int global = limits.Ingestion.MaxGlobalTracesPerUser;
        if (global <= 0)
        {
            return local;
        }

        int ingesters = _options.HealthyIngesters?.Invoke() ?? 1;
        long fromGlobal = ingesters > 0 ? (long)global / ingesters * Math.Max(1, _options.ReplicationFactor) : 0;
        if (fromGlobal <= 0)
        {
            return local;
        }

        return local == 0 ? (int)Math.Min(int.MaxValue, fromGlobal) : (int)Math.Min(local, fromGlobal);
    }

    /// <summary>Undoes the byte reservations of segments whose WAL append failed.</summary>
    private static void Release(TenantState state, IReadOnlyList<TraceSegment> segments)
    {
        lock (state)
        {
            foreach (var seg in segments)
            {
                Uncharge(state, seg.TraceId, seg.Payload.Length);
            }
        }
    }

    private static void Uncharge(TenantState state, TraceId id, long bytes)
    {
        if (state.UnflushedBytes.TryGetValue(id, out long held))
        {
            if (held <= bytes)
            {
                state.UnflushedBytes.Remove(id);
            }
            else
            {
                state.UnflushedBytes[id] = held - bytes;
            }
        }
    }

    private void Sweep(TenantState state, long now)
    {
        state.LastSweepTimestamp = now;
        List<TraceId>? expired = null;
        foreach (var (id, live) in state.Live)
        {
            if (_time.GetElapsedTime(live.LastAppendTimestamp, now) >= _config.TraceIdlePeriod
                || _time.GetElapsedTime(live.FirstTimestamp, now) >= _config.MaxTraceLive)
            {
                (expired ??= []).Add(id);
            }
        }

        if (expired is not null)
        {
            foreach (var id in expired)
            {
                state.Live.Remove(id);
            }
        }

        state.LiveGauge.Set(state.Live.Count);
    }

    private static List<TraceSegment> Accepted(IReadOnlyList<TraceSegment> segments, RefusalReason[] refusals)
    {
        var accepted = new List<TraceSegment>(segments.Count);
        for (int i = 0; i < segments.Count; i++)
        {
            if (refusals[i] == RefusalReason.None)
            {
                accepted.Add(segments[i]);
            }
        }

        return accepted;
    }

    private static RefusalReason[] Filled(int count, RefusalReason reason)
    {
        var r = new RefusalReason[count];
        Array.Fill(r, reason);
        return r;
    }

    /// <summary>Registers a push in the current epoch; null once stopping has begun (checked under the same lock).</summary>
    private Epoch? TryEnterEpoch()
    {
        lock (_epochLock)
        {
            if (!_accepting)
            {
                return null;
            }

            var e = _current;
            e.InFlight++;
            return e;
        }
    }

    private void ExitEpoch(Epoch e)
    {
        lock (_epochLock)
        {
            e.InFlight--;
            if (e.Closed && e.InFlight == 0)
            {
                e.Drained.TrySetResult();
            }
        }
    }

    private Head HeadFor(long generation)
    {
        lock (_headsLock)
        {
            if (!_heads.TryGetValue(generation, out var head))
            {
                head = new Head(generation);
                _heads.Add(generation, head);
            }

            return head;
        }
    }

    private void Insert(long generation, string tenantId, IReadOnlyList<TraceSegment> segments, byte[][] copies, long now)
    {
        var head = HeadFor(generation);
        long added = 0;
        bool full;
        lock (head)
        {
            if (!head.Tenants.TryGetValue(tenantId, out var traces))
            {
                traces = [];
                head.Tenants.Add(tenantId, traces);
            }

            if (head.FirstInsertTimestamp == 0)
            {
                head.FirstInsertTimestamp = now;
            }

            for (int i = 0; i < segments.Count; i++)
            {
                var seg = segments[i];
                if (!traces.TryGetValue(seg.TraceId, out var t))
                {
                    t = new HeadTrace();
                    traces.Add(seg.TraceId, t);
                }

                t.Add(copies[i], seg.SpanCount, seg.StartUnixNano, seg.EndUnixNano, now);
                head.Bytes += copies[i].Length;
                added += copies[i].Length;
            }

            full = head.Bytes >= _config.MaxBlockBytes;
        }

        AddUnflushed(added);
        if (full)
        {
            WakeFlushLoop();
        }
    }

    private void AddUnflushed(long bytes) => _unflushedGauge.Set(Interlocked.Add(ref _unflushedBytes, bytes));

    /// <summary>Asks the flush loop to check the cut conditions now rather than at the next flush_check_period.</summary>
    private void WakeFlushLoop()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another thread woke it first.
            }
        }
    }

    // ---- cutting and flushing --------------------------------------------------------------------------------

    /// <summary>Closes the current epoch and WAL generation if they hold data, and waits for their pushes to insert.</summary>
    /// <remarks>Caller holds <c>_flushGate</c>.</remarks>
    private async Task CutAsync()
    {
        Epoch closed;
        lock (_epochLock)
        {
            // The open generation holds data if it has a head (pushes of an earlier, drained epoch may have landed in
            // it when the WAL rotated under them) or if pushes of the current epoch are still in flight.
            closed = _current;
            bool openHeadExists;
            lock (_headsLock)
            {
                openHeadExists = _heads.ContainsKey(_wal!.CurrentGeneration);
            }

            if (!openHeadExists && closed.InFlight == 0)
            {
                return;
            }

            // Rotate first: if it throws (disk full), nothing has changed and the next cut tries again.
            long generation = _wal!.Rotate();
            closed.Closed = true;
            _current = new Epoch();
            lock (_headsLock)
            {
                _pendingGenerations.Add(generation);
            }

            if (closed.InFlight == 0)
            {
                closed.Drained.TrySetResult();
            }
        }

        await closed.Drained.Task.ConfigureAwait(false);
    }

    /// <summary>Writes every cut head, oldest first; stops at the first failure (the rest are retried later).</summary>
    /// <remarks>Caller holds <c>_flushGate</c>.</remarks>
    private async Task FlushPendingAsync(bool throwOnError, CancellationToken ct)
    {
        while (true)
        {
            long generation;
            Head? head;
            lock (_headsLock)
            {
                if (_pendingGenerations.Count == 0)
                {
                    return;
                }

                generation = _pendingGenerations.Min;
                _heads.TryGetValue(generation, out head);
            }

            long started = _time.GetTimestamp();
            try
            {
                if (head is not null)
                {
                    await WriteHeadAsync(head, ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                _flushFailures.Inc();
                _log($"ingester: flushing WAL generation {generation} failed, will retry: {e.Message}");
                if (throwOnError)
                {
                    throw;
                }

                return;
            }

            _flushDuration.Observe(_time.GetElapsedTime(started).TotalSeconds);
            if (head is not null)
            {
                ReleaseHead(head);
            }

            lock (_headsLock)
            {
                _heads.Remove(generation);
                _pendingGenerations.Remove(generation);
            }

            // Only now, with every block written and announced, may the generation's records go.
            _wal!.DeleteGeneration(generation);
        }
    }

    /// <summary>Drops a flushed head's bytes from the per-trace totals that max_bytes_per_trace is checked against.</summary>
    private void ReleaseHead(Head head)
    {
        long released;
        lock (head)
        {
            released = head.Bytes;
        }

        AddUnflushed(-released);
        foreach (var (tenantId, traces) in head.Tenants)
        {
            if (!_tenants.TryGetValue(tenantId, out var state))
            {
                continue;
            }

            lock (state)
            {
                foreach (var (id, t) in traces)
                {
                    Uncharge(state, id, t.Bytes);
                }
            }
        }
    }

    private async Task WriteHeadAsync(Head head, CancellationToken ct)
    {
        // The head is closed and drained: nothing inserts into it any more, so its maps are read without its lock
        // (readers only take the lock to read, never to write).
        var tenants = head.Tenants.ToArray();
        await Parallel.ForEachAsync(
            tenants,
            new ParallelOptions { MaxDegreeOfParallelism = _config.ConcurrentFlushes, CancellationToken = ct },
            async (entry, token) => await WriteTenantBlockAsync(head.Generation, entry.Key, entry.Value, token).ConfigureAwait(false)).ConfigureAwait(false);
    }

    private async Task WriteTenantBlockAsync(long generation, string tenantId, Dictionary<TraceId, HeadTrace> traces, CancellationToken ct)
    {
        var ids = traces.Keys.ToArray();
        Array.Sort(ids);
        var template = _options.Block;
        var blockOptions = new BlockBuilderOptions
        {
            TenantId = tenantId,
            BlockId = BlockIdFor(generation, tenantId, ids, traces),
            BloomFalsePositive = template.BloomFalsePositive,
            BloomShardSizeBytes = template.BloomShardSizeBytes,
            RowGroupSizeBytes = template.RowGroupSizeBytes,
            CompactionLevel = 0,
            ReplicationFactor = template.ReplicationFactor,
            Compression = template.Compression,
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_config.FlushOpTimeout);
        using var builder = _options.Encoding.CreateBlockBuilder(blockOptions);
        var parts = new List<Trace>();
        foreach (var id in ids)
        {
            parts.Clear();
            foreach (byte[] p in traces[id].Payloads)
            {
                parts.Add(OtlpProto.DecodeTrace(p));
            }

            // Combine dedupes spans pushed more than once (client retries, replays).
            builder.AddTrace(id, parts.Count == 1 ? parts[0] : TraceCombiner.Combine(parts));
        }

        var meta = await builder.WriteAsync(_options.Store, timeout.Token).ConfigureAwait(false);
        _blocksFlushed.WithLabels(tenantId).Inc();
        AddCompleteBlock(meta, _time.GetUtcNow());
        _options.BlockFlushed?.Invoke(meta);
    }

    /// <summary>
    /// A block id that is the same whenever the same records of one generation are flushed (live or after replay),
    /// and different for different records: SHA-256 over instance, generation, tenant and an order-independent
    /// fingerprint of the records (CRC-32C of each payload with its trace id and length).
    /// </summary>
    private Guid BlockIdFor(long generation, string tenantId, TraceId[] sortedIds, Dictionary<TraceId, HeadTrace> traces)
    {
        ulong sum = 0, xor = 0;
        long count = 0;
        foreach (var id in sortedIds)
        {
            foreach (byte[] p in traces[id].Payloads)
            {
                ulong h = ((ulong)Crc32C(p) << 32) ^ (ulong)p.Length;
                h ^= id.High * 0x9E3779B97F4A7C15UL;
                h ^= BitOperations.RotateLeft(id.Low * 0xC2B2AE3D27D4EB4FUL, 31);
                h *= 0xFF51AFD7ED558CCDUL;
                h ^= h >> 33;
                sum += h;
                xor ^= h;
                count++;
            }
        }

        var text = Encoding.UTF8.GetBytes($"{_options.InstanceId}\n{generation}\n{tenantId}\n{count}\n{sum:x16}\n{xor:x16}");
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(text, hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80); // RFC 9562 version 8 (custom)
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80); // RFC 4122 variant
        return new Guid(hash[..16], bigEndian: true);
    }

    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong w in words)
        {
            crc = BitOperations.Crc32C(crc, w);
        }

        foreach (byte b in data[(words.Length * 8)..])
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return ~crc;
    }

    // ---- complete blocks (complete_block_timeout) -------------------------------------------------------------

    /// <summary>
    /// The file that lists recently flushed blocks (<c>flushedUnixMs tenant blockId</c> lines), in the <c>blocks</c>
    /// folder of the WAL directory (where Tempo keeps an ingester's complete blocks), apart from the WAL's own files.
    /// </summary>
    public const string CompleteBlocksFile = "blocks/complete-blocks.txt";

    private string CompleteBlocksPath => Path.Combine(_options.Wal.Path, CompleteBlocksFile);

    /// <summary>Records a flushed block (replacing an earlier entry for the same id, as a replay rewrites it) and persists the list.</summary>
    /// <remarks>Runs on a flushing thread. A lost file (crash mid-rename) only shortens how long those blocks stay in the recent path.</remarks>
    private void AddCompleteBlock(BlockMeta meta, DateTimeOffset flushedAt)
    {
        if (_config.CompleteBlockTimeout <= TimeSpan.Zero)
        {
            return;
        }

        lock (_completeLock)
        {
            _complete.RemoveAll(b => b.Meta.BlockId == meta.BlockId);
            _complete.Add(new CompleteBlock(meta, flushedAt));
        }

        PruneCompleteBlocks(force: true);
    }

    /// <summary>Drops entries older than complete_block_timeout; rewrites the file when something changed (or when forced).</summary>
    private void PruneCompleteBlocks(bool force)
    {
        var cutoff = _time.GetUtcNow() - _config.CompleteBlockTimeout;
        string[] lines;
        lock (_completeLock)
        {
            int removed = _complete.RemoveAll(b => b.FlushedAt <= cutoff);
            if (removed == 0 && !force)
            {
                return;
            }

            lines = [.. _complete.Select(b => string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{b.FlushedAt.ToUnixTimeMilliseconds()} {b.Meta.TenantId} {b.Meta.BlockId:D}"))];
        }

        lock (_completeFileLock)
        {
            try
            {
                // Written aside and renamed over the old list, so a crash leaves the old or the new list, never half.
                string tmp = CompleteBlocksPath + ".tmp";
                Directory.CreateDirectory(Path.GetDirectoryName(CompleteBlocksPath)!);
                File.WriteAllLines(tmp, lines);
                File.Move(tmp, CompleteBlocksPath, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log($"ingester: could not write {CompleteBlocksPath}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// Reloads the complete-blocks list a previous run left (Tempo rediscovers its local complete blocks): entries still
    /// within complete_block_timeout whose meta.json is in the store. Unreadable entries are skipped with a warning.
    /// </summary>
    private async Task LoadCompleteBlocksAsync(CancellationToken ct)
    {
        if (_config.CompleteBlockTimeout <= TimeSpan.Zero || !File.Exists(CompleteBlocksPath))
        {
            return;
        }

        var cutoff = _time.GetUtcNow() - _config.CompleteBlockTimeout;
        foreach (string line in await File.ReadAllLinesAsync(CompleteBlocksPath, ct).ConfigureAwait(false))
        {
            string[] parts = line.Split(' ');
            if (parts.Length != 3 || !long.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out long ms) || !Guid.TryParse(parts[2], out var id))
            {
                _log($"ingester: skipping malformed line in {CompleteBlocksPath}: '{line}'");
                continue;
            }

            var flushedAt = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            if (flushedAt <= cutoff)
            {
                continue;
            }

            try
            {
                byte[]? json = await _options.Store.GetAsync(ObjectKeys.BlockObject(parts[1], id, ObjectKeys.MetaName), ct).ConfigureAwait(false);
                if (json is not null)
                {
                    lock (_completeLock)
                    {
                        _complete.Add(new CompleteBlock(BlockMeta.FromJson(json), flushedAt));
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _log($"ingester: complete block {parts[1]}/{id} not reloaded: {e.Message}");
            }
        }
    }

    // ---- lifecycle -------------------------------------------------------------------------------------------

    private async Task StartingAsync(CancellationToken ct)
    {
        _wal = await WriteAheadLog.OpenAsync(_options.Wal, ct).ConfigureAwait(false);
        await LoadCompleteBlocksAsync(ct).ConfigureAwait(false);

        // Opening starts a fresh generation after the newest on disk; every older one is a previous run's to replay.
        long current = _wal.CurrentGeneration;
        var generations = _wal.Generations().Where(g => g < current).ToList();
        long records = 0, bytes = 0, discarded = 0;
        foreach (long generation in generations)
        {
            foreach (var rec in _wal.ReadGeneration(generation, torn => discarded += torn))
            {
                var state = _tenants.GetOrAdd(rec.TenantId, static (t, g) => new TenantState(t, g.WithLabels(t)), _liveTraces);
                byte[] payload = rec.Payload.ToArray();
                var head = HeadFor(generation);
                lock (head)
                {
                    if (!head.Tenants.TryGetValue(rec.TenantId, out var traces))
                    {
                        traces = [];
                        head.Tenants.Add(rec.TenantId, traces);
                    }

                    if (!traces.TryGetValue(rec.TraceId, out var t))
                    {
                        t = new HeadTrace();
                        traces.Add(rec.TraceId, t);
                    }

                    t.Add(payload, rec.SpanCount, rec.StartUnixNano, rec.EndUnixNano, _time.GetTimestamp());
                    head.Bytes += payload.Length;
                }

                AddUnflushed(payload.Length);

                lock (state)
                {
                    state.UnflushedBytes[rec.TraceId] = state.UnflushedBytes.GetValueOrDefault(rec.TraceId) + payload.Length;
                }

                records++;
                bytes += payload.Length;
            }
        }

        _replayedRecords.Inc(records);
        _replayedBytes.Inc(bytes);
        _replayDiscardedBytes.Inc(discarded);
        if (generations.Count > 0)
        {
            _log($"ingester: replayed {records} records ({bytes} bytes) from {generations.Count} WAL generations; discarded {discarded} torn bytes");
            lock (_headsLock)
            {
                foreach (long g in generations)
                {
                    _pendingGenerations.Add(g);
                }
            }

            // Written out before Running so a restart converges on the backend; a failure leaves them pending
            // (still queryable in memory) for the run loop to retry.
            await _flushGate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await FlushPendingAsync(throwOnError: false, ct).ConfigureAwait(false);
            }
            finally
            {
                _flushGate.Release();
            }
        }

        _accepting = true;
    }

    private async Task RunningAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            // Sleep until the next check, or until a push finds the open head full (WakeFlushLoop).
            using (var waitCts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                var delay = Task.Delay(_config.FlushCheckPeriod, _time, waitCts.Token);
                var wake = _wake.WaitAsync(waitCts.Token);
                await Task.WhenAny(delay, wake).ConfigureAwait(false);
                await waitCts.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(delay, wake).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }

            ct.ThrowIfCancellationRequested();
            if (_wal is null)
            {
                return; // Disposed without stopping (abandoned after a simulated crash).
            }

            SweepAll();
            PruneCompleteBlocks(force: false);
            await _flushGate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (CutDue())
                {
                    await CutAsync().ConfigureAwait(false);
                }

                await FlushPendingAsync(throwOnError: false, ct).ConfigureAwait(false);
            }
            finally
            {
                _flushGate.Release();
            }
        }
    }

    private async Task StoppingAsync(Exception? failure)
    {
        // Under the epoch lock: after this no push can register, so the cut below takes every acknowledged record.
        lock (_epochLock)
        {
            _accepting = false;
        }

        if (_wal is null)
        {
            return;
        }

        if (_config.FlushAllOnShutdown)
        {
            await _flushGate.WaitAsync().ConfigureAwait(false);
            try
            {
                // The first cut drains every registered push; some may have landed in the generation it opened, so
                // a second cut closes that one too. No push can register any more, so nothing lands after it.
                await CutAsync().ConfigureAwait(false);
                await CutAsync().ConfigureAwait(false);
                await FlushPendingAsync(throwOnError: false, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                _flushGate.Release();
            }
        }

        await DisposeAsync().ConfigureAwait(false);
    }

    private bool CutDue()
    {
        Head? head;
        lock (_headsLock)
        {
            _heads.TryGetValue(_wal!.CurrentGeneration, out head);
        }

        if (head is null)
        {
            return false;
        }

        lock (head)
        {
            return head.Bytes >= _config.MaxBlockBytes
                || (head.FirstInsertTimestamp != 0 && _time.GetElapsedTime(head.FirstInsertTimestamp) >= _config.MaxBlockDuration);
        }
    }

    private void SweepAll()
    {
        long now = _time.GetTimestamp();
        foreach (var state in _tenants.Values)
        {
            lock (state)
            {
                Sweep(state, now);
            }
        }
    }

    // ---- state -----------------------------------------------------------------------------------------------

    /// <summary>Pushes registered between two cuts; the cutter waits for a closed epoch to drain.</summary>
    private sealed record CompleteBlock(BlockMeta Meta, DateTimeOffset FlushedAt);

    private sealed class Epoch
    {
        public int InFlight;
        public bool Closed;
        public readonly TaskCompletionSource Drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The in-memory copy of one WAL generation: tenant → trace id → payloads.</summary>
    private sealed class Head(long generation)
    {
        public long Generation { get; } = generation;

        public Dictionary<string, Dictionary<TraceId, HeadTrace>> Tenants { get; } = new(StringComparer.Ordinal);

        public long Bytes;
        public long FirstInsertTimestamp;
    }

    private sealed class HeadTrace
    {
        public List<byte[]> Payloads { get; } = new(2);

        public long Bytes;
        public int SpanCount;
        public ulong StartUnixNano = ulong.MaxValue;
        public ulong EndUnixNano;
        public long LastAppendTimestamp;

        public void Add(byte[] payload, int spans, ulong start, ulong end, long now)
        {
            Payloads.Add(payload);
            Bytes += payload.Length;
            SpanCount += spans;
            StartUnixNano = Math.Min(StartUnixNano, start);
            EndUnixNano = Math.Max(EndUnixNano, end);
            LastAppendTimestamp = now;
        }
    }

    private readonly record struct LiveTrace(long FirstTimestamp, long LastAppendTimestamp);

    /// <summary>One tenant's limit bookkeeping; guarded by locking the instance.</summary>
    private sealed class TenantState(string tenantId, Gauge.Child liveGauge)
    {
        public string TenantId { get; } = tenantId;

        /// <summary>This tenant's <c>rubato_ingester_live_traces</c> series, looked up once.</summary>
        public Gauge.Child LiveGauge { get; } = liveGauge;

        /// <summary>Traces counted against max_traces_per_user.</summary>
        public Dictionary<TraceId, LiveTrace> Live { get; } = [];

        /// <summary>Bytes of each trace held in heads not yet flushed (reserved before the WAL append).</summary>
        public Dictionary<TraceId, long> UnflushedBytes { get; } = [];

        public long LastSweepTimestamp;
    }
}
