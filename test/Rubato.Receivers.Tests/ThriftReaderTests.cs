using Rubato.Receivers.Tests.Support;
using Rubato.Receivers.Wire;
using Xunit;

namespace Rubato.Receivers.Tests;

public class ThriftReaderTests
{
    public static TheoryData<ThriftProtocol> Protocols => new() { ThriftProtocol.Binary, ThriftProtocol.Compact };

    [Theory]
    [MemberData(nameof(Protocols))]
    public void ReadStruct_AllScalarTypes_RoundTrip(ThriftProtocol protocol)
    {
        var w = new ThriftWriter(protocol);
        w.StructBegin();
        w.Field(1, TT.I32).I32(-123456);
        w.Field(2, TT.I64).I64(long.MinValue);
        w.Field(3, TT.Double).Double(-2.5);
        w.BoolField(4, true);
        w.BoolField(5, false);
        w.Field(6, TT.String).WriteString("héllo");
        // A jump of more than 15 ids forces the compact long-form field header.
        w.Field(40, TT.I64).I64(long.MaxValue);
        w.Field(41, TT.List).ListBegin(TT.I32, 20);
        for (int i = 0; i < 20; i++)
        {
            w.I32(i - 10);
        }

        w.StructEnd();
        var r = new ThriftReader(w.ToArray(), protocol);
        r.ReadStructBegin();
        var seen = new List<string>();
        while (r.ReadFieldBegin(out byte t, out short id))
        {
            switch (id)
            {
                case 1: seen.Add($"i32:{r.ReadI32()}"); break;
                case 2: seen.Add($"i64:{r.ReadI64()}"); break;
                case 3: seen.Add($"dbl:{r.ReadDouble()}"); break;
                case 4: case 5: seen.Add($"bool:{r.ReadBool()}"); break;
                case 6: seen.Add($"str:{r.ReadString()}"); break;
                case 40: seen.Add($"i64:{r.ReadI64()}"); break;
                case 41:
                    r.ReadListBegin(out byte et, out int n);
                    Assert.Equal(TType.I32, et);
                    long sum = 0;
                    for (int i = 0; i < n; i++)
                    {
                        sum += r.ReadI32();
                    }

                    seen.Add($"list:{n}:{sum}");
                    break;
                default: Assert.Fail($"unexpected field {id} type {t}"); break;
            }
        }

        r.ReadStructEnd();
        Assert.Equal(
            ["i32:-123456", $"i64:{long.MinValue}", "dbl:-2.5", "bool:True", "bool:False", "str:héllo", $"i64:{long.MaxValue}", "list:20:-10"],
            seen);
        Assert.Equal(0, r.Remaining);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void Skip_NestedStructsListsAndMaps_SkipsExactly(ThriftProtocol protocol)
    {
        var w = new ThriftWriter(protocol);
        w.StructBegin();
        w.Field(1, TT.Struct).StructBegin();
        w.Field(1, TT.Map).MapBegin(TT.String, TT.I64, 2).WriteString("a").I64(1).WriteString("b").I64(2);
        w.Field(2, TT.Set).ListBegin(TT.String, 1).WriteString("x");
        w.BoolField(3, true);
        w.StructEnd();
        w.Field(2, TT.I32).I32(7);
        w.StructEnd();
        var r = new ThriftReader(w.ToArray(), protocol);
        r.ReadStructBegin();
        Assert.True(r.ReadFieldBegin(out byte t1, out short id1));
        Assert.Equal((TType.Struct, (short)1), (t1, id1));
        r.Skip(t1);
        Assert.True(r.ReadFieldBegin(out byte t2, out short id2));
        Assert.Equal((TType.I32, (short)2), (t2, id2));
        Assert.Equal(7, r.ReadI32());
        Assert.False(r.ReadFieldBegin(out _, out _));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void ReadString_LengthPastEnd_ThrowsWithOffset(ThriftProtocol protocol)
    {
        var w = new ThriftWriter(protocol);
        w.StructBegin();
        w.Field(1, TT.String).WriteString("abcdef");
        byte[] bytes = w.ToArray()[..^2];
        var ex = Assert.Throws<TraceFormatException>(() =>
        {
            var r = new ThriftReader(bytes, protocol);
            r.ReadStructBegin();
            r.ReadFieldBegin(out _, out _);
            r.ReadString();
        });
        Assert.Contains("length 6 is invalid", ex.Message);
        Assert.True(ex.Offset > 0);
    }

    [Fact]
    public void ReadListBegin_CountLargerThanInput_Throws()
    {
        byte[] bytes = [TT.I64, 0x7f, 0xff, 0xff, 0xff];
        var ex = Assert.Throws<TraceFormatException>(() =>
        {
            var r = new ThriftReader(bytes, ThriftProtocol.Binary);
            r.ReadListBegin(out _, out _);
        });
        Assert.Contains("collection size", ex.Message);
        Assert.Equal(0, ex.Offset);
    }

    [Fact]
    public void Skip_NestingDeeperThanLimit_Throws()
    {
        var w = new ThriftWriter(ThriftProtocol.Binary);
        for (int i = 0; i < 100; i++)
        {
            w.Field(1, TT.Struct);
        }

        var bytes = w.ToArray();
        var ex = Assert.Throws<TraceFormatException>(() =>
        {
            var r = new ThriftReader(bytes, ThriftProtocol.Binary);
            r.Skip(TType.Struct);
        });
        Assert.Contains("nesting deeper than", ex.Message);
    }

    [Fact]
    public void ReadFieldBegin_UnknownBinaryType_Throws()
    {
        byte[] bytes = [99, 0, 1];
        var ex = Assert.Throws<TraceFormatException>(() =>
        {
            var r = new ThriftReader(bytes, ThriftProtocol.Binary);
            r.ReadStructBegin();
            r.ReadFieldBegin(out _, out _);
        });
        Assert.Contains("unknown type 99", ex.Message);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void ReadMessageBegin_Envelope_ReturnsNameTypeAndSeq(ThriftProtocol protocol)
    {
        var bytes = new ThriftWriter(protocol).MessageBegin("emitBatch", 4, 77).ToArray();
        var r = new ThriftReader(bytes, protocol);
        var (name, type, seq) = r.ReadMessageBegin();
        Assert.Equal(("emitBatch", (byte)4, 77), (name, type, seq));
    }

    [Fact]
    public void ReadMessageBegin_CompactWrongProtocolId_Throws()
    {
        byte[] bytes = [0x81, 0x81, 0x00, 0x00];
        var ex = Assert.Throws<TraceFormatException>(() => new ThriftReader(bytes, ThriftProtocol.Compact).ReadMessageBegin());
        Assert.Contains("bad protocol id 0x81", ex.Message);
    }

    [Fact]
    public void ReadMessageBegin_BinaryBadVersion_Throws()
    {
        byte[] bytes = [0x80, 0x02, 0x00, 0x04, 0, 0, 0, 0];
        var ex = Assert.Throws<TraceFormatException>(() => new ThriftReader(bytes, ThriftProtocol.Binary).ReadMessageBegin());
        Assert.Contains("bad message version", ex.Message);
    }

    [Fact]
    public void ReadVarint_Truncated_Throws()
    {
        byte[] bytes = [0x15, 0x80, 0x80];
        var ex = Assert.Throws<TraceFormatException>(() =>
        {
            var r = new ThriftReader(bytes, ThriftProtocol.Compact);
            r.ReadStructBegin();
            r.ReadFieldBegin(out _, out _);
            r.ReadI32();
        });
        Assert.Contains("truncated varint", ex.Message);
        Assert.Equal(1, ex.Offset);
    }
}
