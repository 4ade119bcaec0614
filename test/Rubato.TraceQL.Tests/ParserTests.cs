using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.TraceQL.Tests;

public sealed class ParserTests
{
    private static AttributeExpr A(string name) => new(AttributeScope.None, false, name);

    private static IntLiteral I(long v) => new(v);

    private static BinaryExpr B(BinaryOp op, FieldExpr l, FieldExpr r) => new(op, l, r);

    private static UnaryExpr U(UnaryOp op, FieldExpr e) => new(op, e);

    private static SpansetFilter F(string attr) => new(A(attr));

    private static ValueList<T> L<T>(params T[] items) => ValueList<T>.Of(items);

    private static FieldExpr FilterExpr(string query)
    {
        var root = TraceQLParser.Parse(query);
        var pipeline = Assert.IsType<SpansetQuery>(root.Query).Pipeline;
        return Assert.IsType<SpansetFilter>(Assert.Single(pipeline.Elements)).Expression;
    }

    private static Pipeline SearchPipeline(string query) => Assert.IsType<SpansetQuery>(TraceQLParser.Parse(query).Query).Pipeline;

    [Fact]
    public void Parse_AndOr_SameLevelLeftAssociativeLikeTempo()
    {
        Assert.Equal(B(BinaryOp.And, B(BinaryOp.Or, A("a"), A("b")), A("c")), FilterExpr("{ .a || .b && .c }"));
        Assert.Equal(B(BinaryOp.Or, B(BinaryOp.And, A("a"), A("b")), A("c")), FilterExpr("{ .a && .b || .c }"));
    }

    [Fact]
    public void Parse_Arithmetic_MultiplicationBindsTighterThanAdditionAndComparison()
    {
        Assert.Equal(
            B(BinaryOp.Equal, B(BinaryOp.Add, A("a"), B(BinaryOp.Mul, A("b"), A("c"))), I(1)),
            FilterExpr("{ .a + .b * .c = 1 }"));
        Assert.Equal(
            B(BinaryOp.Sub, B(BinaryOp.Sub, A("a"), A("b")), A("c")),
            FilterExpr("{ .a - .b - .c }"));
    }

    [Fact]
    public void Parse_Power_IsRightAssociative()
    {
        Assert.Equal(B(BinaryOp.Pow, A("a"), B(BinaryOp.Pow, A("b"), A("c"))), FilterExpr("{ .a ^ .b ^ .c }"));
        Assert.Equal(B(BinaryOp.Mul, A("a"), B(BinaryOp.Pow, A("b"), A("c"))), FilterExpr("{ .a * .b ^ .c }"));
    }

    [Fact]
    public void Parse_UnaryMinus_BindsLikeBinaryMinus()
    {
        // Tempo: SUB fieldExpression has SUB's precedence, so * and ^ bind first.
        Assert.Equal(B(BinaryOp.Equal, U(UnaryOp.Negate, B(BinaryOp.Mul, A("a"), I(2))), I(1)), FilterExpr("{ -.a * 2 = 1 }"));
        Assert.Equal(B(BinaryOp.Add, U(UnaryOp.Negate, A("a")), I(1)), FilterExpr("{ -.a + 1 }"));
    }

    [Fact]
    public void Parse_Not_BindsBetweenAdditionAndMultiplication()
    {
        Assert.Equal(B(BinaryOp.And, U(UnaryOp.Not, A("a")), A("b")), FilterExpr("{ !.a && .b }"));
        Assert.Equal(B(BinaryOp.Equal, U(UnaryOp.Not, A("a")), I(1)), FilterExpr("{ !.a = 1 }"));
        Assert.Equal(U(UnaryOp.Not, B(BinaryOp.Mul, A("a"), A("b"))), FilterExpr("{ !.a * .b }"));
    }

