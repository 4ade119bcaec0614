using System.Globalization;
using System.Text;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Metrics;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.Storage.Tests.Search;

/// <summary>
/// TraceQL metrics over blocks: <see cref="BlockSpansetFetcher"/> (with and without postings) gives exactly the series,
/// values and exemplars of <see cref="TraceModelFetcher"/> over the same traces, job by job, although under
/// <see cref="FetchSpansRequest.OnlyNamedFields"/> it leaves out the fields metrics never read.
/// </summary>
public sealed class BlockMetricsTests : IDisposable
{
    /// <summary>The two queries of docs/benchmarks.md §9 and some that name the fields the metrics fetch may skip.</summary>
    public static readonly string[] Queries =
    [
        "{ } | rate() by (resource.service.name)",
        "{ kind = server } | quantile_over_time(duration, .5, .99) by (resource.service.name)",
        "{ status = error } | count_over_time() by (name)",
        "{ resource.service.name = \"cart\" } | rate() by (name, status)",
        "{ } | count_over_time() by (trace:rootService, trace:rootName)",
        "{ span.http.status_code >= 500 } | avg_over_time(duration) by (span.http.method)",
        "{ duration > 5ms && kind = client } | max_over_time(duration) by (resource.service.name)",
        "{ } | compare({ status = error })",
        "{ name = \"db.query\" } >> { } | rate()",
    ];

    private readonly TempDir _dir = new();
    private readonly CountingObjectStore _store;

    public BlockMetricsTests()
    {
        _store = new CountingObjectStore(new LocalObjectStore(_dir.Path));
    }

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> QueryData() => new(Queries);

    [Theory]
    [MemberData(nameof(QueryData))]
    public async Task RunShardAsync_BlockFetcher_EqualsModelFetcher(string query)
    {
        // Three blocks of many row groups each, one job per block as the frontend runs them; the model runs the same
        // traces per job (exemplars are capped per job, so jobs must match for them to compare).
        var data = SearchDataset.Generate(360, seed: 17);
        var chunks = data.Chunk(120).ToList();
        var blocks = new List<BackendBlockV1>();
        foreach (var chunk in chunks)
        {
            blocks.Add(await SearchDataset.WriteBlockAsync(_store, chunk, rowGroupBytes: 4096));
        }

        Assert.All(blocks, b => Assert.True(b.Meta.TotalRecords > 5, $"only {b.Meta.TotalRecords} row groups"));
        Assert.All(blocks, b => Assert.True(b.HasPostings));
        var compiled = Compile(query, data);
        string expected = Render(await compiled.RunAsync(chunks.Select(c => new TraceModelFetcher(c.Select(d => d.Trace))), CancellationToken.None));
        string withPostings = Render(await compiled.RunAsync(blocks.Select(b => new BlockSpansetFetcher(b, usePostings: true)), CancellationToken.None));
        string columns = Render(await compiled.RunAsync(blocks.Select(b => new BlockSpansetFetcher(b, usePostings: false)), CancellationToken.None));
        Assert.Contains("{", expected, StringComparison.Ordinal); // some series
        Assert.Equal(expected, withPostings);
        Assert.Equal(expected, columns);

        // Sharded (jobs merged in another order, as parallel jobs finish) equals unsharded.
        var merged = compiled.NewShard();
        foreach (var b in Enumerable.Reverse(blocks))
        {
            merged.Merge(await compiled.RunShardAsync(new BlockSpansetFetcher(b), CancellationToken.None));
        }

        Assert.Equal(expected, Render(compiled.Finalize(merged)));
    }

    [Fact]
    public async Task FetchAsync_MetricsRequest_ReadsOnlyTheColumnsItNames()
    {
        var data = SearchDataset.Generate(300, seed: 5);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 4096);
        var compiled = Compile("{ } | rate() by (resource.service.name)", data);
        Assert.True(compiled.RequestOf(0).OnlyNamedFields);
        var fetcher = new BlockSpansetFetcher(block);
        int spans = 0, named = 0;
        await foreach (var ss in fetcher.FetchAsync(compiled.RequestOf(0), CancellationToken.None))
        {
            Assert.Null(ss.Trace.ServiceStats);
            Assert.Equal(string.Empty, ss.Trace.RootServiceName);
            foreach (var s in ss.Spans)
            {
                Assert.Equal(string.Empty, s.Name);
                Assert.Equal(string.Empty, s.ServiceName);
                Assert.NotEqual(0UL, s.StartUnixNanos);
                named += s.ResourceAttributes.Get("service.name").IsNil ? 0 : 1;
                spans++;
            }
        }

