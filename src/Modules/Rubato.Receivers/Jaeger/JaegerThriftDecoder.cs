using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Receivers.Wire;

namespace Rubato.Receivers.Jaeger;

/// <summary>
/// Decodes Jaeger's Thrift IDL (<c>jaeger.thrift</c> <c>Batch</c>, and the agent's <c>Agent.emitBatch</c> call) into
/// the span model, applying the OpenTelemetry Collector's translation rules (<see cref="JaegerTranslation"/>).
/// </summary>
/// <remarks>Pure and thread-safe; called on the HTTP request thread or a UDP receive loop.</remarks>
public static class JaegerThriftDecoder
{
    private const byte MessageCall = 1;
    private const byte MessageOneway = 4;

    /// <summary>Decodes a <c>Batch</c> struct (the body of <c>POST /api/traces</c>).</summary>
    public static Trace DecodeBatch(ReadOnlySpan<byte> body, ThriftProtocol protocol)
    {
        var reader = new ThriftReader(body, protocol);
        var trace = new Trace();
        ReadBatch(ref reader, trace);
        return trace;
    }

    /// <summary>
    /// Decodes an agent datagram: a Thrift message <c>emitBatch</c> (call or oneway) whose argument 1 is a Batch.
    /// <c>emitZipkinBatch</c> and other methods are rejected with a clear error.
    /// </summary>
    public static Trace DecodeEmitBatch(ReadOnlySpan<byte> datagram, ThriftProtocol protocol)
    {
        var reader = new ThriftReader(datagram, protocol);
        var (name, type, _) = reader.ReadMessageBegin();
        if (type is not (MessageCall or MessageOneway))
        {
            throw new TraceFormatException($"jaeger agent: message type {type} is not a call");
        }

        if (name != "emitBatch")
        {
            throw new TraceFormatException($"jaeger agent: unsupported method '{name}', only emitBatch is accepted");
        }

        var trace = new Trace();
        bool sawBatch = false;
        reader.ReadStructBegin();
        while (reader.ReadFieldBegin(out byte ft, out short id))
        {
            if (id == 1 && ft == TType.Struct)
            {
                ReadBatch(ref reader, trace);
                sawBatch = true;
            }
            else
            {
                reader.Skip(ft);
            }
        }

        reader.ReadStructEnd();
        if (!sawBatch)
        {
            throw new TraceFormatException("jaeger agent: emitBatch has no batch argument");
        }

        return trace;
    }

    private static void ReadBatch(ref ThriftReader r, Trace trace)
    {
        string? serviceName = null;
        List<KeyValue>? processTags = null;
        var spans = new List<JaegerTranslation.DecodedSpan>();
        bool sawProcess = false;

        r.ReadStructBegin();
        while (r.ReadFieldBegin(out byte ft, out short id))
        {
            switch (id)
            {
                case 1:
                    r.Expect(ft, TType.Struct, "Batch.process");
                    ReadProcess(ref r, out serviceName, out processTags);
                    sawProcess = true;
                    break;
                case 2:
                    {
                        int n = ReadStructListBegin(ref r, ft, "Batch.spans");
                        for (int i = 0; i < n; i++)
                        {
                            spans.Add(ReadSpan(ref r));
                        }

                        break;
                    }

                default:
                    r.Skip(ft);
                    break;
            }
        }

        r.ReadStructEnd();
        if (!sawProcess)
        {
            throw new TraceFormatException("jaeger: Batch has no process (a required field)");
        }

        var rs = new ResourceSpans { Resource = JaegerTranslation.BuildResource(serviceName, processTags) };
        foreach (var s in spans)
        {
            JaegerTranslation.AddToResource(rs, s);
        }

        trace.ResourceSpans.Add(rs);
    }

