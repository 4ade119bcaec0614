using System.Text.RegularExpressions;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Validation;

/// <summary>
/// Semantic checks after parsing, following Tempo's ast_validate.go: type errors and meaningless constructs throw
/// <see cref="TraceQLValidationException"/>; valid TraceQL that Tempo does not support yet (the <c>parent</c> scope and
/// intrinsic, scalar filters other than <c>aggregate op constant</c>, more than 5 metrics group-bys) throws
/// <see cref="TraceQLUnsupportedException"/>. The first problem in source order wins.
/// </summary>
public static class TraceQLValidator
{
    /// <summary>Tempo's limit on <c>by()</c> labels of a metrics query.</summary>
    public const int MaxMetricsGroupBys = 5;

    public static void Validate(RootExpr root)
    {
        ArgumentNullException.ThrowIfNull(root);
        ValidateQuery(root.Query);
        foreach (var h in root.Hints)
        {
            if (h.Value is NilLiteral)
            {
                throw Invalid(h, $"hint '{h.Name}' needs a value");
            }
        }
    }

    /// <summary>The static type of a field expression (Tempo's impliedType).</summary>
    public static StaticType TypeOf(FieldExpr e) => e switch
    {
        LiteralExpr l => l.Type,
        AttributeExpr => StaticType.Attribute,
        IntrinsicExpr i => i.Type,
        BinaryExpr b when Operators.IsBooleanResult(b.Op) => StaticType.Boolean,
        BinaryExpr b => TypeOf(b.Left) is var lt && lt != StaticType.Attribute ? lt : TypeOf(b.Right),
        UnaryExpr u when u.Op is UnaryOp.Not or UnaryOp.Exists or UnaryOp.NotExists => StaticType.Boolean,
        UnaryExpr u => TypeOf(u.Operand),
        _ => StaticType.Attribute,
    };

    /// <summary>True when the expression reads span data (an attribute or intrinsic), not only constants.</summary>
    public static bool ReferencesSpan(FieldExpr e) => e switch
    {
        AttributeExpr or IntrinsicExpr => true,
        BinaryExpr b => ReferencesSpan(b.Left) || ReferencesSpan(b.Right),
        UnaryExpr u => ReferencesSpan(u.Operand),
        _ => false,
    };

    private static void ValidateQuery(QueryExpr q)
    {
        switch (q)
        {
            case SpansetQuery s:
                ValidatePipeline(s.Pipeline);
                break;
            case MetricsQuery m:
                ValidatePipeline(m.Pipeline);
                ValidateFirstStage(m.FirstStage);
                if (m.FirstStage is MetricsCompare && m.SecondStages.Count > 0)
                {
                    throw Invalid(m.SecondStages[0], "compare() cannot be used with second stage functions such as topk() or filters");
                }

                ValidateSecondStages(m.SecondStages);
                break;
            case MetricsScalar:
                break;
            case MetricsMath math:
                ValidateQuery(math.Left);
                ValidateQuery(math.Right);
                if (math.Op is not (ArithmeticOp.Add or ArithmeticOp.Sub or ArithmeticOp.Mul or ArithmeticOp.Div))
                {
                    throw Invalid(math, $"unsupported math operation between queries: {Operators.Text(math.Op)}");
                }

                ValidateSecondStages(math.SecondStages);
                break;
            default:
                throw new ArgumentException($"unknown query type {q.GetType().Name}", nameof(q));
        }
    }

    private static void ValidatePipeline(Pipeline p)
    {
        foreach (var e in p.Elements)
        {
            ValidateElement(e);
        }
    }

    private static void ValidateElement(PipelineElement e)
    {
        switch (e)
        {
            case SpansetFilter f:
                {
                    ValidateField(f.Expression);
                    var t = TypeOf(f.Expression);
                    if (t is not (StaticType.Attribute or StaticType.Boolean))
                    {
                        throw Invalid(f.Expression, $"spanset filter must evaluate to a boolean, but '{f.Expression}' is {Name(t)}");
                    }

                    break;
                }

            case SpansetOperation op:
                ValidateElement(op.Left);
                ValidateElement(op.Right);
                break;
            case Pipeline p:
                ValidatePipeline(p);
                break;
            case ScalarFilter sf:
                ValidateScalarFilter(sf);
                break;
            case GroupOperation g:
                if (!ReferencesSpan(g.Expression))
                {
                    throw Invalid(g, $"grouping field expressions must reference the span: {g}");
                }

                ValidateField(g.Expression);
                break;
            case SelectOperation s:
                foreach (var a in s.Attributes)
                {
                    ValidateField(a);
                }

                break;
            case CoalesceOperation:
                break;
            default:
                throw new ArgumentException($"unknown pipeline element {e.GetType().Name}", nameof(e));
        }
    }

