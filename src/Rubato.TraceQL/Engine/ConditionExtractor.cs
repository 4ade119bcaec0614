using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>
/// Derives the <see cref="FetchSpansRequest"/> of a query (Tempo's ast_conditions.go), keeping the invariant that a
/// span the query can return is always selected by the request.
/// </summary>
/// <remarks>
/// Inside one filter: <c>field op literal</c> becomes that condition (flipped when the literal is on the left),
/// <c>!= nil</c>/<c>= nil</c> become Exists/NotExists, anything else (arithmetic, field-vs-field, <c>!</c>, a bare
/// attribute) fetches its fields with <see cref="ConditionOp.None"/>. <c>&amp;&amp;</c> inside a filter and successive
/// filter stages of a pipeline keep <see cref="FetchSpansRequest.AllConditions"/>; <c>||</c> inside a filter and every
/// spanset operator (<c>&amp;&amp; || &gt; &gt;&gt; ...</c>, whose sides match different spans) clear it. A side that
/// matches every span (<c>{}</c>, <c>{ true }</c>) makes an OR-combination fetch everything and is neutral in an
/// AND-combination. Fields of <c>by()</c>, <c>select()</c> and aggregates go to
/// <see cref="FetchSpansRequest.SecondPassFields"/>, as do filter fields when nothing can be filtered.
/// </remarks>
public static class ConditionExtractor
{
    public static FetchSpansRequest Extract(RootExpr root, long startUnixNanos = 0, long endUnixNanos = 0)
    {
        ArgumentNullException.ThrowIfNull(root);
        var pipeline = root.Query switch
        {
            SpansetQuery s => s.Pipeline,
            MetricsQuery m => m.Pipeline,
            _ => throw new TraceQLEvaluationException("metrics arithmetic has no single pipeline to fetch for"),
        };
        return Extract(pipeline, startUnixNanos, endUnixNanos);
    }

    public static FetchSpansRequest Extract(Pipeline pipeline, long startUnixNanos = 0, long endUnixNanos = 0)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var second = new List<FieldRef>();
        var part = FromPipeline(pipeline, second);
        foreach (var f in part.Fetch)
        {
            AddField(second, f);
        }

        bool structure = pipeline.DescendantsAndSelf().Any(n =>
            n is SpansetOperation { Op: not (SpansetOp.And or SpansetOp.Union) }
            or IntrinsicExpr { Intrinsic: Intrinsic.ChildCount or Intrinsic.NestedSetLeft or Intrinsic.NestedSetRight or Intrinsic.NestedSetParent });

        List<Condition> conditions;
        bool all;
        if (part.Everything)
        {
            conditions = [];
            all = false;
            foreach (var c in part.Conditions)
            {
                AddField(second, c.Field);
            }
        }
        else
        {
            conditions = Dedupe(part.Conditions);
            all = part.All;
        }

        var secondDistinct = new List<FieldRef>();
        foreach (var f in second)
        {
            if (!conditions.Any(c => c.Field == f))
            {
                AddField(secondDistinct, f);
            }
        }

