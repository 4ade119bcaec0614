using BenchmarkDotNet.Attributes;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;

namespace Rubato.Bench;

/// <summary>
/// TraceQL search of one vRubato1 block of ~200k spans (20,000 traces × 10 spans, 1 MiB raw row groups, brotli) through
/// <see cref="BlockSpansetFetcher"/>: a needle (one trace), a broad duration filter, a structural query and an
/// aggregate. Bytes read per query versus the data object's size are printed once in the setup log.
/// </summary>
[MemoryDiagnoser]
public class BlockSearchBenchmarks
{
    private const int Traces = 20_000;
    private const int SpansPerTrace = 10;
    private static readonly string[] Services = ["frontend", "cart", "checkout", "db", "auth", "payment"];
    private static readonly string[] Methods = ["GET", "POST", "PUT"];

    private readonly Dictionary<string, RootExpr> _queries = [];
    private string _dir = string.Empty;
    private BackendBlockV1 _block = null!;

    [Params("needle", "broad", "structural", "aggregate")]
    public string Query { get; set; } = "needle";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "rubato-bench-search-" + Guid.NewGuid().ToString("N"));
        var store = new LocalObjectStore(_dir);
        var opts = new BlockBuilderOptions { TenantId = "bench", BlockId = Guid.NewGuid(), RowGroupSizeBytes = 1 << 20 };
        using (var builder = Encodings.Default.CreateBlockBuilder(opts))
        {
            var rnd = new Random(1);
            for (int t = 0; t < Traces; t++)
            {
                var id = new TraceId(0x0100_0000_0000_0000UL + (ulong)t, (ulong)rnd.NextInt64());
                builder.AddTrace(id, MakeTrace(rnd, id, t));
            }

            var meta = builder.WriteAsync(store, CancellationToken.None).GetAwaiter().GetResult();
            _block = (BackendBlockV1)Encodings.FromVersion(meta.Version).OpenBlock(meta, store);
        }

        _queries["needle"] = TraceQLParser.ParseAndValidate("{ span.order.id = \"o-4711\" }");
        _queries["broad"] = TraceQLParser.ParseAndValidate("{ duration > 1s }");
        _queries["structural"] = TraceQLParser.ParseAndValidate("{ resource.service.name = \"frontend\" } >> { status = error }");
        _queries["aggregate"] = TraceQLParser.ParseAndValidate("{ kind = server } | count() > 5");
        long dataBytes = store.GetAsync(ObjectKeys.BlockObject("bench", opts.BlockId, FormatV1.DataName), CancellationToken.None).GetAwaiter().GetResult()!.Length;
        var q = _queries[Query];
        var fetcher = new BlockSpansetFetcher(_block);
        var result = TraceQLEngine.SearchAsync(q, fetcher, new SearchOptions { Limit = 20 }, CancellationToken.None).GetAwaiter().GetResult();
        Console.WriteLine(
            $"// block-search {Query}: {_block.Meta.SpanCount} spans, {_block.Meta.TotalRecords} row groups, data {dataBytes} B; "
            + $"read {fetcher.InspectedBytes} B ({100.0 * fetcher.InspectedBytes / dataBytes:F1}%) in {fetcher.Reads} reads; "
            + $"row groups skipped by stats {fetcher.RowGroupsSkippedByStats}, by key dictionary {fetcher.RowGroupsSkippedByDictionary}, "
            + $"without candidates {fetcher.RowGroupsWithoutCandidates}, filled {fetcher.RowGroupsScanned}; {result.Traces.Count} traces");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Benchmark]
    public async Task<int> Search()
    {
        var result = await TraceQLEngine.SearchAsync(_queries[Query], new BlockSpansetFetcher(_block), new SearchOptions { Limit = 20 }, CancellationToken.None);
        return result.Traces.Count;
    }

    private static Trace MakeTrace(Random rnd, TraceId id, int index)
    {
        var trace = new Trace();
        ulong start = 1_700_000_000_000_000_000UL + ((ulong)index * 10_000_000UL);
        var resources = new Dictionary<string, ScopeSpans>();
        for (int i = 0; i < SpansPerTrace; i++)
        {
            string service = i == 0 ? "frontend" : Services[rnd.Next(Services.Length)];
            if (!resources.TryGetValue(service, out var ss))
            {
                var rs = new ResourceSpans();
                rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
                rs.Resource.Attributes.Add(new KeyValue("k8s.pod.name", AnyValue.String(service + "-" + rnd.Next(20))));
                ss = new ScopeSpans();
                ss.Scope.Name = "io.opentelemetry." + service;
                rs.ScopeSpans.Add(ss);
                trace.ResourceSpans.Add(rs);
                resources[service] = ss;
            }

            ulong s0 = start + (ulong)rnd.Next(5_000_000);
            ulong dur = rnd.Next(2000) == 0 ? 1_500_000_000UL : (ulong)rnd.Next(100_000, 80_000_000);
            var span = new Span
            {
                TraceId = id,
                SpanId = new SpanId(((ulong)index << 8) + (ulong)i + 1),
                ParentSpanId = i == 0 ? default : new SpanId(((ulong)index << 8) + (ulong)rnd.Next(i) + 1),
                Name = i == 0 ? "GET /api/" + rnd.Next(30) : service + ".op" + rnd.Next(8),
                Kind = i == 0 || rnd.Next(3) == 0 ? Rubato.Common.Model.SpanKind.Server : Rubato.Common.Model.SpanKind.Client,
                StartTimeUnixNano = s0,
                EndTimeUnixNano = s0 + dur,
                StatusCode = rnd.Next(50) == 0 ? StatusCode.Error : StatusCode.Unset,
            };
            span.Attributes.Add(new KeyValue("http.method", AnyValue.String(Methods[rnd.Next(Methods.Length)])));
            span.Attributes.Add(new KeyValue("http.status_code", AnyValue.Int(rnd.Next(20) == 0 ? 500 : 200)));
            span.Attributes.Add(new KeyValue("http.url", AnyValue.String("https://shop.example/" + service + "/" + rnd.Next(1000))));
            if (index == Traces / 2 && i < 2)
            {
                span.Attributes.Add(new KeyValue("order.id", AnyValue.String("o-4711")));
            }

            ss.Spans.Add(span);
        }

        return trace;
    }
}
