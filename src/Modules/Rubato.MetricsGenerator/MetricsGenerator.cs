using System.Buffers;
using System.Collections.Concurrent;
using System.Threading.Channels;
using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Services;

namespace Rubato.MetricsGenerator;

/// <summary>
/// The metrics-generator (Tempo's <c>modules/generator</c>): receives the distributor's accepted segments, runs the
/// tenant's enabled processors (span metrics, service graphs) into its series registry, and every
/// <c>collection_interval</c> hands the samples to storage (<see cref="IMetricsSampleAppender"/>, remote write).
/// </summary>
/// <remarks>
/// <para>Threads: <see cref="Forward"/> runs on distributor push threads and only copies the payload into a pooled
/// buffer and offers it to a bounded queue (dropping, counted, when full). <c>workers</c> threads decode queued
/// payloads; one collection thread expires service-graph edges and collects registries. Each tenant's state is
/// guarded by its own lock, so tenants proceed in parallel.</para>
/// <para>On stop the queue is drained and every tenant is collected one last time.</para>
/// </remarks>
public sealed class MetricsGenerator : IGeneratorForwarder
{
    private readonly MetricsGeneratorConfig _config;
    private readonly IOverrides _overrides;
    private readonly IMetricsSampleAppender? _appender;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly GeneratorSelfMetrics _self;
    private readonly Channel<WorkItem> _queue;
    private readonly ConcurrentDictionary<string, TenantGenerator> _tenants = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _collectGate = new(1, 1);
    private long _queuedBytes;

