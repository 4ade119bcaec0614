using System.Net.Http.Headers;
using Rubato.LoadGen.Otlp;

namespace Rubato.Integration.Tests.Harness;

/// <summary>Raw OTLP pushes built with the load generator's encoder, for error and durability tests.</summary>
public static class Pushes
{
    private static readonly Random Rng = new(12345);
    private static readonly Lock RngLock = new();

    public static ulong NowUnixNano => (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;

    /// <summary>A batch of <paramref name="traces"/> fresh traces with <paramref name="spansPerTrace"/> spans each.</summary>
    public static OtlpBatch NewBatch(int traces, int spansPerTrace)
    {
        lock (RngLock)
        {
            var ids = Enumerable.Range(0, traces).Select(_ => OtlpBatchBuilder.RandomTraceId(Rng)).ToList();
            return OtlpBatchBuilder.Build(ids, spansPerTrace, Rng, NowUnixNano);
        }
    }

    /// <summary>A batch adding <paramref name="spans"/> new spans to an existing trace id.</summary>
    public static OtlpBatch ForTrace(byte[] traceId, int spans)
    {
        lock (RngLock)
        {
            return OtlpBatchBuilder.Build([traceId], spans, Rng, NowUnixNano);
        }
    }

    public static string Hex(byte[] id) => Convert.ToHexStringLower(id);

    /// <summary>POST /v1/traces with the given content type; returns status and body.</summary>
    public static async Task<(int Status, string Body)> PostOtlpHttpAsync(this RubatoProcess server, byte[] body, string contentType = "application/x-protobuf", string? tenant = null)
    {
        using var client = new HttpClient { BaseAddress = server.OtlpHttp, Timeout = TimeSpan.FromSeconds(30) };
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/traces") { Content = content };
        if (tenant is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Scope-OrgID", tenant);
        }

        using var response = await client.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Pushes one fresh 3-span trace over OTLP HTTP and waits until the query API returns all of it.</summary>
    public static async Task AssertStillServesAsync(this RubatoProcess server, string? tenant = null)
    {
        var batch = NewBatch(1, 3);
        var (status, text) = await server.PostOtlpHttpAsync(batch.Body, tenant: tenant);
        if (status != 200)
        {
            throw new Xunit.Sdk.XunitException($"good push after an error answered {status}: {text}");
        }

        var spans = await server.WaitForTraceAsync(Hex(batch.Traces[0].TraceId), 3, tenant);
        Xunit.Assert.Equal(3, spans.Count);
    }
}
