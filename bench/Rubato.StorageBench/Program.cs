using System.Diagnostics;
using System.Globalization;
using Rubato.Cache;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.QueryFrontend;
using Rubato.Storage.Backend;
using Rubato.Storage.Backend.S3;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TestSupport;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;

namespace Rubato.StorageBench;

/// <summary>
/// Trace-by-ID and TraceQL search latency over blocks in a real s3rver, with the server's read path
/// (<see cref="BackendTraceReader"/> with <see cref="BlockCaches"/>; the query-frontend's <see cref="SearchFrontend"/>
/// with one job per block, each opening a fresh <see cref="BackendBlockV1"/>, as the server wires it), counting object-store requests and bytes per query through
/// <see cref="CountingObjectStore"/>. Usage:
/// <c>rubato-storagebench [--traces N] [--spans-per-trace N] [--traces-per-block N] [--lookups N] [--runs N] [--cache memory|memcached]</c>.
/// </summary>
/// <remarks>
/// Cache states: <b>cold</b> = a new reader (a querier just started) with an empty shared cache, so every block's
/// bloom shard, index or footer comes from the object store; <b>shared-warm</b> = a new reader over a filled shared
/// cache (<c>--cache</c>: in-process LRU or a real memcached), the state after a querier restart; <b>warm</b> = a
/// long-lived reader that has already opened the blocks (bloom shards and index in process memory).
/// </remarks>
public static class Program
{
    private const string Bucket = "rubato-bench";

