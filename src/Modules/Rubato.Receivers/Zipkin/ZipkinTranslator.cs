using System.Globalization;
using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.Receivers.Zipkin;

/// <summary>
/// Zipkin v2 spans → the span model, by the OpenTelemetry Collector's zipkinv2 rules:
/// <list type="bullet">
/// <item>one resource per <c>localEndpoint.serviceName</c> (<c>service.name</c>; absent → no service.name), and tags
/// named like resource semantic conventions (e.g. <c>host.name</c>, <c>telemetry.sdk.language</c>) move to it;</item>
/// <item>scope from <c>otel.scope.name</c>/<c>otel.library.name</c> (+ version) tags;</item>
/// <item>64-bit ids are left-padded to 128; a parent equal to the span's own id is ignored;</item>
/// <item>kind from <c>kind</c> (or <c>span.kind=internal</c>); status from <c>otel.status_code</c> +
/// <c>otel.status_description</c>, then any <c>error</c> tag (kept as an attribute unless it is <c>true</c>); <c>w3c.tracestate</c> → trace state;</item>
/// <item>annotations → events (<c>name|{json attributes}|dropped</c> is unpacked); <c>otlp.link.N</c> tags → links;
/// other tags stay string attributes;</item>
/// <item>local endpoint → <c>net.host.ip</c>/<c>net.host.port</c>, remote → <c>peer.service</c>,
/// <c>net.peer.ip</c>, <c>net.peer.port</c>;</item>
/// <item>a missing timestamp gives start 0 and attribute <c>otel.zipkin.absentField.startTime=true</c>.</item>
/// </list>
/// </summary>
public static class ZipkinTranslator
{
    public const string StartTimeAbsentKey = "otel.zipkin.absentField.startTime";

    /// <summary>Tag the collector uses to name the resource attribute that holds the service name.</summary>
    private const string ServiceNameSourceKey = "otlp.service.name.source";

    private static readonly HashSet<string> ResourceKeys = new(StringComparer.Ordinal)
    {
        "service.name", "service.namespace", "service.instance.id", "service.version",
        "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version", "telemetry.auto.version",
        "container.name", "container.id", "container.runtime", "container.image.name", "container.image.tag",
        "deployment.environment", "device.id", "device.model.identifier", "device.model.name",
        "faas.name", "faas.id", "faas.version", "faas.instance", "faas.max_memory",
        "host.id", "host.name", "host.type", "host.arch", "host.image.name", "host.image.id", "host.image.version",
        "k8s.cluster.name", "k8s.node.name", "k8s.node.uid", "k8s.namespace.name", "k8s.pod.uid", "k8s.pod.name",
        "k8s.container.name", "k8s.replicaset.uid", "k8s.replicaset.name", "k8s.deployment.uid", "k8s.deployment.name",
        "k8s.statefulset.uid", "k8s.statefulset.name", "k8s.daemonset.uid", "k8s.daemonset.name", "k8s.job.uid",
        "k8s.job.name", "k8s.cronjob.uid", "k8s.cronjob.name",
        "os.type", "os.description", "os.name", "os.version",
        "process.pid", "process.executable.name", "process.executable.path", "process.command", "process.command_line",
        "process.command_args", "process.owner", "process.runtime.name", "process.runtime.version",
        "process.runtime.description",
        "cloud.provider", "cloud.account.id", "cloud.region", "cloud.availability_zone", "cloud.platform",
        "webengine.name", "webengine.version", "webengine.description",
        "opencensus.starttime", "opencensus.exporterversion", "opencensus.resourcetype",
    };

