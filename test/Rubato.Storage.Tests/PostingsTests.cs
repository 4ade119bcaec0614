using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.Storage.Tests;

/// <summary>
/// The <c>postings</c> object: what the builder indexes (kinds, value cap, share, first-wins) against a model computed
/// from the traces, round trips through the reader, and corruption detection.
/// </summary>
public sealed class PostingsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// Random traces with low-cardinality attributes at resource, scope and span level (mixed kinds, duplicates, doubles,
    /// absent keys). Keys: a (strings), b (ints), c (bools), m (string or int), d (doubles), w (up to 40 strings).
    /// </summary>
    public static List<(TraceId Id, Trace Trace)> RandomTraces(int seed, int traces)
    {
        var rnd = new Random(seed);
        var list = new List<(TraceId, Trace)>();
        for (int t = 0; t < traces; t++)
        {
            var id = new TraceId(0x0100_0000_0000_0000UL + ((ulong)t << 24), (ulong)rnd.NextInt64());
            var trace = new Trace();
            for (int r = rnd.Next(1, 3); r > 0; r--)
            {
                var rs = new ResourceSpans();
                Attrs(rnd, rs.Resource.Attributes);
                var ss = new ScopeSpans();
                Attrs(rnd, ss.Scope.Attributes);
                for (int s = rnd.Next(1, 5); s > 0; s--)
                {
                    var span = new Span
                    {
                        TraceId = id,
                        SpanId = new SpanId((ulong)rnd.NextInt64(1, long.MaxValue)),
                        Name = "op",
                        StartTimeUnixNano = 1_700_000_000_000_000_000UL + ((ulong)t * 1000),
                        EndTimeUnixNano = 1_700_000_000_000_000_000UL + ((ulong)t * 1000) + 10,
                    };
                    Attrs(rnd, span.Attributes);
                    ss.Spans.Add(span);
                }

                rs.ScopeSpans.Add(ss);
                trace.ResourceSpans.Add(rs);
            }

            list.Add((id, trace));
        }

        return list;
    }

    [Fact]
    public void Postings_RandomBlocks_DirectoryAndPostingsEqualModel()
    {
        var gen = Gen.Zip(
            Gen.Zip(Gen.Choose(1, 1_000_000), Gen.Choose(1, 80)),
            Gen.Zip(Gen.Choose(1, 12), Gen.Zip(Gen.Elements(0.0, 0.1, 0.25, 0.5, 1.0), Gen.Elements(BlockCompression.None, BlockCompression.Deflate, BlockCompression.Brotli))));
        var prop = Prop.ForAll(gen.ToArbitrary(), input =>
        {
            var ((seed, traces), (maxValues, (share, codec))) = input;
            var data = RandomTraces(seed, traces);
            var block = WriteAsync(new LocalObjectStore(_dir.Path), data, o =>
            {
                o.PostingsMaxValues = maxValues;
                o.PostingsMaxShare = share;
                o.Compression = codec;
                o.RowGroupSizeBytes = 2048;
            }).GetAwaiter().GetResult();
            AssertEqualsModel(block, data, maxValues, share).GetAwaiter().GetResult();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(40), prop);
    }

    [Fact]
    public async Task Postings_BuilderRules_KindsCapShareFirstWins()
    {
        // 10 spans in one row group. "kind" mixes string and int (not indexed); "dbl" is a double (not indexed); "many"
        // has 4 values against a cap of 3 (not indexed); "three" has exactly 3 (indexed); "dup" is listed twice on a span
        // (first wins); "rare" is on one span (posting), "common" has one value on all 10 (count only at share 0.25).
        var spans = new List<List<KeyValue>>();
        for (int i = 0; i < 10; i++)
        {
            var a = new List<KeyValue>
            {
                new("kind", i == 3 ? AnyValue.Int(1) : AnyValue.String("s")),
                new("dbl", AnyValue.Double(i)),
                new("many", AnyValue.String("v" + (i % 4))),
                new("three", AnyValue.Int(i % 3)),
                new("common", AnyValue.Bool(true)),
                new("dup", AnyValue.String(i == 0 ? "first" : "other")),
            };
            if (i == 0)
            {
                a.Add(new KeyValue("dup", AnyValue.String("second")));
            }

            if (i == 7)
            {
                a.Add(new KeyValue("rare", AnyValue.String("x")));
            }

            spans.Add(a);
        }

        var trace = new Trace();
        var rs = new ResourceSpans();
        var ss = new ScopeSpans();
        foreach (var a in spans)
        {
            var s = new Span { SpanId = new SpanId((ulong)ss.Spans.Count + 1), Name = "n", StartTimeUnixNano = 1, EndTimeUnixNano = 2 };
            s.Attributes.AddRange(a);
            ss.Spans.Add(s);
        }

        rs.ScopeSpans.Add(ss);
        trace.ResourceSpans.Add(rs);
        var block = await WriteAsync(new LocalObjectStore(_dir.Path), [(new TraceId(1, 1), trace)], o => o.PostingsMaxValues = 3);
        var dir = await block.ReadPostingsDirectoryAsync(0, null, CancellationToken.None);
        var level = dir.Level(AttrLevel.Span);
        Assert.Equal(10, level.Owners);
        Assert.Equal(["common", "dup", "rare", "three"], level.Keys.Keys.Order(StringComparer.Ordinal));

        var three = level.Keys["three"];
        Assert.Equal(AnyValueKind.Int, three.Kind);
        Assert.Equal([0L, 1L, 2L], three.Values.Select(v => v.Order));
        Assert.Equal([4, 3, 3], three.Values.Select(v => v.Count));
        Assert.All(three.Values, v => Assert.False(v.HasPosting)); // 3 and 4 of 10 rows exceed the 0.25 share (2 rows)

        var common = Assert.Single(level.Keys["common"].Values);
        Assert.Equal(TraceQLValue.FromBool(true), common.Value);
        Assert.Equal(10, common.Count);
        Assert.False(common.HasPosting);

        var dup = level.Keys["dup"].Values;
        Assert.Equal(["first", "other"], dup.Select(v => v.String));
        Assert.Equal([1, 9], dup.Select(v => v.Count));
        var rare = Assert.Single(level.Keys["rare"].Values);
        var rows = await block.ReadPostingsAsync([(dup[0], 10, "dup=first"), (rare, 10, "rare=x")], null, CancellationToken.None);
        Assert.Equal([0], rows[0]);
        Assert.Equal([7], rows[1]);
        Assert.Empty(dir.Level(AttrLevel.Resource).Keys);
        Assert.Equal(1, dir.Level(AttrLevel.Resource).Owners);
    }

    [Fact]
    public async Task Postings_Disabled_NoObjectAndNoMetaSize()
    {
        var store = new LocalObjectStore(_dir.Path);
        var block = await WriteAsync(store, RandomTraces(5, 20), o => o.PostingsMaxValues = 0);
        Assert.False(block.HasPostings);
        Assert.Equal(0UL, block.Meta.PostingsSize);
        Assert.Null(await store.GetAsync(ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, Postings.ObjectName), CancellationToken.None));

        var with = await WriteAsync(store, RandomTraces(5, 20), null);
        byte[] postings = (await store.GetAsync(ObjectKeys.BlockObject(with.Meta.TenantId, with.Meta.BlockId, Postings.ObjectName), CancellationToken.None))!;
        Assert.Equal((ulong)postings.Length, with.Meta.PostingsSize);
        Assert.Equal(block.Meta.Size + (ulong)postings.Length, with.Meta.Size);
        Assert.Equal(with.Meta.PostingsSize, BlockMeta.FromJson(with.Meta.ToJson()).PostingsSize);
    }

    [Fact]
    public async Task Postings_AnyFlippedByte_ThrowsBlockCorruptNamingObject()
    {
        var data = RandomTraces(77, 30);
        var store = new LocalObjectStore(_dir.Path);
        var block = await WriteAsync(store, data, o => o.RowGroupSizeBytes = 2048);
        string key = ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, Postings.ObjectName);
        string path = Path.Combine(_dir.Path, key);
        byte[] original = await File.ReadAllBytesAsync(path);
        Assert.True(block.Meta.TotalRecords > 2, $"{block.Meta.TotalRecords} row groups");
        Assert.True(original.Length > 200, $"{original.Length} bytes");
        await ReadAllAsync(block); // intact: reads

        var rnd = new Random(1);
        var positions = Enumerable.Range(0, original.Length).Where(i => i < 64 || rnd.Next(4) == 0).ToList();
        foreach (int at in positions)
        {
            byte[] bytes = (byte[])original.Clone();
            bytes[at] ^= (byte)(1 << rnd.Next(8));
            await File.WriteAllBytesAsync(path, bytes);
            var reopened = new BackendBlockV1(block.Meta, store);
            var e = await Assert.ThrowsAsync<BlockCorruptException>(() => ReadAllAsync(reopened));
            Assert.Equal(key, e.ObjectKey);
            Assert.InRange(e.Offset, 0, original.Length);
        }

        // A truncated object: the table's regions no longer end where meta says the object ends.
        await File.WriteAllBytesAsync(path, original.AsSpan(0, original.Length - 1).ToArray());
        var truncated = new BackendBlockV1(block.Meta, store);
        await Assert.ThrowsAsync<BlockCorruptException>(() => ReadAllAsync(truncated));
    }

    private static async Task ReadAllAsync(BackendBlockV1 block)
    {
        var table = await block.GetPostingsTableAsync(null, CancellationToken.None);
        for (int rg = 0; rg < table.Regions.Count; rg++)
        {
            var dir = await block.ReadPostingsDirectoryAsync(rg, null, CancellationToken.None);
            var all = new List<(PostingsValue, int, string)>();
            foreach (var level in Postings.Levels)
            {
                foreach (var k in dir.Level(level).Keys.Values)
                {
                    all.AddRange(k.Values.Where(v => v.HasPosting).Select(v => (v, dir.Level(level).Owners, k.Key)));
                }
            }

            await block.ReadPostingsAsync(all, null, CancellationToken.None);
        }
    }

    private static async Task AssertEqualsModel(BackendBlockV1 block, List<(TraceId Id, Trace Trace)> data, int maxValues, double share)
    {
        var footer = await block.GetFooterAsync(CancellationToken.None);
        int next = 0;
        for (int rg = 0; rg < footer.Count; rg++)
        {
            // The model: per level, each owner's first value of each key, in row order.
            var owners = new List<List<KeyValue>>[3] { [], [], [] };
            foreach (var (_, t) in data.Skip(next).Take(footer[rg].Traces))
            {
                foreach (var rs in t.ResourceSpans)
                {
                    owners[0].Add(rs.Resource.Attributes);
                    foreach (var ss in rs.ScopeSpans)
                    {
                        owners[1].Add(ss.Scope.Attributes);
                        owners[2].AddRange(ss.Spans.Select(s => s.Attributes));
                    }
                }
            }

            next += footer[rg].Traces;
            var dir = await block.ReadPostingsDirectoryAsync(rg, null, CancellationToken.None);
            for (int l = 0; l < 3; l++)
            {
                var level = dir.Level(Postings.Levels[l]);
                Assert.Equal(owners[l].Count, level.Owners);
                var firsts = new Dictionary<string, List<(int Row, AnyValue Value)>>(StringComparer.Ordinal);
                for (int row = 0; row < owners[l].Count; row++)
                {
                    foreach (var kv in owners[l][row].DistinctBy(kv => kv.Key))
                    {
                        if (!firsts.TryGetValue(kv.Key, out var list))
                        {
                            firsts[kv.Key] = list = [];
                        }

                        list.Add((row, kv.Value));
                    }
                }

                var expectedKeys = firsts.Where(kv =>
                    kv.Value.Select(x => x.Value.Kind).Distinct().Count() == 1
                    && kv.Value[0].Value.Kind is AnyValueKind.String or AnyValueKind.Int or AnyValueKind.Bool
                    && kv.Value.Select(x => TraceQLValue.FromAnyValue(x.Value)).Distinct().Count() <= maxValues).ToList();
                Assert.Equal(expectedKeys.Select(k => k.Key).Order(StringComparer.Ordinal), level.Keys.Keys.Order(StringComparer.Ordinal));
                foreach (var (key, list) in expectedKeys)
                {
                    var k = level.Keys[key];
                    Assert.Equal(list[0].Value.Kind, k.Kind);
                    var groups = list.GroupBy(x => TraceQLValue.FromAnyValue(x.Value)).ToDictionary(g => g.Key, g => g.Select(x => x.Row).ToList());
                    Assert.Equal(groups.Count, k.Values.Length);
                    var reads = k.Values.Where(v => v.HasPosting).Select(v => (v, level.Owners, key)).ToList();
                    var rows = await block.ReadPostingsAsync(reads, null, CancellationToken.None);
                    int r = 0;
                    foreach (var v in k.Values)
                    {
                        var expectedRows = groups[v.Value];
                        Assert.Equal(expectedRows.Count, v.Count);
                        Assert.Equal(expectedRows.Count <= Math.Floor(share * level.Owners), v.HasPosting);
                        if (v.HasPosting)
                        {
                            Assert.Equal(expectedRows, rows[r++]);
                        }
                    }
                }
            }
        }

        Assert.Equal(data.Count, next);
    }

    private static void Attrs(Random rnd, List<KeyValue> into)
    {
        int n = rnd.Next(0, 7);
        for (int i = 0; i < n; i++)
        {
            into.Add(rnd.Next(6) switch
            {
                0 => new KeyValue("a", AnyValue.String(rnd.Next(4) switch { 0 => "x", 1 => "y", 2 => "", _ => "zz" })),
                1 => new KeyValue("b", AnyValue.Int(rnd.Next(-2, 5))),
                2 => new KeyValue("c", AnyValue.Bool(rnd.Next(2) == 0)),
                3 => new KeyValue("m", rnd.Next(20) == 0 ? AnyValue.Int(1) : AnyValue.String("1")),
                4 => new KeyValue("d", AnyValue.Double(rnd.Next(3))),
                _ => new KeyValue("w", AnyValue.String("w" + rnd.Next(40))),
            });
        }
    }

    private static Task<BackendBlockV1> WriteAsync(IObjectStore store, IEnumerable<(TraceId Id, Trace Trace)> traces, Action<BlockBuilderOptions>? configure) =>
        Search.SearchDataset.WriteBlockAsync(store, traces, checked((int)new BlockBuilderOptions().RowGroupSizeBytes), configure: o =>
        {
            o.TenantId = "postings";
            configure?.Invoke(o);
        });
}
