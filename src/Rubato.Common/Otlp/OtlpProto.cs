using System.Buffers;
using System.Text;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.Common.Otlp;

/// <summary>
/// Protobuf codec between OTLP trace bytes and the <see cref="Trace"/> model. Not the ingest hot path
/// (see <see cref="OtlpTraceSplitter"/>): used for query output, block building and the rare re-encode path.
/// Decoding accepts <c>ExportTraceServiceRequest</c>, <c>TracesData</c> and <c>tempopb.Trace</c> (all field 1);
/// unknown fields are skipped. Encoding omits proto3 default values except inside the AnyValue oneof.
/// </summary>
public static class OtlpProto
{
    /// <summary>AnyValue arrays/kvlists nested deeper than this are rejected (guards the recursive decoder).</summary>
    public const int MaxValueDepth = 64;

    public static Trace DecodeTrace(ReadOnlySpan<byte> data)
    {
        var trace = new Trace();
        var r = new ProtoReader(data);
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            if (fn == F.TracesData.ResourceSpans)
            {
                r.Expect(wt, WireType.LengthDelimited, fn, "TracesData");
                var sub = r.ReadSubMessage();
                trace.ResourceSpans.Add(DecodeResourceSpans(ref sub));
            }
            else
            {
                r.SkipField(fn, wt);
            }
        }