    public static Trace ToTrace(IReadOnlyList<ZipkinSpan> spans)
    {
        var trace = new Trace();
        var byService = new Dictionary<string, ResourceSpans>(StringComparer.Ordinal);
        for (int i = 0; i < spans.Count; i++)
        {
            var z = spans[i];
            var tags = z.Tags;
            string? service = string.IsNullOrEmpty(z.LocalEndpoint?.ServiceName) ? null : z.LocalEndpoint!.ServiceName;
            if (!byService.TryGetValue(service ?? string.Empty, out var rs))
            {
                rs = new ResourceSpans { Resource = BuildResource(service, tags) };
                byService.Add(service ?? string.Empty, rs);
                trace.ResourceSpans.Add(rs);
            }

            string scopeName = Tag(tags, "otel.scope.name") ?? Tag(tags, "otel.library.name") ?? string.Empty;
            string scopeVersion = Tag(tags, "otel.scope.version") ?? Tag(tags, "otel.library.version") ?? string.Empty;
            ScopeSpans? ss = null;
            foreach (var candidate in rs.ScopeSpans)
            {
                if (candidate.Scope.Name == scopeName && candidate.Scope.Version == scopeVersion)
                {
                    ss = candidate;
                    break;
                }
            }

            if (ss is null)
            {
                ss = new ScopeSpans { Scope = new InstrumentationScope { Name = scopeName, Version = scopeVersion } };
                rs.ScopeSpans.Add(ss);
            }

            ss.Spans.Add(ToSpan(z, i));
        }

        return trace;
    }

    private static Resource BuildResource(string? service, List<KeyValuePair<string, string>> tags)
    {
        var r = new Resource();
        if (service is null)
        {
            return r;
        }

        string nameKey = Tag(tags, ServiceNameSourceKey) is { Length: > 0 } src ? src : "service.name";
        r.Attributes.Add(new KeyValue(nameKey, AnyValue.String(service)));
        foreach (var (k, v) in tags)
        {
            if (k != "service.name" && ResourceKeys.Contains(k))
            {
                r.Attributes.Add(new KeyValue(k, AnyValue.String(v)));
            }
        }

        return r;
    }

    private static Span ToSpan(ZipkinSpan z, int index)
    {
        var span = new Span
        {
            TraceId = ParseTraceId(z.TraceId, index),
            SpanId = ParseSpanId(z.Id, index, "id"),
            Name = z.Name ?? string.Empty,
        };
        if (!string.IsNullOrEmpty(z.ParentId))
        {
            var parent = ParseSpanId(z.ParentId, index, "parentId");
            if (parent != span.SpanId)
            {
                span.ParentSpanId = parent;
            }
        }

        var tags = z.Tags;
        bool internalTag = false;
        string? statusCode = null, statusDescription = null;
        bool errorTag = false, errorTrue = false;
        foreach (var (k, v) in tags)
        {
            switch (k)
            {
                case "w3c.tracestate":
                    span.TraceState = v;
                    break;
                case "span.kind":
                    internalTag = v == "internal";
                    break;
                case "otel.status_code":
                    statusCode = v;
                    break;
                case "otel.status_description":
                    statusDescription = v;
                    break;
                case "error":
                    errorTag = true;
                    errorTrue = v == "true";
                    break;
            }
        }

        span.Kind = z.Kind?.ToUpperInvariant() switch
        {
            "CLIENT" => SpanKind.Client,
            "SERVER" => SpanKind.Server,
            "PRODUCER" => SpanKind.Producer,
            "CONSUMER" => SpanKind.Consumer,
            _ => internalTag ? SpanKind.Internal : SpanKind.Unspecified,
        };
        bool kindTagConsumed = span.Kind is SpanKind.Internal || z.Kind is null or "";

        if (statusCode is not null)
        {
            span.StatusCode = statusCode switch
            {
                "STATUS_CODE_OK" or "OK" => StatusCode.Ok,
                "STATUS_CODE_ERROR" or "ERROR" => StatusCode.Error,
                _ => StatusCode.Unset,
            };
            span.StatusMessage = statusDescription ?? string.Empty;
        }

        // Any error tag marks the span failed (Zipkin tracers put the error message there); only "true" is dropped.
        if (errorTag)
        {
            span.StatusCode = StatusCode.Error;
        }

        int linkTags = AddLinks(span, tags, index);
        foreach (var (k, v) in tags)
        {
            bool skip = k switch
            {
                "w3c.tracestate" => true,
                "span.kind" => kindTagConsumed,
                "otel.status_code" => true,
                "otel.status_description" => statusCode is not null,
                "error" => errorTrue,
                "otel.scope.name" or "otel.scope.version" or "otel.library.name" or "otel.library.version" => true,
                _ when linkTags > 0 && k.StartsWith("otlp.link.", StringComparison.Ordinal) && LinkTagIndex(k) < linkTags => true,
                ServiceNameSourceKey => true,
                _ => ResourceKeys.Contains(k),
            };
            if (!skip)
            {
                span.Attributes.Add(new KeyValue(k, AnyValue.String(v)));
            }
        }

        if (z.LocalEndpoint is { } local)
        {
            AddIp(span, "net.host.ip", local);
            if (local.Port > 0)
            {
                span.Attributes.Add(new KeyValue("net.host.port", AnyValue.Int(local.Port)));
            }
        }

        if (z.RemoteEndpoint is { } remote)
        {
            if (!string.IsNullOrEmpty(remote.ServiceName))
            {
                span.Attributes.Add(new KeyValue("peer.service", AnyValue.String(remote.ServiceName)));
            }

            AddIp(span, "net.peer.ip", remote);
            if (remote.Port > 0)
            {
                span.Attributes.Add(new KeyValue("net.peer.port", AnyValue.Int(remote.Port)));
            }
        }

        ulong durationNs = z.Duration is > 0 ? (ulong)z.Duration.Value * 1000UL : 0;
        if (z.Timestamp is > 0)
        {
            span.StartTimeUnixNano = (ulong)z.Timestamp.Value * 1000UL;
            span.EndTimeUnixNano = span.StartTimeUnixNano + durationNs;
        }
        else
        {
            span.StartTimeUnixNano = 0;
            span.EndTimeUnixNano = durationNs;
            span.Attributes.Add(new KeyValue(StartTimeAbsentKey, AnyValue.Bool(true)));
        }

        foreach (var a in z.Annotations)
        {
            span.Events.Add(ToEvent(a, index));
        }

        return span;
    }

