using Xunit;

namespace Rubato.Integration.Tests.Harness;

/// <summary>What a protocol can carry, so one assertion covers every client.</summary>
public sealed record Capabilities
{
    public bool TypedAttributes { get; init; } = true;
    public bool IntAttributes { get; init; } = true;
    public bool Arrays { get; init; } = true;
    public bool EventAttributes { get; init; } = true;
    public bool Links { get; init; } = true;
    public bool Scope { get; init; } = true;
    public bool StatusMessage { get; init; } = true;
    public bool ResourceAttributes { get; init; } = true;

    /// <summary>zipkin-js lower-cases span names before sending them.</summary>
    public bool LowercaseNames { get; init; }

    public static Capabilities Otlp { get; } = new();
}

/// <summary>
/// The trace every client sends (see test/clients/*.js and the .NET SDK test): root "GET /checkout" (server) →
/// child "SELECT orders" (client, link to another trace) → grandchild "publish order" (producer, status error
/// "payment declined"), typed attributes and arrays on the root, an event "request.received" with attributes.
/// </summary>
public static class CanonicalTrace
{
    public static void AssertMatches(IReadOnlyList<SpanView> spans, SentTrace sent, string serviceName, Capabilities caps)
    {
        Assert.Equal(3, spans.Count);
        Assert.Equal(3, spans.Select(s => s.SpanId).Distinct().Count());
        Assert.All(spans, s => Assert.Equal(sent.TraceId, s.TraceId));

        var root = Assert.Single(spans, s => s.SpanId == sent.Root);
        var child = Assert.Single(spans, s => s.SpanId == sent.Child);
        var grandchild = Assert.Single(spans, s => s.SpanId == sent.Grandchild);

        Assert.Equal("", root.ParentSpanId);
        Assert.Equal(sent.Root, child.ParentSpanId);
        Assert.Equal(sent.Child, grandchild.ParentSpanId);

        string Named(string name) => caps.LowercaseNames ? name.ToLowerInvariant() : name;
        Assert.Equal(Named("GET /checkout"), root.Name);
        Assert.Equal(Named("SELECT orders"), child.Name);
        Assert.Equal(Named("publish order"), grandchild.Name);
        Assert.Equal("SPAN_KIND_SERVER", root.Kind);
        Assert.Equal("SPAN_KIND_CLIENT", child.Kind);
        Assert.Equal("SPAN_KIND_PRODUCER", grandchild.Kind);

        ulong now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;
        foreach (var s in spans)
        {
            Assert.True(s.StartTimeUnixNano > now - (600UL * 1_000_000_000UL) && s.StartTimeUnixNano <= now, $"{s.Name}: start {s.StartTimeUnixNano} is not within the last 10 minutes");
            Assert.True(s.EndTimeUnixNano >= s.StartTimeUnixNano, $"{s.Name}: end {s.EndTimeUnixNano} before start {s.StartTimeUnixNano}");
        }

        Assert.True(child.StartTimeUnixNano >= root.StartTimeUnixNano, "child starts before root");
        Assert.True(grandchild.StartTimeUnixNano >= child.StartTimeUnixNano, "grandchild starts before child");

        Assert.Equal("STATUS_CODE_ERROR", grandchild.StatusCode);
        if (caps.StatusMessage)
        {
            Assert.Equal("payment declined", grandchild.StatusMessage);
        }

        Assert.NotEqual("STATUS_CODE_ERROR", root.StatusCode);

        // Attributes on the root span.
        Assert.Equal("hello", root.Attributes["str.attr"]);
        Assert.Equal("postgresql", child.Attributes["db.system"]);
        if (caps.TypedAttributes)
        {
            Assert.Equal(3.25, root.Attributes["double.attr"]);
            Assert.Equal(true, root.Attributes["bool.attr"]);
        }

        if (caps.IntAttributes)
        {
            Assert.Equal(42L, root.Attributes["int.attr"]);
        }

        if (caps.Arrays)
        {
            Assert.Equal(new object?[] { "a", "b" }, (object?[])root.Attributes["str.array"]!);
            Assert.Equal(new object?[] { 1L, 2L, 3L }, (object?[])root.Attributes["int.array"]!);
            Assert.Equal(new object?[] { 1.5, 2.5 }, (object?[])root.Attributes["double.array"]!);
            Assert.Equal(new object?[] { true, false }, (object?[])root.Attributes["bool.array"]!);
        }

        var ev = Assert.Single(root.Events, e => e.Name == "request.received");
        Assert.True(ev.TimeUnixNano >= root.StartTimeUnixNano && ev.TimeUnixNano <= root.EndTimeUnixNano, "event outside its span");
        if (caps.EventAttributes)
        {
            Assert.Equal("x", ev.Attributes["event.str"]);
            if (caps.IntAttributes)
            {
                Assert.Equal(7L, ev.Attributes["event.int"]);
            }
        }

        if (caps.Links)
        {
            var link = Assert.Single(child.Links);
            Assert.Equal(sent.LinkTraceId, link.TraceId);
            Assert.Equal(sent.LinkSpanId, link.SpanId);
        }

        foreach (var s in spans)
        {
            Assert.Equal(serviceName, s.Resource["service.name"]);
            if (caps.ResourceAttributes)
            {
                Assert.Equal("integration", s.Resource["deployment.environment"]);
            }

            if (caps.Scope)
            {
                Assert.Equal("rubato.it", s.ScopeName);
                Assert.Equal("1.2.3", s.ScopeVersion);
            }
        }
    }
}