        Assert.Equal(data.Sum(d => d.Trace.AllSpans().Count()), spans);
        Assert.True(named > spans / 2, $"{named} of {spans} spans carry the by() attribute");
        int[] skipped = [Col.SpanName, Col.SpanStatusCode, Col.TraceRootService, Col.TraceRootSpanName, Col.SpanKind, Col.SpanParentId];
        foreach (int c in skipped)
        {
            Assert.True(fetcher.FilterBytesByColumn[c] + fetcher.FillBytesByColumn[c] == 0, $"{Col.Name(c)} read");
        }

        Assert.True(fetcher.FillBytesByColumn[Col.SpanStartDelta] > 0);
        Assert.True(fetcher.FillBytesByColumn[Col.SpanDuration] > 0);

        // The same spans for a search request (no OnlyNamedFields) read the name, status and root columns.
        var search = new BlockSpansetFetcher(block);
        await foreach (var ss in search.FetchAsync(compiled.RequestOf(0) with { OnlyNamedFields = false }, CancellationToken.None))
        {
            Assert.NotNull(ss.Trace.ServiceStats);
        }

        foreach (int c in new[] { Col.SpanName, Col.SpanStatusCode, Col.TraceRootService, Col.TraceRootSpanName })
        {
            Assert.True(search.FillBytesByColumn[c] > 0, $"{Col.Name(c)} not read by the search fill");
        }

        Assert.True(fetcher.InspectedBytes < search.InspectedBytes, $"{fetcher.InspectedBytes} vs {search.InspectedBytes}");
    }

    [Fact]
    public async Task FetchAsync_StoppedAfterFirstSpanset_CountsTheRowGroupItBuiltFrom()
    {
        // Spansets are built lazily per trace; stopping mid row group still releases it and counts its bytes.
        var data = SearchDataset.Generate(200, seed: 9);
        var block = await SearchDataset.WriteBlockAsync(_store, data, rowGroupBytes: 4096);
        var request = Compile("{ } | rate()", data).RequestOf(0);
        var fetcher = new BlockSpansetFetcher(block);
        await using (var e = fetcher.FetchAsync(request, CancellationToken.None).GetAsyncEnumerator())
        {
            Assert.True(await e.MoveNextAsync());
            Assert.Equal(data[0].Id, e.Current.Trace.TraceId);
            Assert.Equal(0UL, fetcher.InspectedBytes); // the row group is still being built from
        }

        Assert.True(fetcher.InspectedBytes > 0);
        Assert.Equal(1, fetcher.RowGroupsScanned);
        var all = new BlockSpansetFetcher(block);
        int traces = 0;
        await foreach (var ss in all.FetchAsync(request, CancellationToken.None))
        {
            Assert.Equal(data[traces++].Id, ss.Trace.TraceId);
        }

        Assert.Equal(data.Count, traces);
        Assert.True(all.InspectedBytes > fetcher.InspectedBytes);
    }

    private static CompiledMetricsQuery Compile(string query, List<(TraceId Id, Trace Trace)> data)
    {
        // Traces start a second apart from BaseNanos: a minute of margin either side, 10 s steps.
        long start = (long)SearchDataset.BaseNanos - 60_000_000_000L;
        long end = (long)SearchDataset.BaseNanos + ((data.Count + 60L) * 1_000_000_000L);
        return CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate(query), MetricsRange.Align(start, end, 10_000_000_000L), maxExemplars: 50);
    }

    /// <summary>Series labels, every value (round-trip precision) and every exemplar, one series per line.</summary>
    private static string Render(MetricsResult r)
    {
        var sb = new StringBuilder();
        foreach (var s in r.Series)
        {
            sb.Append(s.PromLabels).Append(" =");
            foreach (double v in s.Values)
            {
                sb.Append(' ').Append(v.ToString("R", CultureInfo.InvariantCulture));
            }

            foreach (var e in s.Exemplars)
            {
                sb.Append(" | ").Append(string.Join(",", e.Labels.Select(l => l.Name + "=" + l.PromValue())))
                    .Append(' ').Append(e.Value.ToString("R", CultureInfo.InvariantCulture)).Append('@').Append(e.TimestampMs);
            }

            sb.Append('\n');
        }

        sb.Append("spans ").Append(r.Stats.InspectedSpans);
        return sb.ToString();
    }
}