    /// <summary><c>otlp.link.0</c>, <c>otlp.link.1</c>, … (up to 127), as OTel's Zipkin exporter writes links.</summary>
    private static int LinkTagIndex(string key) =>
        int.TryParse(key.AsSpan("otlp.link.".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : int.MaxValue;

    /// <summary>
    /// Links from <c>otlp.link.N</c> tags, read in order from 0 until the first missing index (the collector's rule):
    /// <c>traceIdHex|spanIdHex|traceState|{json attributes}|droppedCount</c>; values with fewer than 5 parts are dropped.
    /// </summary>
    /// <returns>How many consecutive link tags were consumed (they are not kept as attributes).</returns>
    private static int AddLinks(Span span, List<KeyValuePair<string, string>> tags, int index)
    {
        for (int i = 0; i < 128; i++)
        {
            string? value = Tag(tags, "otlp.link." + i.ToString(CultureInfo.InvariantCulture));
            if (value is null)
            {
                return i;
            }

            string[] parts = value.Split('|');
            if (parts.Length < 5)
            {
                continue;
            }

            var link = new SpanLink { TraceState = parts[2] };
            if (parts[0].Length > 0)
            {
                if (parts[0].Length != 32 || !TraceId.TryParseHex(parts[0], out var tid))
                {
                    throw new TraceFormatException($"zipkin: span {index} otlp.link.{i} has an invalid trace id '{parts[0]}'");
                }

                link.TraceId = tid;
            }

            if (parts[1].Length > 0)
            {
                if (parts[1].Length != 16 || !SpanId.TryParseHex(parts[1], out var sid))
                {
                    throw new TraceFormatException($"zipkin: span {index} otlp.link.{i} has an invalid span id '{parts[1]}'");
                }

                link.SpanId = sid;
            }

            string json = string.Join('|', parts, 3, parts.Length - 4);
            ReadJsonAttributes(json, link.Attributes, index, $"otlp.link.{i}");
            if (!uint.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out uint dropped))
            {
                throw new TraceFormatException($"zipkin: span {index} otlp.link.{i} has an invalid dropped-attributes count");
            }

            link.DroppedAttributesCount = dropped;
            span.Links.Add(link);
        }

        return 128;
    }

    /// <summary>An IPv6 address wins over IPv4 for the same key, as in the collector (it writes v4 then v6).</summary>
    private static void AddIp(Span span, string key, ZipkinEndpoint ep)
    {
        string? ip = !string.IsNullOrEmpty(ep.Ipv6) ? ep.Ipv6 : ep.Ipv4;
        if (!string.IsNullOrEmpty(ip))
        {
            span.Attributes.Add(new KeyValue(key, AnyValue.String(ip)));
        }
    }

    /// <summary>
    /// An annotation becomes an event named by the text before the first <c>|</c>. With at least three
    /// <c>|</c>-separated parts (what OTel's Zipkin exporter writes), the middle is a JSON object of attributes and the
    /// last part the dropped-attribute count.
    /// </summary>
    private static SpanEvent ToEvent(ZipkinAnnotation a, int index)
    {
        var ev = new SpanEvent { TimeUnixNano = a.TimestampMicros > 0 ? (ulong)a.TimestampMicros * 1000UL : 0 };
        string[] parts = a.Value.Split('|');
        ev.Name = parts[0];
        if (parts.Length < 3)
        {
            return ev;
        }

        string json = string.Join('|', parts, 1, parts.Length - 2);
        ReadJsonAttributes(json, ev.Attributes, index, $"annotation '{a.Value}'");

        if (!uint.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out uint dropped))
        {
            throw new TraceFormatException($"zipkin: span {index} annotation '{a.Value}' has an invalid dropped-attributes count");
        }

        ev.DroppedAttributesCount = dropped;
        return ev;
    }

