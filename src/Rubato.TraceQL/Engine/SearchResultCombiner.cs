namespace Rubato.TraceQL.Engine;

/// <summary>
/// Merges search results of many jobs (blocks, WAL, live traces, queriers) into one response, with Tempo's limit
/// semantics: without most_recent the first <c>limit</c> distinct traces found win (later traces are dropped, but
/// matches of an already kept trace still merge in); with most_recent the <c>limit</c> traces with the latest start
/// times win. Not thread-safe: feed it from one thread (or lock around it).
/// </summary>
/// <remarks>
/// Merging one trace seen in several sources: root service/name from whichever source knows them, start = minimum,
/// end = maximum (so duration covers both), service stats = per-service maximum (each source saw part of the trace);
/// spansets merge by their by() attributes, spans dedupe by span id, <c>matched</c> = max of the sources and the
/// distinct spans listed, and at most <see cref="SpansPerSpanSet"/> spans stay listed.
/// </remarks>
public sealed class SearchResultCombiner
{
    private readonly Dictionary<Rubato.Common.Ids.TraceId, TraceSearchMetadata> _traces = [];
    private readonly List<TraceSearchMetadata> _order = [];
    private readonly SearchMetrics _metrics = new();

    public SearchResultCombiner(int limit, bool mostRecent = false, int spansPerSpanSet = int.MaxValue)
    {
        Limit = limit > 0 ? limit : SearchOptions.DefaultLimit;
        MostRecent = mostRecent;
        SpansPerSpanSet = spansPerSpanSet > 0 ? spansPerSpanSet : SearchOptions.DefaultSpansPerSpanSet;
    }

    public int Limit { get; }

    public bool MostRecent { get; }

    public int SpansPerSpanSet { get; }

    /// <summary>True once <see cref="Limit"/> traces are kept and more results cannot change the set (never with most_recent).</summary>
    public bool IsComplete => !MostRecent && _order.Count >= Limit;

    public int Count => _order.Count;

    public void Add(SearchResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        foreach (var t in result.Traces)
        {
            AddTrace(t);
        }

        AddMetrics(result.Metrics);
    }

    public void AddMetrics(SearchMetrics metrics) => _metrics.Add(metrics);

    /// <summary>Adds one trace's metadata; returns false when it was dropped by the limit.</summary>
    public bool AddTrace(TraceSearchMetadata md)
    {
        ArgumentNullException.ThrowIfNull(md);
        if (_traces.TryGetValue(md.TraceId, out var existing))
        {
            Merge(existing, md);
            return true;
        }

        if (_order.Count >= Limit)
        {
            if (!MostRecent)
            {
                return false;
            }

            // Evict the oldest kept trace when the new one is more recent (ties keep the earlier arrival).
            int oldest = 0;
            for (int i = 1; i < _order.Count; i++)
            {
                if (_order[i].StartTimeUnixNano < _order[oldest].StartTimeUnixNano)
                {
                    oldest = i;
                }
            }

            if (_order[oldest].StartTimeUnixNano >= md.StartTimeUnixNano)
            {
                return false;
            }

            _traces.Remove(_order[oldest].TraceId);
            _order.RemoveAt(oldest);
        }

        var copy = Copy(md);
        _traces[copy.TraceId] = copy;
        _order.Add(copy);
        return true;
    }

    /// <summary>The combined response: traces newest first (Tempo sorts by start time, descending; ties keep arrival order).</summary>
    public SearchResult Result()
    {
        var traces = _order.OrderByDescending(t => t.StartTimeUnixNano).ToList();
        var m = new SearchMetrics();
        m.Add(_metrics);
        return new SearchResult { Traces = traces, Metrics = m };
    }

    private TraceSearchMetadata Copy(TraceSearchMetadata md)
    {
        var c = new TraceSearchMetadata
        {
            TraceId = md.TraceId,
            RootServiceName = md.RootServiceName,
            RootTraceName = md.RootTraceName,
            StartTimeUnixNano = md.StartTimeUnixNano,
            DurationNanos = md.DurationNanos,
            ServiceStats = md.ServiceStats is null ? null : new(md.ServiceStats, StringComparer.Ordinal),
        };
        foreach (var ss in md.SpanSets)
        {
            var n = new SpanSetResult { Matched = ss.Matched };
            n.Attributes.AddRange(ss.Attributes);
            MergeSpans(n, ss);
            c.SpanSets.Add(n);
        }

        return c;
    }

    private void Merge(TraceSearchMetadata into, TraceSearchMetadata from)
    {
        if (into.RootServiceName.Length == 0)
        {
            into.RootServiceName = from.RootServiceName;
        }

        if (into.RootTraceName.Length == 0)
        {
            into.RootTraceName = from.RootTraceName;
        }

        ulong end = Math.Max(into.StartTimeUnixNano + into.DurationNanos, from.StartTimeUnixNano + from.DurationNanos);
        if (from.StartTimeUnixNano != 0 && (into.StartTimeUnixNano == 0 || from.StartTimeUnixNano < into.StartTimeUnixNano))
        {
            into.StartTimeUnixNano = from.StartTimeUnixNano;
        }

        into.DurationNanos = end - into.StartTimeUnixNano;

        if (from.ServiceStats is not null)
        {
            into.ServiceStats ??= new(StringComparer.Ordinal);
            foreach (var (svc, st) in from.ServiceStats)
            {
                into.ServiceStats.TryGetValue(svc, out var cur);
                into.ServiceStats[svc] = new ServiceStat
                {
                    SpanCount = Math.Max(cur.SpanCount, st.SpanCount),
                    ErrorCount = Math.Max(cur.ErrorCount, st.ErrorCount),
                };
            }
        }

        foreach (var ss in from.SpanSets)
        {
            string key = ss.GroupKey();
            var target = into.SpanSets.FirstOrDefault(s => s.GroupKey() == key);
            if (target is null)
            {
                target = new SpanSetResult { Matched = ss.Matched };
                target.Attributes.AddRange(ss.Attributes);
                into.SpanSets.Add(target);
            }

            target.Matched = Math.Max(target.Matched, ss.Matched);
            MergeSpans(target, ss);
        }
    }

    private void MergeSpans(SpanSetResult into, SpanSetResult from)
    {
        foreach (var s in from.Spans)
        {
            bool dup = false;
            foreach (var e in into.Spans)
            {
                if (e.SpanId == s.SpanId)
                {
                    dup = true;
                    break;
                }
            }

            if (dup)
            {
                continue;
            }

            if (into.Spans.Count < SpansPerSpanSet)
            {
                into.Spans.Add(s);
            }

            into.Matched = Math.Max(into.Matched, (uint)into.Spans.Count);
        }
    }
}
