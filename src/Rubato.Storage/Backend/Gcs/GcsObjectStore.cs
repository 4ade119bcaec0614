using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Rubato.Storage.Backend.Resilience;

namespace Rubato.Storage.Backend.Gcs;

/// <summary>
/// Tempo's <c>gcs</c> backend: a client of the Cloud Storage JSON API (<c>storage/v1</c>) over <see cref="HttpClient"/>.
/// Objects live at <c>[prefix/]key</c> in <see cref="GcsObjectStoreConfig.BucketName"/>.
/// </summary>
/// <remarks>
/// Thread-safe. Requests carry no credentials (Tempo's <c>insecure: true</c>): this targets emulators and
/// credential-adding proxies; Google service-account auth is not implemented. Objects up to
/// <see cref="GcsObjectStoreConfig.ChunkBufferSize"/> are one <c>uploadType=media</c> POST; larger ones a resumable
/// upload in chunks of that size. GCS makes an object visible only when its upload completes, so a put is atomic.
/// Every request runs through <see cref="BackendRequestPolicy"/>; downloads and metadata reads are hedged when configured.
/// </remarks>
public sealed class GcsObjectStore : IObjectStore, IDisposable
{
    private readonly HttpClient _http;
    private readonly string _objectsUrl;
    private readonly string _uploadUrl;
    private readonly string _prefix;
    private readonly int _chunkSize;
    private readonly int _pageSize;
    private readonly BackendRequestPolicy _policy;

    public GcsObjectStore(GcsObjectStoreConfig config, ObjectStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new ObjectStoreOptions();
        options.Validate();
        var (api, upload) = BaseUrls(config.Endpoint.Length > 0 ? config.Endpoint : GcsObjectStoreConfig.DefaultEndpoint);
        string bucket = Uri.EscapeDataString(config.BucketName);
        _objectsUrl = api + "b/" + bucket + "/o";
        _uploadUrl = upload + "b/" + bucket + "/o";
        _prefix = config.Prefix.Trim('/');
        _chunkSize = config.ChunkBufferSize;
        _pageSize = options.ListPageSize;
        _http = HttpBackend.CreateClient(options, skipTlsVerification: config.Insecure);
        _policy = new BackendRequestPolicy("gcs", config.RetryOptions(), config.HedgeOptions(), options.Metrics, options.Time);
    }

    public BackendRequestPolicy Policy => _policy;

