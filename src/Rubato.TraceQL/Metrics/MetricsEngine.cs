using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.TraceQL.Metrics;

/// <summary>
/// A metrics query compiled for one time grid: its leaves (each <c>pipeline | function</c>), what to fetch for each,
/// and how to finalise. Immutable and thread-safe; each job creates its own observers with <see cref="RunShardAsync"/>.
/// </summary>
/// <remarks>
/// Flow: every job (the ingester's live data and WAL, each block) runs <see cref="RunShardAsync"/> over its fetcher and
/// produces a <see cref="MetricsShardResult"/>; the frontend merges those exactly (<see cref="MetricsShardResult.Merge"/>)
/// and calls <see cref="Finalize"/> once, which turns sums into rates/averages, buckets into quantiles, applies
/// compare()'s top-N, the second stages (topk/bottomk, filters) and arithmetic between queries.
/// A span is counted when it is in a result spanset of the pipeline and its start time falls in the grid
/// (<see cref="MetricsRange.IntervalOf"/>); the fetch asks only for traces overlapping the grid and for the fields the
/// filters, the function's attribute and <c>by()</c> read.
/// </remarks>
public sealed class CompiledMetricsQuery
{
    /// <summary>Tempo's per-query exemplar cap (<c>max_exemplars</c>).</summary>
    public const int DefaultMaxExemplars = 100;

    private readonly MetricsLeaf[] _leaves;

    private CompiledMetricsQuery(RootExpr root, MetricsRange range, int maxExemplars)
    {
        Root = root;
        Range = range;
        MaxExemplars = Math.Max(0, maxExemplars);
        var leaves = new List<MetricsLeaf>();
        Collect((MetricsExpr)root.Query, leaves);
        _leaves = [.. leaves];
    }

    public RootExpr Root { get; }

    public MetricsRange Range { get; }

    public int MaxExemplars { get; }

    public int LeafCount => _leaves.Length;

    /// <summary>The fetch request of leaf i (for tests and planners).</summary>
    public FetchSpansRequest RequestOf(int leaf) => _leaves[leaf].Request;

    /// <summary>Compiles a parsed metrics query. Throws <see cref="TraceQLEvaluationException"/> for a search query.</summary>
    public static CompiledMetricsQuery Compile(RootExpr query, MetricsRange range, int maxExemplars = 0)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (!query.IsMetrics)
        {
            throw new TraceQLEvaluationException(
                $"'{query}' is not a metrics query; metrics queries end in a function such as '| rate()' (use /api/search for spansets)");
        }

        return new CompiledMetricsQuery(query, range, maxExemplars);
    }

    /// <summary>An empty shard result to merge job results into.</summary>
    public MetricsShardResult NewShard() => new([.. _leaves.Select(l => l.NewPartial(Range))]);

    /// <summary>
    /// Runs every leaf over one fetcher (one fetch per leaf) and returns the shard's partial result. Runs on the calling
    /// task; the fetcher is enumerated once per leaf.
    /// </summary>
    public async Task<MetricsShardResult> RunShardAsync(ISpansetFetcher fetcher, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetcher);
        var shard = NewShard();
        for (int i = 0; i < _leaves.Length; i++)
        {
            var observer = new LeafObserver(_leaves[i], Range, MaxExemplars, shard.Leaves[i], shard.Stats);
            await foreach (var ss in fetcher.FetchAsync(_leaves[i].Request, cancellationToken).ConfigureAwait(false))
            {
                observer.Observe(ss);
            }

            observer.Flush();
        }

        if (fetcher is IFetchStatistics st)
        {
            shard.Stats.InspectedBytes += st.InspectedBytes;
        }

        shard.Stats.CompletedJobs++;
        return shard;
    }

    /// <summary>Final series from the merged partials: rates, averages, quantiles, top-N, second stages, arithmetic.</summary>
    public MetricsResult Finalize(MetricsShardResult merged, int maxSeries = 0)
    {
        ArgumentNullException.ThrowIfNull(merged);
        int next = 0;
        var series = MetricsFinalizer.Evaluate((MetricsExpr)Root.Query, _leaves, merged.Leaves, ref next, Range, MaxExemplars);
        series = [.. series.Where(s => s.HasSamples).OrderBy(s => s.PromLabels, StringComparer.Ordinal)];
        var result = new MetricsResult { Range = Range, Stats = merged.Stats, Series = series };
        if (maxSeries > 0 && series.Count > maxSeries)
        {
            result.Series.RemoveRange(maxSeries, series.Count - maxSeries);
            result.Partial = true;
            result.Message = $"Response exceeds maximum series limit of {maxSeries}, a partial response is returned. Warning: the accuracy of each individual value is not guaranteed.";
        }

        return result;
    }

    /// <summary>Runs the whole query over fetchers in order, unsharded (tests, tools).</summary>
    public async Task<MetricsResult> RunAsync(IEnumerable<ISpansetFetcher> fetchers, CancellationToken cancellationToken, int maxSeries = 0)
    {
        ArgumentNullException.ThrowIfNull(fetchers);
        var merged = NewShard();
        foreach (var f in fetchers)
        {
            merged.Merge(await RunShardAsync(f, cancellationToken).ConfigureAwait(false));
            merged.Stats.TotalJobs++;
        }

        return Finalize(merged, maxSeries);
    }

    private void Collect(MetricsExpr e, List<MetricsLeaf> leaves)
    {
        switch (e)
        {
            case MetricsQuery q:
                leaves.Add(new MetricsLeaf(q, Range));
                break;
            case MetricsMath m:
                Collect(m.Left, leaves);
                Collect(m.Right, leaves);
                break;
            case MetricsScalar:
                break;
            default:
                throw new TraceQLEvaluationException($"unsupported metrics expression '{e}'");
        }
    }
}

