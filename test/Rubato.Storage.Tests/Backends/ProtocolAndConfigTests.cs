using Rubato.Common.Configuration;
using Rubato.Storage.Backend;
using Rubato.Storage.Backend.Azure;
using Rubato.Storage.Backend.Gcs;
using Rubato.Storage.Backend.S3;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>
/// Protocol-level S3 delimiter listing (s3rver cannot serve it correctly, so the conformance suite runs s3rver with
/// <c>list_recursive</c>): an in-process server replays ListObjectsV2 pages shaped like S3's and checks the queries.
/// </summary>
public sealed class S3ListProtocolTests
{
    private const string Page1 = """
        <?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>pre/t1/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>pre/t1/index.json.gz</Key><LastModified>2026-11-21T00:00:00.000Z</LastModified><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>pre/t1/blockB/</Prefix></CommonPrefixes></ListBucketResult>
        """;

    private const string Page2 = """
        <?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>pre/t1/</Prefix><KeyCount>1</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated><ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken><CommonPrefixes><Prefix>pre/t1/blockA/</Prefix></CommonPrefixes></ListBucketResult>
        """;

    [Fact]
    public async Task ListAsync_DelimiterListing_FollowsContinuationTokens()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => RecordingServer.Respond(ctx, 200, r.Index == 0 ? Page1 : Page2, "application/xml"));
        using var store = new S3ObjectStore(
            new S3ObjectStoreConfig
            {
                Bucket = "bkt", Endpoint = $"127.0.0.1:{server.Port}", Insecure = true, Forcepathstyle = true, Region = "us-east-1",
                AccessKey = "AK", SecretKey = "SK", Prefix = "pre",
            },
            new ObjectStoreOptions { ListPageSize = 2 });
        Assert.Equal(["blockA", "blockB", "index.json.gz"], await store.ListAsync("t1", default));

        var rs = server.Requests;
        Assert.Equal(2, rs.Count);
        var q0 = Query(rs[0]);
        Assert.Equal("/bkt/", rs[0].Path);
        Assert.Equal("2", q0["list-type"]);
        Assert.Equal("/", q0["delimiter"]);
        Assert.Equal("pre/t1/", q0["prefix"]);
        Assert.Equal("2", q0["max-keys"]);
        Assert.False(q0.ContainsKey("continuation-token"));
        Assert.Equal("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", Query(rs[1])["continuation-token"]);
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AK/", rs[0].Header("Authorization"));
    }

    private static Dictionary<string, string> Query(RecordedRequest r) =>
        r.Query.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0]), p => p.Length > 1 ? Uri.UnescapeDataString(p[1]) : string.Empty);
}

public sealed class AzureSharedKeyTests
{
    [Fact]
    public void StringToSign_CanonicalizesHeadersAndQuery()
    {
        var signer = new AzureSharedKey("myaccount", Convert.ToBase64String(new byte[32]));
        using var req = new HttpRequestMessage(HttpMethod.Put, "https://myaccount.blob.core.windows.net/mycontainer/a%20b/c?comp=block&blockid=QUJD%3D&Timeout=30")
        {
            Content = new ByteArrayContent(new byte[11]),
        };
        req.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        req.Headers.TryAddWithoutValidation("x-ms-version", "2021-12-02");
        req.Headers.TryAddWithoutValidation("X-MS-Date", "Sat, 21 Nov 2026 00:00:00 GMT");
        req.Headers.TryAddWithoutValidation("x-ms-blob-type", "BlockBlob");

        string expected =
            "PUT\n\n\n11\n\napplication/octet-stream\n\n\n\n\n\n\n" +
            "x-ms-blob-type:BlockBlob\nx-ms-date:Sat, 21 Nov 2026 00:00:00 GMT\nx-ms-version:2021-12-02\n" +
            "/myaccount/mycontainer/a%20b/c\nblockid:QUJD=\ncomp:block\ntimeout:30";
        Assert.Equal(expected, signer.StringToSign(req));
    }

    [Fact]
    public void StringToSign_EmptyBodyAndEmulatorPath_LeavesLengthEmptyAndRepeatsAccount()
    {
        var signer = new AzureSharedKey("devstoreaccount1", Convert.ToBase64String(new byte[32]));
        using var req = new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1:10000/devstoreaccount1/c?restype=container&comp=list&prefix=p%2F&delimiter=%2F");
        req.Headers.TryAddWithoutValidation("x-ms-date", "Sat, 21 Nov 2026 00:00:00 GMT");
        req.Headers.TryAddWithoutValidation("x-ms-version", "2021-12-02");
        Assert.Equal(
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sat, 21 Nov 2026 00:00:00 GMT\nx-ms-version:2021-12-02\n" +
            "/devstoreaccount1/devstoreaccount1/c\ncomp:list\ndelimiter:/\nprefix:p/\nrestype:container",
            signer.StringToSign(req));
    }

