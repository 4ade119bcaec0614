using System.Collections.Concurrent;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Otlp;
using Rubato.Common.Services;
using Rubato.Common.Tenancy;

namespace Rubato.RemoteWrite;

/// <summary>
/// The metrics-generator's storage: every collection's samples are made durable in a per-tenant WAL, then sent
/// in the background to each <c>remote_write</c> endpoint (Prometheus remote write 1.0), so a Prometheus outage
/// that ends within the WAL bounds loses no samples.
/// </summary>
/// <remarks>
/// Threads: <see cref="AppendAsync"/> runs on the registry's collection thread (one call per tenant per
/// collection); one sender task per (tenant, endpoint) reads the WAL and sends. Stopping lets the senders drain
/// the WAL for up to <c>remote_write_flush_deadline</c>, then cancels them; what is unsent stays in the WAL and
/// is sent after the next start.
/// </remarks>
public sealed class RemoteWriteStorage : BasicService, IMetricsSampleAppender
{
    private readonly Core _core;

    /// <param name="config"><c>metrics_generator.storage</c>.</param>
    /// <param name="metrics">The shared registry for the remote-write metrics.</param>
    /// <param name="externalLabels">Added to every series that lacks them (<c>metrics_generator.registry.external_labels</c>).</param>
    /// <param name="tenantHeaders">Per-tenant extra headers (the <c>remote_write_headers</c> override), or null.</param>
    /// <param name="log">Warnings (failed sends, drops).</param>
    /// <param name="time">Clock for WAL ages; the system clock by default.</param>
    /// <param name="handler">HTTP handler for the endpoints (tests); a SocketsHttpHandler per endpoint by default.</param>
    public RemoteWriteStorage(RemoteWriteStorageConfig config, MetricsRegistry metrics, IReadOnlyDictionary<string, string>? externalLabels = null,
        Func<string, IReadOnlyDictionary<string, string>?>? tenantHeaders = null, Action<string>? log = null, TimeProvider? time = null,
        Func<HttpMessageHandler>? handler = null)
        : this(new Core(config, metrics, externalLabels, tenantHeaders, log, time ?? TimeProvider.System, handler))
    {
    }

    private RemoteWriteStorage(Core core)
        : base("metrics-generator-storage", core.StartingAsync, null, core.StoppingAsync)
    {
        _core = core;
    }

    /// <inheritdoc />
    public ValueTask AppendAsync(string tenantId, IReadOnlyList<SeriesSample> samples, CancellationToken cancellationToken) =>
        _core.AppendAsync(tenantId, samples, cancellationToken);

    /// <summary>Samples of <paramref name="tenantId"/> not yet acknowledged by the endpoint (for tests and status).</summary>
    public long Pending(string tenantId, string endpointName) => _core.Pending(tenantId, endpointName);

    private sealed class Core
    {
        private readonly RemoteWriteStorageConfig _config;
        private readonly RemoteWriteMetrics _metrics;
        private readonly SeriesLabel[] _external;
        private readonly Func<string, IReadOnlyDictionary<string, string>?>? _tenantHeaders;
        private readonly Action<string> _log;
        private readonly TimeProvider _time;
        private readonly List<(string Name, RemoteWriteEndpointConfig Config, RemoteWriteClient Client)> _endpoints = [];
        private readonly ConcurrentDictionary<string, TenantWal> _wals = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, EndpointSender[]> _tenantSenders = new(StringComparer.Ordinal);
        private readonly List<Task> _senders = [];
        private readonly object _lock = new();
        private readonly TaskCompletionSource _drain = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _hardStop = new();
        private readonly int _recordSamples;
        private bool _started;
        private bool _stopped;

        public Core(RemoteWriteStorageConfig config, MetricsRegistry metrics, IReadOnlyDictionary<string, string>? externalLabels,
            Func<string, IReadOnlyDictionary<string, string>?>? tenantHeaders, Action<string>? log, TimeProvider time, Func<HttpMessageHandler>? handler)
        {
            _config = config;
            _metrics = new RemoteWriteMetrics(metrics);
            _external = PromWire.NormalizeExternalLabels(externalLabels);
            _tenantHeaders = tenantHeaders;
            _log = log ?? (_ => { });
            _time = time;
            for (int i = 0; i < config.RemoteWrite.Count; i++)
            {
                var ep = config.RemoteWrite[i];
                _endpoints.Add((ep.EffectiveName(i), ep, new RemoteWriteClient(ep, config.RemoteWriteAddOrgIdHeader, handler?.Invoke())));
            }

            // A WAL record is never split when sending, so records hold at most the smallest batch size.
            _recordSamples = _endpoints.Count == 0 ? 1 : _endpoints.Min(e => e.Config.QueueConfig.MaxSamplesPerSend);
        }

        public Task StartingAsync(CancellationToken cancellationToken)
        {
            if (_endpoints.Count == 0)
            {
                return Task.CompletedTask;
            }

            Directory.CreateDirectory(_config.Path);
            lock (_lock)
            {
                _started = true;
            }

            // Tenants with a WAL from before the restart: resend what no endpoint acknowledged.
            foreach (var dir in Directory.EnumerateDirectories(_config.Path))
            {
                string tenant = Path.GetFileName(dir);
                if (TenantIds.Validate(tenant) is null)
                {
                    Open(tenant);
                }
            }

            return Task.CompletedTask;
        }

