using Xunit;

namespace Rubato.Integration.Tests.Harness;

/// <summary>
/// Every test that runs a rubato process belongs to this collection, so they run one at a time: each server plus
/// its clients already keeps both cores busy.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServerCollection : ICollectionFixture<SharedServer>
{
    public const string Name = "rubato-server";
}

/// <summary>One default-config server shared by the client round-trip tests (they use distinct trace ids).</summary>
public sealed class SharedServer : IAsyncLifetime
{
    private RubatoProcess? _server;

    public RubatoProcess Server => _server ?? throw new InvalidOperationException("shared server not started");

    public async Task InitializeAsync() => _server = await RubatoProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
