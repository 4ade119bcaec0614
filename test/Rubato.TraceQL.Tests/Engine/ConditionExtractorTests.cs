using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.TraceQL.Tests.Engine;

public sealed class ConditionExtractorTests
{
    private static FetchSpansRequest Extract(string q) => ConditionExtractor.Extract(TraceQLParser.ParseAndValidate(q));

    private static FieldRef Span(string name) => FieldRef.ForAttribute(AttributeScope.Span, name);

    private static FieldRef Resource(string name) => FieldRef.ForAttribute(AttributeScope.Resource, name);

    [Fact]
    public void Extract_AndInsideFilter_BothConditionsAllConditions()
    {
        var r = Extract("{ span.a = \"x\" && resource.b > 3 }");

        Assert.True(r.AllConditions);
        Assert.Equal(2, r.Conditions.Count);
        Assert.Equal(new Condition(Span("a"), ConditionOp.Equal, [TraceQLValue.FromString("x")]).ToString(), r.Conditions[0].ToString());
        Assert.Equal(Resource("b"), r.Conditions[1].Field);
        Assert.Equal(ConditionOp.Greater, r.Conditions[1].Op);
        Assert.Equal(TraceQLValue.FromInt(3), r.Conditions[1].Operands[0]);
        Assert.False(r.NeedsStructure);
        Assert.False(r.FetchesEverything);
    }

    [Fact]
    public void Extract_OrInsideFilter_NotAllConditions()
    {
        var r = Extract("{ span.a = \"x\" || resource.b > 3 }");

        Assert.False(r.AllConditions);
        Assert.Equal(2, r.Conditions.Count);
    }

    [Theory]
    [InlineData("{ span.a = 1 } && { span.b = 2 }", false)]
    [InlineData("{ span.a = 1 } || { span.b = 2 }", false)]
    [InlineData("{ span.a = 1 } > { span.b = 2 }", true)]
    [InlineData("{ span.a = 1 } !>> { span.b = 2 }", true)]
    [InlineData("{ span.a = 1 } &~ { span.b = 2 }", true)]
    public void Extract_SpansetOperation_BothSidesNotAllConditions(string q, bool structural)
    {
        var r = Extract(q);

        Assert.False(r.AllConditions);
        Assert.Equal([Span("a"), Span("b")], r.Conditions.Select(c => c.Field));
        Assert.Equal(structural, r.NeedsStructure);
    }

    [Fact]
    public void Extract_LiteralOnLeft_FlipsOperator()
    {
        var r = Extract("{ 3 < span.a }");

        Assert.Equal(ConditionOp.Greater, Assert.Single(r.Conditions).Op);
    }

    [Theory]
    [InlineData("{ span.a = nil }", ConditionOp.NotExists)]
    [InlineData("{ span.a != nil }", ConditionOp.Exists)]
    [InlineData("{ !(span.a = 1) }", ConditionOp.None)]
    [InlineData("{ span.a + 1 = 2 }", ConditionOp.None)]
    [InlineData("{ span.a =~ \"x.*\" }", ConditionOp.Regex)]
    [InlineData("{ span.a !~ \"x.*\" }", ConditionOp.NotRegex)]
    public void Extract_SingleFieldForms_GiveExpectedOperator(string q, ConditionOp op)
    {
        var c = Assert.Single(Extract(q).Conditions);

        Assert.Equal(Span("a"), c.Field);
        Assert.Equal(op, c.Op);
    }

    [Fact]
    public void Extract_Intrinsic_UsesIntrinsicRef()
    {
        var c = Assert.Single(Extract("{ duration > 1s }").Conditions);

        Assert.Equal(Intrinsic.Duration, c.Field.Intrinsic);
        Assert.Equal(TraceQLValue.FromDuration(1_000_000_000), c.Operands[0]);
    }

    [Fact]
    public void Extract_PipelineStages_SecondPassHoldsAggregateGroupAndSelectFields()
    {
        var r = Extract("{ span.a = 1 } | avg(span.x) > 2 | by(resource.svc) | select(span.y, span:status)");

        Assert.True(r.AllConditions);
        Assert.Equal(Span("a"), Assert.Single(r.Conditions).Field);
        Assert.Equal([Span("x"), Resource("svc"), Span("y"), FieldRef.ForIntrinsic(Intrinsic.Status)], r.SecondPassFields);
    }

    [Fact]
    public void Extract_FilterStagesChained_KeepAllConditions()
    {
        var r = Extract("{ span.a = 1 } | { resource.b = 2 }");

        Assert.True(r.AllConditions);
        Assert.Equal(2, r.Conditions.Count);
    }

    [Theory]
    [InlineData("{ span.a = 1 } | count() > 2 | { span.b = 2 }")]
    [InlineData("{ span.a = 1 } > { span.c = 3 } | { span.b = 2 }")]
    public void Extract_FilterAfterAggregateOrOperation_OnlyFetched(string q)
    {
        var r = Extract(q);

        Assert.DoesNotContain(r.Conditions, c => c.Field == Span("b"));
        Assert.Contains(Span("b"), r.SecondPassFields);
        Assert.Contains(r.Conditions, c => c.Field == Span("a") && c.Op == ConditionOp.Equal);
    }

    [Theory]
    [InlineData("{ }")]
    [InlineData("{ } | count() > 1")]
    [InlineData("{ span.a = 1 } || { }")]
    [InlineData("{ span.a = 1 || true }")]
    [InlineData("{ span.a = 1 || span.b + 1 = 2 }")]
    public void Extract_SideMatchingEverything_FetchesEverything(string q)
    {
        var r = Extract(q);

        Assert.True(r.FetchesEverything);
    }

    [Fact]
    public void Extract_EverythingWithFilterFields_MovesThemToSecondPass()
    {
        var r = Extract("{ span.a = 1 } || { }");

        Assert.Empty(r.Conditions);
        Assert.Contains(Span("a"), r.SecondPassFields);
    }

    [Fact]
    public void Extract_MatchAllInsideAnd_IsNeutral()
    {
        var r = Extract("{ } | { span.a = 1 }");

        Assert.True(r.AllConditions);
        Assert.Equal(Span("a"), Assert.Single(r.Conditions).Field);
    }

    [Theory]
    [InlineData("{ span:childCount > 1 }")]
    [InlineData("{ nestedSetLeft > 1 }")]
    [InlineData("{ } >> { }")]
    public void Extract_StructureUsers_NeedStructure(string q) => Assert.True(Extract(q).NeedsStructure);

    [Fact]
    public void Extract_TimeRange_IsCopied()
    {
        var r = ConditionExtractor.Extract(TraceQLParser.ParseAndValidate("{ }"), 10, 20);

        Assert.Equal(10, r.StartUnixNanos);
        Assert.Equal(20, r.EndUnixNanos);
    }

    [Theory]
    [InlineData(true, new[] { true, true }, true)]
    [InlineData(true, new[] { true, false }, false)]
    [InlineData(false, new[] { false, true }, true)]
    [InlineData(false, new[] { false, false }, false)]
    public void Selects_PerConditionResults_FollowsAllConditions(bool all, bool[] results, bool expected)
    {
        var r = new FetchSpansRequest { AllConditions = all };

        Assert.Equal(expected, r.Selects(results));
    }
}
