using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Parsing;

/// <summary>
/// Builds field-expression nodes, applying Tempo's parse-time rewrites: <c>!= nil</c>/<c>= nil</c> become existence tests,
/// and operations whose operands are all constants of compatible types become a constant. Anything ill-typed is left
/// as written so validation can report it.
/// </summary>
public static class ConstantFolding
{
    public static FieldExpr Binary(BinaryOp op, FieldExpr left, FieldExpr right, TextSpan span)
    {
        if (op is BinaryOp.Equal or BinaryOp.NotEqual)
        {
            bool ln = left is NilLiteral;
            bool rn = right is NilLiteral;
            if (ln && rn)
            {
                return new BoolLiteral(false) { Span = span };
            }

            var exists = op == BinaryOp.NotEqual ? UnaryOp.Exists : UnaryOp.NotExists;
            if (rn)
            {
                return new UnaryExpr(exists, left) { Span = span };
            }

            if (ln)
            {
                return new UnaryExpr(exists, right) { Span = span };
            }
        }

        if (left is LiteralExpr l && right is LiteralExpr r && TryFold(op, l, r) is { } folded)
        {
            return folded with { Span = span };
        }

        return new BinaryExpr(op, left, right) { Span = span };
    }

    public static FieldExpr Unary(UnaryOp op, FieldExpr operand, TextSpan span)
    {
        switch (op, operand)
        {
            case (UnaryOp.Negate, IntLiteral i) when i.Value != long.MinValue:
                return new IntLiteral(-i.Value) { Span = span };
            case (UnaryOp.Negate, FloatLiteral f):
                return new FloatLiteral(-f.Value) { Span = span };
            case (UnaryOp.Negate, DurationLiteral d) when d.Nanoseconds != long.MinValue:
                return new DurationLiteral(-d.Nanoseconds) { Span = span };
            case (UnaryOp.Not, BoolLiteral b):
                return new BoolLiteral(!b.Value) { Span = span };
            default:
                return new UnaryExpr(op, operand) { Span = span };
        }
    }

    private static LiteralExpr? TryFold(BinaryOp op, LiteralExpr l, LiteralExpr r)
    {
        try
        {
            return (l, r) switch
            {
                (BoolLiteral a, BoolLiteral b) => op switch
                {
                    BinaryOp.And => new BoolLiteral(a.Value && b.Value),
                    BinaryOp.Or => new BoolLiteral(a.Value || b.Value),
                    BinaryOp.Equal => new BoolLiteral(a.Value == b.Value),
                    BinaryOp.NotEqual => new BoolLiteral(a.Value != b.Value),
                    _ => null,
                },
                (IntLiteral a, IntLiteral b) => FoldInt(op, a.Value, b.Value),
                (IntLiteral or FloatLiteral, IntLiteral or FloatLiteral) => FoldFloat(op, AsDouble(l), AsDouble(r)),
                (DurationLiteral a, DurationLiteral b) => op switch
                {
                    BinaryOp.Add => new DurationLiteral(checked(a.Nanoseconds + b.Nanoseconds)),
                    BinaryOp.Sub => new DurationLiteral(checked(a.Nanoseconds - b.Nanoseconds)),
                    _ => Compare(op, a.Nanoseconds.CompareTo(b.Nanoseconds)),
                },
                (StringLiteral a, StringLiteral b) => op is BinaryOp.Regex or BinaryOp.NotRegex
                    ? null
                    : Compare(op, string.CompareOrdinal(a.Value, b.Value)),
                (StatusLiteral a, StatusLiteral b) => EqualityOnly(op, a.Value == b.Value),
                (KindLiteral a, KindLiteral b) => EqualityOnly(op, a.Value == b.Value),
                _ => null,
            };
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    private static double AsDouble(LiteralExpr e) => e is IntLiteral i ? i.Value : ((FloatLiteral)e).Value;

    private static LiteralExpr? FoldInt(BinaryOp op, long a, long b) => op switch
    {
        BinaryOp.Add => new IntLiteral(checked(a + b)),
        BinaryOp.Sub => new IntLiteral(checked(a - b)),
        BinaryOp.Mul => new IntLiteral(checked(a * b)),
        BinaryOp.Div => b == 0 || (a == long.MinValue && b == -1) ? null : new IntLiteral(a / b),
        BinaryOp.Mod => b == 0 || (a == long.MinValue && b == -1) ? null : new IntLiteral(a % b),
        BinaryOp.Pow => null,
        _ => Compare(op, a.CompareTo(b)),
    };

    private static LiteralExpr? FoldFloat(BinaryOp op, double a, double b)
    {
        double v;
        switch (op)
        {
            case BinaryOp.Add: v = a + b; break;
            case BinaryOp.Sub: v = a - b; break;
            case BinaryOp.Mul: v = a * b; break;
            case BinaryOp.Div: v = a / b; break;
            case BinaryOp.Mod: v = a % b; break;
            case BinaryOp.Pow: v = Math.Pow(a, b); break;
            default: return Compare(op, a.CompareTo(b));
        }

        return double.IsFinite(v) ? new FloatLiteral(v) : null;
    }

    private static BoolLiteral? Compare(BinaryOp op, int cmp) => op switch
    {
        BinaryOp.Equal => new BoolLiteral(cmp == 0),
        BinaryOp.NotEqual => new BoolLiteral(cmp != 0),
        BinaryOp.Less => new BoolLiteral(cmp < 0),
        BinaryOp.LessEqual => new BoolLiteral(cmp <= 0),
        BinaryOp.Greater => new BoolLiteral(cmp > 0),
        BinaryOp.GreaterEqual => new BoolLiteral(cmp >= 0),
        _ => null,
    };

    private static BoolLiteral? EqualityOnly(BinaryOp op, bool equal) => op switch
    {
        BinaryOp.Equal => new BoolLiteral(equal),
        BinaryOp.NotEqual => new BoolLiteral(!equal),
        _ => null,
    };
}
