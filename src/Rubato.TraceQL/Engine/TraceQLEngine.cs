using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>Parameters of one search (Tempo's <c>limit</c>, <c>spss</c>, <c>start</c>, <c>end</c>).</summary>
public sealed record SearchOptions
{
    public const int DefaultLimit = 20;
    public const int DefaultSpansPerSpanSet = 3;

    /// <summary>Maximum traces returned; values &lt;= 0 mean <see cref="DefaultLimit"/>.</summary>
    public int Limit { get; init; } = DefaultLimit;

    /// <summary>Maximum spans listed per spanset (all still count in <c>matched</c>); &lt;= 0 means the default.</summary>
    public int SpansPerSpanSet { get; init; } = DefaultSpansPerSpanSet;

    /// <summary>Time range in Unix nanoseconds; 0/0 = unbounded. Traces overlapping the range are searched.</summary>
    public long StartUnixNanos { get; init; }

    public long EndUnixNanos { get; init; }

    internal int EffectiveLimit => Limit > 0 ? Limit : DefaultLimit;

    internal int EffectiveSpss => SpansPerSpanSet > 0 ? SpansPerSpanSet : DefaultSpansPerSpanSet;
}

/// <summary>Optional interface of fetchers that can report how many bytes they read (for <c>inspectedBytes</c>).</summary>
public interface IFetchStatistics
{
    /// <summary>Bytes read so far by this fetcher; read by the engine after enumeration ends.</summary>
    ulong InspectedBytes { get; }
}

/// <summary>
/// TraceQL search (Tempo's ExecuteSearch): compile the query to a fetch request, stream candidate spansets from a
/// fetcher, evaluate the pipeline per trace and shape the matches as <see cref="TraceSearchMetadata"/>.
/// </summary>
/// <remarks>
/// Hints: <c>most_recent=true</c> scans everything and keeps the <c>limit</c> most recent traces (by start time);
/// without it the first <c>limit</c> matching traces win and fetching stops as soon as they are found.
/// <c>trace_sample</c> (or <c>sample</c>) = f in (0, 1] searches a deterministic f share of traces (by trace-id hash);
/// <c>sample=true</c> and <c>span_sample</c> search everything; other hints are accepted and ignored.
/// </remarks>
public static class TraceQLEngine
{
    /// <summary>Runs a search. Throws <see cref="TraceQLEvaluationException"/> for metrics queries.</summary>
    public static Task<SearchResult> SearchAsync(RootExpr query, ISpansetFetcher fetcher, SearchOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetcher);
        return SearchAsync(query, [fetcher], options, cancellationToken);
    }

    /// <summary>
    /// Runs a search over several sources in order (e.g. live traces, WAL, blocks), merging the spans of a trace found
    /// in several of them. Stops as soon as <c>limit</c> traces are found (unless most_recent), so later sources are
    /// not opened; a kept trace's segments in unopened sources are then not merged in (as Tempo).
    /// Each fetcher counts as one job in the metrics.
    /// </summary>
    public static async Task<SearchResult> SearchAsync(
        RootExpr query, IEnumerable<ISpansetFetcher> fetchers, SearchOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetchers);
        var compiled = CompiledSearch.Compile(query, options);
        var combiner = new SearchResultCombiner(compiled.Limit, compiled.MostRecent, compiled.SpansPerSpanSet);
        var sources = fetchers.ToList();
        var metrics = new SearchMetrics { TotalJobs = (uint)sources.Count };
        foreach (var fetcher in sources)
        {
            if (combiner.IsComplete)
            {
                break;
            }

            await foreach (var candidates in fetcher.FetchAsync(compiled.Request, cancellationToken).ConfigureAwait(false))
            {
                metrics.InspectedTraces++;
                metrics.InspectedSpans += (ulong)candidates.Spans.Count;
                var md = compiled.Evaluate(candidates);
                if (md is not null)
                {
                    combiner.AddTrace(md);
                    if (combiner.IsComplete)
                    {
                        break;
                    }
                }
            }

            if (fetcher is IFetchStatistics stats)
            {
                metrics.InspectedBytes += stats.InspectedBytes;
            }

            metrics.CompletedJobs++;
        }

        combiner.AddMetrics(metrics);
        return combiner.Result();
    }
}

/// <summary>
/// A query prepared for searching: the fetch request and a per-trace evaluator. Immutable after <see cref="Compile"/>;
/// <see cref="Evaluate"/> is thread-safe, so one instance may serve concurrent jobs (each with its own combiner).
/// </summary>
public sealed class CompiledSearch
{
    private readonly PipelineEvaluator _evaluator;
    private readonly List<(string Key, FieldExpr Expr)> _outputFields;

    private CompiledSearch(RootExpr root, Pipeline pipeline, SearchOptions options)
    {
        Root = root;
        Request = ConditionExtractor.Extract(pipeline, options.StartUnixNanos, options.EndUnixNanos);
        _evaluator = new PipelineEvaluator(pipeline);
        Limit = options.EffectiveLimit;
        SpansPerSpanSet = options.EffectiveSpss;
        MostRecent = root.GetHint("most_recent")?.Value is BoolLiteral { Value: true };
        TraceSampleFraction = SampleFraction(root.GetHint("trace_sample") ?? root.GetHint("sample"));
        StartUnixNanos = options.StartUnixNanos;
        EndUnixNanos = options.EndUnixNanos;
        _outputFields = OutputFields(pipeline);
    }

    public RootExpr Root { get; }

    public FetchSpansRequest Request { get; }

