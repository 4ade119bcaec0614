using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Rubato.Integration.Tests.Harness;
using Xunit;

namespace Rubato.Integration.Tests;

/// <summary>Unmodified real clients send the canonical trace; the query API must return it intact.</summary>
[Collection(ServerCollection.Name)]
public sealed class RealClientTests(SharedServer shared)
{
    private RubatoProcess Server => shared.Server;

    [Theory]
    [InlineData(OtlpExportProtocol.Grpc)]
    [InlineData(OtlpExportProtocol.HttpProtobuf)]
    public async Task DotNetOtelSdk_CanonicalTrace_RoundTripsIntact(OtlpExportProtocol protocol)
    {
        string service = $"rubato-it-dotnet-{protocol}";
        string sourceName = "rubato.it";
        using var source = new ActivitySource(sourceName, "1.2.3");
        using var provider = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService(service).AddAttributes(
            [
                new KeyValuePair<string, object>("deployment.environment", "integration"),
                new KeyValuePair<string, object>("host.cpu.count", 2L),
            ]))
            .AddSource(sourceName)
            .SetSampler(new AlwaysOnSampler())
            .AddOtlpExporter(o =>
            {
                o.Protocol = protocol;
                o.Endpoint = protocol == OtlpExportProtocol.Grpc ? Server.OtlpGrpc : new Uri(Server.OtlpHttp, "/v1/traces");
                o.ExportProcessorType = ExportProcessorType.Batch;
            })
            .Build();

        var previous = Activity.Current;
        Activity.Current = null;
        var t0 = DateTimeOffset.UtcNow.AddSeconds(-1);
        var linkContext = new ActivityContext(
            ActivityTraceId.CreateFromString("0af7651916cd43dd8448eb211c80319c"), ActivitySpanId.CreateFromString("b7ad6b7169203331"), ActivityTraceFlags.Recorded);

        var root = source.StartActivity("GET /checkout", ActivityKind.Server, parentContext: default, tags:
        [
            new("str.attr", "hello"), new("int.attr", 42L), new("double.attr", 3.25), new("bool.attr", true),
            new("str.array", new[] { "a", "b" }), new("int.array", new long[] { 1, 2, 3 }),
            new("double.array", new[] { 1.5, 2.5 }), new("bool.array", new[] { true, false }),
        ], startTime: t0)!;
        Assert.NotNull(root);
        root.AddEvent(new ActivityEvent("request.received", t0.AddMilliseconds(1), new ActivityTagsCollection { ["event.str"] = "x", ["event.int"] = 7L }));
        var child = source.StartActivity("SELECT orders", ActivityKind.Client, root.Context, [new("db.system", "postgresql")],
            [new ActivityLink(linkContext, new ActivityTagsCollection { ["link.reason"] = "retry" })], t0.AddMilliseconds(10))!;
        var grandchild = source.StartActivity("publish order", ActivityKind.Producer, child.Context, startTime: t0.AddMilliseconds(20))!;
        grandchild.SetStatus(ActivityStatusCode.Error, "payment declined");
        grandchild.SetEndTime(t0.AddMilliseconds(30).UtcDateTime);
        grandchild.Stop();
        child.SetEndTime(t0.AddMilliseconds(40).UtcDateTime);
        child.Stop();
        root.SetEndTime(t0.AddMilliseconds(50).UtcDateTime);
        root.Stop();
        Activity.Current = previous;
        Assert.True(provider.ForceFlush(30_000), "OTLP exporter did not flush within 30s");

        var sent = new SentTrace(root.TraceId.ToHexString(), root.SpanId.ToHexString(), child.SpanId.ToHexString(), grandchild.SpanId.ToHexString(),
            linkContext.TraceId.ToHexString(), linkContext.SpanId.ToHexString());
        var spans = await Server.WaitForTraceAsync(sent.TraceId, 3);
        CanonicalTrace.AssertMatches(spans, sent, service, Capabilities.Otlp);
        var link = Assert.Single(spans.Single(s => s.SpanId == sent.Child).Links);
        Assert.Equal("retry", link.Attributes["link.reason"]);

        var rootView = spans.Single(s => s.SpanId == sent.Root);
        Assert.Equal((ulong)t0.ToUnixTimeMilliseconds() * 1_000_000UL, rootView.StartTimeUnixNano / 1_000_000UL * 1_000_000UL);
        Assert.Equal(2L, rootView.Resource["host.cpu.count"]);
    }

    [Theory]
    [InlineData("grpc")]
    [InlineData("http-json")]
    [InlineData("http-proto")]
    public async Task OtelJsSdk_CanonicalTrace_RoundTripsIntact(string protocol)
    {
        string url = protocol == "grpc" ? Server.OtlpGrpc.ToString().TrimEnd('/') : new Uri(Server.OtlpHttp, "/v1/traces").ToString();
        string service = $"rubato-it-otel-js-{protocol}";
        var sent = await NodeClient.RunAsync("otel.js", protocol, url, service);
        var spans = await Server.WaitForTraceAsync(sent.TraceId, 3);
        CanonicalTrace.AssertMatches(spans, sent, service, Capabilities.Otlp);
        Assert.Equal(2L, spans[0].Resource["host.cpu.count"]);
    }

    [Fact]
    public async Task ZipkinJs_CanonicalTrace_RoundTripsWithZipkinFields()
    {
        string service = "rubato-it-zipkin-js";
        var sent = await NodeClient.RunAsync("zipkin.js", Server.ZipkinSpans.ToString(), service);
        var spans = await Server.WaitForTraceAsync(sent.TraceId, 3);
        CanonicalTrace.AssertMatches(spans, sent, service, new Capabilities
        {
            TypedAttributes = false, IntAttributes = false, Arrays = false, EventAttributes = false, Links = false,
            Scope = false, StatusMessage = false, ResourceAttributes = false, LowercaseNames = true,
        });
        Assert.Equal("GET", spans.Single(s => s.SpanId == sent.Root).Attributes["http.method"]);
    }

    [Fact]
    public async Task JaegerClientHttp_CanonicalTrace_RoundTripsWithJaegerFields()
    {
        string service = "rubato-it-jaeger-http";
        var sent = await NodeClient.RunAsync("jaeger.js", "http", Server.JaegerThriftHttp.ToString(), service);
        var spans = await Server.WaitForTraceAsync(sent.TraceId, 3);
        CanonicalTrace.AssertMatches(spans, sent, service, JaegerCapabilities);
        Assert.Equal(2.0, spans[0].Resource["host.cpu.count"]);
    }

    [Fact]
    public async Task JaegerClientUdpAgent_CanonicalTrace_RoundTripsWithJaegerFields()
    {
        string service = "rubato-it-jaeger-udp";
        var sent = await NodeClient.RunAsync("jaeger.js", "udp", "127.0.0.1", Server.Ports.JaegerBinaryUdp.ToString(), service);
        var spans = await Server.WaitForTraceAsync(sent.TraceId, 3);
        CanonicalTrace.AssertMatches(spans, sent, service, JaegerCapabilities);
    }

    /// <summary>jaeger-client sends numbers as DOUBLE tags and objects as JSON strings; scope is not a Jaeger concept.</summary>
    private static Capabilities JaegerCapabilities { get; } = new()
    {
        IntAttributes = false, Arrays = false, Scope = false, StatusMessage = false,
    };
}
