using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Lexing;
using Xunit;

namespace Rubato.TraceQL.Tests;

public sealed class LexerTests
{
    private static TokenKind[] Kinds(string text) =>
        TraceQLLexer.Tokenize(text).Select(t => t.Kind).Where(k => k != TokenKind.EndOfInput).ToArray();

    private static Token Single(string text)
    {
        var tokens = TraceQLLexer.Tokenize(text);
        Assert.Equal(2, tokens.Count);
        return tokens[0];
    }

    [Theory]
    [InlineData("1h", 3_600_000_000_000L)]
    [InlineData("1h5m", 3_900_000_000_000L)]
    [InlineData("1h30m", 5_400_000_000_000L)]
    [InlineData("5m", 300_000_000_000L)]
    [InlineData("10s", 10_000_000_000L)]
    [InlineData("1.5s", 1_500_000_000L)]
    [InlineData("100ms", 100_000_000L)]
    [InlineData("5us", 5_000L)]
    [InlineData("5µs", 5_000L)]
    [InlineData("10ns", 10L)]
    [InlineData("2d", 172_800_000_000_000L)]
    [InlineData("1w", 604_800_000_000_000L)]
    [InlineData("0.5ms", 500_000L)]
    public void Next_NumberWithUnits_IsDurationInNanoseconds(string text, long nanos)
    {
        var t = Single(text);
        Assert.Equal(TokenKind.Duration, t.Kind);
        Assert.Equal(nanos, t.Int);
        Assert.Equal(text.Length, t.Length);
    }

    [Fact]
    public void Next_NumberThenSpaceThenUnitLetter_IsIntegerThenIdentifier()
    {
        Assert.Equal([TokenKind.Integer, TokenKind.Identifier], Kinds("1 s"));
        Assert.Equal([TokenKind.Integer, TokenKind.Identifier], Kinds("1x"));
    }

    [Fact]
    public void Next_DurationBeforeClosingParen_StopsAtParen()
    {
        Assert.Equal([TokenKind.Max, TokenKind.OpenParen, TokenKind.Intrinsic, TokenKind.CloseParen, TokenKind.Greater, TokenKind.Duration],
            Kinds("max(duration)>1s"));
    }

    [Fact]
    public void Next_DurationKeywordAndDurationLiteral_AreDistinct()
    {
        var tokens = TraceQLLexer.Tokenize("{ duration > 5ms }");
        Assert.Equal(TokenKind.Intrinsic, tokens[1].Kind);
        Assert.Equal(Intrinsic.Duration, tokens[1].Intrinsic);
        Assert.Equal(TokenKind.Duration, tokens[3].Kind);
        Assert.Equal(5_000_000, tokens[3].Int);
    }

    [Theory]
    [InlineData(".5", 0.5)]
    [InlineData("1.25", 1.25)]
    [InlineData("1e3", 1000.0)]
    [InlineData("1.5E-3", 0.0015)]
    [InlineData("2e+2", 200.0)]
    public void Next_FloatForms_AreFloat(string text, double value)
    {
        var t = Single(text);
        Assert.Equal(TokenKind.Float, t.Kind);
        Assert.Equal(value, t.Float);
    }

    [Fact]
    public void Next_MinIntMaxInt_AreIntegerLimits()
    {
        Assert.Equal(long.MinValue, Single("minInt").Int);
        Assert.Equal(long.MaxValue, Single("maxInt").Int);
        Assert.Equal(TokenKind.Integer, Single("maxInt").Kind);
        Assert.Equal(TokenKind.Identifier, Single("minint").Kind);
    }

    [Fact]
    public void Next_MinusOne_IsMinusThenInteger()
    {
        var tokens = TraceQLLexer.Tokenize("-1");
        Assert.Equal(TokenKind.Minus, tokens[0].Kind);
        Assert.Equal(TokenKind.Integer, tokens[1].Kind);
        Assert.Equal(1, tokens[1].Int);
        Assert.Equal(1, tokens[1].Offset);
    }

    [Fact]
    public void Next_ScopedAttributeWithDots_KeepsDotsInName()
    {
        var t = Single("span.foo.bar");
        Assert.Equal(TokenKind.Attribute, t.Kind);
        Assert.Equal(AttributeScope.Span, t.Scope);
        Assert.Equal("foo.bar", t.Text);
        Assert.False(t.Parent);
    }

    [Theory]
    [InlineData("resource.service.name", AttributeScope.Resource, "service.name")]
    [InlineData("event.exception.message", AttributeScope.Event, "exception.message")]
    [InlineData("link.foo", AttributeScope.Link, "foo")]
    [InlineData("instrumentation.lib", AttributeScope.Instrumentation, "lib")]
    [InlineData(".http.status_code", AttributeScope.None, "http.status_code")]
    [InlineData(".span.foo", AttributeScope.None, "span.foo")]
    [InlineData("span.a-b", AttributeScope.Span, "a-b")]
    [InlineData("span.a/b+c*d%e", AttributeScope.Span, "a/b+c*d%e")]
    [InlineData("span.k8s:pod", AttributeScope.Span, "k8s:pod")]
    [InlineData(".ünïcødé", AttributeScope.None, "ünïcødé")]
    [InlineData("span.名前", AttributeScope.Span, "名前")]
    public void Next_AttributeNames_FollowTempoCharacterRules(string text, AttributeScope scope, string name)
    {
        var t = Single(text);
        Assert.Equal(TokenKind.Attribute, t.Kind);
        Assert.Equal(scope, t.Scope);
        Assert.Equal(name, t.Text);
    }

