using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Rubato.Common.Ids;

namespace Rubato.TraceQL.Engine;

/// <summary>Tempo's <c>SearchResponse</c>: matched traces and scan metrics.</summary>
public sealed class SearchResult
{
    public List<TraceSearchMetadata> Traces { get; init; } = [];

    public SearchMetrics Metrics { get; init; } = new();
}

/// <summary>Tempo's <c>SearchMetrics</c>.</summary>
public sealed class SearchMetrics
{
    public uint InspectedTraces { get; set; }

    public ulong InspectedBytes { get; set; }

    public ulong InspectedSpans { get; set; }

    public uint TotalBlocks { get; set; }

    public uint CompletedJobs { get; set; }

    public uint TotalJobs { get; set; }

    public ulong TotalBlockBytes { get; set; }

    public void Add(SearchMetrics other)
    {
        ArgumentNullException.ThrowIfNull(other);
        InspectedTraces += other.InspectedTraces;
        InspectedBytes += other.InspectedBytes;
        InspectedSpans += other.InspectedSpans;
        TotalBlocks += other.TotalBlocks;
        CompletedJobs += other.CompletedJobs;
        TotalJobs += other.TotalJobs;
        TotalBlockBytes += other.TotalBlockBytes;
    }
}

/// <summary>Tempo's <c>TraceSearchMetadata</c>: one matched trace.</summary>
public sealed class TraceSearchMetadata
{
    /// <summary>Shown for traces whose root span has not been seen (Tempo's text).</summary>
    public const string RootSpanNotYetReceived = "<root span not yet received>";

    public TraceId TraceId { get; set; }

    /// <summary>Empty when unknown; the JSON writer prints <see cref="RootSpanNotYetReceived"/>.</summary>
    public string RootServiceName { get; set; } = string.Empty;

    public string RootTraceName { get; set; } = string.Empty;

    public ulong StartTimeUnixNano { get; set; }

    /// <summary>Trace duration in nanoseconds (the JSON carries whole milliseconds as <c>durationMs</c>).</summary>
    public ulong DurationNanos { get; set; }

    public uint DurationMs => (uint)Math.Min(uint.MaxValue, DurationNanos / 1_000_000);

    public List<SpanSetResult> SpanSets { get; init; } = [];

    public Dictionary<string, ServiceStat>? ServiceStats { get; set; }
}

/// <summary>Tempo's <c>SpanSet</c>: up to spss spans, how many matched, and by() attributes.</summary>
public sealed class SpanSetResult
{
    public List<SpanResult> Spans { get; init; } = [];

    public uint Matched { get; set; }

    public List<KeyValuePair<string, TraceQLValue>> Attributes { get; init; } = [];

    /// <summary>Identity of the spanset within its trace for merging: its by() attributes (keys starting with "by", as Tempo).</summary>
    public string GroupKey() => string.Join(
        "\u0001",
        Attributes.Where(a => a.Key.StartsWith("by", StringComparison.Ordinal)).Select(a => a.Key + "\u0002" + a.Value.Kind + a.Value));
}

/// <summary>Tempo's search <c>Span</c>.</summary>
public sealed class SpanResult
{
    public SpanId SpanId { get; set; }

    public string Name { get; set; } = string.Empty;

    public ulong StartTimeUnixNano { get; set; }

    public ulong DurationNanos { get; set; }

    public List<KeyValuePair<string, TraceQLValue>> Attributes { get; init; } = [];
}

/// <summary>
/// Writes search results as Tempo's <c>/api/search</c> JSON (protojson of <c>tempopb.SearchResponse</c>): 64-bit
/// numbers as strings, zero values and empty lists omitted, trace ids as hex without leading zeros, span ids as 16
/// hex digits, the deprecated <c>spanSet</c> carrying the first of <c>spanSets</c>. Writers should use
/// <see cref="JavaScriptEncoder.UnsafeRelaxedJsonEscaping"/> (as <see cref="ToJson"/> does) so <c>&lt;root span not yet
/// received&gt;</c> is not \u-escaped; both forms are the same JSON.
/// </summary>
public static class SearchResultJson
{
    public static void Write(Utf8JsonWriter w, SearchResult result)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(result);
        w.WriteStartObject();
        w.WriteStartArray("traces");
        foreach (var t in result.Traces)
        {
            WriteTrace(w, t);
        }

