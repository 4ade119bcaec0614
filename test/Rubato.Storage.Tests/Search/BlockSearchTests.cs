using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.Storage.Tests.Search;

/// <summary>
/// "Same result live vs blocks": every query gives exactly the same search result (trace ids, span sets, matched
/// counts, attributes, service stats) through <see cref="BlockSpansetFetcher"/> over a block as through the reference
/// <see cref="TraceModelFetcher"/> over the same traces.
/// </summary>
public sealed class BlockSearchTests : IDisposable
{
    /// <summary>Every operator, intrinsic, scope and pipeline stage, against the fields of <see cref="SearchDataset"/>.</summary>
    public static readonly string[] Queries =
    [
        "{}",
        "{ true }",
        "{ false }",
        "{ span.http.method = \"GET\" }",
        "{ \"GET\" = span.http.method }",
        "{ span.http.method != \"GET\" }",
        "{ span.http.method =~ \"P.*\" }",
        "{ span.http.method !~ \"GET|POST\" }",
        "{ span.http.method > \"P\" }",
        "{ span.http.method <= \"GET\" }",
        "{ span.http.method = \"DUP\" }",
        "{ span.http.method != nil }",
        "{ span.http.method = nil }",
        "{ span.http.status_code >= 500 }",
        "{ span.http.status_code = 200 }",
        "{ span.http.status_code = \"200\" }",
        "{ span.http.status_code != 404 }",
        "{ span.http.status_code < 201 }",
        "{ span.http.status_code = 200.0 }",
        "{ span.ratio > 0.5 }",
        "{ span.ratio <= 0.2 }",
        "{ span.ratio = 1 }",
        "{ span.flag = true }",
        "{ span.flag != false }",
        "{ span.tags = \"b\" }",
        "{ span.tags =~ \"c\" }",
        "{ span.nums = 7 }",
        "{ span.nums > 3 }",
        "{ span.payload != nil }",
        "{ span.kv = nil }",
        "{ span.empty = nil }",
        "{ span.needle = \"found-1\" }",
        "{ span.needle = \"absent\" }",
        "{ span.nokey = \"x\" }",
        "{ .region = \"eu\" }",
        "{ .region = \"span-eu\" }",
        "{ .region =~ \"span-.*\" }",
        "{ resource.region = \"eu\" }",
        "{ span.region = \"eu\" }",
        "{ resource.service.name = \"cart\" }",
        "{ resource.service.name != \"cart\" }",
        "{ resource.service.name = nil }",
        "{ .service.name = \"db\" }",
        "{ resource.pod.count > 5 }",
        "{ resource.cloud.enabled = true }",
        "{ resource.weight >= 5.5 }",
        "{ instrumentation.scope.attr = \"x\" }",
        "{ instrumentation:name = \"lib-a\" }",
        "{ instrumentation:version != \"1.0\" }",
        "{ duration > 1s }",
        "{ duration > 10ms }",
        "{ span:duration <= 5ms }",
        "{ duration < 100ns }",
        "{ duration = 0 }",
        "{ trace:duration > 40ms }",
        "{ traceDuration < 30ms }",
        "{ name = \"GET /1\" }",
        "{ span:name != \"cart.op1\" }",
        "{ name =~ \"GET.*\" }",
        "{ status = error }",
        "{ status != ok }",
        "{ span:status = unset }",
        "{ kind = server }",
        "{ span:kind = client }",
        "{ kind != internal }",
        "{ kind = consumer || kind = producer }",
        "{ span:statusMessage = \"boom\" }",
        "{ statusMessage != \"\" }",
        "{ span:childCount = 2 }",
        "{ childCount = 0 }",
        "{ span:parentID = nil }",
        "{ span:parentID != nil }",
        "{ trace:rootName = \"GET /1\" }",
        "{ rootServiceName = \"frontend\" }",
        "{ trace:rootService = \"frontend\" }",
        "{ event:name = \"exception\" }",
        "{ event.exception.type = \"Timeout\" }",
        "{ event.level > 2 }",
        "{ event:timeSinceStart > 1ms }",
        "{ event:name = nil }",
        "{ link.link.kind = \"follows\" }",
        "{ link:spanID = \"0000000000000002\" }",
        "{ link:traceID != nil }",
        "{ span.http.method = \"GET\" && status = error }",
        "{ span.http.method = \"GET\" || status = error }",
        "{ span.http.method = \"POST\" && resource.service.name = \"cart\" }",
        "{ (span.http.status_code >= 500 || duration > 50ms) && kind = server }",
        "{ !(status = error) }",
        "{ span.http.status_code + 1 > 500 }",
        "{ duration * 2 > 40ms }",
        "{ span.ratio * 10 >= 5 }",
        "{ status = error } && { kind = server }",
        "{ status = error } || { name = \"db.query\" }",
        "{ resource.service.name = \"frontend\" } >> { status = error }",
        "{ resource.service.name = \"frontend\" } > { kind = client }",
        "{ kind = server } << { name = \"db.query\" }",
        "{ kind = server } < { status = error }",
        "{ name = \"GET /1\" } ~ { name = \"GET /2\" }",
        "{ kind = client } !>> { status = error }",
        "{ kind = client } !> { status = error }",
        "{ kind = client } !~ { status = error }",
        "{ kind = server } &>> { status = error }",
        "{ kind = server } &> { kind = client }",
        "{ kind = server } &~ { kind = client }",
        "{ } >> { } >> { status = error }",
        "{ kind = server } | count() > 5",
        "{ kind = server } | count() > 1",
        "{ } | count() = 1",
        "{ status = error } | avg(duration) > 20ms",
        "{ } | max(duration) > 1s",
        "{ } | min(span.http.status_code) >= 404",
        "{ } | sum(span.ratio) > 2",
        "{ } | by(resource.service.name)",
        "{ } | by(resource.service.name) | count() > 2",
        "{ status = error } | by(span.http.method)",
        "{ } | select(span.http.method, resource.region)",
        "{ kind = server } | select(span:statusMessage, event:name)",
        "{ } | coalesce()",
        "({ kind = server } | count() > 1) && { status = error }",
        "{ span.http.method = \"GET\" } | { status = error }",
        "{ .region != nil && .region != \"eu\" }",
        "{ span:id != nil } | count() > 3",
        "{ nestedSetParent = -1 }",
        "{ span.http.method = \"GET\" } with (most_recent=true)",
    ];

