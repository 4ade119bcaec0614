using System.Globalization;
using System.Text;
using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.Common.Otlp;

/// <summary>
/// OTLP/JSON decoding (OTLP/HTTP <c>application/json</c>) and the JSON shapes Tempo's query API returns.
/// Hand-written over <see cref="Utf8JsonReader"/>/<see cref="Utf8JsonWriter"/>: no reflection serialisation.
/// </summary>
/// <remarks>
/// <para>Decoding follows the OTLP JSON mapping: lowerCamelCase keys (snake_case accepted too), trace/span ids as
/// case-insensitive hex, enums as integers or names, 64-bit integers as strings or numbers, <c>bytesValue</c> base64,
/// unknown fields ignored.</para>
/// <para>Tempo's trace-by-id JSON is gogo <c>jsonpb.Marshaler{}</c> output of its protobuf types (modules/frontend/combiner):
/// camelCase names, ids as <b>base64</b> (jsonpb's bytes rule, not OTLP hex; grafana/tempo#5437), 64-bit integers as
/// strings, enums as names (<c>SPAN_KIND_SERVER</c>, <c>STATUS_CODE_ERROR</c>), default values omitted (0 enums omitted),
/// <c>"status":{}</c> present on every span (Tempo always sets the message). v1 (<c>/api/traces/{id}</c>) prints the
/// trace as <c>{"batches":[…]}</c> (kept for compatibility, grafana/tempo#3895); v2 (<c>/api/v2/traces/{id}</c>)
/// prints <c>TraceByIDResponse</c>: <c>{"trace":{"resourceSpans":[…]},"metrics":{…},"status":"PARTIAL","message":"…"}</c>
/// where status/message appear only for partial traces (COMPLETE is the default and omitted).</para>
/// </remarks>
public static class OtlpJson
{
    private const int MaxDepth = 64;

    private enum Style
    {
        /// <summary>OTLP/JSON as the spec writes it: hex ids, enums as integers.</summary>
        Otlp,

        /// <summary>Tempo's jsonpb: base64 ids, enums as names, status always present.</summary>
        Tempo,
    }

    // ====================================================================== decode

