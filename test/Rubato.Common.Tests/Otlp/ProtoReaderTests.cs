using Rubato.Common.Otlp;

namespace Rubato.Common.Tests.Otlp;

public class ProtoReaderTests
{
    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(127UL)]
    [InlineData(128UL)]
    [InlineData(300UL)]
    [InlineData(ulong.MaxValue)]
    public void ReadVarint_WrittenByWriter_RoundTrips(ulong value)
    {
        using var w = new ProtoWriter();
        w.WriteVarint(value);
        Assert.Equal(ProtoWriter.VarintSize(value), w.Length);
        var r = new ProtoReader(w.WrittenSpan);
        Assert.Equal(value, r.ReadVarint());
        Assert.True(r.IsAtEnd);
    }

    [Fact]
    public void ReadVarint_Truncated_NamesOffset()
    {
        byte[] data = [0x08, 0x96];
        var ex = Assert.Throws<OtlpFormatException>(() =>
        {
            var r = new ProtoReader(data, 15);
            r.ReadVarint();
            r.ReadVarint();
        });
        Assert.Equal("truncated varint at offset 16", ex.Message);
        Assert.Equal(16, ex.Offset);
    }

    [Fact]
    public void ReadVarint_ElevenBytes_Rejected()
    {
        byte[] data = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        var r0 = new ProtoReader(data);
        Assert.Equal(ulong.MaxValue, r0.ReadVarint());
        byte[] bad = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        var ex = Assert.Throws<OtlpFormatException>(() => new ProtoReader(bad).ReadVarint());
        Assert.Contains("overflows 64 bits", ex.Message);
    }

    [Fact]
    public void ReadLengthDelimited_LongerThanData_NamesDeclaredAndRemaining()
    {
        byte[] data = [0x0A, 0x05, 1, 2];
        var ex = Assert.Throws<OtlpFormatException>(() =>
        {
            var r = new ProtoReader(data);
            r.TryReadTag(out _, out _);
            r.ReadLengthDelimited();
        });
        Assert.Equal("length-delimited field at offset 1 declares 5 bytes but only 2 remain", ex.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x0E }, "invalid wire type 6 for field 1 at offset 0")]
    [InlineData(new byte[] { 0x00 }, "invalid field number 0 at offset 0")]
    [InlineData(new byte[] { 0x0C }, "unexpected end-group for field 1")]
    [InlineData(new byte[] { 0x0B, 0x08, 0x01 }, "truncated group for field 1")]
    [InlineData(new byte[] { 0x0B, 0x14 }, "end-group for field 2 does not match start-group 1")]
    [InlineData(new byte[] { 0x09, 1, 2, 3 }, "truncated fixed64 at offset 1: needs 8 bytes, 3 remain")]
    [InlineData(new byte[] { 0x0D, 1 }, "truncated fixed32 at offset 1: needs 4 bytes, 1 remain")]
    public void SkipField_Malformed_ThrowsNamingProblem(byte[] data, string expected)
    {
        var ex = Assert.Throws<OtlpFormatException>(() =>
        {
            var r = new ProtoReader(data);
            while (r.TryReadTag(out int fn, out var wt))
            {
                r.SkipField(fn, wt);
            }
        });
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void SkipField_EveryWireType_LandsOnNextField()
    {
        using var w = new ProtoWriter();
        w.WriteVarintField(1, 300);
        w.WriteFixed64Field(2, 7);
        w.WriteFixed32Field(3, 9);
        w.WriteBytesField(4, [1, 2, 3]);
        w.WriteTag(5, WireType.StartGroup);
        w.WriteTag(6, WireType.StartGroup);
        w.WriteVarintField(7, 1);
        w.WriteTag(6, WireType.EndGroup);
        w.WriteTag(5, WireType.EndGroup);
        w.WriteVarintField(99, 42);
        var r = new ProtoReader(w.WrittenSpan);
        int last = 0;
        while (r.TryReadTag(out int fn, out var wt))
        {
            if (fn == 99)
            {
                Assert.Equal(42UL, r.ReadVarint());
                last = fn;
                continue;
            }

            r.SkipField(fn, wt);
        }

        Assert.Equal(99, last);
    }

    [Fact]
    public void BeginEndMessage_LargeBody_WritesMultiByteLength()
    {
        using var w = new ProtoWriter(16);
        int t = w.BeginMessage(1);
        w.WriteBytesField(2, new byte[70_000]);
        w.EndMessage(t);
        var r = new ProtoReader(w.WrittenSpan);
        Assert.True(r.TryReadTag(out int fn, out _));
        Assert.Equal(1, fn);
        var sub = r.ReadSubMessage();
        Assert.True(r.IsAtEnd);
        Assert.True(sub.TryReadTag(out fn, out _));
        Assert.Equal(70_000, sub.ReadLengthDelimited().Length);
    }

    [Fact]
    public void ReadString_ValidUtf8_ReturnsText()
    {
        using var w = new ProtoWriter();
        w.WriteStringField(1, "héllo");
        var r = new ProtoReader(w.WrittenSpan);
        Assert.True(r.TryReadTag(out _, out _));
        Assert.Equal("héllo", r.ReadString());
        Assert.True(r.IsAtEnd);
    }

    [Fact]
    public void ReadString_InvalidUtf8_ThrowsWithFieldOffset()
    {
        byte[] data = [0x0A, 0x02, 0xC3, 0x28];
        var ex = Assert.Throws<OtlpFormatException>(() =>
        {
            var r = new ProtoReader(data, 10);
            r.TryReadTag(out _, out _);
            r.ReadString();
        });
        Assert.Equal("string field at offset 11 is not valid UTF-8", ex.Message);
        Assert.Equal(11, ex.Offset);
    }

    [Fact]
    public void Expect_NamedFieldWrongWireType_NamesFieldAndOffset()
    {
        byte[] data = [0x18, 0x05];
        var ex = Assert.Throws<OtlpFormatException>(() =>
        {
            var r = new ProtoReader(data, 4);
            r.TryReadTag(out _, out var wt);
            r.Expect(wt, WireType.LengthDelimited, "Span.name");
        });
        Assert.Equal("field Span.name has wire type Varint, expected LengthDelimited (offset 5)", ex.Message);
        Assert.Equal(5, ex.Offset);
    }
}
