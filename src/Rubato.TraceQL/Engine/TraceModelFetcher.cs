using System.Runtime.CompilerServices;
using Rubato.Common.Model;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>
/// <see cref="ISpansetFetcher"/> over in-memory <see cref="Trace"/>s (live traces, the WAL, tests) and the reference
/// implementation of the fetch contract: builds every span (all fields, nested sets and child counts over the whole
/// trace), then keeps the spans <see cref="FetchSpansRequest.Selects"/> via <see cref="Condition.CouldMatch(EvalSpan)"/>.
/// One <see cref="Trace"/> is one trace (the caller combines segments first); traces outside the time range are skipped.
/// </summary>
/// <remarks>Cost: allocates an EvalSpan and attribute bags per span; fine for live data, not for block scans.</remarks>
public sealed class TraceModelFetcher : ISpansetFetcher
{
    private readonly IAsyncEnumerable<Trace> _traces;

    public TraceModelFetcher(IEnumerable<Trace> traces)
    {
        ArgumentNullException.ThrowIfNull(traces);
        _traces = ToAsync(traces);
    }

    public TraceModelFetcher(IAsyncEnumerable<Trace> traces)
    {
        _traces = traces ?? throw new ArgumentNullException(nameof(traces));
    }

    /// <summary>Traces yielded so far (for tests of early stopping).</summary>
    public int TracesRead { get; private set; }

    public async IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        bool everything = request.FetchesEverything;
        var results = new bool[request.Conditions.Count];
        await foreach (var trace in _traces.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            TracesRead++;
            var spans = Build(trace, out var info);
            if (spans.Count == 0)
            {
                continue;
            }

            if (request.EndUnixNanos > 0
                && (info.StartUnixNanos > (ulong)request.EndUnixNanos || info.StartUnixNanos + info.DurationNanos < (ulong)request.StartUnixNanos))
            {
                continue;
            }

            List<EvalSpan> kept;
            if (everything)
            {
                kept = spans;
            }
            else
            {
                kept = [];
                foreach (var s in spans)
                {
                    for (int i = 0; i < results.Length; i++)
                    {
                        results[i] = request.Conditions[i].CouldMatch(s);
                    }

                    if (request.Selects(results))
                    {
                        kept.Add(s);
                    }
                }
            }

            if (kept.Count > 0)
            {
                yield return new Spanset(info, kept);
            }
        }
    }

    /// <summary>Builds the evaluation view of a whole trace: spans in document order, trace-level fields, nested sets.</summary>
    public static List<EvalSpan> Build(Trace trace, out TraceInfo info)
    {
        ArgumentNullException.ThrowIfNull(trace);
        info = new TraceInfo { ServiceStats = new(StringComparer.Ordinal) };
        var spans = new List<EvalSpan>(trace.SpanCount());
        ulong minStart = ulong.MaxValue, maxEnd = 0;
        EvalSpan? root = null;
        foreach (var rs in trace.ResourceSpans)
        {
            var resAttrs = ToBag(rs.Resource.Attributes);
            string service = rs.Resource.ServiceName() ?? string.Empty;
            foreach (var ss in rs.ScopeSpans)
            {
                var scopeAttrs = ToBag(ss.Scope.Attributes);
                foreach (var s in ss.Spans)
                {
                    if (info.TraceId.IsEmpty)
                    {
                        info.TraceId = s.TraceId;
                    }

                    var e = new EvalSpan
                    {
                        Trace = info,
                        SpanId = s.SpanId,
                        ParentSpanId = s.ParentSpanId,
                        Name = s.Name,
                        Kind = (Ast.SpanKind)(byte)s.Kind,
                        Status = (SpanStatus)(byte)s.StatusCode,
                        StatusMessage = s.StatusMessage,
                        StartUnixNanos = s.StartTimeUnixNano,
                        DurationNanos = (long)s.DurationNanos,
                        ServiceName = service,
                        Attributes = ToBag(s.Attributes),
                        ResourceAttributes = resAttrs,
                        ScopeAttributes = scopeAttrs,
                        ScopeName = ss.Scope.Name,
                        ScopeVersion = ss.Scope.Version,
                        Events = s.Events.Count == 0 ? [] : s.Events.Select(ev => new EvalEvent
                        {
                            Name = ev.Name,
                            TimeSinceStartNanos = (long)(ev.TimeUnixNano - s.StartTimeUnixNano),
                            Attributes = ToBag(ev.Attributes),
                        }).ToArray(),
                        Links = s.Links.Count == 0 ? [] : s.Links.Select(l => new EvalLink
                        {
                            TraceId = l.TraceId,
                            SpanId = l.SpanId,
                            Attributes = ToBag(l.Attributes),
                        }).ToArray(),
                    };
                    spans.Add(e);
                    minStart = Math.Min(minStart, s.StartTimeUnixNano);
                    maxEnd = Math.Max(maxEnd, Math.Max(s.EndTimeUnixNano, s.StartTimeUnixNano));
                    if (root is null && s.ParentSpanId.IsEmpty)
                    {
                        root = e;
                    }

                    info.ServiceStats.TryGetValue(service, out var st);
                    st.SpanCount++;
                    if (s.StatusCode == StatusCode.Error)
                    {
                        st.ErrorCount++;
                    }

                    info.ServiceStats[service] = st;
                }
            }
        }

        if (spans.Count == 0)
        {
            return spans;
        }

        info.StartUnixNanos = minStart;
        info.DurationNanos = maxEnd - minStart;
        if (root is not null)
        {
            info.RootServiceName = root.ServiceName;
            info.RootSpanName = root.Name;
        }

        int n = spans.Count;
        var ids = new ulong[n];
        var parents = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            ids[i] = spans[i].SpanId.Value;
            parents[i] = spans[i].ParentSpanId.Value;
        }

        var left = new int[n];
        var right = new int[n];
        var parent = new int[n];
        var children = new int[n];
        NestedSet.Compute(ids, parents, left, right, parent, children);
        for (int i = 0; i < n; i++)
        {
            spans[i].NestedSetLeft = left[i];
            spans[i].NestedSetRight = right[i];
            spans[i].NestedSetParent = parent[i];
            spans[i].ChildCount = children[i];
        }

        return spans;
    }

    private static AttributeBag ToBag(List<KeyValue> attrs)
    {
        if (attrs.Count == 0)
        {
            return AttributeBag.Empty;
        }

        var bag = new AttributeBag(attrs.Count);
        foreach (var kv in attrs)
        {
            bag.Add(kv.Key, TraceQLValue.FromAnyValue(kv.Value));
        }

        return bag;
    }

    private static async IAsyncEnumerable<Trace> ToAsync(IEnumerable<Trace> traces)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var t in traces)
        {
            yield return t;
        }
    }
}
