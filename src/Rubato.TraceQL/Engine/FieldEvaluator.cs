using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>
/// Evaluates field expressions on one span (Tempo's FieldExpression.execute). Stateless and thread-safe; allocation
/// free except for span/trace id strings when a query reads <c>span:id</c>, <c>trace:id</c> and the like.
/// </summary>
/// <remarks>
/// Event and link scopes: an expression that reads event fields is true for a span when it is true for ANY of the
/// span's events (with no events, event fields are nil); the same for links. <see cref="MatchesFilter"/> does the
/// iteration; <see cref="Evaluate"/> takes the event/link in scope explicitly.
/// </remarks>
public static class FieldEvaluator
{
    /// <summary>Whether <c>{ expr }</c> keeps the span.</summary>
    public static bool MatchesFilter(FieldExpr expr, EvalSpan span, FilterShape shape)
    {
        if (!shape.UsesEvents && !shape.UsesLinks)
        {
            return IsTrue(Evaluate(expr, span, null, null));
        }

        var events = shape.UsesEvents ? span.Events : [];
        var links = shape.UsesLinks ? span.Links : [];
        int ne = Math.Max(1, events.Count), nl = Math.Max(1, links.Count);
        for (int i = 0; i < ne; i++)
        {
            var ev = i < events.Count ? events[i] : null;
            for (int j = 0; j < nl; j++)
            {
                var ln = j < links.Count ? links[j] : null;
                if (IsTrue(Evaluate(expr, span, ev, ln)))
                {
                    return true;
                }
            }
        }

        return false;
    }

    public static bool IsTrue(in TraceQLValue v) => v.Kind == ValueKind.Bool && v.Bool;

    public static TraceQLValue Evaluate(FieldExpr expr, EvalSpan span, EvalEvent? ev, EvalLink? link)
    {
        switch (expr)
        {
            case LiteralExpr l:
                return TraceQLValue.FromLiteral(l);
            case AttributeExpr a:
                return Attribute(a, span, ev, link);
            case IntrinsicExpr i:
                return IntrinsicValue(i.Intrinsic, span, ev, link);
            case UnaryExpr u:
                {
                    var v = Evaluate(u.Operand, span, ev, link);
                    return u.Op switch
                    {
                        UnaryOp.Exists => TraceQLValue.FromBool(!v.IsNil),
                        UnaryOp.NotExists => TraceQLValue.FromBool(v.IsNil),
                        UnaryOp.Not => v.Kind == ValueKind.Bool ? TraceQLValue.FromBool(!v.Bool) : TraceQLValue.Nil,
                        UnaryOp.Negate => v.Kind switch
                        {
                            ValueKind.Int => TraceQLValue.FromInt(unchecked(-v.Int)),
                            ValueKind.Duration => TraceQLValue.FromDuration(unchecked(-v.Int)),
                            ValueKind.Float => TraceQLValue.FromFloat(-v.Float),
                            _ => TraceQLValue.Nil,
                        },
                        _ => TraceQLValue.Nil,
                    };
                }

            case BinaryExpr b:
                return Binary(b, span, ev, link);
            default:
                throw new TraceQLEvaluationException($"cannot evaluate {expr.GetType().Name}");
        }
    }

    private static TraceQLValue Binary(BinaryExpr b, EvalSpan span, EvalEvent? ev, EvalLink? link)
    {
        switch (b.Op)
        {
            case BinaryOp.And:
                {
                    var l = Evaluate(b.Left, span, ev, link);
                    if (!IsTrue(l))
                    {
                        return TraceQLValue.FromBool(false);
                    }

                    return TraceQLValue.FromBool(IsTrue(Evaluate(b.Right, span, ev, link)));
                }

            case BinaryOp.Or:
                {
                    var l = Evaluate(b.Left, span, ev, link);
                    if (IsTrue(l))
                    {
                        return TraceQLValue.FromBool(true);
                    }

                    return TraceQLValue.FromBool(IsTrue(Evaluate(b.Right, span, ev, link)));
                }

            case BinaryOp.Add or BinaryOp.Sub or BinaryOp.Mul or BinaryOp.Div or BinaryOp.Mod or BinaryOp.Pow:
                return ValueOps.Arithmetic(b.Op, Evaluate(b.Left, span, ev, link), Evaluate(b.Right, span, ev, link));
            default:
                return TraceQLValue.FromBool(ValueOps.Compare(b.Op, Evaluate(b.Left, span, ev, link), Evaluate(b.Right, span, ev, link)));
        }
    }

    /// <summary>An attribute value; unscoped <c>.name</c> is the span attribute, else the resource attribute.</summary>
    public static TraceQLValue Attribute(AttributeExpr a, EvalSpan span, EvalEvent? ev, EvalLink? link)
    {
        ArgumentNullException.ThrowIfNull(a);
        return Attribute(a.Scope, a.Name, span, ev, link);
    }

