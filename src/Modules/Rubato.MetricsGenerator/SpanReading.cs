using System.Buffers.Binary;
using Rubato.Common.Ids;
using Rubato.Common.Otlp;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.MetricsGenerator;

/// <summary>The fields of one OTLP span the processors read, as slices of the payload (no copies, no strings).</summary>
internal ref struct SpanFields
{
    /// <summary>The whole <c>Span</c> message (its length is what Tempo's <c>span.Size()</c> reports).</summary>
    public ReadOnlySpan<byte> Message;
    public TraceId TraceId;
    public ulong SpanId;
    public ulong ParentSpanId;
    public bool HasParent;
    public ReadOnlySpan<byte> Name;
    public int Kind;
    public ulong StartUnixNano;
    public ulong EndUnixNano;
    public int StatusCode;
    public ReadOnlySpan<byte> StatusMessage;

    public readonly double DurationSeconds => EndUnixNano > StartUnixNano ? (EndUnixNano - StartUnixNano) / 1e9 : 0;
}

/// <summary>The value of one attribute, still as bytes of the payload.</summary>
internal ref struct AttributeValue
{
    public int Field; // OtlpFieldNumbers.AnyValue.*; 0 = empty value
    public ReadOnlySpan<byte> Bytes; // string, bytes, array or kvlist payload
    public long Int;
    public double Double;
    public bool Bool;
}

/// <summary>What a walk over a <c>tempopb.Trace</c> payload reports, in payload order.</summary>
internal interface ISpanVisitor
{
    /// <summary>A ResourceSpans begins; <paramref name="resource"/> is the Resource message (may be empty).</summary>
    void BeginResource(ReadOnlySpan<byte> resource);

    void Span(ref SpanFields span);
}

/// <summary>
/// Walks <c>tempopb.Trace</c> / <c>TracesData</c> bytes (repeated ResourceSpans, field 1) with the shared
/// <see cref="ProtoReader"/>. Allocates nothing; malformed bytes throw <see cref="OtlpFormatException"/>.
/// </summary>
internal static class SpanWalker
{
    public static void Walk(ReadOnlySpan<byte> payload, ISpanVisitor visitor)
    {
        var reader = new ProtoReader(payload);
        while (reader.TryReadTag(out int field, out var wt))
        {
            if (field == F.TracesData.ResourceSpans && wt == WireType.LengthDelimited)
            {
                WalkResourceSpans(reader.ReadLengthDelimited(), visitor);
            }
            else
            {
                reader.SkipField(field, wt);
            }
        }
    }

    private static void WalkResourceSpans(ReadOnlySpan<byte> rs, ISpanVisitor visitor)
    {
        // The resource usually comes first, but protobuf allows any order: find it before reporting spans.
        ReadOnlySpan<byte> resource = default;
        var reader = new ProtoReader(rs);
        while (reader.TryReadTag(out int field, out var wt))
        {
            if (field == F.ResourceSpans.Resource && wt == WireType.LengthDelimited)
            {
                resource = reader.ReadLengthDelimited();
            }
            else
            {
                reader.SkipField(field, wt);
            }
        }

        visitor.BeginResource(resource);
        reader = new ProtoReader(rs);
        while (reader.TryReadTag(out int field, out var wt))
        {
            if (field == F.ResourceSpans.ScopeSpans && wt == WireType.LengthDelimited)
            {
                var ss = new ProtoReader(reader.ReadLengthDelimited());
                while (ss.TryReadTag(out int f2, out var wt2))
                {
                    if (f2 == F.ScopeSpans.Spans && wt2 == WireType.LengthDelimited)
                    {
                        var span = ReadSpan(ss.ReadLengthDelimited());
                        visitor.Span(ref span);
                    }
                    else
                    {
                        ss.SkipField(f2, wt2);
                    }
                }
            }
            else
            {
                reader.SkipField(field, wt);
            }
        }
    }

