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
/// Differential tests of the postings path: every query returns exactly the same search result with postings, with
/// postings disabled (columns only) and through <see cref="TraceModelFetcher"/>, over blocks whose low-cardinality
/// attributes are indexed with various caps and shares.
/// </summary>
public sealed class PostingsSearchTests : IDisposable
{
    public static readonly string[] Queries =
    [
        "{ span.code = 500 }",
        "{ span.code = 500.0 }",
        "{ span.code != 200 }",
        "{ span.code >= 500 }",
        "{ span.code < 404.5 }",
        "{ span.code > 200 && span.code < 503 }",
        "{ span.code = \"500\" }",
        "{ span.code =~ \"5.*\" }",
        "{ span.method = \"PUT\" }",
        "{ span.method != \"GET\" }",
        "{ span.method =~ \"P.*\" }",
        "{ span.method !~ \"GET|POST\" }",
        "{ span.method > \"POST\" }",
        "{ span.method = \"NOPE\" }",
        "{ span.flag = true }",
        "{ span.flag != true }",
        "{ span.mixed = \"x\" }",
        "{ span.mixed = 3 }",
        "{ span.dup = \"first\" }",
        "{ span.dup = \"second\" }",
        "{ span.absent = \"x\" }",
        "{ span.code = nil }",
        "{ span.code != nil }",
        "{ resource.env = \"stage\" }",
        "{ resource.env != \"prod\" }",
        "{ resource.tier >= 3 }",
        "{ resource.tier = 2.0 }",
        "{ resource.canary = true }",
        "{ resource.service.name = \"payment\" }",
        "{ resource.service.name =~ \"pay.*|ship.*\" }",
        "{ instrumentation.lib = \"rare\" }",
        "{ span.code = 500 && resource.service.name = \"payment\" }",
        "{ span.code = 500 && resource.env = \"stage\" && span.method = \"PUT\" }",
        "{ span.code = 500 || resource.env = \"stage\" }",
        "{ span.code = 503 || status = error }",
        "{ span.code = 500 && status = error }",
        "{ span.code = 500 && duration > 5ms }",
        "{ span.code = 500 && .env = \"stage\" }",
        "{ .code = 500 }",
        "{ span.code = 500 && span.method = \"GET\" }",
        "{ span.code = 500 } | select(span.method, resource.env)",
        "{ span.code = 500 } | by(resource.service.name)",
        "{ resource.env = \"stage\" } >> { span.code = 500 }",
        "{ span.code = 500 && resource.service.name = \"payment\" } | count() > 1",
        "{ span.code + 1 > 500 }",
    ];

    private static readonly string[] Services = ["frontend", "cart", "payment", "shipping"];

    private readonly TempDir _dir = new();
    private readonly CountingObjectStore _store;

    public PostingsSearchTests()
    {
        _store = new CountingObjectStore(new LocalObjectStore(_dir.Path));
    }

    public void Dispose() => _dir.Dispose();

    public static TheoryData<double, int> Configurations() => new() { { 0.25, 64 }, { 1.0, 64 }, { 0.05, 3 }, { 1.0, 2 } };

    [Theory]
    [MemberData(nameof(Configurations))]
    public async Task SearchAsync_WithPostings_EqualsColumnsAndModel(double share, int maxValues)
    {
        var data = Generate(400, seed: (int)(share * 100) + maxValues);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 8 * 1024, configure: o =>
        {
            o.PostingsMaxShare = share;
            o.PostingsMaxValues = maxValues;
        });
        Assert.True(block.HasPostings);
        Assert.True(block.Meta.TotalRecords > 3, $"{block.Meta.TotalRecords} row groups");
        long postingsBytes = 0;
        var empty = new List<string>();
        foreach (var q in Queries)
        {
            var root = TraceQLParser.ParseAndValidate(q);
            var model = await TraceQLEngine.SearchAsync(root, new TraceModelFetcher(data.Select(d => d.Trace)), Options(), CancellationToken.None);
            var withPostings = new MultiBlockSpansetFetcher([block], usePostings: true);
            var columns = new MultiBlockSpansetFetcher([block], usePostings: false);
            var a = await TraceQLEngine.SearchAsync(root, withPostings, Options(), CancellationToken.None);
            var b = await TraceQLEngine.SearchAsync(root, columns, Options(), CancellationToken.None);
            string expected = Json(model), actual = Json(a);
            Assert.True(expected == actual, $"query {q} with postings:\nexpected {expected}\nactual   {actual}");
            Assert.True(expected == Json(b), $"query {q} without postings:\nexpected {expected}\nactual   {Json(b)}");
            Assert.Equal(0, columns.PostingsBytes);
            Assert.Equal(withPostings.InspectedBytes, a.Metrics.InspectedBytes);
            postingsBytes += withPostings.PostingsBytes;
            if (model.Traces.Count == 0)
            {
                empty.Add(q);
            }
        }