/// <summary>What the function of a leaf computes.</summary>
internal enum LeafKind : byte
{
    Count,
    Rate,
    Sum,
    Min,
    Max,
    Avg,
    Quantile,
    Histogram,
    Compare,
}

/// <summary>One <c>pipeline | function</c> of a query: fetch request, group-by fields and function settings.</summary>
internal sealed class MetricsLeaf
{
    public MetricsLeaf(MetricsQuery query, MetricsRange range)
    {
        Query = query;
        var request = ConditionExtractor.Extract(query.Pipeline, range.StartUnixNanos, range.EndUnixNanos);
        var extra = new List<FieldRef>(request.SecondPassFields);
        switch (query.FirstStage)
        {
            case MetricsAggregate a:
                Kind = a.Function switch
                {
                    MetricsFunction.Rate => LeafKind.Rate,
                    MetricsFunction.CountOverTime => LeafKind.Count,
                    MetricsFunction.SumOverTime => LeafKind.Sum,
                    MetricsFunction.MinOverTime => LeafKind.Min,
                    MetricsFunction.MaxOverTime => LeafKind.Max,
                    MetricsFunction.AvgOverTime => LeafKind.Avg,
                    MetricsFunction.QuantileOverTime => LeafKind.Quantile,
                    _ => LeafKind.Histogram,
                };
                FunctionName = Operators.Text(a.Function);
                Attribute = a.Attribute;
                Quantiles = [.. a.Quantiles];
                By = [.. a.By];
                ByNames = [.. a.By.Select(LabelName)];
                break;
            case MetricsCompare c:
                Kind = LeafKind.Compare;
                FunctionName = "compare";
                Compare = c;
                By = [];
                ByNames = [];
                var fields = new List<FieldExpr>
                {
                    new AttributeExpr(AttributeScope.Resource, false, "service.name"),
                    new IntrinsicExpr(Intrinsic.Name),
                    new IntrinsicExpr(Intrinsic.Kind),
                    new IntrinsicExpr(Intrinsic.Status),
                };
                foreach (var attr in c.Selection.DescendantsAndSelf().OfType<AttributeExpr>())
                {
                    if (attr.Scope is not (AttributeScope.Event or AttributeScope.Link) && !fields.Contains(attr))
                    {
                        fields.Add(attr);
                    }
                }

                CompareFields = [.. fields];
                CompareNames = [.. fields.Select(LabelName)];
                foreach (var f in c.Selection.Expression.DescendantsAndSelf().OfType<FieldExpr>().SelectMany(ConditionExtractor.FieldsOf))
                {
                    AddField(extra, f);
                }

                break;
            default:
                throw new TraceQLEvaluationException($"unsupported metrics function '{query.FirstStage}'");
        }

        foreach (var f in (Attribute is null ? [] : new[] { Attribute }).Concat(By).Concat(CompareFields).SelectMany(ConditionExtractor.FieldsOf))
        {
            AddField(extra, f);
        }

        // Metrics read only span start/duration/ids (exemplars) and the fields named: the fetcher may skip the rest.
        Request = request with { SecondPassFields = extra, OnlyNamedFields = true };
        DurationScaled = Attribute is IntrinsicExpr ie && ie.Type == StaticType.Duration;
        MatchAll = query.Pipeline.Elements.Count == 1 && query.Pipeline.Elements[0] is SpansetFilter { Expression: BoolLiteral { Value: true } };
    }

