using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Receivers.Jaeger;

/// <summary>
/// Decodes <c>jaeger.api_v2.PostSpansRequest</c> (gRPC <c>CollectorService/PostSpans</c>) into the span model.
/// Field numbers are model.proto's: Batch{spans=1, process=2}; Span{trace_id=1, span_id=2, operation_name=3,
/// references=4, flags=5, start_time=6, duration=7, tags=8, logs=9, process=10, process_id=11, warnings=12};
/// Process{service_name=1, tags=2}; KeyValue{key=1, v_type=2, v_str=3, v_bool=4, v_int64=5, v_float64=6,
/// v_binary=7}; Log{timestamp=1, fields=2}; SpanRef{trace_id=1, span_id=2, ref_type=3}.
/// </summary>
/// <remarks>Pure and thread-safe. A span carrying its own process goes to a resource of its own, as in the collector.</remarks>
public static class JaegerProtoDecoder
{
    /// <exception cref="TraceFormatException">Malformed protobuf (wire errors are prefixed <c>protobuf: </c> and keep their offset) or invalid ids.</exception>
    public static Trace DecodePostSpansRequest(ReadOnlySpan<byte> body)
    {
        var trace = new Trace();
        var r = new ProtoReader(body);
        try
        {
            while (r.TryReadTag(out int field, out var wt))
            {
                if (field == 1)
                {
                    r.Expect(wt, WireType.LengthDelimited, "PostSpansRequest.batch");
                    var batch = r.ReadSubMessage();
                    DecodeBatch(ref batch, trace);
                }
                else
                {
                    r.SkipField(field, wt);
                }
            }
        }
        catch (OtlpFormatException e)
        {
            throw new TraceFormatException(e);
        }

        return trace;
    }

    private readonly record struct ProcessInfo(string? ServiceName, List<KeyValue>? Tags);

    private static void DecodeBatch(ref ProtoReader r, Trace trace)
    {
        ProcessInfo? batchProcess = null;
        var spans = new List<(JaegerTranslation.DecodedSpan Span, ProcessInfo? Process)>();
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Batch.spans");
                        var m = r.ReadSubMessage();
                        spans.Add(DecodeSpan(ref m));
                        break;
                    }

