using System.Globalization;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Stopwatch = System.Diagnostics.Stopwatch;

namespace Rubato.SearchBench;

/// <summary>
/// Generates (or reuses) a store of several vRubato1 blocks holding ≥5M spans and times four TraceQL searches over all
/// of them with a limit large enough to force a full scan. Usage:
/// <c>rubato-searchbench [--store DIR] [--traces N] [--spans-per-trace N] [--traces-per-block N] [--runs N] [--regenerate] [--column-sizes] [--column-reads] [--no-postings] [--traces-per-page N] [--min-page-stored-bytes N] [--page-size-bytes N] [--queries name,name]</c>
/// (the page options apply when the store is generated).
/// </summary>
public static class Program
{
    private const string Tenant = "bench";
    private const string ManifestName = "searchbench-blocks.txt";

    private static readonly string[] Services =
        ["frontend", "cart", "checkout", "payment", "shipping", "currency", "ads", "recommendation", "email", "inventory"];

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE"];
    private static readonly string[] Regions = ["eu-west-1", "us-east-1", "ap-south-1"];

    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "metrics")
        {
            return await MetricsBench.RunAsync(args[1..]).ConfigureAwait(false);
        }

        string storeDir = Path.Combine(Path.GetTempPath(), "rubato-searchbench-store");
        int traces = 500_000;
        int spansPerTrace = 10;
        int tracesPerBlock = 100_000;
        int runs = 3;
        bool regenerate = false;
        bool usePostings = true;
        string[]? only = null;
        var pageOptions = new BlockBuilderOptions();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--store": storeDir = args[++i]; break;
                case "--traces": traces = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--spans-per-trace": spansPerTrace = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--traces-per-block": tracesPerBlock = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--regenerate": regenerate = true; break;
                case "--traces-per-page": pageOptions.TracesPerPage = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--min-page-stored-bytes": pageOptions.MinPageStoredBytes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--page-size-bytes": pageOptions.PageSizeBytes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--queries": only = args[++i].Split(','); break;
                case "--column-sizes": break;
                case "--column-reads": break;
                case "--no-postings": usePostings = false; break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'");
                    return 2;
            }
        }

        if (spansPerTrace < 2 || traces < 1 || tracesPerBlock < 1 || runs < 1)
        {
            Console.Error.WriteLine("--traces, --traces-per-block and --runs must be ≥ 1 and --spans-per-trace ≥ 2");
            return 2;
        }

        string manifest = Path.Combine(storeDir, ManifestName);
        if (regenerate && Directory.Exists(storeDir))
        {
            Directory.Delete(storeDir, recursive: true);
        }

        var store = new LocalObjectStore(storeDir);
        if (!File.Exists(manifest))
        {
            await GenerateAsync(store, manifest, traces, spansPerTrace, tracesPerBlock, pageOptions).ConfigureAwait(false);
        }
        else
        {
            Console.WriteLine($"reusing store {storeDir} (pass --regenerate to rebuild)");
        }

        var blocks = new List<BackendBlockV1>();
        long dataBytes = 0;
        long blockBytes = 0;
        long spanCount = 0;
        long postingsBytes = 0;
        int rowGroups = 0;
        foreach (string line in File.ReadAllLines(manifest).Where(l => l.Length > 0))
        {
            var id = Guid.Parse(line);
            byte[] json = await store.GetAsync(ObjectKeys.BlockObject(Tenant, id, ObjectKeys.MetaName), CancellationToken.None).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"block {id} listed in {manifest} has no meta.json");
            var meta = BlockMeta.FromJson(json);
            blocks.Add((BackendBlockV1)Encodings.FromVersion(meta.Version).OpenBlock(meta, store));
            dataBytes += new FileInfo(Path.Combine(storeDir, Tenant, id.ToString(), FormatV1.DataName)).Length;
            blockBytes += new DirectoryInfo(Path.Combine(storeDir, Tenant, id.ToString())).EnumerateFiles().Sum(f => f.Length);
            spanCount += meta.SpanCount;
            postingsBytes += (long)meta.PostingsSize;
            rowGroups += (int)meta.TotalRecords;
        }

        Console.WriteLine(
            $"store: {blocks.Count} blocks, {spanCount:N0} spans, {rowGroups} row groups, data objects {dataBytes:N0} B, postings objects {postingsBytes:N0} B, all block objects {blockBytes:N0} B");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}");
        if (args.Contains("--column-sizes"))
        {
            // Stored (compressed) bytes per column summed over every row group of every block, largest first.
            var sizes = new long[Col.Count];
            foreach (var block in blocks)
            {
                foreach (var rg in await block.GetFooterAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    for (int c = 0; c < Col.Count; c++)
                    {
                        sizes[c] += rg.Columns[c].Length;
                    }
                }
            }

            foreach (int c in Enumerable.Range(0, Col.Count).Where(c => sizes[c] > 0).OrderByDescending(c => sizes[c]))
            {
                Console.WriteLine($"  {Col.Name(c),-24} {sizes[c],14:N0} B {100.0 * sizes[c] / dataBytes,6:F2}%");
            }

            // Postings per indexed key over every row group: posting bytes, values with and without a posting.
            var keys = new SortedDictionary<string, (long Bytes, int Values, int WithPosting, int RowGroups)>(StringComparer.Ordinal);
            long directoryBytes = 0;
            foreach (var block in blocks.Where(b => b.HasPostings))
            {
                var table = await block.GetPostingsTableAsync(null, CancellationToken.None).ConfigureAwait(false);
                for (int rg = 0; rg < table.Regions.Count; rg++)
                {
                    directoryBytes += table.Regions[rg].DirectoryLength;
                    var dir = await block.ReadPostingsDirectoryAsync(rg, null, CancellationToken.None).ConfigureAwait(false);
                    foreach (var level in Postings.Levels)
                    {
                        foreach (var k in dir.Level(level).Keys.Values)
                        {
                            string name = $"{level.ToString().ToLowerInvariant()}.{k.Key} ({k.Kind.ToString().ToLowerInvariant()})";
                            keys.TryGetValue(name, out var e);
                            keys[name] = (e.Bytes + k.Values.Sum(v => (long)v.Stored), e.Values + k.Values.Length, e.WithPosting + k.Values.Count(v => v.HasPosting), e.RowGroups + 1);
                        }
                    }
                }
            }

            Console.WriteLine($"postings: {postingsBytes:N0} B ({100.0 * postingsBytes / dataBytes:F2}% of data), directories {directoryBytes:N0} B; per indexed key (row groups, values with posting / all, posting bytes):");
            foreach (var (name, e) in keys.OrderByDescending(kv => kv.Value.Bytes))
            {
                Console.WriteLine($"  {name,-40} {e.RowGroups,4} rg {e.WithPosting,5}/{e.Values,-5} {e.Bytes,12:N0} B");
            }
        }

        var queries = new (string Name, string Text)[]
        {
            ("needle", "{ span.http.response.status_code = 500 && resource.service.name = \"payment\" }"),
            ("broad", "{ duration > 1s }"),
            ("structural", "{ resource.service.name = \"frontend\" } >> { status = error }"),
            ("aggregate", "{ kind = server } | count() > 5"),
        };
        var options = new SearchOptions { Limit = 1_000_000, SpansPerSpanSet = 3 };
        var columnReads = new List<(string Name, long[] Filter, long[] Fill, long Postings)>();
        Console.WriteLine();
        Console.WriteLine("| query | median ms | runs ms | traces | bytes read | % of data | % of block | requests | rg skipped stats/dict/no-cand/scanned |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|---:|---:|---|");
        foreach (var (name, text) in queries.Where(q => only is null || only.Contains(q.Name)))
        {
            var root = TraceQLParser.ParseAndValidate(text);
            var times = new List<double>();
            SearchResult? last = null;
            MultiBlockSpansetFetcher? lastFetcher = null;
            for (int r = 0; r <= runs; r++)
            {
                var fetcher = new MultiBlockSpansetFetcher(blocks, usePostings);
                var sw = Stopwatch.StartNew();
                last = await TraceQLEngine.SearchAsync(root, fetcher, options, CancellationToken.None).ConfigureAwait(false);
                sw.Stop();
                lastFetcher = fetcher;
                if (r > 0)
                {
                    times.Add(sw.Elapsed.TotalMilliseconds); // run 0 is the warm-up
                }
            }

            times.Sort();
            columnReads.Add((name, lastFetcher!.FilterBytesByColumn, lastFetcher.FillBytesByColumn, lastFetcher.PostingsBytes));
            double median = times[times.Count / 2];
            ulong read = lastFetcher!.InspectedBytes;
            Console.WriteLine(
                $"| {name} `{text.Replace("|", "\\|", StringComparison.Ordinal)}` | {median:F0} | {string.Join(", ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))} | {last!.Traces.Count:N0} | {read:N0} | "
                + $"{100.0 * read / dataBytes:F2}% | {100.0 * read / blockBytes:F2}% | {lastFetcher.Reads:N0} | {lastFetcher.RowGroupsSkippedByStats}/{lastFetcher.RowGroupsSkippedByDictionary}/{lastFetcher.RowGroupsWithoutCandidates}/{lastFetcher.RowGroupsScanned} |");
        }

        if (args.Contains("--column-reads"))
        {
            // Where each query's bytes went (last run): per column, filter pass / fill pass, largest first.
            foreach (var (name, filter, fill, postings) in columnReads)
            {
                Console.WriteLine($"{name}: filter {filter.Sum():N0} B + postings {postings:N0} B, fill {fill.Sum():N0} B");
                foreach (int c in Enumerable.Range(0, Col.Count).Where(c => filter[c] + fill[c] > 0).OrderByDescending(c => filter[c] + fill[c]).Take(12))
                {
                    Console.WriteLine($"  {Col.Name(c),-24} filter {filter[c],12:N0} B  fill {fill[c],12:N0} B");
                }
            }
        }

        Console.WriteLine($"load average after: {LoadAverage()}");
        return 0;
    }

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Trim();
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    private static async Task GenerateAsync(LocalObjectStore store, string manifest, int traces, int spansPerTrace, int tracesPerBlock, BlockBuilderOptions pageOptions)
    {
        var sw = Stopwatch.StartNew();
        int blockCount = (traces + tracesPerBlock - 1) / tracesPerBlock;
        var ids = new Guid[blockCount];

        // Blocks are independent: build two at a time (the machine has 2 cores); each block's generator is seeded by
        // its index so the dataset is the same on every run.
        await Parallel.ForEachAsync(Enumerable.Range(0, blockCount), new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (b, ct) =>
        {
            var opts = new BlockBuilderOptions
            {
                TenantId = Tenant,
                BlockId = Guid.NewGuid(),
                TracesPerPage = pageOptions.TracesPerPage,
                MinPageStoredBytes = pageOptions.MinPageStoredBytes,
                PageSizeBytes = pageOptions.PageSizeBytes,
            };
            var rnd = new Random(1000 + b);
            int first = b * tracesPerBlock;
            int count = Math.Min(tracesPerBlock, traces - first);
            using var builder = Encodings.Default.CreateBlockBuilder(opts);

            // The builder takes traces in ascending id order (high word first, then low): draw random ids, sort them.
            var keys = new (ulong Hi, ulong Lo)[count];
            for (int t = 0; t < count; t++)
            {
                keys[t] = ((ulong)rnd.NextInt64(), (ulong)rnd.NextInt64());
            }

            Array.Sort(keys);
            for (int t = 0; t < count; t++)
            {
                var id = new TraceId(keys[t].Hi, keys[t].Lo);
                builder.AddTrace(id, MakeTrace(rnd, id, first + t, spansPerTrace));
            }

            var meta = await builder.WriteAsync(store, ct).ConfigureAwait(false);
            ids[b] = meta.BlockId;
            Console.WriteLine($"block {b + 1}/{blockCount}: {meta.BlockId}, {meta.SpanCount:N0} spans, {meta.TotalRecords} row groups, {sw.Elapsed.TotalSeconds:F0} s");
        }).ConfigureAwait(false);

        // The manifest is written last so an interrupted generation is redone rather than half-reused.
        File.WriteAllLines(manifest, ids.Select(i => i.ToString()));
        Console.WriteLine($"generated {traces:N0} traces × {spansPerTrace} spans in {blockCount} blocks in {sw.Elapsed.TotalSeconds:F0} s");
    }

    private static Trace MakeTrace(Random rnd, TraceId id, int index, int spansPerTrace)
    {
        var trace = new Trace();
        ulong start = 1_700_000_000_000_000_000UL + ((ulong)index * 2_000_000UL);
        var resources = new Dictionary<string, ScopeSpans>();
        for (int i = 0; i < spansPerTrace; i++)
        {
            string service = i == 0 ? "frontend" : Services[rnd.Next(Services.Length)];
            if (!resources.TryGetValue(service, out var ss))
            {
                var rs = new ResourceSpans();
                rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
                rs.Resource.Attributes.Add(new KeyValue("k8s.pod.name", AnyValue.String(service + "-" + rnd.Next(20))));
                rs.Resource.Attributes.Add(new KeyValue("cloud.region", AnyValue.String(Regions[rnd.Next(Regions.Length)])));
                rs.Resource.Attributes.Add(new KeyValue("service.version", AnyValue.String("1." + rnd.Next(5))));
                ss = new ScopeSpans();
                ss.Scope.Name = "io.opentelemetry." + service;
                rs.ScopeSpans.Add(ss);
                trace.ResourceSpans.Add(rs);
                resources[service] = ss;
            }

            ulong s0 = start + (ulong)rnd.Next(5_000_000);

            // Long tail: ~0.2% of spans take 1–5 s, ~5% 50–500 ms, the rest 0.1–50 ms.
            int tail = rnd.Next(1000);
            ulong dur = tail < 2 ? (ulong)rnd.NextInt64(1_000_000_001, 5_000_000_000)
                : tail < 52 ? (ulong)rnd.Next(50_000_000, 500_000_000)
                : (ulong)rnd.Next(100_000, 50_000_000);
            bool error = rnd.Next(70) == 0;
            var span = new Span
            {
                TraceId = id,
                SpanId = new SpanId(((ulong)index << 8) + (ulong)i + 1),
                ParentSpanId = i == 0 ? default : new SpanId(((ulong)index << 8) + (ulong)rnd.Next(i) + 1),
                Name = i == 0 ? "GET /api/" + rnd.Next(30) : service + ".op" + rnd.Next(8),
                Kind = i == 0 || rnd.Next(3) == 0 ? Rubato.Common.Model.SpanKind.Server
                    : rnd.Next(4) == 0 ? Rubato.Common.Model.SpanKind.Internal : Rubato.Common.Model.SpanKind.Client,
                StartTimeUnixNano = s0,
                EndTimeUnixNano = s0 + dur,
                StatusCode = error ? StatusCode.Error : StatusCode.Unset,
            };
            span.Attributes.Add(new KeyValue("http.request.method", AnyValue.String(Methods[rnd.Next(Methods.Length)])));

            // A few 500s (~0.3% of spans, mostly on error spans), the rest 200/404.
            long status = error && rnd.Next(5) == 0 ? 500 : rnd.Next(1000) < 2 ? 500 : rnd.Next(50) == 0 ? 404 : 200;
            span.Attributes.Add(new KeyValue("http.response.status_code", AnyValue.Int(status)));
            span.Attributes.Add(new KeyValue("url.path", AnyValue.String("/" + service + "/" + rnd.Next(1000))));
            if (rnd.Next(4) == 0)
            {
                span.Attributes.Add(new KeyValue("db.system", AnyValue.String("postgresql")));
            }

            ss.Spans.Add(span);
        }

        return trace;
    }
}
