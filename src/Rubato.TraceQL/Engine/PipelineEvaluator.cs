using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>
/// Runs a search pipeline over the candidate spansets of ONE trace (Tempo's Pipeline.evaluate). Create one per query
/// (it caches per-filter shapes, read-only after construction); <see cref="Evaluate"/> is thread-safe.
/// </summary>
/// <remarks>
/// Semantics (Tempo's ast_execute.go):
/// <list type="bullet">
/// <item><c>{ f }</c> keeps the spans of each spanset for which f is true; empty spansets are dropped.</item>
/// <item><c>A op B</c> evaluates both sides on each input spanset; with a and b the spans each side returns:
/// <c>&amp;&amp;</c> gives a ∪ b when both are non-empty; <c>||</c> gives a ∪ b; <c>&gt; &lt; &gt;&gt; &lt;&lt; ~</c>
/// give the spans of b that are a child / parent / descendant / ancestor / sibling of some span of a; the <c>!</c> forms
/// give the spans of b that are not; the <c>&amp;</c> forms give those spans of b plus the spans of a they relate to.
/// Structural operators (negated ones included) give nothing when either side is empty.</item>
/// <item><c>| count() &gt; n</c> etc. keep spansets whose aggregate passes and record it in <see cref="Spanset.Scalar"/>
/// and as a spanset attribute named by the aggregate's text (<c>count()</c>).</item>
/// <item><c>by(e)</c> splits each spanset by the value of e (nil is a group of its own), in first-seen order, and
/// records <c>("by(e)", value)</c>; <c>coalesce()</c> merges a trace's spansets into one; <c>select()</c> filters nothing.</item>
/// </list>
/// Structural relations use nested-set numbers when the fetcher provided them, else parent ids (which cannot see
/// ancestors that were not returned).
/// </remarks>
public sealed class PipelineEvaluator
{
    private readonly Pipeline _pipeline;
    private readonly Dictionary<SpansetFilter, FilterShape> _shapes = new(ReferenceEqualityComparer.Instance);

    public PipelineEvaluator(Pipeline pipeline)
    {
        _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        foreach (var n in pipeline.DescendantsAndSelf())
        {
            if (n is SpansetFilter f)
            {
                _shapes[f] = FilterShape.Of(f.Expression);
            }
        }
    }

    /// <summary>The result spansets of the pipeline for one trace's candidate spanset (non-empty ones only).</summary>
    public List<Spanset> Evaluate(Spanset candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        var input = new List<Spanset> { candidates };
        var result = EvalPipeline(_pipeline, input);
        result.RemoveAll(s => s.Spans.Count == 0);
        return result;
    }

    private List<Spanset> EvalPipeline(Pipeline p, List<Spanset> input)
    {
        var cur = input;
        foreach (var e in p.Elements)
        {
            cur = EvalElement(e, cur);
            if (cur.Count == 0)
            {
                break;
            }
        }

        return cur;
    }

    private List<Spanset> EvalElement(PipelineElement e, List<Spanset> input)
    {
        switch (e)
        {
            case SpansetFilter f:
                return Filter(f, input);
            case SpansetOperation op:
                return Operation(op, input);
            case Pipeline p:
                return EvalPipeline(p, input);
            case ScalarFilter sf:
                return ScalarFilterStage(sf, input);
            case GroupOperation g:
                return Group(g, input);
            case CoalesceOperation:
                return Coalesce(input);
            case SelectOperation:
                return input;
            default:
                throw new TraceQLEvaluationException($"pipeline stage {e.GetType().Name} is not supported in search");
        }
    }

    private List<Spanset> Filter(SpansetFilter f, List<Spanset> input)
    {
        var shape = _shapes.TryGetValue(f, out var s) ? s : FilterShape.Of(f.Expression);
        var output = new List<Spanset>(input.Count);
        bool alwaysTrue = f.Expression is BoolLiteral { Value: true };
        foreach (var ss in input)
        {
            if (alwaysTrue)
            {
                if (ss.Spans.Count > 0)
                {
                    output.Add(ss);
                }

                continue;
            }

            List<EvalSpan>? kept = null;
            foreach (var span in ss.Spans)
            {
                if (FieldEvaluator.MatchesFilter(f.Expression, span, shape))
                {
                    (kept ??= []).Add(span);
                }
            }

            if (kept is not null)
            {
                output.Add(ss.CloneWith(kept));
            }
        }

        return output;
    }

