using System.Buffers;
using System.Text;
using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Common.Tests.Otlp;

public class OtlpJsonTests
{
    private static string Write(Action<Utf8JsonWriter> write)
    {
        var abw = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(abw))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(abw.WrittenSpan);
    }

    private static Trace OneSpan()
    {
        var t = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("api")));
        var ss = new ScopeSpans();
        ss.Scope.Name = "lib";
        var span = new Span
        {
            TraceId = new TraceId(0x0102030405060708, 0x090a0b0c0d0e0f10),
            SpanId = new SpanId(0x1112131415161718),
            Name = "GET /",
            Kind = SpanKind.Server,
            StartTimeUnixNano = 1_700_000_000_000_000_001,
            EndTimeUnixNano = 1_700_000_000_000_000_002,
        };
        span.Attributes.Add(new KeyValue("n", AnyValue.Int(42)));
        ss.Spans.Add(span);
        rs.ScopeSpans.Add(ss);
        t.ResourceSpans.Add(rs);
        return t;
    }

    [Fact]
    public void WriteTempoTraceV1_Span_UsesBatchesBase64IdsEnumNamesAndStringInt64s()
    {
        string json = Write(w => OtlpJson.WriteTempoTraceV1(OneSpan(), w));
        Assert.Equal(
            "{\"batches\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}}]},"
            + "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":[{\"traceId\":\"AQIDBAUGBwgJCgsMDQ4PEA==\",\"spanId\":\"ERITFBUWFxg=\","
            + "\"name\":\"GET /\",\"kind\":\"SPAN_KIND_SERVER\",\"startTimeUnixNano\":\"1700000000000000001\",\"endTimeUnixNano\":\"1700000000000000002\","
            + "\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":\"42\"}}],\"status\":{}}]}]}]}",
            json);
    }

    [Fact]
    public void WriteTempoTraceV2_Span_UsesResourceSpansKey()
    {
        string json = Write(w => OtlpJson.WriteTempoTraceV2(OneSpan(), w));
        Assert.StartsWith("{\"resourceSpans\":[{\"resource\":", json);
        Assert.Contains("\"traceId\":\"AQIDBAUGBwgJCgsMDQ4PEA==\"", json);
    }

    [Fact]
    public void WriteTempoTraceByIdV2Response_Partial_AddsStatusAndMessage()
    {
        string json = Write(w => OtlpJson.WriteTempoTraceByIdV2Response(new Trace(), w, "too big", 10));
        Assert.Equal("{\"trace\":{\"resourceSpans\":[]},\"metrics\":{\"inspectedBytes\":\"10\"},\"status\":\"PARTIAL\",\"message\":\"too big\"}", json);
    }

    [Fact]
    public void WriteTempoTraceV1_ErrorStatus_PrintsStatusCodeName()
    {
        var t = OneSpan();
        t.ResourceSpans[0].ScopeSpans[0].Spans[0].StatusCode = StatusCode.Error;
        t.ResourceSpans[0].ScopeSpans[0].Spans[0].StatusMessage = "boom";
        string json = Write(w => OtlpJson.WriteTempoTraceV1(t, w));
        Assert.Contains("\"status\":{\"message\":\"boom\",\"code\":\"STATUS_CODE_ERROR\"}", json);
    }

    [Fact]
    public void WriteExportRequest_Span_UsesHexIdsAndIntegerEnums()
    {
        string json = Write(w => OtlpJson.WriteExportRequest(OneSpan(), w));
        Assert.Contains("\"traceId\":\"0102030405060708090a0b0c0d0e0f10\"", json);
        Assert.Contains("\"spanId\":\"1112131415161718\"", json);
        Assert.Contains("\"kind\":2", json);
        Assert.DoesNotContain("status", json);
    }

    [Fact]
    public void WriteExportResponse_AllAccepted_IsEmptyObject()
    {
        Assert.Equal("{}", Write(w => OtlpJson.WriteExportResponse(w, 0, null)));
    }

    [Fact]
    public void WriteExportResponse_Rejected_HasPartialSuccess()
    {
        Assert.Equal(
            "{\"partialSuccess\":{\"rejectedSpans\":\"5\",\"errorMessage\":\"RATE_LIMITED\"}}",
            Write(w => OtlpJson.WriteExportResponse(w, 5, "RATE_LIMITED")));
    }

    [Fact]
    public void DecodeExportRequest_SnakeCaseNamesEnumsAndNumbers_Decodes()
    {
        const string json = """
        {"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"svc"}}],"dropped_attributes_count":"2"},
          "scope_spans":[{"scope":{"name":"s","version":"1"},"spans":[{
            "trace_id":"0102030405060708090A0B0C0D0E0F10","span_id":"1112131415161718","parent_span_id":"",
            "name":"op","kind":"SPAN_KIND_CLIENT","start_time_unix_nano":1700000000000000000,"end_time_unix_nano":"1700000000000000005",
            "attributes":[{"key":"i","value":{"int_value":"-7"}},{"key":"d","value":{"double_value":"NaN"}},
                          {"key":"b","value":{"bool_value":true}},{"key":"y","value":{"bytes_value":"AQI="}},
                          {"key":"a","value":{"array_value":{"values":[{"intValue":1},{"stringValue":"x"}]}}},
                          {"key":"k","value":{"kvlist_value":{"values":[{"key":"z","value":{}}]}}}],
            "status":{"code":"STATUS_CODE_ERROR","message":"bad"},"unknownField":{"nested":[1,2,3]}}]}]}]}
        """;
        var t = OtlpJson.DecodeExportRequest(Encoding.UTF8.GetBytes(json));
        var rs = Assert.Single(t.ResourceSpans);
        Assert.Equal("svc", rs.Resource.ServiceName());
        Assert.Equal(2u, rs.Resource.DroppedAttributesCount);
        var span = Assert.Single(Assert.Single(rs.ScopeSpans).Spans);
        Assert.Equal("0102030405060708090a0b0c0d0e0f10", span.TraceId.ToHex());
        Assert.Equal(new SpanId(0x1112131415161718), span.SpanId);
        Assert.True(span.ParentSpanId.IsEmpty);
        Assert.Equal(SpanKind.Client, span.Kind);
        Assert.Equal(1700000000000000000UL, span.StartTimeUnixNano);
        Assert.Equal(1700000000000000005UL, span.EndTimeUnixNano);
        Assert.Equal(StatusCode.Error, span.StatusCode);
        Assert.Equal("bad", span.StatusMessage);
        Assert.Equal(AnyValue.Int(-7), span.Attributes[0].Value);
        Assert.True(double.IsNaN(span.Attributes[1].Value.DoubleValue));
        Assert.True(span.Attributes[2].Value.BoolValue);
        Assert.Equal(new byte[] { 1, 2 }, span.Attributes[3].Value.BytesValue);
        Assert.Equal(AnyValue.Array([AnyValue.Int(1), AnyValue.String("x")]), span.Attributes[4].Value);
        Assert.Equal(AnyValue.KvList([new KeyValue("z", AnyValue.EmptyValue)]), span.Attributes[5].Value);
    }

    [Theory]
    [InlineData("{\"resourceSpans\":[", "invalid JSON")]
    [InlineData("[]", "request must be a JSON object")]
    [InlineData("", "empty JSON body")]
    [InlineData("{\"resourceSpans\":{}}", "\"resourceSpans\" must be an array")]
    [InlineData("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"xyz\"}]}]}]}", "invalid traceId \"xyz\": must be 32 hex characters")]
    [InlineData("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"0102\"}]}]}]}", "invalid spanId \"0102\": must be 16 hex characters")]
    [InlineData("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"SPAN_KIND_NOPE\"}]}]}]}", "\"kind\" has unknown value \"SPAN_KIND_NOPE\"")]
    [InlineData("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"-1\"}]}]}]}", "\"startTimeUnixNano\" must be an unsigned 64-bit integer")]
    [InlineData("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"!!\"}}]}]}]}]}", "\"bytesValue\" is not valid base64")]
    [InlineData("{} {}", "invalid JSON")]
    public void DecodeExportRequest_BadInput_ThrowsOtlpFormatExceptionNamingProblem(string json, string expected)
    {
        var ex = Assert.Throws<OtlpFormatException>(() => OtlpJson.DecodeExportRequest(Encoding.UTF8.GetBytes(json)));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void DecodeExportRequest_EveryTruncationOfValidJson_ThrowsOnlyOtlpFormatException()
    {
        string json = Write(w => OtlpJson.WriteExportRequest(TraceSamples.Random(3), w));
        byte[] b = Encoding.UTF8.GetBytes(json);
        for (int n = 0; n < b.Length; n++)
        {
            try
            {
                OtlpJson.DecodeExportRequest(b.AsSpan(0, n));
            }
            catch (OtlpFormatException)
            {
                continue;
            }

            Assert.Fail($"prefix of {n} bytes decoded without error");
        }
    }
}
