using System.Globalization;
using System.Text.Json;

namespace Rubato.Receivers.Zipkin;

/// <summary>
/// Decodes Zipkin JSON span lists: v2 (<c>POST /api/v2/spans</c>) and v1 (<c>POST /api/v1/spans</c>, what the npm
/// <c>zipkin-transport-http</c> sends by default). v1 spans are converted to the v2 model the way Zipkin's own
/// V1SpanConverter does: core annotations (cs/cr/sr/ss/ms/mr) give kind and timing, address annotations
/// (sa/ca/ma) give the remote endpoint, and a v1 span carrying both client and server sides becomes two spans,
/// the server one shared.
/// </summary>
/// <remarks>Pure and thread-safe. Errors are <see cref="TraceFormatException"/> naming the span index and field.</remarks>
public static class ZipkinJsonDecoder
{
    private static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Skip, MaxDepth = 64 };

    public static List<ZipkinSpan> DecodeV2(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json, ReaderOptions);
        var spans = new List<ZipkinSpan>();
        try
        {
            Read(ref r);
            if (r.TokenType != JsonTokenType.StartArray)
            {
                throw new TraceFormatException("zipkin: expected a JSON array of spans", r.TokenStartIndex);
            }

            while (true)
            {
                Read(ref r);
                if (r.TokenType == JsonTokenType.EndArray)
                {
                    break;
                }

                if (r.TokenType != JsonTokenType.StartObject)
                {
                    throw new TraceFormatException($"zipkin: span {spans.Count} is not a JSON object", r.TokenStartIndex);
                }

                spans.Add(ReadV2Span(ref r, spans.Count));
            }

            if (r.Read())
            {
                throw new TraceFormatException("zipkin: unexpected data after the span array", r.TokenStartIndex);
            }
        }
        catch (JsonException e)
        {
            throw new TraceFormatException($"zipkin: invalid JSON: {e.Message}", e);
        }

        return spans;
    }

    private static void Read(ref Utf8JsonReader r)
    {
        if (!r.Read())
        {
            throw new TraceFormatException("zipkin: unexpected end of JSON", r.BytesConsumed);
        }
    }

    private static ZipkinSpan ReadV2Span(ref Utf8JsonReader r, int index)
    {
        var s = new ZipkinSpan();
        bool sawTrace = false, sawId = false;
        while (true)
        {
            Read(ref r);
            if (r.TokenType == JsonTokenType.EndObject)
            {
                break;
            }

            string prop = r.GetString()!;
            Read(ref r);
            if (r.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            switch (prop)
            {
                case "traceId":
                    s.TraceId = ReadString(ref r, index, prop);
                    sawTrace = true;
                    break;
                case "id":
                    s.Id = ReadString(ref r, index, prop);
                    sawId = true;
                    break;
                case "parentId":
                    s.ParentId = ReadString(ref r, index, prop);
                    break;
                case "name":
                    s.Name = ReadString(ref r, index, prop);
                    break;
                case "kind":
                    s.Kind = ReadString(ref r, index, prop);
                    break;
                case "timestamp":
                    s.Timestamp = ReadInt64(ref r, index, prop);
                    break;
                case "duration":
                    s.Duration = ReadInt64(ref r, index, prop);
                    break;
                case "debug":
                    s.Debug = ReadBool(ref r, index, prop);
                    break;
                case "shared":
                    s.Shared = ReadBool(ref r, index, prop);
                    break;
                case "localEndpoint":
                    s.LocalEndpoint = ReadEndpoint(ref r, index, prop);
                    break;
                case "remoteEndpoint":
                    s.RemoteEndpoint = ReadEndpoint(ref r, index, prop);
                    break;
                case "annotations":
                    ReadAnnotations(ref r, index, s);
                    break;
                case "tags":
                    ReadTags(ref r, index, s);
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        if (!sawTrace || !sawId)
        {
            throw new TraceFormatException($"zipkin: span {index} has no {(sawTrace ? "id" : "traceId")}");
        }

        return s;
    }

    private static void ReadAnnotations(ref Utf8JsonReader r, int index, ZipkinSpan s)
    {
        Expect(ref r, JsonTokenType.StartArray, index, "annotations");
        while (true)
        {
            Read(ref r);
            if (r.TokenType == JsonTokenType.EndArray)
            {
                return;
            }

            Expect(ref r, JsonTokenType.StartObject, index, "annotations[]");
            long ts = 0;
            string value = string.Empty;
            while (true)
            {
                Read(ref r);
                if (r.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }

                string prop = r.GetString()!;
                Read(ref r);
                switch (prop)
                {
                    case "timestamp" when r.TokenType != JsonTokenType.Null:
                        ts = ReadInt64(ref r, index, "annotations.timestamp");
                        break;
                    case "value" when r.TokenType != JsonTokenType.Null:
                        value = ReadString(ref r, index, "annotations.value");
                        break;
                    default:
                        r.Skip();
                        break;
                }
            }

            s.Annotations.Add(new ZipkinAnnotation(ts, value));
        }
    }

    private static void ReadTags(ref Utf8JsonReader r, int index, ZipkinSpan s)
    {
        Expect(ref r, JsonTokenType.StartObject, index, "tags");
        while (true)
        {
            Read(ref r);
            if (r.TokenType == JsonTokenType.EndObject)
            {
                return;
            }

            string key = r.GetString()!;
            Read(ref r);
            string? value = ScalarAsString(ref r);
            if (value is null)
            {
                if (r.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    throw new TraceFormatException($"zipkin: span {index} tag '{key}' must be a string", r.TokenStartIndex);
                }

                continue;
            }

            s.SetTag(key, value);
        }
    }

    /// <summary>Strings as-is; numbers and bools (which some clients send despite the v2 schema) as their JSON text.</summary>
    private static string? ScalarAsString(ref Utf8JsonReader r) => r.TokenType switch
    {
        JsonTokenType.String => r.GetString(),
        JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(r.ValueSpan),
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        _ => null,
    };

    private static ZipkinEndpoint ReadEndpoint(ref Utf8JsonReader r, int index, string field)
    {
        Expect(ref r, JsonTokenType.StartObject, index, field);
        var e = new ZipkinEndpoint();
        while (true)
        {
            Read(ref r);
            if (r.TokenType == JsonTokenType.EndObject)
            {
                return e;
            }

            string prop = r.GetString()!;
            Read(ref r);
            if (r.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            switch (prop)
            {
                case "serviceName":
                    e.ServiceName = ReadString(ref r, index, field + ".serviceName");
                    break;
                case "ipv4":
                    e.Ipv4 = ReadString(ref r, index, field + ".ipv4");
                    break;
                case "ipv6":
                    e.Ipv6 = ReadString(ref r, index, field + ".ipv6");
                    break;
                case "port":
                    e.Port = (int)ReadInt64(ref r, index, field + ".port");
                    break;
                default:
                    r.Skip();
                    break;
            }
        }
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType t, int index, string field)
    {
        if (r.TokenType != t)
        {
            throw new TraceFormatException($"zipkin: span {index} field '{field}' must be {(t == JsonTokenType.StartArray ? "an array" : "an object")}", r.TokenStartIndex);
        }
    }

    private static string ReadString(ref Utf8JsonReader r, int index, string field)
    {
        if (r.TokenType != JsonTokenType.String)
        {
            throw new TraceFormatException($"zipkin: span {index} field '{field}' must be a string", r.TokenStartIndex);
        }

        return r.GetString()!;
    }

    private static bool ReadBool(ref Utf8JsonReader r, int index, string field) => r.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        _ => throw new TraceFormatException($"zipkin: span {index} field '{field}' must be a boolean", r.TokenStartIndex),
    };

    private static long ReadInt64(ref Utf8JsonReader r, int index, string field)
    {
        if (r.TokenType == JsonTokenType.Number)
        {
            if (r.TryGetInt64(out long v))
            {
                return v;
            }

            if (r.TryGetDouble(out double d) && d is >= long.MinValue and <= long.MaxValue)
            {
                return (long)d;
            }
        }
        else if (r.TokenType == JsonTokenType.String
            && long.TryParse(r.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long sv))
        {
            return sv;
        }

        throw new TraceFormatException($"zipkin: span {index} field '{field}' must be an integer", r.TokenStartIndex);
    }

    // ---- v1 ----

    /// <summary>Decodes a Zipkin v1 JSON span list and converts it to the v2 model.</summary>
    public static List<ZipkinSpan> DecodeV1(ReadOnlySpan<byte> json)
    {
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(json, ReaderOptions);
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new TraceFormatException($"zipkin: invalid JSON: {e.Message}", e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new TraceFormatException("zipkin: expected a JSON array of spans");
            }

            var result = new List<ZipkinSpan>();
            int index = 0;
            foreach (var el in doc.RootElement.EnumerateArray())
            {
                if (el.ValueKind != JsonValueKind.Object)
                {
                    throw new TraceFormatException($"zipkin: span {index} is not a JSON object");
                }

                ZipkinV1Converter.Convert(el, index, result);
                index++;
            }

            return result;
        }
    }
}