        Assert.True(postingsBytes > 0, "no query read postings");
        Assert.True(empty.Count <= 8, $"queries matching nothing: {string.Join(", ", empty)}");
    }

    [Theory]
    [InlineData("{ span.code = 500 } | select(kind)")]
    [InlineData("{ span.code = 500 && kind = server }")]
    [InlineData("{ span.code = 500 || kind = internal } | by(kind) | count() > 1")]
    public async Task FetchAsync_QueryNamingKind_FillsKindLikeTheModel(string query)
    {
        var data = Generate(600, seed: 41);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 16 * 1024);
        var root = TraceQLParser.ParseAndValidate(query);
        var model = await TraceQLEngine.SearchAsync(root, new TraceModelFetcher(data.Select(d => d.Trace)), Options(), CancellationToken.None);
        var fetcher = new MultiBlockSpansetFetcher([block]);
        var result = await TraceQLEngine.SearchAsync(root, fetcher, Options(), CancellationToken.None);
        Assert.NotEmpty(model.Traces);
        Assert.Equal(Json(model), Json(result));
        Assert.True(fetcher.FilterBytesByColumn[Col.SpanKind] + fetcher.FillBytesByColumn[Col.SpanKind] > 0);
    }

    [Fact]
    public async Task FetchAsync_NeedleQuery_ReadsNoSpanAttributeKeyColumn()
    {
        var data = Generate(600, seed: 99);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 16 * 1024);
        await block.GetFooterAsync(CancellationToken.None);
        await block.GetPostingsTableAsync(null, CancellationToken.None);
        _store.Reset();

        const string needle = "{ span.code = 500 && resource.service.name = \"payment\" }";
        var root = TraceQLParser.ParseAndValidate(needle);
        var model = await TraceQLEngine.SearchAsync(root, new TraceModelFetcher(data.Select(d => d.Trace)), Options(), CancellationToken.None);
        var fetcher = new MultiBlockSpansetFetcher([block]);
        var result = await TraceQLEngine.SearchAsync(root, fetcher, Options(), CancellationToken.None);
        Assert.Equal(Json(model), Json(result));
        Assert.NotEmpty(model.Traces);

        // Neither pass touched the span or resource attribute columns, nor resource.service_name for the filter: the
        // conditions came from postings and the fill took the two attributes' values from them.
        foreach (var level in new[] { AttrLevel.Span, AttrLevel.Resource })
        {
            foreach (int part in new[] { Col.AttrCount, Col.AttrKey, Col.AttrType, Col.AttrString, Col.AttrInt })
            {
                int c = Col.Attr(level, part);
                Assert.True(fetcher.FilterBytesByColumn[c] + fetcher.FillBytesByColumn[c] == 0, $"{Col.Name(c)} read: filter {fetcher.FilterBytesByColumn[c]} B, fill {fetcher.FillBytesByColumn[c]} B");
            }
        }

        Assert.Equal(0, fetcher.FilterBytesByColumn[Col.ResourceServiceName]);
        Assert.Equal(0, fetcher.FilterBytesByColumn[Col.SpanKind] + fetcher.FillBytesByColumn[Col.SpanKind]); // kind is not in the query
        Assert.True(fetcher.PostingsBytes > 0);
        Assert.Equal((long)fetcher.InspectedBytes, _store.BytesRead);

        // Without postings the same query reads the span attribute keys.
        var columns = new MultiBlockSpansetFetcher([block], usePostings: false);
        var r2 = await TraceQLEngine.SearchAsync(root, columns, Options(), CancellationToken.None);
        Assert.Equal(Json(model), Json(r2));
        Assert.True(columns.FilterBytesByColumn[Col.Attr(AttrLevel.Span, Col.AttrKey)] > 0);
        Assert.True(fetcher.InspectedBytes < columns.InspectedBytes, $"{fetcher.InspectedBytes} vs {columns.InspectedBytes}");
    }

    [Fact]
    public async Task FetchAsync_PostingsUse_FollowsPlanShape()
    {
        var data = Generate(300, seed: 12);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 8 * 1024);
        int keyCol = Col.Attr(AttrLevel.Span, Col.AttrKey);

        // No listed value accepted: every row group is ruled out from its postings directory, no column chunk is read.
        var (none, _) = await RunAsync(block, data, "{ span.method = \"NOPE\" && status = error }");
        Assert.Equal((int)block.Meta.TotalRecords, none.RowGroupsSkippedByDictionary);
        Assert.Equal(none.PostingsBytes, (long)none.InspectedBytes);

        // OR of conditions postings may all answer: postings, no span key column in the filter pass.
        var (or, _) = await RunAsync(block, data, "{ span.code = 500 || resource.env = \"stage\" }");
        Assert.True(or.PostingsBytes > 0);
        Assert.Equal(0, or.FilterBytesByColumn[keyCol]);

        // OR with a condition they cannot answer: the fill needs the attribute columns anyway, so no postings are read.
        var (mixed, _) = await RunAsync(block, data, "{ span.code = 500 || status = error }");
        Assert.Equal(0, mixed.PostingsBytes);
        Assert.True(mixed.FilterBytesByColumn[keyCol] > 0);

        // Nil matches (and unscoped fields): always the columns.
        var (nil, _) = await RunAsync(block, data, "{ span.code = nil && .method = \"PUT\" }");
        Assert.Equal(0, nil.PostingsBytes);
    }

    [Fact]
    public async Task SearchAsync_BlockWithoutPostings_EqualsModel()
    {
        var data = Generate(150, seed: 8);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 8 * 1024, configure: o => o.PostingsMaxValues = 0);
        Assert.False(block.HasPostings);
        foreach (var q in Queries.Take(12))
        {
            var (fetcher, _) = await RunAsync(block, data, q);
            Assert.Equal(0, fetcher.PostingsBytes);
        }
    }

    /// <summary>Runs a query through a postings-enabled fetcher and asserts the model's result.</summary>
    private static async Task<(MultiBlockSpansetFetcher Fetcher, SearchResult Result)> RunAsync(BackendBlockV1 block, List<(TraceId Id, Trace Trace)> data, string query)
    {
        var root = TraceQLParser.ParseAndValidate(query);
        var model = await TraceQLEngine.SearchAsync(root, new TraceModelFetcher(data.Select(d => d.Trace)), Options(), CancellationToken.None);
        var fetcher = new MultiBlockSpansetFetcher([block]);
        var result = await TraceQLEngine.SearchAsync(root, fetcher, Options(), CancellationToken.None);
        Assert.Equal(Json(model), Json(result));
        return (fetcher, result);
    }

    [Fact]
    public async Task SearchAsync_CorruptPosting_ThrowsBlockCorruptNamingPostings()
    {
        var data = Generate(200, seed: 5);
        var store = new LocalObjectStore(_dir.Path);
        var block = await SearchDataset.WriteBlockAsync(store, data, rowGroupBytes: 8 * 1024, compression: BlockCompression.None);
        var dir = await block.ReadPostingsDirectoryAsync(0, null, CancellationToken.None);
        var posting = dir.Level(AttrLevel.Span).Keys["code"].Values.First(v => v.Order == 500);
        Assert.True(posting.HasPosting);
        string key = ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, Postings.ObjectName);
        string path = Path.Combine(_dir.Path, key);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[posting.Offset] ^= 0x01;
        await File.WriteAllBytesAsync(path, bytes);

        var reopened = new BackendBlockV1(block.Meta, store);
        var e = await Assert.ThrowsAsync<BlockCorruptException>(() => TraceQLEngine.SearchAsync(
            TraceQLParser.ParseAndValidate("{ span.code = 500 }"), new BlockSpansetFetcher(reopened), Options(), CancellationToken.None));
        Assert.Equal(key, e.ObjectKey);
        Assert.Equal(posting.Offset, e.Offset);
        Assert.Contains("span code=500", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Traces with low-cardinality attributes: resource service.name (4; payment on 10%), env (prod common, dev, stage rare), tier int,
    /// canary bool (sometimes absent); scope lib; span code int (200 common, 404, 500, 503 rare), method string, flag
    /// bool, mixed (string or int: never indexed), dup (a duplicate key on some spans; first wins).
    /// </summary>
    private static List<(TraceId Id, Trace Trace)> Generate(int traces, int seed)
    {
        var rnd = new Random(seed);
        var list = new List<(TraceId, Trace)>();
        for (int t = 0; t < traces; t++)
        {
            var id = new TraceId(0x0200_0000_0000_0000UL + ((ulong)t << 24), (ulong)rnd.NextInt64());
            ulong start = SearchDataset.BaseNanos + ((ulong)t * 1_000_000_000UL);
            var trace = new Trace();
            ulong spanId = ((ulong)t << 16) + 1;
            for (int r = rnd.Next(1, 4); r > 0; r--)
            {
                var rs = new ResourceSpans();
                var ra = rs.Resource.Attributes;
                ra.Add(new KeyValue("service.name", AnyValue.String(Services[rnd.Next(10) switch { 0 => 2, < 3 => 1, < 5 => 3, _ => 0 }])));
                ra.Add(new KeyValue("env", AnyValue.String(rnd.Next(10) switch { 0 => "stage", < 3 => "dev", _ => "prod" })));
                ra.Add(new KeyValue("tier", AnyValue.Int(rnd.Next(1, 5))));
                if (rnd.Next(3) > 0)
                {
                    ra.Add(new KeyValue("canary", AnyValue.Bool(rnd.Next(8) == 0)));
                }

                var ss = new ScopeSpans();
                ss.Scope.Name = "lib";
                ss.Scope.Attributes.Add(new KeyValue("lib", AnyValue.String(rnd.Next(12) == 0 ? "rare" : "std")));
                for (int s = rnd.Next(1, 6); s > 0; s--)
                {
                    ulong st = start + (ulong)rnd.Next(1_000_000);
                    var span = new Span
                    {
                        TraceId = id,
                        SpanId = new SpanId(spanId++),
                        Name = "op",
                        Kind = (SpanKind)rnd.Next(1, 6),
                        StartTimeUnixNano = st,
                        EndTimeUnixNano = st + (ulong)rnd.Next(10_000_000),
                        StatusCode = rnd.Next(10) == 0 ? StatusCode.Error : StatusCode.Ok,
                    };
                    var a = span.Attributes;
                    if (rnd.Next(10) > 0)
                    {
                        a.Add(new KeyValue("code", AnyValue.Int(rnd.Next(40) switch { 0 => 500, 1 => 503, < 5 => 404, _ => 200 })));
                    }

                    a.Add(new KeyValue("method", AnyValue.String(rnd.Next(10) switch { 0 => "PUT", < 3 => "POST", _ => "GET" })));
                    if (rnd.Next(2) == 0)
                    {
                        a.Add(new KeyValue("flag", AnyValue.Bool(rnd.Next(6) == 0)));
                    }

                    a.Add(new KeyValue("mixed", rnd.Next(15) == 0 ? AnyValue.Int(3) : AnyValue.String(rnd.Next(2) == 0 ? "x" : "y")));
                    if (rnd.Next(4) == 0)
                    {
                        a.Add(new KeyValue("dup", AnyValue.String(rnd.Next(3) == 0 ? "first" : "other")));
                        a.Add(new KeyValue("dup", AnyValue.String("second")));
                    }

                    ss.Spans.Add(span);
                }

                rs.ScopeSpans.Add(ss);
                trace.ResourceSpans.Add(rs);
            }

            list.Add((id, trace));
        }

        list.Sort((x, y) => x.Item1.CompareTo(y.Item1));
        return list;
    }

    private static string Json(SearchResult r) => SearchResultJson.ToJson(new SearchResult { Traces = r.Traces });

    private static SearchOptions Options() => new() { Limit = 100_000, SpansPerSpanSet = 1000 };
}