        return trace;
    }

    public static byte[] EncodeTrace(Trace trace)
    {
        using var w = new ProtoWriter(EstimateSize(trace));
        WriteTrace(w, trace);
        return w.ToArray();
    }

    public static void EncodeTrace(Trace trace, IBufferWriter<byte> output)
    {
        if (output is ProtoWriter pw)
        {
            WriteTrace(pw, trace);
            return;
        }

        using var w = new ProtoWriter(EstimateSize(trace));
        WriteTrace(w, trace);
        w.CopyTo(output);
    }

    /// <summary>
    /// An <c>ExportTraceServiceResponse</c>: empty when everything was accepted, otherwise with
    /// <c>partial_success{rejected_spans, error_message}</c>.
    /// </summary>
    public static byte[] EncodeExportResponse(long rejectedSpans, string? errorMessage)
    {
        if (rejectedSpans <= 0 && string.IsNullOrEmpty(errorMessage))
        {
            return [];
        }

        using var w = new ProtoWriter(64 + (errorMessage?.Length * 3 ?? 0));
        int t = w.BeginMessage(F.ExportTraceServiceResponse.PartialSuccess);
        if (rejectedSpans != 0)
        {
            w.WriteVarintField(F.ExportTracePartialSuccess.RejectedSpans, (ulong)rejectedSpans);
        }

        if (!string.IsNullOrEmpty(errorMessage))
        {
            w.WriteStringField(F.ExportTracePartialSuccess.ErrorMessage, errorMessage);
        }

        w.EndMessage(t);
        return w.ToArray();
    }

    private static int EstimateSize(Trace trace) => Math.Clamp(trace.SpanCount() * 256, 256, 1 << 24);

    private static void WriteTrace(ProtoWriter w, Trace trace)
    {
        foreach (var rs in trace.ResourceSpans)
        {
            int t = w.BeginMessage(F.TracesData.ResourceSpans);
            WriteResourceSpans(w, rs);
            w.EndMessage(t);
        }
    }

    // ---------------------------------------------------------------- decode

    internal static string ReadString(ref ProtoReader r) => Encoding.UTF8.GetString(r.ReadLengthDelimited());

    private static ResourceSpans DecodeResourceSpans(ref ProtoReader r)
    {
        var rs = new ResourceSpans();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.ResourceSpans.Resource:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ResourceSpans");
                        var sub = r.ReadSubMessage();
                        rs.Resource = DecodeResource(ref sub);
                        break;
                    }

                case F.ResourceSpans.ScopeSpans:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ResourceSpans");
                        var sub = r.ReadSubMessage();
                        rs.ScopeSpans.Add(DecodeScopeSpans(ref sub));
                        break;
                    }

                case F.ResourceSpans.SchemaUrl:
                    r.Expect(wt, WireType.LengthDelimited, fn, "ResourceSpans");
                    rs.SchemaUrl = ReadString(ref r);
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return rs;
    }

    internal static Resource DecodeResource(ref ProtoReader r)
    {
        var res = new Resource();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.Resource.Attributes:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Resource");
                    res.Attributes.Add(DecodeKeyValue(ref r, 0));
                    break;
                case F.Resource.DroppedAttributesCount:
                    r.Expect(wt, WireType.Varint, fn, "Resource");
                    res.DroppedAttributesCount = r.ReadVarint32();
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return res;
    }

    private static ScopeSpans DecodeScopeSpans(ref ProtoReader r)
    {
        var ss = new ScopeSpans();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.ScopeSpans.Scope:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ScopeSpans");
                        var sub = r.ReadSubMessage();
                        ss.Scope = DecodeScope(ref sub);
                        break;
                    }

                case F.ScopeSpans.Spans:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ScopeSpans");
                        var sub = r.ReadSubMessage();
                        ss.Spans.Add(DecodeSpan(ref sub));
                        break;
                    }

                case F.ScopeSpans.SchemaUrl:
                    r.Expect(wt, WireType.LengthDelimited, fn, "ScopeSpans");
                    ss.SchemaUrl = ReadString(ref r);
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return ss;
    }

    internal static InstrumentationScope DecodeScope(ref ProtoReader r)
    {
        var s = new InstrumentationScope();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.InstrumentationScope.Name:
                    r.Expect(wt, WireType.LengthDelimited, fn, "InstrumentationScope");
                    s.Name = ReadString(ref r);
                    break;
                case F.InstrumentationScope.Version:
                    r.Expect(wt, WireType.LengthDelimited, fn, "InstrumentationScope");
                    s.Version = ReadString(ref r);
                    break;
                case F.InstrumentationScope.Attributes:
                    r.Expect(wt, WireType.LengthDelimited, fn, "InstrumentationScope");
                    s.Attributes.Add(DecodeKeyValue(ref r, 0));
                    break;
                case F.InstrumentationScope.DroppedAttributesCount:
                    r.Expect(wt, WireType.Varint, fn, "InstrumentationScope");
                    s.DroppedAttributesCount = r.ReadVarint32();
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return s;
    }

    internal static Span DecodeSpan(ref ProtoReader r)
    {
        var s = new Span();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.Span.TraceId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    s.TraceId = ReadTraceId(ref r);
                    break;
                case F.Span.SpanId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    s.SpanId = ReadSpanId(ref r);
                    break;
                case F.Span.TraceState:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    s.TraceState = ReadString(ref r);
                    break;
                case F.Span.ParentSpanId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    s.ParentSpanId = ReadSpanId(ref r);
                    break;
                case F.Span.Name:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    s.Name = ReadString(ref r);
                    break;
                case F.Span.Kind:
                    r.Expect(wt, WireType.Varint, fn, "Span");
                    s.Kind = (SpanKind)(int)r.ReadVarint();
                    break;
                case F.Span.StartTimeUnixNano:
                    r.Expect(wt, WireType.Fixed64, fn, "Span");
                    s.StartTimeUnixNano = r.ReadFixed64();
                    break;
                case F.Span.EndTimeUnixNano:
                    r.Expect(wt, WireType.Fixed64, fn, "Span");
                    s.EndTimeUnixNano = r.ReadFixed64();
                    break;
                case F.Span.Attributes:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    s.Attributes.Add(DecodeKeyValue(ref r, 0));
                    break;
                case F.Span.DroppedAttributesCount:
                    r.Expect(wt, WireType.Varint, fn, "Span");
                    s.DroppedAttributesCount = r.ReadVarint32();
                    break;
                case F.Span.Events:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                        var sub = r.ReadSubMessage();
                        s.Events.Add(DecodeEvent(ref sub));
                        break;
                    }

                case F.Span.DroppedEventsCount:
                    r.Expect(wt, WireType.Varint, fn, "Span");
                    s.DroppedEventsCount = r.ReadVarint32();
                    break;
                case F.Span.Links:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                        var sub = r.ReadSubMessage();
                        s.Links.Add(DecodeLink(ref sub));
                        break;
                    }

                case F.Span.DroppedLinksCount:
                    r.Expect(wt, WireType.Varint, fn, "Span");
                    s.DroppedLinksCount = r.ReadVarint32();
                    break;
                case F.Span.Status:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                        var sub = r.ReadSubMessage();
                        while (sub.TryReadTag(out int sfn, out WireType swt))
                        {
                            if (sfn == F.Status.Message)
                            {
                                sub.Expect(swt, WireType.LengthDelimited, sfn, "Status");
                                s.StatusMessage = ReadString(ref sub);
                            }
                            else if (sfn == F.Status.Code)
                            {
                                sub.Expect(swt, WireType.Varint, sfn, "Status");
                                s.StatusCode = (StatusCode)(int)sub.ReadVarint();
                            }
                            else
                            {
                                sub.SkipField(sfn, swt);
                            }
                        }

                        break;
                    }

                case F.Span.Flags:
                    r.Expect(wt, WireType.Fixed32, fn, "Span");
                    s.Flags = r.ReadFixed32();
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return s;
    }

    private static SpanEvent DecodeEvent(ref ProtoReader r)
    {
        var e = new SpanEvent();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.Event.TimeUnixNano:
                    r.Expect(wt, WireType.Fixed64, fn, "Event");
                    e.TimeUnixNano = r.ReadFixed64();
                    break;
                case F.Event.Name:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Event");
                    e.Name = ReadString(ref r);
                    break;
                case F.Event.Attributes:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Event");
                    e.Attributes.Add(DecodeKeyValue(ref r, 0));
                    break;
                case F.Event.DroppedAttributesCount:
                    r.Expect(wt, WireType.Varint, fn, "Event");
                    e.DroppedAttributesCount = r.ReadVarint32();
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return e;
    }

    private static SpanLink DecodeLink(ref ProtoReader r)
    {
        var l = new SpanLink();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.Link.TraceId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Link");
                    l.TraceId = ReadTraceId(ref r);
                    break;
                case F.Link.SpanId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Link");
                    l.SpanId = ReadSpanId(ref r);
                    break;
                case F.Link.TraceState:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Link");
                    l.TraceState = ReadString(ref r);
                    break;
                case F.Link.Attributes:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Link");
                    l.Attributes.Add(DecodeKeyValue(ref r, 0));
                    break;
                case F.Link.DroppedAttributesCount:
                    r.Expect(wt, WireType.Varint, fn, "Link");
                    l.DroppedAttributesCount = r.ReadVarint32();
                    break;
                case F.Link.Flags:
                    r.Expect(wt, WireType.Fixed32, fn, "Link");
                    l.Flags = r.ReadFixed32();
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return l;
    }

    /// <summary>Reads a length-delimited KeyValue at the reader's position.</summary>
    private static KeyValue DecodeKeyValue(ref ProtoReader outer, int depth)
    {
        var r = outer.ReadSubMessage();
        string key = string.Empty;
        AnyValue value = AnyValue.EmptyValue;
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            if (fn == F.KeyValue.Key)
            {
                r.Expect(wt, WireType.LengthDelimited, fn, "KeyValue");
                key = ReadString(ref r);
            }
            else if (fn == F.KeyValue.Value)
            {
                r.Expect(wt, WireType.LengthDelimited, fn, "KeyValue");
                var sub = r.ReadSubMessage();
                value = DecodeAnyValue(ref sub, depth);
            }
            else
            {
                r.SkipField(fn, wt);
            }
        }

        return new KeyValue(key, value);
    }

    private static AnyValue DecodeAnyValue(ref ProtoReader r, int depth)
    {
        if (depth > MaxValueDepth)
        {
            throw new OtlpFormatException($"attribute values nested deeper than {MaxValueDepth} at offset {r.AbsolutePosition}", r.AbsolutePosition);
        }

        AnyValue value = AnyValue.EmptyValue;
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.AnyValue.StringValue:
                    r.Expect(wt, WireType.LengthDelimited, fn, "AnyValue");
                    value = AnyValue.String(ReadString(ref r));
                    break;
                case F.AnyValue.BoolValue:
                    r.Expect(wt, WireType.Varint, fn, "AnyValue");
                    value = AnyValue.Bool(r.ReadVarint() != 0);
                    break;
                case F.AnyValue.IntValue:
                    r.Expect(wt, WireType.Varint, fn, "AnyValue");
                    value = AnyValue.Int((long)r.ReadVarint());
                    break;
                case F.AnyValue.DoubleValue:
                    r.Expect(wt, WireType.Fixed64, fn, "AnyValue");
                    value = AnyValue.Double(r.ReadDouble());
                    break;
                case F.AnyValue.ArrayValue:
                case F.AnyValue.KvlistValue:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "AnyValue");
                        var sub = r.ReadSubMessage();
                        if (fn == F.AnyValue.ArrayValue)
                        {
                            var items = new List<AnyValue>();
                            while (sub.TryReadTag(out int afn, out WireType awt))
                            {
                                if (afn == F.ArrayValue.Values)
                                {
                                    sub.Expect(awt, WireType.LengthDelimited, afn, "ArrayValue");
                                    var item = sub.ReadSubMessage();
                                    items.Add(DecodeAnyValue(ref item, depth + 1));
                                }
                                else
                                {
                                    sub.SkipField(afn, awt);
                                }
                            }

                            value = AnyValue.Array(items);
                        }
                        else
                        {
                            var items = new List<KeyValue>();
                            while (sub.TryReadTag(out int kfn, out WireType kwt))
                            {
                                if (kfn == F.KeyValueList.Values)
                                {
                                    sub.Expect(kwt, WireType.LengthDelimited, kfn, "KeyValueList");
                                    items.Add(DecodeKeyValue(ref sub, depth + 1));
                                }
                                else
                                {
                                    sub.SkipField(kfn, kwt);
                                }
                            }

                            value = AnyValue.KvList(items);
                        }

                        break;
                    }

                case F.AnyValue.BytesValue:
                    r.Expect(wt, WireType.LengthDelimited, fn, "AnyValue");
                    value = AnyValue.Bytes(r.ReadLengthDelimited().ToArray());
                    break;
                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        return value;
    }

    /// <summary>Lenient id read for stored data: 0 bytes = empty, 1..16 left-padded, more is an error.</summary>
    private static TraceId ReadTraceId(ref ProtoReader r)
    {
        int at = r.AbsolutePosition;
        var b = r.ReadLengthDelimited();
        if (b.IsEmpty)
        {
            return default;
        }

        if (!TraceId.TryFromBytesPadded(b, out var id))
        {
            throw new OtlpFormatException($"trace id at offset {at} is {b.Length} bytes, longer than 16", at);
        }

        return id;
    }

    private static SpanId ReadSpanId(ref ProtoReader r)
    {
        int at = r.AbsolutePosition;
        var b = r.ReadLengthDelimited();
        if (b.IsEmpty)
        {
            return default;
        }

        if (b.Length > SpanId.Size)
        {
            throw new OtlpFormatException($"span id at offset {at} is {b.Length} bytes, longer than 8", at);
        }

        ulong v = 0;
        foreach (byte x in b)
        {
            v = (v << 8) | x;
        }

        return new SpanId(v);
    }

    // ---------------------------------------------------------------- encode

    private static void WriteResourceSpans(ProtoWriter w, ResourceSpans rs)
    {
        int t = w.BeginMessage(F.ResourceSpans.Resource);
        WriteResourceBody(w, rs.Resource);
        w.EndMessage(t);
        foreach (var ss in rs.ScopeSpans)
        {
            int st = w.BeginMessage(F.ResourceSpans.ScopeSpans);
            WriteScopeSpans(w, ss);
            w.EndMessage(st);
        }

        if (rs.SchemaUrl.Length > 0)
        {
            w.WriteStringField(F.ResourceSpans.SchemaUrl, rs.SchemaUrl);
        }
    }

    internal static void WriteResourceBody(ProtoWriter w, Resource res)
    {
        foreach (var kv in res.Attributes)
        {
            WriteKeyValue(w, F.Resource.Attributes, kv);
        }

        if (res.DroppedAttributesCount != 0)
        {
            w.WriteVarintField(F.Resource.DroppedAttributesCount, res.DroppedAttributesCount);
        }
    }

    private static void WriteScopeSpans(ProtoWriter w, ScopeSpans ss)
    {
        int t = w.BeginMessage(F.ScopeSpans.Scope);
        WriteScopeBody(w, ss.Scope);
        w.EndMessage(t);
        foreach (var s in ss.Spans)
        {
            int st = w.BeginMessage(F.ScopeSpans.Spans);
            WriteSpanBody(w, s);
            w.EndMessage(st);
        }

        if (ss.SchemaUrl.Length > 0)
        {
            w.WriteStringField(F.ScopeSpans.SchemaUrl, ss.SchemaUrl);
        }
    }

    internal static void WriteScopeBody(ProtoWriter w, InstrumentationScope scope)
    {
        if (scope.Name.Length > 0)
        {
            w.WriteStringField(F.InstrumentationScope.Name, scope.Name);
        }

        if (scope.Version.Length > 0)
        {
            w.WriteStringField(F.InstrumentationScope.Version, scope.Version);
        }

        foreach (var kv in scope.Attributes)
        {
            WriteKeyValue(w, F.InstrumentationScope.Attributes, kv);
        }

        if (scope.DroppedAttributesCount != 0)
        {
            w.WriteVarintField(F.InstrumentationScope.DroppedAttributesCount, scope.DroppedAttributesCount);
        }
    }

    internal static void WriteSpanBody(ProtoWriter w, Span s)
    {
        Span<byte> id = stackalloc byte[TraceId.Size];
        if (!s.TraceId.IsEmpty)
        {
            s.TraceId.WriteTo(id);
            w.WriteBytesField(F.Span.TraceId, id);
        }

        if (!s.SpanId.IsEmpty)
        {
            s.SpanId.WriteTo(id);
            w.WriteBytesField(F.Span.SpanId, id[..SpanId.Size]);
        }

        if (s.TraceState.Length > 0)
        {
            w.WriteStringField(F.Span.TraceState, s.TraceState);
        }

        if (!s.ParentSpanId.IsEmpty)
        {
            s.ParentSpanId.WriteTo(id);
            w.WriteBytesField(F.Span.ParentSpanId, id[..SpanId.Size]);
        }

        if (s.Name.Length > 0)
        {
            w.WriteStringField(F.Span.Name, s.Name);
        }

        if (s.Kind != 0)
        {
            w.WriteVarintField(F.Span.Kind, (ulong)(long)s.Kind);
        }

        if (s.StartTimeUnixNano != 0)
        {
            w.WriteFixed64Field(F.Span.StartTimeUnixNano, s.StartTimeUnixNano);
        }

        if (s.EndTimeUnixNano != 0)
        {
            w.WriteFixed64Field(F.Span.EndTimeUnixNano, s.EndTimeUnixNano);
        }

        foreach (var kv in s.Attributes)
        {
            WriteKeyValue(w, F.Span.Attributes, kv);
        }

        if (s.DroppedAttributesCount != 0)
        {
            w.WriteVarintField(F.Span.DroppedAttributesCount, s.DroppedAttributesCount);
        }

        foreach (var e in s.Events)
        {
            int t = w.BeginMessage(F.Span.Events);
            if (e.TimeUnixNano != 0)
            {
                w.WriteFixed64Field(F.Event.TimeUnixNano, e.TimeUnixNano);
            }

            if (e.Name.Length > 0)
            {
                w.WriteStringField(F.Event.Name, e.Name);
            }

            foreach (var kv in e.Attributes)
            {
                WriteKeyValue(w, F.Event.Attributes, kv);
            }

            if (e.DroppedAttributesCount != 0)
            {
                w.WriteVarintField(F.Event.DroppedAttributesCount, e.DroppedAttributesCount);
            }

            w.EndMessage(t);
        }

        if (s.DroppedEventsCount != 0)
        {
            w.WriteVarintField(F.Span.DroppedEventsCount, s.DroppedEventsCount);
        }

        foreach (var l in s.Links)
        {
            int t = w.BeginMessage(F.Span.Links);
            if (!l.TraceId.IsEmpty)
            {
                l.TraceId.WriteTo(id);
                w.WriteBytesField(F.Link.TraceId, id);
            }

            if (!l.SpanId.IsEmpty)
            {
                l.SpanId.WriteTo(id);
                w.WriteBytesField(F.Link.SpanId, id[..SpanId.Size]);
            }

            if (l.TraceState.Length > 0)
            {
                w.WriteStringField(F.Link.TraceState, l.TraceState);
            }

            foreach (var kv in l.Attributes)
            {
                WriteKeyValue(w, F.Link.Attributes, kv);
            }

            if (l.DroppedAttributesCount != 0)
            {
                w.WriteVarintField(F.Link.DroppedAttributesCount, l.DroppedAttributesCount);
            }

            if (l.Flags != 0)
            {
                w.WriteFixed32Field(F.Link.Flags, l.Flags);
            }

            w.EndMessage(t);
        }

        if (s.DroppedLinksCount != 0)
        {
            w.WriteVarintField(F.Span.DroppedLinksCount, s.DroppedLinksCount);
        }

        if (s.StatusCode != 0 || s.StatusMessage.Length > 0)
        {
            int t = w.BeginMessage(F.Span.Status);
            if (s.StatusMessage.Length > 0)
            {
                w.WriteStringField(F.Status.Message, s.StatusMessage);
            }

            if (s.StatusCode != 0)
            {
                w.WriteVarintField(F.Status.Code, (ulong)(long)s.StatusCode);
            }

            w.EndMessage(t);
        }

        if (s.Flags != 0)
        {
            w.WriteFixed32Field(F.Span.Flags, s.Flags);
        }
    }

    internal static void WriteKeyValue(ProtoWriter w, int fieldNumber, KeyValue kv)
    {
        int t = w.BeginMessage(fieldNumber);
        if (kv.Key.Length > 0)
        {
            w.WriteStringField(F.KeyValue.Key, kv.Key);
        }

        int vt = w.BeginMessage(F.KeyValue.Value);
        WriteAnyValueBody(w, kv.Value);
        w.EndMessage(vt);
        w.EndMessage(t);
    }

    private static void WriteAnyValueBody(ProtoWriter w, AnyValue v)
    {
        switch (v.Kind)
        {
            case AnyValueKind.String:
                w.WriteStringField(F.AnyValue.StringValue, v.StringValue!);
                break;
            case AnyValueKind.Bool:
                w.WriteVarintField(F.AnyValue.BoolValue, v.BoolValue ? 1UL : 0UL);
                break;
            case AnyValueKind.Int:
                w.WriteVarintField(F.AnyValue.IntValue, (ulong)v.IntValue);
                break;
            case AnyValueKind.Double:
                w.WriteFixed64Field(F.AnyValue.DoubleValue, BitConverter.DoubleToUInt64Bits(v.DoubleValue));
                break;
            case AnyValueKind.Array:
                {
                    int t = w.BeginMessage(F.AnyValue.ArrayValue);
                    foreach (var item in v.ArrayValue!)
                    {
                        int it = w.BeginMessage(F.ArrayValue.Values);
                        WriteAnyValueBody(w, item);
                        w.EndMessage(it);
                    }

                    w.EndMessage(t);
                    break;
                }

            case AnyValueKind.KvList:
                {
                    int t = w.BeginMessage(F.AnyValue.KvlistValue);
                    foreach (var kv in v.KvListValue!)
                    {
                        WriteKeyValue(w, F.KeyValueList.Values, kv);
                    }

                    w.EndMessage(t);
                    break;
                }

            case AnyValueKind.Bytes:
                w.WriteBytesField(F.AnyValue.BytesValue, v.BytesValue!);
                break;
            default:
                break;
        }
    }
}
