using Rubato.Common.Ids;

namespace Rubato.Common.Tests.Otlp;

public class IdTests
{
    [Fact]
    public void TraceIdTryParseHex_ShortId_LeftPadsWithZeros()
    {
        Assert.True(TraceId.TryParseHex("abc", out var id));
        Assert.Equal("00000000000000000000000000000abc", id.ToHex());
        Assert.Equal(new TraceId(0, 0xabc), id);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0123456789abcdef0123456789abcdef0")]
    [InlineData("xyz")]
    public void TraceIdTryParseHex_Invalid_ReturnsFalse(string hex)
    {
        Assert.False(TraceId.TryParseHex(hex, out _));
    }

    [Fact]
    public void TraceIdTryParseHex_UpperCase_EqualsLowerCase()
    {
        Assert.True(TraceId.TryParseHex("0102030405060708090A0B0C0D0E0F10", out var a));
        Assert.True(TraceId.TryParseHex("0102030405060708090a0b0c0d0e0f10", out var b));
        Assert.Equal(a, b);
        Assert.Equal("0102030405060708090a0b0c0d0e0f10", a.ToHex());
    }

    [Fact]
    public void TraceIdCompareTo_OrdersLikeBytes()
    {
        var ids = new[] { new TraceId(0, ulong.MaxValue), new TraceId(1, 0), new TraceId(0x8000000000000000, 0), new TraceId(0, 1) };
        var byId = ids.OrderBy(x => x).Select(x => x.ToHex()).ToList();
        var byHex = ids.Select(x => x.ToHex()).OrderBy(x => x, StringComparer.Ordinal).ToList();
        Assert.Equal(byHex, byId);
        Assert.True(new TraceId(0, 5) < new TraceId(1, 0));
    }

    [Fact]
    public void TraceIdFromBytes_WrongLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => TraceId.FromBytes(new byte[15]));
        Assert.True(TraceId.TryFromBytesPadded([1, 2], out var id));
        Assert.Equal(new TraceId(0, 0x0102), id);
    }

    [Fact]
    public void SpanIdTryParseHex_RoundTripsAndOrders()
    {
        Assert.True(SpanId.TryParseHex("00000000000000ff", out var a));
        Assert.True(SpanId.TryParseHex("FF", out var b));
        Assert.Equal(a, b);
        Assert.Equal("00000000000000ff", a.ToHex());
        Assert.False(SpanId.TryParseHex("00000000000000fff", out _));
        Assert.True(new SpanId(1) < new SpanId(2));
        Assert.Equal(new SpanId(0x0102030405060708), SpanId.FromBytes(new SpanId(0x0102030405060708).ToByteArray()));
    }
}