    public MetricsQuery Query { get; }

    public LeafKind Kind { get; }

    public string FunctionName { get; }

    public FieldExpr? Attribute { get; }

    public double[] Quantiles { get; } = [];

    public FieldExpr[] By { get; }

    public string[] ByNames { get; }

    public MetricsCompare? Compare { get; }

    public FieldExpr[] CompareFields { get; } = [];

    public string[] CompareNames { get; } = [];

    public FetchSpansRequest Request { get; }

    /// <summary>The attribute is a duration intrinsic: values are accumulated in integer nanoseconds, reported in seconds.</summary>
    public bool DurationScaled { get; }

    /// <summary>The pipeline is <c>{ }</c>: every fetched span counts, no evaluation needed.</summary>
    public bool MatchAll { get; }

    public bool UsesBucket => Kind is LeafKind.Quantile or LeafKind.Histogram;

    public MetricsPartial NewPartial(MetricsRange range) => Kind switch
    {
        LeafKind.Sum => new MetricsPartial(PartialOp.Sum, range.Intervals, nanInit: true),
        LeafKind.Min => new MetricsPartial(PartialOp.Min, range.Intervals, nanInit: true),
        LeafKind.Max => new MetricsPartial(PartialOp.Max, range.Intervals, nanInit: true),
        LeafKind.Avg => new MetricsPartial(PartialOp.Avg, range.Intervals, nanInit: false),
        _ => new MetricsPartial(PartialOp.Sum, range.Intervals, nanInit: false),
    };

    /// <summary>
    /// Series label name of a by() field as Tempo prints it: attributes as written (<c>resource.service.name</c>,
    /// <c>.x</c>), intrinsics by their short name where they have one (<c>kind</c>, <c>name</c>, <c>rootServiceName</c>).
    /// </summary>
    internal static string LabelName(FieldExpr f) => f switch
    {
        IntrinsicExpr i => i.Intrinsic switch
        {
            Intrinsic.Duration => "duration",
            Intrinsic.Name => "name",
            Intrinsic.Status => "status",
            Intrinsic.StatusMessage => "statusMessage",
            Intrinsic.Kind => "kind",
            Intrinsic.ChildCount => "childCount",
            Intrinsic.TraceRootName => "rootName",
            Intrinsic.TraceRootService => "rootServiceName",
            Intrinsic.TraceDuration => "traceDuration",
            Intrinsic.NestedSetLeft => "nestedSetLeft",
            Intrinsic.NestedSetRight => "nestedSetRight",
            Intrinsic.NestedSetParent => "nestedSetParent",
            _ => Intrinsics.CanonicalName(i.Intrinsic),
        },
        _ => f.ToString(),
    };

    private static void AddField(List<FieldRef> list, FieldRef f)
    {
        if (!list.Contains(f))
        {
            list.Add(f);
        }
    }
}

/// <summary>
/// Accumulates one leaf over one job's spansets. Single-threaded (one per job). Series are found by a struct key of
/// the group-by values (no per-span allocation on the hot path; the last series is cached for runs of equal keys).
/// </summary>
internal sealed class LeafObserver
{
    private readonly MetricsLeaf _leaf;
    private readonly MetricsRange _range;
    private readonly PipelineEvaluator? _evaluator;
    private readonly MetricsPartial _into;
    private readonly MetricsQueryStats _stats;
    private readonly Dictionary<GroupKey, Acc> _series = [];
    private readonly int[] _exemplarsPerInterval;
    private readonly int _exemplarCapPerInterval;
    private readonly HashSet<EvalSpan> _seen = new(ReferenceEqualityComparer.Instance);
    private readonly SpansetFilter? _selection;
    private readonly SpansetFilter? _onlyFilter;
    private readonly FilterShape _onlyFilterShape;
    private int _exemplarsLeft;
    private GroupKey _lastKey;
    private Acc? _last;

