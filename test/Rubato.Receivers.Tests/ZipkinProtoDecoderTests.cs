using Rubato.Receivers.Tests.Support;
using Rubato.Receivers.Zipkin;
using Xunit;

namespace Rubato.Receivers.Tests;

public class ZipkinProtoDecoderTests
{
    /// <summary>The first span of Corpus/zipkin/basic-v2.json, in zipkin.proto3 encoding.</summary>
    internal static byte[] ListOfSpans() => new Pb().Message(1, s => s
        .Bytes(1, Convert.FromHexString("463ac35c9f6413ad"))
        .Bytes(2, Convert.FromHexString("463ac35c9f6413ad"))
        .Bytes(3, Convert.FromHexString("a2fb4a1d1a96d312"))
        .Varint(4, 1)
        .String(5, "get /api")
        .Fixed64(6, 1556604172355737)
        .Varint(7, 1431)
        .Message(8, e => e.String(1, "frontend").Bytes(2, [192, 0, 2, 10]).Varint(4, 8080))
        .Message(9, e => e.String(1, "backend").Bytes(2, [192, 0, 2, 20]).Varint(4, 9000))
        .Message(10, a => a.Fixed64(1, 1556604172355800).String(2, "wire send"))
        .Message(11, t => t.String(1, "http.method").String(2, "GET"))
        .Message(11, t => t.String(1, "http.path").String(2, "/api"))
        .Message(11, t => t.String(1, "http.status_code").String(2, "200"))).ToArray();

    [Fact]
    public void DecodeListOfSpans_SameSpanAsJson_SameTranslation()
    {
        var fromProto = TraceDump.Dump(ZipkinTranslator.ToTrace(ZipkinProtoDecoder.DecodeListOfSpans(ListOfSpans())));
        var json = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Corpus", "zipkin", "basic-v2.json"));
        var first = ZipkinJsonDecoder.DecodeV2(json).Take(1).ToList();
        first[0].TraceId = "0000000000000000" + first[0].TraceId;
        Assert.Equal(TraceDump.Dump(ZipkinTranslator.ToTrace(first)), fromProto);
    }

    [Fact]
    public void DecodeListOfSpans_BadIdLength_NamesField()
    {
        var bytes = new Pb().Message(1, s => s.Bytes(1, new byte[8]).Bytes(3, new byte[5])).ToArray();
        var ex = Assert.Throws<TraceFormatException>(() => ZipkinProtoDecoder.DecodeListOfSpans(bytes));
        Assert.Contains("span 0 id must be 8 bytes, got 5", ex.Message);
    }

    [Fact]
    public void DecodeListOfSpans_EveryTruncation_ThrowsTraceFormatException()
    {
        var bytes = ListOfSpans();
        for (int len = 1; len < bytes.Length; len++)
        {
            var prefix = bytes[..len];
            var ex = Record.Exception(() => ZipkinProtoDecoder.DecodeListOfSpans(prefix));
            Assert.True(ex is TraceFormatException, $"prefix of {len} bytes gave {ex?.GetType().Name ?? "no error"}");
        }
    }
}