        return new FetchSpansRequest
        {
            StartUnixNanos = startUnixNanos,
            EndUnixNanos = endUnixNanos,
            Conditions = conditions,
            AllConditions = all,
            SecondPassFields = secondDistinct,
            NeedsStructure = structure,
        };
    }

    /// <summary>Every attribute/intrinsic a field expression reads.</summary>
    public static IEnumerable<FieldRef> FieldsOf(FieldExpr e)
    {
        foreach (var n in e.DescendantsAndSelf())
        {
            switch (n)
            {
                case AttributeExpr a:
                    yield return FieldRef.ForAttribute(a.Scope, a.Name);
                    break;
                case IntrinsicExpr i:
                    yield return FieldRef.ForIntrinsic(i.Intrinsic);
                    break;
            }
        }
    }

    private static List<Condition> Dedupe(List<Condition> conditions)
    {
        var result = new List<Condition>(conditions.Count);
        foreach (var c in conditions)
        {
            if (!result.Any(r => r.Field == c.Field && r.Op == c.Op && r.Operands.SequenceEqual(c.Operands)))
            {
                result.Add(c);
            }
        }

        return result;
    }

    private static void AddField(List<FieldRef> list, FieldRef f)
    {
        if (!list.Contains(f))
        {
            list.Add(f);
        }
    }

    /// <summary>
    /// Conditions of a sub-tree. <see cref="Everything"/>: every span may match (no filtering possible).
    /// <see cref="Fetch"/>: fields needed to evaluate it that must not filter (they go to the second pass).
    /// </summary>
    private readonly record struct Part(List<Condition> Conditions, bool All, bool Everything, List<FieldRef> Fetch)
    {
        public static Part MatchAll() => new([], true, true, []);

        /// <summary>Both must hold for the same span. A side matching everything is neutral: its fields are only fetched.</summary>
        public static Part And(Part a, Part b)
        {
            if (a.Everything && b.Everything)
            {
                return new([.. a.Conditions, .. b.Conditions], true, true, [.. a.Fetch, .. b.Fetch]);
            }

            if (a.Everything)
            {
                return b with { Fetch = [.. a.Fetch, .. a.Conditions.Select(c => c.Field), .. b.Fetch] };
            }

            if (b.Everything)
            {
                return a with { Fetch = [.. a.Fetch, .. b.Fetch, .. b.Conditions.Select(c => c.Field)] };
            }

            return new([.. a.Conditions, .. b.Conditions], a.All && b.All, false, [.. a.Fetch, .. b.Fetch]);
        }

        public static Part Or(Part a, Part b) =>
            new([.. a.Conditions, .. b.Conditions], false, a.Everything || b.Everything, [.. a.Fetch, .. b.Fetch]);
    }

    /// <summary>
    /// Stages narrow the spans of earlier stages, so a later filter may be AND-ed with earlier ones, but only while
    /// every earlier stage is a plain filter (or by/select/coalesce): after an aggregate (<c>count() &gt; 2</c> counts
    /// spans the later filter would drop) or a spanset operation (which needs the spans of both sides to relate them)
    /// a later stage's fields are only fetched.
    /// </summary>
    private static Part FromPipeline(Pipeline p, List<FieldRef> second)
    {
        Part? acc = null;
        bool plain = true;
        foreach (var e in p.Elements)
        {
            switch (e)
            {
                case SpansetFilter or SpansetOperation or Pipeline when plain:
                    {
                        var part = FromElement(e, second)!.Value;
                        acc = acc is { } a ? Part.And(a, part) : part;
                        plain = e is SpansetFilter;
                        break;
                    }

                case SpansetFilter or SpansetOperation or Pipeline:
                    foreach (var n in e.DescendantsAndSelf())
                    {
                        if (n is FieldExpr fe and (AttributeExpr or IntrinsicExpr))
                        {
                            foreach (var f in FieldsOf(fe))
                            {
                                AddField(second, f);
                            }
                        }
                    }

                    break;
                default:
                    FromElement(e, second);
                    plain &= e is not ScalarFilter;
                    break;
            }
        }

        return acc ?? Part.MatchAll();
    }

    /// <summary>Null for stages that select nothing (scalar filters, by, select, coalesce).</summary>
    private static Part? FromElement(PipelineElement e, List<FieldRef> second)
    {
        switch (e)
        {
            case SpansetFilter f:
                return FromField(f.Expression);
            case SpansetOperation op:
                {
                    var l = FromElement(op.Left, second) ?? Part.MatchAll();
                    var r = FromElement(op.Right, second) ?? Part.MatchAll();
                    return Part.Or(l, r);
                }

            case Pipeline p:
                return FromPipeline(p, second);
            case ScalarFilter sf:
                AddScalarFields(sf.Left, second);
                AddScalarFields(sf.Right, second);
                return null;
            case GroupOperation g:
                foreach (var f in FieldsOf(g.Expression))
                {
                    AddField(second, f);
                }

                return null;
            case SelectOperation s:
                foreach (var a in s.Attributes)
                {
                    foreach (var f in FieldsOf(a))
                    {
                        AddField(second, f);
                    }
                }

                return null;
            default:
                return null;
        }
    }

    private static void AddScalarFields(ScalarExpr s, List<FieldRef> second)
    {
        foreach (var n in s.DescendantsAndSelf())
        {
            if (n is AggregateExpr { Argument: { } arg })
            {
                foreach (var f in FieldsOf(arg))
                {
                    AddField(second, f);
                }
            }
        }
    }

    private static Part FromField(FieldExpr e)
    {
        switch (e)
        {
            case BoolLiteral:
            case LiteralExpr:
                return Part.MatchAll();
            case BinaryExpr { Op: BinaryOp.And } b:
                return Part.And(FromField(b.Left), FromField(b.Right));
            case BinaryExpr { Op: BinaryOp.Or } b:
                return Part.Or(FromField(b.Left), FromField(b.Right));
            case BinaryExpr b when IsComparison(b.Op):
                {
                    if (AsField(b.Left) is { } lf && b.Right is LiteralExpr rl and not NilLiteral)
                    {
                        return new([new Condition(lf, ToConditionOp(b.Op), [TraceQLValue.FromLiteral(rl)])], true, false, []);
                    }

                    if (AsField(b.Right) is { } rf && b.Left is LiteralExpr ll and not NilLiteral && b.Op is not (BinaryOp.Regex or BinaryOp.NotRegex))
                    {
                        return new([new Condition(rf, ToConditionOp(Flip(b.Op)), [TraceQLValue.FromLiteral(ll)])], true, false, []);
                    }

                    return FetchOnly(e);
                }

            case UnaryExpr { Op: UnaryOp.Exists or UnaryOp.NotExists } u when AsField(u.Operand) is { } f:
                return new([new Condition(f, u.Op == UnaryOp.Exists ? ConditionOp.Exists : ConditionOp.NotExists, [])], true, false, []);
            default:
                return FetchOnly(e);
        }
    }

    private static Part FetchOnly(FieldExpr e)
    {
        var conds = FieldsOf(e).Distinct().Select(Condition.Fetch).ToList();
        return conds.Count == 0 ? Part.MatchAll() : new(conds, true, false, []);
    }

    private static FieldRef? AsField(FieldExpr e) => e switch
    {
        AttributeExpr a => FieldRef.ForAttribute(a.Scope, a.Name),
        IntrinsicExpr i => FieldRef.ForIntrinsic(i.Intrinsic),
        _ => null,
    };

    private static bool IsComparison(BinaryOp op) =>
        op is BinaryOp.Equal or BinaryOp.NotEqual or BinaryOp.Less or BinaryOp.LessEqual or BinaryOp.Greater
            or BinaryOp.GreaterEqual or BinaryOp.Regex or BinaryOp.NotRegex;

    private static BinaryOp Flip(BinaryOp op) => op switch
    {
        BinaryOp.Less => BinaryOp.Greater,
        BinaryOp.LessEqual => BinaryOp.GreaterEqual,
        BinaryOp.Greater => BinaryOp.Less,
        BinaryOp.GreaterEqual => BinaryOp.LessEqual,
        _ => op,
    };

    private static ConditionOp ToConditionOp(BinaryOp op) => op switch
    {
        BinaryOp.Equal => ConditionOp.Equal,
        BinaryOp.NotEqual => ConditionOp.NotEqual,
        BinaryOp.Less => ConditionOp.Less,
        BinaryOp.LessEqual => ConditionOp.LessEqual,
        BinaryOp.Greater => ConditionOp.Greater,
        BinaryOp.GreaterEqual => ConditionOp.GreaterEqual,
        BinaryOp.Regex => ConditionOp.Regex,
        BinaryOp.NotRegex => ConditionOp.NotRegex,
        _ => ConditionOp.None,
    };
}
