using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Storage.Tests;

public sealed class BlockV1Tests : IDisposable
{
    private const string Tenant = "tenant-1";
    private readonly TempDir _dir = new();
    private readonly LocalObjectStore _store;
    private readonly ITestOutputHelper _output;

    public BlockV1Tests(ITestOutputHelper output)
    {
        _store = new LocalObjectStore(_dir.Path);
        _output = output;
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void FindTraceByIdAsync_FsCheckTraces_RoundTripEveryField()
    {
        var gen = Gen.Choose(1, 6).SelectMany(n => Gen.ArrayOf(TraceGen.TraceGenerator, n));
        var compressions = new[] { BlockCompression.Brotli, BlockCompression.Deflate, BlockCompression.None };
        int run = 0;
        var prop = Prop.ForAll(gen.ToArbitrary(), traces =>
        {
            var compression = compressions[run++ % compressions.Length];
            var ids = traces.Select((_, i) => new TraceId((ulong)i * 31, (ulong)run)).ToArray();
            // Pages of one or two traces (or 64 raw bytes) so most chunks have several pages, cut inside traces.
            var opts = new BlockBuilderOptions
            {
                TenantId = Tenant,
                BlockId = Guid.NewGuid(),
                RowGroupSizeBytes = 2000,
                Compression = compression,
                TracesPerPage = 1 + (run % 2),
                MinPageStoredBytes = 1,
                PageSizeBytes = run % 3 == 0 ? 64 : 16 * 1024,
            };
            using var builder = Encodings.Default.CreateBlockBuilder(opts);
            for (int i = 0; i < traces.Length; i++)
            {
                builder.AddTrace(ids[i], TraceGen.WithId(traces[i], ids[i]));
            }

            var meta = builder.WriteAsync(_store, default).GetAwaiter().GetResult();
            var block = Encodings.FromVersion(meta.Version).OpenBlock(meta, _store);
            for (int i = 0; i < traces.Length; i++)
            {
                var found = block.FindTraceByIdAsync(ids[i], default).AsTask().GetAwaiter().GetResult();
                Assert.NotNull(found);
                Assert.Null(TraceDiff.Diff(traces[i], found));
            }

            var all = block.IterateAsync(default).ToBlockingEnumerable().ToList();
            Assert.Equal(ids, all.Select(a => a.Id));
            for (int i = 0; i < traces.Length; i++)
            {
                Assert.Null(TraceDiff.Diff(traces[i], all[i].Trace));
            }

            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60), prop);
    }

    [Fact]
    public async Task WriteAsync_Meta_DescribesBlockAndIsWrittenLast()
    {
        var opts = new BlockBuilderOptions { TenantId = Tenant, BlockId = Guid.NewGuid(), ReplicationFactor = 1 };
        var counting = new OrderRecordingStore(_store);
        using var b = Encodings.Default.CreateBlockBuilder(opts);
        for (int i = 0; i < 10; i++)
        {
            b.AddTrace(SampleTraces.Id(i), SampleTraces.Make(SampleTraces.Id(i), 3, 1_700_000_000_000_000_000UL + ((ulong)i * 1_000_000_000UL)));
        }

        var meta = await b.WriteAsync(counting, default);
        Assert.Equal("meta.json", counting.Keys[^1].Split('/')[^1]);
        Assert.Equal("vRubato1", meta.Version);
        Assert.Equal(10, meta.TotalObjects);
        Assert.Equal(30, meta.SpanCount);
        Assert.Equal(1_700_000_000, meta.StartTime.ToUnixTimeSeconds());
        Assert.Equal(1_700_000_010, meta.EndTime.ToUnixTimeSeconds());
        Assert.Equal(SampleTraces.Id(0), meta.MinId);
        Assert.Equal(SampleTraces.Id(9), meta.MaxId);
        Assert.Equal(1u, meta.TotalRecords);
        Assert.Equal(1u, meta.BloomShards);
        var stored = BlockMeta.FromJson((await _store.GetAsync($"{Tenant}/{opts.BlockId}/meta.json", default))!);
        Assert.Equal(meta.ToJson(), stored.ToJson());
        var block = (BackendBlockV1)Encodings.Default.OpenBlock(meta, _store);
        var footer = await block.ReadFooterAsync(default);
        Assert.Single(footer);
        Assert.Equal(30, footer[0].Spans);
        Assert.Equal(Col.Count, footer[0].Columns.Count);
        Assert.Equal(50_000UL, footer[0].MinSpanDurationNanos);
        var rg = await block.OpenRowGroupAsync(0, default);
        Assert.Equal(10, rg.TraceCount);
        Assert.Equal(10 * 16, rg.ColumnBytes(Col.TraceId).Length);
        Assert.Equal(30, rg.ColumnBytes(Col.SpanKind).Length);
    }

    [Fact]
    public void AddTrace_OutOfOrder_Throws()
    {
        using var b = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = Tenant });
        b.AddTrace(new TraceId(0, 5), new Trace());
        var e = Assert.Throws<ArgumentException>(() => b.AddTrace(new TraceId(0, 5), new Trace()));
        Assert.Contains("ascending", e.Message);
        Assert.Throws<ArgumentException>(() => b.AddTrace(new TraceId(0, 4), new Trace()));
    }

    [Fact]
    public async Task WriteAsync_EmptyBlock_Throws()
    {
        using var b = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = Tenant });
        await Assert.ThrowsAsync<InvalidOperationException>(() => b.WriteAsync(_store, default));
    }

    [Theory]
    [InlineData("", 0.01)]
    [InlineData("t", 0)]
    [InlineData("t", 1.5)]
    [InlineData("../x", 0.01)]
    public void CreateBlockBuilder_BadOptions_Throws(string tenant, double fp)
    {
        Assert.Throws<ArgumentException>(() => Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = tenant, BloomFalsePositive = fp }));
    }

    [Fact]
    public void FromVersion_Unknown_NamesValidVersions()
    {
        var e = Assert.Throws<ArgumentException>(() => Encodings.FromVersion("vParquet9"));
        Assert.Contains("vRubato1", e.Message);
        Assert.Equal("vRubato1", Encodings.FromVersion("vRubato1").Version);
    }

    [Fact]
    public async Task FindTraceByIdAsync_ManyRowGroups_ReadsSmallFractionOfBlock()
    {
        const int traces = 3000;
        var counting = new CountingObjectStore(_store);
        var opts = new BlockBuilderOptions { TenantId = Tenant, BlockId = Guid.NewGuid(), RowGroupSizeBytes = 16 * 1024, BloomShardSizeBytes = 1024 };
        var ids = Enumerable.Range(0, traces).Select(SampleTraces.Id).OrderBy(x => x).ToArray();
        using (var b = Encodings.Default.CreateBlockBuilder(opts))
        {
            foreach (var id in ids)
            {
                b.AddTrace(id, SampleTraces.Make(id, 1 + (int)(id.Low % 8), 1_700_000_000_000_000_000UL + id.Low % 1_000_000_000_000UL));
            }

            var meta = await b.WriteAsync(counting, default);
            Assert.True(meta.TotalRecords > 20, $"expected many row groups, got {meta.TotalRecords}");
            Assert.True(meta.BloomShards > 1, $"expected several bloom shards, got {meta.BloomShards}");
            var block = Encodings.Default.OpenBlock(meta, counting);

            // Warm the index (cached per open block), then measure single lookups.
            Assert.NotNull(await block.FindTraceByIdAsync(ids[0], default));
            foreach (int i in new[] { 17, 1500, traces - 1 })
            {
                counting.Reset();
                var t = await block.FindTraceByIdAsync(ids[i], default);
                Assert.NotNull(t);
                Assert.Null(TraceDiff.Diff(SampleTraces.Make(ids[i], 1 + (int)(ids[i].Low % 8), 1_700_000_000_000_000_000UL + ids[i].Low % 1_000_000_000_000UL), t));
                Assert.True(counting.BytesRead * 20 < (long)meta.Size, $"lookup read {counting.BytesRead} of {meta.Size} bytes");
                _output.WriteLine($"lookup {i}: read {counting.BytesRead} bytes in {counting.Reads} reads of a {meta.Size}-byte block ({meta.TotalRecords} row groups, {meta.BloomShards} bloom shards)");
            }

            // Absent ids: null, and most never touch the data object (bloom answers).
            int dataReads = 0;
            for (int i = 0; i < 200; i++)
            {
                counting.Reset();
                var absent = new TraceId(ids[i].High, ids[i].Low + 1);
                Assert.Null(await block.FindTraceByIdAsync(absent, default));
                dataReads += counting.ReadKeys.Count(k => k.EndsWith("/data", StringComparison.Ordinal));
            }

            Assert.True(dataReads < 20, $"{dataReads} of 200 absent lookups read the data object");
            counting.Reset();
            Assert.Null(await block.FindTraceByIdAsync(new TraceId(0, 1), default));
            Assert.Equal(0, counting.Reads);
        }
    }

    [Fact]
    public async Task FindTraceByIdAsync_CorruptChunk_ThrowsTypedErrorNamingObjectAndOffset()
    {
        var opts = new BlockBuilderOptions { TenantId = Tenant, BlockId = Guid.NewGuid(), Compression = BlockCompression.None };
        var id = new TraceId(7, 7);
        using var b = Encodings.Default.CreateBlockBuilder(opts);
        b.AddTrace(id, SampleTraces.Make(id, 5, 1_000));
        var meta = await b.WriteAsync(_store, default);
        string dataKey = $"{Tenant}/{opts.BlockId}/data";
        byte[] data = (await _store.GetAsync(dataKey, default))!;

        // Flip a byte inside the span-name chunk's stored bytes (located through the row group directory).
        var stats = await ((BackendBlockV1)Encodings.Default.OpenBlock(meta, _store)).ReadFooterAsync(default);
        var (off, len) = stats[0].Columns[Col.SpanName];
        int pageIndex = (int)stats[0].Shapes[Col.SpanName].PagesOffset(Col.SpanName);
        long at = stats[0].Offset + off + pageIndex + ((len - pageIndex) / 2);
        data[at] ^= 0x5A;
        await _store.PutAsync(dataKey, data, default);

        var block = Encodings.Default.OpenBlock(meta, _store);
        var e = await Assert.ThrowsAsync<BlockCorruptException>(async () => await block.FindTraceByIdAsync(id, default));
        Assert.Equal(dataKey, e.ObjectKey);
        Assert.Contains("span.name", e.Message);
        Assert.InRange(e.Offset, stats[0].Offset + off + pageIndex, at);
    }

    [Fact]
    public async Task FindTraceByIdAsync_CorruptIndex_ThrowsTypedError()
    {
        var opts = new BlockBuilderOptions { TenantId = Tenant, BlockId = Guid.NewGuid() };
        var id = new TraceId(7, 7);
        using var b = Encodings.Default.CreateBlockBuilder(opts);
        b.AddTrace(id, SampleTraces.Make(id, 2, 1_000));
        var meta = await b.WriteAsync(_store, default);
        string key = $"{Tenant}/{opts.BlockId}/index";
        byte[] index = (await _store.GetAsync(key, default))!;
        index[25] ^= 1;
        await _store.PutAsync(key, index, default);
        var e = await Assert.ThrowsAsync<BlockCorruptException>(async () => await Encodings.Default.OpenBlock(meta, _store).FindTraceByIdAsync(id, default));
        Assert.Equal(key, e.ObjectKey);
    }

    [Fact]
    public async Task FindTraceByIdAsync_TruncatedDataObject_ThrowsTypedError()
    {
        var opts = new BlockBuilderOptions { TenantId = Tenant, BlockId = Guid.NewGuid(), RowGroupSizeBytes = 4096 };
        var ids = Enumerable.Range(0, 200).Select(SampleTraces.Id).Order().ToArray();
        using var b = Encodings.Default.CreateBlockBuilder(opts);
        foreach (var id in ids)
        {
            b.AddTrace(id, SampleTraces.Make(id, 3, 1_000));
        }

        var meta = await b.WriteAsync(_store, default);
        string dataKey = $"{Tenant}/{opts.BlockId}/data";
        byte[] data = (await _store.GetAsync(dataKey, default))!;
        await _store.PutAsync(dataKey, data.AsMemory(0, data.Length / 2), default);
        var block = Encodings.Default.OpenBlock(meta, _store);
        Assert.NotNull(await block.FindTraceByIdAsync(ids[0], default));
        var e = await Assert.ThrowsAsync<BlockCorruptException>(async () => await block.FindTraceByIdAsync(ids[^1], default));
        Assert.Equal(dataKey, e.ObjectKey);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void BloomFilter_FalsePositiveRate_NearTarget()
    {
        var (bits, k) = BloomFilter.Size(10_000, 0.01);
        var f = new BloomFilter(bits, k);
        for (int i = 0; i < 10_000; i++)
        {
            f.Add(new TraceId(0, (ulong)i));
        }

        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(f.MayContain(new TraceId(0, (ulong)i)));
        }

        int fp = Enumerable.Range(0, 20_000).Count(i => f.MayContain(new TraceId(1, (ulong)i)));
        Assert.InRange(fp, 0, 400); // 1% target of 20,000 = 200.
        var copy = BloomFilter.Deserialize(f.Serialize(), "bloom-0");
        Assert.True(copy.MayContain(new TraceId(0, 42)));
    }

    private sealed class OrderRecordingStore(IObjectStore inner) : IObjectStore
    {
        public List<string> Keys { get; } = [];

        public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            Keys.Add(key);
            return inner.PutAsync(key, data, ct);
        }

        public Task PutAsync(string key, Stream data, CancellationToken ct)
        {
            Keys.Add(key);
            return inner.PutAsync(key, data, ct);
        }

        public Task<byte[]?> GetAsync(string key, CancellationToken ct) => inner.GetAsync(key, ct);

        public Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct) => inner.ReadRangeAsync(key, offset, buffer, ct);

        public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public Task<bool> ExistsAsync(string key, CancellationToken ct) => inner.ExistsAsync(key, ct);

        public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);
    }
}
