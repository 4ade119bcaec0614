using Rubato.Storage.Backend;

namespace Rubato.Cli.Tests;

public sealed class RangeReadStreamTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "rubato-cli-rrs-" + Guid.NewGuid().ToString("N"));

    [Theory]
    [InlineData(10_000, 1000)]
    [InlineData(10_000, 4096)]
    [InlineData(10_000, 1 << 20)]
    [InlineData(0, 16)]
    public async Task CopyToAsync_AnyChunkSize_ReturnsTheWholeObject(int size, int chunk)
    {
        var store = new LocalObjectStore(_root);
        var data = new byte[size];
        new Random(size + chunk).NextBytes(data);
        await store.PutAsync("t/obj", data, CancellationToken.None);
        await using var s = new RangeReadStream(store, "t/obj", chunk);
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms, 777);
        Assert.Equal(data, ms.ToArray());
        Assert.Equal(size, s.BytesRead);
    }

    [Fact]
    public async Task ReadAsync_MissingObject_Throws()
    {
        await using var s = new RangeReadStream(new LocalObjectStore(_root), "t/missing", 16);
        await Assert.ThrowsAsync<ObjectNotFoundException>(async () => await s.ReadExactlyAsync(new byte[4]));
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