    /// <inheritdoc cref="Attribute(AttributeExpr, EvalSpan, EvalEvent?, EvalLink?)"/>
    public static TraceQLValue Attribute(AttributeScope scope, string name, EvalSpan span, EvalEvent? ev, EvalLink? link)
    {
        ArgumentNullException.ThrowIfNull(span);
        switch (scope)
        {
            case AttributeScope.Span:
                return span.Attributes.Get(name);
            case AttributeScope.Resource:
                return span.ResourceAttributes.Get(name);
            case AttributeScope.Instrumentation:
                return span.ScopeAttributes.Get(name);
            case AttributeScope.Event:
                return ev is null ? TraceQLValue.Nil : ev.Attributes.Get(name);
            case AttributeScope.Link:
                return link is null ? TraceQLValue.Nil : link.Attributes.Get(name);
            default:
                return span.Attributes.TryGet(name, out var v) ? v : span.ResourceAttributes.Get(name);
        }
    }

    /// <summary>
    /// An intrinsic's value. Ids are lower-case hex strings; <c>span:parentID</c> of a root, <c>span:childCount</c> and
    /// nested-set numbers that the fetcher did not compute, and event/link intrinsics without an event/link are nil.
    /// </summary>
    public static TraceQLValue IntrinsicValue(Intrinsic i, EvalSpan span, EvalEvent? ev, EvalLink? link)
    {
        switch (i)
        {
            case Intrinsic.Duration: return TraceQLValue.FromDuration(span.DurationNanos);
            case Intrinsic.Name: return TraceQLValue.FromString(span.Name);
            case Intrinsic.Status: return TraceQLValue.FromStatus(span.Status);
            case Intrinsic.StatusMessage: return TraceQLValue.FromString(span.StatusMessage);
            case Intrinsic.Kind: return TraceQLValue.FromKind(span.Kind);
            case Intrinsic.ChildCount: return span.ChildCount < 0 ? TraceQLValue.Nil : TraceQLValue.FromInt(span.ChildCount);
            case Intrinsic.SpanId: return TraceQLValue.FromString(span.SpanId.ToHex());
            case Intrinsic.ParentId: return span.ParentSpanId.IsEmpty ? TraceQLValue.Nil : TraceQLValue.FromString(span.ParentSpanId.ToHex());
            case Intrinsic.NestedSetLeft: return span.HasNestedSet ? TraceQLValue.FromInt(span.NestedSetLeft) : TraceQLValue.Nil;
            case Intrinsic.NestedSetRight: return span.HasNestedSet ? TraceQLValue.FromInt(span.NestedSetRight) : TraceQLValue.Nil;
            case Intrinsic.NestedSetParent: return span.HasNestedSet ? TraceQLValue.FromInt(span.NestedSetParent) : TraceQLValue.Nil;
            case Intrinsic.TraceDuration: return TraceQLValue.FromDuration((long)span.Trace.DurationNanos);
            case Intrinsic.TraceRootName: return TraceQLValue.FromString(span.Trace.RootSpanName);
            case Intrinsic.TraceRootService: return TraceQLValue.FromString(span.Trace.RootServiceName);
            case Intrinsic.TraceId: return TraceQLValue.FromString(span.Trace.TraceId.ToHex());
            case Intrinsic.EventName: return ev is null ? TraceQLValue.Nil : TraceQLValue.FromString(ev.Name);
            case Intrinsic.EventTimeSinceStart: return ev is null ? TraceQLValue.Nil : TraceQLValue.FromDuration(ev.TimeSinceStartNanos);
            case Intrinsic.LinkTraceId: return link is null ? TraceQLValue.Nil : TraceQLValue.FromString(link.TraceId.ToHex());
            case Intrinsic.LinkSpanId: return link is null ? TraceQLValue.Nil : TraceQLValue.FromString(link.SpanId.ToHex());
            case Intrinsic.InstrumentationName: return TraceQLValue.FromString(span.ScopeName);
            case Intrinsic.InstrumentationVersion: return TraceQLValue.FromString(span.ScopeVersion);
            default:
                throw new TraceQLEvaluationException($"intrinsic {Intrinsics.CanonicalName(i)} is not supported");
        }
    }
}

/// <summary>Which per-span collections a filter expression iterates (computed once per query).</summary>
public readonly record struct FilterShape(bool UsesEvents, bool UsesLinks)
{
    // Shapes by expression identity: aggregates and by() ask once per spanset, so the AST walk is cached.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<FieldExpr, object> s_cache = [];

    public static FilterShape Of(FieldExpr expr)
    {
        ArgumentNullException.ThrowIfNull(expr);
        return (FilterShape)s_cache.GetValue(expr, static e => Compute(e));
    }

    private static FilterShape Compute(FieldExpr expr)
    {
        bool ev = false, ln = false;
        foreach (var n in expr.DescendantsAndSelf())
        {
            switch (n)
            {
                case AttributeExpr { Scope: AttributeScope.Event }:
                case IntrinsicExpr { Intrinsic: Intrinsic.EventName or Intrinsic.EventTimeSinceStart }:
                    ev = true;
                    break;
                case AttributeExpr { Scope: AttributeScope.Link }:
                case IntrinsicExpr { Intrinsic: Intrinsic.LinkTraceId or Intrinsic.LinkSpanId }:
                    ln = true;
                    break;
            }
        }

        return new(ev, ln);
    }
}
