namespace Rubato.TraceQL.Ast;

/// <summary>A region of the query text: <see cref="Start"/> is a UTF-16 offset.</summary>
public readonly record struct TextSpan(int Start, int Length)
{
    public static readonly TextSpan None = new(-1, 0);

    public int End => Start + Length;

    public static TextSpan Cover(TextSpan a, TextSpan b)
    {
        if (a.Start < 0)
        {
            return b;
        }

        if (b.Start < 0)
        {
            return a;
        }

        int start = Math.Min(a.Start, b.Start);
        return new(start, Math.Max(a.End, b.End) - start);
    }
}

/// <summary>
/// Base of every AST node. Nodes are immutable records; equality is structural and ignores <see cref="Span"/>,
/// so a query and its re-parsed canonical print compare equal. <see cref="object.ToString"/> is the canonical text.
/// </summary>
public abstract record AstNode
{
    /// <summary>Where the node came from in the query text; <see cref="TextSpan.None"/> for synthesised nodes.</summary>
    public TextSpan Span { get; init; } = TextSpan.None;

    /// <summary>Direct children in source order (for walkers).</summary>
    public abstract IEnumerable<AstNode> Children();

    /// <summary>This node and all its descendants, pre-order.</summary>
    public IEnumerable<AstNode> DescendantsAndSelf()
    {
        var stack = new Stack<AstNode>();
        stack.Push(this);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            yield return n;
            var kids = n.Children().ToArray();
            for (int i = kids.Length - 1; i >= 0; i--)
            {
                stack.Push(kids[i]);
            }
        }
    }

    public virtual bool Equals(AstNode? other) => other is not null && EqualityContract == other.EqualityContract;

    public override int GetHashCode() => EqualityContract.GetHashCode();

    public sealed override string ToString() => AstPrinter.Print(this);
}

// ---------------------------------------------------------------- field expressions

/// <summary>An expression evaluated per span: inside <c>{ }</c>, aggregate arguments, <c>by()</c>, <c>select()</c>, metrics attributes.</summary>
public abstract record FieldExpr : AstNode;

/// <summary>A constant.</summary>
public abstract record LiteralExpr : FieldExpr
{
    public abstract StaticType Type { get; }

    public override IEnumerable<AstNode> Children() => [];
}

public sealed record IntLiteral(long Value) : LiteralExpr
{
    public override StaticType Type => StaticType.Int;
}

public sealed record FloatLiteral(double Value) : LiteralExpr
{
    public override StaticType Type => StaticType.Float;
}

/// <summary>A duration in nanoseconds (Go's <c>time.Duration</c> range).</summary>
public sealed record DurationLiteral(long Nanoseconds) : LiteralExpr
{
    public override StaticType Type => StaticType.Duration;
}

public sealed record StringLiteral(string Value) : LiteralExpr
{
    public override StaticType Type => StaticType.String;
}

public sealed record BoolLiteral(bool Value) : LiteralExpr
{
    public override StaticType Type => StaticType.Boolean;
}

/// <summary><c>nil</c>. After parsing it only survives where it is misused (the parser turns <c>x != nil</c> into <see cref="UnaryOp.Exists"/>).</summary>
public sealed record NilLiteral : LiteralExpr
{
    public override StaticType Type => StaticType.Nil;
}

public sealed record StatusLiteral(SpanStatus Value) : LiteralExpr
{
    public override StaticType Type => StaticType.Status;
}

public sealed record KindLiteral(SpanKind Value) : LiteralExpr
{
    public override StaticType Type => StaticType.Kind;
}

/// <summary>
/// A named attribute: <c>.name</c> (<see cref="AttributeScope.None"/>), <c>span.name</c>, <c>resource.name</c>, ...
/// <see cref="Parent"/> marks the <c>parent.</c> prefix (parsed, unsupported).
/// </summary>
public sealed record AttributeExpr(AttributeScope Scope, bool Parent, string Name) : FieldExpr
{
    public override IEnumerable<AstNode> Children() => [];
}

/// <summary>A built-in field such as <c>span:duration</c> or legacy <c>duration</c> (both give the same node).</summary>
public sealed record IntrinsicExpr(Intrinsic Intrinsic) : FieldExpr
{
    public StaticType Type => Intrinsics.TypeOf(Intrinsic);

    public override IEnumerable<AstNode> Children() => [];
}

/// <summary>
/// A binary operation. For <see cref="BinaryOp.Regex"/>/<see cref="BinaryOp.NotRegex"/> the right side is normally a
/// <see cref="StringLiteral"/> holding the unanchored pattern; TraceQL regexes match the whole value, so the engine anchors them.
/// </summary>
public sealed record BinaryExpr(BinaryOp Op, FieldExpr Left, FieldExpr Right) : FieldExpr
{
    public override IEnumerable<AstNode> Children() => [Left, Right];
}

