using Rubato.Receivers.Jaeger;
using Rubato.Receivers.Tests.Support;
using Xunit;

namespace Rubato.Receivers.Tests;

public class JaegerProtoDecoderTests
{
    private static readonly byte[] TraceId = Convert.FromHexString("0af7651916cd43dd8448eb211c80319c");

    private static void Kv(Pb p, string key, int type, Action<Pb> value)
    {
        p.String(1, key).Varint(2, (ulong)type);
        value(p);
    }

    /// <summary>A PostSpansRequest with two spans; the second carries its own process.</summary>
    internal static byte[] Request() => new Pb().Message(1, batch => batch
        .Message(1, span => span
            .Bytes(1, TraceId)
            .Bytes(2, Convert.FromHexString("00000000000000a1"))
            .String(3, "HTTP GET")
            .Message(4, r => r.Bytes(1, TraceId).Bytes(2, Convert.FromHexString("0000000000000001")).Varint(3, 0))
            .Message(4, r => r.Bytes(1, Convert.FromHexString("00000000000000000000000000000005")).Bytes(2, Convert.FromHexString("0000000000000006")).Varint(3, 1))
            .Varint(5, 1)
            .Message(6, t => t.Varint(1, 1_700_000_000).Varint(2, 250))
            .Message(7, d => d.Varint(2, 1_500_000))
            .Message(8, kv => Kv(kv, "span.kind", 0, v => v.String(3, "server")))
            .Message(8, kv => Kv(kv, "s", 0, v => v.String(3, "x")))
            .Message(8, kv => Kv(kv, "b", 1, v => v.Varint(4, 1)))
            .Message(8, kv => Kv(kv, "i", 2, v => v.Varint(5, unchecked((ulong)-42L))))
            .Message(8, kv => Kv(kv, "f", 3, v => v.Double(6, 0.25)))
            .Message(8, kv => Kv(kv, "bin", 4, v => v.Bytes(7, [0xff])))
            .Message(8, kv => Kv(kv, "otel.status_code", 0, v => v.String(3, "ERROR")))
            .Message(8, kv => Kv(kv, "otel.status_description", 0, v => v.String(3, "bad")))
            .Message(9, log => log
                .Message(1, t => t.Varint(1, 1_700_000_000).Varint(2, 500))
                .Message(2, kv => Kv(kv, "event", 0, v => v.String(3, "retry")))
                .Message(2, kv => Kv(kv, "attempt", 2, v => v.Varint(5, 2)))))
        .Message(1, span => span
            .Bytes(1, TraceId)
            .Bytes(2, Convert.FromHexString("00000000000000b2"))
            .String(3, "consume")
            .Message(6, t => t.Varint(1, 1_700_000_001))
            .Message(8, kv => Kv(kv, "span.kind", 0, v => v.String(3, "consumer")))
            .Message(10, p => p.String(1, "worker")))
        .Message(2, process => process
            .String(1, "api")
            .Message(2, kv => Kv(kv, "hostname", 0, v => v.String(3, "h1"))))).ToArray();

    internal const string Expected = """
        resource
          attr service.name=string:api
          attr hostname=string:h1
          scope name= version=
            span trace=0af7651916cd43dd8448eb211c80319c id=00000000000000a1 parent=0000000000000001 name=HTTP GET kind=Server start=1700000000000000250 end=1700000000001500250 status=Error message=bad
              attr s=string:x
              attr b=bool:true
              attr i=int:-42
              attr f=double:0.25
              attr bin=bytes:/w==
              event time=1700000000000000500 name=retry
                attr attempt=int:2
              link trace=00000000000000000000000000000005 id=0000000000000006
                attr opentracing.ref_type=string:follows_from
        resource
          attr service.name=string:worker
          scope name= version=
            span trace=0af7651916cd43dd8448eb211c80319c id=00000000000000b2 parent=- name=consume kind=Consumer start=1700000001000000000 end=1700000001000000000 status=Unset

        """;

    [Fact]
    public void DecodePostSpansRequest_Batch_FollowsCollectorRules()
    {
        var trace = JaegerProtoDecoder.DecodePostSpansRequest(Request());
        Assert.Equal(JaegerThriftDecoderTests.Normalize(Expected), TraceDump.Dump(trace));
    }

    [Fact]
    public void DecodePostSpansRequest_EveryTruncation_ThrowsTraceFormatException()
    {
        var bytes = Request();
        for (int len = 1; len < bytes.Length; len++)
        {
            var prefix = bytes[..len];
            var ex = Record.Exception(() => JaegerProtoDecoder.DecodePostSpansRequest(prefix));
            Assert.True(ex is TraceFormatException, $"prefix of {len} bytes gave {ex?.GetType().Name ?? "no error"}");
        }
    }

    [Fact]
    public void DecodePostSpansRequest_TraceIdTooLong_NamesTheField()
    {
        var bytes = new Pb().Message(1, b => b.Message(1, s => s.Bytes(1, new byte[17]).Bytes(2, new byte[8]))).ToArray();
        var ex = Assert.Throws<TraceFormatException>(() => JaegerProtoDecoder.DecodePostSpansRequest(bytes));
        Assert.Contains("Span.trace_id must be 1..16 bytes, got 17", ex.Message);
    }

    [Fact]
    public void DecodePostSpansRequest_WrongWireType_NamesTheField()
    {
        var bytes = new Pb().Message(1, b => b.Message(1, s => s.Varint(3, 5))).ToArray();
        var ex = Assert.Throws<TraceFormatException>(() => JaegerProtoDecoder.DecodePostSpansRequest(bytes));
        Assert.Contains("Span.operation_name", ex.Message);
    }

    [Fact]
    public void DecodePostSpansRequest_Empty_NoResources()
    {
        Assert.Empty(JaegerProtoDecoder.DecodePostSpansRequest([]).ResourceSpans);
    }
}