    private readonly TempDir _dir = new();
    private readonly CountingObjectStore _store;

    public BlockSearchTests()
    {
        _store = new CountingObjectStore(new LocalObjectStore(_dir.Path));
    }

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> QueryData() => new(Queries);

    [Theory]
    [MemberData(nameof(QueryData))]
    public async Task SearchAsync_BlockFetcher_EqualsModelFetcher(string query)
    {
        var data = SearchDataset.Generate(300, seed: 42);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 4096);
        var (expected, actual, fetcher) = await CompareAsync(query, data, [block]);
        Assert.Equal(expected, actual);
        Assert.True(block.Meta.TotalRecords > 5, $"only {block.Meta.TotalRecords} row groups");
        Assert.True(fetcher.InspectedBytes > 0 || fetcher.RowGroupsSkippedByStats > 0);
    }

    [Theory]
    [MemberData(nameof(QueryData))]
    public async Task SearchAsync_SmallPages_EqualsModelFetcher(string query)
    {
        // Pages of one trace (or 64 raw bytes, cutting traces' rows across pages): the fill pass reads most columns page
        // by page, including value columns of nested (array, kvlist) attributes' neighbours and event/link columns.
        var data = SearchDataset.Generate(300, seed: 43);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 64 * 1024, configure: o =>
        {
            o.TracesPerPage = 1;
            o.MinPageStoredBytes = 1;
            o.PageSizeBytes = 64;
        });
        var (expected, actual, _) = await CompareAsync(query, data, [block]);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public async Task FetchAsync_MatchInOnePage_ReadsOnlyThatPage()
    {
        // One row group of 2000 traces, pages of 4 traces; one span of trace 1000 takes 2 h, no other span reaches 1 h.
        // (Trace 1000's pages sit mid-chunk, further than the page coalescing gap from other columns' pages.)
        var data = SearchDataset.Generate(2000, seed: 17, maxSpans: 6);
        foreach (var (_, _, s) in data.SelectMany(d => d.Trace.AllSpans()))
        {
            s.EndTimeUnixNano = s.StartTimeUnixNano + Math.Min(s.DurationNanos, 3_000_000_000UL);
        }

        var target = data[1000].Trace.AllSpans().First().Span;
        target.EndTimeUnixNano = target.StartTimeUnixNano + 7_200_000_000_000UL;
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 1 << 24, configure: o =>
        {
            o.TracesPerPage = 4;
            o.MinPageStoredBytes = 1;
        });
        var rg = Assert.Single(await block.GetFooterAsync(CancellationToken.None));
        var indexes = new RowGroupColumns(rg);
        await block.ReadPageIndexesAsync(rg, [Col.SpanDuration, Col.TraceId], indexes, CancellationToken.None);
        long dataSize = (await _store.GetAsync(ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName), CancellationToken.None))!.Length;
        _store.Reset();

        var (expected, actual, fetcher) = await CompareAsync("{ duration > 1h }", data, [block]);
        Assert.Equal(expected, actual);
        Assert.Contains(SearchResultJson.TraceIdHex(data[1000].Id), actual, StringComparison.Ordinal);

        // Filter pass: span.duration's header and min/max section (two reads: more than 512 bytes of entries lie
        // between them), then the two entries that locate the one page whose max reaches 1 h (one for page 0), and it.
        var duration = indexes.PageIndex(Col.SpanDuration)!;
        var hits = Enumerable.Range(0, duration.Pages.Count).Where(p => duration.Pages[p].Max > 3_600_000_000_000L).ToList();
        int hit = Assert.Single(hits);
        Assert.True(duration.Pages.Count > 50, $"{duration.Pages.Count} duration pages");
        int entries = ColumnPages.EntrySize * (hit == 0 ? 1 : 2);
        Assert.Equal(duration.HeaderLength + duration.Shape.StatsLength + entries + duration.Pages[hit].Stored, fetcher.FilterBytesByColumn[Col.SpanDuration]);

        // Fill pass: trace.id's header, entries 249 and 250, and page 250 holding trace 1000 (traces 1000..1003).
        var traceIds = indexes.PageIndex(Col.TraceId)!;
        Assert.Equal(4, traceIds.RowsPerPage);
        Assert.Equal(traceIds.HeaderLength + (2 * ColumnPages.EntrySize) + traceIds.Pages[1000 / 4].Stored, fetcher.FillBytesByColumn[Col.TraceId]);

        // Everything the store served is what the fetcher counted: besides these pages, the count columns read whole
        // to map spans to traces, and every other fill column's header, entries and page(s) of trace 1000.
        Assert.Equal((long)fetcher.InspectedBytes, _store.BytesRead);
        Assert.True(_store.BytesRead * 5 < dataSize, $"read {_store.BytesRead} of {dataSize} bytes");
    }

    [Fact]
    public async Task SearchAsync_TableOverDataset_MostQueriesMatchSomething()
    {
        // Guards the table against vacuous comparisons: most queries must select traces in the dataset.
        var data = SearchDataset.Generate(300, seed: 42);
        int nonEmpty = 0;
        foreach (var q in Queries)
        {
            var r = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate(q), new TraceModelFetcher(data.Select(d => d.Trace)), Options(), CancellationToken.None);
            nonEmpty += r.Traces.Count > 0 ? 1 : 0;
        }

        Assert.True(nonEmpty >= Queries.Length - 8, $"only {nonEmpty} of {Queries.Length} queries match anything");
    }

    [Fact]
    public async Task SearchAsync_SeveralBlocksAndTimeRange_EqualsModelFetcher()
    {
        var data = SearchDataset.Generate(240, seed: 7);
        var blocks = new List<BackendBlockV1>();
        foreach (var chunk in data.Chunk(80))
        {
            blocks.Add(await SearchDataset.WriteBlockAsync(_store, chunk, rowGroupBytes: 3000, compression: BlockCompression.Deflate));
        }

        // Traces start one second apart: a 60 s window in the middle selects ~60 traces across block boundaries.
        long start = (long)SearchDataset.BaseNanos + (100L * 1_000_000_000L);
        long end = start + (60L * 1_000_000_000L);
        foreach (var q in new[] { "{}", "{ status = error }", "{ duration > 10ms } | count() > 1", "{ resource.service.name = \"cart\" } >> { }" })
        {
            var (expected, actual, fetcher) = await CompareAsync(q, data, blocks, start, end);
            Assert.Equal(expected, actual);
            Assert.True(fetcher.RowGroupsSkippedByStats > 0, "time range should skip row groups by footer stats");
        }
    }

    [Fact]
    public void SearchAsync_RandomDatasetsAndQueries_EqualsModelFetcher()
    {
        var gen = Gen.Zip(Gen.Zip(Gen.Choose(1, 1_000_000), Gen.Choose(1, 60)), Gen.Zip(Gen.Choose(1200, 6000), Gen.SubListOf(Queries)));
        var prop = Prop.ForAll(gen.ToArbitrary(), input =>
        {
            var ((seed, traces), (rowGroupBytes, queries)) = input;
            var data = SearchDataset.Generate(traces, seed, maxSpans: 8);
            var block = SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes).GetAwaiter().GetResult();
            foreach (var q in queries.Take(12))
            {
                var (expected, actual, _) = CompareAsync(q, data, [block]).GetAwaiter().GetResult();
                Assert.True(expected == actual, $"query {q}, seed {seed}, {traces} traces, row groups of {rowGroupBytes} B:\nexpected {expected}\nactual   {actual}");
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(25), prop);
    }

    [Fact]
    public async Task FetchAsync_NeedleQuery_ReadsSmallFractionOfBlock()
    {
        // The needle: one attribute key held by two spans of one trace (so one row group's key dictionary has it).
        var data = SearchDataset.Generate(1500, seed: 3);
        foreach (var (_, _, s) in data[700].Trace.AllSpans().Take(2))
        {
            s.Attributes.Add(new KeyValue("order.id", AnyValue.String("o-4711")));
        }

        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 16 * 1024);
        long dataSize = (await _store.GetAsync(ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName), CancellationToken.None))!.Length;
        await block.GetFooterAsync(CancellationToken.None);
        _store.Reset();

        var (expected, actual, fetcher) = await CompareAsync("{ span.order.id = \"o-4711\" }", data, [block]);
        Assert.Equal(expected, actual);
        Assert.Contains("traceID", expected, StringComparison.Ordinal);
        Assert.Equal((long)fetcher.InspectedBytes, _store.BytesRead);
        Assert.True(_store.BytesRead * 5 < dataSize, $"needle read {_store.BytesRead} of {dataSize} bytes");
        Assert.Equal((int)block.Meta.TotalRecords - 1, fetcher.RowGroupsSkippedByDictionary);
        Assert.Equal(1, fetcher.RowGroupsScanned);
        Assert.True(block.Meta.TotalRecords > 10);

        // A duration bound no span reaches: every row group is skipped from the footer, no chunk is read.
        _store.Reset();
        var none = new BlockSpansetFetcher(block);
        var r = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate("{ duration > 1h }"), none, Options(), CancellationToken.None);
        Assert.Empty(r.Traces);
        Assert.Equal((int)block.Meta.TotalRecords, none.RowGroupsSkippedByStats);
        Assert.Equal(0, _store.BytesRead);
    }

    [Fact]
    public async Task FetchAsync_NameNotInDictionary_ReadsOnlyNameChunks()
    {
        var data = SearchDataset.Generate(600, seed: 21);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 8 * 1024);
        var footer = await block.GetFooterAsync(CancellationToken.None);
        _store.Reset();

        var (expected, actual, fetcher) = await CompareAsync("{ name = \"no-such-span\" && status = error }", data, [block]);
        Assert.Equal(expected, actual);
        Assert.Equal(footer.Count, fetcher.RowGroupsSkippedByDictionary);
        Assert.Equal(footer.Sum(rg => (long)rg.Columns[Col.SpanName].Length), _store.BytesRead);

        // With '||' the other condition keeps row groups alive: nothing is skipped by the dictionary.
        var (e2, a2, f2) = await CompareAsync("{ name = \"no-such-span\" || status = error }", data, [block]);
        Assert.Equal(e2, a2);
        Assert.Equal(0, f2.RowGroupsSkippedByDictionary);
        Assert.Contains("traceID", e2, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FetchAsync_BroadDurationQuery_SkipsRowGroupsByStats()
    {
        // Long spans only in the first traces: later row groups' max duration is below the bound.
        var data = SearchDataset.Generate(400, seed: 11);
        foreach (var (_, t) in data.Skip(40))
        {
            foreach (var (_, _, s) in t.AllSpans())
            {
                s.EndTimeUnixNano = s.StartTimeUnixNano + Math.Min(s.DurationNanos, 900_000_000UL);
            }
        }

        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 4096);
        var (expected, actual, fetcher) = await CompareAsync("{ duration > 1s }", data, [block]);
        Assert.Equal(expected, actual);
        Assert.True(fetcher.RowGroupsSkippedByStats >= (int)block.Meta.TotalRecords / 2, $"{fetcher.RowGroupsSkippedByStats} of {block.Meta.TotalRecords} skipped");
    }

    [Fact]
    public async Task SearchAsync_CorruptConditionChunk_ThrowsBlockCorruptNamingColumn()
    {
        var data = SearchDataset.Generate(60, seed: 13);
        var block = await SearchDataset.WriteBlockAsync(new LocalObjectStore(_dir.Path), data, rowGroupBytes: 4096, compression: BlockCompression.None);
        var rg = (await block.GetFooterAsync(CancellationToken.None))[0];
        string path = Path.Combine(_dir.Path, ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName));
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[rg.Offset + rg.Columns[Col.SpanName].Offset + rg.Shapes[Col.SpanName].PagesOffset(Col.SpanName)] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);

        var reopened = new BackendBlockV1(block.Meta, new LocalObjectStore(_dir.Path));
        var e = await Assert.ThrowsAsync<BlockCorruptException>(() => TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ name = \"GET /1\" }"), new BlockSpansetFetcher(reopened), Options(), CancellationToken.None));
        Assert.Contains("span.name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TagNamesAsync_Block_EqualsCollectorOverModel()
    {
        var data = SearchDataset.Generate(200, seed: 5);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 4096);
        foreach (var scope in new string?[] { null, "span", "resource", "event", "link", "instrumentation", "intrinsic" })
        {
            var expected = new TagNamesCollector(scope);
            foreach (var (_, t) in data)
            {
                foreach (var s in TraceModelFetcher.Build(t, out _))
                {
                    expected.Add(s);
                }
            }

            var actual = new TagNamesCollector(scope);
            await BlockTagSearch.CollectTagNamesAsync(block, actual, 0, 0, CancellationToken.None);
            Assert.Equal(Render(expected.Scopes()), Render(actual.Scopes()));
        }
    }

    [Theory]
    [InlineData("span.http.method")]
    [InlineData("span.http.status_code")]
    [InlineData("span.tags")]
    [InlineData("span.ratio")]
    [InlineData("resource.service.name")]
    [InlineData(".region")]
    [InlineData("event.exception.type")]
    [InlineData("link.link.kind")]
    [InlineData("instrumentation.scope.attr")]
    [InlineData("span:name")]
    [InlineData("name")]
    [InlineData("status")]
    [InlineData("kind")]
    [InlineData("event:name")]
    [InlineData("span:statusMessage")]
    [InlineData("instrumentation:name")]
    [InlineData("trace:rootService")]
    public async Task TagValuesAsync_Block_EqualsCollectorOverModel(string tag)
    {
        var data = SearchDataset.Generate(200, seed: 9);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 4096);
        var expected = new TagValuesCollector(tag);
        foreach (var (_, t) in data)
        {
            foreach (var s in TraceModelFetcher.Build(t, out _))
            {
                expected.Add(s);
            }
        }

        var actual = new TagValuesCollector(tag);
        await BlockTagSearch.CollectTagValuesAsync(block, actual, 0, 0, CancellationToken.None);
        Assert.NotEmpty(expected.Values);
        Assert.Equal(expected.Values.Order(), actual.Values.Order());
    }

    private static string Render(List<(string Name, List<string> Tags)> scopes) =>
        string.Join("\n", scopes.Select(s => s.Name + ": " + string.Join(",", s.Tags)));

    private static SearchOptions Options(long start = 0, long end = 0) =>
        new() { Limit = 100_000, SpansPerSpanSet = 1000, StartUnixNanos = start, EndUnixNanos = end };

    /// <summary>Runs the query through both fetchers; results as JSON without the metrics (which legitimately differ).</summary>
    private static async Task<(string Expected, string Actual, MultiBlockSpansetFetcher Fetcher)> CompareAsync(
        string query, List<(TraceId Id, Trace Trace)> data, IReadOnlyList<BackendBlockV1> blocks, long start = 0, long end = 0)
    {
        var root = TraceQLParser.ParseAndValidate(query);
        var model = await TraceQLEngine.SearchAsync(root, new TraceModelFetcher(data.Select(d => d.Trace)), Options(start, end), CancellationToken.None);
        var fetcher = MultiBlockSpansetFetcher.ForBlocks(blocks.Select(b => (IBackendBlock)b));
        var fromBlocks = await TraceQLEngine.SearchAsync(root, fetcher, Options(start, end), CancellationToken.None);
        Assert.Equal(fetcher.InspectedBytes, fromBlocks.Metrics.InspectedBytes);
        return (SearchResultJson.ToJson(new SearchResult { Traces = model.Traces }), SearchResultJson.ToJson(new SearchResult { Traces = fromBlocks.Traces }), fetcher);
    }
}