    [Fact]
    public void Parse_Nil_BecomesExistenceTests()
    {
        Assert.Equal(U(UnaryOp.Exists, A("a")), FilterExpr("{ .a != nil }"));
        Assert.Equal(U(UnaryOp.NotExists, A("a")), FilterExpr("{ .a = nil }"));
        Assert.Equal(U(UnaryOp.Exists, A("a")), FilterExpr("{ nil != .a }"));
        Assert.Equal(B(BinaryOp.And, U(UnaryOp.Exists, A("a")), U(UnaryOp.NotExists, A("b"))), FilterExpr("{ .a != nil && .b = nil }"));
        Assert.Equal(new BoolLiteral(false), FilterExpr("{ nil = nil }"));
    }

    [Fact]
    public void Parse_Constants_AreFolded()
    {
        Assert.Equal(new BoolLiteral(true), FilterExpr("{ 1 + 1 = 2 }"));
        Assert.Equal(B(BinaryOp.Equal, A("a"), I(-3)), FilterExpr("{ .a = -(1 + 2) }"));
        Assert.Equal(B(BinaryOp.Greater, new IntrinsicExpr(Intrinsic.Duration), new DurationLiteral(1_500_000_000)),
            FilterExpr("{ duration > 1s + 500ms }"));

        // Ill-typed constants stay as written so validation can report them.
        Assert.Equal(B(BinaryOp.Equal, I(1), new StringLiteral("a")), FilterExpr("{ 1 = \"a\" }"));
        Assert.Equal(B(BinaryOp.Div, I(1), I(0)), FilterExpr("{ 1 / 0 }"));
    }

    [Fact]
    public void Parse_RegexPattern_IsKeptVerbatim()
    {
        Assert.Equal(B(BinaryOp.Regex, new AttributeExpr(AttributeScope.Span, false, "url"), new StringLiteral("\\d+/api")),
            FilterExpr("{ span.url =~ `\\d+/api` }"));
    }

    [Fact]
    public void Parse_LegacyAndScopedIntrinsics_GiveTheSameNode()
    {
        Assert.Equal(TraceQLParser.Parse("{ duration > 1s }"), TraceQLParser.Parse("{ span:duration > 1s }"));
        Assert.Equal(TraceQLParser.Parse("{ rootServiceName = \"a\" }"), TraceQLParser.Parse("{ trace:rootService = \"a\" }"));
    }

    [Fact]
    public void Parse_SpansetOperators_StructuralBindTighterThanAndOr()
    {
        var p = SearchPipeline("{ .a } && { .b } > { .c }");
        Assert.Equal(new SpansetOperation(SpansetOp.And, F("a"), new SpansetOperation(SpansetOp.Child, F("b"), F("c"))), Assert.Single(p.Elements));

        p = SearchPipeline("{ .a } >> { .b } >> { .c }");
        Assert.Equal(new SpansetOperation(SpansetOp.Descendant, new SpansetOperation(SpansetOp.Descendant, F("a"), F("b")), F("c")),
            Assert.Single(p.Elements));
    }

    [Theory]
    [InlineData("&&", SpansetOp.And)]
    [InlineData("||", SpansetOp.Union)]
    [InlineData(">", SpansetOp.Child)]
    [InlineData("<", SpansetOp.Parent)]
    [InlineData(">>", SpansetOp.Descendant)]
    [InlineData("<<", SpansetOp.Ancestor)]
    [InlineData("~", SpansetOp.Sibling)]
    [InlineData("!>", SpansetOp.NotChild)]
    [InlineData("!<", SpansetOp.NotParent)]
    [InlineData("!>>", SpansetOp.NotDescendant)]
    [InlineData("!<<", SpansetOp.NotAncestor)]
    [InlineData("!~", SpansetOp.NotSibling)]
    [InlineData("&>", SpansetOp.UnionChild)]
    [InlineData("&<", SpansetOp.UnionParent)]
    [InlineData("&>>", SpansetOp.UnionDescendant)]
    [InlineData("&<<", SpansetOp.UnionAncestor)]
    [InlineData("&~", SpansetOp.UnionSibling)]
    public void Parse_EachSpansetOperator_MapsToItsNode(string op, SpansetOp expected)
    {
        var p = SearchPipeline($"{{ .a }} {op} {{ .b }}");
        Assert.Equal(new SpansetOperation(expected, F("a"), F("b")), Assert.Single(p.Elements));
    }