    public LeafObserver(MetricsLeaf leaf, MetricsRange range, int maxExemplars, MetricsPartial into, MetricsQueryStats stats)
    {
        _leaf = leaf;
        _range = range;
        _evaluator = leaf.MatchAll ? null : new PipelineEvaluator(leaf.Query.Pipeline);

        // A pipeline of one filter keeps exactly the spans the filter matches, in order: test them one by one instead of
        // having the evaluator build a result spanset (a list and a clone per trace).
        if (!leaf.MatchAll && leaf.Query.Pipeline.Elements is [SpansetFilter only])
        {
            _onlyFilter = only;
            _onlyFilterShape = FilterShape.Of(only.Expression);
        }

        _into = into;
        _stats = stats;
        _exemplarsLeft = maxExemplars;
        _exemplarsPerInterval = new int[range.Intervals];
        _exemplarCapPerInterval = Math.Max(1, (maxExemplars + range.Intervals - 1) / range.Intervals);
        _selection = leaf.Compare?.Selection;
    }

    public void Observe(Spanset candidates)
    {
        _stats.InspectedTraces++;
        _stats.InspectedSpans += (ulong)candidates.Spans.Count;
        bool wantExemplar = _exemplarsLeft > 0;
        if (_evaluator is null)
        {
            foreach (var s in candidates.Spans)
            {
                ObserveSpan(s, ref wantExemplar);
            }

            return;
        }

        if (_onlyFilter is not null)
        {
            foreach (var s in candidates.Spans)
            {
                if (FieldEvaluator.MatchesFilter(_onlyFilter.Expression, s, _onlyFilterShape))
                {
                    ObserveSpan(s, ref wantExemplar);
                }
            }

            return;
        }

        var sets = _evaluator.Evaluate(candidates);
        if (sets.Count == 1)
        {
            foreach (var s in sets[0].Spans)
            {
                ObserveSpan(s, ref wantExemplar);
            }

            return;
        }

        // A span in several result spansets (by(), unions) counts once.
        _seen.Clear();
        foreach (var set in sets)
        {
            foreach (var s in set.Spans)
            {
                if (_seen.Add(s))
                {
                    ObserveSpan(s, ref wantExemplar);
                }
            }
        }
    }

    /// <summary>Moves the job's series into the shard's partial (labels built once per series here).</summary>
    public void Flush()
    {
        foreach (var (key, acc) in _series)
        {
            var dst = _into.GetOrAdd(LabelsOf(key));
            for (int i = 0; i < acc.Values.Length; i++)
            {
                dst.Values[i] = MetricsPartial.Combine(_into.Op, dst.Values[i], acc.Values[i]);
                if (dst.Counts is not null && acc.Counts is not null)
                {
                    dst.Counts[i] += acc.Counts[i];
                }
            }

            if (acc.Exemplars is not null)
            {
                dst.Exemplars.AddRange(acc.Exemplars);
            }
        }

        _series.Clear();
        _last = null;
    }

