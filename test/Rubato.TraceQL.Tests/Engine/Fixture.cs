using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.TraceQL.Tests.Engine;

/// <summary>One span of the fixture with its context, for oracle predicates written against the OTLP model.</summary>
public sealed class FSpan
{
    public required int TraceIndex { get; init; }

    public required Trace Trace { get; init; }

    public required ResourceSpans Resource { get; init; }

    public required ScopeSpans Scope { get; init; }

    public required Span Span { get; init; }

    public string Service => Resource.Resource.ServiceName() ?? string.Empty;

    public ulong Id => Span.SpanId.Value;

    public AnyValue? Attr(string key) => Span.Attributes.FirstOrDefault(a => a.Key == key)?.Value;

    public AnyValue? Res(string key) => Resource.Resource.Attributes.FirstOrDefault(a => a.Key == key)?.Value;

    public long? Int(string key) => Attr(key) is { Kind: AnyValueKind.Int } v ? v.IntValue : null;

    public string? Str(string key) => Attr(key) is { Kind: AnyValueKind.String } v ? v.StringValue : null;

    public double? Dbl(string key) => Attr(key) is { Kind: AnyValueKind.Double } v ? v.DoubleValue : null;

    public ulong DurationNanos => Span.EndTimeUnixNano - Span.StartTimeUnixNano;
}

/// <summary>
/// A deterministic dataset built in code: 36 traces over 4 services with a known tree shape, every attribute type,
/// arrays, events, links, statuses and kinds. Trace t (0-based) has trace id (t % 3 == 0 ? 0 : 0xabc, t + 1) and span
/// ids (t + 1) * 100 + k. Tree (k): 0 root frontend/server → 1 cart/client, 2 checkout/server; 1 → 3 cart/internal,
/// 4 payment/consumer; 2 → 5 payment/producer; 3 → 6 cart/internal. Traces with t % 5 == 4 have no checkout subtree
/// (spans 2 and 5); traces with t % 7 == 3 lack the root span (its children are orphans).
/// </summary>
public static class Fixture
{
    public const int TraceCount = 36;
    public const ulong BaseTime = 1_700_000_000_000_000_000;

    private static readonly string[] s_methods = ["GET", "POST", "PUT", "DELETE"];

    public static readonly Lazy<(List<Trace> Traces, List<FSpan> Spans)> Data = new(Build);

    public static List<Trace> Traces => Data.Value.Traces;

    public static List<FSpan> Spans => Data.Value.Spans;

    public static TraceId TraceIdOf(int t) => new(t % 3 == 0 ? 0UL : 0xabcUL, (ulong)(t + 1));

    public static ulong SpanIdOf(int t, int k) => (ulong)(t + 1) * 100 + (ulong)k;

    public static FSpan? Parent(FSpan s) =>
        s.Span.ParentSpanId.IsEmpty ? null : Spans.FirstOrDefault(p => p.TraceIndex == s.TraceIndex && p.Span.SpanId == s.Span.ParentSpanId);

    public static bool IsAncestor(FSpan ancestor, FSpan s)
    {
        for (var p = Parent(s); p is not null; p = Parent(p))
        {
            if (p == ancestor)
            {
                return true;
            }
        }

        return false;
    }

    public static bool AreSiblings(FSpan a, FSpan b) => a != b && Parent(a) is { } pa && Parent(b) == pa;

    public static int ChildCount(FSpan s) => Spans.Count(c => c.TraceIndex == s.TraceIndex && Parent(c) == s);

