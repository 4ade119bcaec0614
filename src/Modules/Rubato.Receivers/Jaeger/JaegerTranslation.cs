using System.Globalization;
using Rubato.Common.Ids;
using Rubato.Common.Model;

namespace Rubato.Receivers.Jaeger;

/// <summary>
/// The OpenTelemetry Collector's Jaeger → OTLP rules, shared by the Thrift and protobuf decoders. A decoded span
/// arrives with its Jaeger tags already typed as attributes; <see cref="FinishSpan"/> turns the special tags into
/// span fields: <c>span.kind</c> → kind, <c>error</c> / <c>otel.status_code</c> / <c>otel.status_description</c> /
/// <c>http.status_code</c> → status, <c>w3c.tracestate</c> → trace state, <c>otel.scope.*</c> (or the older
/// <c>otel.library.*</c>) → instrumentation scope.
/// </summary>
internal static class JaegerTranslation
{
    public const string ServiceNameKey = "service.name";

    /// <summary>The collector drops this placeholder instead of storing it as a service name.</summary>
    public const string NoServiceName = "OTLPResourceNoServiceName";

    public const string RefTypeKey = "opentracing.ref_type";

    /// <summary>A decoded span with the scope it belongs to.</summary>
    public readonly record struct DecodedSpan(Span Span, string ScopeName, string ScopeVersion);

    /// <summary>Jaeger reference, already normalised to model ids.</summary>
    public readonly record struct Reference(bool ChildOf, TraceId TraceId, SpanId SpanId);

    /// <summary>Builds the resource from a Jaeger process.</summary>
    public static Resource BuildResource(string? serviceName, List<KeyValue>? tags)
    {
        var r = new Resource();
        if (!string.IsNullOrEmpty(serviceName) && serviceName != NoServiceName)
        {
            r.Attributes.Add(new KeyValue(ServiceNameKey, AnyValue.String(serviceName)));
        }

        if (tags is not null)
        {
            r.Attributes.AddRange(tags);
        }

        return r;
    }

    /// <summary>
    /// Sets the parent from an explicit parent id, else the first same-trace CHILD_OF reference (Jaeger's
    /// <c>ParentSpanID()</c>), and turns every other reference into a link tagged <c>opentracing.ref_type</c>.
    /// </summary>
    public static void ApplyReferences(Span span, SpanId explicitParent, List<Reference>? refs)
    {
        SpanId parent = explicitParent;
        if (parent.IsEmpty && refs is not null)
        {
            foreach (var r in refs)
            {
                if (r.ChildOf && r.TraceId == span.TraceId)
                {
                    parent = r.SpanId;
                    break;
                }
            }
        }

        span.ParentSpanId = parent;
        if (refs is null)
        {
            return;
        }

        foreach (var r in refs)
        {
            if (r.ChildOf && r.SpanId == parent && r.TraceId == span.TraceId)
            {
                continue;
            }

            var link = new SpanLink { TraceId = r.TraceId, SpanId = r.SpanId };
            link.Attributes.Add(new KeyValue(RefTypeKey, AnyValue.String(r.ChildOf ? "child_of" : "follows_from")));
            span.Links.Add(link);
        }
    }

    /// <summary>Adds a Jaeger log as an event; its <c>event</c> field becomes the event name.</summary>
    public static void AddLog(Span span, ulong timeUnixNano, List<KeyValue> fields)
    {
        var ev = new SpanEvent { TimeUnixNano = timeUnixNano };
        foreach (var f in fields)
        {
            if (f.Key == "event" && f.Value.Kind == AnyValueKind.String && ev.Name.Length == 0)
            {
                ev.Name = f.Value.StringValue!;
                continue;
            }

            ev.Attributes.Add(f);
        }

        span.Events.Add(ev);
    }

    /// <summary>Applies the special tags (see the type summary) and returns the span with its scope.</summary>
    public static DecodedSpan FinishSpan(Span span)
    {
        var attrs = span.Attributes;
        string scopeName = string.Empty;
        string scopeVersion = string.Empty;
        string? kind = null;

        for (int i = attrs.Count - 1; i >= 0; i--)
        {
            var kv = attrs[i];
            switch (kv.Key)
            {
                case "span.kind":
                    kind = kv.Value.ToString();
                    attrs.RemoveAt(i);
                    break;
                case "otel.scope.name":
                case "otel.library.name":
                    if (scopeName.Length == 0 || kv.Key == "otel.scope.name")
                    {
                        scopeName = kv.Value.ToString();
                    }

                    attrs.RemoveAt(i);
                    break;
                case "otel.scope.version":
                case "otel.library.version":
                    if (scopeVersion.Length == 0 || kv.Key == "otel.scope.version")
                    {
                        scopeVersion = kv.Value.ToString();
                    }

                    attrs.RemoveAt(i);
                    break;
                case "w3c.tracestate":
                    span.TraceState = kv.Value.ToString();
                    attrs.RemoveAt(i);
                    break;
            }
        }

        span.Kind = kind switch
        {
            "client" => SpanKind.Client,
            "server" => SpanKind.Server,
            "producer" => SpanKind.Producer,
            "consumer" => SpanKind.Consumer,
            "internal" => SpanKind.Internal,
            _ => SpanKind.Unspecified,
        };

        ApplyStatus(span);
        return new DecodedSpan(span, scopeName, scopeVersion);
    }

