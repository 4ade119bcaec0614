using Rubato.Receivers.Jaeger;
using Rubato.Receivers.Tests.Support;
using Rubato.Receivers.Wire;
using Xunit;

namespace Rubato.Receivers.Tests;

public class JaegerThriftDecoderTests
{
    public static TheoryData<ThriftProtocol> Protocols => new() { ThriftProtocol.Binary, ThriftProtocol.Compact };

    private const long TraceLow = 0x0102030405060708;
    private const long TraceHigh = 0x1112131415161718;
    private const long T0 = 1_700_000_000_000_000;

    private static readonly JTag[] ProcessTags =
    [
        JTag.Str("hostname", "host-1"),
        JTag.Str("ip", "192.0.2.1"),
        JTag.Str("jaeger.version", "Node-3.18"),
    ];

    public static readonly JSpan[] RichSpans =
    [
        new(TraceLow, TraceHigh, 0xA1, 0, "GET /", T0, 1500,
            Tags:
            [
                JTag.Str("span.kind", "server"),
                JTag.Long("http.status_code", 404),
                JTag.Str("s", "v"),
                JTag.Dbl("d", 1.5),
                JTag.Bool("b", true),
                JTag.Long("l", -7),
                JTag.Bin("bin", [1, 2, 3]),
                JTag.Str("otel.scope.name", "my-lib"),
                JTag.Str("otel.scope.version", "1.2"),
            ],
            Logs:
            [
                new JLog(T0 + 500, JTag.Str("event", "cache miss"), JTag.Str("key", "k1")),
                new JLog(T0 + 600, JTag.Str("message", "hello")),
            ]),
        new(TraceLow, TraceHigh, 0xB2, 0, "call", T0 + 100, 200,
            Tags:
            [
                JTag.Bool("error", true),
                JTag.Str("otel.status_description", "boom"),
                JTag.Str("span.kind", "client"),
                JTag.Str("w3c.tracestate", "rojo=00f067aa0ba902b7"),
            ],
            References: [new JRef(0, TraceLow, TraceHigh, 0xA1), new JRef(1, 5, 0, 6)]),
        new(TraceLow, 0, 0xC3, 0xB2, "db", T0 + 150, 10,
            Tags: [JTag.Str("otel.status_code", "OK"), JTag.Bool("error", false), JTag.Str("http.status_code", "500")]),
        new(TraceLow, TraceHigh, 0xD4, 0, "upstream", T0 + 200, 20,
            Tags: [JTag.Str("span.kind", "client"), JTag.Long("http.status_code", 503), JTag.Str("http.status_message", "Service Unavailable")]),
    ];

    internal const string RichExpected = """
        resource
          attr service.name=string:frontend
          attr hostname=string:host-1
          attr ip=string:192.0.2.1
          attr jaeger.version=string:Node-3.18
          scope name=my-lib version=1.2
            span trace=11121314151617180102030405060708 id=00000000000000a1 parent=- name=GET / kind=Server start=1700000000000000000 end=1700000000001500000 status=Unset
              attr http.status_code=int:404
              attr s=string:v
              attr d=double:1.5
              attr b=bool:true
              attr l=int:-7
              attr bin=bytes:AQID
              event time=1700000000000500000 name=cache miss
                attr key=string:k1
              event time=1700000000000600000 name=
                attr message=string:hello
          scope name= version=
            span trace=11121314151617180102030405060708 id=00000000000000b2 parent=00000000000000a1 name=call kind=Client start=1700000000000100000 end=1700000000000300000 status=Error message=boom tracestate=rojo=00f067aa0ba902b7
              link trace=00000000000000000000000000000005 id=0000000000000006
                attr opentracing.ref_type=string:follows_from
            span trace=00000000000000000102030405060708 id=00000000000000c3 parent=00000000000000b2 name=db kind=Unspecified start=1700000000000150000 end=1700000000000160000 status=Ok
              attr error=bool:false
              attr http.status_code=string:500
            span trace=11121314151617180102030405060708 id=00000000000000d4 parent=- name=upstream kind=Client start=1700000000000200000 end=1700000000000220000 status=Error message=Service Unavailable
              attr http.status_code=int:503
              attr http.status_message=string:Service Unavailable

        """;

