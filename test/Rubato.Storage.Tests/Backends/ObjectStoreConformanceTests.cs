using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>
/// The behaviour every <see cref="IObjectStore"/> shares with <see cref="LocalObjectStore"/>, run once per backend
/// against a real server. Each test gets fresh stores rooted at a fresh prefix (or folder), so tests never see each
/// other's objects; remote stores use a 5 MiB part/block size so 12 MiB objects take the multipart path.
/// </summary>
public abstract class ObjectStoreConformanceTests : IDisposable
{
    protected const int PartSize = 5 * 1024 * 1024;
    private readonly List<IObjectStore> _stores = [];
    private IObjectStore? _store;

    protected MetricsRegistry Metrics { get; } = new();

    /// <summary>The store under test, with a list page size of 7 so listings take several pages.</summary>
    protected IObjectStore Store => _store ??= Create(new ObjectStoreOptions { ListPageSize = 7, Metrics = Metrics });

    public virtual void Dispose()
    {
        foreach (var s in _stores)
        {
            (s as IDisposable)?.Dispose();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// False when the server under the store cannot keep one key whole under racing writers (s3rver writes an object's
    /// body and its metadata as separate files). Put atomicity is then the real service's guarantee, which no client
    /// can add, so the same-key race is left out and only concurrent puts to distinct keys are checked.
    /// </summary>
    protected virtual bool ServerKeepsRacingWritesWhole => true;

    /// <summary>A store over this test's private namespace (the same one on every call).</summary>
    protected abstract IObjectStore CreateStore(ObjectStoreOptions options);

    protected IObjectStore Create(ObjectStoreOptions options)
    {
        var s = CreateStore(options);
        _stores.Add(s);
        return s;
    }

    [Fact]
    public async Task PutAsync_ThenGetAsync_ReturnsBytesAndExists()
    {
        await Store.PutAsync("t1/b1/data", new byte[] { 1, 2, 3 }, default);
        Assert.Equal(new byte[] { 1, 2, 3 }, await Store.GetAsync("t1/b1/data", default));
        Assert.True(await Store.ExistsAsync("t1/b1/data", default));
    }

    [Fact]
    public async Task PutAsync_EmptyObject_RoundTrips()
    {
        await Store.PutAsync("t/empty", ReadOnlyMemory<byte>.Empty, default);
        Assert.Equal(Array.Empty<byte>(), await Store.GetAsync("t/empty", default));
        Assert.True(await Store.ExistsAsync("t/empty", default));
        Assert.Equal(0, await Store.ReadRangeAsync("t/empty", 0, new byte[8], default));
    }

    [Fact]
    public async Task GetAsync_Missing_ReturnsNullAndNotExists()
    {
        Assert.Null(await Store.GetAsync("nope/nothing", default));
        Assert.False(await Store.ExistsAsync("nope/nothing", default));
    }

    [Fact]
    public async Task ReadRangeAsync_ReadsSliceAndShortAtEnd()
    {
        await Store.PutAsync("t/o", Enumerable.Range(0, 100).Select(i => (byte)i).ToArray(), default);
        var buf = new byte[10];
        Assert.Equal(10, await Store.ReadRangeAsync("t/o", 20, buf, default));
        Assert.Equal(Enumerable.Range(20, 10).Select(i => (byte)i), buf);
        Assert.Equal(5, await Store.ReadRangeAsync("t/o", 95, buf, default));
        Assert.Equal(Enumerable.Range(95, 5).Select(i => (byte)i), buf.Take(5));
        Assert.Equal(0, await Store.ReadRangeAsync("t/o", 100, buf, default));
        Assert.Equal(0, await Store.ReadRangeAsync("t/o", 200, buf, default));
    }

    [Fact]
    public async Task ReadRangeAsync_Missing_ThrowsObjectNotFound()
    {
        var e = await Assert.ThrowsAsync<ObjectNotFoundException>(() => Store.ReadRangeAsync("t/missing", 0, new byte[4], default));
        Assert.Equal("t/missing", e.Key);
    }

    [Fact]
    public async Task ListAsync_ReturnsImmediateChildrenSorted()
    {
        await Store.PutAsync("tenant-b/blk2/meta.json", new byte[1], default);
        await Store.PutAsync("tenant-a/blk1/meta.json", new byte[1], default);
        await Store.PutAsync("tenant-a/blk1/data", new byte[1], default);
        await Store.PutAsync("tenant-a/blk0/data", new byte[1], default);
        await Store.PutAsync("tenant-a/index.json.gz", new byte[1], default);
        Assert.Equal(["tenant-a", "tenant-b"], await Store.ListAsync("", default));
        Assert.Equal(["blk0", "blk1", "index.json.gz"], await Store.ListAsync("tenant-a", default));
        Assert.Equal(["data", "meta.json"], await Store.ListAsync("tenant-a/blk1/", default));
        Assert.Empty(await Store.ListAsync("tenant-z", default));
        Assert.Empty(await Store.ListAsync("tenant-a/blk1/data", default)); // an object is not a directory
    }

    [Fact]
    public async Task ListAsync_ChildrenSpanSeveralPages_ReturnsAll()
    {
        var expected = new List<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 30), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            string name = i % 3 == 0 ? $"dir{i:D2}" : $"obj{i:D2}";
            await Store.PutAsync(i % 3 == 0 ? $"t/{name}/a" : $"t/{name}", new byte[] { (byte)i }, ct);
            if (i % 3 == 0)
            {
                await Store.PutAsync($"t/{name}/b", new byte[] { (byte)i }, ct); // two objects, one child name
            }

            lock (expected)
            {
                expected.Add(name);
            }
        });
        expected.Sort(StringComparer.Ordinal);
        Assert.Equal(expected, await Store.ListAsync("t", default));
    }

    [Fact]
    public async Task ListAsync_MoreThanThousandObjects_ReturnsAllWithDefaultPageSize()
    {
        var store = Create(new ObjectStoreOptions()); // the servers' 1000-per-page cap
        await Parallel.ForEachAsync(Enumerable.Range(0, 1005), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            await store.PutAsync($"many/k{i:D4}", new byte[] { 1 }, ct));
        var names = await store.ListAsync("many", default);
        Assert.Equal(1005, names.Count);
        Assert.Equal(Enumerable.Range(0, 1005).Select(i => $"k{i:D4}"), names);
    }

    [Fact]
    public async Task DeleteAsync_RemovesObject_MissingIsNoError()
    {
        await Store.PutAsync("t/b/x", new byte[1], default);
        await Store.PutAsync("t/c/y", new byte[1], default);
        await Store.DeleteAsync("t/b/x", default);
        await Store.DeleteAsync("t/b/x", default);
        await Store.DeleteAsync("q/r/s", default);
        Assert.Null(await Store.GetAsync("t/b/x", default));
        Assert.False(await Store.ExistsAsync("t/b/x", default));
        Assert.Equal(["c"], await Store.ListAsync("t", default));
    }

    [Fact]
    public async Task PutAsync_Overwrite_ReplacesWholeObject()
    {
        await Store.PutAsync("t/b/x", new byte[1000], default);
        await Store.PutAsync("t/b/x", new MemoryStream([9, 8]), default);
        Assert.Equal(new byte[] { 9, 8 }, await Store.GetAsync("t/b/x", default));
        Assert.Equal(["x"], await Store.ListAsync("t/b", default));
    }

    [Fact]
    public async Task PutAsync_LargeObjectFromMemory_RoundTripsAcrossParts()
    {
        byte[] data = Pattern((12 * 1024 * 1024) + 3);
        await Store.PutAsync("big/mem", data, default);
        SameBytes(data, await Store.GetAsync("big/mem", default));

        // A range that straddles the first part boundary, and the tail.
        var buf = new byte[1024];
        Assert.Equal(1024, await Store.ReadRangeAsync("big/mem", PartSize - 512, buf, default));
        Assert.True(data.AsSpan(PartSize - 512, 1024).SequenceEqual(buf));
        Assert.Equal(3, await Store.ReadRangeAsync("big/mem", 12 * 1024 * 1024, buf, default));
        Assert.True(data.AsSpan(12 * 1024 * 1024).SequenceEqual(buf.AsSpan(0, 3)));
    }

    [Fact]
    public async Task PutAsync_LargeObjectFromStream_RoundTripsAcrossParts()
    {
        byte[] data = Pattern(12 * 1024 * 1024);
        await Store.PutAsync("big/stream", new TrickleStream(data, failAfter: null), default);
        SameBytes(data, await Store.GetAsync("big/stream", default));

        // Exactly one part's worth: the last read finds the stream at its end.
        byte[] exact = Pattern(PartSize);
        await Store.PutAsync("big/exact", new TrickleStream(exact, failAfter: null), default);
        SameBytes(exact, await Store.GetAsync("big/exact", default));
    }

    [Fact]
    public async Task PutAsync_StreamFailsAfterFirstPart_LeavesNoObjectAndKeepsOldOne()
    {
        await Store.PutAsync("big/old", new byte[] { 7 }, default);
        byte[] data = Pattern(12 * 1024 * 1024);
        await Assert.ThrowsAnyAsync<IOException>(() => Store.PutAsync("big/new", new TrickleStream(data, failAfter: PartSize + 1024), default));
        await Assert.ThrowsAnyAsync<IOException>(() => Store.PutAsync("big/old", new TrickleStream(data, failAfter: PartSize + 1024), default));
        Assert.Null(await Store.GetAsync("big/new", default));
        Assert.Equal(new byte[] { 7 }, await Store.GetAsync("big/old", default));
        Assert.Equal(["old"], await Store.ListAsync("big", default));
    }

    [Fact]
    public async Task PutAsync_ConcurrentPuts_EveryReadSeesAWholeObject()
    {
        // 24 distinct keys, plus 8 writers racing on one key with distinguishable payloads.
        var tasks = new List<Task>();
        for (int i = 0; i < 24; i++)
        {
            int n = i;
            tasks.Add(Task.Run(() => Store.PutAsync($"conc/k{n:D2}", Pattern(1000 + n, seed: n), default)));
        }

        var payloads = Enumerable.Range(0, 8).Select(i => Pattern(64 * 1024, seed: 100 + i)).ToArray();
        if (!ServerKeepsRacingWritesWhole)
        {
            payloads = payloads[..1];
        }

        foreach (var p in payloads)
        {
            tasks.Add(Task.Run(() => Store.PutAsync("conc/same", p, default)));
        }

        // Readers racing the writers on the same key must see nothing or one whole payload.
        var reads = ServerKeepsRacingWritesWhole
            ? Enumerable.Range(0, 8).Select(_ => Task.Run(() => Store.GetAsync("conc/same", default))).ToArray()
            : [];
        await Task.WhenAll(tasks);
        foreach (var r in await Task.WhenAll(reads))
        {
            Assert.True(r is null || payloads.Any(p => p.AsSpan().SequenceEqual(r)), "a read saw a partial or mixed object");
        }

        for (int i = 0; i < 24; i++)
        {
            SameBytes(Pattern(1000 + i, seed: i), await Store.GetAsync($"conc/k{i:D2}", default));
        }

        var final = await Store.GetAsync("conc/same", default);
        Assert.Contains(payloads, p => p.AsSpan().SequenceEqual(final));
        Assert.Equal(25, (await Store.ListAsync("conc", default)).Count);
    }

    [Fact]
    public async Task BackendTraceReader_BlockWrittenWithDefaultEncoding_FindsTrace()
    {
        var id = new TraceId(0x0102030405060708UL, 0x1112131415161718UL);
        using (var b = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = "tenant-1", BlockId = Guid.NewGuid() }))
        {
            foreach (var t in new[] { id, SampleTraces.Id(1), SampleTraces.Id(2) }.Order())
            {
                b.AddTrace(t, SampleTraces.Make(t, 4, 1_000_000_000_000UL));
            }

            await b.WriteAsync(Store, default);
        }

        var reader = new BackendTraceReader(Store);
        var found = await reader.FindTraceByIdAsync("tenant-1", id, TimeRange.All, default);
        Assert.NotNull(found);
        Assert.Equal(4, found.SpanCount());
        Assert.Equal(["tenant-1"], reader.Tenants());
        Assert.Null(await reader.FindTraceByIdAsync("tenant-1", new TraceId(9, 9), TimeRange.All, default));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("t//x")]
    [InlineData("/abs")]
    [InlineData("t/./x")]
    [InlineData("")]
    public async Task PutAsync_BadKey_ThrowsArgumentException(string key)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync(key, new byte[1], default));
        Assert.Contains("key", e.Message);
    }

    protected static void SameBytes(byte[] expected, byte[]? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Length, actual.Length);
        Assert.True(expected.AsSpan().SequenceEqual(actual), "contents differ");
    }

    protected static byte[] Pattern(int length, int seed = 0)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>A non-seekable stream that hands out its data in odd-sized reads and can fail part-way.</summary>
    private sealed class TrickleStream(byte[] data, int? failAfter) : Stream
    {
        private int _pos;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _pos; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (failAfter is { } f && _pos >= f)
            {
                throw new IOException("source failed mid-stream");
            }

            int n = Math.Min(Math.Min(count, 100_003), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
