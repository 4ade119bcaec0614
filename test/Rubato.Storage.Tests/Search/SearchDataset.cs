using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;

namespace Rubato.Storage.Tests.Search;

/// <summary>
/// Deterministic traces for search tests: several services, every attribute type (string, int, double, bool, arrays,
/// bytes, kvlist, empty) at every level, duplicate keys, unscoped shadowing, events, links, every status and kind,
/// multi-root and rootless traces. Returned in trace-id order (the order a block yields them).
/// </summary>
public static class SearchDataset
{
    public const ulong BaseNanos = 1_700_000_000_000_000_000UL;

    public static readonly string[] Services = ["frontend", "cart", "checkout", "db", "auth"];

    public static readonly string[] SpanNames = ["GET /1", "GET /2", "POST /cart", "db.query", "cart.op1", "auth.check"];

    public static List<(TraceId Id, Trace Trace)> Generate(int traces, int seed, int maxSpans = 12)
    {
        var rnd = new Random(seed);
        var result = new List<(TraceId, Trace)>(traces);
        for (int t = 0; t < traces; t++)
        {
            var id = new TraceId(0x0100_0000_0000_0000UL + ((ulong)t * 0x1_0000_0000UL) + (ulong)rnd.Next(1 << 20), (ulong)rnd.NextInt64());
            result.Add((id, MakeTrace(rnd, id, t, maxSpans)));
        }

        result.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return result;
    }

    /// <summary>Writes a block of the traces and opens it.</summary>
    public static async Task<BackendBlockV1> WriteBlockAsync(
        IObjectStore store, IEnumerable<(TraceId Id, Trace Trace)> traces, int rowGroupBytes, BlockCompression compression = BlockCompression.Brotli, Action<BlockBuilderOptions>? configure = null)
    {
        var opts = new BlockBuilderOptions { TenantId = "search", BlockId = Guid.NewGuid(), RowGroupSizeBytes = rowGroupBytes, Compression = compression };
        configure?.Invoke(opts);
        using var builder = Encodings.Default.CreateBlockBuilder(opts);
        foreach (var (id, trace) in traces)
        {
            builder.AddTrace(id, trace);
        }

        var meta = await builder.WriteAsync(store, CancellationToken.None);
        return (BackendBlockV1)Encodings.FromVersion(meta.Version).OpenBlock(meta, store);
    }

    private static Trace MakeTrace(Random rnd, TraceId id, int index, int maxSpans)
    {
        var trace = new Trace();
        int spanCount = rnd.Next(1, maxSpans + 1);
        ulong traceStart = BaseNanos + ((ulong)index * 1_000_000_000UL) + (ulong)rnd.Next(1_000_000);
        int resources = rnd.Next(1, 4);
        var all = new List<Span>();
        ulong nextSpanId = ((ulong)index << 16) + 1;
        for (int r = 0; r < resources; r++)
        {
            var rs = new ResourceSpans();
            int shape = rnd.Next(10);
            if (shape != 0)
            {
                rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(Services[rnd.Next(Services.Length)])));
            }

            rs.Resource.Attributes.Add(new KeyValue("region", AnyValue.String(rnd.Next(3) switch { 0 => "eu", 1 => "us", _ => "ap" })));
            rs.Resource.Attributes.Add(new KeyValue("pod.count", AnyValue.Int(rnd.Next(10))));
            if (rnd.Next(2) == 0)
            {
                rs.Resource.Attributes.Add(new KeyValue("cloud.enabled", AnyValue.Bool(rnd.Next(2) == 0)));
            }

            if (rnd.Next(3) == 0)
            {
                rs.Resource.Attributes.Add(new KeyValue("weight", AnyValue.Double(rnd.Next(100) / 10.0)));
            }

            int scopes = rnd.Next(1, 3);
            for (int sc = 0; sc < scopes; sc++)
            {
                var ss = new ScopeSpans();
                ss.Scope.Name = rnd.Next(2) == 0 ? "lib-a" : "lib-b";
                ss.Scope.Version = rnd.Next(2) == 0 ? "1.0" : "2.0";
                if (rnd.Next(2) == 0)
                {
                    ss.Scope.Attributes.Add(new KeyValue("scope.attr", AnyValue.String(rnd.Next(2) == 0 ? "x" : "y")));
                }

                rs.ScopeSpans.Add(ss);
            }

