using System.Net;
using Rubato.Common.Otlp;

namespace Rubato.Receivers.Zipkin;

/// <summary>
/// Decodes Zipkin's protobuf v2 encoding (<c>zipkin.proto3.ListOfSpans</c>, <c>POST /api/v2/spans</c> with
/// <c>Content-Type: application/x-protobuf</c>) into the same <see cref="ZipkinSpan"/> model as JSON.
/// Field numbers: ListOfSpans{spans=1}; Span{trace_id=1, parent_id=2, id=3, kind=4, name=5, timestamp=6 fixed64,
/// duration=7, local_endpoint=8, remote_endpoint=9, annotations=10, tags=11 map, debug=12, shared=13};
/// Endpoint{service_name=1, ipv4=2 bytes, ipv6=3 bytes, port=4}; Annotation{timestamp=1 fixed64, value=2}.
/// </summary>
public static class ZipkinProtoDecoder
{
    /// <exception cref="TraceFormatException">Malformed protobuf (wire errors are prefixed <c>protobuf: </c> and keep their offset) or invalid ids.</exception>
    public static List<ZipkinSpan> DecodeListOfSpans(ReadOnlySpan<byte> body)
    {
        var spans = new List<ZipkinSpan>();
        var r = new ProtoReader(body);
        try
        {
            while (r.TryReadTag(out int field, out var wt))
            {
                if (field == 1)
                {
                    r.Expect(wt, WireType.LengthDelimited, "ListOfSpans.spans");
                    var m = r.ReadSubMessage();
                    spans.Add(DecodeSpan(ref m, spans.Count));
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

        return spans;
    }

    private static ZipkinSpan DecodeSpan(ref ProtoReader r, int index)
    {
        var s = new ZipkinSpan();
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1:
                    r.Expect(wt, WireType.LengthDelimited, "Span.trace_id");
                    s.TraceId = Id(ref r, index, "trace_id", 8, 16);
                    break;
                case 2:
                    r.Expect(wt, WireType.LengthDelimited, "Span.parent_id");
                    s.ParentId = Id(ref r, index, "parent_id", 8, 8);
                    break;
                case 3:
                    r.Expect(wt, WireType.LengthDelimited, "Span.id");
                    s.Id = Id(ref r, index, "id", 8, 8);
                    break;
                case 4:
                    r.Expect(wt, WireType.Varint, "Span.kind");
                    s.Kind = r.ReadVarint() switch
                    {
                        1 => "CLIENT",
                        2 => "SERVER",
                        3 => "PRODUCER",
                        4 => "CONSUMER",
                        _ => null,
                    };
                    break;
                case 5:
                    r.Expect(wt, WireType.LengthDelimited, "Span.name");
                    s.Name = r.ReadString();
                    break;
                case 6:
                    r.Expect(wt, WireType.Fixed64, "Span.timestamp");
                    s.Timestamp = (long)r.ReadFixed64();
                    break;
                case 7:
                    r.Expect(wt, WireType.Varint, "Span.duration");
                    s.Duration = (long)r.ReadVarint();
                    break;
                case 8:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.local_endpoint");
                        var m = r.ReadSubMessage();
                        s.LocalEndpoint = DecodeEndpoint(ref m);
                        break;
                    }

                case 9:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.remote_endpoint");
                        var m = r.ReadSubMessage();
                        s.RemoteEndpoint = DecodeEndpoint(ref m);
                        break;
                    }

                case 10:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.annotations");
                        var m = r.ReadSubMessage();
                        long ts = 0;
                        string value = string.Empty;
                        while (m.TryReadTag(out int af, out var awt))
                        {
                            if (af == 1 && awt == WireType.Fixed64)
                            {
                                ts = (long)m.ReadFixed64();
                            }
                            else if (af == 2 && awt == WireType.LengthDelimited)
                            {
                                value = m.ReadString();
                            }
                            else
                            {
                                m.SkipField(af, awt);
                            }
                        }

                        s.Annotations.Add(new ZipkinAnnotation(ts, value));
                        break;
                    }

                case 11:
                    {
                        r.Expect(wt, WireType.LengthDelimited, "Span.tags");
                        var m = r.ReadSubMessage();
                        string key = string.Empty, value = string.Empty;
                        while (m.TryReadTag(out int tf, out var twt))
                        {
                            if (tf == 1 && twt == WireType.LengthDelimited)
                            {
                                key = m.ReadString();
                            }
                            else if (tf == 2 && twt == WireType.LengthDelimited)
                            {
                                value = m.ReadString();
                            }
                            else
                            {
                                m.SkipField(tf, twt);
                            }
                        }

                        s.SetTag(key, value);
                        break;
                    }

                case 12:
                    r.Expect(wt, WireType.Varint, "Span.debug");
                    s.Debug = r.ReadVarint() != 0;
                    break;
                case 13:
                    r.Expect(wt, WireType.Varint, "Span.shared");
                    s.Shared = r.ReadVarint() != 0;
                    break;
                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        if (s.TraceId.Length == 0 || s.Id.Length == 0)
        {
            throw new TraceFormatException($"zipkin: span {index} has no {(s.TraceId.Length == 0 ? "trace_id" : "id")}");
        }

        return s;
    }

    private static ZipkinEndpoint DecodeEndpoint(ref ProtoReader r)
    {
        var e = new ZipkinEndpoint();
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1 when wt == WireType.LengthDelimited:
                    e.ServiceName = r.ReadString();
                    break;
                case 2 when wt == WireType.LengthDelimited:
                    {
                        var b = r.ReadLengthDelimited();
                        e.Ipv4 = b.Length == 4 ? new IPAddress(b).ToString() : null;
                        break;
                    }

                case 3 when wt == WireType.LengthDelimited:
                    {
                        var b = r.ReadLengthDelimited();
                        e.Ipv6 = b.Length == 16 ? new IPAddress(b).ToString() : null;
                        break;
                    }

                case 4 when wt == WireType.Varint:
                    e.Port = (int)r.ReadVarint();
                    break;
                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        return e;
    }

    private static string Id(ref ProtoReader r, int index, string field, int minLength, int maxLength)
    {
        int at = r.AbsolutePosition;
        var b = r.ReadLengthDelimited();
        if (b.Length != minLength && b.Length != maxLength)
        {
            throw new TraceFormatException($"zipkin: span {index} {field} must be {(minLength == maxLength ? $"{minLength}" : $"{minLength} or {maxLength}")} bytes, got {b.Length}", at);
        }

        return Convert.ToHexStringLower(b);
    }
}
