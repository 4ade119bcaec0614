using System.Text;
using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.Common.Tests.Otlp;

/// <summary>Deterministic random traces (seeded) covering every model field and every AnyValue kind.</summary>
internal static class TraceSamples
{
    private static readonly string[] s_fragments = ["a", "service", "http.method", "é", "中文", "😀", " ", "\"q\"", "\\", "\n", "GET /x?y=1", "0"];

    public static Trace Random(int seed, int maxResources = 3, int maxSpans = 6)
    {
        var rnd = new Random(seed);
        var trace = new Trace();
        int nr = rnd.Next(0, maxResources + 1);
        for (int r = 0; r < nr; r++)
        {
            var rs = new ResourceSpans { SchemaUrl = rnd.Next(3) == 0 ? "https://opentelemetry.io/schemas/1.21.0" : string.Empty };
            rs.Resource.Attributes.AddRange(Attributes(rnd, 0));
            rs.Resource.DroppedAttributesCount = (uint)rnd.Next(0, 3);
            int ns = rnd.Next(0, 3);
            for (int s = 0; s < ns; s++)
            {
                var ss = new ScopeSpans { SchemaUrl = rnd.Next(4) == 0 ? "scope-schema" : string.Empty };
                ss.Scope.Name = Str(rnd);
                ss.Scope.Version = rnd.Next(2) == 0 ? "1.2.3" : string.Empty;
                ss.Scope.Attributes.AddRange(Attributes(rnd, 0));
                ss.Scope.DroppedAttributesCount = (uint)rnd.Next(0, 2);
                int nspans = rnd.Next(0, maxSpans + 1);
                for (int i = 0; i < nspans; i++)
                {
                    ss.Spans.Add(RandomSpan(rnd));
                }

                rs.ScopeSpans.Add(ss);
            }

            trace.ResourceSpans.Add(rs);
        }

        return trace;
    }

    public static Span RandomSpan(Random rnd, TraceId? traceId = null)
    {
        var s = new Span
        {
            TraceId = traceId ?? new TraceId(NonZero(rnd), (ulong)rnd.NextInt64()),
            SpanId = new SpanId(NonZero(rnd)),
            ParentSpanId = rnd.Next(3) == 0 ? default : new SpanId(NonZero(rnd)),
            TraceState = rnd.Next(3) == 0 ? "k=v" : string.Empty,
            Flags = (uint)rnd.Next(0, 3) * 0x101,
            Name = Str(rnd),
            Kind = (SpanKind)rnd.Next(0, 6),
            StartTimeUnixNano = (ulong)rnd.NextInt64(0, long.MaxValue),
            DroppedAttributesCount = (uint)rnd.Next(0, 2),
            DroppedEventsCount = (uint)rnd.Next(0, 2),
            DroppedLinksCount = (uint)rnd.Next(0, 2),
            StatusCode = (StatusCode)rnd.Next(0, 3),
            StatusMessage = rnd.Next(2) == 0 ? Str(rnd) : string.Empty,
        };
        s.EndTimeUnixNano = s.StartTimeUnixNano + (ulong)rnd.Next(0, 1_000_000);
        s.Attributes.AddRange(Attributes(rnd, 0));
        int ne = rnd.Next(0, 3);
        for (int i = 0; i < ne; i++)
        {
            var e = new SpanEvent { TimeUnixNano = (ulong)rnd.NextInt64(), Name = Str(rnd), DroppedAttributesCount = (uint)rnd.Next(0, 2) };
            e.Attributes.AddRange(Attributes(rnd, 0));
            s.Events.Add(e);
        }

        int nl = rnd.Next(0, 3);
        for (int i = 0; i < nl; i++)
        {
            var l = new SpanLink
            {
                TraceId = new TraceId(NonZero(rnd), (ulong)rnd.NextInt64()),
                SpanId = new SpanId(NonZero(rnd)),
                TraceState = rnd.Next(2) == 0 ? "a=b" : string.Empty,
                Flags = (uint)rnd.Next(0, 2),
                DroppedAttributesCount = (uint)rnd.Next(0, 2),
            };
            l.Attributes.AddRange(Attributes(rnd, 0));
            s.Links.Add(l);
        }

        return s;
    }

