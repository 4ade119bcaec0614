using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.TraceQL.Tests.Metrics;

/// <summary>One generated span, flat, for the independent computations of the tests.</summary>
public sealed record GSpan(int Trace, string Service, SpanKind Kind, bool Error, ulong Start, ulong Duration, long? Size);

/// <summary>
/// A seeded dataset for metrics tests: traces spread over ten minutes from <see cref="T0"/>, five services, random
/// kinds, 10% errors, durations log-uniform from 1 µs to 10 s, and an int attribute <c>size</c> on most spans.
/// </summary>
public static class MetricsData
{
    public const ulong T0 = 1_700_000_040_000_000_000; // a multiple of 60 s
    public static readonly string[] Services = ["api", "cart", "db", "mail", "web"];

    public static (List<Trace> Traces, List<GSpan> Spans) Generate(int traces, int seed)
    {
        var rnd = new Random(seed);
        var list = new List<Trace>();
        var spans = new List<GSpan>();
        for (int t = 0; t < traces; t++)
        {
            var trace = new Trace();
            int n = rnd.Next(1, 9);
            ulong traceStart = T0 + (ulong)rnd.NextInt64(0, 600_000_000_000);
            var byService = new Dictionary<string, ScopeSpans>();
            for (int k = 0; k < n; k++)
            {
                string service = Services[rnd.Next(Services.Length)];
                if (!byService.TryGetValue(service, out var ss))
                {
                    var rs = new ResourceSpans();
                    rs.Resource.Attributes.Add(new("service.name", AnyValue.String(service)));
                    ss = new ScopeSpans();
                    rs.ScopeSpans.Add(ss);
                    trace.ResourceSpans.Add(rs);
                    byService[service] = ss;
                }

                var kind = (SpanKind)rnd.Next(1, 4); // internal, server, client
                bool error = rnd.NextDouble() < 0.1;
                ulong start = traceStart + (ulong)rnd.NextInt64(0, 2_000_000_000);
                ulong duration = (ulong)Math.Exp(rnd.NextDouble() * Math.Log(1e7)) * 1000; // 1 µs .. 10 s
                long? size = rnd.NextDouble() < 0.8 ? rnd.Next(0, 5000) : null;
                var span = new Span
                {
                    TraceId = new TraceId(0x1234, (ulong)t + 1),
                    SpanId = new SpanId(((ulong)t + 1) * 100 + (ulong)k),
                    ParentSpanId = k == 0 ? default : new SpanId(((ulong)t + 1) * 100),
                    Name = "op" + rnd.Next(3),
                    Kind = kind,
                    StartTimeUnixNano = start,
                    EndTimeUnixNano = start + duration,
                    StatusCode = error ? StatusCode.Error : StatusCode.Unset,
                };
                if (size is { } sz)
                {
                    span.Attributes.Add(new("size", AnyValue.Int(sz)));
                }

                ss.Spans.Add(span);
                spans.Add(new GSpan(t, service, kind, error, start, duration, size));
            }

            list.Add(trace);
        }

        return (list, spans);
    }
}
