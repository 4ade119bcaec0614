using Rubato.Common.Model;

namespace Rubato.BackendWorker;

/// <summary>
/// An upper-bound estimate of a span's OTLP protobuf size, for enforcing <c>max_bytes_per_trace</c> during
/// compaction without encoding every span. Counts every string and id byte plus a small fixed cost per field
/// (tag + length/varint), so it is within a few bytes per field of the real encoding. Allocation-free; any thread.
/// </summary>
public static class SpanSize
{
    public static long Estimate(Span span)
    {
        ArgumentNullException.ThrowIfNull(span);
        long n = 18 + 10 + 2 + 11 + 11 + 2; // trace id, span id, kind, start, end, status wrapper
        if (!span.ParentSpanId.IsEmpty)
        {
            n += 10;
        }

        n += Str(span.Name) + Str(span.TraceState) + Str(span.StatusMessage);
        n += Attrs(span.Attributes);
        foreach (var e in span.Events)
        {
            n += 4 + 9 + Str(e.Name) + Attrs(e.Attributes);
        }

        foreach (var l in span.Links)
        {
            n += 4 + 18 + 10 + Str(l.TraceState) + Attrs(l.Attributes);
        }

        return n;
    }

    private static long Str(string s) => s.Length == 0 ? 0 : 3 + System.Text.Encoding.UTF8.GetByteCount(s);

    private static long Attrs(List<KeyValue> attrs)
    {
        long n = 0;
        foreach (var kv in attrs)
        {
            n += 4 + Str(kv.Key) + Value(kv.Value);
        }

        return n;
    }

    private static long Attrs(IReadOnlyList<KeyValue> attrs)
    {
        long n = 0;
        for (int i = 0; i < attrs.Count; i++)
        {
            n += 4 + Str(attrs[i].Key) + Value(attrs[i].Value);
        }

        return n;
    }

    private static long Value(AnyValue v)
    {
        switch (v.Kind)
        {
            case AnyValueKind.String:
                return Str(v.StringValue ?? string.Empty);
            case AnyValueKind.Bytes:
                return 3 + (v.BytesValue?.Length ?? 0);
            case AnyValueKind.Array:
                long n = 3;
                if (v.ArrayValue is { } arr)
                {
                    for (int i = 0; i < arr.Count; i++)
                    {
                        n += 2 + Value(arr[i]);
                    }
                }

                return n;
            case AnyValueKind.KvList:
                return 3 + (v.KvListValue is { } l ? Attrs(l) : 0);
            default:
                return 10;
        }
    }
}