    [Fact]
    public void Sign_AddsSharedKeyAuthorization_DeterministicForSameInput()
    {
        var signer = new AzureSharedKey("acct", Convert.ToBase64String(Enumerable.Range(0, 64).Select(i => (byte)i).ToArray()));
        var now = new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero);
        using var a = new HttpRequestMessage(HttpMethod.Head, "https://acct.blob.core.windows.net/c/k");
        using var b = new HttpRequestMessage(HttpMethod.Head, "https://acct.blob.core.windows.net/c/k");
        signer.Sign(a, now);
        signer.Sign(b, now);
        Assert.Equal("SharedKey", a.Headers.Authorization!.Scheme);
        Assert.StartsWith("acct:", a.Headers.Authorization.Parameter);
        Assert.Equal(a.Headers.Authorization, b.Headers.Authorization);
        Assert.Equal("Sat, 21 Nov 2026 00:00:00 GMT", a.Headers.GetValues("x-ms-date").Single());
    }

    [Fact]
    public void Constructor_KeyNotBase64_Throws() =>
        Assert.Contains("base64", Assert.Throws<ArgumentException>(() => new AzureSharedKey("a", "not base64!")).Message);
}

public sealed class ObjectStoreConfigTests
{
    [Fact]
    public void S3Validate_MissingBucketAndSmallPart_NamesKeys()
    {
        var v = new ConfigValidation();
        new S3ObjectStoreConfig { PartSize = 1024, AccessKey = "a", HedgeRequestsUpTo = 0 }.Validate("storage.trace.s3", v);
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.s3.bucket:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.s3.region:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.s3.secret_key:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.s3.part_size:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.s3.hedge_requests_up_to:", StringComparison.Ordinal));
    }

    [Fact]
    public void S3Validate_TempoStyleConfig_IsValid()
    {
        var v = new ConfigValidation();
        new S3ObjectStoreConfig { Bucket = "tempo", Endpoint = "minio:9000", Insecure = true, Forcepathstyle = true, Prefix = "traces/" }.Validate("storage.trace.s3", v);
        Assert.Empty(v.Errors);
        Assert.Equal(S3ObjectStoreConfig.DefaultPartSize, new S3ObjectStoreConfig().EffectivePartSize());
    }

    [Fact]
    public void AzureValidate_UnsupportedAuthAndMissingContainer_NamesKeys()
    {
        var v = new ConfigValidation();
        new AzureObjectStoreConfig { StorageAccountName = "a", UseFederatedToken = true, MaxBuffers = 0 }.Validate("storage.trace.azure", v);
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.azure.container_name:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.azure.use_federated_token:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.azure.max_buffers:", StringComparison.Ordinal));

        var bad = new ConfigValidation();
        new AzureObjectStoreConfig { StorageAccountName = "a", StorageAccountKey = "***", ContainerName = "c" }.Validate("p", bad);
        Assert.Equal(["p.storage_account_key: is not valid base64"], bad.Errors);
    }

    [Theory]
    [InlineData("blob.core.windows.net", "https://acct.blob.core.windows.net/")]
    [InlineData("blob.core.chinacloudapi.cn", "https://acct.blob.core.chinacloudapi.cn/")]
    [InlineData("127.0.0.1:10000", "http://127.0.0.1:10000/acct")]
    [InlineData("azurite:10000", "http://azurite:10000/acct")]
    public void AzureServiceUri_FollowsTempoEmulatorRule(string suffix, string expected) =>
        Assert.Equal(expected, new AzureObjectStoreConfig { StorageAccountName = "acct", EndpointSuffix = suffix }.ServiceUri().ToString());

    [Fact]
    public void GcsValidate_SecureOrBadChunk_NamesKeys()
    {
        var v = new ConfigValidation();
        new GcsObjectStoreConfig { BucketName = "b", ChunkBufferSize = 1000 }.Validate("storage.trace.gcs", v);
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.gcs.insecure:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.gcs.chunk_buffer_size:", StringComparison.Ordinal));

        var ok = new ConfigValidation();
        new GcsObjectStoreConfig { BucketName = "b", Insecure = true, Endpoint = "http://127.0.0.1:4443/storage/v1/" }.Validate("storage.trace.gcs", ok);
        Assert.Empty(ok.Errors);
    }

    [Fact]
    public void Create_EachBackend_BuildsItsStore()
    {
        using var dir = new TempDir();
        var configs = new ObjectStoreConfigs
        {
            LocalPath = dir.Path,
            S3 = new S3ObjectStoreConfig { Bucket = "b", Endpoint = "127.0.0.1:1", Insecure = true },
            Azure = new AzureObjectStoreConfig { StorageAccountName = "a", StorageAccountKey = Convert.ToBase64String(new byte[16]), ContainerName = "c" },
            Gcs = new GcsObjectStoreConfig { BucketName = "b", Insecure = true },
        };
        Assert.IsType<LocalObjectStore>(ObjectStores.Create("local", configs));
        using (var s3 = Assert.IsType<S3ObjectStore>(ObjectStores.Create("s3", configs)))
        using (var az = Assert.IsType<AzureBlobObjectStore>(ObjectStores.Create("azure", configs)))
        using (var gcs = Assert.IsType<GcsObjectStore>(ObjectStores.Create("gcs", configs)))
        {
            Assert.Equal("https://a.blob.core.windows.net/c", az.ContainerUrl);
        }
    }

    [Fact]
    public void Create_UnknownBackendOrInvalidSection_ThrowsNamingTheKey()
    {
        var configs = new ObjectStoreConfigs();
        Assert.Contains("storage.trace.backend", Assert.Throws<ArgumentException>(() => ObjectStores.Create("ftp", configs)).Message);
        Assert.Contains("storage.trace.s3.bucket", Assert.Throws<ArgumentException>(() => ObjectStores.Create("s3", configs)).Message);
        Assert.Contains("storage.trace.local.path", Assert.Throws<ArgumentException>(() => ObjectStores.Create("local", configs)).Message);
    }
}