    [Fact]
    public void Parse_Pipe_HasLowestPrecedence()
    {
        var p = SearchPipeline("{ .a } | { .b } && { .c } | count() > 2");
        Assert.Equal(3, p.Elements.Count);
        Assert.Equal(F("a"), p.Elements[0]);
        Assert.Equal(new SpansetOperation(SpansetOp.And, F("b"), F("c")), p.Elements[1]);
        Assert.Equal(
            new ScalarFilter(ComparisonOp.Greater, new AggregateExpr(AggregateOp.Count, null), new ScalarLiteral(I(2))),
            p.Elements[2]);
    }

    [Fact]
    public void Parse_GroupedPipelines_BecomeSpansetOperands()
    {
        var p = SearchPipeline("({ .a } | count() > 1) && { .b }");
        var op = Assert.IsType<SpansetOperation>(Assert.Single(p.Elements));
        var left = Assert.IsType<Pipeline>(op.Left);
        Assert.Equal(2, left.Elements.Count);
        Assert.Equal(F("b"), op.Right);
    }

    [Fact]
    public void Parse_ScalarPipelineArithmetic_BuildsScalarNodes()
    {
        var p = SearchPipeline("({ .a } | count()) + ({ .b } | avg(duration)) = 2");
        var filter = Assert.IsType<ScalarFilter>(Assert.Single(p.Elements));
        var sum = Assert.IsType<ScalarOperation>(filter.Left);
        Assert.Equal(ArithmeticOp.Add, sum.Op);
        Assert.IsType<ScalarPipeline>(sum.Left);
        Assert.Equal(new AggregateExpr(AggregateOp.Avg, new IntrinsicExpr(Intrinsic.Duration)), Assert.IsType<ScalarPipeline>(sum.Right).Aggregate);
    }

    [Fact]
    public void Parse_ByCoalesceSelect_AreStages()
    {
        var p = SearchPipeline("{ } | by(resource.service.name) | coalesce() | select(span.a, duration)");
        Assert.Equal(new GroupOperation(new AttributeExpr(AttributeScope.Resource, false, "service.name")), p.Elements[1]);
        Assert.Equal(new CoalesceOperation(), p.Elements[2]);
        Assert.Equal(new SelectOperation(L<FieldExpr>(new AttributeExpr(AttributeScope.Span, false, "a"), new IntrinsicExpr(Intrinsic.Duration))),
            p.Elements[3]);
    }

    [Fact]
    public void Parse_MetricsQuery_BuildsFirstAndSecondStages()
    {
        var root = TraceQLParser.Parse("{ status = error } | quantile_over_time(duration, .5, .99) by (resource.service.name) | topk(5) > 10");
        var q = Assert.IsType<MetricsQuery>(root.Query);
        Assert.Equal(
            new MetricsAggregate(MetricsFunction.QuantileOverTime, new IntrinsicExpr(Intrinsic.Duration), L(0.5, 0.99),
                L<FieldExpr>(new AttributeExpr(AttributeScope.Resource, false, "service.name"))),
            q.FirstStage);
        Assert.Equal(L<SecondStageElement>(new TopKBottomK(TopKFunction.TopK, 5), new MetricsFilter(ComparisonOp.Greater, 10)), q.SecondStages);
        Assert.True(root.IsMetrics);
        Assert.Null(root.SearchPipeline);
    }

    [Fact]
    public void Parse_Compare_DefaultsAndExplicitArguments()
    {
        var q = Assert.IsType<MetricsQuery>(TraceQLParser.Parse("{ } | compare({ status = error })").Query);
        var c = Assert.IsType<MetricsCompare>(q.FirstStage);
        Assert.Equal(10, c.TopN);
        Assert.Equal(0, c.Start);

        q = Assert.IsType<MetricsQuery>(TraceQLParser.Parse("{ } | compare({ .a }, 3, 100, 200)").Query);
        Assert.Equal(new MetricsCompare(new SpansetFilter(A("a")), 3, 100, 200), q.FirstStage);
    }

