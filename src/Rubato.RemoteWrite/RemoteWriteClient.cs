using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using IronSnappy;

namespace Rubato.RemoteWrite;

/// <summary>How a remote-write request ended, from the sender's point of view.</summary>
internal enum SendOutcome
{
    /// <summary>2xx: the samples are stored.</summary>
    Success,

    /// <summary>5xx, 429 (with <c>retry_on_http_429</c>), connection error or timeout: send the same batch again.</summary>
    Retry,

    /// <summary>400 naming out-of-order, duplicate, too-old or out-of-bounds samples: Prometheus rolled the whole request back.</summary>
    OutOfOrder,

    /// <summary>Any other 4xx: the request can never succeed; its samples are dropped and counted, as Prometheus does.</summary>
    Rejected,
}

internal readonly record struct SendResult(SendOutcome Outcome, int StatusCode, string Message);

/// <summary>
/// One remote-write endpoint: snappy (block format) compressed <c>prometheus.WriteRequest</c> POSTs with the
/// protocol's headers. Thread-safe (HttpClient); every tenant's sender for this endpoint shares it.
/// </summary>
internal sealed class RemoteWriteClient : IDisposable
{
    private static readonly string UserAgent = "Rubato/" + (typeof(RemoteWriteClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "dev");

    private readonly HttpClient _http;
    private readonly RemoteWriteEndpointConfig _config;
    private readonly bool _addOrgId;
    private readonly Uri _url;

    public RemoteWriteClient(RemoteWriteEndpointConfig config, bool addOrgIdHeader, HttpMessageHandler? handler = null)
    {
        _config = config;
        _addOrgId = addOrgIdHeader;
        _url = new Uri(config.Url);
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30), ConnectTimeout = config.RemoteTimeout }, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public string Url => _config.Url;

    /// <summary>Compresses <paramref name="body"/> (uncompressed WriteRequest bytes) and POSTs it within <c>remote_timeout</c>.</summary>
    public async Task<SendResult> SendAsync(string tenant, ReadOnlyMemory<byte> body, IReadOnlyDictionary<string, string>? tenantHeaders, CancellationToken cancellationToken)
    {
        // Snappy.Encode is the block format (golang/snappy Encode), which remote write requires; not the framed stream.
        byte[] compressed = Snappy.Encode(body.Span);
        using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ByteArrayContent(compressed) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        request.Content.Headers.ContentEncoding.Add("snappy");
        request.Headers.TryAddWithoutValidation("X-Prometheus-Remote-Write-Version", "0.1.0");
        request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        foreach (var (k, v) in _config.Headers)
        {
            request.Headers.TryAddWithoutValidation(k, v);
        }

        if (tenantHeaders is not null)
        {
            foreach (var (k, v) in tenantHeaders)
            {
                if (!RemoteWriteEndpointConfig.ReservedHeaders.Contains(k))
                {
                    request.Headers.Remove(k);
                    request.Headers.TryAddWithoutValidation(k, v);
                }
            }
        }

        if (_addOrgId)
        {
            request.Headers.Remove("X-Scope-OrgID");
            request.Headers.TryAddWithoutValidation("X-Scope-OrgID", tenant);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_config.RemoteTimeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                return new SendResult(SendOutcome.Success, status, string.Empty);
            }

            string message = await ReadMessageAsync(response, timeout.Token).ConfigureAwait(false);
            return Classify(response.StatusCode, message, _config.QueueConfig.RetryOnHttp429);
        }
        catch (HttpRequestException e)
        {
            return new SendResult(SendOutcome.Retry, 0, e.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SendResult(SendOutcome.Retry, 0, $"no answer within remote_timeout {_config.RemoteTimeout}");
        }
        catch (IOException e)
        {
            return new SendResult(SendOutcome.Retry, 0, e.Message);
        }
    }

    private static async Task<string> ReadMessageAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            string text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            return text.Length > 512 ? text[..512] : text.TrimEnd();
        }
        catch (HttpRequestException)
        {
            return string.Empty;
        }
    }

    /// <summary>Prometheus' rule: 5xx (and 429 when enabled) are recoverable; other 4xx drop the batch.</summary>
    internal static SendResult Classify(HttpStatusCode code, string message, bool retryOn429)
    {
        int status = (int)code;
        if (status >= 500 || (code == HttpStatusCode.TooManyRequests && retryOn429))
        {
            return new SendResult(SendOutcome.Retry, status, message);
        }

        if (code == HttpStatusCode.BadRequest && IsOrderingRejection(message))
        {
            return new SendResult(SendOutcome.OutOfOrder, status, message);
        }

        return new SendResult(SendOutcome.Rejected, status, message);
    }

    /// <summary>The TSDB append errors Prometheus answers with 400 (storage.ErrOutOfOrderSample and friends).</summary>
    internal static bool IsOrderingRejection(string message) =>
        message.Contains("out of order", StringComparison.OrdinalIgnoreCase)
        || message.Contains("duplicate sample", StringComparison.OrdinalIgnoreCase)
        || message.Contains("out of bounds", StringComparison.OrdinalIgnoreCase)
        || message.Contains("too old", StringComparison.OrdinalIgnoreCase);

    public void Dispose() => _http.Dispose();
}