    /// <summary>Decodes an OTLP/JSON <c>ExportTraceServiceRequest</c> (or <c>TracesData</c>, or Tempo's <c>{"batches":…}</c>).</summary>
    public static Trace DecodeExportRequest(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw new OtlpFormatException("empty JSON body");
        }

        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth * 3, CommentHandling = JsonCommentHandling.Skip });
        try
        {
            var trace = new Trace();
            Read(ref reader);
            Span<char> buf = stackalloc char[64];
            ExpectObject(ref reader, "request");
            while (NextProperty(ref reader, buf, out var name))
            {
                if (name is "resourcespans" or "batches")
                {
                    ReadArray(ref reader, "resourceSpans", trace, static (ref Utf8JsonReader r, Trace t) => t.ResourceSpans.Add(ReadResourceSpans(ref r)));
                }
                else
                {
                    reader.Skip();
                }
            }

            if (reader.Read())
            {
                throw new OtlpFormatException($"unexpected {reader.TokenType} after the request object");
            }

            return trace;
        }
        catch (JsonException ex)
        {
            throw new OtlpFormatException($"invalid JSON: {ex.Message}", ex);
        }
    }

    private delegate void ItemReader<T>(ref Utf8JsonReader reader, T target);

    /// <summary>At a property value: null means absent, otherwise an array whose items are read by <paramref name="item"/>.</summary>
    private static void ReadArray<T>(ref Utf8JsonReader r, string field, T target, ItemReader<T> item)
    {
        if (r.TokenType == JsonTokenType.Null)
        {
            return;
        }

        if (r.TokenType != JsonTokenType.StartArray)
        {
            throw new OtlpFormatException($"\"{field}\" must be an array, got {r.TokenType}");
        }

        while (true)
        {
            Read(ref r);
            if (r.TokenType == JsonTokenType.EndArray)
            {
                return;
            }

            item(ref r, target);
        }
    }

    private static void Read(ref Utf8JsonReader r)
    {
        if (!r.Read())
        {
            throw new OtlpFormatException("truncated JSON");
        }
    }

    private static void ExpectObject(ref Utf8JsonReader r, string what)
    {
        if (r.TokenType != JsonTokenType.StartObject)
        {
            throw new OtlpFormatException($"{what} must be a JSON object, got {r.TokenType}");
        }
    }

    /// <summary>
    /// Advances to the next property of the current object and onto its value; false at the object's end.
    /// The name is lower-cased with underscores removed so camelCase and snake_case compare equal.
    /// </summary>
    private static bool NextProperty(ref Utf8JsonReader r, scoped Span<char> buf, out string name)
    {
        Read(ref r);
        if (r.TokenType == JsonTokenType.EndObject)
        {
            name = string.Empty;
            return false;
        }

        // Property names are short; anything longer than the buffer is unknown and gets skipped.
        int len = 0;
        if (!r.ValueIsEscaped && r.ValueSpan.Length <= buf.Length)
        {
            foreach (byte b in r.ValueSpan)
            {
                if (b != (byte)'_')
                {
                    buf[len++] = (char)(b is >= (byte)'A' and <= (byte)'Z' ? b + 32 : b);
                }
            }
        }
        else if (r.ValueIsEscaped)
        {
            string s = r.GetString()!;
            foreach (char c in s)
            {
                if (c != '_' && len < buf.Length)
                {
                    buf[len++] = char.ToLowerInvariant(c);
                }
            }
        }

        name = Intern(buf[..len]);
        Read(ref r);
        return true;
    }

    private static readonly string[] s_names =
    [
        "resourcespans", "batches", "resource", "scopespans", "instrumentationlibraryspans", "schemaurl", "attributes",
        "droppedattributescount", "scope", "instrumentationlibrary", "spans", "name", "version", "traceid", "spanid",
        "tracestate", "parentspanid", "flags", "kind", "starttimeunixnano", "endtimeunixnano", "events",
        "droppedeventscount", "links", "droppedlinkscount", "status", "message", "code", "timeunixnano", "key", "value",
        "stringvalue", "boolvalue", "intvalue", "doublevalue", "arrayvalue", "kvlistvalue", "bytesvalue", "values",
    ];

    /// <summary>Maps a normalised name to its constant (no allocation for known names).</summary>
    private static string Intern(ReadOnlySpan<char> name)
    {
        foreach (string n in s_names)
        {
            if (name.SequenceEqual(n))
            {
                return n;
            }
        }

        return string.Empty;
    }

    private static ResourceSpans ReadResourceSpans(ref Utf8JsonReader r)
    {
        ExpectObject(ref r, "resourceSpans item");
        var rs = new ResourceSpans();
        Span<char> buf = stackalloc char[64];
        while (NextProperty(ref r, buf, out var name))
        {
            switch (name)
            {
                case "resource":
                    if (r.TokenType != JsonTokenType.Null)
                    {
                        ExpectObject(ref r, "resource");
                        var res = rs.Resource;
                        while (NextProperty(ref r, buf, out var rn))
                        {
                            if (rn == "attributes")
                            {
                                ReadAttributes(ref r, res.Attributes, 0);
                            }
                            else if (rn == "droppedattributescount")
                            {
                                res.DroppedAttributesCount = ReadUInt32(ref r, "droppedAttributesCount");
                            }
                            else
                            {
                                r.Skip();
                            }
                        }
                    }

                    break;
                case "scopespans":
                case "instrumentationlibraryspans":
                    ReadArray(ref r, "scopeSpans", rs, static (ref Utf8JsonReader rr, ResourceSpans t) => t.ScopeSpans.Add(ReadScopeSpans(ref rr)));
                    break;
                case "schemaurl":
                    rs.SchemaUrl = ReadString(ref r, "schemaUrl");
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return rs;
    }

    private static ScopeSpans ReadScopeSpans(ref Utf8JsonReader r)
    {
        ExpectObject(ref r, "scopeSpans item");
        var ss = new ScopeSpans();
        Span<char> buf = stackalloc char[64];
        while (NextProperty(ref r, buf, out var name))
        {
            switch (name)
            {
                case "scope":
                case "instrumentationlibrary":
                    if (r.TokenType != JsonTokenType.Null)
                    {
                        ExpectObject(ref r, "scope");
                        var scope = ss.Scope;
                        while (NextProperty(ref r, buf, out var sn))
                        {
                            switch (sn)
                            {
                                case "name":
                                    scope.Name = ReadString(ref r, "scope.name");
                                    break;
                                case "version":
                                    scope.Version = ReadString(ref r, "scope.version");
                                    break;
                                case "attributes":
                                    ReadAttributes(ref r, scope.Attributes, 0);
                                    break;
                                case "droppedattributescount":
                                    scope.DroppedAttributesCount = ReadUInt32(ref r, "droppedAttributesCount");
                                    break;
                                default:
                                    r.Skip();
                                    break;
                            }
                        }
                    }

                    break;
                case "spans":
                    ReadArray(ref r, "spans", ss, static (ref Utf8JsonReader rr, ScopeSpans t) => t.Spans.Add(ReadSpan(ref rr)));
                    break;
                case "schemaurl":
                    ss.SchemaUrl = ReadString(ref r, "schemaUrl");
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return ss;
    }

    private static Span ReadSpan(ref Utf8JsonReader r)
    {
        ExpectObject(ref r, "span");
        var s = new Span();
        Span<char> buf = stackalloc char[64];
        while (NextProperty(ref r, buf, out var name))
        {
            switch (name)
            {
                case "traceid":
                    s.TraceId = ReadTraceId(ref r, "traceId");
                    break;
                case "spanid":
                    s.SpanId = ReadSpanId(ref r, "spanId");
                    break;
                case "tracestate":
                    s.TraceState = ReadString(ref r, "traceState");
                    break;
                case "parentspanid":
                    s.ParentSpanId = ReadSpanId(ref r, "parentSpanId");
                    break;
                case "flags":
                    s.Flags = ReadUInt32(ref r, "flags");
                    break;
                case "name":
                    s.Name = ReadString(ref r, "name");
                    break;
                case "kind":
                    s.Kind = (SpanKind)ReadEnum(ref r, "kind", "SPAN_KIND_", s_kindNames);
                    break;
                case "starttimeunixnano":
                    s.StartTimeUnixNano = ReadUInt64(ref r, "startTimeUnixNano");
                    break;
                case "endtimeunixnano":
                    s.EndTimeUnixNano = ReadUInt64(ref r, "endTimeUnixNano");
                    break;
                case "attributes":
                    ReadAttributes(ref r, s.Attributes, 0);
                    break;
                case "droppedattributescount":
                    s.DroppedAttributesCount = ReadUInt32(ref r, "droppedAttributesCount");
                    break;
                case "events":
                    ReadArray(ref r, "events", s, static (ref Utf8JsonReader rr, Span t) => t.Events.Add(ReadEvent(ref rr)));
                    break;
                case "droppedeventscount":
                    s.DroppedEventsCount = ReadUInt32(ref r, "droppedEventsCount");
                    break;
                case "links":
                    ReadArray(ref r, "links", s, static (ref Utf8JsonReader rr, Span t) => t.Links.Add(ReadLink(ref rr)));
                    break;
                case "droppedlinkscount":
                    s.DroppedLinksCount = ReadUInt32(ref r, "droppedLinksCount");
                    break;
                case "status":
                    if (r.TokenType != JsonTokenType.Null)
                    {
                        ExpectObject(ref r, "status");
                        while (NextProperty(ref r, buf, out var sn))
                        {
                            if (sn == "message")
                            {
                                s.StatusMessage = ReadString(ref r, "status.message");
                            }
                            else if (sn == "code")
                            {
                                s.StatusCode = (StatusCode)ReadEnum(ref r, "status.code", "STATUS_CODE_", s_statusNames);
                            }
                            else
                            {
                                r.Skip();
                            }
                        }
                    }

                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return s;
    }

    private static SpanEvent ReadEvent(ref Utf8JsonReader r)
    {
        ExpectObject(ref r, "event");
        var e = new SpanEvent();
        Span<char> buf = stackalloc char[64];
        while (NextProperty(ref r, buf, out var name))
        {
            switch (name)
            {
                case "timeunixnano":
                    e.TimeUnixNano = ReadUInt64(ref r, "timeUnixNano");
                    break;
                case "name":
                    e.Name = ReadString(ref r, "event.name");
                    break;
                case "attributes":
                    ReadAttributes(ref r, e.Attributes, 0);
                    break;
                case "droppedattributescount":
                    e.DroppedAttributesCount = ReadUInt32(ref r, "droppedAttributesCount");
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return e;
    }

    private static SpanLink ReadLink(ref Utf8JsonReader r)
    {
        ExpectObject(ref r, "link");
        var l = new SpanLink();
        Span<char> buf = stackalloc char[64];
        while (NextProperty(ref r, buf, out var name))
        {
            switch (name)
            {
                case "traceid":
                    l.TraceId = ReadTraceId(ref r, "link.traceId");
                    break;
                case "spanid":
                    l.SpanId = ReadSpanId(ref r, "link.spanId");
                    break;
                case "tracestate":
                    l.TraceState = ReadString(ref r, "link.traceState");
                    break;
                case "attributes":
                    ReadAttributes(ref r, l.Attributes, 0);
                    break;
                case "droppedattributescount":
                    l.DroppedAttributesCount = ReadUInt32(ref r, "droppedAttributesCount");
                    break;
                case "flags":
                    l.Flags = ReadUInt32(ref r, "link.flags");
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return l;
    }

    private static void ReadAttributes(ref Utf8JsonReader r, List<KeyValue> into, int depth)
    {
        if (r.TokenType == JsonTokenType.Null)
        {
            return;
        }

        if (r.TokenType != JsonTokenType.StartArray)
        {
            throw new OtlpFormatException($"\"attributes\"/\"values\" must be an array, got {r.TokenType}");
        }

        Span<char> buf = stackalloc char[64];
        while (true)
        {
            Read(ref r);
            if (r.TokenType == JsonTokenType.EndArray)
            {
                return;
            }

            ExpectObject(ref r, "attribute");
            string key = string.Empty;
            AnyValue value = AnyValue.EmptyValue;
            while (NextProperty(ref r, buf, out var name))
            {
                if (name == "key")
                {
                    key = ReadString(ref r, "key");
                }
                else if (name == "value")
                {
                    value = ReadAnyValue(ref r, depth);
                }
                else
                {
                    r.Skip();
                }
            }

            into.Add(new KeyValue(key, value));
        }
    }

    private static AnyValue ReadAnyValue(ref Utf8JsonReader r, int depth)
    {
        if (r.TokenType == JsonTokenType.Null)
        {
            return AnyValue.EmptyValue;
        }

        if (depth > MaxDepth)
        {
            throw new OtlpFormatException($"attribute values nested deeper than {MaxDepth}");
        }

        ExpectObject(ref r, "attribute value");
        AnyValue value = AnyValue.EmptyValue;
        Span<char> buf = stackalloc char[64];
        while (NextProperty(ref r, buf, out var name))
        {
            if (r.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            switch (name)
            {
                case "stringvalue":
                    value = AnyValue.String(ReadString(ref r, "stringValue"));
                    break;
                case "boolvalue":
                    value = r.TokenType switch
                    {
                        JsonTokenType.True => AnyValue.Bool(true),
                        JsonTokenType.False => AnyValue.Bool(false),
                        _ => throw new OtlpFormatException($"\"boolValue\" must be true or false, got {r.TokenType}"),
                    };
                    break;
                case "intvalue":
                    value = AnyValue.Int(ReadInt64(ref r, "intValue"));
                    break;
                case "doublevalue":
                    value = AnyValue.Double(ReadDouble(ref r, "doubleValue"));
                    break;
                case "arrayvalue":
                    {
                        ExpectObject(ref r, "arrayValue");
                        var items = new List<AnyValue>();
                        while (NextProperty(ref r, buf, out var an))
                        {
                            if (an == "values" && r.TokenType == JsonTokenType.StartArray)
                            {
                                while (true)
                                {
                                    Read(ref r);
                                    if (r.TokenType == JsonTokenType.EndArray)
                                    {
                                        break;
                                    }

                                    items.Add(ReadAnyValue(ref r, depth + 1));
                                }
                            }
                            else if (an == "values" && r.TokenType != JsonTokenType.Null)
                            {
                                throw new OtlpFormatException($"\"arrayValue.values\" must be an array, got {r.TokenType}");
                            }
                            else
                            {
                                r.Skip();
                            }
                        }

                        value = AnyValue.Array(items);
                        break;
                    }

                case "kvlistvalue":
                    {
                        ExpectObject(ref r, "kvlistValue");
                        var items = new List<KeyValue>();
                        while (NextProperty(ref r, buf, out var kn))
                        {
                            if (kn == "values")
                            {
                                ReadAttributes(ref r, items, depth + 1);
                            }
                            else
                            {
                                r.Skip();
                            }
                        }

                        value = AnyValue.KvList(items);
                        break;
                    }

                case "bytesvalue":
                    {
                        string b64 = ReadString(ref r, "bytesValue");
                        try
                        {
                            value = AnyValue.Bytes(Convert.FromBase64String(b64));
                        }
                        catch (FormatException)
                        {
                            throw new OtlpFormatException($"\"bytesValue\" is not valid base64: \"{Clip(b64)}\"");
                        }

                        break;
                    }

                default:
                    r.Skip();
                    break;
            }
        }

        return value;
    }

    private static string ReadString(ref Utf8JsonReader r, string field)
    {
        return r.TokenType switch
        {
            JsonTokenType.String => r.GetString()!,
            JsonTokenType.Null => string.Empty,
            _ => throw new OtlpFormatException($"\"{field}\" must be a string, got {r.TokenType}"),
        };
    }

    private static ulong ReadUInt64(ref Utf8JsonReader r, string field)
    {
        if (r.TokenType == JsonTokenType.Number && r.TryGetUInt64(out ulong v))
        {
            return v;
        }

        if (r.TokenType == JsonTokenType.String && ulong.TryParse(r.ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out v))
        {
            return v;
        }

        if (r.TokenType == JsonTokenType.Null)
        {
            return 0;
        }

        throw new OtlpFormatException($"\"{field}\" must be an unsigned 64-bit integer (number or decimal string), got {Describe(ref r)}");
    }

    private static long ReadInt64(ref Utf8JsonReader r, string field)
    {
        if (r.TokenType == JsonTokenType.Number && r.TryGetInt64(out long v))
        {
            return v;
        }

        if (r.TokenType == JsonTokenType.String && long.TryParse(r.ValueSpan, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
        {
            return v;
        }

        throw new OtlpFormatException($"\"{field}\" must be a 64-bit integer (number or decimal string), got {Describe(ref r)}");
    }

    private static uint ReadUInt32(ref Utf8JsonReader r, string field)
    {
        if (r.TokenType == JsonTokenType.Number && r.TryGetUInt32(out uint v))
        {
            return v;
        }

        if (r.TokenType == JsonTokenType.String && uint.TryParse(r.ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out v))
        {
            return v;
        }

        if (r.TokenType == JsonTokenType.Null)
        {
            return 0;
        }

        throw new OtlpFormatException($"\"{field}\" must be an unsigned 32-bit integer, got {Describe(ref r)}");
    }

    private static double ReadDouble(ref Utf8JsonReader r, string field)
    {
        if (r.TokenType == JsonTokenType.Number && r.TryGetDouble(out double d))
        {
            return d;
        }

        if (r.TokenType == JsonTokenType.String)
        {
            string s = r.GetString()!;
            switch (s)
            {
                case "NaN":
                    return double.NaN;
                case "Infinity":
                    return double.PositiveInfinity;
                case "-Infinity":
                    return double.NegativeInfinity;
            }

            if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d))
            {
                return d;
            }
        }

        throw new OtlpFormatException($"\"{field}\" must be a number, got {Describe(ref r)}");
    }

    private static readonly string[] s_kindNames = ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"];
    private static readonly string[] s_statusNames = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

    private static int ReadEnum(ref Utf8JsonReader r, string field, string prefix, string[] names)
    {
        if (r.TokenType == JsonTokenType.Number && r.TryGetInt32(out int v))
        {
            return v;
        }

        if (r.TokenType == JsonTokenType.String)
        {
            string s = r.GetString()!;
            for (int i = 0; i < names.Length; i++)
            {
                if (string.Equals(s, names[i], StringComparison.OrdinalIgnoreCase))
                {
                    return i;
                }
            }

            if (int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
            {
                return v;
            }

            throw new OtlpFormatException($"\"{field}\" has unknown value \"{Clip(s)}\" (expected {prefix}* name or integer)");
        }

        if (r.TokenType == JsonTokenType.Null)
        {
            return 0;
        }

        throw new OtlpFormatException($"\"{field}\" must be an integer or enum name, got {Describe(ref r)}");
    }

    private static TraceId ReadTraceId(ref Utf8JsonReader r, string field)
    {
        string s = ReadString(ref r, field);
        if (s.Length == 0)
        {
            return default;
        }

        if (s.Length != 32 || !TraceId.TryParseHex(s, out var id))
        {
            throw new OtlpFormatException($"invalid {field} \"{Clip(s)}\": must be 32 hex characters (16 bytes)");
        }

        return id;
    }

    private static SpanId ReadSpanId(ref Utf8JsonReader r, string field)
    {
        string s = ReadString(ref r, field);
        if (s.Length == 0)
        {
            return default;
        }

        if (s.Length != 16 || !SpanId.TryParseHex(s, out var id))
        {
            throw new OtlpFormatException($"invalid {field} \"{Clip(s)}\": must be 16 hex characters (8 bytes)");
        }

        return id;
    }

    private static string Describe(ref Utf8JsonReader r) => r.TokenType switch
    {
        JsonTokenType.String => "\"" + Clip(r.GetString()!) + "\"",
        JsonTokenType.Number => Encoding.UTF8.GetString(r.ValueSpan),
        _ => r.TokenType.ToString(),
    };

    private static string Clip(string s) => s.Length <= 64 ? s : s[..64] + "…";

    // ====================================================================== encode

    /// <summary>Writes an OTLP/JSON <c>ExportTraceServiceRequest</c> (<c>{"resourceSpans":[…]}</c>, hex ids, integer enums).</summary>
    public static void WriteExportRequest(Trace trace, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteResourceSpansArray(writer, "resourceSpans", trace, Style.Otlp);
        writer.WriteEndObject();
    }

    /// <summary>Tempo v1 <c>GET /api/traces/{id}</c> JSON: <c>{"batches":[…]}</c> (jsonpb shape, see the type remarks).</summary>
    public static void WriteTempoTraceV1(Trace trace, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteResourceSpansArray(writer, "batches", trace, Style.Tempo);
        writer.WriteEndObject();
    }

    /// <summary>
    /// The <c>trace</c> member of Tempo's v2 <c>GET /api/v2/traces/{id}</c> response: <c>{"resourceSpans":[…]}</c>.
    /// The full body is <c>{"trace":&lt;this&gt;,"metrics":{…},"status":"PARTIAL","message":"…"}</c>, status and message
    /// only when partial; <see cref="WriteTempoTraceByIdV2Response"/> writes it whole.
    /// </summary>
    public static void WriteTempoTraceV2(Trace trace, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        WriteResourceSpansArray(writer, "resourceSpans", trace, Style.Tempo);
        writer.WriteEndObject();
    }

    /// <summary>
    /// Tempo's whole v2 <c>TraceByIDResponse</c>: <c>trace</c>, <c>metrics</c> (<c>inspectedBytes</c> as a string, omitted
    /// when 0), and <c>"status":"PARTIAL"</c> plus <c>message</c> when <paramref name="partialMessage"/> is set.
    /// </summary>
    public static void WriteTempoTraceByIdV2Response(Trace trace, Utf8JsonWriter writer, string? partialMessage = null, ulong inspectedBytes = 0)
    {
        writer.WriteStartObject();
        writer.WritePropertyName("trace");
        WriteTempoTraceV2(trace, writer);
        writer.WriteStartObject("metrics");
        if (inspectedBytes != 0)
        {
            writer.WriteString("inspectedBytes", inspectedBytes.ToString(CultureInfo.InvariantCulture));
        }

        writer.WriteEndObject();
        if (!string.IsNullOrEmpty(partialMessage))
        {
            writer.WriteString("status", "PARTIAL");
            writer.WriteString("message", partialMessage);
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// OTLP/HTTP JSON <c>ExportTraceServiceResponse</c>: <c>{}</c> on full success, else
    /// <c>{"partialSuccess":{"rejectedSpans":"N","errorMessage":"…"}}</c> (int64 as a string per the proto3 JSON mapping).
    /// </summary>
    public static void WriteExportResponse(Utf8JsonWriter writer, long rejectedSpans, string? errorMessage)
    {
        writer.WriteStartObject();
        if (rejectedSpans > 0 || !string.IsNullOrEmpty(errorMessage))
        {
            writer.WriteStartObject("partialSuccess");
            if (rejectedSpans != 0)
            {
                writer.WriteString("rejectedSpans", rejectedSpans.ToString(CultureInfo.InvariantCulture));
            }

            if (!string.IsNullOrEmpty(errorMessage))
            {
                writer.WriteString("errorMessage", errorMessage);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static void WriteResourceSpansArray(Utf8JsonWriter w, string name, Trace trace, Style style)
    {
        w.WriteStartArray(name);
        foreach (var rs in trace.ResourceSpans)
        {
            w.WriteStartObject();
            w.WriteStartObject("resource");
            WriteAttributes(w, rs.Resource.Attributes);
            WriteUInt32(w, "droppedAttributesCount", rs.Resource.DroppedAttributesCount);
            w.WriteEndObject();
            if (rs.ScopeSpans.Count > 0)
            {
                w.WriteStartArray("scopeSpans");
                foreach (var ss in rs.ScopeSpans)
                {
                    WriteScopeSpans(w, ss, style);
                }

                w.WriteEndArray();
            }

            WriteNonEmpty(w, "schemaUrl", rs.SchemaUrl);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteScopeSpans(Utf8JsonWriter w, ScopeSpans ss, Style style)
    {
        w.WriteStartObject();
        w.WriteStartObject("scope");
        WriteNonEmpty(w, "name", ss.Scope.Name);
        WriteNonEmpty(w, "version", ss.Scope.Version);
        WriteAttributes(w, ss.Scope.Attributes);
        WriteUInt32(w, "droppedAttributesCount", ss.Scope.DroppedAttributesCount);
        w.WriteEndObject();
        if (ss.Spans.Count > 0)
        {
            w.WriteStartArray("spans");
            foreach (var s in ss.Spans)
            {
                WriteSpan(w, s, style);
            }

            w.WriteEndArray();
        }

        WriteNonEmpty(w, "schemaUrl", ss.SchemaUrl);
        w.WriteEndObject();
    }

    private static void WriteSpan(Utf8JsonWriter w, Span s, Style style)
    {
        w.WriteStartObject();
        WriteTraceId(w, "traceId", s.TraceId, style);
        WriteSpanId(w, "spanId", s.SpanId, style);
        WriteNonEmpty(w, "traceState", s.TraceState);
        WriteSpanId(w, "parentSpanId", s.ParentSpanId, style);
        WriteUInt32(w, "flags", s.Flags);
        WriteNonEmpty(w, "name", s.Name);
        if (s.Kind != 0)
        {
            int k = (int)s.Kind;
            if (style == Style.Tempo && (uint)k < (uint)s_kindNames.Length)
            {
                w.WriteString("kind", s_kindNames[k]);
            }
            else
            {
                w.WriteNumber("kind", k);
            }
        }

        WriteUInt64(w, "startTimeUnixNano", s.StartTimeUnixNano);
        WriteUInt64(w, "endTimeUnixNano", s.EndTimeUnixNano);
        WriteAttributes(w, s.Attributes);
        WriteUInt32(w, "droppedAttributesCount", s.DroppedAttributesCount);
        if (s.Events.Count > 0)
        {
            w.WriteStartArray("events");
            foreach (var e in s.Events)
            {
                w.WriteStartObject();
                WriteUInt64(w, "timeUnixNano", e.TimeUnixNano);
                WriteNonEmpty(w, "name", e.Name);
                WriteAttributes(w, e.Attributes);
                WriteUInt32(w, "droppedAttributesCount", e.DroppedAttributesCount);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        WriteUInt32(w, "droppedEventsCount", s.DroppedEventsCount);
        if (s.Links.Count > 0)
        {
            w.WriteStartArray("links");
            foreach (var l in s.Links)
            {
                w.WriteStartObject();
                WriteTraceId(w, "traceId", l.TraceId, style);
                WriteSpanId(w, "spanId", l.SpanId, style);
                WriteNonEmpty(w, "traceState", l.TraceState);
                WriteAttributes(w, l.Attributes);
                WriteUInt32(w, "droppedAttributesCount", l.DroppedAttributesCount);
                WriteUInt32(w, "flags", l.Flags);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        WriteUInt32(w, "droppedLinksCount", s.DroppedLinksCount);
        if (style == Style.Tempo || s.StatusCode != 0 || s.StatusMessage.Length > 0)
        {
            w.WriteStartObject("status");
            WriteNonEmpty(w, "message", s.StatusMessage);
            if (s.StatusCode != 0)
            {
                int c = (int)s.StatusCode;
                if (style == Style.Tempo && (uint)c < (uint)s_statusNames.Length)
                {
                    w.WriteString("code", s_statusNames[c]);
                }
                else
                {
                    w.WriteNumber("code", c);
                }
            }

            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void WriteAttributes(Utf8JsonWriter w, List<KeyValue> attributes, string name = "attributes")
    {
        if (attributes.Count == 0)
        {
            return;
        }

        w.WriteStartArray(name);
        foreach (var kv in attributes)
        {
            WriteKeyValue(w, kv);
        }

        w.WriteEndArray();
    }

    private static void WriteKeyValue(Utf8JsonWriter w, KeyValue kv)
    {
        w.WriteStartObject();
        WriteNonEmpty(w, "key", kv.Key);
        w.WritePropertyName("value");
        WriteAnyValue(w, kv.Value);
        w.WriteEndObject();
    }

    private static void WriteAnyValue(Utf8JsonWriter w, AnyValue v)
    {
        w.WriteStartObject();
        switch (v.Kind)
        {
            case AnyValueKind.String:
                w.WriteString("stringValue", v.StringValue);
                break;
            case AnyValueKind.Bool:
                w.WriteBoolean("boolValue", v.BoolValue);
                break;
            case AnyValueKind.Int:
                w.WriteString("intValue", v.IntValue.ToString(CultureInfo.InvariantCulture));
                break;
            case AnyValueKind.Double:
                {
                    double d = v.DoubleValue;
                    if (double.IsNaN(d))
                    {
                        w.WriteString("doubleValue", "NaN");
                    }
                    else if (double.IsPositiveInfinity(d))
                    {
                        w.WriteString("doubleValue", "Infinity");
                    }
                    else if (double.IsNegativeInfinity(d))
                    {
                        w.WriteString("doubleValue", "-Infinity");
                    }
                    else
                    {
                        w.WriteNumber("doubleValue", d);
                    }

                    break;
                }

            case AnyValueKind.Array:
                w.WriteStartObject("arrayValue");
                if (v.ArrayValue!.Count > 0)
                {
                    w.WriteStartArray("values");
                    foreach (var item in v.ArrayValue)
                    {
                        WriteAnyValue(w, item);
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
                break;
            case AnyValueKind.KvList:
                w.WriteStartObject("kvlistValue");
                if (v.KvListValue!.Count > 0)
                {
                    w.WriteStartArray("values");
                    foreach (var kv in v.KvListValue)
                    {
                        WriteKeyValue(w, kv);
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
                break;
            case AnyValueKind.Bytes:
                w.WriteBase64String("bytesValue", v.BytesValue);
                break;
            default:
                break;
        }

        w.WriteEndObject();
    }

    private static void WriteNonEmpty(Utf8JsonWriter w, string name, string value)
    {
        if (value.Length > 0)
        {
            w.WriteString(name, value);
        }
    }

    private static void WriteUInt32(Utf8JsonWriter w, string name, uint value)
    {
        if (value != 0)
        {
            w.WriteNumber(name, value);
        }
    }

    private static void WriteUInt64(Utf8JsonWriter w, string name, ulong value)
    {
        if (value != 0)
        {
            w.WriteString(name, value.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static void WriteTraceId(Utf8JsonWriter w, string name, TraceId id, Style style)
    {
        if (id.IsEmpty)
        {
            return;
        }

        Span<byte> b = stackalloc byte[TraceId.Size];
        id.WriteTo(b);
        if (style == Style.Tempo)
        {
            w.WriteBase64String(name, b);
        }
        else
        {
            w.WriteString(name, id.ToHex());
        }
    }

    private static void WriteSpanId(Utf8JsonWriter w, string name, SpanId id, Style style)
    {
        if (id.IsEmpty)
        {
            return;
        }

        Span<byte> b = stackalloc byte[SpanId.Size];
        id.WriteTo(b);
        if (style == Style.Tempo)
        {
            w.WriteBase64String(name, b);
        }
        else
        {
            w.WriteString(name, id.ToHex());
        }
    }
}
