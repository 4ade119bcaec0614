using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Overrides;

namespace Rubato.MetricsGenerator.Tests;

/// <summary>A clock tests move by hand; starts at 2026-01-01T00:00:30Z.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = TimeSpan.FromSeconds(30).Ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(Interlocked.Read(ref _ticks));

    public long NowMs => GetUtcNow().ToUnixTimeMilliseconds();

    public ulong NowNanos => (ulong)GetUtcNow().ToUnixTimeMilliseconds() * 1_000_000UL;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>Describes one span for <see cref="Spans.Encode"/>.</summary>
internal sealed record SpanSpec(
    string Service,
    string Name,
    SpanKind Kind,
    TraceId TraceId,
    ulong SpanId,
    ulong ParentSpanId,
    ulong StartNanos,
    ulong DurationNanos,
    StatusCode Status = StatusCode.Unset,
    string StatusMessage = "",
    (string Key, AnyValue Value)[]? Attributes = null,
    (string Key, AnyValue Value)[]? ResourceAttributes = null);

internal static class Spans
{
    private static long _next = 1;

    public static TraceId NewTraceId() => new(0xC0FFEE00_00000000UL | (ulong)Interlocked.Increment(ref _next), (ulong)Interlocked.Increment(ref _next));

    /// <summary>tempopb.Trace bytes: one ResourceSpans per span (resource = service.name + extra attributes).</summary>
    public static byte[] Encode(params SpanSpec[] specs)
    {
        var trace = new Trace();
        foreach (var s in specs)
        {
            var rs = new ResourceSpans();
            rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(s.Service)));
            foreach (var (k, v) in s.ResourceAttributes ?? [])
            {
                rs.Resource.Attributes.Add(new KeyValue(k, v));
            }

            var span = new Span
            {
                TraceId = s.TraceId,
                SpanId = new SpanId(s.SpanId),
                ParentSpanId = new SpanId(s.ParentSpanId),
                Name = s.Name,
                Kind = s.Kind,
                StartTimeUnixNano = s.StartNanos,
                EndTimeUnixNano = s.StartNanos + s.DurationNanos,
                StatusCode = s.Status,
                StatusMessage = s.StatusMessage,
            };
            foreach (var (k, v) in s.Attributes ?? [])
            {
                span.Attributes.Add(new KeyValue(k, v));
            }

            var ss = new ScopeSpans();
            ss.Scope.Name = "test";
            ss.Spans.Add(span);
            rs.ScopeSpans.Add(ss);
            trace.ResourceSpans.Add(rs);
        }

        return OtlpProto.EncodeTrace(trace);
    }
}

/// <summary>A generator over real overrides whose defaults enable the given processors.</summary>
internal sealed class GeneratorFixture : IDisposable
{
    public GeneratorFixture(string[] processors, Action<MetricsGeneratorConfig>? configure = null, Action<TenantLimits>? limits = null)
    {
        var overridesConfig = new OverridesConfig();
        overridesConfig.Defaults.MetricsGenerator.Processors = [.. processors];
        limits?.Invoke(overridesConfig.Defaults);
        Overrides = new RuntimeOverrides(overridesConfig, Metrics);
        Config = new MetricsGeneratorConfig();
        configure?.Invoke(Config);
        Generator = new MetricsGenerator(Config, Overrides, Metrics, appender: null, time: Clock);
    }

    public ManualClock Clock { get; } = new();

    public MetricsRegistry Metrics { get; } = new();

    public RuntimeOverrides Overrides { get; }

    public MetricsGeneratorConfig Config { get; }

    public MetricsGenerator Generator { get; }

    public void Push(string tenant, params SpanSpec[] spans) => Generator.Process(tenant, Spans.Encode(spans));

    /// <summary>Runs a registry collection at the clock's now (stale removal included) and returns the samples.</summary>
    public List<SeriesSample> Collect(string tenant)
    {
        return Generator.Inspect(tenant, r =>
        {
            var samples = new List<SeriesSample>();
            Generator.Tenant(tenant).Collect(Clock.NowMs, samples);
            return samples;
        });
    }

    /// <summary>The latest sample of the series with exactly these labels (besides __name__), or null.</summary>
    public static double? Value(IEnumerable<SeriesSample> samples, string name, params (string Name, string Value)[] labels)
    {
        double? found = null;
        foreach (var s in samples)
        {
            if (Matches(s, name, labels))
            {
                found = s.Value;
            }
        }

        return found;
    }

    public static bool Matches(SeriesSample s, string name, (string Name, string Value)[] labels)
    {
        var expected = labels.Select(l => new SeriesLabel(l.Name, l.Value)).Append(new SeriesLabel("__name__", name))
            .Where(l => l.Value.Length > 0).OrderBy(l => l.Name, StringComparer.Ordinal).ToArray();
        return s.Labels.AsSpan().SequenceEqual(expected);
    }

    public void Dispose() => Overrides.Dispose();
}