public sealed record UnaryExpr(UnaryOp Op, FieldExpr Operand) : FieldExpr
{
    public override IEnumerable<AstNode> Children() => [Operand];
}

// ---------------------------------------------------------------- pipelines

/// <summary>One stage of a <c>|</c> pipeline.</summary>
public abstract record PipelineElement : AstNode;

/// <summary>An expression producing spansets: a filter, an operation between spansets, or a nested pipeline.</summary>
public abstract record SpansetExpr : PipelineElement;

/// <summary><c>{ expr }</c>; <c>{}</c> is <c>{ true }</c>.</summary>
public sealed record SpansetFilter(FieldExpr Expression) : SpansetExpr
{
    public override IEnumerable<AstNode> Children() => [Expression];
}

/// <summary><c>left op right</c> between spansets: <c>&amp;&amp; || &gt; &lt; &gt;&gt; &lt;&lt; ~</c> and the <c>!</c>/<c>&amp;</c> variants.</summary>
public sealed record SpansetOperation(SpansetOp Op, SpansetExpr Left, SpansetExpr Right) : SpansetExpr
{
    public override IEnumerable<AstNode> Children() => [Left, Right];
}

/// <summary>
/// Stages joined by <c>|</c>. The root query always has one; a nested pipeline (in parentheses, as an operand of a
/// spanset operation or as a stage) has at least two stages, because parentheses alone create no node.
/// </summary>
public sealed record Pipeline(ValueList<PipelineElement> Elements) : SpansetExpr
{
    public override IEnumerable<AstNode> Children() => Elements;
}

/// <summary><c>count() &gt; 3</c>, <c>avg(duration) &gt; 20ms</c>: keeps spansets whose aggregate passes.</summary>
public sealed record ScalarFilter(ComparisonOp Op, ScalarExpr Left, ScalarExpr Right) : PipelineElement
{
    public override IEnumerable<AstNode> Children() => [Left, Right];
}

/// <summary><c>by(expr)</c>: splits spansets by the value of a field expression.</summary>
public sealed record GroupOperation(FieldExpr Expression) : PipelineElement
{
    public override IEnumerable<AstNode> Children() => [Expression];
}

/// <summary><c>coalesce()</c>: merges the spansets of a trace back into one.</summary>
public sealed record CoalesceOperation : PipelineElement
{
    public override IEnumerable<AstNode> Children() => [];
}

/// <summary><c>select(a, b, ...)</c>: extra attributes/intrinsics to return; each is an <see cref="AttributeExpr"/> or <see cref="IntrinsicExpr"/>.</summary>
public sealed record SelectOperation(ValueList<FieldExpr> Attributes) : PipelineElement
{
    public override IEnumerable<AstNode> Children() => Attributes;
}

// ---------------------------------------------------------------- scalar expressions

/// <summary>A number computed per spanset: aggregates, numeric constants and arithmetic between them.</summary>
public abstract record ScalarExpr : AstNode;

/// <summary><c>count()</c> (no argument), <c>avg(expr)</c>, <c>min</c>, <c>max</c>, <c>sum</c>.</summary>
public sealed record AggregateExpr(AggregateOp Op, FieldExpr? Argument) : ScalarExpr
{
    public override IEnumerable<AstNode> Children() => Argument is null ? [] : [Argument];
}

/// <summary>A numeric constant (int, float or duration) in a scalar expression.</summary>
public sealed record ScalarLiteral(LiteralExpr Value) : ScalarExpr
{
    public override IEnumerable<AstNode> Children() => [Value];
}

public sealed record ScalarOperation(ArithmeticOp Op, ScalarExpr Left, ScalarExpr Right) : ScalarExpr
{
    public override IEnumerable<AstNode> Children() => [Left, Right];
}

/// <summary><c>({ ... } | count())</c>: a parenthesised pipeline ending in an aggregate.</summary>
public sealed record ScalarPipeline(Pipeline Pipeline, AggregateExpr Aggregate) : ScalarExpr
{
    public override IEnumerable<AstNode> Children() => [Pipeline, Aggregate];
}

// ---------------------------------------------------------------- metrics

/// <summary>The function that turns spans into time series.</summary>
public abstract record MetricsFirstStage : AstNode;

/// <summary>
/// <c>rate()</c>, <c>count_over_time()</c>, <c>min/max/sum/avg_over_time(attr)</c>, <c>quantile_over_time(attr, q...)</c>,
/// <c>histogram_over_time(attr)</c>, each with optional <c>by (attr, ...)</c>.
/// </summary>
public sealed record MetricsAggregate(MetricsFunction Function, FieldExpr? Attribute, ValueList<double> Quantiles, ValueList<FieldExpr> By)
    : MetricsFirstStage
{
    public override IEnumerable<AstNode> Children() =>
        Attribute is null ? By : new AstNode[] { Attribute }.Concat(By);
}