    internal static SpanFields ReadSpan(ReadOnlySpan<byte> message)
    {
        var s = new SpanFields { Message = message };
        var r = new ProtoReader(message);
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case F.Span.TraceId when wt == WireType.LengthDelimited:
                    var tid = r.ReadLengthDelimited();
                    TraceId.TryFromBytesPadded(tid, out s.TraceId);
                    break;
                case F.Span.SpanId when wt == WireType.LengthDelimited:
                    s.SpanId = ReadId(r.ReadLengthDelimited());
                    break;
                case F.Span.ParentSpanId when wt == WireType.LengthDelimited:
                    var p = r.ReadLengthDelimited();
                    s.ParentSpanId = ReadId(p);
                    // An all-zero parent id is how some SDKs and the JSON path write "no parent".
                    s.HasParent = s.ParentSpanId != 0;
                    break;
                case F.Span.Name when wt == WireType.LengthDelimited:
                    s.Name = r.ReadLengthDelimited();
                    break;
                case F.Span.Kind when wt == WireType.Varint:
                    s.Kind = (int)r.ReadVarint();
                    break;
                case F.Span.StartTimeUnixNano when wt == WireType.Fixed64:
                    s.StartUnixNano = r.ReadFixed64();
                    break;
                case F.Span.EndTimeUnixNano when wt == WireType.Fixed64:
                    s.EndUnixNano = r.ReadFixed64();
                    break;
                case F.Span.Status when wt == WireType.LengthDelimited:
                    var st = new ProtoReader(r.ReadLengthDelimited());
                    while (st.TryReadTag(out int sf, out var swt))
                    {
                        if (sf == F.Status.Code && swt == WireType.Varint)
                        {
                            s.StatusCode = (int)st.ReadVarint();
                        }
                        else if (sf == F.Status.Message && swt == WireType.LengthDelimited)
                        {
                            s.StatusMessage = st.ReadLengthDelimited();
                        }
                        else
                        {
                            st.SkipField(sf, swt);
                        }
                    }

                    break;
                default:
                    r.SkipField(field, wt);
                    break;
            }
        }

        return s;
    }

    private static ulong ReadId(ReadOnlySpan<byte> b) =>
        b.Length == 8 ? BinaryPrimitives.ReadUInt64BigEndian(b) : b.Length == 0 ? 0 : SpanIdPadded(b);

    private static ulong SpanIdPadded(ReadOnlySpan<byte> b)
    {
        // Non-standard lengths: keep the last 8 bytes (left-padded), as ids are compared, not printed.
        Span<byte> tmp = stackalloc byte[8];
        tmp.Clear();
        var src = b.Length > 8 ? b[^8..] : b;
        src.CopyTo(tmp[(8 - src.Length)..]);
        return BinaryPrimitives.ReadUInt64BigEndian(tmp);
    }

    /// <summary>
    /// Finds the first attribute named <paramref name="key"/> (UTF-8) among the KeyValue fields number
    /// <paramref name="attributesField"/> of <paramref name="message"/> (Span: 9, Resource: 1).
    /// </summary>
    public static bool TryFindAttribute(ReadOnlySpan<byte> message, int attributesField, ReadOnlySpan<byte> key, out AttributeValue value)
    {
        var r = new ProtoReader(message);
        while (r.TryReadTag(out int field, out var wt))
        {
            if (field != attributesField || wt != WireType.LengthDelimited)
            {
                r.SkipField(field, wt);
                continue;
            }

            var kv = new ProtoReader(r.ReadLengthDelimited());
            ReadOnlySpan<byte> k = default;
            ReadOnlySpan<byte> v = default;
            bool hasValue = false;
            while (kv.TryReadTag(out int f, out var w))
            {
                if (f == F.KeyValue.Key && w == WireType.LengthDelimited)
                {
                    k = kv.ReadLengthDelimited();
                }
                else if (f == F.KeyValue.Value && w == WireType.LengthDelimited)
                {
                    v = kv.ReadLengthDelimited();
                    hasValue = true;
                }
                else
                {
                    kv.SkipField(f, w);
                }
            }

            if (k.SequenceEqual(key))
            {
                value = hasValue ? ReadAnyValue(v) : default;
                return true;
            }
        }

        value = default;
        return false;
    }

    public static AttributeValue ReadAnyValue(ReadOnlySpan<byte> anyValue)
    {
        var value = default(AttributeValue);
        var r = new ProtoReader(anyValue);
        while (r.TryReadTag(out int f, out var w))
        {
            switch (f)
            {
                case F.AnyValue.StringValue or F.AnyValue.BytesValue or F.AnyValue.ArrayValue or F.AnyValue.KvlistValue when w == WireType.LengthDelimited:
                    value.Field = f;
                    value.Bytes = r.ReadLengthDelimited();
                    break;
                case F.AnyValue.BoolValue when w == WireType.Varint:
                    value.Field = f;
                    value.Bool = r.ReadVarint() != 0;
                    break;
                case F.AnyValue.IntValue when w == WireType.Varint:
                    value.Field = f;
                    value.Int = (long)r.ReadVarint();
                    break;
                case F.AnyValue.DoubleValue when w == WireType.Fixed64:
                    value.Field = f;
                    value.Double = r.ReadDouble();
                    break;
                default:
                    r.SkipField(f, w);
                    break;
            }
        }

        return value;
    }
}

/// <summary>Enumerates the attributes (KeyValue fields) of a Span or Resource message without allocating.</summary>
internal ref struct AttributeEnumerator
{
    private readonly int _field;
    private ProtoReader _reader;

    public AttributeEnumerator(ReadOnlySpan<byte> message, int attributesField)
    {
        _reader = new ProtoReader(message);
        _field = attributesField;
    }

    public bool MoveNext(out ReadOnlySpan<byte> key, out AttributeValue value)
    {
        while (_reader.TryReadTag(out int field, out var wt))
        {
            if (field != _field || wt != WireType.LengthDelimited)
            {
                _reader.SkipField(field, wt);
                continue;
            }

            var kv = new ProtoReader(_reader.ReadLengthDelimited());
            key = default;
            ReadOnlySpan<byte> v = default;
            while (kv.TryReadTag(out int f, out var w))
            {
                if (f == F.KeyValue.Key && w == WireType.LengthDelimited)
                {
                    key = kv.ReadLengthDelimited();
                }
                else if (f == F.KeyValue.Value && w == WireType.LengthDelimited)
                {
                    v = kv.ReadLengthDelimited();
                }
                else
                {
                    kv.SkipField(f, w);
                }
            }

            value = SpanWalker.ReadAnyValue(v);
            return true;
        }

        key = default;
        value = default;
        return false;
    }
}