    public static async Task<int> Main(string[] args)
    {
        int traces = 40_000;
        int spansPerTrace = 10;
        int tracesPerBlock = 10_000;
        int lookups = 200;
        int runs = 5;
        string cacheKind = "memory";
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--traces": traces = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--spans-per-trace": spansPerTrace = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--traces-per-block": tracesPerBlock = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--lookups": lookups = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--runs": runs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--cache": cacheKind = Next(); break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'");
                    return 2;
            }
        }

        if (traces < 1 || spansPerTrace < 1 || tracesPerBlock < 1 || lookups < 1 || runs < 1 || cacheKind is not ("memory" or "memcached"))
        {
            Console.Error.WriteLine("--traces, --spans-per-trace, --traces-per-block, --lookups and --runs must be ≥ 1; --cache is memory or memcached");
            return 2;
        }

        await using var s3rver = await ObjectStoreServers.StartS3rverAsync(Bucket).ConfigureAwait(false);
        await using var memcached = cacheKind == "memcached" ? await CacheServers.StartMemcachedAsync("-m", "512").ConfigureAwait(false) : null;
        var metrics = new MetricsRegistry();
        using var s3 = new S3ObjectStore(ObjectStoreServers.S3Config(s3rver, Bucket), new ObjectStoreOptions { Metrics = metrics });
        var store = new CountingObjectStore(s3);

        var sw = Stopwatch.StartNew();
        var (blocks, ids) = await Dataset.WriteAsync(s3, traces, spansPerTrace, tracesPerBlock, CancellationToken.None).ConfigureAwait(false);
        long spans = blocks.Sum(b => (long)b.SpanCount);
        long bytes = blocks.Sum(b => (long)b.Size);
        Console.WriteLine($"s3rver on {s3rver.Address}; wrote {blocks.Count} blocks, {traces:N0} traces, {spans:N0} spans, {bytes:N0} B in {sw.Elapsed.TotalSeconds:F0} s");
        Console.WriteLine($"row groups per block: {string.Join(", ", blocks.Select(b => b.TotalRecords))}; bloom shards per block: {blocks[0].BloomShards}");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}; shared cache: {cacheKind}");
        Console.WriteLine();

        var rng = new Random(7);
        var hits = Enumerable.Range(0, lookups).Select(_ => ids[rng.Next(ids.Count)]).ToArray();
        var misses = Enumerable.Range(0, lookups).Select(_ => new TraceId((ulong)rng.NextInt64() | 1UL << 62, (ulong)rng.NextInt64())).ToArray();

        BlockCaches NewCaches(ICache shared) => new(shared, shared, shared, PageIndex: shared, Page: shared);
        ICache NewSharedCache(string name) => memcached is null
            ? new MemoryCache(name, 1L << 30, TimeSpan.Zero, metrics)
            : new MemcachedCache(name, new MemcachedConfig { Addresses = memcached.Address, Timeout = TimeSpan.FromSeconds(1) }, metrics);

        // Listing the blocks is not part of a query (queriers poll it in the background): measured once, apart.
        {
            var before = store.Snapshot();
            var lister = new BackendTraceReader(store);
            var t = Stopwatch.StartNew();
            await lister.RefreshAsync().ConfigureAwait(false);
            var d = store.Snapshot() - before;
            Console.WriteLine($"block list refresh (listing, no tenant index): {t.Elapsed.TotalMilliseconds:F0} ms, {d.Lists} LIST, {d.Gets} GET, {d.BytesRead:N0} B");
            Console.WriteLine();
        }

        Console.WriteLine($"### Trace by ID ({lookups} lookups each; requests and bytes are means per lookup)");
        Console.WriteLine();
        Console.WriteLine("| lookup | caches | p50 ms | p99 ms | GET | range GET | LIST | HEAD | bytes read |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        await using (var warmShared = NewSharedCache("shared-id"))
        {
            foreach (var (kind, set) in new[] { ("hit", hits), ("miss", misses) })
            {
                // cold: a new reader and an empty cache per lookup.
                var cold = new Samples();
                foreach (var id in set)
                {
                    await using var empty = new MemoryCache("cold", 1L << 30, TimeSpan.Zero, new MetricsRegistry());
                    var reader = new BackendTraceReader(store, caches: NewCaches(empty));
                    await reader.RefreshAsync().ConfigureAwait(false);
                    await cold.MeasureAsync(store, () => Lookup(reader, id, kind)).ConfigureAwait(false);
                }

                cold.Print($"{kind}", "cold");

                // shared-warm: a new reader per lookup over a shared cache that a first pass filled.
                foreach (var id in set)
                {
                    var filler = new BackendTraceReader(store, caches: NewCaches(warmShared));
                    await Lookup(filler, id, kind).ConfigureAwait(false);
                }

                var sharedWarm = new Samples();
                foreach (var id in set)
                {
                    var reader = new BackendTraceReader(store, caches: NewCaches(warmShared));
                    await reader.RefreshAsync().ConfigureAwait(false);
                    await sharedWarm.MeasureAsync(store, () => Lookup(reader, id, kind)).ConfigureAwait(false);
                }

                sharedWarm.Print($"{kind}", $"shared-warm ({cacheKind})");

                // warm: one long-lived reader that has opened every block already.
                var longLived = new BackendTraceReader(store, caches: NewCaches(warmShared));
                foreach (var id in set)
                {
                    await Lookup(longLived, id, kind).ConfigureAwait(false);
                }

                var warm = new Samples();
                foreach (var id in set)
                {
                    await warm.MeasureAsync(store, () => Lookup(longLived, id, kind)).ConfigureAwait(false);
                }

                warm.Print($"{kind}", "warm (blocks open)");
            }
        }

        var queries = new[]
        {
            "{ resource.service.name = \"payments\" && status = error }",
            "{ span.http.response.status_code = 404 }",
            "{ duration > 2s }",
            "{ span.db.system = \"postgresql\" && resource.cloud.availability_zone = \"zone-b\" } | count() > 2",
        };
        Console.WriteLine();
        Console.WriteLine($"### Search ({runs} runs each; the query-frontend with one job per block, a fresh block reader per job)");
        Console.WriteLine();
        Console.WriteLine("| query | limit | caches | p50 ms | max ms | traces | GET | range GET | LIST | bytes read |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
        // Searched range: the whole dataset (it lies 3 h back, older than query_backend_after, so blocks are searched).
        long endSeconds = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        long startSeconds = endSeconds - (4 * 3600);
        foreach (string text in queries)
        {
            // Tempo's default limit (what Grafana sends), then every match: with a limit, concurrent jobs stop when
            // enough traces are found, so what they have read by then varies from run to run; a full scan's reads do not.
            foreach (int limit in new[] { SearchOptions.DefaultLimit, 1_000_000 })
            {
                var query = new SearchQuery
                {
                    Query = text,
                    Root = TraceQLParser.ParseAndValidate(text),
                    Limit = limit,
                    SpansPerSpanSet = SearchOptions.DefaultSpansPerSpanSet,
                    StartUnixSeconds = startSeconds,
                    EndUnixSeconds = endSeconds,
                };
                int found = 0;
                async Task Search(BlockCaches caches)
                {
                    var result = await Frontend(blocks, store, caches).SearchAsync([Dataset.Tenant], query, CancellationToken.None).ConfigureAwait(false);
                    found = result.Traces.Count;
                }

                var cold = new Samples();
                for (int r = 0; r < runs; r++)
                {
                    await using var empty = new MemoryCache("cold", 1L << 30, TimeSpan.Zero, new MetricsRegistry());
                    await cold.MeasureAsync(store, () => Search(NewCaches(empty))).ConfigureAwait(false);
                }

                string name = $"`{text.Replace("|", "\\|", StringComparison.Ordinal)}`";
                string limitText = limit == SearchOptions.DefaultLimit ? limit.ToString(CultureInfo.InvariantCulture) : "all";
                cold.Print(name, limitText, "cold", found);
                await using var shared = NewSharedCache("shared-search");
                await Search(NewCaches(shared)).ConfigureAwait(false);
                var warm = new Samples();
                for (int r = 0; r < runs; r++)
                {
                    await warm.MeasureAsync(store, () => Search(NewCaches(shared))).ConfigureAwait(false);
                }

                warm.Print(name, limitText, $"warm ({cacheKind})", found);
            }
        }

        Console.WriteLine();
        Console.WriteLine($"S3 HTTP requests sent in total (rubato_backend_requests_total): {HttpRequests(metrics):N0}; load average after: {LoadAverage()}");
        return 0;
    }

    /// <summary>
    /// The query-frontend's search over blocks as the server wires it (RubatoApp.InitQueryFrontend): one job per block,
    /// each opening a fresh <see cref="BackendBlockV1"/> over the shared caches, run concurrently with Tempo's defaults
    /// and stopped once <c>limit</c> traces are found.
    /// </summary>
    private static SearchFrontend Frontend(IReadOnlyList<BlockMeta> blocks, IObjectStore store, BlockCaches caches) =>
        new(new QueryFrontendConfig(), [new DelegateSearchSource("blocks", isRecent: false, (tenant, range, ct) =>
            ValueTask.FromResult<IReadOnlyList<SearchJob>>([.. blocks
                .Where(m => m.TenantId == tenant)
                .Select(m => new SearchJob(
                    $"block {m.BlockId}",
                    _ => ValueTask.FromResult<ISpansetFetcher>(new BlockSpansetFetcher(new BackendBlockV1(m, store, caches))),
                    isBlock: true,
                    bytes: m.Size))]))]);

    /// <summary>One lookup; a hit must return the trace and a miss nothing, or the figures would measure a bug.</summary>
    private static async Task Lookup(BackendTraceReader reader, TraceId id, string kind)
    {
        var trace = await reader.FindTraceByIdAsync(Dataset.Tenant, id, TimeRange.All, CancellationToken.None).ConfigureAwait(false);
        if ((trace is null) == (kind == "hit"))
        {
            throw new InvalidOperationException($"trace {id} was expected to be a {kind} but was {(trace is null ? "not found" : "found")}");
        }
    }

    private static double HttpRequests(MetricsRegistry metrics) =>
        metrics.Render().Split('\n')
            .Where(l => l.StartsWith("rubato_backend_requests_total{", StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

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

    /// <summary>Latencies and per-query request counts of one series.</summary>
    private sealed class Samples
    {
        private readonly List<double> _ms = [];
        private StoreCounts _total;

        public async Task MeasureAsync(CountingObjectStore store, Func<Task> query)
        {
            var before = store.Snapshot();
            var sw = Stopwatch.StartNew();
            await query().ConfigureAwait(false);
            _ms.Add(sw.Elapsed.TotalMilliseconds);
            var d = store.Snapshot() - before;
            _total = new StoreCounts(
                _total.Gets + d.Gets, _total.RangeGets + d.RangeGets, _total.Lists + d.Lists, _total.Heads + d.Heads, 0, 0, _total.BytesRead + d.BytesRead);
        }

        public void Print(string what, string limit, string caches, int traces) => Print($"{what} | {limit}", caches, (int?)traces);

        public void Print(string what, string caches, int? traces = null)
        {
            _ms.Sort();
            double n = _ms.Count;
            string p50 = Percentile(0.50).ToString("F1", CultureInfo.InvariantCulture);
            string tail = (traces is null ? Percentile(0.99) : _ms[^1]).ToString("F1", CultureInfo.InvariantCulture);
            string counts = $"{_total.Gets / n:0.##} | {_total.RangeGets / n:0.##} | {_total.Lists / n:0.##}";
            Console.WriteLine(traces is null
                ? $"| {what} | {caches} | {p50} | {tail} | {counts} | {_total.Heads / n:0.##} | {_total.BytesRead / n:N0} |"
                : $"| {what} | {caches} | {p50} | {tail} | {traces} | {counts} | {_total.BytesRead / n:N0} |");
        }

        private double Percentile(double p) => _ms[Math.Clamp((int)Math.Ceiling(p * _ms.Count) - 1, 0, _ms.Count - 1)];
    }
}