    private static ulong NonZero(Random rnd) => (ulong)rnd.NextInt64(1, long.MaxValue) | ((ulong)rnd.Next(2) << 63);

    public static string Str(Random rnd)
    {
        int n = rnd.Next(0, 5);
        var sb = new StringBuilder();
        for (int i = 0; i < n; i++)
        {
            sb.Append(s_fragments[rnd.Next(s_fragments.Length)]);
        }

        return sb.ToString();
    }

    private static List<KeyValue> Attributes(Random rnd, int depth)
    {
        var list = new List<KeyValue>();
        int n = rnd.Next(0, depth == 0 ? 5 : 3);
        for (int i = 0; i < n; i++)
        {
            list.Add(new KeyValue(Str(rnd), Value(rnd, depth)));
        }

        return list;
    }

    public static AnyValue Value(Random rnd, int depth)
    {
        int kind = rnd.Next(0, depth >= 3 ? 5 : 8);
        return kind switch
        {
            0 => AnyValue.String(Str(rnd)),
            1 => AnyValue.Bool(rnd.Next(2) == 0),
            2 => AnyValue.Int(rnd.Next(4) switch { 0 => 0, 1 => long.MinValue, 2 => -rnd.NextInt64(), _ => rnd.NextInt64() }),
            3 => AnyValue.Double(rnd.Next(6) switch { 0 => double.NaN, 1 => double.PositiveInfinity, 2 => -0.5, 3 => 1e300, _ => (rnd.NextDouble() - 0.5) * 1e6 }),
            4 => AnyValue.Bytes(RandomBytes(rnd)),
            5 => AnyValue.Array(Enumerable.Range(0, rnd.Next(0, 3)).Select(_ => Value(rnd, depth + 1)).ToList()),
            6 => AnyValue.KvList(Attributes(rnd, depth + 1)),
            _ => AnyValue.EmptyValue,
        };
    }

    private static byte[] RandomBytes(Random rnd)
    {
        var b = new byte[rnd.Next(0, 6)];
        rnd.NextBytes(b);
        return b;
    }
}

/// <summary>Structural comparison of models that names the first difference.</summary>
internal static class ModelDiff
{
    public static string? Diff(Trace a, Trace b)
    {
        if (a.ResourceSpans.Count != b.ResourceSpans.Count)
        {
            return $"resourceSpans count {a.ResourceSpans.Count} != {b.ResourceSpans.Count}";
        }

        for (int i = 0; i < a.ResourceSpans.Count; i++)
        {
            var x = a.ResourceSpans[i];
            var y = b.ResourceSpans[i];
            string p = $"rs[{i}]";
            string? d = Check(p + ".schemaUrl", x.SchemaUrl, y.SchemaUrl)
                ?? Attrs(p + ".resource", x.Resource.Attributes, y.Resource.Attributes)
                ?? Check(p + ".resource.dropped", x.Resource.DroppedAttributesCount, y.Resource.DroppedAttributesCount)
                ?? Check(p + ".scopeSpans.count", x.ScopeSpans.Count, y.ScopeSpans.Count);
            if (d is not null)
            {
                return d;
            }

            for (int j = 0; j < x.ScopeSpans.Count; j++)
            {
                var xs = x.ScopeSpans[j];
                var ys = y.ScopeSpans[j];
                string q = $"{p}.ss[{j}]";
                d = Check(q + ".schemaUrl", xs.SchemaUrl, ys.SchemaUrl)
                    ?? Check(q + ".scope.name", xs.Scope.Name, ys.Scope.Name)
                    ?? Check(q + ".scope.version", xs.Scope.Version, ys.Scope.Version)
                    ?? Attrs(q + ".scope", xs.Scope.Attributes, ys.Scope.Attributes)
                    ?? Check(q + ".scope.dropped", xs.Scope.DroppedAttributesCount, ys.Scope.DroppedAttributesCount)
                    ?? Check(q + ".spans.count", xs.Spans.Count, ys.Spans.Count);
                if (d is not null)
                {
                    return d;
                }

                for (int k = 0; k < xs.Spans.Count; k++)
                {
                    d = SpanDiff($"{q}.spans[{k}]", xs.Spans[k], ys.Spans[k]);
                    if (d is not null)
                    {
                        return d;
                    }
                }
            }
        }

        return null;
    }

