using Rubato.Common.Configuration;

namespace Rubato.Common.Tests.Configuration;

public class GoDurationTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("-0", 0L)]
    [InlineData("300ms", 300 * TimeSpan.TicksPerMillisecond)]
    [InlineData("1.5h", 90 * TimeSpan.TicksPerMinute)]
    [InlineData("2h45m", 165 * TimeSpan.TicksPerMinute)]
    [InlineData("0.3s", 300 * TimeSpan.TicksPerMillisecond)]
    [InlineData("1us", 10L)]
    [InlineData("1µs", 10L)]
    [InlineData("1μs", 10L)]
    [InlineData("250ns", 2L)]
    [InlineData("-90s", -90 * TimeSpan.TicksPerSecond)]
    [InlineData("2w", 14 * TimeSpan.TicksPerDay)]
    [InlineData("1y", 365 * TimeSpan.TicksPerDay)]
    public void TryParse_GoAndPrometheusSyntax_ExactTicks(string text, long ticks)
    {
        Assert.True(GoDuration.TryParse(text, out var value, out string? error), error);
        Assert.Null(error);
        Assert.Equal(ticks, value.Ticks);
    }

    [Theory]
    [InlineData("", "empty duration")]
    [InlineData("-", "expected a number after the sign")]
    [InlineData("10", "missing unit")]
    [InlineData("5x", "unknown unit \"x\"")]
    [InlineData("s", "expected a number at position 0")]
    [InlineData("99999999999999999999999999y", "too large")]
    [InlineData("300000y", "too large")]
    public void TryParse_BadInput_ErrorNamesProblem(string text, string expected)
    {
        Assert.False(GoDuration.TryParse(text, out _, out string? error));
        Assert.Contains(expected, error);
        Assert.False(GoDuration.TryParse(text, out _));
    }

    [Fact]
    public void Parse_BadInput_ThrowsFormatExceptionWithError()
    {
        var ex = Assert.Throws<FormatException>(() => GoDuration.Parse("5 minutes"));
        Assert.Contains("unknown unit \" minutes\"", ex.Message);
    }

    [Theory]
    [InlineData(0L, "0s", "0s")]
    [InlineData(90 * TimeSpan.TicksPerMinute, "1h30m0s", "1h30m")]
    [InlineData(336 * TimeSpan.TicksPerHour, "336h0m0s", "336h")]
    [InlineData(250 * TimeSpan.TicksPerMillisecond, "250ms", "250ms")]
    [InlineData(-10 * TimeSpan.TicksPerSecond, "-10s", "-10s")]
    public void Format_GoAndCompact_ExpectedText(long ticks, string go, string compact)
    {
        var value = TimeSpan.FromTicks(ticks);
        Assert.Equal(go, GoDuration.Format(value));
        Assert.Equal(compact, GoDuration.FormatCompact(value));
        Assert.Equal(value, GoDuration.Parse(GoDuration.FormatCompact(value)));
    }
}
