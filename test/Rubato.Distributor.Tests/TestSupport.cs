using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Distributor.Tests;

/// <summary>Builds OTLP traces and requests for tests.</summary>
internal static class TestTraces
{
    private static long _next = 1;

    public static TraceId NewTraceId() => new(0xA1B2C3D4_00000000UL | (ulong)Interlocked.Increment(ref _next), (ulong)Interlocked.Increment(ref _next));

    /// <summary>A trace with <paramref name="spans"/> spans (span ids firstSpanId, firstSpanId+1, ...).</summary>
    public static Trace Make(TraceId id, int spans, ulong firstSpanId = 1, string service = "svc", int attributeBytes = 8)
    {
        var trace = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
        var ss = new ScopeSpans();
        ss.Scope.Name = "test";
        for (int i = 0; i < spans; i++)
        {
            var s = new Span
            {
                TraceId = id,
                SpanId = new SpanId(firstSpanId + (ulong)i),
                Name = "op" + i,
                Kind = SpanKind.Server,
                StartTimeUnixNano = 1_700_000_000_000_000_000UL + ((ulong)i * 1000),
                EndTimeUnixNano = 1_700_000_000_000_000_000UL + ((ulong)i * 1000) + 500,
            };
            s.Attributes.Add(new KeyValue("payload", AnyValue.String(new string('x', attributeBytes))));
            ss.Spans.Add(s);
        }

        rs.ScopeSpans.Add(ss);
        trace.ResourceSpans.Add(rs);
        return trace;
    }

    /// <summary>One ExportTraceServiceRequest holding several traces (TracesData is the same bytes).</summary>
    public static byte[] Request(params Trace[] traces)
    {
        var all = new Trace();
        foreach (var t in traces)
        {
            all.ResourceSpans.AddRange(t.ResourceSpans);
        }

        return OtlpProto.EncodeTrace(all);
    }

    public static HashSet<ulong> SpanIds(Trace? trace) => trace is null ? [] : [.. trace.AllSpans().Select(x => x.Span.SpanId.Value)];
}

/// <summary>A clock tests move by hand (BCL TimeProvider; timers are not used by the code under test here).</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = 1_000_000;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(Interlocked.Read(ref _ticks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>A temporary folder removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rubato-dist-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name)
    {
        string p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still open by an abandoned instance.
        }
    }
}

internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until true; fails the test after <paramref name="timeout"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out after {timeout} waiting for {what}");
            }

            await Task.Delay(20);
        }
    }
}