            trace.ResourceSpans.Add(rs);
        }

        for (int i = 0; i < spanCount; i++)
        {
            var rs = trace.ResourceSpans[rnd.Next(trace.ResourceSpans.Count)];
            var ss = rs.ScopeSpans[rnd.Next(rs.ScopeSpans.Count)];
            ulong start = traceStart + (ulong)rnd.Next(50_000_000);
            ulong dur = rnd.Next(20) switch
            {
                0 => (ulong)rnd.NextInt64(1_000_000_000, 3_000_000_000),
                < 5 => (ulong)rnd.Next(10_000_000, 60_000_000),
                _ => (ulong)rnd.Next(0, 10_000_000),
            };
            var s = new Span
            {
                TraceId = id,
                SpanId = new SpanId(nextSpanId++),
                Name = SpanNames[rnd.Next(SpanNames.Length)],
                Kind = (SpanKind)rnd.Next(6),
                StartTimeUnixNano = start,
                EndTimeUnixNano = start + dur,
                StatusCode = (StatusCode)rnd.Next(3),
                StatusMessage = rnd.Next(5) == 0 ? "boom" : string.Empty,
            };

            // Tree: the first span is the root (sometimes missing: parent id not in the trace), later spans pick a parent.
            if (i == 0)
            {
                s.ParentSpanId = rnd.Next(8) == 0 ? new SpanId(0xDEAD_0000UL + (ulong)index) : default;
            }
            else
            {
                s.ParentSpanId = rnd.Next(12) == 0 ? default : all[rnd.Next(all.Count)].SpanId;
            }

            AddSpanAttributes(rnd, s);
            int events = rnd.Next(4) == 0 ? rnd.Next(1, 3) : 0;
            for (int e = 0; e < events; e++)
            {
                var ev = new SpanEvent { Name = rnd.Next(2) == 0 ? "exception" : "log", TimeUnixNano = start + (ulong)rnd.Next((int)Math.Min(dur + 1, int.MaxValue)) };
                if (rnd.Next(2) == 0)
                {
                    ev.Attributes.Add(new KeyValue("exception.type", AnyValue.String(rnd.Next(2) == 0 ? "IOException" : "Timeout")));
                }

                ev.Attributes.Add(new KeyValue("level", AnyValue.Int(rnd.Next(5))));
                s.Events.Add(ev);
            }

            if (rnd.Next(5) == 0)
            {
                var link = new SpanLink { TraceId = new TraceId(0xAB, (ulong)rnd.Next(4)), SpanId = new SpanId((ulong)rnd.Next(1, 4)) };
                link.Attributes.Add(new KeyValue("link.kind", AnyValue.String(rnd.Next(2) == 0 ? "follows" : "child")));
                s.Links.Add(link);
            }

            ss.Spans.Add(s);
            all.Add(s);
        }

        return trace;
    }

    private static void AddSpanAttributes(Random rnd, Span s)
    {
        var a = s.Attributes;
        if (rnd.Next(4) != 0)
        {
            a.Add(new KeyValue("http.method", AnyValue.String(rnd.Next(3) switch { 0 => "GET", 1 => "POST", _ => "PUT" })));
        }

        switch (rnd.Next(6))
        {
            case 0: break;
            case 1: a.Add(new KeyValue("http.status_code", AnyValue.String("200"))); break;
            default: a.Add(new KeyValue("http.status_code", AnyValue.Int(new[] { 200, 201, 404, 500, 503 }[rnd.Next(5)]))); break;
        }

        if (rnd.Next(2) == 0)
        {
            a.Add(new KeyValue("ratio", AnyValue.Double(rnd.Next(11) / 10.0)));
        }

        if (rnd.Next(3) == 0)
        {
            a.Add(new KeyValue("flag", AnyValue.Bool(rnd.Next(2) == 0)));
        }

        if (rnd.Next(4) == 0)
        {
            // Shadows the resource attribute for unscoped '.region'.
            a.Add(new KeyValue("region", AnyValue.String("span-" + (rnd.Next(2) == 0 ? "eu" : "us"))));
        }

        if (rnd.Next(4) == 0)
        {
            a.Add(new KeyValue("tags", AnyValue.Array([AnyValue.String("a"), AnyValue.String(rnd.Next(2) == 0 ? "b" : "c")])));
        }

        if (rnd.Next(4) == 0)
        {
            a.Add(new KeyValue("nums", AnyValue.Array([AnyValue.Int(rnd.Next(5)), AnyValue.Int(7)])));
        }

        if (rnd.Next(8) == 0)
        {
            a.Add(new KeyValue("payload", AnyValue.Bytes([1, 2, 3])));
        }

        if (rnd.Next(8) == 0)
        {
            a.Add(new KeyValue("kv", AnyValue.KvList([new KeyValue("x", AnyValue.Int(1))])));
        }

        if (rnd.Next(10) == 0)
        {
            a.Add(new KeyValue("empty", AnyValue.EmptyValue));
        }

        if (rnd.Next(10) == 0)
        {
            // Duplicate key: the first wins.
            a.Add(new KeyValue("http.method", AnyValue.String("DUP")));
        }

        if (rnd.Next(50) == 0)
        {
            a.Add(new KeyValue("needle", AnyValue.String("found-" + rnd.Next(3))));
        }
    }
}
