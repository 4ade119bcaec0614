using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Parsing;
using Rubato.TraceQL.Validation;
using Xunit;

namespace Rubato.TraceQL.Tests;

public sealed class ValidatorTests
{
    [Theory]
    [InlineData("{ 1 = \"foo\" }", "binary operations must operate on the same type: '=' between an integer and a string")]
    [InlineData("{ status > ok }", "operator '>' cannot be applied to a status")]
    [InlineData("{ .a + \"x\" = 1 }", "operator '+' cannot be applied to a string")]
    [InlineData("{ .a > nil }", "nil can only be used as '= nil' or '!= nil', not with '>'")]
    [InlineData("{ span:name }", "spanset filter must evaluate to a boolean, but 'span:name' is a string")]
    [InlineData("{ .a =~ \"(\" }", "invalid regex \"(\"")]
    [InlineData("{ } | avg(span:name) > 1", "aggregate field expressions must resolve to a number")]
    [InlineData("{ } | rate() | topk(0)", "topk() limit must be positive, got 0")]
    [InlineData("{ } | compare({ .a }) | topk(2)", "compare() cannot be used with second stage functions")]
    [InlineData("{ } | quantile_over_time(duration, 1.5)", "quantile 1.5 is outside [0, 1]")]
    public void Validate_BadQuery_MessageNamesProblem(string query, string expected)
    {
        var ex = Assert.Throws<TraceQLValidationException>(() => TraceQLParser.ParseAndValidate(query));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"(at offset {ex.Offset})", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Error_OffsetPointsAtTheOffendingNode()
    {
        const string q = "{ .a = 1 } | avg(span:name) > 1";
        var ex = Assert.Throws<TraceQLValidationException>(() => TraceQLParser.ParseAndValidate(q));
        Assert.Equal(q.IndexOf("span:name", StringComparison.Ordinal), ex.Offset);

        const string r = "{ .a = 1 && .b =~ \"[\" }";
        var rex = Assert.Throws<TraceQLValidationException>(() => TraceQLParser.ParseAndValidate(r));
        Assert.Equal(r.IndexOf("\"[\"", StringComparison.Ordinal), rex.Offset);
    }

    [Fact]
    public void Validate_ParentScope_IsUnsupportedNotInvalid()
    {
        var ex = Assert.Throws<TraceQLUnsupportedException>(() => TraceQLParser.ParseAndValidate("{ .a = 1 && parent.span.b = 2 }"));
        Assert.Equal(12, ex.Offset);
        Assert.StartsWith("parent scope ('parent.span.b') not yet supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TooManyMetricsGroupBys_IsUnsupported()
    {
        TraceQLParser.ParseAndValidate("{ } | rate() by (.a, .b, .c, .d, .e)");
        Assert.Throws<TraceQLUnsupportedException>(() => TraceQLParser.ParseAndValidate("{ } | rate() by (.a, .b, .c, .d, .e, .f)"));
    }

    [Theory]
    [InlineData("{ .a = 1 }", StaticType.Boolean)]
    [InlineData("{ .a + 1 }", StaticType.Int)]
    [InlineData("{ 1.5 + .a }", StaticType.Float)]
    [InlineData("{ span:duration * 2 }", StaticType.Duration)]
    [InlineData("{ .a }", StaticType.Attribute)]
    [InlineData("{ -.a }", StaticType.Attribute)]
    [InlineData("{ span:status }", StaticType.Status)]
    [InlineData("{ .a != nil }", StaticType.Boolean)]
    public void TypeOf_FieldExpressions_FollowTempoImpliedType(string query, StaticType expected)
    {
        var root = TraceQLParser.Parse(query);
        var filter = (SpansetFilter)((SpansetQuery)root.Query).Pipeline.Elements[0];
        Assert.Equal(expected, TraceQLValidator.TypeOf(filter.Expression));
    }

    [Fact]
    public void ReferencesSpan_ConstantsOnly_IsFalse()
    {
        var root = TraceQLParser.Parse("{ } | by(1 / 0)");
        var by = (GroupOperation)((SpansetQuery)root.Query).Pipeline.Elements[1];
        Assert.False(TraceQLValidator.ReferencesSpan(by.Expression));
        Assert.Throws<TraceQLValidationException>(root.Validate);
    }
}
