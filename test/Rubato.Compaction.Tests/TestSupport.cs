using Rubato.BackendWorker;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Overrides;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;

namespace Rubato.Compaction.Tests;

/// <summary>A temporary folder deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rubato-compaction-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}

/// <summary>A clock tests move by hand; timers (PeriodicTimer, Task.Delay) still run on real time.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>A real LocalObjectStore in a temp dir, real overrides and helpers to write real blocks.</summary>
public sealed class Fixture : IDisposable
{
    public const string Tenant = "single-tenant";

    private readonly TempDir _dir = new();

    /// <param name="runtimeOverrides">Text of a runtime overrides file (per-tenant limits), or null for none.</param>
    public Fixture(DateTimeOffset? now = null, TenantLimits? defaults = null, string? runtimeOverrides = null)
    {
        Store = new LocalObjectStore(Path.Combine(_dir.Path, "store"));
        Clock = new ManualClock(now ?? new DateTimeOffset(2026, 11, 20, 12, 0, 0, TimeSpan.Zero));
        var config = new OverridesConfig { Defaults = defaults ?? new TenantLimits() };
        if (runtimeOverrides is not null)
        {
            config.PerTenantOverrideConfig = Path.Combine(_dir.Path, "overrides.yaml");
            File.WriteAllText(config.PerTenantOverrideConfig, runtimeOverrides);
        }

        Overrides = new RuntimeOverrides(config, new MetricsRegistry());
        if (runtimeOverrides is not null && !Overrides.ReloadNow())
        {
            throw new InvalidOperationException("runtime overrides did not load: " + Overrides.LastError);
        }
    }

    public LocalObjectStore Store { get; }

    public ManualClock Clock { get; }

    public RuntimeOverrides Overrides { get; }

    public string Dir => _dir.Path;

    public BlockCompactor Compactor(Func<CompactionStep, Guid, CancellationToken, ValueTask>? step = null, MetricsRegistry? metrics = null) =>
        new(Store, Overrides, new BlockCompactorOptions { StepCompleted = step, RowGroupSizeBytes = 4096 }, Clock, metrics);

    public void Dispose()
    {
        Overrides.Dispose();
        _dir.Dispose();
    }

    /// <summary>Writes a level-<paramref name="level"/> block holding <paramref name="traces"/> (any order).</summary>
    public async Task<BlockMeta> WriteBlockAsync(IEnumerable<(TraceId Id, Trace Trace)> traces, uint level = 0, string tenant = Tenant)
    {
        using var b = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = tenant, CompactionLevel = level, RowGroupSizeBytes = 4096 });
        foreach (var (id, t) in traces.OrderBy(x => x.Id))
        {
            b.AddTrace(id, t);
        }

        return await b.WriteAsync(Store, CancellationToken.None);
    }

    /// <summary>The spans of every trace in the tenant's live blocks, read straight from the blocks (duplicates included).</summary>
    public async Task<List<(TraceId Trace, SpanId Span, SpanKind Kind)>> StoredSpansAsync(string tenant = Tenant)
    {
        var poller = new BlocklistPoller(Store, BlocklistPollMode.Listing);
        var list = await poller.ListTenantAsync(tenant, CancellationToken.None);
        var result = new List<(TraceId, SpanId, SpanKind)>();
        foreach (var meta in list.Live)
        {
            await foreach (var (id, t) in Encodings.FromVersion(meta.Version).OpenBlock(meta, Store).IterateAsync(CancellationToken.None))
            {
                result.AddRange(t.AllSpans().Select(s => (id, s.Span.SpanId, s.Span.Kind)));
            }
        }

        return result;
    }
}

public static class Traces
{
    public static TraceId Id(int n) => new(0x1000 + (ulong)n, (ulong)n * 7919);

    /// <summary>A trace of one service with spans <paramref name="spanIds"/>, starting at <paramref name="startUnixSeconds"/>.</summary>
    public static Trace Make(TraceId id, long startUnixSeconds, string service, params ulong[] spanIds)
    {
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
        var ss = new ScopeSpans { Scope = new InstrumentationScope { Name = "test" } };
        foreach (ulong s in spanIds)
        {
            var span = new Span
            {
                TraceId = id,
                SpanId = new SpanId(s),
                Name = "op-" + s,
                Kind = SpanKind.Server,
                StartTimeUnixNano = (ulong)startUnixSeconds * 1_000_000_000UL + s,
                EndTimeUnixNano = ((ulong)startUnixSeconds + 2) * 1_000_000_000UL + s,
            };
            span.Attributes.Add(new KeyValue("k", AnyValue.String("value-" + s)));
            ss.Spans.Add(span);
        }

        rs.ScopeSpans.Add(ss);
        var t = new Trace();
        t.ResourceSpans.Add(rs);
        return t;
    }
}