    private List<Spanset> Operation(SpansetOperation op, List<Spanset> input)
    {
        // Per input spanset (as Tempo): both sides run on that spanset alone, their result spans are flattened, and
        // the operator combines them into one spanset that keeps the input's scalar and by() attributes.
        var output = new List<Spanset>();
        var single = new List<Spanset>(1);
        foreach (var ss in input)
        {
            single.Clear();
            single.Add(ss);
            var lhs = Flatten(EvalElement(op.Left, single));
            single.Clear();
            single.Add(ss);
            var rhs = Flatten(EvalElement(op.Right, single));
            List<EvalSpan> spans;
            switch (op.Op)
            {
                case SpansetOp.And:
                    if (lhs.Count == 0 || rhs.Count == 0)
                    {
                        continue;
                    }

                    spans = Union(lhs, rhs);
                    break;
                case SpansetOp.Union:
                    spans = Union(lhs, rhs);
                    break;
                default:
                    if (lhs.Count == 0 || rhs.Count == 0)
                    {
                        continue;
                    }

                    spans = Structural(op.Op, lhs, rhs);
                    break;
            }

            if (spans.Count > 0)
            {
                output.Add(ss.CloneWith(spans));
            }
        }

        return output;
    }

    private static List<EvalSpan> Flatten(List<Spanset> sets)
    {
        if (sets.Count == 1)
        {
            return sets[0].Spans;
        }

        var all = new List<EvalSpan>();
        foreach (var s in sets)
        {
            all.AddRange(s.Spans);
        }

        return sets.Count == 0 ? all : Union(all, []);
    }

    private static List<EvalSpan> Union(List<EvalSpan> a, List<EvalSpan> b)
    {
        var seen = new HashSet<EvalSpan>(ReferenceEqualityComparer.Instance);
        var result = new List<EvalSpan>(a.Count + b.Count);
        foreach (var s in a)
        {
            if (seen.Add(s))
            {
                result.Add(s);
            }
        }

        foreach (var s in b)
        {
            if (seen.Add(s))
            {
                result.Add(s);
            }
        }

        return result;
    }

    private static List<EvalSpan> Structural(SpansetOp op, List<EvalSpan> lhs, List<EvalSpan> rhs)
    {
        var (relation, mode) = op switch
        {
            SpansetOp.Child => (Relation.Child, Mode.Match),
            SpansetOp.Parent => (Relation.Parent, Mode.Match),
            SpansetOp.Descendant => (Relation.Descendant, Mode.Match),
            SpansetOp.Ancestor => (Relation.Ancestor, Mode.Match),
            SpansetOp.Sibling => (Relation.Sibling, Mode.Match),
            SpansetOp.NotChild => (Relation.Child, Mode.Negate),
            SpansetOp.NotParent => (Relation.Parent, Mode.Negate),
            SpansetOp.NotDescendant => (Relation.Descendant, Mode.Negate),
            SpansetOp.NotAncestor => (Relation.Ancestor, Mode.Negate),
            SpansetOp.NotSibling => (Relation.Sibling, Mode.Negate),
            SpansetOp.UnionChild => (Relation.Child, Mode.Union),
            SpansetOp.UnionParent => (Relation.Parent, Mode.Union),
            SpansetOp.UnionDescendant => (Relation.Descendant, Mode.Union),
            SpansetOp.UnionAncestor => (Relation.Ancestor, Mode.Union),
            SpansetOp.UnionSibling => (Relation.Sibling, Mode.Union),
            _ => throw new TraceQLEvaluationException($"spanset operator {Operators.Text(op)} is not structural"),
        };

        // O(|lhs| * |rhs|): spansets are one trace's matches, normally small. Each right span is tested against the
        // left spans until one relates.
        var result = new List<EvalSpan>();
        HashSet<EvalSpan>? matchedLeft = mode == Mode.Union ? new(ReferenceEqualityComparer.Instance) : null;
        foreach (var b in rhs)
        {
            bool any = false;
            foreach (var a in lhs)
            {
                if (Relates(relation, a, b))
                {
                    any = true;
                    if (matchedLeft is null)
                    {
                        break;
                    }

                    matchedLeft.Add(a);
                }
            }

            if (any != (mode == Mode.Negate))
            {
                result.Add(b);
            }
        }

        if (matchedLeft is not null && result.Count > 0)
        {
            var lefts = new List<EvalSpan>(matchedLeft.Count);
            foreach (var a in lhs)
            {
                if (matchedLeft.Contains(a))
                {
                    lefts.Add(a);
                }
            }

            return Union(lefts, result);
        }

        return result;
    }

