using System.Net;
using System.Net.Http.Headers;

namespace Rubato.Storage.Backend.Resilience;

/// <summary>HTTP plumbing shared by the hand-written REST clients (Azure Blob, GCS).</summary>
internal static class HttpBackend
{
    public static HttpClient CreateClient(ObjectStoreOptions options, bool skipTlsVerification = false)
    {
        HttpMessageHandler handler = options.Handler ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false, // GCS answers 308 "Resume Incomplete" to upload chunks: never a redirect to follow.
            SslOptions = skipTlsVerification ? new() { RemoteCertificateValidationCallback = (_, _, _, _) => true } : new(),
        };
        return new HttpClient(handler, disposeHandler: options.Handler is null) { Timeout = options.RequestTimeout };
    }

    /// <summary>Throws <see cref="BackendRequestException"/> (with the status and a bounded piece of the body) unless 2xx.</summary>
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string detail = string.Empty;
        try
        {
            string body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            detail = body.Length > 512 ? body[..512] + "..." : body;
        }
        catch (HttpRequestException)
        {
            // The body is only for the message.
        }

        string code = response.Headers.TryGetValues("x-ms-error-code", out var codes) ? " " + string.Join(",", codes) : string.Empty;
        throw new BackendRequestException($"{what}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}{code} {detail}".TrimEnd(), response.StatusCode);
    }

    public static ReadOnlyMemoryContent Body(ReadOnlyMemory<byte> data)
    {
        var content = new ReadOnlyMemoryContent(data);
        content.Headers.ContentLength = data.Length;
        return content;
    }

    public static void SetOctetStream(HttpContent content) => content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");

    /// <summary>Reads a response body into <paramref name="into"/> until it is full or the body ends.</summary>
    public static async Task<int> ReadFullyAsync(Stream s, Memory<byte> into, CancellationToken ct)
    {
        int total = 0;
        while (total < into.Length)
        {
            int n = await s.ReadAsync(into[total..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    public static bool IsNotFound(Exception e) => e is BackendRequestException { Status: HttpStatusCode.NotFound };

    public static bool IsRangeNotSatisfiable(Exception e) => e is BackendRequestException { Status: HttpStatusCode.RequestedRangeNotSatisfiable };
}