        w.WriteEndArray();
        w.WriteStartObject("metrics");
        var m = result.Metrics;
        WriteU32(w, "inspectedTraces", m.InspectedTraces);
        WriteU64(w, "inspectedBytes", m.InspectedBytes);
        WriteU32(w, "totalBlocks", m.TotalBlocks);
        WriteU32(w, "completedJobs", m.CompletedJobs);
        WriteU32(w, "totalJobs", m.TotalJobs);
        WriteU64(w, "totalBlockBytes", m.TotalBlockBytes);
        WriteU64(w, "inspectedSpans", m.InspectedSpans);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static string ToJson(SearchResult result)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            Write(w, result);
        }

        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Tempo's trace id text: lower-case hex with leading zeros removed.</summary>
    public static string TraceIdHex(TraceId id)
    {
        var s = id.ToHex().TrimStart('0');
        return s.Length == 0 ? "0" : s;
    }

    private static void WriteTrace(Utf8JsonWriter w, TraceSearchMetadata t)
    {
        w.WriteStartObject();
        w.WriteString("traceID", TraceIdHex(t.TraceId));
        w.WriteString("rootServiceName", t.RootServiceName.Length == 0 ? TraceSearchMetadata.RootSpanNotYetReceived : t.RootServiceName);
        if (t.RootTraceName.Length > 0)
        {
            w.WriteString("rootTraceName", t.RootTraceName);
        }

        WriteU64(w, "startTimeUnixNano", t.StartTimeUnixNano);
        WriteU32(w, "durationMs", t.DurationMs);
        if (t.SpanSets.Count > 0)
        {
            w.WritePropertyName("spanSet");
            WriteSpanSet(w, t.SpanSets[0]);
            w.WriteStartArray("spanSets");
            foreach (var ss in t.SpanSets)
            {
                WriteSpanSet(w, ss);
            }

            w.WriteEndArray();
        }

        if (t.ServiceStats is { Count: > 0 })
        {
            w.WriteStartObject("serviceStats");
            foreach (var (svc, st) in t.ServiceStats.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(svc);
                WriteU32(w, "spanCount", (uint)st.SpanCount);
                WriteU32(w, "errorCount", (uint)st.ErrorCount);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void WriteSpanSet(Utf8JsonWriter w, SpanSetResult ss)
    {
        w.WriteStartObject();
        if (ss.Spans.Count > 0)
        {
            w.WriteStartArray("spans");
            foreach (var s in ss.Spans)
            {
                w.WriteStartObject();
                w.WriteString("spanID", s.SpanId.ToHex());
                if (s.Name.Length > 0)
                {
                    w.WriteString("name", s.Name);
                }

                WriteU64(w, "startTimeUnixNano", s.StartTimeUnixNano);
                WriteU64(w, "durationNanos", s.DurationNanos);
                WriteAttributes(w, s.Attributes);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        WriteU32(w, "matched", ss.Matched);
        WriteAttributes(w, ss.Attributes);
        w.WriteEndObject();
    }

    private static void WriteAttributes(Utf8JsonWriter w, List<KeyValuePair<string, TraceQLValue>> attrs)
    {
        if (attrs.Count == 0)
        {
            return;
        }

        w.WriteStartArray("attributes");
        foreach (var (k, v) in attrs)
        {
            w.WriteStartObject();
            w.WriteString("key", k);
            w.WritePropertyName("value");
            WriteAnyValue(w, v);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary>OTLP JSON AnyValue; durations, statuses and kinds as their TraceQL text (as Tempo does); nil as "nil".</summary>
    public static void WriteAnyValue(Utf8JsonWriter w, in TraceQLValue v)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        switch (v.Kind)
        {
            case ValueKind.Int:
                w.WriteString("intValue", v.Int.ToString(CultureInfo.InvariantCulture));
                break;
            case ValueKind.Float:
                if (double.IsFinite(v.Float))
                {
                    w.WriteNumber("doubleValue", v.Float);
                }
                else
                {
                    w.WriteString("doubleValue", double.IsNaN(v.Float) ? "NaN" : v.Float > 0 ? "Infinity" : "-Infinity");
                }

                break;
            case ValueKind.Bool:
                w.WriteBoolean("boolValue", v.Bool);
                break;
            case ValueKind.Array:
                w.WriteStartObject("arrayValue");
                w.WriteStartArray("values");
                foreach (var e in v.Array)
                {
                    WriteAnyValue(w, e);
                }

                w.WriteEndArray();
                w.WriteEndObject();
                break;
            default:
                w.WriteString("stringValue", ValueText.Format(v));
                break;
        }

        w.WriteEndObject();
    }

    private static void WriteU32(Utf8JsonWriter w, string name, uint v)
    {
        if (v != 0)
        {
            w.WriteNumber(name, v);
        }
    }

    private static void WriteU64(Utf8JsonWriter w, string name, ulong v)
    {
        if (v != 0)
        {
            w.WriteString(name, v.ToString(CultureInfo.InvariantCulture));
        }
    }
}

/// <summary>Text forms of values as Tempo prints them (durations like Go's <c>time.Duration.String()</c>).</summary>
public static class ValueText
{
    public static string Format(in TraceQLValue v) => v.Kind == ValueKind.Duration ? GoDuration(v.Int) : v.ToString();

    /// <summary>Go's <c>time.Duration.String()</c>: "1h2m3.5s", "1.5ms", "800ns", "0s".</summary>
    public static string GoDuration(long nanos)
    {
        if (nanos == 0)
        {
            return "0s";
        }

        bool neg = nanos < 0;
        ulong u = neg ? (ulong)(-(nanos + 1)) + 1 : (ulong)nanos;
        string body;
        if (u < 1_000)
        {
            body = u.ToString(CultureInfo.InvariantCulture) + "ns";
        }
        else if (u < 1_000_000)
        {
            body = Fraction(u, 1_000) + "µs";
        }
        else if (u < 1_000_000_000)
        {
            body = Fraction(u, 1_000_000) + "ms";
        }
        else
        {
            ulong totalSeconds = u / 1_000_000_000;
            ulong h = totalSeconds / 3600, m = totalSeconds / 60 % 60;
            string secs = Fraction(u % 60_000_000_000, 1_000_000_000) + "s";
            body = h > 0 ? $"{h}h{m}m{secs}" : m > 0 ? $"{m}m{secs}" : secs;
        }

        return neg ? "-" + body : body;
    }

    private static string Fraction(ulong v, ulong unit)
    {
        ulong whole = v / unit, frac = v % unit;
        if (frac == 0)
        {
            return whole.ToString(CultureInfo.InvariantCulture);
        }

        int digits = (int)Math.Log10(unit);
        var f = frac.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
        return whole.ToString(CultureInfo.InvariantCulture) + "." + f;
    }
}
