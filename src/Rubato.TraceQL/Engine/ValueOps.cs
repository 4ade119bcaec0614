using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>
/// TraceQL operator semantics on <see cref="TraceQLValue"/>s (Tempo's ast_execute.go), shared by the evaluator and by
/// <c>Condition.CouldMatch</c> so storage-side filtering can never disagree with the engine.
/// </summary>
/// <remarks>
/// Rules: any comparison with nil is false (also <c>!=</c>; existence is <c>!= nil</c>). Int, float and duration compare
/// by numeric value. Operands of unrelated types (string vs int, ...) compare false for every operator. Strings order
/// ordinally. Regexes match the whole value. Arrays: <c>= &lt; &gt; &lt;= &gt;= =~</c> hold when ANY element matches;
/// <c>!=</c> and <c>!~</c> hold when NO element matches the positive form (none-match).
/// </remarks>
public static class ValueOps
{
    private const int MaxCachedRegexes = 1024;
    private static readonly TimeSpan s_regexTimeout = TimeSpan.FromSeconds(1);
    private static readonly ConcurrentDictionary<string, Regex> s_regexCache = new(StringComparer.Ordinal);

    /// <summary>The compiled, fully anchored regex for a TraceQL pattern; cached (bounded) across queries. Thread-safe.</summary>
    public static Regex GetRegex(string pattern)
    {
        if (s_regexCache.TryGetValue(pattern, out var re))
        {
            return re;
        }

        try
        {
            re = new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant | RegexOptions.Compiled, s_regexTimeout);
        }
        catch (ArgumentException e)
        {
            throw new TraceQLEvaluationException($"invalid regular expression '{pattern}': {e.Message}");
        }

        if (s_regexCache.Count >= MaxCachedRegexes)
        {
            s_regexCache.Clear();
        }

