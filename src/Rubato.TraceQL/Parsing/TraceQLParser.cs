using System.Text;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Lexing;

namespace Rubato.TraceQL.Parsing;

/// <summary>
/// Parses TraceQL text into a <see cref="RootExpr"/>. Recursive descent with precedence climbing, following the
/// precedence of Tempo's expr.y (lowest first): <c>|</c>; <c>&amp;&amp; ||</c> (one level, left-associative);
/// comparisons and structural operators; <c>+ -</c>; <c>!</c>; <c>* / %</c>; <c>^</c> (right-associative).
/// Unary minus binds like binary minus (<c>-.a * 2</c> is <c>-(.a * 2)</c>), <c>!</c> between + and * .
/// </summary>
/// <remarks>
/// Rewrites applied while parsing, as Tempo does: <c>x != nil</c> becomes <see cref="UnaryOp.Exists"/>, <c>x = nil</c>
/// <see cref="UnaryOp.NotExists"/>, <c>nil = nil</c>/<c>nil != nil</c> false; operations between constants of
/// compatible types are folded (<c>{ 1 + 1 = 2 }</c> is <c>{ true }</c>, <c>-1</c> is the literal -1).
/// Not thread-affine: each call builds its own state. Time and memory are linear in the query length.
/// </remarks>
public static class TraceQLParser
{
    /// <summary>Tempo's default <c>max_query_expression_size_bytes</c>.</summary>
    public const int DefaultMaxQuerySizeBytes = 128 * 1024;

    /// <summary>Nesting limit (parentheses, unary chains, right-associative chains), to keep recursion off the stack limit.</summary>
    public const int MaxNestingDepth = 256;

    /// <summary>
    /// Limit on the height of the resulting tree. Long flat chains (<c>.a = 1 || .a = 2 || ...</c>) parse without
    /// recursion but give a left-deep tree, and printers, validators, record equality and the engine walk trees
    /// recursively; this keeps every such walk far from a 1 MiB thread stack.
    /// </summary>
    public const int MaxTreeDepth = 2000;

    /// <summary>Parses <paramref name="query"/>; throws <see cref="TraceQLParseException"/>. Does not validate (see <see cref="RootExpr.Validate"/>).</summary>
    public static RootExpr Parse(string query) => Parse(query, DefaultMaxQuerySizeBytes);

    /// <param name="maxQuerySizeBytes">Largest accepted UTF-8 size of the query; 0 or less disables the check.</param>
    public static RootExpr Parse(string query, int maxQuerySizeBytes)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (maxQuerySizeBytes > 0 && query.Length > maxQuerySizeBytes / 3)
        {
            int bytes = Encoding.UTF8.GetByteCount(query);
            if (bytes > maxQuerySizeBytes)
            {
                throw new TraceQLParseException(
                    $"query is {bytes} bytes, more than the maximum of {maxQuerySizeBytes} bytes (max_query_expression_size_bytes)",
                    0, 1, 1);
            }
        }

