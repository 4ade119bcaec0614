using Rubato.Receivers.Wire;

namespace Rubato.Receivers.Tests.Support;

public sealed record JTag(string Key, int VType, object Value)
{
    public static JTag Str(string k, string v) => new(k, 0, v);

    public static JTag Dbl(string k, double v) => new(k, 1, v);

    public static JTag Bool(string k, bool v) => new(k, 2, v);

    public static JTag Long(string k, long v) => new(k, 3, v);

    public static JTag Bin(string k, byte[] v) => new(k, 4, v);
}

public sealed record JLog(long Timestamp, params JTag[] Fields);

public sealed record JRef(int RefType, long TraceIdLow, long TraceIdHigh, long SpanId);

public sealed record JSpan(long TraceIdLow, long TraceIdHigh, long SpanId, long ParentSpanId, string OperationName,
    long StartTime, long Duration, JTag[]? Tags = null, JLog[]? Logs = null, JRef[]? References = null, int Flags = 1);

/// <summary>Writes jaeger.thrift Batch structs and agent emitBatch messages with <see cref="ThriftWriter"/>.</summary>
public static class JaegerThriftFixture
{
    public static byte[] Batch(ThriftProtocol protocol, string serviceName, JTag[]? processTags, params JSpan[] spans)
    {
        var w = new ThriftWriter(protocol);
        WriteBatch(w, serviceName, processTags, spans);
        return w.ToArray();
    }

    public static byte[] EmitBatch(ThriftProtocol protocol, string serviceName, JTag[]? processTags, params JSpan[] spans)
    {
        var w = new ThriftWriter(protocol);
        w.MessageBegin("emitBatch", 4, 1);
        w.StructBegin();
        w.Field(1, TT.Struct);
        WriteBatch(w, serviceName, processTags, spans);
        w.StructEnd();
        return w.ToArray();
    }

    public static void WriteBatch(ThriftWriter w, string serviceName, JTag[]? processTags, JSpan[] spans)
    {
        w.StructBegin();
        w.Field(1, TT.Struct).StructBegin();
        w.Field(1, TT.String).WriteString(serviceName);
        if (processTags is not null)
        {
            w.Field(2, TT.List);
            WriteTags(w, processTags);
        }

        w.StructEnd();
        w.Field(2, TT.List).ListBegin(TT.Struct, spans.Length);
        foreach (var s in spans)
        {
            WriteSpan(w, s);
        }

        // seqNo (3, optional) exercises skipping of fields the decoder ignores.
        w.Field(3, TT.I64).I64(42);
        w.StructEnd();
    }

    private static void WriteSpan(ThriftWriter w, JSpan s)
    {
        w.StructBegin();
        w.Field(1, TT.I64).I64(s.TraceIdLow);
        w.Field(2, TT.I64).I64(s.TraceIdHigh);
        w.Field(3, TT.I64).I64(s.SpanId);
        w.Field(4, TT.I64).I64(s.ParentSpanId);
        w.Field(5, TT.String).WriteString(s.OperationName);
        if (s.References is not null)
        {
            w.Field(6, TT.List).ListBegin(TT.Struct, s.References.Length);
            foreach (var r in s.References)
            {
                w.StructBegin();
                w.Field(1, TT.I32).I32(r.RefType);
                w.Field(2, TT.I64).I64(r.TraceIdLow);
                w.Field(3, TT.I64).I64(r.TraceIdHigh);
                w.Field(4, TT.I64).I64(r.SpanId);
                w.StructEnd();
            }
        }

        w.Field(7, TT.I32).I32(s.Flags);
        w.Field(8, TT.I64).I64(s.StartTime);
        w.Field(9, TT.I64).I64(s.Duration);
        if (s.Tags is not null)
        {
            w.Field(10, TT.List);
            WriteTags(w, s.Tags);
        }

        if (s.Logs is not null)
        {
            w.Field(11, TT.List).ListBegin(TT.Struct, s.Logs.Length);
            foreach (var l in s.Logs)
            {
                w.StructBegin();
                w.Field(1, TT.I64).I64(l.Timestamp);
                w.Field(2, TT.List);
                WriteTags(w, l.Fields);
                w.StructEnd();
            }
        }

        w.StructEnd();
    }

    private static void WriteTags(ThriftWriter w, JTag[] tags)
    {
        w.ListBegin(TT.Struct, tags.Length);
        foreach (var t in tags)
        {
            w.StructBegin();
            w.Field(1, TT.String).WriteString(t.Key);
            w.Field(2, TT.I32).I32(t.VType);
            switch (t.VType)
            {
                case 0:
                    w.Field(3, TT.String).WriteString((string)t.Value);
                    break;
                case 1:
                    w.Field(4, TT.Double).Double((double)t.Value);
                    break;
                case 2:
                    w.BoolField(5, (bool)t.Value);
                    break;
                case 3:
                    w.Field(6, TT.I64).I64((long)t.Value);
                    break;
                case 4:
                    w.Field(7, TT.String).Binary((byte[])t.Value);
                    break;
            }

            w.StructEnd();
        }
    }
}
