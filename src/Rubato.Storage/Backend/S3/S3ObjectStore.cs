using System.Buffers;
using System.Net;
using System.Runtime.InteropServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Rubato.Storage.Backend.Resilience;

namespace Rubato.Storage.Backend.S3;

/// <summary>
/// Tempo's <c>s3</c> backend over AWSSDK.S3: objects live at <c>[prefix/]key</c> in <see cref="S3ObjectStoreConfig.Bucket"/>.
/// </summary>
/// <remarks>
/// Thread-safe (one <see cref="AmazonS3Client"/> shared by all callers). The SDK's own retries are off
/// (<c>MaxErrorRetry = 0</c>): every request goes through <see cref="BackendRequestPolicy"/> so retries, hedged reads
/// and metrics behave the same on every backend. Payloads are sent unchunked (<c>UseChunkEncoding = false</c>) and
/// checksums only when S3 requires them, which S3-compatible servers such as s3rver and MinIO accept.
/// Objects smaller than the part size are one PutObject; larger ones a multipart upload (parts in parallel for an
/// in-memory object, one part buffered at a time for a stream), aborted when anything fails, so a reader never sees a
/// partial object: S3 makes the object visible only at CompleteMultipartUpload.
/// </remarks>
public sealed class S3ObjectStore : IObjectStore, IDisposable
{
    private const int MaxParallelParts = 4;
    private readonly AmazonS3Client _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly long _partSize;
    private readonly int _pageSize;
    private readonly bool _listRecursive;
    private readonly BackendRequestPolicy _policy;

    public S3ObjectStore(S3ObjectStoreConfig config, ObjectStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new ObjectStoreOptions();
        options.Validate();
        _bucket = config.Bucket;
        _prefix = config.Prefix.Trim('/');
        _partSize = config.EffectivePartSize();
        _pageSize = options.ListPageSize;
        _listRecursive = config.ListRecursive;
        _policy = new BackendRequestPolicy(
            "s3",
            config.RetryOptions(),
            config.HedgeOptions(),
            options.Metrics,
            options.Time,
            statusOf: e => e is AmazonServiceException a && a.StatusCode != 0 ? a.StatusCode : null,
            alsoTransient: IsChecksumMismatch);

        var s3 = new AmazonS3Config
        {
            ForcePathStyle = config.Forcepathstyle,
            MaxErrorRetry = 0,
            Timeout = options.RequestTimeout,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (config.Endpoint.Length > 0)
        {
            s3.ServiceURL = config.Endpoint.Contains("://", StringComparison.Ordinal)
                ? config.Endpoint
                : (config.Insecure ? "http://" : "https://") + config.Endpoint;
            s3.AuthenticationRegion = config.Region.Length > 0 ? config.Region : "us-east-1";
        }
        else
        {
            s3.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(config.Region);
        }

        if (options.Handler is { } handler)
        {
            s3.HttpClientFactory = new FixedHandlerFactory(handler);
        }

        _client = config.AccessKey.Length == 0
            ? new AmazonS3Client(s3)
            : new AmazonS3Client(
                config.SessionToken.Length > 0
                    ? new SessionAWSCredentials(config.AccessKey, config.SecretKey, config.SessionToken)
                    : new BasicAWSCredentials(config.AccessKey, config.SecretKey),
                s3);
    }

    public BackendRequestPolicy Policy => _policy;

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string full = FullKey(key);
        return data.Length < _partSize ? PutSingleAsync(full, data, ct) : PutMultipartAsync(full, data, ct);
    }