    private static void ValidateScalarFilter(ScalarFilter f)
    {
        ValidateScalar(f.Left);
        ValidateScalar(f.Right);
        var lt = TypeOfScalar(f.Left);
        var rt = TypeOfScalar(f.Right);
        if (!Operators.IsMatchingOperand(lt, rt))
        {
            throw Invalid(f, $"scalar filter compares {Name(lt)} with {Name(rt)}: {f}");
        }

        if (f.Left is not AggregateExpr)
        {
            throw Unsupported(f.Left, $"scalar filter with '{f.Left}' on the left (only an aggregate such as count() or avg(duration)) not yet supported");
        }

        if (f.Right is not ScalarLiteral)
        {
            throw Unsupported(f.Right, $"scalar filter with '{f.Right}' on the right (only a constant) not yet supported");
        }
    }

    private static StaticType TypeOfScalar(ScalarExpr s) => s switch
    {
        ScalarLiteral l => l.Value.Type,
        AggregateExpr { Op: AggregateOp.Count } => StaticType.Int,
        AggregateExpr a => a.Argument is null ? StaticType.Attribute : TypeOf(a.Argument),
        ScalarPipeline p => TypeOfScalar(p.Aggregate),
        ScalarOperation o => TypeOfScalar(o.Left) is var lt && lt != StaticType.Attribute ? lt : TypeOfScalar(o.Right),
        _ => StaticType.Attribute,
    };

    private static void ValidateScalar(ScalarExpr s)
    {
        switch (s)
        {
            case AggregateExpr a:
                ValidateAggregate(a);
                break;
            case ScalarLiteral:
                break;
            case ScalarPipeline p:
                ValidatePipeline(p.Pipeline);
                ValidateAggregate(p.Aggregate);
                break;
            case ScalarOperation o:
                {
                    ValidateScalar(o.Left);
                    ValidateScalar(o.Right);
                    var lt = TypeOfScalar(o.Left);
                    var rt = TypeOfScalar(o.Right);
                    if (!Operators.IsMatchingOperand(lt, rt) || !lt.IsNumericOrAttribute() || !rt.IsNumericOrAttribute())
                    {
                        throw Invalid(o, $"arithmetic '{Operators.Text(o.Op)}' needs numbers, got {Name(lt)} and {Name(rt)}: {o}");
                    }

                    break;
                }

            default:
                throw new ArgumentException($"unknown scalar expression {s.GetType().Name}", nameof(s));
        }
    }

    private static bool IsNumericOrAttribute(this StaticType t) => t == StaticType.Attribute || t.IsNumeric();

    private static void ValidateAggregate(AggregateExpr a)
    {
        if (a.Argument is null)
        {
            return;
        }

        ValidateField(a.Argument);
        var t = TypeOf(a.Argument);
        if (!t.IsNumericOrAttribute())
        {
            throw Invalid(a.Argument, $"aggregate field expressions must resolve to a number, but '{a.Argument}' is {Name(t)}: {a}");
        }

        if (!ReferencesSpan(a.Argument))
        {
            throw Invalid(a.Argument, $"aggregate field expressions must reference the span: {a}");
        }
    }

    private static void ValidateFirstStage(MetricsFirstStage f)
    {
        switch (f)
        {
            case MetricsAggregate a:
                if (a.Attribute is not null)
                {
                    ValidateField(a.Attribute);
                    var t = TypeOf(a.Attribute);
                    if (!t.IsNumericOrAttribute())
                    {
                        throw Invalid(a.Attribute, $"{Operators.Text(a.Function)}() needs a numeric attribute, but '{a.Attribute}' is {Name(t)}");
                    }
                }

                foreach (var q in a.Quantiles)
                {
                    if (!(q >= 0 && q <= 1))
                    {
                        throw Invalid(a, $"quantile {q} is outside [0, 1]");
                    }
                }

                foreach (var b in a.By)
                {
                    ValidateField(b);
                }

                if (a.By.Count > MaxMetricsGroupBys)
                {
                    throw Unsupported(a.By[MaxMetricsGroupBys], $"metrics group by {a.By.Count} values (more than {MaxMetricsGroupBys}) not yet supported");
                }

                break;
            case MetricsCompare c:
                ValidateElement(c.Selection);
                if (c.TopN <= 0)
                {
                    throw Invalid(c, $"compare() top-N must be positive, got {c.TopN}");
                }

                if (c.Start < 0 || c.End < 0 || (c.End != 0 && c.End < c.Start))
                {
                    throw Invalid(c, "compare() start and end must be non-negative Unix nanoseconds with start <= end");
                }

                break;
            default:
                throw new ArgumentException($"unknown metrics function {f.GetType().Name}", nameof(f));
        }
    }

