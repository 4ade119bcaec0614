using System.Globalization;
using Rubato.Common.Model;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>The runtime type of a <see cref="TraceQLValue"/>.</summary>
public enum ValueKind : byte
{
    /// <summary>Missing attribute, or a value TraceQL cannot compare (bytes, kvlist).</summary>
    Nil,
    Int,
    Float,
    Duration,
    String,
    Bool,
    Status,
    Kind,

    /// <summary>An OTLP array attribute; elements are scalars (nested arrays/kvlists become nil elements).</summary>
    Array,
}

/// <summary>
/// A TraceQL runtime value (Tempo's <c>Static</c>). A 24-byte struct: numbers live inline, strings and arrays by
/// reference, so a columnar reader fills spans without boxing. Durations are nanoseconds.
/// </summary>
public readonly struct TraceQLValue : IEquatable<TraceQLValue>
{
    private readonly long _n;
    private readonly object? _ref;

    private TraceQLValue(ValueKind kind, long n, object? r)
    {
        Kind = kind;
        _n = n;
        _ref = r;
    }

    public static TraceQLValue Nil => default;

    public ValueKind Kind { get; }

    public bool IsNil => Kind == ValueKind.Nil;

    /// <summary>Int, duration (ns), bool (0/1), status and kind (enum numbers).</summary>
    public long Int => _n;

    public double Float => BitConverter.Int64BitsToDouble(_n);

    public string String => _ref as string ?? string.Empty;

    public bool Bool => _n != 0;

    public SpanStatus Status => (SpanStatus)_n;

    public Ast.SpanKind SpanKind => (Ast.SpanKind)_n;

    public TraceQLValue[] Array => _ref as TraceQLValue[] ?? [];

    public bool IsNumeric => Kind is ValueKind.Int or ValueKind.Float or ValueKind.Duration;

    public static TraceQLValue FromInt(long v) => new(ValueKind.Int, v, null);

    public static TraceQLValue FromFloat(double v) => new(ValueKind.Float, BitConverter.DoubleToInt64Bits(v), null);

    public static TraceQLValue FromDuration(long nanos) => new(ValueKind.Duration, nanos, null);

    public static TraceQLValue FromString(string v) => new(ValueKind.String, 0, v);

    public static TraceQLValue FromBool(bool v) => new(ValueKind.Bool, v ? 1 : 0, null);

    public static TraceQLValue FromStatus(SpanStatus v) => new(ValueKind.Status, (long)v, null);

    public static TraceQLValue FromKind(Ast.SpanKind v) => new(ValueKind.Kind, (long)v, null);

    public static TraceQLValue FromArray(TraceQLValue[] v) => new(ValueKind.Array, 0, v);

    /// <summary>The value as a double for numeric comparisons (int, float, duration); NaN otherwise.</summary>
    public double AsDouble() => Kind switch
    {
        ValueKind.Int or ValueKind.Duration => _n,
        ValueKind.Float => Float,
        _ => double.NaN,
    };

    /// <summary>Converts an OTLP attribute value. Bytes and kvlists are nil (TraceQL cannot address them).</summary>
    public static TraceQLValue FromAnyValue(AnyValue v)
    {
        ArgumentNullException.ThrowIfNull(v);
        switch (v.Kind)
        {
            case AnyValueKind.String: return FromString(v.StringValue ?? string.Empty);
            case AnyValueKind.Bool: return FromBool(v.BoolValue);
            case AnyValueKind.Int: return FromInt(v.IntValue);
            case AnyValueKind.Double: return FromFloat(v.DoubleValue);
            case AnyValueKind.Array:
                {
                    var src = v.ArrayValue!;
                    var arr = new TraceQLValue[src.Count];
                    for (int i = 0; i < arr.Length; i++)
                    {
                        arr[i] = src[i].Kind == AnyValueKind.Array ? Nil : FromAnyValue(src[i]);
                    }

                    return FromArray(arr);
                }

            default: return Nil;
        }
    }

    /// <summary>Converts a literal of the AST.</summary>
    public static TraceQLValue FromLiteral(LiteralExpr l) => l switch
    {
        IntLiteral i => FromInt(i.Value),
        FloatLiteral f => FromFloat(f.Value),
        DurationLiteral d => FromDuration(d.Nanoseconds),
        StringLiteral s => FromString(s.Value),
        BoolLiteral b => FromBool(b.Value),
        StatusLiteral s => FromStatus(s.Value),
        KindLiteral k => FromKind(k.Value),
        _ => Nil,
    };

    /// <summary>Exact equality of kind and payload (floats by bit pattern); TraceQL's coercing '=' is in the evaluator.</summary>
    public bool Equals(TraceQLValue other)
    {
        if (Kind != other.Kind)
        {
            return false;
        }

        return Kind switch
        {
            ValueKind.Nil => true,
            ValueKind.String => string.Equals(String, other.String, StringComparison.Ordinal),
            ValueKind.Array => Array.AsSpan().SequenceEqual(other.Array),
            _ => _n == other._n,
        };
    }

    public override bool Equals(object? obj) => obj is TraceQLValue v && Equals(v);

    public override int GetHashCode() => Kind switch
    {
        ValueKind.String => HashCode.Combine(Kind, string.GetHashCode(String, StringComparison.Ordinal)),
        ValueKind.Array => HashCode.Combine(Kind, Array.Length),
        _ => HashCode.Combine(Kind, _n),
    };

    public static bool operator ==(TraceQLValue a, TraceQLValue b) => a.Equals(b);

    public static bool operator !=(TraceQLValue a, TraceQLValue b) => !a.Equals(b);

    /// <summary>Tempo's string form of a value (used for <c>by()</c> keys and tag values): durations as Go durations.</summary>
    public override string ToString() => Kind switch
    {
        ValueKind.Nil => "nil",
        ValueKind.Int => _n.ToString(CultureInfo.InvariantCulture),
        ValueKind.Float => Float.ToString("R", CultureInfo.InvariantCulture),
        ValueKind.Duration => ValueText.GoDuration(_n),
        ValueKind.String => String,
        ValueKind.Bool => Bool ? "true" : "false",
        ValueKind.Status => Status switch { SpanStatus.Ok => "ok", SpanStatus.Error => "error", _ => "unset" },
        ValueKind.Kind => SpanKind switch
        {
            Ast.SpanKind.Internal => "internal",
            Ast.SpanKind.Server => "server",
            Ast.SpanKind.Client => "client",
            Ast.SpanKind.Producer => "producer",
            Ast.SpanKind.Consumer => "consumer",
            _ => "unspecified",
        },
        ValueKind.Array => "[" + string.Join(", ", Array) + "]",
        _ => string.Empty,
    };
}
