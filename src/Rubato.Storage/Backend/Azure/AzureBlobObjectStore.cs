using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using System.Xml;
using Rubato.Storage.Backend.Resilience;

namespace Rubato.Storage.Backend.Azure;

/// <summary>
/// Tempo's <c>azure</c> backend: a Blob service REST client over <see cref="HttpClient"/>, authenticated with the
/// account key (Shared Key). Objects are block blobs at <c>[prefix/]key</c> in <see cref="AzureObjectStoreConfig.ContainerName"/>.
/// </summary>
/// <remarks>
/// Thread-safe. Blobs up to <see cref="AzureObjectStoreConfig.BufferSize"/> are one Put Blob; larger ones are staged
/// as blocks of that size (<see cref="AzureObjectStoreConfig.MaxBuffers"/> in flight) and committed by one Put Block
/// List, which replaces the blob atomically: readers see the old blob until the commit. Blocks of a failed upload stay
/// uncommitted and the service discards them (after a week). Every request runs through
/// <see cref="BackendRequestPolicy"/>; Get Blob and Get Properties are hedged when configured.
/// </remarks>
public sealed class AzureBlobObjectStore : IObjectStore, IDisposable
{
    /// <summary>The REST API version sent in <c>x-ms-version</c>.</summary>
    public const string ApiVersion = "2021-12-02";

    private readonly HttpClient _http;
    private readonly AzureSharedKey _signer;
    private readonly string _containerUrl;
    private readonly string _prefix;
    private readonly int _bufferSize;
    private readonly int _maxBuffers;
    private readonly int _pageSize;
    private readonly TimeProvider _time;
    private readonly BackendRequestPolicy _policy;

    public AzureBlobObjectStore(AzureObjectStoreConfig config, ObjectStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new ObjectStoreOptions();
        options.Validate();
        _signer = new AzureSharedKey(config.EffectiveAccountName(), config.EffectiveAccountKey());
        _containerUrl = config.ServiceUri().ToString().TrimEnd('/') + "/" + Uri.EscapeDataString(config.ContainerName);
        _prefix = config.Prefix.Trim('/');
        _bufferSize = config.BufferSize;
        _maxBuffers = config.MaxBuffers;
        _pageSize = options.ListPageSize;
        _time = options.Time ?? TimeProvider.System;
        _http = HttpBackend.CreateClient(options);
        _policy = new BackendRequestPolicy("azure", config.RetryOptions(), config.HedgeOptions(), options.Metrics, options.Time);
    }

    public BackendRequestPolicy Policy => _policy;

    /// <summary>The container's URL (no trailing slash).</summary>
    public string ContainerUrl => _containerUrl;

    /// <summary>Create Container, treating "already exists" (409) as success. Tempo expects the container to exist.</summary>
    public Task CreateContainerIfNotExistsAsync(CancellationToken ct) =>
        _policy.RunAsync("CREATE_CONTAINER", async c =>
        {
            using var req = Request(HttpMethod.Put, _containerUrl + "?restype=container");
            using var resp = await SendAsync(req, c).ConfigureAwait(false);
            if (resp.StatusCode != HttpStatusCode.Conflict)
            {
                await HttpBackend.EnsureSuccessAsync(resp, "create container", c).ConfigureAwait(false);
            }

            return true;
        }, ct);

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string url = BlobUrl(key);
        if (data.Length <= _bufferSize)
        {
            return PutBlobAsync(url, data, ct);
        }