/// <summary><c>compare({selection}, topN, start, end)</c>; start/end are Unix nanoseconds, 0 for the whole range.</summary>
public sealed record MetricsCompare(SpansetFilter Selection, int TopN, long Start, long End) : MetricsFirstStage
{
    public const int DefaultTopN = 10;

    public override IEnumerable<AstNode> Children() => [Selection];
}

/// <summary>Post-processing of series: <c>| topk(n)</c>, <c>| bottomk(n)</c> and result filters such as <c>&gt; 10</c>.</summary>
public abstract record SecondStageElement : AstNode;

public enum TopKFunction : byte
{
    TopK,
    BottomK,
}

public sealed record TopKBottomK(TopKFunction Function, int Limit) : SecondStageElement
{
    public override IEnumerable<AstNode> Children() => [];
}

/// <summary>Keeps the series points for which <c>value op Value</c> holds (Tempo 3.0 result-threshold filters).</summary>
public sealed record MetricsFilter(ComparisonOp Op, double Value) : SecondStageElement
{
    public override IEnumerable<AstNode> Children() => [];
}

// ---------------------------------------------------------------- queries

/// <summary>What the query computes: a spanset pipeline, one metrics query, or arithmetic between metrics queries.</summary>
public abstract record QueryExpr : AstNode;

/// <summary>A search: the pipeline's spansets are the result.</summary>
public sealed record SpansetQuery(Pipeline Pipeline) : QueryExpr
{
    public override IEnumerable<AstNode> Children() => [Pipeline];
}

/// <summary>A metrics query or arithmetic between them; <see cref="SecondStages"/> apply in order to the resulting series.</summary>
public abstract record MetricsExpr : QueryExpr
{
    public abstract ValueList<SecondStageElement> SecondStages { get; init; }
}

/// <summary><c>pipeline | rate() by (...) | topk(5) &gt; 10</c>.</summary>
public sealed record MetricsQuery(Pipeline Pipeline, MetricsFirstStage FirstStage, ValueList<SecondStageElement> SecondStages) : MetricsExpr
{
    public override ValueList<SecondStageElement> SecondStages { get; init; } = SecondStages;

    public override IEnumerable<AstNode> Children() => new AstNode[] { Pipeline, FirstStage }.Concat(SecondStages);
}

/// <summary><c>(q1) / (q2)</c>: series arithmetic (Add, Sub, Mul, Div) between two metrics queries, matched by labels.</summary>
public sealed record MetricsMath(ArithmeticOp Op, MetricsExpr Left, MetricsExpr Right, ValueList<SecondStageElement> SecondStages) : MetricsExpr
{
    public override ValueList<SecondStageElement> SecondStages { get; init; } = SecondStages;

    public override IEnumerable<AstNode> Children() => new AstNode[] { Left, Right }.Concat(SecondStages);
}

/// <summary>A number in metrics arithmetic: <c>({ } | rate()) * 60</c>; it applies to every series of the other side.</summary>
public sealed record MetricsScalar(double Value) : MetricsExpr
{
    public override ValueList<SecondStageElement> SecondStages { get; init; } = ValueList<SecondStageElement>.Empty;

    public override IEnumerable<AstNode> Children() => [];
}

/// <summary>One <c>with(name = value)</c> query hint.</summary>
public sealed record Hint(string Name, LiteralExpr Value) : AstNode
{
    public override IEnumerable<AstNode> Children() => [Value];
}

/// <summary>A parsed query: the body and its hints. Create with <see cref="Parsing.TraceQLParser.Parse(string)"/>.</summary>
public sealed record RootExpr(QueryExpr Query, ValueList<Hint> Hints) : AstNode
{
    /// <summary>The spanset pipeline when this is a search (not a metrics) query.</summary>
    public Pipeline? SearchPipeline => (Query as SpansetQuery)?.Pipeline;

    public bool IsMetrics => Query is MetricsExpr;

    /// <summary>The hint with that name, or null.</summary>
    public Hint? GetHint(string name)
    {
        foreach (var h in Hints)
        {
            if (h.Name == name)
            {
                return h;
            }
        }

        return null;
    }

    /// <summary>Throws <see cref="TraceQLValidationException"/> or <see cref="TraceQLUnsupportedException"/>.</summary>
    public void Validate() => Validation.TraceQLValidator.Validate(this);

    public override IEnumerable<AstNode> Children() => new AstNode[] { Query }.Concat(Hints);
}
