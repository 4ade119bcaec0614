using System.Globalization;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Metrics;
using Rubato.TraceQL.Parsing;
using Stopwatch = System.Diagnostics.Stopwatch;

namespace Rubato.SearchBench;

/// <summary>
/// TraceQL metrics over the search bench's block store (≥5M spans): each query runs as the query-frontend runs it —
/// one job per block, two at a time (the machine's cores), partial results merged exactly, finalised once — over a
/// range covering the whole dataset at the default step. Usage:
/// <c>rubato-searchbench metrics [--store DIR] [--runs N] [--concurrency N]</c> (generate the store first with the
/// search bench's defaults, which write the same store).
/// </summary>
internal static class MetricsBench
{
    private const string Tenant = "bench";

    public static async Task<int> RunAsync(string[] args)
    {
        string storeDir = Path.Combine(Path.GetTempPath(), "rubato-searchbench-store");
        int runs = 3;
        int concurrency = 2;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--store": storeDir = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--concurrency": concurrency = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'");
                    return 2;
            }
        }

        string manifest = Path.Combine(storeDir, "searchbench-blocks.txt");
        if (!File.Exists(manifest))
        {
            Console.Error.WriteLine($"no store at {storeDir}: run 'rubato-searchbench --store {storeDir}' first to generate it");
            return 2;
        }

        var store = new LocalObjectStore(storeDir);
        var blocks = new List<BackendBlockV1>();
        long spans = 0;
        long dataBytes = 0;
        DateTimeOffset min = DateTimeOffset.MaxValue, max = DateTimeOffset.MinValue;
        foreach (string line in File.ReadAllLines(manifest).Where(l => l.Length > 0))
        {
            var id = Guid.Parse(line);
            byte[] json = await store.GetAsync(ObjectKeys.BlockObject(Tenant, id, ObjectKeys.MetaName), CancellationToken.None).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"block {id} has no meta.json");
            var meta = BlockMeta.FromJson(json);
            blocks.Add((BackendBlockV1)Encodings.FromVersion(meta.Version).OpenBlock(meta, store));
            spans += meta.SpanCount;
            dataBytes += new FileInfo(Path.Combine(storeDir, Tenant, id.ToString(), FormatV1.DataName)).Length;
            min = meta.StartTime < min ? meta.StartTime : min;
            max = meta.EndTime > max ? meta.EndTime : max;
        }

        // The whole dataset, with a minute of margin either side, at Tempo's default step for that range.
        long start = (min.ToUnixTimeSeconds() - 60) * 1_000_000_000;
        long end = (max.ToUnixTimeSeconds() + 61) * 1_000_000_000;
        long step = MetricsRange.DefaultStep(start, end);
        var range = MetricsRange.Align(start, end, step);
        Console.WriteLine($"store: {blocks.Count} blocks, {spans:N0} spans, data objects {dataBytes:N0} B; range {(end - start) / 1e9:F0} s, step {step / 1e9:F0} s, {range.Intervals} intervals");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {concurrency} block jobs at a time");
        Console.WriteLine();
        Console.WriteLine("| query | median ms | runs ms | spans counted/s | series | spans inspected | bytes read | GC pause ms/run |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|---:|---:|");

        string[] queries =
        [
            "{ } | rate() by (resource.service.name)",
            "{ kind = server } | quantile_over_time(duration, .5, .99) by (resource.service.name)",
        ];
        var fetchOnly = new List<(string Query, double Ms, string Columns)>();
        foreach (string text in queries)
        {
            var compiled = CompiledMetricsQuery.Compile(TraceQLParser.ParseAndValidate(text), range);
            var times = new List<double>();
            var pause = TimeSpan.Zero;
            MetricsResult? last = null;
            for (int r = 0; r <= runs; r++)
            {
                var pauseBefore = GC.GetTotalPauseDuration();
                var sw = Stopwatch.StartNew();
                var merged = compiled.NewShard();
                await Parallel.ForEachAsync(blocks, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (block, ct) =>
                {
                    var shard = await compiled.RunShardAsync(new BlockSpansetFetcher(block), ct).ConfigureAwait(false);
                    lock (merged)
                    {
                        merged.Merge(shard);
                    }
                }).ConfigureAwait(false);
                last = compiled.Finalize(merged);
                sw.Stop();
                if (r > 0)
                {
                    times.Add(sw.Elapsed.TotalMilliseconds); // run 0 warms the page cache and the JIT
                    pause += GC.GetTotalPauseDuration() - pauseBefore;
                }
            }

            times.Sort();
            double median = times[times.Count / 2];

            // The same jobs reading and building the spans but counting nothing: the storage share of the latency.
            var fetchTimes = new List<double>();
            var columnBytes = new long[Col.Count];
            for (int r = 0; r < runs; r++)
            {
                var sw = Stopwatch.StartNew();
                await Parallel.ForEachAsync(blocks, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (block, ct) =>
                {
                    var fetcher = new BlockSpansetFetcher(block);
                    await foreach (var ss in fetcher.FetchAsync(compiled.RequestOf(0), ct).ConfigureAwait(false))
                    {
                        GC.KeepAlive(ss);
                    }

                    if (r == 0)
                    {
                        lock (columnBytes)
                        {
                            for (int c = 0; c < Col.Count; c++)
                            {
                                columnBytes[c] += fetcher.FilterBytesByColumn[c] + fetcher.FillBytesByColumn[c];
                            }
                        }
                    }
                }).ConfigureAwait(false);
                fetchTimes.Add(sw.Elapsed.TotalMilliseconds);
            }

            fetchTimes.Sort();
            fetchOnly.Add((text, fetchTimes[fetchTimes.Count / 2], string.Join(", ", Enumerable.Range(0, Col.Count)
                .Where(c => columnBytes[c] > 0).OrderByDescending(c => columnBytes[c]).Select(c => $"{Col.Name(c)} {columnBytes[c]:N0}"))));
            Console.WriteLine(
                $"| `{text.Replace("|", "\\|", StringComparison.Ordinal)}` | {median:F0} | {string.Join(", ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))} | "
                + $"{last!.Stats.InspectedSpans / (median / 1000):N0} | {last.Series.Count} | {last.Stats.InspectedSpans:N0} | {last.Stats.InspectedBytes:N0} | {pause.TotalMilliseconds / runs:F0} |");
        }

        Console.WriteLine();
        foreach (var (q, ms, columns) in fetchOnly)
        {
            Console.WriteLine($"fetch only (same jobs, nothing counted) for `{q}`: median {ms:F0} ms; bytes by column: {columns}");
        }

        Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }
}
