namespace Rubato.TraceQL.Ast;

/// <summary>Where an attribute is looked up. <see cref="None"/> is the unscoped <c>.attr</c> form (span, then resource).</summary>
public enum AttributeScope : byte
{
    None,
    Span,
    Resource,
    Event,
    Link,
    Instrumentation,
}

/// <summary>The built-in fields of spans, traces, events, links and instrumentation scopes.</summary>
public enum Intrinsic : byte
{
    // span
    Duration,
    Name,
    Status,
    StatusMessage,
    Kind,
    ChildCount,
    SpanId,
    ParentId,

    // legacy structural / parent; Parent is parsed but unsupported
    Parent,
    NestedSetLeft,
    NestedSetRight,
    NestedSetParent,

    // trace
    TraceDuration,
    TraceRootName,
    TraceRootService,
    TraceId,

    // event
    EventName,
    EventTimeSinceStart,

    // link
    LinkTraceId,
    LinkSpanId,

    // instrumentation scope
    InstrumentationName,
    InstrumentationVersion,
}

/// <summary>The static type of a field expression, used by validation and by the engine to pick a column.</summary>
public enum StaticType : byte
{
    /// <summary>Not known until evaluation: an attribute can hold any type.</summary>
    Attribute,
    Int,
    Float,
    Duration,
    String,
    Boolean,
    Nil,
    Status,
    Kind,
}

/// <summary>Span status values (OTLP <c>Status.StatusCode</c> order: unset 0, ok 1, error 2).</summary>
public enum SpanStatus : byte
{
    Unset = 0,
    Ok = 1,
    Error = 2,
}

/// <summary>Span kinds, numbered as OTLP's <c>Span.SpanKind</c>.</summary>
public enum SpanKind : byte
{
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// <summary>Binary operators of field expressions (inside <c>{ }</c>, aggregates, <c>by()</c>).</summary>
public enum BinaryOp : byte
{
    And,
    Or,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Regex,
    NotRegex,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

/// <summary>Unary operators of field expressions. <see cref="Exists"/>/<see cref="NotExists"/> come from <c>!= nil</c>/<c>= nil</c>.</summary>
public enum UnaryOp : byte
{
    Negate,
    Not,
    Exists,
    NotExists,
}

/// <summary>Operators between spansets (structural relations and set logic).</summary>
public enum SpansetOp : byte
{
    And,
    Union,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

/// <summary>Comparison of scalar filters and metrics result filters.</summary>
public enum ComparisonOp : byte
{
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

/// <summary>Arithmetic between scalar expressions, and between whole metrics queries (Add/Sub/Mul/Div only).</summary>
public enum ArithmeticOp : byte
{
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

/// <summary>Aggregates of spanset pipelines.</summary>
public enum AggregateOp : byte
{
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

/// <summary>First-stage metrics functions (compare is its own node).</summary>
public enum MetricsFunction : byte
{
    Rate,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    AvgOverTime,
    QuantileOverTime,
    HistogramOverTime,
}

/// <summary>Operator spellings, precedences and type rules shared by the parser, printer and validator.</summary>
public static class Operators
{
    // Precedence levels follow Tempo's expr.y (increasing): | ; && || ; comparisons and structural ; + - ; ! ; * / % ; ^ (right).
    public const int PrecedenceLogical = 2;
    public const int PrecedenceComparison = 3;
    public const int PrecedenceAdditive = 4;
    public const int PrecedenceNot = 5;
    public const int PrecedenceMultiplicative = 6;
    public const int PrecedencePower = 7;

