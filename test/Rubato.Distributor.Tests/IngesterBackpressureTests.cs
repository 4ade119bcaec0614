using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Otlp;
using Rubato.Ingester;
using Rubato.Overrides;
using Rubato.Storage.Backend;
using Rubato.Storage.Wal;
using Xunit;
using IngesterImpl = Rubato.Ingester.Ingester;

namespace Rubato.Distributor.Tests;

/// <summary><c>max_unflushed_bytes</c>: when flushing falls behind, pushes are refused retryably and nothing accepted is lost.</summary>
public sealed class IngesterBackpressureTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly MetricsRegistry _metrics = new();
    private readonly RuntimeOverrides _overrides;

    public IngesterBackpressureTests() => _overrides = new RuntimeOverrides(new OverridesConfig(), _metrics);

    public void Dispose()
    {
        _overrides.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task PushSegmentsAsync_FlushBehindPastMaxUnflushedBytes_RefusesUnavailableThenRecovers()
    {
        var store = new GatedStore(new LocalObjectStore(_dir.Sub("blocks")));
        var config = new IngesterConfig { FlushCheckPeriod = TimeSpan.FromHours(1), MaxBlockBytes = 4096, MaxUnflushedBytes = 16384 };
        var ingester = new IngesterImpl(config, new IngesterOptions { InstanceId = "bp", Wal = new WalOptions { Path = _dir.Sub("wal") }, Store = store }, _overrides, _metrics);
        await ingester.Service.StartAsync(CancellationToken.None);
        var accepted = new List<Rubato.Common.Ids.TraceId>();

        // Block writes are held at the gate, so nothing can be flushed: pushes must start being refused.
        RefusalReason? refused = null;
        for (int i = 0; i < 400 && refused is null; i++)
        {
            var id = TestTraces.NewTraceId();
            using var split = OtlpTraceSplitter.Split(TestTraces.Request(TestTraces.Make(id, spans: 4, attributeBytes: 64)), OtlpSplitOptions.None);
            var r = await ingester.PushSegmentsAsync("t", split.Segments, CancellationToken.None);
            if (r.Refusals is { } refusals)
            {
                refused = refusals[0];
            }
            else
            {
                accepted.Add(id);
            }
        }

        Assert.Equal(RefusalReason.Unavailable, refused);
        Assert.True(_metrics.Counter("rubato_ingester_backpressure_refusals_total", "").Value() >= 1);
        foreach (var id in accepted)
        {
            Assert.NotNull(await ingester.FindTraceByIdAsync("t", id, TimeRange.All, CancellationToken.None));
        }

        // Let the flush through: memory drains below the limit and pushes are accepted again.
        store.Open();
        await Wait.UntilAsync(() => _metrics.Gauge("rubato_ingester_unflushed_bytes", "").Value() < config.MaxUnflushedBytes, TimeSpan.FromSeconds(60), "flushing to drain");
        var again = TestTraces.NewTraceId();
        using (var split = OtlpTraceSplitter.Split(TestTraces.Request(TestTraces.Make(again, spans: 4)), OtlpSplitOptions.None))
        {
            var r = await ingester.PushSegmentsAsync("t", split.Segments, CancellationToken.None);
            Assert.Null(r.Refusals);
        }

        await ingester.Service.StopAsync();
    }

    /// <summary>An object store whose writes wait until <see cref="Open"/> is called.</summary>
    private sealed class GatedStore(IObjectStore inner) : IObjectStore
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _gate.TrySetResult();

        public async Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            await _gate.Task.WaitAsync(ct);
            await inner.PutAsync(key, data, ct);
        }

        public async Task PutAsync(string key, Stream data, CancellationToken ct)
        {
            await _gate.Task.WaitAsync(ct);
            await inner.PutAsync(key, data, ct);
        }

        public Task<byte[]?> GetAsync(string key, CancellationToken ct) => inner.GetAsync(key, ct);

        public Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct) => inner.ReadRangeAsync(key, offset, buffer, ct);

        public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public Task<bool> ExistsAsync(string key, CancellationToken ct) => inner.ExistsAsync(key, ct);

        public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);
    }
}
