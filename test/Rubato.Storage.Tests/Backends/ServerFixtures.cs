using Rubato.TestSupport;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>A real s3rver (<see cref="ObjectStoreServers.StartS3rverAsync"/>) with bucket <see cref="Bucket"/>, one per test class.</summary>
public sealed class S3rverFixture : IAsyncLifetime
{
    public const string Bucket = "rubato-test";

    public ServerProcess Server { get; private set; } = null!;

    public string Endpoint => Server.Address;

    public async Task InitializeAsync() => Server = await ObjectStoreServers.StartS3rverAsync(Bucket);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>A real Azurite blob service (<see cref="ObjectStoreServers.StartAzuriteAsync"/>) with container <see cref="Container"/>.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public const string Account = ObjectStoreServers.AzureAccount;

    public const string Key = ObjectStoreServers.AzureKey;

    public const string Container = "rubato-test";

    public ServerProcess Server { get; private set; } = null!;

    /// <summary>Tempo's <c>endpoint_suffix</c> for an emulator: <c>host:port</c>.</summary>
    public string EndpointSuffix => Server.Address;

    public async Task InitializeAsync()
    {
        Server = await ObjectStoreServers.StartAzuriteAsync(Container);

        // The container exists now: creating it again finds it there (409), which is still success.
        using var store = new Rubato.Storage.Backend.Azure.AzureBlobObjectStore(ObjectStoreServers.AzureConfig(Server, Container));
        await store.CreateContainerIfNotExistsAsync(default);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
