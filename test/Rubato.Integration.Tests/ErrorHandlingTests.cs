using System.Net;
using System.Text;
using Rubato.Integration.Tests.Harness;
using Rubato.LoadGen.Otlp;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>Bad input and exceeded limits get clear errors, and the server keeps serving afterwards.</summary>
[Collection(ServerCollection.Name)]
public sealed class ErrorHandlingTests(SharedServer shared, ITestOutputHelper output)
{
    private RubatoProcess Server => shared.Server;

    [Fact]
    public async Task OtlpHttp_TruncatedProtobuf_Returns400AndKeepsServing()
    {
        var body = Pushes.NewBatch(2, 5).Body;
        var (status, text) = await Server.PostOtlpHttpAsync(body[..(body.Length - 7)]);
        Assert.True(status == 400, $"expected 400, got {status}: {text}");
        await Server.AssertStillServesAsync();
    }

    [Fact]
    public async Task OtlpGrpc_TruncatedProtobuf_ReturnsInvalidArgumentAndKeepsServing()
    {
        var body = Pushes.NewBatch(2, 5).Body;
        using var sender = new GrpcOtlpSender(Server.OtlpGrpc);
        var result = await sender.SendAsync(body.AsMemory(0, body.Length - 7), null, CancellationToken.None);
        Assert.Equal("INVALID_ARGUMENT", result.Status);

        var good = Pushes.NewBatch(1, 4);
        var ok = await sender.SendAsync(good.Body, null, CancellationToken.None);
        Assert.True(ok.Ok, $"good gRPC push failed: {ok.Status} {ok.Message}");
        await Server.WaitForTraceAsync(Pushes.Hex(good.Traces[0].TraceId), 4);
        await Server.AssertStillServesAsync();
    }

    [Fact]
    public async Task OtlpHttp_BadJson_Returns400AndKeepsServing()
    {
        var (status, text) = await Server.PostOtlpHttpAsync(Encoding.UTF8.GetBytes("{\"resourceSpans\":[{\"scopeSpans\": [ {"), "application/json");
        Assert.True(status == 400, $"expected 400, got {status}: {text}");
        await Server.AssertStillServesAsync();
    }