                case 2:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Batch.process");
                        var m = r.ReadSubMessage();
                        batchProcess = DecodeProcess(ref m);
                        break;
                    }

                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        // The collector falls back to the first span's process when the batch has none.
        if (batchProcess is null && spans.Count > 0)
        {
            batchProcess = spans[0].Process;
        }

        var main = new ResourceSpans
        {
            Resource = JaegerTranslation.BuildResource(batchProcess?.ServiceName, batchProcess?.Tags),
        };
        List<(ProcessInfo Process, ResourceSpans Rs)>? own = null;
        foreach (var (span, process) in spans)
        {
            if (process is null || process == batchProcess)
            {
                JaegerTranslation.AddToResource(main, span);
                continue;
            }

            own ??= [];
            int i = own.FindIndex(o => o.Process == process);
            if (i < 0)
            {
                own.Add((process.Value, new ResourceSpans { Resource = JaegerTranslation.BuildResource(process.Value.ServiceName, process.Value.Tags) }));
                i = own.Count - 1;
            }

            JaegerTranslation.AddToResource(own[i].Rs, span);
        }

        if (main.ScopeSpans.Count > 0 || own is null)
        {
            trace.ResourceSpans.Add(main);
        }

        if (own is not null)
        {
            foreach (var (_, rs) in own)
            {
                trace.ResourceSpans.Add(rs);
            }
        }
    }

    private static ProcessInfo DecodeProcess(ref ProtoReader r)
    {
        string? name = null;
        List<KeyValue>? tags = null;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    r.Expect(wt, WireType.LengthDelimited, "Process.service_name");
                    name = r.ReadString();
                    break;
                case 2:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Process.tags");
                        var m = r.ReadSubMessage();
                        (tags ??= []).Add(DecodeKeyValue(ref m));
                        break;
                    }

                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        return new ProcessInfo(name, tags);
    }

    private static (JaegerTranslation.DecodedSpan, ProcessInfo?) DecodeSpan(ref ProtoReader r)
    {
        int start = r.AbsolutePosition;
        var span = new Span();
        bool sawTrace = false, sawSpan = false;
        List<JaegerTranslation.Reference>? refs = null;
        ProcessInfo? process = null;
        ulong duration = 0;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    r.Expect(wt, WireType.LengthDelimited, "Span.trace_id");
                    span.TraceId = ReadTraceId(ref r, "Span.trace_id");
                    sawTrace = true;
                    break;
                case 2:
                    r.Expect(wt, WireType.LengthDelimited, "Span.span_id");
                    span.SpanId = ReadSpanId(ref r, "Span.span_id");
                    sawSpan = true;
                    break;
                case 3:
                    r.Expect(wt, WireType.LengthDelimited, "Span.operation_name");
                    span.Name = r.ReadString();
                    break;
                case 4:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.references");
                        var m = r.ReadSubMessage();
                        (refs ??= []).Add(DecodeRef(ref m));
                        break;
                    }

                case 5:
                    r.Expect(wt, WireType.Varint, "Span.flags");
                    r.ReadVarint();
                    break;
                case 6:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.start_time");
                        var m = r.ReadSubMessage();
                        span.StartTimeUnixNano = DecodeTimestamp(ref m);
                        break;
                    }

                case 7:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.duration");
                        var m = r.ReadSubMessage();
                        duration = DecodeTimestamp(ref m);
                        break;
                    }

                case 8:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.tags");
                        var m = r.ReadSubMessage();
                        span.Attributes.Add(DecodeKeyValue(ref m));
                        break;
                    }

                case 9:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.logs");
                        var m = r.ReadSubMessage();
                        DecodeLog(ref m, span);
                        break;
                    }

                case 10:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.process");
                        var m = r.ReadSubMessage();
                        process = DecodeProcess(ref m);
                        break;
                    }

                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        if (!sawTrace || !sawSpan)
        {
            throw new TraceFormatException("jaeger: span is missing trace_id or span_id", start);
        }

        span.EndTimeUnixNano = span.StartTimeUnixNano + duration;
        JaegerTranslation.ApplyReferences(span, default, refs);
        return (JaegerTranslation.FinishSpan(span), process);
    }

    private static JaegerTranslation.Reference DecodeRef(ref ProtoReader r)
    {
        TraceId traceId = default;
        SpanId spanId = default;
        ulong type = 0;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    r.Expect(wt, WireType.LengthDelimited, "SpanRef.trace_id");
                    traceId = ReadTraceId(ref r, "SpanRef.trace_id");
                    break;
                case 2:
                    r.Expect(wt, WireType.LengthDelimited, "SpanRef.span_id");
                    spanId = ReadSpanId(ref r, "SpanRef.span_id");
                    break;
                case 3:
                    r.Expect(wt, WireType.Varint, "SpanRef.ref_type");
                    type = r.ReadVarint();
                    break;
                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        return new JaegerTranslation.Reference(type == 0, traceId, spanId);
    }

    private static void DecodeLog(ref ProtoReader r, Span span)
    {
        ulong ts = 0;
        var fields = new List<KeyValue>();
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Log.timestamp");
                        var m = r.ReadSubMessage();
                        ts = DecodeTimestamp(ref m);
                        break;
                    }

                case 2:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Log.fields");
                        var m = r.ReadSubMessage();
                        fields.Add(DecodeKeyValue(ref m));
                        break;
                    }

                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        JaegerTranslation.AddLog(span, ts, fields);
    }

    private static KeyValue DecodeKeyValue(ref ProtoReader r)
    {
        string key = string.Empty;
        ulong vType = 0;
        string vStr = string.Empty;
        bool vBool = false;
        long vInt = 0;
        double vFloat = 0;
        byte[] vBinary = [];
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    r.Expect(wt, WireType.LengthDelimited, "KeyValue.key");
                    key = r.ReadString();
                    break;
                case 2:
                    r.Expect(wt, WireType.Varint, "KeyValue.v_type");
                    vType = r.ReadVarint();
                    break;
                case 3:
                    r.Expect(wt, WireType.LengthDelimited, "KeyValue.v_str");
                    vStr = r.ReadString();
                    break;
                case 4:
                    r.Expect(wt, WireType.Varint, "KeyValue.v_bool");
                    vBool = r.ReadVarint() != 0;
                    break;
                case 5:
                    r.Expect(wt, WireType.Varint, "KeyValue.v_int64");
                    vInt = (long)r.ReadVarint();
                    break;
                case 6:
                    r.Expect(wt, WireType.Fixed64, "KeyValue.v_float64");
                    vFloat = r.ReadDouble();
                    break;
                case 7:
                    r.Expect(wt, WireType.LengthDelimited, "KeyValue.v_binary");
                    vBinary = r.ReadLengthDelimited().ToArray();
                    break;
                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        // ValueType: STRING=0, BOOL=1, INT64=2, FLOAT64=3, BINARY=4.
        AnyValue value = vType switch
        {
            0 => AnyValue.String(vStr),
            1 => AnyValue.Bool(vBool),
            2 => AnyValue.Int(vInt),
            3 => AnyValue.Double(vFloat),
            4 => AnyValue.Bytes(vBinary),
            // Like the collector: keep the tag, with a placeholder value, rather than drop the batch.
            _ => AnyValue.String($"<Unknown Jaeger TagType {vType}>"),
        };
        return new KeyValue(key, value);
    }

    /// <summary>google.protobuf.Timestamp / Duration {seconds=1, nanos=2} to nanoseconds (negative clamps to 0).</summary>
    private static ulong DecodeTimestamp(ref ProtoReader r)
    {
        long seconds = 0, nanos = 0;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    r.Expect(wt, WireType.Varint, "seconds");
                    seconds = (long)r.ReadVarint();
                    break;
                case 2:
                    r.Expect(wt, WireType.Varint, "nanos");
                    nanos = (int)r.ReadVarint();
                    break;
                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        long total = (seconds * 1_000_000_000L) + nanos;
        return total <= 0 ? 0 : (ulong)total;
    }

    private static TraceId ReadTraceId(ref ProtoReader r, string field)
    {
        int at = r.AbsolutePosition;
        var bytes = r.ReadLengthDelimited();
        if (!TraceId.TryFromBytesPadded(bytes, out var id))
        {
            throw new TraceFormatException($"jaeger: {field} must be 1..16 bytes, got {bytes.Length}", at);
        }

        return id;
    }

    private static SpanId ReadSpanId(ref ProtoReader r, string field)
    {
        int at = r.AbsolutePosition;
        var bytes = r.ReadLengthDelimited();
        if (bytes.Length is 0 or > SpanId.Size)
        {
            throw new TraceFormatException($"jaeger: {field} must be 1..8 bytes, got {bytes.Length}", at);
        }

        ulong v = 0;
        foreach (byte b in bytes)
        {
            v = (v << 8) | b;
        }

        return new SpanId(v);
    }
}