    [Theory]
    [MemberData(nameof(Protocols))]
    public void DecodeBatch_RichBatch_FollowsCollectorRules(ThriftProtocol protocol)
    {
        var bytes = JaegerThriftFixture.Batch(protocol, "frontend", ProcessTags, RichSpans);
        var trace = JaegerThriftDecoder.DecodeBatch(bytes, protocol);
        Assert.Equal(Normalize(RichExpected), TraceDump.Dump(trace));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void DecodeEmitBatch_AgentDatagram_SameAsBatch(ThriftProtocol protocol)
    {
        var bytes = JaegerThriftFixture.EmitBatch(protocol, "frontend", ProcessTags, RichSpans);
        var trace = JaegerThriftDecoder.DecodeEmitBatch(bytes, protocol);
        Assert.Equal(Normalize(RichExpected), TraceDump.Dump(trace));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void DecodeEmitBatch_EveryTruncation_ThrowsTraceFormatException(ThriftProtocol protocol)
    {
        var bytes = JaegerThriftFixture.EmitBatch(protocol, "frontend", ProcessTags, RichSpans);
        for (int len = 0; len < bytes.Length; len++)
        {
            var prefix = bytes[..len];
            var ex = Record.Exception(() => JaegerThriftDecoder.DecodeEmitBatch(prefix, protocol));
            Assert.True(ex is TraceFormatException, $"prefix of {len} bytes gave {ex?.GetType().Name ?? "no error"}");
        }
    }

    [Fact]
    public void DecodeEmitBatch_EmitZipkinBatch_Rejected()
    {
        var w = new ThriftWriter(ThriftProtocol.Compact).MessageBegin("emitZipkinBatch", 4, 1);
        w.StructBegin().StructEnd();
        var ex = Assert.Throws<TraceFormatException>(() => JaegerThriftDecoder.DecodeEmitBatch(w.ToArray(), ThriftProtocol.Compact));
        Assert.Contains("unsupported method 'emitZipkinBatch'", ex.Message);
    }

    [Fact]
    public void DecodeEmitBatch_NoBatchArgument_Rejected()
    {
        var w = new ThriftWriter(ThriftProtocol.Binary).MessageBegin("emitBatch", 4, 1);
        w.StructBegin().StructEnd();
        var ex = Assert.Throws<TraceFormatException>(() => JaegerThriftDecoder.DecodeEmitBatch(w.ToArray(), ThriftProtocol.Binary));
        Assert.Contains("no batch argument", ex.Message);
    }

    [Fact]
    public void DecodeBatch_NoProcess_Rejected()
    {
        var w = new ThriftWriter(ThriftProtocol.Binary);
        w.StructBegin();
        w.Field(2, TT.List).ListBegin(TT.Struct, 0);
        w.StructEnd();
        var ex = Assert.Throws<TraceFormatException>(() => JaegerThriftDecoder.DecodeBatch(w.ToArray(), ThriftProtocol.Binary));
        Assert.Contains("no process", ex.Message);
    }

    [Fact]
    public void DecodeBatch_UnknownTagType_KeptWithPlaceholder()
    {
        var bytes = JaegerThriftFixture.Batch(ThriftProtocol.Binary, "svc", [new JTag("weird", 9, "x")]);
        var trace = JaegerThriftDecoder.DecodeBatch(bytes, ThriftProtocol.Binary);
        Assert.Equal("weird=<Unknown Jaeger TagType 9>", trace.ResourceSpans[0].Resource.Attributes[1].ToString());
    }

    [Theory]
    [InlineData("server", 404, "Unset")]
    [InlineData("client", 404, "Error")]
    [InlineData("", 404, "Error")]
    [InlineData("server", 399, "Error")]
    [InlineData("server", 398, "Unset")]
    [InlineData("server", 500, "Error")]
    [InlineData("client", 200, "Unset")]
    public void DecodeBatch_HttpStatusCode_StatusByKind(string kind, long http, string expected)
    {
        JTag[] tags = kind.Length > 0 ? [JTag.Str("span.kind", kind), JTag.Long("http.status_code", http)] : [JTag.Long("http.status_code", http)];
        var bytes = JaegerThriftFixture.Batch(ThriftProtocol.Compact, "svc", null, new JSpan(1, 0, 2, 0, "op", T0, 1, Tags: tags));
        var span = JaegerThriftDecoder.DecodeBatch(bytes, ThriftProtocol.Compact).AllSpans().Single().Span;
        Assert.Equal(expected, span.StatusCode.ToString());
    }

    [Fact]
    public void DecodeBatch_FieldWithWrongType_NamesTheField()
    {
        var w = new ThriftWriter(ThriftProtocol.Binary);
        w.StructBegin();
        w.Field(1, TT.I32).I32(5);
        w.StructEnd();
        var ex = Assert.Throws<TraceFormatException>(() => JaegerThriftDecoder.DecodeBatch(w.ToArray(), ThriftProtocol.Binary));
        Assert.Contains("Batch.process has type i32, expected struct", ex.Message);
    }

    [Fact]
    public void DecodeBatch_ParentOnlyInChildOfReference_UsesReferenceAsParent()
    {
        var bytes = JaegerThriftFixture.Batch(ThriftProtocol.Compact, "svc", null,
            new JSpan(1, 0, 2, 0, "op", T0, 1, References: [new JRef(0, 1, 0, 9)]));
        var span = JaegerThriftDecoder.DecodeBatch(bytes, ThriftProtocol.Compact).AllSpans().Single().Span;
        Assert.Equal(9UL, span.ParentSpanId.Value);
        Assert.Empty(span.Links);
    }

    [Fact]
    public void DecodeBatch_ServiceNamePlaceholder_NotStored()
    {
        var bytes = JaegerThriftFixture.Batch(ThriftProtocol.Binary, "OTLPResourceNoServiceName", null, new JSpan(1, 0, 2, 0, "op", T0, 1));
        var trace = JaegerThriftDecoder.DecodeBatch(bytes, ThriftProtocol.Binary);
        Assert.Empty(trace.ResourceSpans[0].Resource.Attributes);
    }

    internal static string Normalize(string s) => s.Replace("\r\n", "\n", StringComparison.Ordinal);
}
