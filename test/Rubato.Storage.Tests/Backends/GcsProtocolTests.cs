using Rubato.Storage.Backend;
using Rubato.Storage.Backend.Gcs;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>
/// Protocol-level tests of <see cref="GcsObjectStore"/>: no GCS emulator is installable here, so an in-process server
/// asserts the exact requests (method, raw path and query, headers, body) the client sends to the JSON API and
/// replays responses shaped like those in the Cloud Storage JSON API reference (objects.insert, objects.get,
/// objects.list, objects.delete, resumable uploads).
/// </summary>
public sealed class GcsProtocolTests
{
    private const string Bucket = "bkt";

    private static string ObjectResource(string name, long size) =>
        $$"""{"kind":"storage#object","id":"{{Bucket}}/{{name}}/1700000000000000","name":"{{name}}","bucket":"{{Bucket}}","generation":"1700000000000000","metageneration":"1","contentType":"application/octet-stream","size":"{{size}}","etag":"CICAgICAgICAAQ=="}""";

    private static string NotFound(string name) =>
        "{\"error\":{\"code\":404,\"message\":\"No such object: " + Bucket + "/" + name + "\",\"errors\":[{\"message\":\"No such object: " + Bucket + "/" + name + "\",\"domain\":\"global\",\"reason\":\"notFound\"}]}}";

    private static GcsObjectStore Store(RecordingServer server, int chunk = 10 * 1024 * 1024, int pageSize = 1000) => new(
        new GcsObjectStoreConfig { BucketName = Bucket, Endpoint = server.BaseUrl + "/storage/v1/", Insecure = true, Prefix = "pre", ChunkBufferSize = chunk, RetryMaxAttempts = 1 },
        new ObjectStoreOptions { ListPageSize = pageSize });

    [Fact]
    public async Task PutAsync_SmallObject_IsOneMediaUploadToTheUploadEndpoint()
    {
        await using var server = await RecordingServer.StartAsync((ctx, _) => RecordingServer.Respond(ctx, 200, ObjectResource("pre/t1/b1/meta.json", 3)));
        using var store = Store(server);
        await store.PutAsync("t1/b1/meta.json", new byte[] { 1, 2, 3 }, default);

        var r = Assert.Single(server.Requests);
        Assert.Equal("POST", r.Method);
        Assert.Equal("/upload/storage/v1/b/bkt/o", r.Path);
        Assert.Equal("uploadType=media&name=pre%2Ft1%2Fb1%2Fmeta.json", r.Query);
        Assert.Equal("application/octet-stream", r.Header("Content-Type"));
        Assert.Equal("3", r.Header("Content-Length"));
        Assert.Null(r.Header("Authorization"));
        Assert.Equal(new byte[] { 1, 2, 3 }, r.Body);
    }

