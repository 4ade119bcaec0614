using Rubato.Common.Ids;

namespace Rubato.Common.Model;

/// <summary>
/// A trace, or any part of one, in OTLP's shape: resources → instrumentation scopes → spans.
/// Wire-compatible with Tempo's <c>tempopb.Trace</c> (field 1 <c>batches</c>) and OTLP <c>TracesData</c>
/// (field 1 <c>resource_spans</c>), which are the same bytes.
/// </summary>
/// <remarks>Mutable lists: built by decoders and the combiner on one thread, then only read.</remarks>
public sealed class Trace
{
    public List<ResourceSpans> ResourceSpans { get; } = [];

    /// <summary>Visits every span with its resource and scope.</summary>
    public IEnumerable<(ResourceSpans Resource, ScopeSpans Scope, Span Span)> AllSpans()
    {
        foreach (var rs in ResourceSpans)
        {
            foreach (var ss in rs.ScopeSpans)
            {
                foreach (var s in ss.Spans)
                {
                    yield return (rs, ss, s);
                }
            }
        }
    }

    public int SpanCount()
    {
        int n = 0;
        foreach (var rs in ResourceSpans)
        {
            foreach (var ss in rs.ScopeSpans)
            {
                n += ss.Spans.Count;
            }
        }

        return n;
    }
}

public sealed class ResourceSpans
{
    public Resource Resource { get; set; } = new();

    public List<ScopeSpans> ScopeSpans { get; } = [];

    public string SchemaUrl { get; set; } = string.Empty;
}

public sealed class Resource
{
    public List<KeyValue> Attributes { get; } = [];

    public uint DroppedAttributesCount { get; set; }

    /// <summary>The <c>service.name</c> attribute, or null.</summary>
    public string? ServiceName()
    {
        foreach (var kv in Attributes)
        {
            if (kv.Key == "service.name" && kv.Value.Kind == AnyValueKind.String)
            {
                return kv.Value.StringValue;
            }
        }

        return null;
    }
}

public sealed class ScopeSpans
{
    public InstrumentationScope Scope { get; set; } = new();

    public List<Span> Spans { get; } = [];

    public string SchemaUrl { get; set; } = string.Empty;
}

public sealed class InstrumentationScope
{
    public string Name { get; set; } = string.Empty;

    public string Version { get; set; } = string.Empty;

    public List<KeyValue> Attributes { get; } = [];

    public uint DroppedAttributesCount { get; set; }
}

/// <summary>Span kind; values are OTLP's.</summary>
public enum SpanKind
{
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// <summary>Status code; values are OTLP's.</summary>
public enum StatusCode
{
    Unset = 0,
    Ok = 1,
    Error = 2,
}

public sealed class Span
{
    public TraceId TraceId { get; set; }

    public SpanId SpanId { get; set; }

    public string TraceState { get; set; } = string.Empty;

    /// <summary>Empty for a root span.</summary>
    public SpanId ParentSpanId { get; set; }

    public uint Flags { get; set; }

    public string Name { get; set; } = string.Empty;

    public SpanKind Kind { get; set; }

    public ulong StartTimeUnixNano { get; set; }

    public ulong EndTimeUnixNano { get; set; }

    public List<KeyValue> Attributes { get; } = [];

    public uint DroppedAttributesCount { get; set; }

    public List<SpanEvent> Events { get; } = [];

    public uint DroppedEventsCount { get; set; }

    public List<SpanLink> Links { get; } = [];

    public uint DroppedLinksCount { get; set; }

    public StatusCode StatusCode { get; set; }

    public string StatusMessage { get; set; } = string.Empty;

    public ulong DurationNanos => EndTimeUnixNano > StartTimeUnixNano ? EndTimeUnixNano - StartTimeUnixNano : 0;
}

public sealed class SpanEvent
{
    public ulong TimeUnixNano { get; set; }

    public string Name { get; set; } = string.Empty;

    public List<KeyValue> Attributes { get; } = [];

    public uint DroppedAttributesCount { get; set; }
}

public sealed class SpanLink
{
    public TraceId TraceId { get; set; }

    public SpanId SpanId { get; set; }

    public string TraceState { get; set; } = string.Empty;

    public List<KeyValue> Attributes { get; } = [];

    public uint DroppedAttributesCount { get; set; }

    public uint Flags { get; set; }
}