        return PutBlocksAsync(url, data, ct);
    }

    public async Task PutAsync(string key, Stream data, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(data);
        string url = BlobUrl(key);
        string uploadId = Guid.NewGuid().ToString("N");
        var ids = new List<string>();
        var inflight = new List<Task>();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            while (true)
            {
                byte[] buffer = ArrayPool<byte>.Shared.Rent(_bufferSize);
                int n;
                try
                {
                    n = await HttpBackend.ReadFullyAsync(data, buffer.AsMemory(0, _bufferSize), failed.Token).ConfigureAwait(false);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }

                if (ids.Count == 0 && n < _bufferSize)
                {
                    try
                    {
                        await PutBlobAsync(url, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }

                    return;
                }

                if (n == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    break;
                }

                string id = BlockId(uploadId, ids.Count);
                ids.Add(id);
                inflight.Add(PutPooledBlockAsync(url, id, buffer, n, failed.Token));
                if (inflight.Count >= _maxBuffers)
                {
                    Task done = await Task.WhenAny(inflight).ConfigureAwait(false);
                    inflight.Remove(done);
                    await done.ConfigureAwait(false);
                }

                if (n < _bufferSize)
                {
                    break;
                }
            }

            await Task.WhenAll(inflight).ConfigureAwait(false);
            inflight.Clear();
            await PutBlockListAsync(url, ids, ct).ConfigureAwait(false);
        }
        finally
        {
            if (inflight.Count > 0)
            {
                // Failing: stop the other block uploads and wait so their pooled buffers are returned.
                await failed.CancelAsync().ConfigureAwait(false);
                try
                {
                    await Task.WhenAll(inflight).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or BackendRequestException or HttpRequestException or IOException)
                {
                    // The first failure is already propagating.
                }
            }
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        string url = BlobUrl(key);
        try
        {
            return await _policy.RunAsync("GET", async c =>
            {
                using var req = Request(HttpMethod.Get, url);
                using var resp = await SendAsync(req, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "get blob " + key, c).ConfigureAwait(false);
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
        string url = BlobUrl(key);
        if (buffer.Length == 0)
        {
            return await ExistsAsync(key, ct).ConfigureAwait(false) ? 0 : throw new ObjectNotFoundException(key);
        }

        try
        {
            return await _policy.RunReadIntoAsync("GET_RANGE", buffer, async (into, c) =>
            {
                using var req = Request(HttpMethod.Get, url);
                req.Headers.TryAddWithoutValidation("x-ms-range", string.Create(CultureInfo.InvariantCulture, $"bytes={offset}-{offset + into.Length - 1}"));
                using var resp = await SendAsync(req, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "get blob range " + key, c).ConfigureAwait(false);
                await using var body = await resp.Content.ReadAsStreamAsync(c).ConfigureAwait(false);
                return await HttpBackend.ReadFullyAsync(body, into, c).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
        }
        catch (BackendRequestException e) when (HttpBackend.IsNotFound(e))
        {
            throw new ObjectNotFoundException(key, e);
        }
        catch (BackendRequestException e) when (HttpBackend.IsRangeNotSatisfiable(e))
        {
            return 0; // The offset is at or past the end of an existing blob.
        }
    }

    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct)
    {
        string listPrefix = ListPrefix(prefix);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        string? marker = null;
        do
        {
            var url = new StringBuilder(_containerUrl).Append("?restype=container&comp=list&delimiter=%2F");
            url.Append("&maxresults=").Append(_pageSize.ToString(CultureInfo.InvariantCulture));
            if (listPrefix.Length > 0)
            {
                url.Append("&prefix=").Append(Uri.EscapeDataString(listPrefix));
            }

            if (!string.IsNullOrEmpty(marker))
            {
                url.Append("&marker=").Append(Uri.EscapeDataString(marker));
            }

            string pageUrl = url.ToString();
            string xml = await _policy.RunAsync("LIST", async c =>
            {
                using var req = Request(HttpMethod.Get, pageUrl);
                using var resp = await SendAsync(req, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "list blobs", c).ConfigureAwait(false);
                return await resp.Content.ReadAsStringAsync(c).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
            marker = ParseListPage(xml, listPrefix, names);
        }
        while (!string.IsNullOrEmpty(marker));

        return [.. names];
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken ct)
    {
        string url = BlobUrl(key);
        try
        {
            return await _policy.RunAsync("HEAD", async c =>
            {
                using var req = Request(HttpMethod.Head, url);
                using var resp = await SendAsync(req, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "get blob properties " + key, c).ConfigureAwait(false);
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
        string url = BlobUrl(key);
        try
        {
            await _policy.RunAsync("DELETE", async c =>
            {
                using var req = Request(HttpMethod.Delete, url);
                using var resp = await SendAsync(req, c).ConfigureAwait(false);
                await HttpBackend.EnsureSuccessAsync(resp, "delete blob " + key, c).ConfigureAwait(false);
                return true;
            }, ct).ConfigureAwait(false);
        }
        catch (BackendRequestException e) when (HttpBackend.IsNotFound(e))
        {
            // Deleting a missing blob is not an error.
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Reads one List Blobs page into <paramref name="names"/>; returns the next marker (empty at the end).</summary>
    internal static string ParseListPage(string xml, string listPrefix, SortedSet<string> names)
    {
        string marker = string.Empty;
        using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, IgnoreWhitespace = true });
        string? parent = null;
        while (reader.Read())
        {
            if (reader.NodeType != XmlNodeType.Element)
            {
                continue;
            }

            switch (reader.Name)
            {
                case "Blob":
                case "BlobPrefix":
                    parent = reader.Name;
                    break;
                case "Name" when parent is not null:
                    S3.S3ObjectStore.AddChild(names, reader.ReadElementContentAsString(), listPrefix);
                    parent = null;
                    break;
                case "NextMarker":
                    marker = reader.IsEmptyElement ? string.Empty : reader.ReadElementContentAsString();
                    break;
            }
        }

        return marker;
    }

    private Task PutBlobAsync(string url, ReadOnlyMemory<byte> data, CancellationToken ct) =>
        _policy.RunAsync("PUT", async c =>
        {
            using var req = Request(HttpMethod.Put, url, HttpBackend.Body(data), ("x-ms-blob-type", "BlockBlob"));
            using var resp = await SendAsync(req, c).ConfigureAwait(false);
            await HttpBackend.EnsureSuccessAsync(resp, "put blob", c).ConfigureAwait(false);
            return true;
        }, ct);

    private async Task PutBlocksAsync(string url, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string uploadId = Guid.NewGuid().ToString("N");
        int count = (int)((data.Length + (long)_bufferSize - 1) / _bufferSize);
        var ids = Enumerable.Range(0, count).Select(i => BlockId(uploadId, i)).ToList();
        await Parallel.ForEachAsync(
            Enumerable.Range(0, count),
            new ParallelOptions { MaxDegreeOfParallelism = _maxBuffers, CancellationToken = ct },
            async (i, c) =>
            {
                int start = i * _bufferSize;
                await PutBlockAsync(url, ids[i], data.Slice(start, Math.Min(_bufferSize, data.Length - start)), c).ConfigureAwait(false);
            }).ConfigureAwait(false);
        await PutBlockListAsync(url, ids, ct).ConfigureAwait(false);
    }

    private async Task PutPooledBlockAsync(string url, string id, byte[] buffer, int count, CancellationToken ct)
    {
        try
        {
            await PutBlockAsync(url, id, buffer.AsMemory(0, count), ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private Task PutBlockAsync(string url, string id, ReadOnlyMemory<byte> data, CancellationToken ct) =>
        _policy.RunAsync("PUT_BLOCK", async c =>
        {
            using var req = Request(HttpMethod.Put, url + "?comp=block&blockid=" + Uri.EscapeDataString(id), HttpBackend.Body(data));
            using var resp = await SendAsync(req, c).ConfigureAwait(false);
            await HttpBackend.EnsureSuccessAsync(resp, "put block", c).ConfigureAwait(false);
            return true;
        }, ct);

    private Task PutBlockListAsync(string url, List<string> ids, CancellationToken ct)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        foreach (string id in ids)
        {
            xml.Append("<Latest>").Append(id).Append("</Latest>");
        }

        byte[] body = System.Text.Encoding.UTF8.GetBytes(xml.Append("</BlockList>").ToString());
        return _policy.RunAsync("PUT_BLOCK_LIST", async c =>
        {
            using var req = Request(HttpMethod.Put, url + "?comp=blocklist", HttpBackend.Body(body));
            using var resp = await SendAsync(req, c).ConfigureAwait(false);
            await HttpBackend.EnsureSuccessAsync(resp, "put block list", c).ConfigureAwait(false);
            return true;
        }, ct);
    }

    /// <summary>Block ids of one blob must all have the same length: 32 hex chars of the upload plus a 6-digit index.</summary>
    private static string BlockId(string uploadId, int index) =>
        Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(uploadId + index.ToString("D6", CultureInfo.InvariantCulture)));

    private HttpRequestMessage Request(HttpMethod method, string url, HttpContent? content = null, params (string Name, string Value)[] headers)
    {
        var req = new HttpRequestMessage(method, url) { Content = content };
        req.Headers.TryAddWithoutValidation("x-ms-version", ApiVersion);
        foreach (var (name, value) in headers)
        {
            req.Headers.TryAddWithoutValidation(name, value);
        }

        return req;
    }

    /// <summary>Signs (with a fresh x-ms-date: each retry is a new request) and sends, returning once headers arrive.</summary>
    private Task<HttpResponseMessage> SendAsync(HttpRequestMessage req, CancellationToken ct)
    {
        _signer.Sign(req, _time.GetUtcNow());
        return _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    private string BlobUrl(string key)
    {
        ObjectKeys.Validate(key);
        string full = _prefix.Length == 0 ? key : _prefix + "/" + key;
        return _containerUrl + "/" + string.Join('/', full.Split('/').Select(Uri.EscapeDataString));
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
