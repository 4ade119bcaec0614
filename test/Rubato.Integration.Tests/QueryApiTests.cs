using System.Net;
using System.Net.Http.Headers;
using Rubato.Integration.Tests.Harness;
using Xunit;

namespace Rubato.Integration.Tests;

/// <summary>Trace-by-id response formats and the operational endpoints.</summary>
[Collection(ServerCollection.Name)]
public sealed class QueryApiTests(SharedServer shared)
{
    private RubatoProcess Server => shared.Server;

    [Fact]
    public async Task Ready_Answers200Ready()
    {
        var text = await Server.Http.GetStringAsync("/ready");
        Assert.Equal("ready", text.Trim());
    }

    [Fact]
    public async Task TraceById_AcceptProtobuf_ReturnsTempopbTraceBytes()
    {
        var batch = Pushes.NewBatch(1, 3);
        var (status, text) = await Server.PostOtlpHttpAsync(batch.Body);
        Assert.True(status == 200, $"{status} {text}");
        string hex = Pushes.Hex(batch.Traces[0].TraceId);
        await Server.WaitForTraceAsync(hex, 3);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/traces/" + hex);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/protobuf"));
        using var response = await Server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("protobuf", response.Content.Headers.ContentType?.MediaType ?? "");
        byte[] bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(0x0A, bytes[0]); // field 1 (batches), length-delimited
        int occurrences = 0;
        for (int i = bytes.AsSpan().IndexOf(batch.Traces[0].TraceId); i >= 0;)
        {
            occurrences++;
            int next = bytes.AsSpan(i + 1).IndexOf(batch.Traces[0].TraceId);
            i = next < 0 ? -1 : i + 1 + next;
        }

        Assert.Equal(3, occurrences);
    }

    [Fact]
    public async Task TraceByIdV2_ReturnsTraceWrapper()
    {
        var batch = Pushes.NewBatch(1, 2);
        var (status, text) = await Server.PostOtlpHttpAsync(batch.Body);
        Assert.True(status == 200, $"{status} {text}");
        string hex = Pushes.Hex(batch.Traces[0].TraceId);
        await Server.WaitForTraceAsync(hex, 2);
        var (v2Status, body) = await Server.GetTraceAsync(hex, path: "/api/v2/traces/");
        Assert.Equal(HttpStatusCode.OK, v2Status);
        Assert.StartsWith("{\"trace\":", body.Replace(" ", "", StringComparison.Ordinal));
        Assert.Equal(2, TraceJson.Parse(body).Count);
    }

    [Fact]
    public async Task Metrics_ServesPrometheusText()
    {
        using var response = await Server.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE ", text);
    }
}
