namespace Rubato.TraceQL.Lexing;

public enum TokenKind : byte
{
    EndOfInput,

    // punctuation
    OpenBrace,
    CloseBrace,
    OpenParen,
    CloseParen,
    Comma,
    Pipe,

    // comparison / regex
    Equal,
    NotEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Regex,

    /// <summary><c>!~</c>: not-regex between fields, not-sibling between spansets.</summary>
    NotRegex,

    // logic
    And,
    Or,
    Not,

    // arithmetic
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,

    // structural
    Descendant,
    Ancestor,
    Tilde,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,

    // literals; Token.Int / Float / Text carry the value
    Integer,
    Float,
    Duration,
    String,
    True,
    False,
    Nil,
    StatusOk,
    StatusError,
    StatusUnset,
    KindUnspecified,
    KindInternal,
    KindServer,
    KindClient,
    KindProducer,
    KindConsumer,

    /// <summary>An attribute reference; Token.Scope, Token.Parent and Token.Text (the unescaped name) describe it.</summary>
    Attribute,

    /// <summary>An intrinsic, legacy (<c>duration</c>) or scoped (<c>span:duration</c>); Token.Intrinsic says which.</summary>
    Intrinsic,

    /// <summary>Any other word (only valid as a hint name).</summary>
    Identifier,

    // aggregates and pipeline keywords
    Count,
    Avg,
    Min,
    Max,
    Sum,
    By,
    Coalesce,
    Select,
    With,

    // metrics
    Rate,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    AvgOverTime,
    QuantileOverTime,
    HistogramOverTime,
    Compare,
    TopK,
    BottomK,
}

/// <summary>
/// One token: its kind and where it is (<see cref="Offset"/>, <see cref="Length"/> in UTF-16 chars).
/// Values are decoded once by the lexer: numbers into <see cref="Int"/>/<see cref="Float"/>, durations into
/// <see cref="Int"/> (nanoseconds), strings and attribute names into <see cref="Text"/> (the only allocation per token).
/// </summary>
public readonly record struct Token(TokenKind Kind, int Offset, int Length)
{
    public long Int { get; init; }

    public double Float { get; init; }

    public string? Text { get; init; }

    public Ast.AttributeScope Scope { get; init; }

    public bool Parent { get; init; }

    public Ast.Intrinsic Intrinsic { get; init; }

    public int End => Offset + Length;
}