        var tokens = TraceQLLexer.Tokenize(query);
        var root = new Parser(query, tokens).ParseRoot();
        CheckDepth(query, root);
        return root;
    }

    /// <summary>Iterative (explicit stack) height check; see <see cref="MaxTreeDepth"/>.</summary>
    private static void CheckDepth(string query, RootExpr root)
    {
        var stack = new Stack<(AstNode Node, int Depth)>();
        stack.Push((root, 1));
        while (stack.Count > 0)
        {
            var (node, depth) = stack.Pop();
            if (depth > MaxTreeDepth)
            {
                throw ParseErrors.Create(query, Math.Max(0, node.Span.Start), "query nests too deeply",
                    $"at most {MaxTreeDepth} levels of operators; for long lists of alternatives use a regex such as .a =~ \"x|y|z\"");
            }

            foreach (var child in node.Children())
            {
                stack.Push((child, depth + 1));
            }
        }
    }

    /// <summary>Parses and validates; throws any of the three <see cref="TraceQLException"/> kinds.</summary>
    public static RootExpr ParseAndValidate(string query)
    {
        var root = Parse(query);
        root.Validate();
        return root;
    }

    private sealed class Parser
    {
        private readonly string _text;
        private readonly List<Token> _tokens;
        private int _index;
        private int _prevEnd;
        private int _depth;

        public Parser(string text, List<Token> tokens)
        {
            _text = text;
            _tokens = tokens;
        }

        private Token Cur => _tokens[_index];

        private Token PeekAt(int ahead) => _tokens[Math.Min(_index + ahead, _tokens.Count - 1)];

        private Token Advance()
        {
            var t = _tokens[_index];
            if (t.Kind != TokenKind.EndOfInput)
            {
                _index++;
            }

            _prevEnd = t.End;
            return t;
        }

        private TextSpan From(int start) => new(start, Math.Max(0, _prevEnd - start));

        // ------------------------------------------------------------ root

        public RootExpr ParseRoot()
        {
            if (Cur.Kind == TokenKind.EndOfInput)
            {
                throw ParseErrors.Create(_text, 0, "empty query", "expected a spanset filter such as '{}'");
            }

            int start = Cur.Offset;
            var node = ParseChain(nested: false);
            QueryExpr query = node switch
            {
                MetricsExpr m => m,
                Pipeline p => new SpansetQuery(p) { Span = p.Span },
                PipelineElement e => new SpansetQuery(new Pipeline(ValueList<PipelineElement>.Of(ToElement(e, first: true))) { Span = e.Span }) { Span = e.Span },
                _ => throw NotCompared(node),
            };

            var hints = ValueList<Hint>.Empty;
            while (Cur.Kind == TokenKind.With)
            {
                hints = hints.Concat(ParseHints());
            }

            if (Cur.Kind != TokenKind.EndOfInput)
            {
                throw Unexpected(Cur, Cur.Kind == TokenKind.CloseParen ? "no matching '('" : "expected end of query, '|' or an operator");
            }

            return new RootExpr(query, hints) { Span = From(start) };
        }

        private ValueList<Hint> ParseHints()
        {
            Advance(); // with
            Expect(TokenKind.OpenParen, "expected '(' after 'with'");
            var list = new List<Hint>();
            while (true)
            {
                var nameTok = Cur;
                if (nameTok.Kind != TokenKind.Identifier)
                {
                    throw Unexpected(nameTok, "expected a hint name, e.g. with(sample=true)");
                }

                Advance();
                Expect(TokenKind.Equal, $"expected '=' after hint name '{nameTok.Text}'");
                var valueTok = Cur;
                var value = TryLiteral(valueTok);
                if (value is null || value is NilLiteral)
                {
                    throw Unexpected(valueTok, "expected a hint value: a string, number, duration, boolean or enum");
                }

                Advance();
                list.Add(new Hint(nameTok.Text!, value) { Span = From(nameTok.Offset) });
                if (Cur.Kind == TokenKind.Comma)
                {
                    Advance();
                    continue;
                }

                Expect(TokenKind.CloseParen, "expected ',' or ')' in with(...)");
                return ValueList<Hint>.From(list);
            }
        }

        // ------------------------------------------------------------ pipelines

        /// <summary>
        /// A full chain: <c>expr ('|' stage)*</c>, possibly turning into a metrics query, or (inside parentheses) ending in an
        /// aggregate (a scalar pipeline). Stops at ')', 'with' or the end.
        /// </summary>
        private AstNode ParseChain(bool nested)
        {
            var first = ParseLevel(Operators.PrecedenceLogical);
            if (first is MetricsExpr metrics)
            {
                return ParseMetricsTail(metrics);
            }

            if (Cur.Kind != TokenKind.Pipe)
            {
                return first;
            }

            int start = first.Span.Start;
            var elements = new List<PipelineElement> { ToElement(first, first: true) };
            while (Cur.Kind == TokenKind.Pipe)
            {
                Advance();
                var tok = Cur;
                if (IsMetricsFunction(tok.Kind))
                {
                    var pipeline = MakePipeline(elements, start);
                    var firstStage = ParseMetricsFirstStage();
                    var q = new MetricsQuery(pipeline, firstStage, ValueList<SecondStageElement>.Empty) { Span = From(start) };
                    return ParseMetricsTail(q);
                }

                if (tok.Kind is TokenKind.TopK or TokenKind.BottomK)
                {
                    throw Unexpected(tok, "topk()/bottomk() must follow a metrics function such as '| rate()'");
                }

                var stage = ParseLevel(Operators.PrecedenceLogical);
                if (stage is AggregateExpr agg)
                {
                    if (!nested || Cur.Kind != TokenKind.CloseParen)
                    {
                        throw ParseErrors.Create(_text, agg.Span.Start, $"aggregate '{AstPrinter.Print(agg)}' is not compared",
                            "a pipeline stage needs a comparison such as 'count() > 1'; a bare aggregate is only allowed as '({ ... } | count())'");
                    }

                    return new ScalarPipeline(MakePipeline(elements, start), agg) { Span = From(start) };
                }

                elements.Add(ToElement(stage, first: false));
            }

            return MakePipeline(elements, start);
        }

        private Pipeline MakePipeline(List<PipelineElement> elements, int start) =>
            new(ValueList<PipelineElement>.From(elements)) { Span = From(start) };

        private PipelineElement ToElement(AstNode node, bool first)
        {
            switch (node)
            {
                case CoalesceOperation when first:
                    throw ParseErrors.Create(_text, node.Span.Start, "a pipeline cannot start with coalesce()", "use it after a stage, e.g. '{ } | by(.a) | coalesce()'");
                case PipelineElement e:
                    return e;
                case MetricsExpr:
                    throw ParseErrors.Create(_text, node.Span.Start, "a metrics query cannot be a pipeline stage", "metrics functions come last, e.g. '{ } | rate()'");
                default:
                    throw NotCompared(node);
            }
        }

        private TraceQLParseException NotCompared(AstNode node) =>
            ParseErrors.Create(_text, node.Span.Start, $"scalar expression '{AstPrinter.Print(node)}' is not compared",
                "scalar expressions must be part of a filter such as 'count() > 1' or 'avg(duration) > 20ms'");

        /// <summary>Precedence climbing over spansets, scalar expressions and metrics queries; the operand types pick the node.</summary>
        private AstNode ParseLevel(int minPrec)
        {
            Enter();
            var left = ParseUnit();
            while (true)
            {
                var tok = Cur;
                int prec = LevelPrecedence(tok.Kind);
                if (prec < 0 || prec < minPrec)
                {
                    break;
                }

                if (left is MetricsExpr me && ComparisonFor(tok.Kind) is { } filterOp)
                {
                    Advance();
                    double v = ParseSignedNumber(tok);
                    var filter = new MetricsFilter(filterOp, v) { Span = From(tok.Offset) };
                    left = me with { SecondStages = me.SecondStages.Append(filter), Span = From(me.Span.Start) };
                    continue;
                }

                Advance();
                var right = ParseLevel(tok.Kind == TokenKind.Caret ? prec : prec + 1);
                left = Combine(tok, left, right);
            }

            _depth--;
            return left;
        }

        private static int LevelPrecedence(TokenKind k) => k switch
        {
            TokenKind.And or TokenKind.Or => Operators.PrecedenceLogical,
            TokenKind.Equal or TokenKind.NotEqual or TokenKind.Greater or TokenKind.GreaterEqual or TokenKind.Less
                or TokenKind.LessEqual or TokenKind.Regex or TokenKind.NotRegex or TokenKind.Descendant or TokenKind.Ancestor
                or TokenKind.Tilde or TokenKind.NotChild or TokenKind.NotParent or TokenKind.NotDescendant or TokenKind.NotAncestor
                or TokenKind.UnionChild or TokenKind.UnionParent or TokenKind.UnionDescendant or TokenKind.UnionAncestor
                or TokenKind.UnionSibling => Operators.PrecedenceComparison,
            TokenKind.Plus or TokenKind.Minus => Operators.PrecedenceAdditive,
            TokenKind.Star or TokenKind.Slash or TokenKind.Percent => Operators.PrecedenceMultiplicative,
            TokenKind.Caret => Operators.PrecedencePower,
            _ => -1,
        };

        private static SpansetOp? SpansetOpFor(TokenKind k) => k switch
        {
            TokenKind.And => SpansetOp.And,
            TokenKind.Or => SpansetOp.Union,
            TokenKind.Greater => SpansetOp.Child,
            TokenKind.Less => SpansetOp.Parent,
            TokenKind.Descendant => SpansetOp.Descendant,
            TokenKind.Ancestor => SpansetOp.Ancestor,
            TokenKind.Tilde => SpansetOp.Sibling,
            TokenKind.NotChild => SpansetOp.NotChild,
            TokenKind.NotParent => SpansetOp.NotParent,
            TokenKind.NotDescendant => SpansetOp.NotDescendant,
            TokenKind.NotAncestor => SpansetOp.NotAncestor,
            TokenKind.NotRegex => SpansetOp.NotSibling,
            TokenKind.UnionChild => SpansetOp.UnionChild,
            TokenKind.UnionParent => SpansetOp.UnionParent,
            TokenKind.UnionDescendant => SpansetOp.UnionDescendant,
            TokenKind.UnionAncestor => SpansetOp.UnionAncestor,
            TokenKind.UnionSibling => SpansetOp.UnionSibling,
            _ => null,
        };

        private static ComparisonOp? ComparisonFor(TokenKind k) => k switch
        {
            TokenKind.Equal => ComparisonOp.Equal,
            TokenKind.NotEqual => ComparisonOp.NotEqual,
            TokenKind.Less => ComparisonOp.Less,
            TokenKind.LessEqual => ComparisonOp.LessEqual,
            TokenKind.Greater => ComparisonOp.Greater,
            TokenKind.GreaterEqual => ComparisonOp.GreaterEqual,
            _ => null,
        };

        private static ArithmeticOp? ArithmeticFor(TokenKind k) => k switch
        {
            TokenKind.Plus => ArithmeticOp.Add,
            TokenKind.Minus => ArithmeticOp.Sub,
            TokenKind.Star => ArithmeticOp.Mul,
            TokenKind.Slash => ArithmeticOp.Div,
            TokenKind.Percent => ArithmeticOp.Mod,
            TokenKind.Caret => ArithmeticOp.Pow,
            _ => null,
        };

        private AstNode Combine(Token op, AstNode left, AstNode right)
        {
            var span = TextSpan.Cover(left.Span, right.Span);
            string opText = OpText(op);
            if (left is SpansetExpr ls && right is SpansetExpr rs)
            {
                if (SpansetOpFor(op.Kind) is { } sop)
                {
                    return new SpansetOperation(sop, ls, rs) { Span = span };
                }

                throw ParseErrors.Create(_text, op.Offset, $"operator '{opText}' cannot combine spansets",
                    "spansets combine with && || > < >> << ~ and their !/& forms");
            }

            if (left is ScalarExpr lsc && right is ScalarExpr rsc)
            {
                if (ArithmeticFor(op.Kind) is { } aop)
                {
                    return new ScalarOperation(aop, lsc, rsc) { Span = span };
                }

                if (ComparisonFor(op.Kind) is { } cop)
                {
                    return new ScalarFilter(cop, lsc, rsc) { Span = span };
                }

                throw ParseErrors.Create(_text, op.Offset, $"operator '{opText}' cannot combine scalar expressions",
                    "scalar expressions use + - * / % ^ and compare with = != < <= > >=");
            }

            if ((left is MetricsExpr && NumberOf(right) is not null) || (NumberOf(left) is not null && right is MetricsExpr))
            {
                if (ArithmeticFor(op.Kind) is ArithmeticOp.Add or ArithmeticOp.Sub or ArithmeticOp.Mul or ArithmeticOp.Div)
                {
                    MetricsExpr l = left as MetricsExpr ?? new MetricsScalar(NumberOf(left)!.Value) { Span = left.Span };
                    MetricsExpr r = right as MetricsExpr ?? new MetricsScalar(NumberOf(right)!.Value) { Span = right.Span };
                    return new MetricsMath(ArithmeticFor(op.Kind)!.Value, l, r, ValueList<SecondStageElement>.Empty) { Span = span };
                }

                throw ParseErrors.Create(_text, op.Offset, $"operator '{opText}' cannot combine a metrics query with a number", "metrics queries combine with + - * /");
            }

            if (left is MetricsExpr lm && right is MetricsExpr rm)
            {
                if (ArithmeticFor(op.Kind) is ArithmeticOp.Add or ArithmeticOp.Sub or ArithmeticOp.Mul or ArithmeticOp.Div)
                {
                    return new MetricsMath(ArithmeticFor(op.Kind)!.Value, lm, rm, ValueList<SecondStageElement>.Empty) { Span = span };
                }

                throw ParseErrors.Create(_text, op.Offset, $"operator '{opText}' cannot combine metrics queries", "metrics queries combine with + - * /");
            }

            throw ParseErrors.Create(_text, op.Offset, $"operator '{opText}' cannot combine {Describe(left)} with {Describe(right)}",
                "spansets, scalar expressions and metrics queries cannot be mixed; wrap a pipeline in parentheses, e.g. '({ } | count() > 1) && { }'");
        }

        /// <summary>The value of a plain numeric constant (int or float), else null.</summary>
        private static double? NumberOf(AstNode n) => n switch
        {
            ScalarLiteral { Value: IntLiteral i } => i.Value,
            ScalarLiteral { Value: FloatLiteral f } => f.Value,
            _ => null,
        };

        private static string Describe(AstNode n) => n switch
        {
            SpansetExpr => "a spanset",
            ScalarFilter => "a scalar filter",
            ScalarExpr => "a scalar expression",
            MetricsExpr => "a metrics query",
            GroupOperation => "by()",
            SelectOperation => "select()",
            CoalesceOperation => "coalesce()",
            _ => "an expression",
        };

        private AstNode ParseUnit()
        {
            var tok = Cur;
            switch (tok.Kind)
            {
                case TokenKind.OpenBrace:
                    return ParseSpansetFilter();
                case TokenKind.OpenParen:
                    {
                        Advance();
                        var inner = ParseChain(nested: true);
                        if (Cur.Kind != TokenKind.CloseParen)
                        {
                            throw Unexpected(Cur, $"expected ')' to close the '(' at {Position(tok.Offset)}");
                        }

                        Advance();
                        return inner;
                    }

                case TokenKind.Count or TokenKind.Avg or TokenKind.Min or TokenKind.Max or TokenKind.Sum:
                    return ParseAggregate();
                case TokenKind.Integer or TokenKind.Float or TokenKind.Duration:
                    {
                        Advance();
                        var lit = TryLiteral(tok)!;
                        return new ScalarLiteral(lit) { Span = From(tok.Offset) };
                    }

                case TokenKind.Minus:
                    {
                        Advance();
                        var numTok = Cur;
                        if (numTok.Kind is not (TokenKind.Integer or TokenKind.Float or TokenKind.Duration))
                        {
                            throw Unexpected(numTok, "expected a number after '-'");
                        }

                        Advance();
                        var lit = Negate(TryLiteral(numTok)!)! with { Span = From(tok.Offset) };
                        return new ScalarLiteral(lit) { Span = From(tok.Offset) };
                    }

                case TokenKind.By:
                    {
                        Advance();
                        Expect(TokenKind.OpenParen, "expected '(' after 'by'");
                        var e = ParseField(Operators.PrecedenceLogical);
                        Expect(TokenKind.CloseParen, "expected ')' to close by(");
                        return new GroupOperation(e) { Span = From(tok.Offset) };
                    }

                case TokenKind.Select:
                    {
                        Advance();
                        Expect(TokenKind.OpenParen, "expected '(' after 'select'");
                        var attrs = ParseAttributeList("select");
                        Expect(TokenKind.CloseParen, "expected ',' or ')' in select(...)");
                        return new SelectOperation(attrs) { Span = From(tok.Offset) };
                    }

                case TokenKind.Coalesce:
                    Advance();
                    Expect(TokenKind.OpenParen, "expected '(' after 'coalesce'");
                    Expect(TokenKind.CloseParen, "coalesce() takes no arguments");
                    return new CoalesceOperation { Span = From(tok.Offset) };
                default:
                    if (IsMetricsFunction(tok.Kind))
                    {
                        throw Unexpected(tok, "metrics functions follow a spanset pipeline, e.g. '{ } | rate()'");
                    }

                    if (tok.Kind == TokenKind.Identifier)
                    {
                        throw Unexpected(tok, $"unknown function or keyword '{tok.Text}'");
                    }

                    throw Unexpected(tok, "expected a spanset filter '{ ... }', '(', an aggregate such as count(), or by()/select()");
            }
        }

        private SpansetFilter ParseSpansetFilter()
        {
            var open = Advance();
            if (Cur.Kind == TokenKind.CloseBrace)
            {
                Advance();
                return new SpansetFilter(new BoolLiteral(true) { Span = From(open.Offset) }) { Span = From(open.Offset) };
            }

            var e = ParseField(Operators.PrecedenceLogical);
            if (Cur.Kind != TokenKind.CloseBrace)
            {
                throw Unexpected(Cur, $"expected '}}' to close the spanset filter opened at {Position(open.Offset)}, or an operator");
            }

            Advance();
            return new SpansetFilter(e) { Span = From(open.Offset) };
        }

        private AggregateExpr ParseAggregate()
        {
            var tok = Advance();
            var op = tok.Kind switch
            {
                TokenKind.Count => AggregateOp.Count,
                TokenKind.Avg => AggregateOp.Avg,
                TokenKind.Min => AggregateOp.Min,
                TokenKind.Max => AggregateOp.Max,
                _ => AggregateOp.Sum,
            };
            string name = Operators.Text(op);
            Expect(TokenKind.OpenParen, $"expected '(' after '{name}'");
            if (op == AggregateOp.Count)
            {
                Expect(TokenKind.CloseParen, "count() takes no arguments");
                return new AggregateExpr(op, null) { Span = From(tok.Offset) };
            }

            if (Cur.Kind == TokenKind.CloseParen)
            {
                throw Unexpected(Cur, $"{name}() needs a field expression, e.g. {name}(duration)");
            }

            var arg = ParseField(Operators.PrecedenceLogical);
            Expect(TokenKind.CloseParen, $"expected ')' to close {name}(");
            return new AggregateExpr(op, arg) { Span = From(tok.Offset) };
        }

        private ValueList<FieldExpr> ParseAttributeList(string context)
        {
            var list = new List<FieldExpr>();
            while (true)
            {
                list.Add(ParseAttributeRef(context));
                if (Cur.Kind != TokenKind.Comma)
                {
                    return ValueList<FieldExpr>.From(list);
                }

                Advance();
            }
        }

        private FieldExpr ParseAttributeRef(string context)
        {
            var tok = Cur;
            switch (tok.Kind)
            {
                case TokenKind.Attribute:
                    Advance();
                    return new AttributeExpr(tok.Scope, tok.Parent, tok.Text!) { Span = From(tok.Offset) };
                case TokenKind.Intrinsic:
                    Advance();
                    return new IntrinsicExpr(tok.Intrinsic) { Span = From(tok.Offset) };
                default:
                    throw Unexpected(tok, $"{context} takes attributes or intrinsics, e.g. span.http.method or duration");
            }
        }

        // ------------------------------------------------------------ metrics

        private static bool IsMetricsFunction(TokenKind k) => k is TokenKind.Rate or TokenKind.CountOverTime or TokenKind.MinOverTime
            or TokenKind.MaxOverTime or TokenKind.SumOverTime or TokenKind.AvgOverTime or TokenKind.QuantileOverTime
            or TokenKind.HistogramOverTime or TokenKind.Compare;

        private MetricsFirstStage ParseMetricsFirstStage()
        {
            var tok = Advance();
            string name = _text.Substring(tok.Offset, tok.Length);
            Expect(TokenKind.OpenParen, $"expected '(' after '{name}'");
            if (tok.Kind == TokenKind.Compare)
            {
                if (Cur.Kind != TokenKind.OpenBrace)
                {
                    throw Unexpected(Cur, "compare() takes a spanset filter first, e.g. compare({ status = error })");
                }

                var selection = ParseSpansetFilter();
                int topN = MetricsCompare.DefaultTopN;
                long startNs = 0;
                long endNs = 0;
                if (Cur.Kind == TokenKind.Comma)
                {
                    Advance();
                    topN = (int)ExpectInteger("compare() top-N", int.MaxValue);
                    if (Cur.Kind == TokenKind.Comma)
                    {
                        Advance();
                        startNs = ExpectInteger("compare() start", long.MaxValue);
                        Expect(TokenKind.Comma, "compare() takes either 2 or 4 arguments: compare({...}, topN, start, end)");
                        endNs = ExpectInteger("compare() end", long.MaxValue);
                    }
                }

                Expect(TokenKind.CloseParen, "expected ')' to close compare(");
                return new MetricsCompare(selection, topN, startNs, endNs) { Span = From(tok.Offset) };
            }

            MetricsFunction fn = tok.Kind switch
            {
                TokenKind.Rate => MetricsFunction.Rate,
                TokenKind.CountOverTime => MetricsFunction.CountOverTime,
                TokenKind.MinOverTime => MetricsFunction.MinOverTime,
                TokenKind.MaxOverTime => MetricsFunction.MaxOverTime,
                TokenKind.SumOverTime => MetricsFunction.SumOverTime,
                TokenKind.AvgOverTime => MetricsFunction.AvgOverTime,
                TokenKind.QuantileOverTime => MetricsFunction.QuantileOverTime,
                _ => MetricsFunction.HistogramOverTime,
            };

            FieldExpr? attr = null;
            var quantiles = ValueList<double>.Empty;
            if (fn is MetricsFunction.Rate or MetricsFunction.CountOverTime)
            {
                Expect(TokenKind.CloseParen, $"{name}() takes no arguments");
            }
            else
            {
                attr = ParseAttributeRef($"{name}()");
                if (fn == MetricsFunction.QuantileOverTime)
                {
                    Expect(TokenKind.Comma, "quantile_over_time() needs quantiles after the attribute, e.g. quantile_over_time(duration, .5, .99)");
                    var qs = new List<double>();
                    while (true)
                    {
                        var q = Cur;
                        if (q.Kind == TokenKind.Integer)
                        {
                            qs.Add(q.Int);
                        }
                        else if (q.Kind == TokenKind.Float)
                        {
                            qs.Add(q.Float);
                        }
                        else
                        {
                            throw Unexpected(q, "expected a quantile such as .99");
                        }

                        Advance();
                        if (Cur.Kind != TokenKind.Comma)
                        {
                            break;
                        }

                        Advance();
                    }

                    quantiles = ValueList<double>.From(qs);
                }

                Expect(TokenKind.CloseParen, $"expected ')' to close {name}(");
            }

            var by = ValueList<FieldExpr>.Empty;
            if (Cur.Kind == TokenKind.By)
            {
                Advance();
                Expect(TokenKind.OpenParen, "expected '(' after 'by'");
                by = ParseAttributeList("by()");
                Expect(TokenKind.CloseParen, "expected ',' or ')' in by(...)");
            }

            return new MetricsAggregate(fn, attr, quantiles, by) { Span = From(tok.Offset) };
        }

        private MetricsExpr ParseMetricsTail(MetricsExpr m)
        {
            int start = m.Span.Start;
            while (true)
            {
                var tok = Cur;
                if (ComparisonFor(tok.Kind) is { } op)
                {
                    Advance();
                    double v = ParseSignedNumber(tok);
                    m = m with { SecondStages = m.SecondStages.Append(new MetricsFilter(op, v) { Span = From(tok.Offset) }), Span = From(start) };
                    continue;
                }

                if (tok.Kind == TokenKind.Pipe)
                {
                    Advance();
                    var fn = Cur;
                    if (fn.Kind is not (TokenKind.TopK or TokenKind.BottomK))
                    {
                        throw Unexpected(fn, "after a metrics function only '| topk(n)', '| bottomk(n)' or a filter such as '> 10' may follow");
                    }

                    Advance();
                    Expect(TokenKind.OpenParen, $"expected '(' after '{(fn.Kind == TokenKind.TopK ? "topk" : "bottomk")}'");
                    long n = ExpectInteger(fn.Kind == TokenKind.TopK ? "topk()" : "bottomk()", int.MaxValue);
                    Expect(TokenKind.CloseParen, "expected ')'");
                    var stage = new TopKBottomK(fn.Kind == TokenKind.TopK ? TopKFunction.TopK : TopKFunction.BottomK, (int)n) { Span = From(fn.Offset) };
                    m = m with { SecondStages = m.SecondStages.Append(stage), Span = From(start) };
                    continue;
                }

                return m;
            }
        }

        private double ParseSignedNumber(Token after)
        {
            bool negative = false;
            if (Cur.Kind == TokenKind.Minus)
            {
                negative = true;
                Advance();
            }

            var t = Cur;
            double v = t.Kind switch
            {
                TokenKind.Integer => t.Int,
                TokenKind.Float => t.Float,
                _ => throw Unexpected(t, $"expected a number after '{OpText(after)}' to filter metrics results"),
            };
            Advance();
            return negative ? -v : v;
        }

        private long ExpectInteger(string what, long max)
        {
            var t = Cur;
            if (t.Kind != TokenKind.Integer)
            {
                throw Unexpected(t, $"{what} must be an integer");
            }

            if (t.Int > max)
            {
                throw ParseErrors.Create(_text, t.Offset, $"{what} value {t.Int} is out of range", $"the maximum is {max}");
            }

            Advance();
            return t.Int;
        }

        // ------------------------------------------------------------ field expressions

        private FieldExpr ParseField(int minPrec)
        {
            Enter();
            var left = ParseFieldPrefix();
            while (true)
            {
                var tok = Cur;
                var op = FieldOpFor(tok.Kind);
                if (op is null)
                {
                    break;
                }

                int prec = Operators.Precedence(op.Value);
                if (prec < minPrec)
                {
                    break;
                }

                Advance();
                var right = ParseField(op == BinaryOp.Pow ? prec : prec + 1);
                left = ConstantFolding.Binary(op.Value, left, right, TextSpan.Cover(left.Span, right.Span));
            }

            _depth--;
            return left;
        }

        private static BinaryOp? FieldOpFor(TokenKind k) => k switch
        {
            TokenKind.And => BinaryOp.And,
            TokenKind.Or => BinaryOp.Or,
            TokenKind.Equal => BinaryOp.Equal,
            TokenKind.NotEqual => BinaryOp.NotEqual,
            TokenKind.Less => BinaryOp.Less,
            TokenKind.LessEqual => BinaryOp.LessEqual,
            TokenKind.Greater => BinaryOp.Greater,
            TokenKind.GreaterEqual => BinaryOp.GreaterEqual,
            TokenKind.Regex => BinaryOp.Regex,
            TokenKind.NotRegex => BinaryOp.NotRegex,
            TokenKind.Plus => BinaryOp.Add,
            TokenKind.Minus => BinaryOp.Sub,
            TokenKind.Star => BinaryOp.Mul,
            TokenKind.Slash => BinaryOp.Div,
            TokenKind.Percent => BinaryOp.Mod,
            TokenKind.Caret => BinaryOp.Pow,
            _ => null,
        };

        private FieldExpr ParseFieldPrefix()
        {
            var tok = Cur;
            switch (tok.Kind)
            {
                case TokenKind.Minus:
                    {
                        Advance();
                        var operand = ParseField(Operators.PrecedenceAdditive + 1);
                        return ConstantFolding.Unary(UnaryOp.Negate, operand, From(tok.Offset));
                    }

                case TokenKind.Not:
                    {
                        Advance();
                        var operand = ParseField(Operators.PrecedenceNot + 1);
                        return ConstantFolding.Unary(UnaryOp.Not, operand, From(tok.Offset));
                    }

                case TokenKind.OpenParen:
                    {
                        Advance();
                        var inner = ParseField(Operators.PrecedenceLogical);
                        if (Cur.Kind != TokenKind.CloseParen)
                        {
                            throw Unexpected(Cur, $"expected ')' to close the '(' at {Position(tok.Offset)}, or an operator");
                        }

                        Advance();
                        return inner;
                    }

                case TokenKind.Attribute:
                    Advance();
                    return new AttributeExpr(tok.Scope, tok.Parent, tok.Text!) { Span = From(tok.Offset) };
                case TokenKind.Intrinsic:
                    Advance();
                    return new IntrinsicExpr(tok.Intrinsic) { Span = From(tok.Offset) };
                case TokenKind.Identifier:
                    throw ParseErrors.Create(_text, tok.Offset, $"unknown identifier '{tok.Text}'",
                        $"attributes need a scope: '.{tok.Text}', 'span.{tok.Text}' or 'resource.{tok.Text}'; string values need quotes");
                case TokenKind.OpenBrace:
                    throw Unexpected(tok, "spanset filters cannot be nested; expected an expression");
                default:
                    {
                        var lit = TryLiteral(tok);
                        if (lit is null)
                        {
                            throw Unexpected(tok, "expected an expression");
                        }

                        Advance();
                        return lit;
                    }
            }
        }

        private LiteralExpr? TryLiteral(Token tok)
        {
            var span = new TextSpan(tok.Offset, tok.Length);
            return tok.Kind switch
            {
                TokenKind.Integer => new IntLiteral(tok.Int) { Span = span },
                TokenKind.Float => new FloatLiteral(tok.Float) { Span = span },
                TokenKind.Duration => new DurationLiteral(tok.Int) { Span = span },
                TokenKind.String => new StringLiteral(tok.Text!) { Span = span },
                TokenKind.True => new BoolLiteral(true) { Span = span },
                TokenKind.False => new BoolLiteral(false) { Span = span },
                TokenKind.Nil => new NilLiteral { Span = span },
                TokenKind.StatusOk => new StatusLiteral(SpanStatus.Ok) { Span = span },
                TokenKind.StatusError => new StatusLiteral(SpanStatus.Error) { Span = span },
                TokenKind.StatusUnset => new StatusLiteral(SpanStatus.Unset) { Span = span },
                TokenKind.KindUnspecified => new KindLiteral(SpanKind.Unspecified) { Span = span },
                TokenKind.KindInternal => new KindLiteral(SpanKind.Internal) { Span = span },
                TokenKind.KindServer => new KindLiteral(SpanKind.Server) { Span = span },
                TokenKind.KindClient => new KindLiteral(SpanKind.Client) { Span = span },
                TokenKind.KindProducer => new KindLiteral(SpanKind.Producer) { Span = span },
                TokenKind.KindConsumer => new KindLiteral(SpanKind.Consumer) { Span = span },
                _ => null,
            };
        }

        private static LiteralExpr? Negate(LiteralExpr lit) => ConstantFolding.Unary(UnaryOp.Negate, lit, lit.Span) as LiteralExpr;

        // ------------------------------------------------------------ helpers

        private void Enter()
        {
            if (++_depth > MaxNestingDepth)
            {
                throw ParseErrors.Create(_text, Cur.Offset, "query nests too deeply", $"at most {MaxNestingDepth} levels of parentheses and operators");
            }
        }

        private void Expect(TokenKind kind, string expectation)
        {
            if (Cur.Kind != kind)
            {
                throw Unexpected(Cur, expectation);
            }

            Advance();
        }

        private string Position(int offset)
        {
            var (line, col) = SourcePosition.LineColumn(_text, offset);
            return $"line {line} col {col}";
        }

        private string OpText(Token t) => _text.Substring(t.Offset, t.Length);

        private TraceQLParseException Unexpected(Token tok, string expectation)
        {
            string what;
            if (tok.Kind == TokenKind.EndOfInput)
            {
                what = "unexpected end of query";
            }
            else
            {
                string text = _text.Substring(tok.Offset, Math.Min(tok.Length, 40));
                what = $"unexpected '{text}{(tok.Length > 40 ? "..." : string.Empty)}'";
            }

            return ParseErrors.Create(_text, tok.Offset, what, expectation);
        }
    }
}