    [Fact]
    public async Task OtlpHttp_SpanWithFiveByteTraceId_Returns400NamingTheTraceId()
    {
        var w = new ProtoWriter();
        w.BeginMessage(1); // resource_spans
        w.BeginMessage(2); // scope_spans
        w.BeginMessage(2); // span
        w.Bytes(1, [1, 2, 3, 4, 5]);
        w.Bytes(2, [1, 2, 3, 4, 5, 6, 7, 8]);
        w.String(5, "bad id");
        w.EndMessage();
        w.EndMessage();
        w.EndMessage();
        var (status, text) = await Server.PostOtlpHttpAsync(w.ToArray());
        Assert.True(status == 400, $"expected 400, got {status}: {text}");
        Assert.Contains("trace", text, StringComparison.OrdinalIgnoreCase);
        await Server.AssertStillServesAsync();
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef0")] // 33 hex digits
    [InlineData("not-a-trace-id")]
    public async Task TraceById_MalformedId_Returns400NamingTheId(string id)
    {
        var (status, text) = await Server.GetTraceAsync(id);
        Assert.True(status == HttpStatusCode.BadRequest, $"expected 400, got {(int)status}: {text}");
        Assert.Contains("trace", text, StringComparison.OrdinalIgnoreCase);
        await Server.AssertStillServesAsync();
    }

    [Fact]
    public async Task TraceById_UnknownId_Returns404()
    {
        var (status, text) = await Server.GetTraceAsync("00000000000000000000000000abcdef");
        Assert.True(status == HttpStatusCode.NotFound, $"expected 404, got {(int)status}: {text}");
    }

    [Fact]
    public async Task OversizedTrace_Returns429TraceTooLargeAndKeepsServing()
    {
        await using var server = await RubatoProcess.StartAsync(new RubatoConfig { MaxBytesPerTrace = 3000 }, output);
        var big = Pushes.NewBatch(1, 40); // ~16 KB in one trace
        var (status, text) = await server.PostOtlpHttpAsync(big.Body);
        Assert.True(status == 429, $"expected 429, got {status}: {text}");
        Assert.Contains("TRACE_TOO_LARGE", text);
        await server.AssertStillServesAsync();
    }

    [Fact]
    public async Task RateLimit_Returns429RateLimitedAndKeepsServing()
    {
        await using var server = await RubatoProcess.StartAsync(new RubatoConfig { RateLimitBytes = 2000, BurstSizeBytes = 4000 }, output);
        var big = Pushes.NewBatch(10, 10); // ~40 KB, far over the burst
        var (status, text) = await server.PostOtlpHttpAsync(big.Body);
        Assert.True(status == 429, $"expected 429, got {status}: {text}");
        Assert.Contains("RATE_LIMITED", text);
        await server.AssertStillServesAsync();
    }

    [Fact]
    public async Task MaxTracesPerUser_Returns429LiveTracesExceededAndKeepsServingExistingTraces()
    {
        await using var server = await RubatoProcess.StartAsync(new RubatoConfig { MaxTracesPerUser = 2 }, output);
        var first = Pushes.NewBatch(2, 2);
        var (okStatus, okText) = await server.PostOtlpHttpAsync(first.Body);
        Assert.True(okStatus == 200, $"first two traces: {okStatus} {okText}");

        var third = Pushes.NewBatch(1, 2);
        var (status, text) = await server.PostOtlpHttpAsync(third.Body);
        Assert.True(status == 429, $"expected 429, got {status}: {text}");
        Assert.Contains("LIVE_TRACES_EXCEEDED", text);

        // A live trace still accepts spans and is queryable.
        var more = Pushes.ForTrace(first.Traces[0].TraceId, 2);
        var (moreStatus, moreText) = await server.PostOtlpHttpAsync(more.Body);
        Assert.True(moreStatus == 200, $"push to a live trace: {moreStatus} {moreText}");
        var spans = await server.WaitForTraceAsync(Pushes.Hex(first.Traces[0].TraceId), 4);
        Assert.Equal(4, spans.Count);
    }

    [Fact]
    public async Task Multitenancy_MissingTenant_Returns401AndTenantsAreIsolated()
    {
        await using var server = await RubatoProcess.StartAsync(new RubatoConfig { MultitenancyEnabled = true }, output);
        var batch = Pushes.NewBatch(1, 3);
        var (status, text) = await server.PostOtlpHttpAsync(batch.Body);
        Assert.True(status == 401, $"push without X-Scope-OrgID: expected 401, got {status}: {text}");

        var (queryStatus, queryText) = await server.GetTraceAsync(Pushes.Hex(batch.Traces[0].TraceId));
        Assert.True(queryStatus == HttpStatusCode.Unauthorized, $"query without X-Scope-OrgID: expected 401, got {(int)queryStatus}: {queryText}");

        var (pushStatus, pushText) = await server.PostOtlpHttpAsync(batch.Body, tenant: "team-a");
        Assert.True(pushStatus == 200, $"push as team-a: {pushStatus} {pushText}");
        await server.WaitForTraceAsync(Pushes.Hex(batch.Traces[0].TraceId), 3, "team-a");
        var (otherStatus, _) = await server.GetTraceAsync(Pushes.Hex(batch.Traces[0].TraceId), "team-b");
        Assert.Equal(HttpStatusCode.NotFound, otherStatus);
        await server.AssertStillServesAsync("team-b");
    }

    [Fact]
    public async Task Config_UnknownKey_ExitsNonZeroNamingTheKey()
    {
        var (code, stdout, stderr) = await RubatoProcess.RunToExitAsync(
            new RubatoConfig { ExtraYaml = "definitely_not_a_setting: 3\n" }, TimeSpan.FromSeconds(60));
        Assert.True(code != 0, $"expected a non-zero exit; stdout: {stdout}");
        Assert.Contains("definitely_not_a_setting", stderr);
    }

    [Fact]
    public async Task Target_Unknown_ExitsNonZeroListingValidTargets()
    {
        var (code, stdout, stderr) = await RubatoProcess.RunToExitAsync(new RubatoConfig(), TimeSpan.FromSeconds(60), "-target=frobnicator");
        Assert.True(code != 0, $"expected a non-zero exit; stdout: {stdout}");
        Assert.Contains("frobnicator", stderr);
        Assert.Contains("all", stderr);
    }
}