    private static (List<Trace>, List<FSpan>) Build()
    {
        var traces = new List<Trace>();
        var all = new List<FSpan>();
        for (int t = 0; t < TraceCount; t++)
        {
            var trace = new Trace();
            var resources = new Dictionary<string, (ResourceSpans Rs, ScopeSpans Ss)>();
            (ResourceSpans, ScopeSpans) ResourceFor(string service)
            {
                if (resources.TryGetValue(service, out var r))
                {
                    return r;
                }

                var rs = new ResourceSpans();
                rs.Resource.Attributes.Add(new("service.name", AnyValue.String(service)));
                rs.Resource.Attributes.Add(new("region", AnyValue.String(t % 2 == 0 ? "eu" : "us")));
                rs.Resource.Attributes.Add(new("pod.count", AnyValue.Int(service.Length + t % 3)));
                var ss = new ScopeSpans();
                ss.Scope.Name = "lib-" + service;
                ss.Scope.Version = "1." + (t % 3);
                ss.Scope.Attributes.Add(new("lib.lang", AnyValue.String(service == "payment" ? "java" : "go")));
                rs.ScopeSpans.Add(ss);
                trace.ResourceSpans.Add(rs);
                resources[service] = (rs, ss);
                return (rs, ss);
            }

            var shape = new (int K, int Parent, string Service, SpanKind Kind)[]
            {
                (0, -1, "frontend", SpanKind.Server),
                (1, 0, "cart", SpanKind.Client),
                (2, 0, "checkout", SpanKind.Server),
                (3, 1, "cart", SpanKind.Internal),
                (4, 1, "payment", SpanKind.Consumer),
                (5, 2, "payment", SpanKind.Producer),
                (6, 3, "cart", SpanKind.Internal),
            };
            ulong traceStart = BaseTime + (ulong)t * 1_000_000_000UL;
            foreach (var (k, parent, service, kind) in shape)
            {
                if (t % 5 == 4 && (k == 2 || k == 5))
                {
                    continue;
                }

                if (t % 7 == 3 && k == 0)
                {
                    continue;
                }

                var (rs, ss) = ResourceFor(service);
                var span = new Span
                {
                    TraceId = TraceIdOf(t),
                    SpanId = new SpanId(SpanIdOf(t, k)),
                    ParentSpanId = parent < 0 ? default : new SpanId(SpanIdOf(t, parent)),
                    Name = k == 0 ? "GET /" + (t % 3) : service + ".op" + k,
                    Kind = kind,
                    StartTimeUnixNano = traceStart + (ulong)k * 1_000_000UL,
                    EndTimeUnixNano = traceStart + (ulong)k * 1_000_000UL + (ulong)((k + 1) * (t % 6 + 1)) * 1_000_000UL + (ulong)t,
                };
                if (service == "payment" && t % 4 == 0)
                {
                    span.StatusCode = StatusCode.Error;
                    span.StatusMessage = "boom";
                }
                else if (k % 3 == 0)
                {
                    span.StatusCode = StatusCode.Ok;
                }

                int[] codes = [200, 404, 500, 201];
                if (k != 6)
                {
                    span.Attributes.Add(new("http.status_code", AnyValue.Int(codes[(t + k) % 4])));
                }

                if (k % 2 == 0 || t % 3 == 1)
                {
                    span.Attributes.Add(new("http.method", AnyValue.String(s_methods[(t + k) % 4])));
                }

                span.Attributes.Add(new("ratio", AnyValue.Double(((t * 7) + k) % 10 / 10.0)));
                if (k != 4)
                {
                    span.Attributes.Add(new("cached", AnyValue.Bool((t + k) % 3 == 0)));
                }

                if (k % 2 == 1)
                {
                    span.Attributes.Add(new("region", AnyValue.String("ap")));
                }

                if (k == 1 || k == 5)
                {
                    string[] tagPool = ["a", "b", "bc", "c"];
                    span.Attributes.Add(new("tags", AnyValue.Array([AnyValue.String(tagPool[t % 4]), AnyValue.String(tagPool[(t + 1) % 4])])));
                    span.Attributes.Add(new("nums", AnyValue.Array([AnyValue.Int(t % 10), AnyValue.Int(k)])));
                    span.Attributes.Add(new("fnums", AnyValue.Array([AnyValue.Double(1.5 * (t % 3)), AnyValue.Double(0.25)])));
                    span.Attributes.Add(new("bools", AnyValue.Array([AnyValue.Bool(t % 2 == 0)])));
                }

                if ((k == 3 || k == 4) && t % 2 == 0)
                {
                    var ev = new SpanEvent { Name = "exception", TimeUnixNano = span.StartTimeUnixNano + (ulong)(t % 3) * 1_000_000UL };
                    ev.Attributes.Add(new("exception.type", AnyValue.String(t % 4 == 0 ? "IOError" : "Timeout")));
                    span.Events.Add(ev);
                    var ev2 = new SpanEvent { Name = "cache.miss", TimeUnixNano = span.StartTimeUnixNano + 500_000UL };
                    ev2.Attributes.Add(new("exception.type", AnyValue.String("none")));
                    span.Events.Add(ev2);
                }

                if (k == 2 && t % 3 == 0)
                {
                    var link = new SpanLink { TraceId = TraceIdOf((t + 1) % TraceCount), SpanId = new SpanId(SpanIdOf((t + 1) % TraceCount, 0)) };
                    link.Attributes.Add(new("link.kind", AnyValue.String(t % 2 == 0 ? "follows" : "child")));
                    span.Links.Add(link);
                }

                ss.Spans.Add(span);
                all.Add(new FSpan { TraceIndex = t, Trace = trace, Resource = rs, Scope = ss, Span = span });
            }

            traces.Add(trace);
        }

        return (traces, all);
    }
}