    /// <summary>Whether <paramref name="b"/> is the <paramref name="relation"/> of <paramref name="a"/> (b is a's child, ...).</summary>
    internal static bool Relates(Relation relation, EvalSpan a, EvalSpan b)
    {
        if (ReferenceEquals(a, b) || (a.SpanId == b.SpanId && a.Trace == b.Trace))
        {
            return false;
        }

        bool nested = a.HasNestedSet && b.HasNestedSet;
        switch (relation)
        {
            case Relation.Child:
                return nested ? b.NestedSetParent == a.NestedSetLeft : !b.ParentSpanId.IsEmpty && b.ParentSpanId == a.SpanId;
            case Relation.Parent:
                return nested ? a.NestedSetParent == b.NestedSetLeft : !a.ParentSpanId.IsEmpty && a.ParentSpanId == b.SpanId;
            case Relation.Descendant:
                return nested
                    ? a.NestedSetLeft < b.NestedSetLeft && b.NestedSetRight < a.NestedSetRight
                    : !b.ParentSpanId.IsEmpty && b.ParentSpanId == a.SpanId;
            case Relation.Ancestor:
                return nested
                    ? b.NestedSetLeft < a.NestedSetLeft && a.NestedSetRight < b.NestedSetRight
                    : !a.ParentSpanId.IsEmpty && a.ParentSpanId == b.SpanId;
            case Relation.Sibling:
                return nested
                    ? a.NestedSetParent == b.NestedSetParent && a.NestedSetParent > 0
                    : !a.ParentSpanId.IsEmpty && a.ParentSpanId == b.ParentSpanId;
            default:
                return false;
        }
    }

    private static List<Spanset> ScalarFilterStage(ScalarFilter sf, List<Spanset> input)
    {
        var output = new List<Spanset>(input.Count);
        foreach (var ss in input)
        {
            var l = ScalarEvaluator.Evaluate(sf.Left, ss);
            var r = ScalarEvaluator.Evaluate(sf.Right, ss);
            var op = sf.Op switch
            {
                ComparisonOp.Equal => BinaryOp.Equal,
                ComparisonOp.NotEqual => BinaryOp.NotEqual,
                ComparisonOp.Less => BinaryOp.Less,
                ComparisonOp.LessEqual => BinaryOp.LessEqual,
                ComparisonOp.Greater => BinaryOp.Greater,
                _ => BinaryOp.GreaterEqual,
            };
            if (ValueOps.Compare(op, l, r))
            {
                // As Tempo, the aggregate is also reported as a spanset attribute, e.g. ("count()", 3).
                var kept = ss.CloneWith(ss.Spans);
                kept.Scalar = sf.Left is AggregateExpr ? l : r;
                if (sf.Left is AggregateExpr agg)
                {
                    kept.GroupAttributes.Add(new(agg.ToString(), l));
                }

                output.Add(kept);
            }
        }

        return output;
    }

    private static List<Spanset> Group(GroupOperation g, List<Spanset> input)
    {
        string key = g.ToString();
        var shape = FilterShape.Of(g.Expression);
        var output = new List<Spanset>();
        foreach (var ss in input)
        {
            var groups = new Dictionary<TraceQLValue, Spanset>();
            var order = new List<Spanset>();
            foreach (var span in ss.Spans)
            {
                var v = GroupValue(g.Expression, span, shape);
                if (!groups.TryGetValue(v, out var grp))
                {
                    grp = ss.CloneWith([]);
                    grp.GroupAttributes.Add(new(key, v));
                    groups[v] = grp;
                    order.Add(grp);
                }

                grp.Spans.Add(span);
            }

            output.AddRange(order);
        }

        return output;
    }

    private static TraceQLValue GroupValue(FieldExpr e, EvalSpan span, FilterShape shape)
    {
        var ev = shape.UsesEvents && span.Events.Count > 0 ? span.Events[0] : null;
        var ln = shape.UsesLinks && span.Links.Count > 0 ? span.Links[0] : null;
        return FieldEvaluator.Evaluate(e, span, ev, ln);
    }