    [Fact]
    public void Parse_MetricsMath_FollowsArithmeticPrecedence()
    {
        var root = TraceQLParser.Parse("({ .a } | rate()) + ({ .b } | rate()) * ({ .c } | rate()) | topk(2)");
        var add = Assert.IsType<MetricsMath>(root.Query);
        Assert.Equal(ArithmeticOp.Add, add.Op);
        Assert.Equal(ArithmeticOp.Mul, Assert.IsType<MetricsMath>(add.Right).Op);
        Assert.Equal(L<SecondStageElement>(new TopKBottomK(TopKFunction.TopK, 2)), add.SecondStages);
    }

    [Fact]
    public void Parse_SingleWrappedMetricsQuery_IsTheSameAsUnwrapped()
    {
        Assert.Equal(TraceQLParser.Parse("{ } | rate() | topk(1)"), TraceQLParser.Parse("({ } | rate()) | topk(1)"));
    }

    [Fact]
    public void Parse_Hints_AreCollected()
    {
        var root = TraceQLParser.Parse("{ } | rate() with(sample=0.1, most_recent=true) with(job_size=5)");
        Assert.Equal(3, root.Hints.Count);
        Assert.Equal(new FloatLiteral(0.1), root.GetHint("sample")!.Value);
        Assert.Equal(new BoolLiteral(true), root.GetHint("most_recent")!.Value);
        Assert.Equal(new IntLiteral(5), root.GetHint("job_size")!.Value);
        Assert.Null(root.GetHint("missing"));
    }

    [Fact]
    public void Parse_Nodes_CarrySourceSpans()
    {
        const string q = "{ .a = 1 } | count() > 2";
        var p = SearchPipeline(q);
        var filter = Assert.IsType<SpansetFilter>(p.Elements[0]);
        Assert.Equal(new TextSpan(0, 10), filter.Span);
        Assert.Equal(".a = 1", q.Substring(filter.Expression.Span.Start, filter.Expression.Span.Length));
        var scalar = Assert.IsType<ScalarFilter>(p.Elements[1]);
        Assert.Equal("count() > 2", q.Substring(scalar.Span.Start, scalar.Span.Length));
        Assert.Equal(new TextSpan(0, q.Length), p.Span);
    }

