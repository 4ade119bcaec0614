using System.Globalization;
using System.Text;
using Rubato.TraceQL.Lexing;

namespace Rubato.TraceQL.Ast;

/// <summary>
/// Prints any AST node as canonical TraceQL: scoped intrinsics (<c>span:duration</c>), <c>{ expr }</c> with single spaces,
/// <c> | </c> between stages, the fewest parentheses that keep the tree, and quoted attribute names only where needed.
/// Parsing the output gives back an equal tree (positions aside); the round-trip tests check this.
/// </summary>
public static class AstPrinter
{
    public static string Print(AstNode node)
    {
        var sb = new StringBuilder();
        Write(sb, node);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, AstNode node)
    {
        switch (node)
        {
            case RootExpr r:
                Write(sb, r.Query);
                if (r.Hints.Count > 0)
                {
                    sb.Append(" with(");
                    for (int i = 0; i < r.Hints.Count; i++)
                    {
                        if (i > 0)
                        {
                            sb.Append(", ");
                        }

                        WriteHint(sb, r.Hints[i]);
                    }

                    sb.Append(')');
                }

                break;
            case Hint h:
                WriteHint(sb, h);
                break;
            case SpansetQuery q:
                WritePipelineBody(sb, q.Pipeline);
                break;
            case MetricsExpr m:
                WriteMetrics(sb, m, 0);
                break;
            case MetricsFirstStage f:
                WriteFirstStage(sb, f);
                break;
            case SecondStageElement s:
                WriteSecondStage(sb, s, leading: false);
                break;
            case Pipeline p:
                WritePipelineBody(sb, p);
                break;
            case PipelineElement e:
                WriteElement(sb, e);
                break;
            case ScalarExpr s:
                WriteScalar(sb, s, 0);
                break;
            case FieldExpr f:
                WriteField(sb, f, 0);
                break;
            default:
                throw new ArgumentException($"unknown node type {node.GetType().Name}", nameof(node));
        }
    }

    private static void WriteHint(StringBuilder sb, Hint h)
    {
        sb.Append(h.Name).Append('=');
        WriteLiteral(sb, h.Value);
    }

    // ------------------------------------------------------------ pipelines