    private void ObserveSpan(EvalSpan span, ref bool wantExemplar)
    {
        int interval = _range.IntervalOf((long)span.StartUnixNanos);
        if (interval < 0)
        {
            return;
        }

        if (_leaf.Kind == LeafKind.Compare)
        {
            ObserveCompare(span, interval);
            return;
        }

        var key = default(GroupKey);
        for (int i = 0; i < _leaf.By.Length; i++)
        {
            key.Set(i, FieldEvaluator.Evaluate(_leaf.By[i], span, null, null));
        }

        double value = 1;
        double exemplarValue = double.NaN;
        switch (_leaf.Kind)
        {
            case LeafKind.Sum or LeafKind.Min or LeafKind.Max or LeafKind.Avg:
                value = ValueOf(span);
                if (double.IsNaN(value))
                {
                    return;
                }

                exemplarValue = _leaf.DurationScaled ? value / 1e9 : value;
                break;
            case LeafKind.Quantile or LeafKind.Histogram:
                double bucket = BucketOf(span, out exemplarValue);
                if (bucket < 0)
                {
                    return;
                }

                key.Set(_leaf.By.Length, TraceQLValue.FromFloat(bucket));
                if (_leaf.Kind == LeafKind.Histogram)
                {
                    exemplarValue = double.NaN;
                }

                break;
        }

        key.Count = _leaf.By.Length + (_leaf.UsesBucket ? 1 : 0);
        var acc = Series(key);
        switch (_leaf.Kind)
        {
            case LeafKind.Sum:
                acc.Values[interval] = double.IsNaN(acc.Values[interval]) ? value : acc.Values[interval] + value;
                break;
            case LeafKind.Min:
                acc.Values[interval] = double.IsNaN(acc.Values[interval]) ? value : Math.Min(acc.Values[interval], value);
                break;
            case LeafKind.Max:
                acc.Values[interval] = double.IsNaN(acc.Values[interval]) ? value : Math.Max(acc.Values[interval], value);
                break;
            case LeafKind.Avg:
                acc.Values[interval] += value;
                acc.Counts![interval]++;
                break;
            default:
                acc.Values[interval]++;
                break;
        }

        // One exemplar per trace at most (the first counted span), spread over intervals, bounded per job.
        if (wantExemplar && _exemplarsLeft > 0 && _exemplarsPerInterval[interval] < _exemplarCapPerInterval)
        {
            wantExemplar = false;
            _exemplarsLeft--;
            _exemplarsPerInterval[interval]++;
            (acc.Exemplars ??= []).Add(new MetricsExemplar(
                [
                    new SeriesLabel("trace:id", TraceQLValue.FromString(span.Trace.TraceId.ToHex())),
                    new SeriesLabel("span:id", TraceQLValue.FromString(span.SpanId.ToHex())),
                ],
                exemplarValue,
                (long)(span.StartUnixNanos / 1_000_000))
            { Interval = interval });
        }
    }

    private void ObserveCompare(EvalSpan span, int interval)
    {
        var c = _leaf.Compare!;
        bool selected = FieldEvaluator.MatchesFilter(_selection!.Expression, span, FilterShape.Of(_selection.Expression));
        if (selected && c.End > 0 && ((long)span.StartUnixNanos < c.Start || (long)span.StartUnixNanos > c.End))
        {
            selected = false;
        }

        var type = TraceQLValue.FromString(selected ? "selection" : "baseline");
        for (int f = 0; f < _leaf.CompareFields.Length; f++)
        {
            var v = FieldEvaluator.Evaluate(_leaf.CompareFields[f], span, null, null);
            if (v.IsNil || v.Kind == ValueKind.Array)
            {
                continue;
            }

            var key = default(GroupKey);
            key.Set(0, type);
            key.Set(1, TraceQLValue.FromInt(f));
            key.Set(2, v);
            key.Count = 3;
            Series(key).Values[interval]++;
        }
    }

    private double ValueOf(EvalSpan span)
    {
        if (_leaf.Attribute is IntrinsicExpr { Intrinsic: Intrinsic.Duration })
        {
            return span.DurationNanos;
        }

        var v = FieldEvaluator.Evaluate(_leaf.Attribute!, span, null, null);
        return v.Kind switch
        {
            ValueKind.Int => v.Int,
            ValueKind.Float => v.Float,
            ValueKind.Duration => _leaf.DurationScaled ? v.Int : v.Int / 1e9,
            _ => double.NaN,
        };
    }

    /// <summary>Bucket upper bound (seconds for durations) or -1 when the value is not bucketed.</summary>
    private double BucketOf(EvalSpan span, out double exemplarValue)
    {
        exemplarValue = double.NaN;
        TraceQLValue v = _leaf.Attribute is IntrinsicExpr { Intrinsic: Intrinsic.Duration }
            ? TraceQLValue.FromDuration(span.DurationNanos)
            : FieldEvaluator.Evaluate(_leaf.Attribute!, span, null, null);
        switch (v.Kind)
        {
            case ValueKind.Duration when v.Int >= 2:
                exemplarValue = v.Int / 1e9;
                return Log2Histogram.Bucketize((ulong)v.Int) / 1e9;
            case ValueKind.Int when v.Int >= 2:
                exemplarValue = v.Int;
                return Log2Histogram.Bucketize((ulong)v.Int);
            default:
                return -1;
        }
    }

