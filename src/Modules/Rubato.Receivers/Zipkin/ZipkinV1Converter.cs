using System.Globalization;
using System.Text.Json;

namespace Rubato.Receivers.Zipkin;

/// <summary>Converts one Zipkin v1 JSON span into one or two v2 spans (see <see cref="ZipkinJsonDecoder"/>).</summary>
internal static class ZipkinV1Converter
{
    private sealed class Part
    {
        public required ZipkinSpan Span { get; init; }

        public long? Begin { get; set; }

        public long? End { get; set; }
    }

    public static void Convert(JsonElement el, int index, List<ZipkinSpan> output)
    {
        string traceId = RequiredString(el, "traceId", index);
        string id = RequiredString(el, "id", index);
        string? parentId = OptionalString(el, "parentId", index);
        string? name = OptionalString(el, "name", index);
        long? timestamp = OptionalInt64(el, "timestamp", index);
        long? duration = OptionalInt64(el, "duration", index);
        bool debug = el.TryGetProperty("debug", out var d) && d.ValueKind == JsonValueKind.True;

        Part? client = null, server = null, producer = null, consumer = null;
        var plainAnnotations = new List<(ZipkinAnnotation Annotation, ZipkinEndpoint? Endpoint)>();
        ZipkinEndpoint? anyEndpoint = null;

        ZipkinSpan NewSpan(string? kind, ZipkinEndpoint? local) => new()
        {
            TraceId = traceId,
            Id = id,
            ParentId = parentId,
            Name = name,
            Kind = kind,
            Debug = debug,
            LocalEndpoint = local,
        };

        if (el.TryGetProperty("annotations", out var anns) && anns.ValueKind == JsonValueKind.Array)
        {
            foreach (var a in anns.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object)
                {
                    throw new TraceFormatException($"zipkin v1: span {index} annotation is not an object");
                }

                long ts = OptionalInt64(a, "timestamp", index) ?? 0;
                string value = OptionalString(a, "value", index) ?? string.Empty;
                var ep = ReadEndpoint(a, index);
                anyEndpoint ??= ep;
                switch (value)
                {
                    case "cs":
                        (client ??= new Part { Span = NewSpan("CLIENT", ep) }).Begin = ts;
                        break;
                    case "cr":
                        (client ??= new Part { Span = NewSpan("CLIENT", ep) }).End = ts;
                        break;
                    case "sr":
                        (server ??= new Part { Span = NewSpan("SERVER", ep) }).Begin = ts;
                        break;
                    case "ss":
                        (server ??= new Part { Span = NewSpan("SERVER", ep) }).End = ts;
                        break;
                    case "ms":
                        (producer ??= new Part { Span = NewSpan("PRODUCER", ep) }).Begin = ts;
                        break;
                    case "ws":
                        (producer ??= new Part { Span = NewSpan("PRODUCER", ep) }).End = ts;
                        break;
                    case "mr":
                        (consumer ??= new Part { Span = NewSpan("CONSUMER", ep) }).Begin = ts;
                        break;
                    case "wr":
                        (consumer ??= new Part { Span = NewSpan("CONSUMER", ep) }).End = ts;
                        break;
                    default:
                        plainAnnotations.Add((new ZipkinAnnotation(ts, value), ep));
                        break;
                }
            }
        }

        var tags = new List<(string Key, string Value, ZipkinEndpoint? Endpoint)>();
        ZipkinEndpoint? sa = null, ca = null, ma = null, lc = null;
        if (el.TryGetProperty("binaryAnnotations", out var bins) && bins.ValueKind == JsonValueKind.Array)
        {
            foreach (var b in bins.EnumerateArray())
            {
                if (b.ValueKind != JsonValueKind.Object)
                {
                    throw new TraceFormatException($"zipkin v1: span {index} binary annotation is not an object");
                }

                string key = RequiredString(b, "key", index);
                var ep = ReadEndpoint(b, index);
                string value = b.TryGetProperty("value", out var v) ? ScalarText(v) : string.Empty;
                switch (key)
                {
                    case "sa":
                        sa = ep;
                        break;
                    case "ca":
                        ca = ep;
                        break;
                    case "ma":
                        ma = ep;
                        break;
                    case "lc":
                        lc = ep;
                        anyEndpoint ??= ep;
                        if (value.Length > 0)
                        {
                            tags.Add((key, value, ep));
                        }

                        break;
                    default:
                        anyEndpoint ??= ep;
                        tags.Add((key, value, ep));
                        break;
                }
            }
        }

