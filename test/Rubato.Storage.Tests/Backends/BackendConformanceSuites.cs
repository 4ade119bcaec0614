using Rubato.Storage.Backend;
using Rubato.Storage.Backend.Azure;
using Rubato.Storage.Backend.S3;
using Rubato.TestSupport;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>The conformance suite on the reference implementation, a folder per test.</summary>
public sealed class LocalObjectStoreConformanceTests : ObjectStoreConformanceTests
{
    private readonly TempDir _dir = new();

    protected override IObjectStore CreateStore(ObjectStoreOptions options) => new LocalObjectStore(_dir.Path);

    public override void Dispose()
    {
        base.Dispose();
        _dir.Dispose();
    }
}

/// <summary>The conformance suite on <see cref="S3ObjectStore"/> against a real s3rver, a key prefix per test.</summary>
public sealed class S3ObjectStoreConformanceTests(S3rverFixture server) : ObjectStoreConformanceTests, IClassFixture<S3rverFixture>
{
    private readonly string _prefix = "p-" + Guid.NewGuid().ToString("N");

    /// <summary>s3rver writes body and metadata separately, so racing writers of one key can pair them wrongly.</summary>
    protected override bool ServerKeepsRacingWritesWhole => false;

    protected override IObjectStore CreateStore(ObjectStoreOptions options)
    {
        // Recursive listing: s3rver 3.7's delimiter listings are incomplete; S3ListProtocolTests cover the delimiter path.
        var config = ObjectStoreServers.S3Config(server.Server, S3rverFixture.Bucket);
        config.Prefix = _prefix;
        config.PartSize = PartSize;
        return new S3ObjectStore(config, options);
    }

    [Fact]
    public async Task Requests_AreCountedPerOperationAndStatus()
    {
        await Store.PutAsync("m/x", new byte[] { 1 }, default);
        Assert.NotNull(await Store.GetAsync("m/x", default));
        Assert.Null(await Store.GetAsync("m/missing", default));
        await Store.PutAsync("m/big", Pattern((2 * PartSize) + 1), default);
        var requests = Metrics.Counter("rubato_backend_requests_total", string.Empty, "backend", "operation", "status");
        Assert.Equal(1, requests.Value("s3", "PUT", "2xx")); // "m/big" goes in parts
        Assert.Equal(1, requests.Value("s3", "GET", "2xx"));
        Assert.Equal(1, requests.Value("s3", "GET", "404"));
        Assert.Equal(1, requests.Value("s3", "CREATE_MULTIPART", "2xx"));
        Assert.Equal(3, requests.Value("s3", "UPLOAD_PART", "2xx"));
        Assert.Equal(1, requests.Value("s3", "COMPLETE_MULTIPART", "2xx"));
        Assert.Contains("rubato_backend_request_duration_seconds_count{backend=\"s3\",operation=\"GET\",status=\"404\"} 1", Metrics.Render());
    }

    [Fact]
    public async Task PrefixedStore_DoesNotSeeOtherPrefixes()
    {
        await Store.PutAsync("t/a", new byte[] { 1 }, default);
        var otherConfig = ObjectStoreServers.S3Config(server.Server, S3rverFixture.Bucket);
        otherConfig.Prefix = _prefix + "-other/";
        otherConfig.ListRecursive = false;
        using var other = new S3ObjectStore(otherConfig);
        Assert.Empty(await other.ListAsync("", default));
        Assert.Null(await other.GetAsync("t/a", default));
        Assert.Equal(["t"], await Store.ListAsync("", default));
    }
}

/// <summary>The conformance suite on <see cref="AzureBlobObjectStore"/> against a real Azurite, a blob prefix per test.</summary>
public sealed class AzureBlobObjectStoreConformanceTests(AzuriteFixture server) : ObjectStoreConformanceTests, IClassFixture<AzuriteFixture>
{
    private readonly string _prefix = "p-" + Guid.NewGuid().ToString("N");

    protected override IObjectStore CreateStore(ObjectStoreOptions options)
    {
        var config = ObjectStoreServers.AzureConfig(server.Server, AzuriteFixture.Container);
        config.Prefix = _prefix;
        config.BufferSize = PartSize;
        return new AzureBlobObjectStore(config, options);
    }

    [Fact]
    public void ContainerUrl_EmulatorSuffix_IsPathStyle() =>
        Assert.Equal($"http://{server.EndpointSuffix}/{AzuriteFixture.Account}/{AzuriteFixture.Container}", ((AzureBlobObjectStore)Store).ContainerUrl);

    [Fact]
    public async Task WrongAccountKey_FailsWith403WithoutRetrying()
    {
        var metrics = new Rubato.Common.Metrics.MetricsRegistry();
        var config = ObjectStoreServers.AzureConfig(server.Server, AzuriteFixture.Container);
        config.StorageAccountKey = Convert.ToBase64String(new byte[64]);
        using var bad = new AzureBlobObjectStore(config, new ObjectStoreOptions { Metrics = metrics });
        var e = await Assert.ThrowsAsync<Rubato.Storage.Backend.Resilience.BackendRequestException>(() => bad.PutAsync("x", new byte[1], default));
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, e.Status);
        Assert.Equal(1, metrics.Counter("rubato_backend_requests_total", string.Empty, "backend", "operation", "status").Value("azure", "PUT", "403"));
    }
}