        s_regexCache.TryAdd(pattern, re);
        return re;
    }

    internal static bool CompareForCondition(ConditionOp op, TraceQLValue value, TraceQLValue operand) => op switch
    {
        ConditionOp.Equal => Compare(BinaryOp.Equal, value, operand),
        ConditionOp.NotEqual => Compare(BinaryOp.NotEqual, value, operand),
        ConditionOp.Less => Compare(BinaryOp.Less, value, operand),
        ConditionOp.LessEqual => Compare(BinaryOp.LessEqual, value, operand),
        ConditionOp.Greater => Compare(BinaryOp.Greater, value, operand),
        ConditionOp.GreaterEqual => Compare(BinaryOp.GreaterEqual, value, operand),
        ConditionOp.Regex => Compare(BinaryOp.Regex, value, operand),
        ConditionOp.NotRegex => Compare(BinaryOp.NotRegex, value, operand),
        _ => true,
    };

    /// <summary>A comparison operator (<c>= != &lt; &lt;= &gt; &gt;= =~ !~</c>) with TraceQL semantics.</summary>
    public static bool Compare(BinaryOp op, in TraceQLValue l, in TraceQLValue r)
    {
        if (l.IsNil || r.IsNil)
        {
            return false;
        }

        if (l.Kind == ValueKind.Array || r.Kind == ValueKind.Array)
        {
            if (l.Kind == ValueKind.Array && r.Kind == ValueKind.Array)
            {
                return op switch
                {
                    BinaryOp.Equal => l.Equals(r),
                    BinaryOp.NotEqual => !l.Equals(r),
                    _ => false,
                };
            }

            bool arrayLeft = l.Kind == ValueKind.Array;
            var arr = arrayLeft ? l.Array : r.Array;
            var other = arrayLeft ? r : l;
            bool negated = op is BinaryOp.NotEqual or BinaryOp.NotRegex;
            var positive = op switch
            {
                BinaryOp.NotEqual => BinaryOp.Equal,
                BinaryOp.NotRegex => BinaryOp.Regex,
                _ => op,
            };

            // A none-match over elements of an unrelated type is still false (no element is comparable).
            bool anyComparable = false;
            foreach (var e in arr)
            {
                if (!Comparable(e, other, positive))
                {
                    continue;
                }

                anyComparable = true;
                bool m = arrayLeft ? CompareScalar(positive, e, other) : CompareScalar(positive, other, e);
                if (m)
                {
                    return !negated;
                }
            }

            return negated && anyComparable;
        }

        return CompareScalar(op, l, r);
    }

    private static bool Comparable(in TraceQLValue a, in TraceQLValue b, BinaryOp op)
    {
        if (a.IsNil || b.IsNil)
        {
            return false;
        }

        if (op is BinaryOp.Regex or BinaryOp.NotRegex)
        {
            return a.Kind == ValueKind.String && b.Kind == ValueKind.String;
        }

        return a.Kind == b.Kind || (a.IsNumeric && b.IsNumeric);
    }

    private static bool CompareScalar(BinaryOp op, in TraceQLValue l, in TraceQLValue r)
    {
        if (l.IsNil || r.IsNil)
        {
            return false;
        }

        if (op is BinaryOp.Regex or BinaryOp.NotRegex)
        {
            if (l.Kind != ValueKind.String || r.Kind != ValueKind.String)
            {
                return false;
            }

            bool m;
            try
            {
                m = GetRegex(r.String).IsMatch(l.String);
            }
            catch (RegexMatchTimeoutException)
            {
                throw new TraceQLEvaluationException($"regular expression '{r.String}' took longer than {s_regexTimeout.TotalSeconds:0}s on one value");
            }

            return op == BinaryOp.Regex ? m : !m;
        }

        int c;
        if (l.IsNumeric && r.IsNumeric)
        {
            if (l.Kind != ValueKind.Float && r.Kind != ValueKind.Float)
            {
                c = l.Int.CompareTo(r.Int);
            }
            else
            {
                double a = l.AsDouble(), b = r.AsDouble();
                if (double.IsNaN(a) || double.IsNaN(b))
                {
                    return op == BinaryOp.NotEqual;
                }

                c = a.CompareTo(b);
            }
        }
        else if (l.Kind != r.Kind)
        {
            return false;
        }
        else
        {
            switch (l.Kind)
            {
                case ValueKind.String:
                    c = string.CompareOrdinal(l.String, r.String);
                    break;
                case ValueKind.Bool:
                case ValueKind.Status:
                case ValueKind.Kind:
                    if (op is not (BinaryOp.Equal or BinaryOp.NotEqual))
                    {
                        return false;
                    }

                    c = l.Int.CompareTo(r.Int);
                    break;
                default:
                    return false;
            }
        }

        return op switch
        {
            BinaryOp.Equal => c == 0,
            BinaryOp.NotEqual => c != 0,
            BinaryOp.Less => c < 0,
            BinaryOp.LessEqual => c <= 0,
            BinaryOp.Greater => c > 0,
            BinaryOp.GreaterEqual => c >= 0,
            _ => false,
        };
    }

    /// <summary>
    /// Arithmetic (<c>+ - * / % ^</c>). Non-numeric or nil operands give nil. As Tempo: int∘int stays int (integer
    /// division, truncating; division or modulo by zero gives nil; <c>^</c> with a negative exponent goes to float);
    /// a duration with an int or duration gives a duration for <c>+ - * / %</c>; anything with a float gives a float.
    /// </summary>
    public static TraceQLValue Arithmetic(BinaryOp op, in TraceQLValue l, in TraceQLValue r)
    {
        if (!l.IsNumeric || !r.IsNumeric)
        {
            return TraceQLValue.Nil;
        }

        bool anyFloat = l.Kind == ValueKind.Float || r.Kind == ValueKind.Float;
        bool anyDuration = l.Kind == ValueKind.Duration || r.Kind == ValueKind.Duration;
        if (!anyFloat && !(op == BinaryOp.Pow && (anyDuration || r.Int < 0)))
        {
            long a = l.Int, b = r.Int;
            long? v = op switch
            {
                BinaryOp.Add => unchecked(a + b),
                BinaryOp.Sub => unchecked(a - b),
                BinaryOp.Mul => unchecked(a * b),
                BinaryOp.Div => b == 0 ? null : (a == long.MinValue && b == -1 ? a : a / b),
                BinaryOp.Mod => b == 0 ? null : (b == -1 ? 0 : a % b),
                BinaryOp.Pow => IntPow(a, b),
                _ => null,
            };
            if (v is null)
            {
                return TraceQLValue.Nil;
            }

            return anyDuration ? TraceQLValue.FromDuration(v.Value) : TraceQLValue.FromInt(v.Value);
        }

        double x = l.AsDouble(), y = r.AsDouble();
        double res = op switch
        {
            BinaryOp.Add => x + y,
            BinaryOp.Sub => x - y,
            BinaryOp.Mul => x * y,
            BinaryOp.Div => x / y,
            BinaryOp.Mod => x % y,
            BinaryOp.Pow => Math.Pow(x, y),
            _ => double.NaN,
        };
        return TraceQLValue.FromFloat(res);
    }

    /// <summary>Integer power with wrap-around on overflow (exponent &gt;= 0).</summary>
    private static long IntPow(long m, long n)
    {
        long result = 1;
        while (n > 0)
        {
            if ((n & 1) != 0)
            {
                result = unchecked(result * m);
            }

            m = unchecked(m * m);
            n >>= 1;
        }

        return result;
    }
}

/// <summary>A query failed while running (bad regex at runtime, unsupported construct, cancelled limits).</summary>
public sealed class TraceQLEvaluationException(string message) : Exception(message);
