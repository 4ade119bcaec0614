using Rubato.Storage.Backend;
using Xunit;

namespace Rubato.Storage.Tests;

public sealed class LocalObjectStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly LocalObjectStore _store;

    public LocalObjectStoreTests() => _store = new LocalObjectStore(_dir.Path);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task PutAsync_ThenGet_ReturnsBytes()
    {
        await _store.PutAsync("t1/b1/data", new byte[] { 1, 2, 3 }, default);
        Assert.Equal(new byte[] { 1, 2, 3 }, await _store.GetAsync("t1/b1/data", default));
        Assert.True(await _store.ExistsAsync("t1/b1/data", default));
    }

    [Fact]
    public async Task PutAsync_Overwrite_ReplacesWholeObjectAndLeavesNoTempFiles()
    {
        await _store.PutAsync("t/b/x", new byte[1000], default);
        await _store.PutAsync("t/b/x", new MemoryStream([9, 8]), default);
        Assert.Equal(new byte[] { 9, 8 }, await _store.GetAsync("t/b/x", default));
        Assert.Equal(["x"], Directory.GetFiles(Path.Combine(_dir.Path, "t", "b")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task PutAsync_StreamThatFails_LeavesNoObject()
    {
        await Assert.ThrowsAsync<IOException>(() => _store.PutAsync("t/b/y", new FailingStream(), default));
        Assert.Null(await _store.GetAsync("t/b/y", default));
        Assert.Empty(await _store.ListAsync("t/b", default));
    }

    [Fact]
    public async Task GetAsync_Missing_ReturnsNull()
    {
        Assert.Null(await _store.GetAsync("nope/nothing", default));
        Assert.False(await _store.ExistsAsync("nope/nothing", default));
    }

    [Fact]
    public async Task ReadRangeAsync_ReadsSliceAndShortAtEnd()
    {
        await _store.PutAsync("t/o", Enumerable.Range(0, 100).Select(i => (byte)i).ToArray(), default);
        var buf = new byte[10];
        Assert.Equal(10, await _store.ReadRangeAsync("t/o", 20, buf, default));
        Assert.Equal(Enumerable.Range(20, 10).Select(i => (byte)i), buf);
        Assert.Equal(5, await _store.ReadRangeAsync("t/o", 95, buf, default));
        Assert.Equal(0, await _store.ReadRangeAsync("t/o", 200, buf, default));
    }

    [Fact]
    public async Task ReadRangeAsync_Missing_ThrowsObjectNotFound()
    {
        var e = await Assert.ThrowsAsync<ObjectNotFoundException>(() => _store.ReadRangeAsync("t/missing", 0, new byte[4], default));
        Assert.Equal("t/missing", e.Key);
    }

    [Fact]
    public async Task OpenRangeReader_ManyRanges_ReadsSlicesShortAtEndAndSeesReplacedObjectOnlyWhenReopened()
    {
        await _store.PutAsync("t/r", Enumerable.Range(0, 100).Select(i => (byte)i).ToArray(), default);
        var buf = new byte[10];
        using (var reader = _store.OpenRangeReader("t/r"))
        {
            for (int at = 0; at < 90; at += 30)
            {
                Assert.Equal(10, await reader.ReadAsync(at, buf, default));
                Assert.Equal(Enumerable.Range(at, 10).Select(i => (byte)i), buf);
            }

            Assert.Equal(5, await reader.ReadAsync(95, buf, default));
            Assert.Equal(0, await reader.ReadAsync(200, buf, default));

            // An atomic replace (rename) while the reader is open: the open handle still reads the old object.
            await _store.PutAsync("t/r", new byte[100], default);
            Assert.Equal(10, await reader.ReadAsync(40, buf, default));
            Assert.Equal(Enumerable.Range(40, 10).Select(i => (byte)i), buf);
        }

        using var again = _store.OpenRangeReader("t/r");
        Assert.Equal(10, await again.ReadAsync(40, buf, default));
        Assert.Equal(new byte[10], buf);
    }

    [Fact]
    public async Task OpenRangeReader_Missing_ThrowsObjectNotFoundOnRead()
    {
        using var reader = _store.OpenRangeReader("t/missing");
        var e = await Assert.ThrowsAsync<ObjectNotFoundException>(async () => await reader.ReadAsync(0, new byte[4], default));
        Assert.Equal("t/missing", e.Key);
    }

    [Fact]
    public async Task ListAsync_ReturnsImmediateChildrenSorted()
    {
        await _store.PutAsync("tenant-b/blk2/meta.json", new byte[1], default);
        await _store.PutAsync("tenant-a/blk1/meta.json", new byte[1], default);
        await _store.PutAsync("tenant-a/blk1/data", new byte[1], default);
        await _store.PutAsync("tenant-a/blk0/data", new byte[1], default);
        Assert.Equal(["tenant-a", "tenant-b"], await _store.ListAsync("", default));
        Assert.Equal(["blk0", "blk1"], await _store.ListAsync("tenant-a", default));
        Assert.Equal(["data", "meta.json"], await _store.ListAsync("tenant-a/blk1/", default));
        Assert.Empty(await _store.ListAsync("tenant-z", default));
    }

    [Fact]
    public async Task DeleteAsync_RemovesObjectAndEmptyFolders_MissingIsNoError()
    {
        await _store.PutAsync("t/b/x", new byte[1], default);
        await _store.DeleteAsync("t/b/x", default);
        await _store.DeleteAsync("t/b/x", default);
        await _store.DeleteAsync("q/r/s", default);
        Assert.Null(await _store.GetAsync("t/b/x", default));
        Assert.Empty(await _store.ListAsync("", default));
        Assert.True(Directory.Exists(_dir.Path));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("t/../../escape")]
    [InlineData("t//x")]
    [InlineData("/abs")]
    [InlineData("t/./x")]
    [InlineData("")]
    public async Task PutAsync_BadKey_Throws(string key)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => _store.PutAsync(key, new byte[1], default));
        Assert.Contains("key", e.Message);
    }

    private sealed class FailingStream : Stream
    {
        private int _reads;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => 0; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_reads++ > 0)
            {
                throw new IOException("source failed mid-stream");
            }

            buffer[offset] = 1;
            return 1;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