    public static string Text(BinaryOp op) => op switch
    {
        BinaryOp.And => "&&",
        BinaryOp.Or => "||",
        BinaryOp.Equal => "=",
        BinaryOp.NotEqual => "!=",
        BinaryOp.Less => "<",
        BinaryOp.LessEqual => "<=",
        BinaryOp.Greater => ">",
        BinaryOp.GreaterEqual => ">=",
        BinaryOp.Regex => "=~",
        BinaryOp.NotRegex => "!~",
        BinaryOp.Add => "+",
        BinaryOp.Sub => "-",
        BinaryOp.Mul => "*",
        BinaryOp.Div => "/",
        BinaryOp.Mod => "%",
        BinaryOp.Pow => "^",
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public static int Precedence(BinaryOp op) => op switch
    {
        BinaryOp.And or BinaryOp.Or => PrecedenceLogical,
        BinaryOp.Add or BinaryOp.Sub => PrecedenceAdditive,
        BinaryOp.Mul or BinaryOp.Div or BinaryOp.Mod => PrecedenceMultiplicative,
        BinaryOp.Pow => PrecedencePower,
        _ => PrecedenceComparison,
    };

    public static string Text(SpansetOp op) => op switch
    {
        SpansetOp.And => "&&",
        SpansetOp.Union => "||",
        SpansetOp.Child => ">",
        SpansetOp.Parent => "<",
        SpansetOp.Descendant => ">>",
        SpansetOp.Ancestor => "<<",
        SpansetOp.Sibling => "~",
        SpansetOp.NotChild => "!>",
        SpansetOp.NotParent => "!<",
        SpansetOp.NotDescendant => "!>>",
        SpansetOp.NotAncestor => "!<<",
        SpansetOp.NotSibling => "!~",
        SpansetOp.UnionChild => "&>",
        SpansetOp.UnionParent => "&<",
        SpansetOp.UnionDescendant => "&>>",
        SpansetOp.UnionAncestor => "&<<",
        SpansetOp.UnionSibling => "&~",
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public static int Precedence(SpansetOp op) =>
        op is SpansetOp.And or SpansetOp.Union ? PrecedenceLogical : PrecedenceComparison;

    public static string Text(ComparisonOp op) => op switch
    {
        ComparisonOp.Equal => "=",
        ComparisonOp.NotEqual => "!=",
        ComparisonOp.Less => "<",
        ComparisonOp.LessEqual => "<=",
        ComparisonOp.Greater => ">",
        ComparisonOp.GreaterEqual => ">=",
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public static string Text(ArithmeticOp op) => op switch
    {
        ArithmeticOp.Add => "+",
        ArithmeticOp.Sub => "-",
        ArithmeticOp.Mul => "*",
        ArithmeticOp.Div => "/",
        ArithmeticOp.Mod => "%",
        ArithmeticOp.Pow => "^",
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public static int Precedence(ArithmeticOp op) => op switch
    {
        ArithmeticOp.Add or ArithmeticOp.Sub => PrecedenceAdditive,
        ArithmeticOp.Pow => PrecedencePower,
        _ => PrecedenceMultiplicative,
    };

    public static string Text(AggregateOp op) => op switch
    {
        AggregateOp.Count => "count",
        AggregateOp.Avg => "avg",
        AggregateOp.Min => "min",
        AggregateOp.Max => "max",
        AggregateOp.Sum => "sum",
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public static string Text(MetricsFunction f) => f switch
    {
        MetricsFunction.Rate => "rate",
        MetricsFunction.CountOverTime => "count_over_time",
        MetricsFunction.MinOverTime => "min_over_time",
        MetricsFunction.MaxOverTime => "max_over_time",
        MetricsFunction.SumOverTime => "sum_over_time",
        MetricsFunction.AvgOverTime => "avg_over_time",
        MetricsFunction.QuantileOverTime => "quantile_over_time",
        MetricsFunction.HistogramOverTime => "histogram_over_time",
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    public static bool IsNumeric(this StaticType t) => t is StaticType.Int or StaticType.Float or StaticType.Duration;

    /// <summary>Whether a comparison/arithmetic between these operand types can ever make sense (Tempo's isMatchingOperand).</summary>
    public static bool IsMatchingOperand(StaticType a, StaticType b) =>
        a == StaticType.Attribute || b == StaticType.Attribute || a == b || (a.IsNumeric() && b.IsNumeric());

    /// <summary>Whether <paramref name="op"/> accepts an operand of type <paramref name="t"/> (Tempo's binaryTypeValid).</summary>
    public static bool AcceptsOperand(BinaryOp op, StaticType t) => t switch
    {
        StaticType.Attribute => true,
        StaticType.Boolean => op is BinaryOp.And or BinaryOp.Or or BinaryOp.Equal or BinaryOp.NotEqual,
        StaticType.Int or StaticType.Float or StaticType.Duration =>
            op is BinaryOp.Add or BinaryOp.Sub or BinaryOp.Mul or BinaryOp.Div or BinaryOp.Mod or BinaryOp.Pow
                or BinaryOp.Equal or BinaryOp.NotEqual or BinaryOp.Less or BinaryOp.LessEqual or BinaryOp.Greater or BinaryOp.GreaterEqual,
        StaticType.String =>
            op is BinaryOp.Equal or BinaryOp.NotEqual or BinaryOp.Regex or BinaryOp.NotRegex
                or BinaryOp.Less or BinaryOp.LessEqual or BinaryOp.Greater or BinaryOp.GreaterEqual,
        StaticType.Status or StaticType.Kind => op is BinaryOp.Equal or BinaryOp.NotEqual,
        _ => false,
    };

    /// <summary>True for operators whose result is a boolean regardless of operand types.</summary>
    public static bool IsBooleanResult(BinaryOp op) =>
        op is not (BinaryOp.Add or BinaryOp.Sub or BinaryOp.Mul or BinaryOp.Div or BinaryOp.Mod or BinaryOp.Pow);
}

/// <summary>Names, scopes and types of intrinsics.</summary>
public static class Intrinsics
{
    /// <summary>The canonical (scoped where one exists) spelling, e.g. <c>span:duration</c>, <c>trace:rootService</c>.</summary>
    public static string CanonicalName(Intrinsic i) => i switch
    {
        Intrinsic.Duration => "span:duration",
        Intrinsic.Name => "span:name",
        Intrinsic.Status => "span:status",
        Intrinsic.StatusMessage => "span:statusMessage",
        Intrinsic.Kind => "span:kind",
        Intrinsic.ChildCount => "span:childCount",
        Intrinsic.SpanId => "span:id",
        Intrinsic.ParentId => "span:parentID",
        Intrinsic.Parent => "parent",
        Intrinsic.NestedSetLeft => "nestedSetLeft",
        Intrinsic.NestedSetRight => "nestedSetRight",
        Intrinsic.NestedSetParent => "nestedSetParent",
        Intrinsic.TraceDuration => "trace:duration",
        Intrinsic.TraceRootName => "trace:rootName",
        Intrinsic.TraceRootService => "trace:rootService",
        Intrinsic.TraceId => "trace:id",
        Intrinsic.EventName => "event:name",
        Intrinsic.EventTimeSinceStart => "event:timeSinceStart",
        Intrinsic.LinkTraceId => "link:traceID",
        Intrinsic.LinkSpanId => "link:spanID",
        Intrinsic.InstrumentationName => "instrumentation:name",
        Intrinsic.InstrumentationVersion => "instrumentation:version",
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    public static StaticType TypeOf(Intrinsic i) => i switch
    {
        Intrinsic.Duration or Intrinsic.TraceDuration or Intrinsic.EventTimeSinceStart => StaticType.Duration,
        Intrinsic.Status => StaticType.Status,
        Intrinsic.Kind => StaticType.Kind,
        Intrinsic.ChildCount or Intrinsic.NestedSetLeft or Intrinsic.NestedSetRight or Intrinsic.NestedSetParent => StaticType.Int,
        Intrinsic.Parent => StaticType.Attribute,
        _ => StaticType.String,
    };

    /// <summary>Legacy unscoped names (<c>duration</c>, <c>rootServiceName</c>, ...).</summary>
    public static bool TryLegacy(ReadOnlySpan<char> name, out Intrinsic intrinsic)
    {
        switch (name)
        {
            case "duration": intrinsic = Intrinsic.Duration; return true;
            case "name": intrinsic = Intrinsic.Name; return true;
            case "status": intrinsic = Intrinsic.Status; return true;
            case "statusMessage": intrinsic = Intrinsic.StatusMessage; return true;
            case "kind": intrinsic = Intrinsic.Kind; return true;
            case "childCount": intrinsic = Intrinsic.ChildCount; return true;
            case "parent": intrinsic = Intrinsic.Parent; return true;
            case "rootName": intrinsic = Intrinsic.TraceRootName; return true;
            case "rootServiceName": intrinsic = Intrinsic.TraceRootService; return true;
            case "traceDuration": intrinsic = Intrinsic.TraceDuration; return true;
            case "nestedSetLeft": intrinsic = Intrinsic.NestedSetLeft; return true;
            case "nestedSetRight": intrinsic = Intrinsic.NestedSetRight; return true;
            case "nestedSetParent": intrinsic = Intrinsic.NestedSetParent; return true;
            default: intrinsic = default; return false;
        }
    }

    /// <summary>Scoped forms <c>scope:name</c>; false when the scope has no such intrinsic (e.g. <c>event:duration</c>).</summary>
    public static bool TryScoped(ReadOnlySpan<char> scope, ReadOnlySpan<char> name, out Intrinsic intrinsic)
    {
        intrinsic = default;
        switch (scope)
        {
            case "span":
                switch (name)
                {
                    case "duration": intrinsic = Intrinsic.Duration; return true;
                    case "name": intrinsic = Intrinsic.Name; return true;
                    case "kind": intrinsic = Intrinsic.Kind; return true;
                    case "status": intrinsic = Intrinsic.Status; return true;
                    case "statusMessage": intrinsic = Intrinsic.StatusMessage; return true;
                    case "id": intrinsic = Intrinsic.SpanId; return true;
                    case "parentID": intrinsic = Intrinsic.ParentId; return true;
                    case "childCount": intrinsic = Intrinsic.ChildCount; return true;
                    default: return false;
                }

            case "trace":
                switch (name)
                {
                    case "duration": intrinsic = Intrinsic.TraceDuration; return true;
                    case "rootName": intrinsic = Intrinsic.TraceRootName; return true;
                    case "rootService": intrinsic = Intrinsic.TraceRootService; return true;
                    case "id": intrinsic = Intrinsic.TraceId; return true;
                    default: return false;
                }

            case "event":
                switch (name)
                {
                    case "name": intrinsic = Intrinsic.EventName; return true;
                    case "timeSinceStart": intrinsic = Intrinsic.EventTimeSinceStart; return true;
                    default: return false;
                }

            case "link":
                switch (name)
                {
                    case "traceID": intrinsic = Intrinsic.LinkTraceId; return true;
                    case "spanID": intrinsic = Intrinsic.LinkSpanId; return true;
                    default: return false;
                }

            case "instrumentation":
                switch (name)
                {
                    case "name": intrinsic = Intrinsic.InstrumentationName; return true;
                    case "version": intrinsic = Intrinsic.InstrumentationVersion; return true;
                    default: return false;
                }

            default:
                return false;
        }
    }

    /// <summary>The intrinsic names a scope offers, for error messages.</summary>
    public static string NamesOf(ReadOnlySpan<char> scope) => scope switch
    {
        "span" => "duration, name, kind, status, statusMessage, id, parentID, childCount",
        "trace" => "duration, rootName, rootService, id",
        "event" => "name, timeSinceStart",
        "link" => "traceID, spanID",
        "instrumentation" => "name, version",
        _ => string.Empty,
    };
}