    [Fact]
    public void Next_QuotedAttributeName_UnescapesQuoteAndBackslash()
    {
        var t = Single("span.\"a\\\"b\"");
        Assert.Equal("a\"b", t.Text);
        Assert.Equal("a\\b", Single("span.\"a\\\\b\"").Text);
        Assert.Equal("foo bar", Single(".\"foo bar\"").Text);
        Assert.Equal("x.y z", Single("span.x.\"y z\"").Text);
    }

    [Fact]
    public void Next_AttributeFollowedByOperator_EndsBeforeIt()
    {
        Assert.Equal([TokenKind.Attribute, TokenKind.Equal, TokenKind.Integer], Kinds(".a=1"));
        Assert.Equal([TokenKind.Attribute, TokenKind.NotRegex, TokenKind.String], Kinds(".a!~\"x\""));
        Assert.Equal([TokenKind.Attribute, TokenKind.CloseBrace], Kinds(".a}"));
        Assert.Equal([TokenKind.Attribute, TokenKind.Comma, TokenKind.Attribute], Kinds(".a,.b"));
    }

    [Fact]
    public void Next_BareHyphenatedWord_IsIdentifierMinusIdentifier()
    {
        Assert.Equal([TokenKind.Identifier, TokenKind.Minus, TokenKind.Identifier], Kinds("a-b"));
    }

    [Fact]
    public void Next_ParentScope_RecognisesNestedSpanAndResource()
    {
        var t = Single("parent.span.foo");
        Assert.True(t.Parent);
        Assert.Equal(AttributeScope.Span, t.Scope);
        Assert.Equal("foo", t.Text);
        var u = Single("parent.foo.bar");
        Assert.True(u.Parent);
        Assert.Equal(AttributeScope.None, u.Scope);
        Assert.Equal("foo.bar", u.Text);
        Assert.Equal(Intrinsic.Parent, Single("parent").Intrinsic);
    }

    [Theory]
    [InlineData("span:duration", Intrinsic.Duration)]
    [InlineData("span:childCount", Intrinsic.ChildCount)]
    [InlineData("span:parentID", Intrinsic.ParentId)]
    [InlineData("trace:rootService", Intrinsic.TraceRootService)]
    [InlineData("trace:id", Intrinsic.TraceId)]
    [InlineData("event:name", Intrinsic.EventName)]
    [InlineData("event:timeSinceStart", Intrinsic.EventTimeSinceStart)]
    [InlineData("link:traceID", Intrinsic.LinkTraceId)]
    [InlineData("instrumentation:version", Intrinsic.InstrumentationVersion)]
    [InlineData("rootServiceName", Intrinsic.TraceRootService)]
    [InlineData("traceDuration", Intrinsic.TraceDuration)]
    [InlineData("nestedSetParent", Intrinsic.NestedSetParent)]
    [InlineData("statusMessage", Intrinsic.StatusMessage)]
    public void Next_IntrinsicNames_MapToIntrinsic(string text, Intrinsic intrinsic)
    {
        var t = Single(text);
        Assert.Equal(TokenKind.Intrinsic, t.Kind);
        Assert.Equal(intrinsic, t.Intrinsic);
    }