    private Acc Series(in GroupKey key)
    {
        if (_last is not null && _lastKey.Equals(key))
        {
            return _last;
        }

        if (!_series.TryGetValue(key, out var acc))
        {
            acc = new Acc(_range.Intervals, _into.NanInit, _into.Op == PartialOp.Avg);
            _series[key] = acc;
        }

        _lastKey = key;
        _last = acc;
        return acc;
    }

    /// <summary>
    /// Series labels from a group key: by() values in order with nils dropped (all nil: the first by() as nil, as
    /// Tempo), then <c>__bucket</c>; ungrouped functions get <c>__name__</c>; compare gets <c>__meta_type</c> + field.
    /// </summary>
    private SeriesLabel[] LabelsOf(in GroupKey key)
    {
        if (_leaf.Kind == LeafKind.Compare)
        {
            return
            [
                new SeriesLabel(SeriesLabel.MetaType, key.Get(0)),
                new SeriesLabel(_leaf.CompareNames[(int)key.Get(1).Int], key.Get(2)),
            ];
        }

        var labels = new List<SeriesLabel>(key.Count + 1);
        for (int i = 0; i < _leaf.By.Length; i++)
        {
            if (!key.Get(i).IsNil)
            {
                labels.Add(new SeriesLabel(_leaf.ByNames[i], key.Get(i)));
            }
        }

        if (_leaf.By.Length > 0 && labels.Count == 0)
        {
            labels.Add(new SeriesLabel(_leaf.ByNames[0], TraceQLValue.Nil));
        }

        if (_leaf.UsesBucket)
        {
            labels.Add(new SeriesLabel(SeriesLabel.Bucket, key.Get(_leaf.By.Length)));
        }
        else if (_leaf.By.Length == 0)
        {
            labels.Add(new SeriesLabel(SeriesLabel.MetricName, TraceQLValue.FromString(_leaf.FunctionName)));
        }

        return [.. labels];
    }

    private sealed class Acc(int intervals, bool nanInit, bool withCounts)
    {
        public double[] Values { get; } = Init(intervals, nanInit);

        public double[]? Counts { get; } = withCounts ? new double[intervals] : null;

        public List<MetricsExemplar>? Exemplars { get; set; }

        private static double[] Init(int n, bool nan)
        {
            var a = new double[n];
            if (nan)
            {
                Array.Fill(a, double.NaN);
            }

            return a;
        }
    }
}

/// <summary>Up to 6 label values (5 by() + bucket) as a value-type dictionary key.</summary>
internal struct GroupKey : IEquatable<GroupKey>
{
    private TraceQLValue _v0;
    private TraceQLValue _v1;
    private TraceQLValue _v2;
    private TraceQLValue _v3;
    private TraceQLValue _v4;
    private TraceQLValue _v5;

    public int Count { get; set; }

    public readonly TraceQLValue Get(int i) => i switch
    {
        0 => _v0,
        1 => _v1,
        2 => _v2,
        3 => _v3,
        4 => _v4,
        _ => _v5,
    };

    public void Set(int i, TraceQLValue v)
    {
        switch (i)
        {
            case 0: _v0 = v; break;
            case 1: _v1 = v; break;
            case 2: _v2 = v; break;
            case 3: _v3 = v; break;
            case 4: _v4 = v; break;
            default: _v5 = v; break;
        }
    }

    public readonly bool Equals(GroupKey other) =>
        Count == other.Count && _v0.Equals(other._v0) && _v1.Equals(other._v1) && _v2.Equals(other._v2)
        && _v3.Equals(other._v3) && _v4.Equals(other._v4) && _v5.Equals(other._v5);

    public override readonly bool Equals(object? obj) => obj is GroupKey k && Equals(k);

    public override readonly int GetHashCode() => HashCode.Combine(Count, _v0, _v1, _v2, _v3, _v4, _v5);
}