    /// <param name="appender">Storage for collected samples; null = collect only (the /metrics gauges still update).</param>
    public MetricsGenerator(
        MetricsGeneratorConfig config,
        IOverrides overrides,
        MetricsRegistry metrics,
        IMetricsSampleAppender? appender = null,
        TimeProvider? time = null,
        Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var validation = new ConfigValidation();
        config.Validate("metrics_generator", validation);
        if (validation.HasErrors)
        {
            throw new ArgumentException(string.Join("; ", validation.Errors), nameof(config));
        }

        _config = config;
        _overrides = overrides;
        _appender = appender;
        _time = time ?? TimeProvider.System;
        _log = log ?? (_ => { });
        _self = new GeneratorSelfMetrics(metrics);
        _queue = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(config.QueueSize)
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails instead of waiting: Forward never blocks.
            SingleWriter = false,
            SingleReader = config.Workers == 1,
        });
        Service = new BasicService("metrics-generator", running: RunAsync, stopping: StopAsync);
    }

    /// <summary>The module's service: Running = workers + collection loop; Stopping = drain, then a last collection.</summary>
    public BasicService Service { get; }

    /// <summary>Payloads waiting in the queue.</summary>
    public int QueuedPushes => _queue.Reader.Count;

    /// <summary>Payload bytes waiting in the queue (bounded by <c>queue_max_bytes</c>).</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    public void Forward(string tenantId, IReadOnlyList<TraceSegment> acceptedSegments)
    {
        ArgumentNullException.ThrowIfNull(acceptedSegments);
        if (acceptedSegments.Count == 0 || _overrides.ForTenant(tenantId).MetricsGenerator.Processors.Count == 0)
        {
            // Tempo: a tenant without processors is not sent to the generator at all.
            return;
        }

        // Each segment is tempopb.Trace bytes (repeated field 1); concatenated they are one valid message.
        int bytes = 0, spans = 0;
        foreach (var s in acceptedSegments)
        {
            bytes += s.Payload.Length;
            spans += s.SpanCount;
        }

        if (Interlocked.Add(ref _queuedBytes, bytes) > _config.QueueMaxBytes)
        {
            Interlocked.Add(ref _queuedBytes, -bytes);
            _self.For(tenantId).Discarded(GeneratorSelfMetrics.ReasonQueueFull).Inc(spans);
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(bytes, 1));
        int at = 0;
        foreach (var s in acceptedSegments)
        {
            s.Payload.Span.CopyTo(buffer.AsSpan(at));
            at += s.Payload.Length;
        }

        if (!_queue.Writer.TryWrite(new WorkItem(tenantId, buffer, bytes, spans)))
        {
            Interlocked.Add(ref _queuedBytes, -bytes);
            ArrayPool<byte>.Shared.Return(buffer);
            _self.For(tenantId).Discarded(GeneratorSelfMetrics.ReasonQueueFull).Inc(spans);
        }
    }

    /// <summary>Processes one payload now, on the calling thread (what a worker does for each queued push).</summary>
    public void Process(string tenantId, ReadOnlySpan<byte> payload)
    {
        // Version before limits: a reload in between only makes the next call reconfigure again.
        long version = _overrides.Version;
        var limits = _overrides.ForTenant(tenantId);
        var tenant = Tenant(tenantId);
        var self = _self.For(tenantId);
        self.BytesReceived.Inc(payload.Length);
        lock (tenant.Gate)
        {
            tenant.Configure(limits, version);
            if (!tenant.Enabled)
            {
                return;
            }

            long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            if (tenant.NextCollectionMs == 0)
            {
                // A tenant's first collection comes one interval after its first spans (Tempo's per-tenant ticker),
                // not at the collector's next tick.
                tenant.NextCollectionMs = now + (long)tenant.CollectionInterval.TotalMilliseconds;
            }

            tenant.Process(payload, now);
        }
    }

    /// <summary>
    /// Collects every tenant whose <c>collection_interval</c> has elapsed (every tenant when <paramref name="force"/>)
    /// and hands each tenant's samples to the appender; other tenants only get their service-graph edges expired.
    /// </summary>
    public async Task CollectAsync(bool force, CancellationToken cancellationToken)
    {
        await _collectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var tenant in _tenants.Values)
            {
                var samples = new List<SeriesSample>();
                long version = _overrides.Version;
                var limits = _overrides.ForTenant(tenant.Tenant);
                lock (tenant.Gate)
                {
                    long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
                    tenant.Configure(limits, version);
                    if (!force && now < tenant.NextCollectionMs)
                    {
                        tenant.Expire(now);
                        continue;
                    }

                    tenant.NextCollectionMs = now + (long)tenant.CollectionInterval.TotalMilliseconds;
                    tenant.Collect(now, samples);
                }

                if (_appender is null || limits.MetricsGenerator.DisableCollection || samples.Count == 0)
                {
                    continue;
                }

                try
                {
                    await _appender.AppendAsync(tenant.Tenant, samples, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e)
                {
                    _self.For(tenant.Tenant).CollectionsFailed.Inc();
                    _log($"metrics-generator: storing {samples.Count} samples of tenant {tenant.Tenant} failed: {e.Message}");
                }
            }
        }
        finally
        {
            _collectGate.Release();
        }
    }

    /// <summary>The tenant's registry, once the tenant has sent spans (tests and status).</summary>
    public TenantRegistry? RegistryOf(string tenantId) => _tenants.TryGetValue(tenantId, out var t) ? t.Registry : null;

    /// <summary>Runs <paramref name="action"/> under the tenant's lock (tests read registry state consistently).</summary>
    public T Inspect<T>(string tenantId, Func<TenantRegistry, T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var t = Tenant(tenantId);
        lock (t.Gate)
        {
            return action(t.Registry);
        }
    }

    internal TenantGenerator Tenant(string tenantId) =>
        _tenants.GetOrAdd(tenantId, static (id, self) => new TenantGenerator(id, self._config, self._self.For(id)), this);

    private async Task RunAsync(CancellationToken ct)
    {
        var workers = new Task[_config.Workers];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(() => WorkerAsync(ct), CancellationToken.None);
        }

        // Tick often enough for per-tenant intervals and edge expiry (Tempo expires edges every 2 s).
        var tick = TimeSpan.FromSeconds(1);
        if (_config.Registry.CollectionInterval < tick)
        {
            tick = _config.Registry.CollectionInterval;
        }

        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(tick, _time, ct).ConfigureAwait(false);
                await CollectAsync(force: false, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
    }

    private async Task WorkerAsync(CancellationToken ct)
    {
        try
        {
            while (await _queue.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (_queue.Reader.TryRead(out var item))
                {
                    Handle(item);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: what is still queued is drained by StopAsync.
        }
    }

    private void Handle(WorkItem item)
    {
        try
        {
            Process(item.Tenant, item.Buffer.AsSpan(0, item.Length));
        }
        catch (Exception e)
        {
            // One bad payload must not stop the worker; it is counted and logged.
            _self.For(item.Tenant).Discarded(GeneratorSelfMetrics.ReasonInvalid).Inc(item.Spans);
            _log($"metrics-generator: processing a push of tenant {item.Tenant} failed: {e}");
        }
        finally
        {
            Interlocked.Add(ref _queuedBytes, -item.Length);
            ArrayPool<byte>.Shared.Return(item.Buffer);
        }
    }

    private async Task StopAsync(Exception? failure)
    {
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var item))
        {
            Handle(item);
        }

        try
        {
            await CollectAsync(force: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _log($"metrics-generator: final collection failed: {e.Message}");
        }
    }

    private readonly record struct WorkItem(string Tenant, byte[] Buffer, int Length, int Spans);
}