    /// <summary>
    /// The collector's precedence: a bool <c>error=true</c> tag wins; then <c>otel.status_code</c>; then, only when
    /// neither set a status, an int or string <c>http.status_code</c> of a failed request (5xx, or 4xx unless the
    /// span is a server).
    /// </summary>
    private static void ApplyStatus(Span span)
    {
        var attrs = span.Attributes;
        bool exists = false;
        var code = StatusCode.Unset;
        string message = string.Empty;

        int errorIdx = IndexOf(attrs, "error");
        if (errorIdx >= 0 && IsTrue(attrs[errorIdx].Value))
        {
            code = StatusCode.Error;
            exists = true;
            attrs.RemoveAt(errorIdx);
            if (TakeString(attrs, "otel.status_description", out string? desc))
            {
                message = desc;
            }
            else if (TryGetString(attrs, "http.status_message", out string? httpMsg))
            {
                message = httpMsg;
            }
        }

        int codeIdx = IndexOf(attrs, "otel.status_code");
        if (codeIdx >= 0)
        {
            if (!exists)
            {
                exists = true;
                string v = attrs[codeIdx].Value.ToString().ToUpperInvariant();
                code = v switch
                {
                    "OK" or "STATUS_CODE_OK" => StatusCode.Ok,
                    "ERROR" or "STATUS_CODE_ERROR" => StatusCode.Error,
                    _ => StatusCode.Unset,
                };
                if (TakeString(attrs, "otel.status_description", out string? desc))
                {
                    message = desc;
                }
            }

            attrs.RemoveAt(IndexOf(attrs, "otel.status_code"));
        }
        else if (!exists)
        {
            int httpIdx = IndexOf(attrs, "http.status_code");
            if (httpIdx >= 0 && TryHttpStatus(attrs[httpIdx].Value, out long http))
            {
                // The collector's rule, boundaries included: 4xx is an error for clients only, and 100..398 is fine.
                bool failed = http is >= 400 and < 500
                    ? span.Kind != SpanKind.Server
                    : !(http >= 100 && http < 399);
                if (failed)
                {
                    exists = true;
                    code = StatusCode.Error;
                }

                if (TryGetString(attrs, "http.status_message", out string? httpMsg))
                {
                    message = httpMsg;
                }
            }
        }

        if (exists)
        {
            span.StatusCode = code;
            span.StatusMessage = message;
        }
    }

    private static bool TryHttpStatus(AnyValue v, out long code)
    {
        switch (v.Kind)
        {
            case AnyValueKind.Int:
                code = v.IntValue;
                return true;
            case AnyValueKind.String:
                return long.TryParse(v.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out code);
            default:
                code = 0;
                return false;
        }
    }

    /// <summary>Like the collector, only a bool-typed <c>error</c> tag sets the status; a string stays an attribute.</summary>
    private static bool IsTrue(AnyValue v) => v.Kind == AnyValueKind.Bool && v.BoolValue;

    private static int IndexOf(List<KeyValue> attrs, string key)
    {
        for (int i = 0; i < attrs.Count; i++)
        {
            if (attrs[i].Key == key)
            {
                return i;
            }
        }

        return -1;
    }

    private static bool TakeString(List<KeyValue> attrs, string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        int i = IndexOf(attrs, key);
        if (i < 0)
        {
            value = null;
            return false;
        }

        value = attrs[i].Value.ToString();
        attrs.RemoveAt(i);
        return true;
    }

    private static bool TryGetString(List<KeyValue> attrs, string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        int i = IndexOf(attrs, key);
        value = i >= 0 ? attrs[i].Value.ToString() : null;
        return value is not null;
    }

    /// <summary>Appends spans to a resource, grouping them into one <see cref="ScopeSpans"/> per (name, version).</summary>
    public static void AddToResource(ResourceSpans rs, DecodedSpan ds)
    {
        foreach (var ss in rs.ScopeSpans)
        {
            if (ss.Scope.Name == ds.ScopeName && ss.Scope.Version == ds.ScopeVersion)
            {
                ss.Spans.Add(ds.Span);
                return;
            }
        }

        var created = new ScopeSpans { Scope = new InstrumentationScope { Name = ds.ScopeName, Version = ds.ScopeVersion } };
        created.Spans.Add(ds.Span);
        rs.ScopeSpans.Add(created);
    }

    /// <summary>Microseconds since the epoch (Jaeger Thrift) to nanoseconds; negative clamps to 0.</summary>
    public static ulong MicrosToNanos(long micros) => micros <= 0 ? 0 : (ulong)micros * 1000UL;
}
