using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Rubato.Common.Otlp;
using Rubato.Receivers.Tests.Support;
using Xunit;

namespace Rubato.Receivers.Tests;

/// <summary>The OpenTelemetry .NET SDK's real OTLP exporter (gRPC and http/protobuf) against the receivers.</summary>
public class RealClientTests
{
    [Theory]
    [InlineData(OtlpExportProtocol.Grpc)]
    [InlineData(OtlpExportProtocol.HttpProtobuf)]
    public async Task OtelDotnetExporter_ExportsSpans_ReachPusher(OtlpExportProtocol protocol)
    {
        await using var h = await ReceiversHarness.StartAsync();
        string sourceName = "rubato.receivers.test." + protocol;
        var endpoint = protocol == OtlpExportProtocol.Grpc
            ? new Uri($"http://{h.Endpoint("otlp_grpc")}")
            : new Uri($"http://{h.Endpoint("otlp_http")}/v1/traces");
        using (var provider = Sdk.CreateTracerProviderBuilder()
            .AddSource(sourceName)
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService("real-client"))
            .AddOtlpExporter(o =>
            {
                o.Endpoint = endpoint;
                o.Protocol = protocol;
                o.ExportProcessorType = ExportProcessorType.Simple;
            })
            .Build())
        {
            using var source = new ActivitySource(sourceName);
            using (var parent = source.StartActivity("parent", ActivityKind.Server))
            {
                parent?.SetTag("http.route", "/x");
                using var child = source.StartActivity("child", ActivityKind.Client);
            }

            provider.ForceFlush(10_000);
        }

        int spans = 0;
        while (spans < 2)
        {
            var push = await h.Pusher.NextAsync();
            var trace = OtlpProto.DecodeTrace(push.OtlpBytes);
            Assert.Equal("real-client", trace.ResourceSpans[0].Resource.ServiceName());
            spans += trace.SpanCount();
        }

        Assert.Equal(2, spans);
    }
}