    public int Limit { get; }

    public int SpansPerSpanSet { get; }

    public bool MostRecent { get; }

    public long StartUnixNanos { get; }

    /// <summary>
    /// Fraction of traces searched (hints <c>trace_sample</c>, else <c>sample</c>, as a number in (0, 1]); 1 = all.
    /// <c>sample=true</c> means 1 here (Tempo's adaptive sampling applies to metrics). A trace is kept when its
    /// FNV-32a id hash falls below the fraction, so every job keeps the same traces.
    /// </summary>
    public double TraceSampleFraction { get; }

    public long EndUnixNanos { get; }

    public static CompiledSearch Compile(RootExpr query, SearchOptions options)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(options);
        if (query.IsMetrics)
        {
            throw new TraceQLEvaluationException(
                $"'{query}' is a metrics query; search runs spanset queries only (use the metrics query_range API)");
        }

        return new CompiledSearch(query, query.SearchPipeline!, options);
    }

    /// <summary>The search metadata of one trace's candidates, or null when nothing matched or it is out of range.</summary>
    public TraceSearchMetadata? Evaluate(Spanset candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        var t = candidates.Trace;
        if (EndUnixNanos > 0 && (t.StartUnixNanos > (ulong)EndUnixNanos || t.StartUnixNanos + t.DurationNanos < (ulong)StartUnixNanos))
        {
            return null;
        }

        if (TraceSampleFraction < 1 && t.TraceId.Fnv32a() >= TraceSampleFraction * uint.MaxValue)
        {
            return null;
        }

        var sets = _evaluator.Evaluate(candidates);
        if (sets.Count == 0)
        {
            return null;
        }

        var md = new TraceSearchMetadata
        {
            TraceId = t.TraceId,
            RootServiceName = t.RootServiceName,
            RootTraceName = t.RootSpanName,
            StartTimeUnixNano = t.StartUnixNanos,
            DurationNanos = t.DurationNanos,
            // Shared with the fetcher's TraceInfo (read-only after fetch); SearchResultCombiner copies before merging.
            ServiceStats = t.ServiceStats,
        };
        foreach (var ss in sets)
        {
            var r = new SpanSetResult { Matched = (uint)ss.Spans.Count };
            r.Attributes.AddRange(ss.GroupAttributes);
            for (int i = 0; i < ss.Spans.Count && i < SpansPerSpanSet; i++)
            {
                r.Spans.Add(ToResult(ss.Spans[i]));
            }

            md.SpanSets.Add(r);
        }

        return md;
    }

    private static double SampleFraction(Hint? hint)
    {
        double f = hint?.Value switch
        {
            null => 1,
            BoolLiteral b => b.Value ? 1 : throw new TraceQLEvaluationException($"hint '{hint.Name}=false' is not a sampling rate; remove it or use a number in (0, 1]"),
            FloatLiteral x => x.Value,
            IntLiteral i => i.Value,
            _ => throw new TraceQLEvaluationException($"hint '{hint.Name}' needs a number in (0, 1] or true, got {hint.Value}"),
        };
        if (!(f > 0 && f <= 1))
        {
            throw new TraceQLEvaluationException($"hint '{hint!.Name}' must be in (0, 1], got {f}");
        }

        return f;
    }

    private SpanResult ToResult(EvalSpan s)
    {
        var r = new SpanResult
        {
            SpanId = s.SpanId,
            Name = s.Name,
            StartTimeUnixNano = s.StartUnixNanos,
            DurationNanos = s.DurationNanos < 0 ? 0 : (ulong)s.DurationNanos,
        };
        foreach (var (key, expr) in _outputFields)
        {
            var v = FieldEvaluator.Evaluate(expr, s, null, null);
            if (!v.IsNil)
            {
                r.Attributes.Add(new(key, v));
            }
        }

        return r;
    }

    /// <summary>
    /// Attributes shown on result spans: every span/resource/instrumentation attribute and intrinsic the filters read,
    /// then select() fields; not span name/duration (top-level fields) nor event/link fields (per event/link).
    /// Keys are the attribute name without scope (as Tempo), intrinsics by name (<c>status</c>, <c>trace:rootService</c>).
    /// </summary>
    private static List<(string, FieldExpr)> OutputFields(Pipeline pipeline)
    {
        var list = new List<(string, FieldExpr)>();
        var seen = new HashSet<FieldExpr>();
        foreach (var n in pipeline.DescendantsAndSelf())
        {
            IEnumerable<FieldExpr> fields = n switch
            {
                SpansetFilter f => f.Expression.DescendantsAndSelf().OfType<FieldExpr>(),
                SelectOperation s => s.Attributes,
                _ => [],
            };
            foreach (var fe in fields)
            {
                string? key = fe switch
                {
                    AttributeExpr { Scope: AttributeScope.Event or AttributeScope.Link } => null,
                    AttributeExpr a => a.Name,
                    IntrinsicExpr { Intrinsic: Intrinsic.Name or Intrinsic.Duration or Intrinsic.EventName or Intrinsic.EventTimeSinceStart or Intrinsic.LinkSpanId or Intrinsic.LinkTraceId } => null,
                    IntrinsicExpr i => Intrinsics.CanonicalName(i.Intrinsic) is var c && c.StartsWith("span:", StringComparison.Ordinal) ? c[5..] : c,
                    _ => null,
                };
                if (key is not null && seen.Add(fe))
                {
                    list.Add((key, fe));
                }
            }
        }

        return list;
    }
}