    private static void WritePipelineBody(StringBuilder sb, Pipeline p)
    {
        for (int i = 0; i < p.Elements.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(" | ");
            }

            WriteElement(sb, p.Elements[i]);
        }
    }

    private static void WriteElement(StringBuilder sb, PipelineElement e)
    {
        switch (e)
        {
            case SpansetExpr s:
                WriteSpanset(sb, s, 0);
                break;
            case ScalarFilter f:
                WriteScalar(sb, f.Left, Operators.PrecedenceComparison);
                sb.Append(' ').Append(Operators.Text(f.Op)).Append(' ');
                WriteScalar(sb, f.Right, Operators.PrecedenceComparison + 1);
                break;
            case GroupOperation g:
                sb.Append("by(");
                WriteField(sb, g.Expression, 0);
                sb.Append(')');
                break;
            case CoalesceOperation:
                sb.Append("coalesce()");
                break;
            case SelectOperation s:
                sb.Append("select(");
                WriteList(sb, s.Attributes);
                sb.Append(')');
                break;
            default:
                throw new ArgumentException($"unknown pipeline element {e.GetType().Name}", nameof(e));
        }
    }

    private static void WriteList(StringBuilder sb, ValueList<FieldExpr> items)
    {
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(", ");
            }

            WriteField(sb, items[i], 0);
        }
    }

    private static void WriteSpanset(StringBuilder sb, SpansetExpr s, int ctx)
    {
        switch (s)
        {
            case SpansetFilter f:
                sb.Append("{ ");
                WriteField(sb, f.Expression, 0);
                sb.Append(" }");
                break;
            case Pipeline p:
                sb.Append('(');
                WritePipelineBody(sb, p);
                sb.Append(')');
                break;
            case SpansetOperation op:
                {
                    int prec = Operators.Precedence(op.Op);
                    bool parens = prec < ctx;
                    if (parens)
                    {
                        sb.Append('(');
                    }

                    WriteSpanset(sb, op.Left, prec);
                    sb.Append(' ').Append(Operators.Text(op.Op)).Append(' ');
                    WriteSpanset(sb, op.Right, prec + 1);
                    if (parens)
                    {
                        sb.Append(')');
                    }

                    break;
                }

            default:
                throw new ArgumentException($"unknown spanset expression {s.GetType().Name}", nameof(s));
        }
    }

    // ------------------------------------------------------------ scalars

    private static void WriteScalar(StringBuilder sb, ScalarExpr s, int ctx)
    {
        switch (s)
        {
            case AggregateExpr a:
                sb.Append(Operators.Text(a.Op)).Append('(');
                if (a.Argument is not null)
                {
                    WriteField(sb, a.Argument, 0);
                }

                sb.Append(')');
                break;
            case ScalarLiteral l:
                WriteLiteral(sb, l.Value);
                break;
            case ScalarPipeline p:
                sb.Append('(');
                WritePipelineBody(sb, p.Pipeline);
                sb.Append(" | ");
                WriteScalar(sb, p.Aggregate, 0);
                sb.Append(')');
                break;
            case ScalarOperation op:
                {
                    int prec = Operators.Precedence(op.Op);
                    bool rightAssoc = op.Op == ArithmeticOp.Pow;
                    bool parens = prec < ctx;
                    if (parens)
                    {
                        sb.Append('(');
                    }

                    WriteScalar(sb, op.Left, rightAssoc ? prec + 1 : prec);
                    sb.Append(' ').Append(Operators.Text(op.Op)).Append(' ');
                    WriteScalar(sb, op.Right, rightAssoc ? prec : prec + 1);
                    if (parens)
                    {
                        sb.Append(')');
                    }

                    break;
                }

            default:
                throw new ArgumentException($"unknown scalar expression {s.GetType().Name}", nameof(s));
        }
    }

    // ------------------------------------------------------------ metrics

    private static void WriteMetrics(StringBuilder sb, MetricsExpr m, int ctx)
    {
        switch (m)
        {
            case MetricsQuery q:
                if (ctx > 0)
                {
                    sb.Append('(');
                }

                WritePipelineBody(sb, q.Pipeline);
                sb.Append(" | ");
                WriteFirstStage(sb, q.FirstStage);
                WriteSecondStages(sb, q.SecondStages);
                if (ctx > 0)
                {
                    sb.Append(')');
                }

                break;
            case MetricsMath math:
                {
                    int prec = Operators.Precedence(math.Op);
                    bool parens = ctx > 0 && (prec < ctx || math.SecondStages.Count > 0);
                    if (parens)
                    {
                        sb.Append('(');
                    }

                    WriteMetrics(sb, math.Left, prec);
                    sb.Append(' ').Append(Operators.Text(math.Op)).Append(' ');
                    WriteMetrics(sb, math.Right, prec + 1);
                    WriteSecondStages(sb, math.SecondStages);
                    if (parens)
                    {
                        sb.Append(')');
                    }

                    break;
                }

            case MetricsScalar n:
                sb.Append(n.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                break;
            default:
                throw new ArgumentException($"unknown metrics expression {m.GetType().Name}", nameof(m));
        }
    }

    private static void WriteSecondStages(StringBuilder sb, ValueList<SecondStageElement> stages)
    {
        foreach (var s in stages)
        {
            WriteSecondStage(sb, s, leading: true);
        }
    }

    private static void WriteSecondStage(StringBuilder sb, SecondStageElement s, bool leading)
    {
        switch (s)
        {
            case TopKBottomK t:
                if (leading)
                {
                    sb.Append(" | ");
                }

                sb.Append(t.Function == TopKFunction.TopK ? "topk(" : "bottomk(").Append(t.Limit.ToString(CultureInfo.InvariantCulture)).Append(')');
                break;
            case MetricsFilter f:
                if (leading)
                {
                    sb.Append(' ');
                }

                sb.Append(Operators.Text(f.Op)).Append(' ').Append(f.Value.ToString("R", CultureInfo.InvariantCulture));
                break;
            default:
                throw new ArgumentException($"unknown second stage {s.GetType().Name}", nameof(s));
        }
    }

    private static void WriteFirstStage(StringBuilder sb, MetricsFirstStage f)
    {
        switch (f)
        {
            case MetricsCompare c:
                sb.Append("compare(");
                WriteSpanset(sb, c.Selection, 0);
                sb.Append(", ").Append(c.TopN.ToString(CultureInfo.InvariantCulture));
                if (c.Start != 0 || c.End != 0)
                {
                    sb.Append(", ").Append(c.Start.ToString(CultureInfo.InvariantCulture))
                        .Append(", ").Append(c.End.ToString(CultureInfo.InvariantCulture));
                }

                sb.Append(')');
                break;
            case MetricsAggregate a:
                sb.Append(Operators.Text(a.Function)).Append('(');
                if (a.Attribute is not null)
                {
                    WriteField(sb, a.Attribute, 0);
                }

                foreach (var q in a.Quantiles)
                {
                    sb.Append(", ").Append(q.ToString("R", CultureInfo.InvariantCulture));
                }

                sb.Append(')');
                if (a.By.Count > 0)
                {
                    sb.Append(" by (");
                    WriteList(sb, a.By);
                    sb.Append(')');
                }

                break;
            default:
                throw new ArgumentException($"unknown metrics function {f.GetType().Name}", nameof(f));
        }
    }

    // ------------------------------------------------------------ fields

    private static void WriteField(StringBuilder sb, FieldExpr e, int ctx)
    {
        switch (e)
        {
            case LiteralExpr l:
                {
                    bool negative = l switch
                    {
                        IntLiteral i => i.Value < 0,
                        FloatLiteral f => f.Value < 0 || double.IsNegative(f.Value),
                        DurationLiteral d => d.Nanoseconds < 0,
                        _ => false,
                    };

                    // A negative constant prints as unary minus, which takes everything of higher precedence than
                    // + - after it ("-5 * .a" is -(5 * .a)); next to * / % ^ it needs parentheses.
                    bool parens = negative && ctx > Operators.PrecedenceAdditive;
                    if (parens)
                    {
                        sb.Append('(');
                    }

                    WriteLiteral(sb, l);
                    if (parens)
                    {
                        sb.Append(')');
                    }

                    break;
                }

            case AttributeExpr a:
                WriteAttribute(sb, a);
                break;
            case IntrinsicExpr i:
                sb.Append(Intrinsics.CanonicalName(i.Intrinsic));
                break;
            case BinaryExpr b:
                {
                    int prec = Operators.Precedence(b.Op);
                    bool rightAssoc = b.Op == BinaryOp.Pow;
                    bool parens = prec < ctx;
                    if (parens)
                    {
                        sb.Append('(');
                    }

                    WriteField(sb, b.Left, rightAssoc ? prec + 1 : prec);
                    sb.Append(' ').Append(Operators.Text(b.Op)).Append(' ');
                    WriteField(sb, b.Right, rightAssoc ? prec : prec + 1);
                    if (parens)
                    {
                        sb.Append(')');
                    }

                    break;
                }

            case UnaryExpr u:
                {
                    int level = u.Op switch
                    {
                        UnaryOp.Negate => Operators.PrecedenceAdditive,
                        UnaryOp.Not => Operators.PrecedenceNot,
                        _ => Operators.PrecedenceComparison,
                    };
                    bool parens = level < ctx;
                    if (parens)
                    {
                        sb.Append('(');
                    }

                    switch (u.Op)
                    {
                        case UnaryOp.Negate:
                            sb.Append('-');
                            WriteField(sb, u.Operand, Operators.PrecedenceAdditive + 1);
                            break;
                        case UnaryOp.Not:
                            sb.Append('!');
                            WriteField(sb, u.Operand, Operators.PrecedenceNot + 1);
                            break;
                        default:
                            WriteField(sb, u.Operand, Operators.PrecedenceComparison);
                            sb.Append(u.Op == UnaryOp.Exists ? " != nil" : " = nil");
                            break;
                    }

                    if (parens)
                    {
                        sb.Append(')');
                    }

                    break;
                }

            default:
                throw new ArgumentException($"unknown field expression {e.GetType().Name}", nameof(e));
        }
    }

    private static void WriteAttribute(StringBuilder sb, AttributeExpr a)
    {
        if (a.Parent)
        {
            sb.Append("parent.");
        }

        string prefix = a.Scope switch
        {
            AttributeScope.Span => "span.",
            AttributeScope.Resource => "resource.",
            AttributeScope.Event => "event.",
            AttributeScope.Link => "link.",
            AttributeScope.Instrumentation => "instrumentation.",
            _ => a.Parent ? string.Empty : ".",
        };
        sb.Append(prefix);
        if (NeedsQuotes(a))
        {
            sb.Append('"');
            foreach (char c in a.Name)
            {
                if (c is '"' or '\\')
                {
                    sb.Append('\\');
                }

                sb.Append(c);
            }

            sb.Append('"');
        }
        else
        {
            sb.Append(a.Name);
        }
    }

    private static bool NeedsQuotes(AttributeExpr a)
    {
        string n = a.Name;
        if (n.Length == 0)
        {
            return true;
        }

        foreach (char c in n)
        {
            if (c == '"' || !TraceQLLexer.IsAttributeChar(c))
            {
                return true;
            }
        }

        if (a.Scope == AttributeScope.None)
        {
            // ".5x" would lex as a number; "parent.span.x" as the span scope.
            if (!a.Parent && char.IsAsciiDigit(n[0]))
            {
                return true;
            }

            if (a.Parent && (n.StartsWith("span.", StringComparison.Ordinal) || n.StartsWith("resource.", StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    // ------------------------------------------------------------ literals

    private static void WriteLiteral(StringBuilder sb, LiteralExpr l)
    {
        switch (l)
        {
            case IntLiteral i:
                // long.MinValue has no positive counterpart to negate, so it prints as its keyword.
                sb.Append(i.Value == long.MinValue ? "minInt" : i.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case FloatLiteral f:
                {
                    string s = f.Value.ToString("R", CultureInfo.InvariantCulture);
                    sb.Append(s);
                    if (s.AsSpan().IndexOfAny('.', 'E') < 0)
                    {
                        sb.Append(".0");
                    }

                    break;
                }

            case DurationLiteral d:
                WriteDuration(sb, d.Nanoseconds);
                break;
            case StringLiteral s:
                WriteString(sb, s.Value);
                break;
            case BoolLiteral b:
                sb.Append(b.Value ? "true" : "false");
                break;
            case NilLiteral:
                sb.Append("nil");
                break;
            case StatusLiteral st:
                sb.Append(st.Value switch
                {
                    SpanStatus.Ok => "ok",
                    SpanStatus.Error => "error",
                    _ => "unset",
                });
                break;
            case KindLiteral k:
                sb.Append(k.Value switch
                {
                    SpanKind.Internal => "internal",
                    SpanKind.Server => "server",
                    SpanKind.Client => "client",
                    SpanKind.Producer => "producer",
                    SpanKind.Consumer => "consumer",
                    _ => "unspecified",
                });
                break;
            default:
                throw new ArgumentException($"unknown literal {l.GetType().Name}", nameof(l));
        }
    }

    /// <summary>Largest unit that divides exactly: 90m prints as 90m, 1500ms as 1500ms, 1h as 1h.</summary>
    public static void WriteDuration(StringBuilder sb, long nanoseconds)
    {
        decimal v = nanoseconds;
        if (v < 0)
        {
            sb.Append('-');
            v = -v;
        }

        if (v == 0)
        {
            sb.Append("0s");
            return;
        }

        (decimal Size, string Unit)[] units =
        [
            (3_600_000_000_000m, "h"),
            (60_000_000_000m, "m"),
            (1_000_000_000m, "s"),
            (1_000_000m, "ms"),
            (1_000m, "us"),
        ];
        foreach (var (size, unit) in units)
        {
            if (v % size == 0)
            {
                sb.Append((v / size).ToString(CultureInfo.InvariantCulture)).Append(unit);
                return;
            }
        }

        sb.Append(v.ToString(CultureInfo.InvariantCulture)).Append("ns");
    }

    public static void WriteString(StringBuilder sb, string value)
    {
        sb.Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