    private static void ValidateSecondStages(ValueList<SecondStageElement> stages)
    {
        foreach (var s in stages)
        {
            if (s is TopKBottomK t && t.Limit <= 0)
            {
                throw Invalid(t, $"{(t.Function == TopKFunction.TopK ? "topk" : "bottomk")}() limit must be positive, got {t.Limit}");
            }

            if (s is MetricsFilter f && !double.IsFinite(f.Value))
            {
                throw Invalid(f, "metrics filter value must be a finite number");
            }
        }
    }

    private static void ValidateField(FieldExpr e)
    {
        switch (e)
        {
            case LiteralExpr:
                break;
            case AttributeExpr a:
                if (a.Parent)
                {
                    throw Unsupported(a, $"parent scope ('{a}') not yet supported");
                }

                break;
            case IntrinsicExpr i:
                if (i.Intrinsic == Intrinsic.Parent)
                {
                    throw Unsupported(i, "intrinsic 'parent' not yet supported");
                }

                break;
            case BinaryExpr b:
                ValidateBinary(b);
                break;
            case UnaryExpr u:
                ValidateUnary(u);
                break;
            default:
                throw new ArgumentException($"unknown field expression {e.GetType().Name}", nameof(e));
        }
    }

    private static void ValidateBinary(BinaryExpr b)
    {
        ValidateField(b.Left);
        ValidateField(b.Right);
        var lt = TypeOf(b.Left);
        var rt = TypeOf(b.Right);
        string op = Operators.Text(b.Op);
        if (lt == StaticType.Nil || rt == StaticType.Nil)
        {
            throw Invalid(b.Left is NilLiteral ? b.Left : b.Right, $"nil can only be used as '= nil' or '!= nil', not with '{op}': {b}");
        }

        if (!Operators.IsMatchingOperand(lt, rt))
        {
            throw Invalid(b, $"binary operations must operate on the same type: '{op}' between {Name(lt)} and {Name(rt)} in {b}");
        }

        if (!Operators.AcceptsOperand(b.Op, lt) || !Operators.AcceptsOperand(b.Op, rt))
        {
            var bad = Operators.AcceptsOperand(b.Op, lt) ? rt : lt;
            throw Invalid(b, $"operator '{op}' cannot be applied to {Name(bad)}: {b}");
        }

        if (b.Op is BinaryOp.Regex or BinaryOp.NotRegex && b.Right is StringLiteral pattern)
        {
            try
            {
                _ = new Regex(pattern.Value, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException ex)
            {
                throw Invalid(b.Right, $"invalid regex {AstPrinter.Print(pattern)}: {ex.Message}");
            }
        }
    }

    private static void ValidateUnary(UnaryExpr u)
    {
        ValidateField(u.Operand);
        var t = TypeOf(u.Operand);
        switch (u.Op)
        {
            case UnaryOp.Negate:
                if (!t.IsNumericOrAttribute())
                {
                    throw Invalid(u, $"unary '-' needs a number, but '{u.Operand}' is {Name(t)}");
                }

                break;
            case UnaryOp.Not:
                if (t is not (StaticType.Attribute or StaticType.Boolean))
                {
                    throw Invalid(u, $"'!' needs a boolean, but '{u.Operand}' is {Name(t)}");
                }

                break;
            default:
                if (!ReferencesSpan(u.Operand))
                {
                    throw Invalid(u, $"'{(u.Op == UnaryOp.Exists ? "!= nil" : "= nil")}' tests whether an attribute exists; '{u.Operand}' is a constant");
                }

                break;
        }
    }

    private static string Name(StaticType t) => t switch
    {
        StaticType.Attribute => "an attribute",
        StaticType.Int => "an integer",
        StaticType.Float => "a float",
        StaticType.Duration => "a duration",
        StaticType.String => "a string",
        StaticType.Boolean => "a boolean",
        StaticType.Nil => "nil",
        StaticType.Status => "a status",
        StaticType.Kind => "a kind",
        _ => t.ToString(),
    };

    private static TraceQLValidationException Invalid(AstNode at, string message) =>
        new(Position(at, message), at.Span.Start);

    private static TraceQLUnsupportedException Unsupported(AstNode at, string message) =>
        new(Position(at, message), at.Span.Start);

    private static string Position(AstNode at, string message) =>
        at.Span.Start >= 0 ? $"{message} (at offset {at.Span.Start})" : message;
}
