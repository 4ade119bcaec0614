using System.Globalization;
using System.Text.Json;

namespace Rubato.Integration.Tests.Harness;

/// <summary>An event as returned by the query API, normalised.</summary>
public sealed record EventView(string Name, ulong TimeUnixNano, IReadOnlyDictionary<string, object?> Attributes);

/// <summary>A link as returned by the query API, ids as lower-case hex.</summary>
public sealed record LinkView(string TraceId, string SpanId, IReadOnlyDictionary<string, object?> Attributes);

/// <summary>
/// A span from <c>GET /api/traces/{id}</c>, normalised so assertions do not depend on encoding choices: ids are
/// lower-case hex whether the server sent hex or base64, kinds and status codes are the OTLP enum names whether sent
/// as names or numbers, and attribute values are string/long/double/bool/object?[].
/// </summary>
public sealed record SpanView(
    string TraceId,
    string SpanId,
    string ParentSpanId,
    string Name,
    string Kind,
    ulong StartTimeUnixNano,
    ulong EndTimeUnixNano,
    IReadOnlyDictionary<string, object?> Attributes,
    IReadOnlyList<EventView> Events,
    IReadOnlyList<LinkView> Links,
    string StatusCode,
    string StatusMessage,
    IReadOnlyDictionary<string, object?> Resource,
    string ScopeName,
    string ScopeVersion);

/// <summary>Parses Tempo's OTLP-JSON trace responses.</summary>
public static class TraceJson
{
    private static readonly string[] Kinds =
        ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"];

    private static readonly string[] Statuses = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

    /// <summary>Parses <c>{"batches":[...]}</c> (v1), <c>{"trace":{"batches":[...]}}</c> (v2) or <c>{"resourceSpans":[...]}</c>.</summary>
    public static List<SpanView> Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("trace", out var wrapped))
        {
            root = wrapped;
        }

        var spans = new List<SpanView>();
        if (!root.TryGetProperty("batches", out var batches) && !root.TryGetProperty("resourceSpans", out batches))
        {
            return spans;
        }

        foreach (var rs in batches.EnumerateArray())
        {
            var resource = rs.TryGetProperty("resource", out var r) ? Attributes(r) : new Dictionary<string, object?>();
            var scopes = rs.TryGetProperty("scopeSpans", out var ss) ? ss : rs.TryGetProperty("instrumentationLibrarySpans", out ss) ? ss : default;
            if (scopes.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            foreach (var scopeSpans in scopes.EnumerateArray())
            {
                string scopeName = "", scopeVersion = "";
                if (scopeSpans.TryGetProperty("scope", out var scope) || scopeSpans.TryGetProperty("instrumentationLibrary", out scope))
                {
                    scopeName = Str(scope, "name");
                    scopeVersion = Str(scope, "version");
                }

                if (!scopeSpans.TryGetProperty("spans", out var list))
                {
                    continue;
                }

                foreach (var s in list.EnumerateArray())
                {
                    var events = new List<EventView>();
                    if (s.TryGetProperty("events", out var evs))
                    {
                        foreach (var e in evs.EnumerateArray())
                        {
                            events.Add(new EventView(Str(e, "name"), U64(e, "timeUnixNano"), Attributes(e)));
                        }
                    }

                    var links = new List<LinkView>();
                    if (s.TryGetProperty("links", out var lks))
                    {
                        foreach (var l in lks.EnumerateArray())
                        {
                            links.Add(new LinkView(Id(Str(l, "traceId"), 16), Id(Str(l, "spanId"), 8), Attributes(l)));
                        }
                    }

                    string statusCode = Statuses[0], statusMessage = "";
                    if (s.TryGetProperty("status", out var st))
                    {
                        statusCode = Enum(st, "code", Statuses, "STATUS_CODE_UNSET");
                        statusMessage = Str(st, "message");
                    }

                    spans.Add(new SpanView(
                        Id(Str(s, "traceId"), 16),
                        Id(Str(s, "spanId"), 8),
                        Id(Str(s, "parentSpanId"), 8),
                        Str(s, "name"),
                        Enum(s, "kind", Kinds, "SPAN_KIND_UNSPECIFIED"),
                        U64(s, "startTimeUnixNano"),
                        U64(s, "endTimeUnixNano"),
                        Attributes(s),
                        events,
                        links,
                        statusCode,
                        statusMessage,
                        resource,
                        scopeName,
                        scopeVersion));
                }
            }
        }

        return spans;
    }

    /// <summary>Hex as-is (lower-cased, left-padded to the id size), or base64 decoded to hex; "" for absent/empty ids.</summary>
    public static string Id(string value, int size)
    {
        if (value.Length == 0)
        {
            return "";
        }

        if (value.Length <= size * 2 && value.All(Uri.IsHexDigit))
        {
            string hex = value.ToLowerInvariant().PadLeft(size * 2, '0');
            return hex.All(c => c == '0') ? "" : hex;
        }

        byte[] bytes = Convert.FromBase64String(value);
        string b = Convert.ToHexStringLower(bytes).PadLeft(size * 2, '0');
        return b.All(c => c == '0') ? "" : b;
    }

    private static Dictionary<string, object?> Attributes(JsonElement owner)
    {
        var result = new Dictionary<string, object?>();
        if (owner.TryGetProperty("attributes", out var attrs) && attrs.ValueKind == JsonValueKind.Array)
        {
            foreach (var kv in attrs.EnumerateArray())
            {
                result[Str(kv, "key")] = kv.TryGetProperty("value", out var v) ? Value(v) : null;
            }
        }

        return result;
    }

    private static object? Value(JsonElement v)
    {
        if (v.TryGetProperty("stringValue", out var s))
        {
            return s.GetString();
        }

        if (v.TryGetProperty("intValue", out var i))
        {
            return i.ValueKind == JsonValueKind.String ? long.Parse(i.GetString()!, CultureInfo.InvariantCulture) : i.GetInt64();
        }

        if (v.TryGetProperty("doubleValue", out var d))
        {
            return d.ValueKind == JsonValueKind.String ? double.Parse(d.GetString()!, CultureInfo.InvariantCulture) : d.GetDouble();
        }

        if (v.TryGetProperty("boolValue", out var b))
        {
            return b.GetBoolean();
        }

        if (v.TryGetProperty("arrayValue", out var a))
        {
            return a.TryGetProperty("values", out var values) ? values.EnumerateArray().Select(Value).ToArray() : Array.Empty<object?>();
        }

        if (v.TryGetProperty("bytesValue", out var bytes))
        {
            return Convert.FromBase64String(bytes.GetString()!);
        }

        return null;
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    private static ulong U64(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v))
        {
            return 0;
        }

        return v.ValueKind == JsonValueKind.String ? ulong.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetUInt64();
    }

    private static string Enum(JsonElement e, string name, string[] names, string absent)
    {
        if (!e.TryGetProperty(name, out var v))
        {
            return absent;
        }

        if (v.ValueKind == JsonValueKind.Number)
        {
            int n = v.GetInt32();
            return n >= 0 && n < names.Length ? names[n] : n.ToString(CultureInfo.InvariantCulture);
        }

        return v.GetString() ?? absent;
    }
}
