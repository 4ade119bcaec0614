using System.Net;
using System.Net.Http.Headers;
using Rubato.Grpc;

namespace Rubato.LoadGen.Otlp;

/// <summary>Outcome of one export: <see cref="Status"/> is "OK", a gRPC status name or an HTTP status code.</summary>
public readonly record struct SendResult(bool Ok, string Status, string Message);

/// <summary>Sends one OTLP <c>ExportTraceServiceRequest</c> body. Implementations are safe for concurrent use.</summary>
public interface IOtlpSender : IDisposable
{
    Task<SendResult> SendAsync(ReadOnlyMemory<byte> body, string? tenant, CancellationToken cancellationToken);
}

/// <summary>Factory for the shared HTTP handler: many HTTP/2 connections so concurrent streams spread out.</summary>
public static class OtlpHttp
{
    public static HttpClient CreateClient(Uri baseAddress) => new(new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        AutomaticDecompression = DecompressionMethods.None,
    })
    {
        BaseAddress = baseAddress,
        Timeout = TimeSpan.FromSeconds(60),
    };
}

/// <summary>
/// OTLP/gRPC unary call <c>TraceService/Export</c> through Rubato.Grpc's <see cref="GrpcClient"/> (h2c, several
/// HTTP/2 connections so concurrent calls spread). Non-OK statuses come back as <see cref="SendResult"/> with the
/// status in gRPC's UPPER_SNAKE spelling (e.g. <c>INVALID_ARGUMENT</c>).
/// </summary>
public sealed class GrpcOtlpSender : IOtlpSender
{
    public const string Service = "opentelemetry.proto.collector.trace.v1.TraceService";
    public const string Method = "Export";

    private readonly GrpcClient _client;

    public GrpcOtlpSender(Uri endpoint) =>
        _client = new GrpcClient(endpoint, new GrpcClientOptions { EnableMultipleHttp2Connections = true });

    public async Task<SendResult> SendAsync(ReadOnlyMemory<byte> body, string? tenant, CancellationToken cancellationToken)
    {
        var options = new GrpcCallOptions
        {
            Headers = tenant is null ? null : [new KeyValuePair<string, string>("x-scope-orgid", tenant)],
            Timeout = TimeSpan.FromSeconds(60),
        };
        try
        {
            await _client.UnaryAsync(Service, Method, body, options, cancellationToken);
            return new SendResult(true, "OK", string.Empty);
        }
        catch (GrpcException e)
        {
            return new SendResult(false, StatusName(e.StatusCode), e.Message);
        }
    }

    /// <summary>InvalidArgument → INVALID_ARGUMENT.</summary>
    public static string StatusName(GrpcStatusCode code)
    {
        string name = code.ToString();
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && !char.IsUpper(name[i - 1]))
            {
                sb.Append('_');
            }

            sb.Append(char.ToUpperInvariant(name[i]));
        }

        return sb.ToString();
    }

    public void Dispose() => _client.Dispose();
}

/// <summary>OTLP/HTTP binary protobuf: <c>POST /v1/traces</c> with <c>application/x-protobuf</c>.</summary>
public sealed class HttpOtlpSender : IOtlpSender
{
    private readonly HttpClient _client;

    public HttpOtlpSender(Uri endpoint) => _client = OtlpHttp.CreateClient(endpoint);

    public async Task<SendResult> SendAsync(ReadOnlyMemory<byte> body, string? tenant, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/traces") { Content = new ReadOnlyMemoryContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        if (tenant is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Scope-OrgID", tenant);
        }

        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        string text = response.IsSuccessStatusCode ? string.Empty : await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            await response.Content.CopyToAsync(Stream.Null, cancellationToken);
        }

        return new SendResult(response.IsSuccessStatusCode, ((int)response.StatusCode).ToString(), text);
    }

    public void Dispose() => _client.Dispose();
}