    public static string? SpanDiff(string p, Span a, Span b)
    {
        string? d = Check(p + ".traceId", a.TraceId, b.TraceId)
            ?? Check(p + ".spanId", a.SpanId, b.SpanId)
            ?? Check(p + ".parent", a.ParentSpanId, b.ParentSpanId)
            ?? Check(p + ".traceState", a.TraceState, b.TraceState)
            ?? Check(p + ".flags", a.Flags, b.Flags)
            ?? Check(p + ".name", a.Name, b.Name)
            ?? Check(p + ".kind", a.Kind, b.Kind)
            ?? Check(p + ".start", a.StartTimeUnixNano, b.StartTimeUnixNano)
            ?? Check(p + ".end", a.EndTimeUnixNano, b.EndTimeUnixNano)
            ?? Attrs(p, a.Attributes, b.Attributes)
            ?? Check(p + ".droppedAttrs", a.DroppedAttributesCount, b.DroppedAttributesCount)
            ?? Check(p + ".droppedEvents", a.DroppedEventsCount, b.DroppedEventsCount)
            ?? Check(p + ".droppedLinks", a.DroppedLinksCount, b.DroppedLinksCount)
            ?? Check(p + ".status", a.StatusCode, b.StatusCode)
            ?? Check(p + ".statusMessage", a.StatusMessage, b.StatusMessage)
            ?? Check(p + ".events.count", a.Events.Count, b.Events.Count)
            ?? Check(p + ".links.count", a.Links.Count, b.Links.Count);
        if (d is not null)
        {
            return d;
        }

        for (int i = 0; i < a.Events.Count; i++)
        {
            var x = a.Events[i];
            var y = b.Events[i];
            d = Check($"{p}.ev[{i}].time", x.TimeUnixNano, y.TimeUnixNano)
                ?? Check($"{p}.ev[{i}].name", x.Name, y.Name)
                ?? Attrs($"{p}.ev[{i}]", x.Attributes, y.Attributes)
                ?? Check($"{p}.ev[{i}].dropped", x.DroppedAttributesCount, y.DroppedAttributesCount);
            if (d is not null)
            {
                return d;
            }
        }

        for (int i = 0; i < a.Links.Count; i++)
        {
            var x = a.Links[i];
            var y = b.Links[i];
            d = Check($"{p}.ln[{i}].traceId", x.TraceId, y.TraceId)
                ?? Check($"{p}.ln[{i}].spanId", x.SpanId, y.SpanId)
                ?? Check($"{p}.ln[{i}].traceState", x.TraceState, y.TraceState)
                ?? Check($"{p}.ln[{i}].flags", x.Flags, y.Flags)
                ?? Attrs($"{p}.ln[{i}]", x.Attributes, y.Attributes)
                ?? Check($"{p}.ln[{i}].dropped", x.DroppedAttributesCount, y.DroppedAttributesCount);
            if (d is not null)
            {
                return d;
            }
        }

        return null;
    }

    private static string? Attrs(string p, List<KeyValue> a, List<KeyValue> b) =>
        a.SequenceEqual(b) ? null : $"{p}.attributes differ: [{string.Join(",", a)}] vs [{string.Join(",", b)}]";

    private static string? Check<T>(string p, T a, T b) => EqualityComparer<T>.Default.Equals(a, b) ? null : $"{p}: {a} != {b}";
}