    /// <summary>A JSON object of scalars → attributes (strings, bools, int64 for integral numbers, else double).</summary>
    private static void ReadJsonAttributes(string json, List<KeyValue> into, int index, string what)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new TraceFormatException($"zipkin: span {index} {what} attributes are not a JSON object");
            }

            foreach (var p in doc.RootElement.EnumerateObject())
            {
                AnyValue? v = p.Value.ValueKind switch
                {
                    JsonValueKind.String => AnyValue.String(p.Value.GetString()!),
                    JsonValueKind.True => AnyValue.Bool(true),
                    JsonValueKind.False => AnyValue.Bool(false),
                    JsonValueKind.Number when p.Value.TryGetInt64(out long l) => AnyValue.Int(l),
                    JsonValueKind.Number => AnyValue.Double(p.Value.GetDouble()),
                    _ => null,
                };
                if (v is not null)
                {
                    into.Add(new KeyValue(p.Name, v));
                }
            }
        }
        catch (JsonException e)
        {
            throw new TraceFormatException($"zipkin: span {index} {what} has invalid JSON attributes: {e.Message}", e);
        }
    }

    private static string? Tag(List<KeyValuePair<string, string>> tags, string key)
    {
        foreach (var (k, v) in tags)
        {
            if (k == key)
            {
                return v;
            }
        }

        return null;
    }

    private static TraceId ParseTraceId(string hex, int index)
    {
        if (hex.Length is 0 or > 32 || !TraceId.TryParseHex(hex, out var id))
        {
            throw new TraceFormatException($"zipkin: span {index} traceId '{hex}' is not 1..32 hex digits");
        }

        if (id.IsEmpty)
        {
            throw new TraceFormatException($"zipkin: span {index} traceId is all zeros");
        }

        return id;
    }

    private static SpanId ParseSpanId(string hex, int index, string field)
    {
        if (!SpanId.TryParseHex(hex, out var id))
        {
            throw new TraceFormatException($"zipkin: span {index} {field} '{hex}' is not 1..16 hex digits");
        }

        return id;
    }
}
