namespace Rubato.RemoteWrite;

/// <summary>
/// Sends one tenant's WAL to one endpoint, strictly in WAL order: read a batch, send it until it is acknowledged
/// or rejected for good, commit the checkpoint, repeat. One request in flight per (tenant, endpoint) keeps every
/// series' samples in timestamp order, which Prometheus requires.
/// </summary>
/// <remarks>Runs on its own task (<see cref="RunAsync"/>), started by <see cref="RemoteWriteStorage"/>.</remarks>
internal sealed class EndpointSender
{
    private readonly TenantWal _wal;
    private readonly RemoteWriteClient _client;
    private readonly RemoteWriteEndpointConfig _config;
    private readonly string _name;
    private readonly RemoteWriteMetrics _metrics;
    private readonly Func<string, IReadOnlyDictionary<string, string>?>? _tenantHeaders;
    private readonly Action<string> _log;
    private readonly Task _drain;
    private readonly List<Range> _items = [];

    public EndpointSender(TenantWal wal, RemoteWriteClient client, RemoteWriteEndpointConfig config, string name, RemoteWriteMetrics metrics,
        Func<string, IReadOnlyDictionary<string, string>?>? tenantHeaders, Action<string> log, Task drain)
    {
        _wal = wal;
        _client = client;
        _config = config;
        _name = name;
        _metrics = metrics;
        _tenantHeaders = tenantHeaders;
        _log = log;
        _drain = drain;
    }

    private readonly object _pendingLock = new();
    private long _lastPending;

    /// <summary>
    /// Sends until <paramref name="hardStop"/> is cancelled, or, once the drain task completes, until the WAL is
    /// sent up to its durable end.
    /// </summary>
    public async Task RunAsync(CancellationToken hardStop)
    {
        using var batch = new WalBatch();
        var backoff = _config.QueueConfig.MinBackoff;
        UpdatePending();
        while (!hardStop.IsCancellationRequested)
        {
            var dataArrived = _wal.WaitForDataAsync();
            bool got;
            try
            {
                got = _wal.ReadBatch(_name, _config.QueueConfig.MaxSamplesPerSend, batch);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                _log($"remote write {_name} tenant {_wal.Tenant}: reading the WAL failed, retrying in {backoff}: {e.Message}");
                _wal.Rewind(_name);
                await Task.Delay(backoff, hardStop).ConfigureAwait(false);
                backoff = Next(backoff);
                continue;
            }

            backoff = _config.QueueConfig.MinBackoff;
            if (!got)
            {
                UpdatePending();
                if (_drain.IsCompleted)
                {
                    return;
                }

                await Task.WhenAny(dataArrived, _drain).WaitAsync(hardStop).ConfigureAwait(false);
                continue;
            }

            bool resend = batch.Start < _wal.EndAtOpen;
            await SendAsync(batch.Body, batch.Samples, resend, hardStop).ConfigureAwait(false);
            _wal.Commit(_name, batch);
            UpdatePending();
        }
    }

    private TimeSpan Next(TimeSpan backoff)
    {
        var doubled = backoff * 2;
        return doubled > _config.QueueConfig.MaxBackoff ? _config.QueueConfig.MaxBackoff : doubled;
    }

    /// <summary>
    /// Refreshes this (tenant, endpoint)'s share of the pending gauge. Called by the sender after each commit and by
    /// the appender after each append (so an outage shows as growing pending while the sender is retrying).
    /// </summary>
    public void UpdatePending()
    {
        lock (_pendingLock)
        {
            long pending = _wal.Pending(_name);
            _metrics.Pending.WithLabels(_name, _client.Url).Add(pending - _lastPending);
            _lastPending = pending;
        }
    }

    /// <summary>
    /// Sends one body until it is acknowledged or rejected for good. Recoverable failures retry with exponential
    /// backoff (min_backoff doubling to max_backoff) for as long as it takes: the WAL bound, not a retry limit,
    /// decides when samples are given up. An ordering rejection rolls the whole request back in Prometheus, so the
    /// body is split in halves (each a contiguous run of timeseries, keeping WAL order) until the rejected samples
    /// are isolated: after a crash those are the already-ingested samples and count as acknowledged.
    /// </summary>
    private async Task SendAsync(ReadOnlyMemory<byte> body, int samples, bool resend, CancellationToken ct)
    {
        var backoff = _config.QueueConfig.MinBackoff;
        var labels = new[] { _name, _client.Url };
        while (true)
        {
            var result = await _client.SendAsync(_wal.Tenant, body, _tenantHeaders?.Invoke(_wal.Tenant), ct).ConfigureAwait(false);
            switch (result.Outcome)
            {
                case SendOutcome.Success:
                    _metrics.Sent.WithLabels(labels).Inc(samples);
                    return;
                case SendOutcome.Retry:
                    _metrics.Retried.WithLabels(labels).Inc(samples);
                    _log($"remote write {_name} tenant {_wal.Tenant}: {Describe(result)}; retrying {samples} samples in {backoff}");
                    await Task.Delay(backoff, ct).ConfigureAwait(false);
                    backoff = Next(backoff);
                    continue;
                case SendOutcome.OutOfOrder:
                    _items.Clear();
                    PromWire.SplitTimeSeries(body.Span, _items);
                    if (_items.Count > 1)
                    {
                        int mid = _items.Count / 2;
                        var first = body[_items[0].Start.Value.._items[mid - 1].End.Value];
                        var second = body[_items[mid].Start.Value.._items[^1].End.Value];
                        int secondCount = _items.Count - mid;
                        await SendAsync(first, mid, resend, ct).ConfigureAwait(false);
                        await SendAsync(second, secondCount, resend, ct).ConfigureAwait(false);
                        return;
                    }

                    if (resend)
                    {
                        _metrics.AlreadyIngested.WithLabels(labels).Inc(samples);
                    }
                    else
                    {
                        _metrics.Failed.WithLabels(labels).Inc(samples);
                        _log($"remote write {_name} tenant {_wal.Tenant}: {Describe(result)}; dropped {samples} samples");
                    }

                    return;
                default:
                    _metrics.Failed.WithLabels(labels).Inc(samples);
                    _log($"remote write {_name} tenant {_wal.Tenant}: {Describe(result)}; dropped {samples} samples");
                    return;
            }
        }
    }

    private static string Describe(SendResult r) => r.StatusCode == 0 ? r.Message : $"HTTP {r.StatusCode} {r.Message}";
}