    /// <summary>
    /// The JSON API base and the matching upload base: <c>…/storage/v1/</c> uploads to <c>…/upload/storage/v1/</c>
    /// (as the Google clients do); any other base is used for both.
    /// </summary>
    public static (string Api, string Upload) BaseUrls(string endpoint)
    {
        string api = endpoint.EndsWith('/') ? endpoint : endpoint + "/";
        var uri = new Uri(api, UriKind.Absolute);
        const string marker = "/storage/v1/";
        string path = uri.AbsolutePath;
        string upload = path.EndsWith(marker, StringComparison.Ordinal)
            ? uri.GetLeftPart(UriPartial.Authority) + path[..^marker.Length] + "/upload" + marker
            : api;
        return (api, upload);
    }

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string name = FullName(key);
        return data.Length <= _chunkSize ? PutMediaAsync(name, data, ct) : PutResumableAsync(name, data, ct);
    }

    public async Task PutAsync(string key, Stream data, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(data);
        string name = FullName(key);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(_chunkSize);
        try
        {
            int n = await HttpBackend.ReadFullyAsync(data, buffer.AsMemory(0, _chunkSize), ct).ConfigureAwait(false);
            if (n < _chunkSize)
            {
                await PutMediaAsync(name, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                return;
            }

            string session = await StartResumableAsync(name, null, ct).ConfigureAwait(false);
            long offset = 0;
            while (true)
            {
                // A full chunk may or may not be the last: it goes with an unknown total ("*"); a short one ends the upload.
                bool last = n < _chunkSize;
                await PutChunkAsync(session, offset, buffer.AsMemory(0, n), last ? offset + n : null, ct).ConfigureAwait(false);
                offset += n;
                if (last)
                {
                    return;
                }

                n = await HttpBackend.ReadFullyAsync(data, buffer.AsMemory(0, _chunkSize), ct).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        string url = ObjectUrl(key) + "?alt=media";
        try
        {
            return await _policy.RunAsync("GET", async c =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, url);
                using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "download " + key, c).ConfigureAwait(false);
                return await resp.Content.ReadAsByteArrayAsync(c).ConfigureAwait(false);
            }, ct, hedged: true).ConfigureAwait(false);
        }
        catch (BackendRequestException e) when (HttpBackend.IsNotFound(e))
        {
            return null;
        }
    }

    public async Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        string url = ObjectUrl(key) + "?alt=media";
        if (buffer.Length == 0)
        {
            return await ExistsAsync(key, ct).ConfigureAwait(false) ? 0 : throw new ObjectNotFoundException(key);
        }

        try
        {
            return await _policy.RunReadIntoAsync("GET_RANGE", buffer, async (into, c) =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, url);
                req.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(offset, offset + into.Length - 1);
                using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "download range " + key, c).ConfigureAwait(false);
                await using var body = await resp.Content.ReadAsStreamAsync(c).ConfigureAwait(false);
                if (resp.StatusCode == HttpStatusCode.OK && offset > 0)
                {
                    await S3.S3ObjectStore.SkipAsync(body, offset, c).ConfigureAwait(false); // Range ignored: whole object.
                }

                return await HttpBackend.ReadFullyAsync(body, into, c).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
        }
        catch (BackendRequestException e) when (HttpBackend.IsNotFound(e))
        {
            throw new ObjectNotFoundException(key, e);
        }
        catch (BackendRequestException e) when (HttpBackend.IsRangeNotSatisfiable(e))
        {
            return 0;
        }
    }

    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct)
    {
        string listPrefix = ListPrefix(prefix);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        string? token = null;
        do
        {
            var url = new StringBuilder(_objectsUrl).Append("?delimiter=%2F");
            if (listPrefix.Length > 0)
            {
                url.Append("&prefix=").Append(Uri.EscapeDataString(listPrefix));
            }

            url.Append("&maxResults=").Append(_pageSize.ToString(CultureInfo.InvariantCulture));
            if (!string.IsNullOrEmpty(token))
            {
                url.Append("&pageToken=").Append(Uri.EscapeDataString(token));
            }

            string pageUrl = url.ToString();
            byte[] json = await _policy.RunAsync("LIST", async c =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, pageUrl);
                using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "list objects", c).ConfigureAwait(false);
                return await resp.Content.ReadAsByteArrayAsync(c).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
            token = ParseListPage(json, listPrefix, names);
        }
        while (!string.IsNullOrEmpty(token));

        return [.. names];
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken ct)
    {
        string url = ObjectUrl(key);
        try
        {
            return await _policy.RunAsync("HEAD", async c =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, url);
                using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "get object metadata " + key, c).ConfigureAwait(false);
                return true;
            }, ct, hedged: true).ConfigureAwait(false);
        }
        catch (BackendRequestException e) when (HttpBackend.IsNotFound(e))
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public int ReadCoalesceGapBytes => ObjectStoreReadGaps.ObjectStore;

    public async Task DeleteAsync(string key, CancellationToken ct)
    {
        string url = ObjectUrl(key);
        try
        {
            await _policy.RunAsync("DELETE", async c =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Delete, url);
                using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "delete " + key, c).ConfigureAwait(false);
                return true;
            }, ct).ConfigureAwait(false);
        }
        catch (BackendRequestException e) when (HttpBackend.IsNotFound(e))
        {
            // Deleting a missing object is not an error.
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Reads one objects.list page (<c>prefixes</c>, <c>items[].name</c>) into <paramref name="names"/>; returns <c>nextPageToken</c>.</summary>
    internal static string? ParseListPage(byte[] json, string listPrefix, SortedSet<string> names)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("prefixes", out var prefixes))
        {
            foreach (var p in prefixes.EnumerateArray())
            {
                S3.S3ObjectStore.AddChild(names, p.GetString() ?? string.Empty, listPrefix);
            }
        }

        if (root.TryGetProperty("items", out var items))
        {
            foreach (var item in items.EnumerateArray())
            {
                if (item.TryGetProperty("name", out var name))
                {
                    S3.S3ObjectStore.AddChild(names, name.GetString() ?? string.Empty, listPrefix);
                }
            }
        }

        return root.TryGetProperty("nextPageToken", out var token) ? token.GetString() : null;
    }

    private Task PutMediaAsync(string name, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string url = _uploadUrl + "?uploadType=media&name=" + Uri.EscapeDataString(name);
        return _policy.RunAsync("PUT", async c =>
        {
            var content = HttpBackend.Body(data);
            HttpBackend.SetOctetStream(content);
            using var req = new HttpRequestMessage(HttpMethod.Post, url) { Content = content };
            using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
            await HttpBackend.EnsureSuccessAsync(resp, "upload " + name, c).ConfigureAwait(false);
            return true;
        }, ct);
    }

    private async Task PutResumableAsync(string name, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string session = await StartResumableAsync(name, data.Length, ct).ConfigureAwait(false);
        for (int offset = 0; offset < data.Length; offset += _chunkSize)
        {
            var chunk = data.Slice(offset, Math.Min(_chunkSize, data.Length - offset));
            await PutChunkAsync(session, offset, chunk, offset + chunk.Length == data.Length ? data.Length : null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Starts a resumable upload and returns its session URI (the <c>Location</c> header).</summary>
    private Task<string> StartResumableAsync(string name, long? totalLength, CancellationToken ct)
    {
        string url = _uploadUrl + "?uploadType=resumable&name=" + Uri.EscapeDataString(name);
        return _policy.RunAsync("CREATE_MULTIPART", async c =>
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, url) { Content = HttpBackend.Body(ReadOnlyMemory<byte>.Empty) };
            req.Headers.TryAddWithoutValidation("X-Upload-Content-Type", "application/octet-stream");
            if (totalLength is { } total)
            {
                req.Headers.TryAddWithoutValidation("X-Upload-Content-Length", total.ToString(CultureInfo.InvariantCulture));
            }

            using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
            await HttpBackend.EnsureSuccessAsync(resp, "start resumable upload " + name, c).ConfigureAwait(false);
            var location = resp.Headers.Location ?? throw new BackendRequestException($"start resumable upload {name}: no Location header in the answer", resp.StatusCode);
            return location.IsAbsoluteUri ? location.ToString() : new Uri(new Uri(url), location).ToString();
        }, ct);
    }

    /// <summary>
    /// Sends one chunk at <paramref name="offset"/>; <paramref name="total"/> is set on the last chunk. The service
    /// answers 308 (more expected) or 200/201 (done).
    /// </summary>
    private Task PutChunkAsync(string session, long offset, ReadOnlyMemory<byte> chunk, long? total, CancellationToken ct) =>
        _policy.RunAsync("UPLOAD_PART", async c =>
        {
            var content = HttpBackend.Body(chunk);
            string range = chunk.Length == 0
                ? $"bytes */{total}"
                : string.Create(CultureInfo.InvariantCulture, $"bytes {offset}-{offset + chunk.Length - 1}/{(total is { } t ? t.ToString(CultureInfo.InvariantCulture) : "*")}");
            content.Headers.TryAddWithoutValidation("Content-Range", range);
            using var req = new HttpRequestMessage(HttpMethod.Put, session) { Content = content };
            using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, c).ConfigureAwait(false);
            if ((int)resp.StatusCode == 308 && total is null)
            {
                return true;
            }

            await HttpBackend.EnsureSuccessAsync(resp, "upload chunk", c).ConfigureAwait(false);
            if ((int)resp.StatusCode == 308)
            {
                throw new BackendRequestException("upload chunk: the service still expects data after the last chunk", resp.StatusCode);
            }

            return true;
        }, ct);

    private string ObjectUrl(string key) => _objectsUrl + "/" + Uri.EscapeDataString(FullName(key));

    private string FullName(string key)
    {
        ObjectKeys.Validate(key);
        return _prefix.Length == 0 ? key : _prefix + "/" + key;
    }

    private string ListPrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        string dir = prefix.Trim('/');
        ObjectKeys.Validate(dir, allowEmpty: true);
        string joined = _prefix.Length == 0 ? dir : dir.Length == 0 ? _prefix : _prefix + "/" + dir;
        return joined.Length == 0 ? string.Empty : joined + "/";
    }
}