        private TenantWal Open(string tenant)
        {
            lock (_lock)
            {
                if (_wals.TryGetValue(tenant, out var existing))
                {
                    return existing;
                }

                if (!_started || _stopped)
                {
                    throw new InvalidOperationException("the metrics-generator storage is not running");
                }

                var wal = new TenantWal(Path.Combine(_config.Path, tenant), tenant, _config.Wal, _endpoints.Select(e => e.Name), _time,
                    (endpoint, dropped) =>
                    {
                        var ep = _endpoints.First(e => e.Name == endpoint);
                        _metrics.Dropped.WithLabels(endpoint, ep.Config.Url).Inc(dropped);
                        _log($"remote write {endpoint} tenant {tenant}: the WAL bound (max_wal_bytes {_config.Wal.MaxWalBytes}, max_wal_time {_config.Wal.MaxWalTime}) dropped {dropped} unsent samples");
                    });
                _wals[tenant] = wal;
                var senders = new List<EndpointSender>();
                foreach (var (name, cfg, client) in _endpoints)
                {
                    var sender = new EndpointSender(wal, client, cfg, name, _metrics, _tenantHeaders, _log, _drain.Task);
                    senders.Add(sender);
                    _senders.Add(Task.Run(() => SuperviseAsync(sender, wal, name)));
                }

                _tenantSenders[tenant] = [.. senders];

                UpdateWalGauges(wal);
                return wal;
            }
        }

        /// <summary>Keeps a sender running: an unexpected error is logged and the sender restarts from its checkpoint.</summary>
        private async Task SuperviseAsync(EndpointSender sender, TenantWal wal, string name)
        {
            while (true)
            {
                try
                {
                    await sender.RunAsync(_hardStop.Token).ConfigureAwait(false);
                    return;
                }
                catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    _log($"remote write {name} tenant {wal.Tenant}: sender failed, restarting from the checkpoint: {e}");
                    wal.Rewind(name);
                    try
                    {
                        await Task.Delay(TimeSpan.FromSeconds(1), _hardStop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            }
        }

        public ValueTask AppendAsync(string tenantId, IReadOnlyList<SeriesSample> samples, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(samples);
            if (TenantIds.Validate(tenantId) is { } problem)
            {
                throw new ArgumentException($"tenant id '{tenantId}': {problem}", nameof(tenantId));
            }

            if (_endpoints.Count == 0 || samples.Count == 0)
            {
                // No endpoint: samples are collected but not sent (Tempo's behaviour without remote_write).
                return ValueTask.CompletedTask;
            }

            cancellationToken.ThrowIfCancellationRequested();
            var wal = Open(tenantId);
            using var writer = new ProtoWriter(Math.Min(samples.Count, _recordSamples) * 128);
            var records = new List<(int Start, int End, int Samples)>(samples.Count / _recordSamples + 1);
            int recordStart = 0;
            int inRecord = 0;
            for (int i = 0; i < samples.Count; i++)
            {
                var s = samples[i];
                PromWire.WriteTimeSeries(writer, s.Labels, _external, s.TimestampMs, s.Value);
                if (++inRecord == _recordSamples)
                {
                    records.Add((recordStart, writer.Length, inRecord));
                    recordStart = writer.Length;
                    inRecord = 0;
                }
            }

            if (inRecord > 0)
            {
                records.Add((recordStart, writer.Length, inRecord));
            }

            var memory = writer.WrittenMemory;
            wal.Append(records.Select(r => (memory[r.Start..r.End], r.Samples)).ToList());
            _metrics.SamplesIn.Inc(samples.Count);
            UpdateWalGauges(wal);
            foreach (var sender in _tenantSenders[tenantId])
            {
                sender.UpdatePending();
            }

            return ValueTask.CompletedTask;
        }

        private void UpdateWalGauges(TenantWal wal)
        {
            _metrics.WalBytes.WithLabels(wal.Tenant).Set(wal.TotalBytes);
            _metrics.WalSegments.WithLabels(wal.Tenant).Set(wal.SegmentCount);
        }

        public long Pending(string tenant, string endpoint) => _wals.TryGetValue(tenant, out var wal) ? wal.Pending(endpoint) : 0;

        public async Task StoppingAsync(Exception? failure)
        {
            Task[] senders;
            lock (_lock)
            {
                _stopped = true;
                senders = [.. _senders];
            }

            // Drain: senders finish the WAL up to its durable end, for at most remote_write_flush_deadline.
            _drain.TrySetResult();
            var all = Task.WhenAll(senders);
            await Task.WhenAny(all, Task.Delay(_config.RemoteWriteFlushDeadline)).ConfigureAwait(false);
            if (!all.IsCompleted)
            {
                long pending = _wals.Values.Sum(w => _endpoints.Sum(e => w.Pending(e.Name)));
                _log($"remote write: flush deadline {_config.RemoteWriteFlushDeadline} passed with {pending} samples unsent; they stay in the WAL and are sent after restart");
            }

            await _hardStop.CancelAsync().ConfigureAwait(false);
            await all.ConfigureAwait(false);
            foreach (var wal in _wals.Values)
            {
                wal.Dispose();
            }

            foreach (var (_, _, client) in _endpoints)
            {
                client.Dispose();
            }

            _hardStop.Dispose();
        }
    }
}