    [Fact]
    public void Equals_SameQueryDifferentSpacing_AreEqual()
    {
        var a = TraceQLParser.Parse("{ .a = 1 }");
        var b = TraceQLParser.Parse("{    .a   =   1    }");
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, TraceQLParser.Parse("{ .a = 2 }"));
    }

    [Fact]
    public void DescendantsAndSelf_Query_VisitsEveryNodePreOrder()
    {
        var root = TraceQLParser.Parse("{ .a = 1 && span.b != nil } | by(.c)");
        var attrs = root.DescendantsAndSelf().OfType<AttributeExpr>().Select(a => a.Name).ToArray();
        Assert.Equal(["a", "b", "c"], attrs);
        Assert.Same(root, root.DescendantsAndSelf().First());
    }

    [Theory]
    [InlineData("{ .a = 1 && }", "unexpected '}' at line 1 col 13: expected an expression")]
    [InlineData("{ .a = 1", "unexpected end of query at line 1 col 9: expected '}' to close the spanset filter opened at line 1 col 1, or an operator")]
    [InlineData("{ .a = 1 } }", "unexpected '}' at line 1 col 12: expected end of query, '|' or an operator")]
    [InlineData("{ .a } + { .b }", "operator '+' cannot combine spansets at line 1 col 8: spansets combine with && || > < >> << ~ and their !/& forms")]
    [InlineData("{ attribute = 4 }", "unknown identifier 'attribute' at line 1 col 3: attributes need a scope: '.attribute', 'span.attribute' or 'resource.attribute'; string values need quotes")]
    [InlineData("{ } | count()", "aggregate 'count()' is not compared at line 1 col 7: a pipeline stage needs a comparison such as 'count() > 1'; a bare aggregate is only allowed as '({ ... } | count())'")]
    [InlineData("coalesce() | { }", "a pipeline cannot start with coalesce() at line 1 col 1: use it after a stage, e.g. '{ } | by(.a) | coalesce()'")]
    [InlineData("", "empty query at line 1 col 1: expected a spanset filter such as '{}'")]
    [InlineData("{ } | rate() | { }", "unexpected '{' at line 1 col 16: after a metrics function only '| topk(n)', '| bottomk(n)' or a filter such as '> 10' may follow")]
    [InlineData("({ .a }\n  | count() > 1", "unexpected end of query at line 2 col 16: expected ')' to close the '(' at line 1 col 1")]
    [InlineData("{ } | max() > 1", "unexpected ')' at line 1 col 11: max() needs a field expression, e.g. max(duration)")]
    public void Parse_BadQuery_MessageNamesProblemAndPosition(string query, string message)
    {
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(query));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Parse_ErrorOffsets_MatchLineAndColumn()
    {
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse("{ .a = 1 }\n| { .b = }"));
        Assert.Equal(2, ex.Line);
        Assert.Equal(10, ex.Column);
        Assert.Equal(20, ex.Offset);
    }

    [Fact]
    public void Parse_QueryOverMaximumSize_Throws()
    {
        string big = "{ .a = \"" + new string('x', TraceQLParser.DefaultMaxQuerySizeBytes) + "\" }";
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(big));
        Assert.Contains("max_query_expression_size_bytes", ex.Message, StringComparison.Ordinal);

        // Multi-byte characters count in UTF-8 bytes.
        string wide = "{ .a = \"" + new string('é', (TraceQLParser.DefaultMaxQuerySizeBytes / 2) - 2) + "\" }";
        Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(wide));

        string justFits = "{ .a = \"" + new string('x', TraceQLParser.DefaultMaxQuerySizeBytes - 12) + "\" }";
        Assert.NotNull(TraceQLParser.Parse(justFits));
        Assert.NotNull(TraceQLParser.Parse(big, maxQuerySizeBytes: 0));
    }

    [Fact]
    public void Parse_DeepNesting_FailsCleanlyInsteadOfOverflowingTheStack()
    {
        string deep = "{ " + new string('(', 10_000) + ".a" + new string(')', 10_000) + " }";
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(deep));
        Assert.Contains("nests too deeply", ex.Message, StringComparison.Ordinal);

        string unary = "{ " + new string('!', 10_000) + ".a }";
        Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(unary));

        string moderate = "{ " + new string('(', 100) + ".a" + new string(')', 100) + " }";
        Assert.Equal(TraceQLParser.Parse("{ .a }"), TraceQLParser.Parse(moderate));
    }

    [Fact]
    public async Task Parse_LongFlatChainAtDepthLimit_PrintsValidatesAndComparesOnAPoolThread()
    {
        // 1990 '||' give a tree just under MaxTreeDepth; every recursive walk must fit a thread-pool stack.
        string chain = "{ " + string.Join(" || ", Enumerable.Range(0, 1_990).Select(i => $".a = {i}")) + " }";
        await Task.Run(() =>
        {
            var root = TraceQLParser.Parse(chain);
            root.Validate();
            var again = TraceQLParser.Parse(AstPrinter.Print(root));
            Assert.Equal(root, again);
            Assert.Equal(root.GetHashCode(), again.GetHashCode());
            Assert.Equal(1_990, root.DescendantsAndSelf().OfType<AttributeExpr>().Count());
        });
    }

    [Fact]
    public void Parse_ChainBeyondDepthLimit_ThrowsParseError()
    {
        string chain = "{ " + string.Join(" || ", Enumerable.Range(0, 5_000).Select(i => $".a = {i}")) + " }";
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(chain));
        Assert.Contains("nests too deeply", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_LongPipeline_IsFlat()
    {
        string pipes = string.Join(" | ", Enumerable.Range(0, 5_000).Select(i => $"{{ .a = {i} }}"));
        Assert.Equal(5_000, SearchPipeline(pipes).Elements.Count);
    }
}