        var parts = new List<Part>(2);
        foreach (var p in new[] { client, server, producer, consumer })
        {
            if (p is not null)
            {
                parts.Add(p);
            }
        }

        if (parts.Count == 0)
        {
            parts.Add(new Part { Span = NewSpan(null, lc ?? anyEndpoint) });
        }

        foreach (var p in parts)
        {
            var s = p.Span;
            if (p.Begin is long begin)
            {
                s.Timestamp = begin;
                if (p.End is long end && end >= begin)
                {
                    s.Duration = end - begin;
                }
            }

            s.RemoteEndpoint = s.Kind switch
            {
                "CLIENT" => sa,
                "SERVER" => ca,
                "PRODUCER" or "CONSUMER" => ma,
                _ => null,
            };
        }

        // The v1 timestamp/duration belong to the side that owns the span: the first one found (client before server).
        var owner = parts[0];
        if (timestamp is not null)
        {
            owner.Span.Timestamp ??= timestamp;
            if (duration is not null && (owner.Begin is null || owner.End is null))
            {
                owner.Span.Duration = duration;
            }
        }

        // A server side that shares its id with a client (both in this span, or reported without a timestamp) is shared.
        if (server is not null && (client is not null || timestamp is null))
        {
            server.Span.Shared = true;
        }

        foreach (var (ann, ep) in plainAnnotations)
        {
            Route(parts, ep).Span.Annotations.Add(ann);
        }

        foreach (var (key, value, ep) in tags)
        {
            Route(parts, ep).Span.SetTag(key, value);
        }

        foreach (var p in parts)
        {
            output.Add(p.Span);
        }
    }

    /// <summary>Annotations go to the part whose local service matches their endpoint, else the first part.</summary>
    private static Part Route(List<Part> parts, ZipkinEndpoint? ep)
    {
        if (ep?.ServiceName is { } svc)
        {
            foreach (var p in parts)
            {
                if (string.Equals(p.Span.LocalEndpoint?.ServiceName, svc, StringComparison.Ordinal))
                {
                    return p;
                }
            }
        }

        return parts[0];
    }

    private static string ScalarText(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Number => v.GetRawText(),
        JsonValueKind.Null => string.Empty,
        _ => v.GetRawText(),
    };

    private static ZipkinEndpoint? ReadEndpoint(JsonElement owner, int index)
    {
        if (!owner.TryGetProperty("endpoint", out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new TraceFormatException($"zipkin v1: span {index} endpoint is not an object");
        }

        var ep = new ZipkinEndpoint
        {
            ServiceName = OptionalString(e, "serviceName", index),
            Ipv4 = OptionalString(e, "ipv4", index),
            Ipv6 = OptionalString(e, "ipv6", index),
            Port = (int)(OptionalInt64(e, "port", index) ?? 0),
        };
        return ep;
    }

    private static string RequiredString(JsonElement el, string prop, int index) =>
        OptionalString(el, prop, index) ?? throw new TraceFormatException($"zipkin v1: span {index} has no {prop}");

    private static string? OptionalString(JsonElement el, string prop, int index)
    {
        if (!el.TryGetProperty(prop, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : throw new TraceFormatException($"zipkin v1: span {index} field '{prop}' must be a string");
    }

    private static long? OptionalInt64(JsonElement el, string prop, int index)
    {
        if (!el.TryGetProperty(prop, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt64(out long l))
            {
                return l;
            }

            if (v.TryGetDouble(out double dd) && dd is >= long.MinValue and <= long.MaxValue)
            {
                return (long)dd;
            }
        }
        else if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long s))
        {
            return s;
        }

        throw new TraceFormatException($"zipkin v1: span {index} field '{prop}' must be an integer");
    }
}