    private static List<Spanset> Coalesce(List<Spanset> input)
    {
        if (input.Count == 0)
        {
            return input;
        }

        var spans = new List<EvalSpan>();
        var seen = new HashSet<EvalSpan>(ReferenceEqualityComparer.Instance);
        foreach (var ss in input)
        {
            foreach (var s in ss.Spans)
            {
                if (seen.Add(s))
                {
                    spans.Add(s);
                }
            }
        }

        return [new Spanset(input[0].Trace, spans)];
    }

    internal enum Relation
    {
        Child,
        Parent,
        Descendant,
        Ancestor,
        Sibling,
    }

    private enum Mode
    {
        Match,
        Negate,
        Union,
    }
}

/// <summary>Aggregates and scalar arithmetic over one spanset.</summary>
public static class ScalarEvaluator
{
    /// <summary>
    /// <c>count()</c> is an int; <c>min/max</c> keep the value's type; <c>sum</c> of ints/durations stays int/duration,
    /// otherwise float; <c>avg</c> is a float (a duration when every value is a duration). Non-numeric and nil values
    /// are skipped; an aggregate over no numeric values is nil (so every comparison with it is false).
    /// </summary>
    public static TraceQLValue Evaluate(ScalarExpr e, Spanset ss)
    {
        switch (e)
        {
            case ScalarLiteral l:
                return TraceQLValue.FromLiteral(l.Value);
            case AggregateExpr a:
                return Aggregate(a, ss);
            case ScalarOperation o:
                {
                    var op = o.Op switch
                    {
                        ArithmeticOp.Add => BinaryOp.Add,
                        ArithmeticOp.Sub => BinaryOp.Sub,
                        ArithmeticOp.Mul => BinaryOp.Mul,
                        ArithmeticOp.Div => BinaryOp.Div,
                        ArithmeticOp.Mod => BinaryOp.Mod,
                        _ => BinaryOp.Pow,
                    };
                    return ValueOps.Arithmetic(op, Evaluate(o.Left, ss), Evaluate(o.Right, ss));
                }

            default:
                throw new TraceQLEvaluationException($"scalar expression '{e}' is not supported");
        }
    }

    private static TraceQLValue Aggregate(AggregateExpr a, Spanset ss)
    {
        if (a.Op == AggregateOp.Count)
        {
            return TraceQLValue.FromInt(ss.Spans.Count);
        }

        if (a.Argument is null)
        {
            throw new TraceQLEvaluationException($"{Operators.Text(a.Op)}() needs an argument");
        }

        var shape = FilterShape.Of(a.Argument);
        int n = 0;
        bool allInt = true, allDuration = true;
        double sumD = 0;
        long sumL = 0;
        TraceQLValue best = TraceQLValue.Nil;
        foreach (var span in ss.Spans)
        {
            var ev = shape.UsesEvents && span.Events.Count > 0 ? span.Events[0] : null;
            var ln = shape.UsesLinks && span.Links.Count > 0 ? span.Links[0] : null;
            var v = FieldEvaluator.Evaluate(a.Argument, span, ev, ln);
            if (!v.IsNumeric)
            {
                continue;
            }

            n++;
            allInt &= v.Kind == ValueKind.Int;
            allDuration &= v.Kind == ValueKind.Duration;
            sumD += v.AsDouble();
            if (v.Kind != ValueKind.Float)
            {
                sumL = unchecked(sumL + v.Int);
            }

            if (best.IsNil
                || (a.Op == AggregateOp.Min && ValueOps.Compare(BinaryOp.Less, v, best))
                || (a.Op == AggregateOp.Max && ValueOps.Compare(BinaryOp.Greater, v, best)))
            {
                best = v;
            }
        }

        if (n == 0)
        {
            return TraceQLValue.Nil;
        }

        return a.Op switch
        {
            AggregateOp.Min or AggregateOp.Max => best,
            AggregateOp.Sum => allInt ? TraceQLValue.FromInt(sumL) : allDuration ? TraceQLValue.FromDuration(sumL) : TraceQLValue.FromFloat(sumD),
            AggregateOp.Avg => allDuration ? TraceQLValue.FromDuration((long)(sumD / n)) : TraceQLValue.FromFloat(sumD / n),
            _ => TraceQLValue.Nil,
        };
    }
}