    [Fact]
    public void Next_ScopeIntrinsicMismatch_ThrowsNamingTheValidOnes()
    {
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLLexer.Tokenize("{ event:duration > 1s }"));
        Assert.Equal("unknown intrinsic 'event:duration' at line 1 col 3: event: offers name, timeSinceStart", ex.Message);
        Assert.Equal(2, ex.Offset);
    }

    [Fact]
    public void Next_GoStyleComments_AreSkipped()
    {
        Assert.Equal([TokenKind.OpenBrace, TokenKind.Attribute, TokenKind.CloseBrace], Kinds("{ /* c */ .a // line\n }"));
        Assert.Equal([TokenKind.Attribute, TokenKind.Slash, TokenKind.Integer], Kinds(".a / 2"));
        Assert.Equal("a/b", Single("span.a/b").Text);
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLLexer.Tokenize("{ .a } /* open"));
        Assert.Equal("unterminated comment at line 1 col 8: expected '*/'", ex.Message);
    }

    [Fact]
    public void Next_NotRegexVersusNotThenTilde_AreDifferentTokens()
    {
        Assert.Equal([TokenKind.NotRegex], Kinds("!~"));
        Assert.Equal([TokenKind.Not, TokenKind.Tilde], Kinds("! ~"));
    }

    [Fact]
    public void Next_StructuralOperators_LexLongestMatch()
    {
        Assert.Equal(
            [TokenKind.Greater, TokenKind.Descendant, TokenKind.Less, TokenKind.Ancestor, TokenKind.Tilde,
             TokenKind.NotChild, TokenKind.NotDescendant, TokenKind.NotParent, TokenKind.NotAncestor, TokenKind.NotRegex,
             TokenKind.UnionChild, TokenKind.UnionDescendant, TokenKind.UnionParent, TokenKind.UnionAncestor, TokenKind.UnionSibling,
             TokenKind.And, TokenKind.Or, TokenKind.Pipe, TokenKind.GreaterEqual, TokenKind.LessEqual, TokenKind.Regex, TokenKind.NotEqual],
            Kinds("> >> < << ~ !> !>> !< !<< !~ &> &>> &< &<< &~ && || | >= <= =~ !="));
    }

    [Fact]
    public void Next_Keywords_AreRecognised()
    {
        Assert.Equal(
            [TokenKind.True, TokenKind.False, TokenKind.Nil, TokenKind.StatusOk, TokenKind.StatusError, TokenKind.StatusUnset,
             TokenKind.KindUnspecified, TokenKind.KindInternal, TokenKind.KindServer, TokenKind.KindClient, TokenKind.KindProducer,
             TokenKind.KindConsumer, TokenKind.Count, TokenKind.Avg, TokenKind.Min, TokenKind.Max, TokenKind.Sum, TokenKind.By,
             TokenKind.Coalesce, TokenKind.Select, TokenKind.With, TokenKind.Rate, TokenKind.CountOverTime, TokenKind.SumOverTime,
             TokenKind.MinOverTime, TokenKind.MaxOverTime, TokenKind.AvgOverTime, TokenKind.QuantileOverTime,
             TokenKind.HistogramOverTime, TokenKind.Compare, TokenKind.TopK, TokenKind.BottomK],
            Kinds("true false nil ok error unset unspecified internal server client producer consumer count avg min max sum by " +
                  "coalesce select with rate count_over_time sum_over_time min_over_time max_over_time avg_over_time " +
                  "quantile_over_time histogram_over_time compare topk bottomk"));
    }

    [Theory]
    [InlineData("\"a\\\"b\"", "a\"b")]
    [InlineData("\"a\\\\b\"", "a\\b")]
    [InlineData("\"a\\nb\\tc\\rd\"", "a\nb\tc\rd")]
    [InlineData("\"\\u00e9\"", "é")]
    [InlineData("\"\\U0001F642\"", "🙂")]
    [InlineData("\"\\x41\\102\"", "AB")]
    [InlineData("`raw \\d+ \"q\"`", "raw \\d+ \"q\"")]
    [InlineData("\"ünïcødé 名前\"", "ünïcødé 名前")]
    public void Next_Strings_DecodeEscapes(string text, string value)
    {
        var t = Single(text);
        Assert.Equal(TokenKind.String, t.Kind);
        Assert.Equal(value, t.Text);
    }

    [Fact]
    public void Tokenize_Offsets_PointIntoText()
    {
        var tokens = TraceQLLexer.Tokenize("{ .a = \"x\" }");
        Assert.Equal([0, 2, 5, 7, 11, 12], tokens.Select(t => t.Offset).ToArray());
        Assert.Equal([1, 2, 1, 3, 1, 0], tokens.Select(t => t.Length).ToArray());
    }

    [Theory]
    [InlineData("{ .a = \"abc }", "unterminated string at line 1 col 8: expected a closing '\"'")]
    [InlineData("{ .a = `abc }", "unterminated raw string at line 1 col 8: expected a closing '`'")]
    [InlineData("{ .a & .b }", "unexpected '&' at line 1 col 6: did you mean '&&'?")]
    [InlineData("{ .a = 1 } #", "unexpected character '#' at line 1 col 12")]
    [InlineData("{ span. }", "expected an attribute name after 'span.' at line 1 col 8")]
    [InlineData("{ . }", "expected an attribute name after '.' at line 1 col 4")]
    [InlineData("{ .a = 99999999999999999999 }", "integer '99999999999999999999' is out of range at line 1 col 8: integers are 64-bit")]
    [InlineData("{\n  .a = \"x\n}", "unterminated string at line 2 col 8: expected a closing '\"'")]
    [InlineData("{ span.\"abc = 1 }", "unterminated quoted attribute name at line 1 col 8: expected a closing '\"'")]
    public void Tokenize_BadInput_ThrowsWithPosition(string text, string message)
    {
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLLexer.Tokenize(text));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Tokenize_BadEscape_PointsAtBackslash()
    {
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLLexer.Tokenize("{ .a = \"x\\qy\" }"));
        Assert.StartsWith("invalid escape sequence '\\q' in string at line 1 col 10", ex.Message, StringComparison.Ordinal);
        Assert.Equal(9, ex.Offset);
        Assert.Equal(1, ex.Line);
        Assert.Equal(10, ex.Column);
    }
}