    [Fact]
    public async Task GetAsync_DownloadsMedia_MissingIsNull()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => r.Index == 0
            ? RecordingServer.RespondBytes(ctx, 200, [7, 8, 9])
            : RecordingServer.Respond(ctx, 404, NotFound("pre/t1/nope")));
        using var store = Store(server);
        Assert.Equal(new byte[] { 7, 8, 9 }, await store.GetAsync("t1/data", default));
        Assert.Null(await store.GetAsync("t1/nope", default));

        Assert.Equal(["GET /storage/v1/b/bkt/o/pre%2Ft1%2Fdata?alt=media", "GET /storage/v1/b/bkt/o/pre%2Ft1%2Fnope?alt=media"], server.Requests.Select(r => r.Method + " " + r.RawTarget));
        Assert.All(server.Requests, r => Assert.Null(r.Header("Range")));
    }

    [Fact]
    public async Task ReadRangeAsync_SendsRangeHeader_MapsNotFoundAndUnsatisfiable()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => r.Index switch
        {
            0 => RecordingServer.RespondBytes(ctx, 206, Enumerable.Range(10, 10).Select(i => (byte)i).ToArray(), ("Content-Range", "bytes 10-19/100")),
            1 => RecordingServer.Respond(ctx, 416, """{"error":{"code":416,"message":"The requested range cannot be satisfied."}}"""),
            _ => RecordingServer.Respond(ctx, 404, NotFound("pre/t1/gone")),
        });
        using var store = Store(server);
        var buf = new byte[10];
        Assert.Equal(10, await store.ReadRangeAsync("t1/data", 10, buf, default));
        Assert.Equal(Enumerable.Range(10, 10).Select(i => (byte)i), buf);
        Assert.Equal(0, await store.ReadRangeAsync("t1/data", 500, buf, default));
        var e = await Assert.ThrowsAsync<ObjectNotFoundException>(() => store.ReadRangeAsync("t1/gone", 0, buf, default));
        Assert.Equal("t1/gone", e.Key);

        var rs = server.Requests;
        Assert.Equal("/storage/v1/b/bkt/o/pre%2Ft1%2Fdata?alt=media", rs[0].RawTarget);
        Assert.Equal("bytes=10-19", rs[0].Header("Range"));
        Assert.Equal("bytes=500-509", rs[1].Header("Range"));
        Assert.Equal("/storage/v1/b/bkt/o/pre%2Ft1%2Fgone?alt=media", rs[2].RawTarget);
    }

    [Fact]
    public async Task ListAsync_FollowsPageTokens_MergesPrefixesAndItems()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => RecordingServer.Respond(ctx, 200, r.Index == 0
            ? """{"kind":"storage#objects","nextPageToken":"CgZ0b2tlbjE=","prefixes":["pre/t1/blockB/"],"items":[{"kind":"storage#object","name":"pre/t1/index.json.gz","bucket":"bkt","size":"12"}]}"""
            : """{"kind":"storage#objects","prefixes":["pre/t1/blockA/"]}"""));
        using var store = Store(server, pageSize: 2);
        Assert.Equal(["blockA", "blockB", "index.json.gz"], await store.ListAsync("t1", default));

        Assert.Equal(
            [
                "GET /storage/v1/b/bkt/o?delimiter=%2F&prefix=pre%2Ft1%2F&maxResults=2",
                "GET /storage/v1/b/bkt/o?delimiter=%2F&prefix=pre%2Ft1%2F&maxResults=2&pageToken=CgZ0b2tlbjE%3D",
            ],
            server.Requests.Select(r => r.Method + " " + r.RawTarget));
    }

    [Fact]
    public async Task ExistsAndDelete_UseObjectMetadataAndDelete_MissingIsNoError()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => r.Index switch
        {
            0 => RecordingServer.Respond(ctx, 200, ObjectResource("pre/t1/x", 1)),
            1 => RecordingServer.Respond(ctx, 404, NotFound("pre/t1/y")),
            2 => RecordingServer.Respond(ctx, 204),
            _ => RecordingServer.Respond(ctx, 404, NotFound("pre/t1/y")),
        });
        using var store = Store(server);
        Assert.True(await store.ExistsAsync("t1/x", default));
        Assert.False(await store.ExistsAsync("t1/y", default));
        await store.DeleteAsync("t1/x", default);
        await store.DeleteAsync("t1/y", default);

        Assert.Equal(
            ["GET /storage/v1/b/bkt/o/pre%2Ft1%2Fx", "GET /storage/v1/b/bkt/o/pre%2Ft1%2Fy", "DELETE /storage/v1/b/bkt/o/pre%2Ft1%2Fx", "DELETE /storage/v1/b/bkt/o/pre%2Ft1%2Fy"],
            server.Requests.Select(r => r.Method + " " + r.RawTarget));
    }

    [Fact]
    public async Task PutAsync_LargeObject_IsResumableUploadInChunks()
    {
        const int chunk = GcsObjectStoreConfig.ChunkGranularity;
        byte[] data = new byte[(2 * chunk) + 1000];
        new Random(3).NextBytes(data);
        RecordingServer? srv = null;
        await using var server = srv = await RecordingServer.StartAsync((ctx, r) =>
        {
            if (r.Index == 0)
            {
                return RecordingServer.Respond(ctx, 200, null, headers: ("Location", srv!.BaseUrl + "/upload/storage/v1/b/bkt/o?uploadType=resumable&name=pre%2Fbig&upload_id=ADPycdu"));
            }

            var range = r.Header("Content-Range")!;
            return range.EndsWith("/*", StringComparison.Ordinal)
                ? RecordingServer.Respond(ctx, 308, null)
                : RecordingServer.Respond(ctx, 200, ObjectResource("pre/big", data.Length));
        });
        using var store = Store(server, chunk: chunk);
        await store.PutAsync("big", data, default);

        var rs = server.Requests;
        Assert.Equal(4, rs.Count);
        Assert.Equal("POST /upload/storage/v1/b/bkt/o?uploadType=resumable&name=pre%2Fbig", rs[0].Method + " " + rs[0].RawTarget);
        Assert.Equal("application/octet-stream", rs[0].Header("X-Upload-Content-Type"));
        Assert.Equal(data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), rs[0].Header("X-Upload-Content-Length"));
        Assert.Empty(rs[0].Body);
        Assert.All(rs.Skip(1), r => Assert.Equal("PUT /upload/storage/v1/b/bkt/o?uploadType=resumable&name=pre%2Fbig&upload_id=ADPycdu", r.Method + " " + r.RawTarget));
        Assert.Equal($"bytes 0-{chunk - 1}/*", rs[1].Header("Content-Range"));
        Assert.Equal($"bytes {chunk}-{(2 * chunk) - 1}/*", rs[2].Header("Content-Range"));
        Assert.Equal($"bytes {2 * chunk}-{data.Length - 1}/{data.Length}", rs[3].Header("Content-Range"));
        Assert.Equal(data, rs.Skip(1).SelectMany(r => r.Body).ToArray());
    }

    [Fact]
    public async Task PutAsync_StreamOfWholeChunks_FinishesWithEmptyFinalizingPut()
    {
        const int chunk = GcsObjectStoreConfig.ChunkGranularity;
        byte[] data = new byte[2 * chunk];
        new Random(4).NextBytes(data);
        RecordingServer? srv = null;
        await using var server = srv = await RecordingServer.StartAsync((ctx, r) => r.Index switch
        {
            0 => RecordingServer.Respond(ctx, 200, null, headers: ("Location", srv!.BaseUrl + "/upload/storage/v1/b/bkt/o?uploadType=resumable&name=pre%2Fs&upload_id=U1")),
            1 or 2 => RecordingServer.Respond(ctx, 308, null),
            _ => RecordingServer.Respond(ctx, 200, ObjectResource("pre/s", data.Length)),
        });
        using var store = Store(server, chunk: chunk);
        await store.PutAsync("s", new MemoryStream(data), default);

        var rs = server.Requests;
        Assert.Equal(4, rs.Count);
        Assert.Null(rs[0].Header("X-Upload-Content-Length")); // unknown until the stream ends
        Assert.Equal($"bytes 0-{chunk - 1}/*", rs[1].Header("Content-Range"));
        Assert.Equal($"bytes {chunk}-{(2 * chunk) - 1}/*", rs[2].Header("Content-Range"));
        Assert.Equal($"bytes */{2 * chunk}", rs[3].Header("Content-Range"));
        Assert.Empty(rs[3].Body);
        Assert.Equal(data, rs.Skip(1).SelectMany(r => r.Body).ToArray());
    }

    [Fact]
    public async Task PutAsync_ServerRejectsUpload_ThrowsWithStatusAndBody()
    {
        await using var server = await RecordingServer.StartAsync((ctx, _) => RecordingServer.Respond(ctx, 403, """{"error":{"code":403,"message":"Access denied."}}"""));
        using var store = Store(server);
        var e = await Assert.ThrowsAsync<Rubato.Storage.Backend.Resilience.BackendRequestException>(() => store.PutAsync("x", "hi"u8.ToArray(), default));
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, e.Status);
        Assert.Contains("Access denied", e.Message);
        Assert.Equal(1, server.Count);
    }

    [Theory]
    [InlineData("https://storage.googleapis.com/storage/v1/", "https://storage.googleapis.com/storage/v1/", "https://storage.googleapis.com/upload/storage/v1/")]
    [InlineData("http://127.0.0.1:4443/storage/v1", "http://127.0.0.1:4443/storage/v1/", "http://127.0.0.1:4443/upload/storage/v1/")]
    [InlineData("http://proxy:8080/gcs/", "http://proxy:8080/gcs/", "http://proxy:8080/gcs/")]
    public void BaseUrls_DerivesUploadBase(string endpoint, string api, string upload) =>
        Assert.Equal((api, upload), GcsObjectStore.BaseUrls(endpoint));
}