    public async Task PutAsync(string key, Stream data, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(data);
        string full = FullKey(key);
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)_partSize);
        try
        {
            int n = await ReadFullyAsync(data, buffer.AsMemory(0, (int)_partSize), ct).ConfigureAwait(false);
            if (n < _partSize)
            {
                await PutSingleAsync(full, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                return;
            }

            string uploadId = await InitiateAsync(full, ct).ConfigureAwait(false);
            try
            {
                var parts = new List<PartETag>();
                for (int partNumber = 1; n > 0; partNumber++)
                {
                    parts.Add(await UploadPartAsync(full, uploadId, partNumber, buffer.AsMemory(0, n), ct).ConfigureAwait(false));
                    n = await ReadFullyAsync(data, buffer.AsMemory(0, (int)_partSize), ct).ConfigureAwait(false);
                }

                await CompleteAsync(full, uploadId, parts, ct).ConfigureAwait(false);
            }
            catch
            {
                await AbortAsync(full, uploadId).ConfigureAwait(false);
                throw;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        string full = FullKey(key);
        try
        {
            return await _policy.RunAsync("GET", async c =>
            {
                using var resp = await _client.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = full }, c).ConfigureAwait(false);
                using var ms = resp.ContentLength > 0 ? new MemoryStream((int)resp.ContentLength) : new MemoryStream();
                await resp.ResponseStream.CopyToAsync(ms, c).ConfigureAwait(false);
                return ms.Length == ms.Capacity ? ms.GetBuffer() : ms.ToArray();
            }, ct, hedged: true).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        string full = FullKey(key);
        if (buffer.Length == 0)
        {
            return await ExistsAsync(key, ct).ConfigureAwait(false) ? 0 : throw new ObjectNotFoundException(key);
        }

        try
        {
            return await _policy.RunReadIntoAsync("GET_RANGE", buffer, async (into, c) =>
            {
                var request = new GetObjectRequest { BucketName = _bucket, Key = full, ByteRange = new ByteRange(offset, offset + into.Length - 1) };
                using var resp = await _client.GetObjectAsync(request, c).ConfigureAwait(false);

                // A server that ignores Range answers 200 with the whole object: skip to the offset.
                if (resp.HttpStatusCode == HttpStatusCode.OK && offset > 0)
                {
                    await SkipAsync(resp.ResponseStream, offset, c).ConfigureAwait(false);
                }

                // Read no further than the object's size from Content-Range ("bytes a-b/size"): s3rver 3.7 answers a range
                // on an empty object with a 1-byte promise and no body.
                var target = into;
                if (TotalFromContentRange(resp.ContentRange) is { } total)
                {
                    target = into[..(int)Math.Clamp(total - offset, 0, into.Length)];
                }

                return target.Length == 0 ? 0 : await ReadFullyAsync(resp.ResponseStream, target, c).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new ObjectNotFoundException(key, e);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            return 0; // The offset is at or past the end of an existing object.
        }
    }

    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct)
    {
        string listPrefix = ListPrefix(prefix);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        string? token = null;
        do
        {
            var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = listPrefix, Delimiter = _listRecursive ? null : "/", MaxKeys = _pageSize, ContinuationToken = token };
            var resp = await _policy.RunAsync("LIST", c => _client.ListObjectsV2Async(request, c), ct).ConfigureAwait(false);
            foreach (string p in resp.CommonPrefixes ?? [])
            {
                AddChild(names, p, listPrefix);
            }

            foreach (var o in resp.S3Objects ?? [])
            {
                AddChild(names, o.Key, listPrefix);
            }

            token = resp.IsTruncated == true ? resp.NextContinuationToken : null;
        }
        while (!string.IsNullOrEmpty(token));

        return [.. names];
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken ct)
    {
        string full = FullKey(key);
        try
        {
            await _policy.RunAsync("HEAD", c => _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = full }, c), ct, hedged: true).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public int ReadCoalesceGapBytes => ObjectStoreReadGaps.ObjectStore;

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        string full = FullKey(key);
        return _policy.RunAsync("DELETE", c => _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = _bucket, Key = full }, c), ct);
    }

    public void Dispose() => _client.Dispose();

    private Task PutSingleAsync(string fullKey, ReadOnlyMemory<byte> data, CancellationToken ct) =>
        _policy.RunAsync("PUT", c => _client.PutObjectAsync(
            new PutObjectRequest { BucketName = _bucket, Key = fullKey, InputStream = AsStream(data), UseChunkEncoding = false, AutoCloseStream = true },
            c), ct);

    private async Task PutMultipartAsync(string fullKey, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        string uploadId = await InitiateAsync(fullKey, ct).ConfigureAwait(false);
        try
        {
            int partCount = (int)((data.Length + _partSize - 1) / _partSize);
            var parts = new PartETag[partCount];
            await Parallel.ForEachAsync(
                Enumerable.Range(0, partCount),
                new ParallelOptions { MaxDegreeOfParallelism = MaxParallelParts, CancellationToken = ct },
                async (i, c) =>
                {
                    long start = i * _partSize;
                    var slice = data.Slice((int)start, (int)Math.Min(_partSize, data.Length - start));
                    parts[i] = await UploadPartAsync(fullKey, uploadId, i + 1, slice, c).ConfigureAwait(false);
                }).ConfigureAwait(false);
            await CompleteAsync(fullKey, uploadId, [.. parts], ct).ConfigureAwait(false);
        }
        catch
        {
            await AbortAsync(fullKey, uploadId).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<string> InitiateAsync(string fullKey, CancellationToken ct)
    {
        var resp = await _policy.RunAsync("CREATE_MULTIPART", c => _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = fullKey }, c), ct).ConfigureAwait(false);
        return resp.UploadId;
    }

    private async Task<PartETag> UploadPartAsync(string fullKey, string uploadId, int partNumber, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var resp = await _policy.RunAsync("UPLOAD_PART", c => _client.UploadPartAsync(
            new UploadPartRequest
            {
                BucketName = _bucket,
                Key = fullKey,
                UploadId = uploadId,
                PartNumber = partNumber,
                PartSize = data.Length,
                InputStream = AsStream(data),
                UseChunkEncoding = false,
            },
            c), ct).ConfigureAwait(false);
        return new PartETag(partNumber, resp.ETag);
    }

    private Task CompleteAsync(string fullKey, string uploadId, List<PartETag> parts, CancellationToken ct) =>
        _policy.RunAsync("COMPLETE_MULTIPART", c => _client.CompleteMultipartUploadAsync(
            new CompleteMultipartUploadRequest { BucketName = _bucket, Key = fullKey, UploadId = uploadId, PartETags = parts },
            c), ct);

    /// <summary>Best effort: an upload left behind costs storage until a lifecycle rule removes it (Tempo's advice).</summary>
    private async Task AbortAsync(string fullKey, string uploadId)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = fullKey, UploadId = uploadId }, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or OperationCanceledException or HttpRequestException)
        {
            // Leave it to the bucket's lifecycle policy.
        }
    }

    private string FullKey(string key)
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

    /// <summary>Adds the child name of <paramref name="keyOrPrefix"/> under <paramref name="listPrefix"/> (directory markers give none).</summary>
    internal static void AddChild(SortedSet<string> names, string keyOrPrefix, string listPrefix)
    {
        if (!keyOrPrefix.StartsWith(listPrefix, StringComparison.Ordinal))
        {
            return;
        }

        string rest = keyOrPrefix[listPrefix.Length..];
        int slash = rest.IndexOf('/');
        string name = slash < 0 ? rest : rest[..slash];
        if (name.Length > 0)
        {
            names.Add(name);
        }
    }

    /// <summary>
    /// The SDK checks a single-part object's body against its MD5 ETag and throws a plain client exception when they
    /// differ: bytes damaged in transit, or a server that is not atomic (s3rver writes the body and the metadata
    /// separately, so a read racing an overwrite can pair them wrongly). Reading again is the remedy for both.
    /// </summary>
    private static bool IsChecksumMismatch(Exception e) =>
        e is AmazonClientException && e.Message.Contains("hash not equal", StringComparison.OrdinalIgnoreCase);

    internal static long? TotalFromContentRange(string? contentRange)
    {
        int slash = contentRange?.LastIndexOf('/') ?? -1;
        return slash >= 0 && long.TryParse(contentRange.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long total)
            ? total
            : null;
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> data) =>
        MemoryMarshal.TryGetArray(data, out var seg)
            ? new MemoryStream(seg.Array!, seg.Offset, seg.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);

    internal static async Task<int> ReadFullyAsync(Stream s, Memory<byte> into, CancellationToken ct)
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

    internal static async Task SkipAsync(Stream s, long count, CancellationToken ct)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            while (count > 0)
            {
                int n = await s.ReadAsync(scratch.AsMemory(0, (int)Math.Min(scratch.Length, count)), ct).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }

                count -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private sealed class FixedHandlerFactory(HttpMessageHandler handler) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) => new(handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;
    }
}