    private static void ReadProcess(ref ThriftReader r, out string? serviceName, out List<KeyValue>? tags)
    {
        serviceName = null;
        tags = null;
        r.ReadStructBegin();
        while (r.ReadFieldBegin(out byte ft, out short id))
        {
            switch (id)
            {
                case 1:
                    r.Expect(ft, TType.String, "Process.serviceName");
                    serviceName = r.ReadString();
                    break;
                case 2:
                    tags = [];
                    ReadTags(ref r, ft, "Process.tags", tags);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        r.ReadStructEnd();
    }

    private static JaegerTranslation.DecodedSpan ReadSpan(ref ThriftReader r)
    {
        int start = r.Position;
        long traceLow = 0, traceHigh = 0, spanId = 0, parentId = 0, startTime = 0, duration = 0;
        bool sawTrace = false, sawSpan = false;
        var span = new Span();
        List<JaegerTranslation.Reference>? refs = null;

        r.ReadStructBegin();
        while (r.ReadFieldBegin(out byte ft, out short id))
        {
            switch (id)
            {
                case 1:
                    r.Expect(ft, TType.I64, "Span.traceIdLow");
                    traceLow = r.ReadI64();
                    sawTrace = true;
                    break;
                case 2:
                    r.Expect(ft, TType.I64, "Span.traceIdHigh");
                    traceHigh = r.ReadI64();
                    break;
                case 3:
                    r.Expect(ft, TType.I64, "Span.spanId");
                    spanId = r.ReadI64();
                    sawSpan = true;
                    break;
                case 4:
                    r.Expect(ft, TType.I64, "Span.parentSpanId");
                    parentId = r.ReadI64();
                    break;
                case 5:
                    r.Expect(ft, TType.String, "Span.operationName");
                    span.Name = r.ReadString();
                    break;
                case 6:
                    {
                        int n = ReadStructListBegin(ref r, ft, "Span.references");
                        refs = new List<JaegerTranslation.Reference>(n);
                        for (int i = 0; i < n; i++)
                        {
                            refs.Add(ReadRef(ref r));
                        }

                        break;
                    }

                case 7:
                    r.Expect(ft, TType.I32, "Span.flags");
                    span.Flags = (uint)r.ReadI32();
                    break;
                case 8:
                    r.Expect(ft, TType.I64, "Span.startTime");
                    startTime = r.ReadI64();
                    break;
                case 9:
                    r.Expect(ft, TType.I64, "Span.duration");
                    duration = r.ReadI64();
                    break;
                case 10:
                    ReadTags(ref r, ft, "Span.tags", span.Attributes);
                    break;
                case 11:
                    {
                        int n = ReadStructListBegin(ref r, ft, "Span.logs");
                        for (int i = 0; i < n; i++)
                        {
                            ReadLog(ref r, span);
                        }

                        break;
                    }

                default:
                    r.Skip(ft);
                    break;
            }
        }

        r.ReadStructEnd();
        if (!sawTrace || !sawSpan)
        {
            throw new TraceFormatException("jaeger: span is missing traceIdLow or spanId (required fields)", start);
        }

        span.TraceId = new TraceId((ulong)traceHigh, (ulong)traceLow);
        span.SpanId = new SpanId((ulong)spanId);
        span.StartTimeUnixNano = JaegerTranslation.MicrosToNanos(startTime);
        span.EndTimeUnixNano = span.StartTimeUnixNano + JaegerTranslation.MicrosToNanos(duration);
        // Jaeger's flags are its own (sampled/debug), not W3C trace flags: the collector does not carry them.
        span.Flags = 0;
        JaegerTranslation.ApplyReferences(span, new SpanId((ulong)parentId), refs);
        return JaegerTranslation.FinishSpan(span);
    }

    private static JaegerTranslation.Reference ReadRef(ref ThriftReader r)
    {
        int type = 0;
        long low = 0, high = 0, spanId = 0;
        r.ReadStructBegin();
        while (r.ReadFieldBegin(out byte ft, out short id))
        {
            switch (id)
            {
                case 1:
                    r.Expect(ft, TType.I32, "SpanRef.refType");
                    type = r.ReadI32();
                    break;
                case 2:
                    r.Expect(ft, TType.I64, "SpanRef.traceIdLow");
                    low = r.ReadI64();
                    break;
                case 3:
                    r.Expect(ft, TType.I64, "SpanRef.traceIdHigh");
                    high = r.ReadI64();
                    break;
                case 4:
                    r.Expect(ft, TType.I64, "SpanRef.spanId");
                    spanId = r.ReadI64();
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        r.ReadStructEnd();
        return new JaegerTranslation.Reference(type == 0, new TraceId((ulong)high, (ulong)low), new SpanId((ulong)spanId));
    }

    private static void ReadLog(ref ThriftReader r, Span span)
    {
        long ts = 0;
        var fields = new List<KeyValue>();
        r.ReadStructBegin();
        while (r.ReadFieldBegin(out byte ft, out short id))
        {
            switch (id)
            {
                case 1:
                    r.Expect(ft, TType.I64, "Log.timestamp");
                    ts = r.ReadI64();
                    break;
                case 2:
                    ReadTags(ref r, ft, "Log.fields", fields);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        r.ReadStructEnd();
        JaegerTranslation.AddLog(span, JaegerTranslation.MicrosToNanos(ts), fields);
    }

    /// <summary>Checks that field <paramref name="field"/> is a list of structs and returns its element count.</summary>
    private static int ReadStructListBegin(ref ThriftReader r, byte ft, string field)
    {
        r.Expect(ft, TType.List, field);
        r.ReadListBegin(out byte et, out int n);
        if (et != TType.Struct)
        {
            throw r.Error($"thrift: {field} holds {TType.Name(et)}, expected struct", r.Position);
        }

        return n;
    }

    private static void ReadTags(ref ThriftReader r, byte ft, string field, List<KeyValue> into)
    {
        int n = ReadStructListBegin(ref r, ft, field);
        for (int i = 0; i < n; i++)
        {
            into.Add(ReadTag(ref r));
        }
    }

    private static KeyValue ReadTag(ref ThriftReader r)
    {
        int start = r.Position;
        string? key = null;
        int vType = -1;
        string? vStr = null;
        double vDouble = 0;
        bool vBool = false;
        long vLong = 0;
        byte[]? vBinary = null;

        r.ReadStructBegin();
        while (r.ReadFieldBegin(out byte ft, out short id))
        {
            switch (id)
            {
                case 1:
                    r.Expect(ft, TType.String, "Tag.key");
                    key = r.ReadString();
                    break;
                case 2:
                    r.Expect(ft, TType.I32, "Tag.vType");
                    vType = r.ReadI32();
                    break;
                case 3:
                    r.Expect(ft, TType.String, "Tag.vStr");
                    vStr = r.ReadString();
                    break;
                case 4:
                    r.Expect(ft, TType.Double, "Tag.vDouble");
                    vDouble = r.ReadDouble();
                    break;
                case 5:
                    r.Expect(ft, TType.Bool, "Tag.vBool");
                    vBool = r.ReadBool();
                    break;
                case 6:
                    r.Expect(ft, TType.I64, "Tag.vLong");
                    vLong = r.ReadI64();
                    break;
                case 7:
                    r.Expect(ft, TType.String, "Tag.vBinary");
                    vBinary = r.ReadBinary().ToArray();
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        r.ReadStructEnd();
        if (key is null)
        {
            throw new TraceFormatException("jaeger: tag has no key", start);
        }

        // TagType: STRING=0, DOUBLE=1, BOOL=2, LONG=3, BINARY=4.
        AnyValue value = vType switch
        {
            0 => AnyValue.String(vStr ?? string.Empty),
            1 => AnyValue.Double(vDouble),
            2 => AnyValue.Bool(vBool),
            3 => AnyValue.Int(vLong),
            4 => AnyValue.Bytes(vBinary ?? []),
            // Like the collector: keep the tag, with a placeholder value, rather than drop the batch.
            _ => AnyValue.String($"<Unknown Jaeger TagType {vType}>"),
        };
        return new KeyValue(key, value);
    }
}
