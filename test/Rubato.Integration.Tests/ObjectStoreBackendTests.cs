using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Rubato.Integration.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>
/// End to end on each block backend: push over OTLP HTTP, read live, <c>/flush</c>, restart with an empty WAL, and
/// read every trace back from the object store by id and by search.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ObjectStoreBackendTests(ITestOutputHelper output)
{
    private const int Traces = 200;
    private const string Bucket = "rubato-it";

    [Theory]
    [InlineData("local")]
    [InlineData("s3")]
    [InlineData("azure")]
    public async Task FlushAndRestartWithEmptyWal_EveryTraceReadBackFromObjectStore(string backend)
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {backend}: {what}");

        await using var store = backend switch
        {
            "s3" => await ObjectStoreServers.StartS3rverAsync(Bucket),
            "azure" => await ObjectStoreServers.StartAzuriteAsync(Bucket),
            _ => null,
        };
        string storageYaml = backend switch
        {
            "s3" => $"    s3: {{ bucket: {Bucket}, endpoint: \"{store!.Address}\", access_key: {ObjectStoreServers.S3Key}, secret_key: {ObjectStoreServers.S3Key}, insecure: true, forcepathstyle: true, list_recursive: true }}\n",
            "azure" => $"    azure: {{ storage_account_name: {ObjectStoreServers.AzureAccount}, storage_account_key: \"{ObjectStoreServers.AzureKey}\", container_name: {Bucket}, endpoint_suffix: \"{store!.Address}\" }}\n",
            _ => "",
        };
        var config = SearchDataset.SearchConfig with { Backend = backend, TraceStorageYaml = SearchDataset.SearchConfig.TraceStorageYaml + storageYaml };
        await using var server = await RubatoProcess.StartAsync(config, output);
        Phase("object store and rubato ready");

        var data = SearchDataset.Generate(Traces, new Random(backend.GetHashCode(StringComparison.Ordinal)));
        await data.PushAsync(server);
        Phase($"{Traces} traces pushed");
        await data.AssertAllByIdAsync(server, "live");
        Phase("all read back live");

        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        await server.KillAsync();
        Directory.Delete(server.WalDir, recursive: true);
        await server.RestartAsync();
        Phase("flushed, killed, WAL deleted, restarted");
        // The blocks must be where the backend says: in the local folder only for local, never there for s3/azure.
        string localBlocks = Path.Combine(server.Dir, "blocks");
        int localMetas = Directory.Exists(localBlocks) ? Directory.EnumerateFiles(localBlocks, "meta.json", SearchOption.AllDirectories).Count() : 0;
        Assert.True(backend == "local" ? localMetas > 0 : localMetas == 0, $"{localMetas} meta.json files under {localBlocks} for backend {backend}");
        if (store is not null)
        {
            Assert.NotEmpty(Directory.EnumerateFiles(store.DataDir, "*", SearchOption.AllDirectories));
        }

        await data.AssertAllByIdAsync(server, $"from the {backend} object store after a restart with an empty WAL");
        Phase("all read back by id from blocks");

        // Searches over the blocks in the object store: a dictionary-pruned resource column and a scanned span column.
        var searches = new (string Query, Func<GeneratedTrace, bool> Expected)[]
        {
            ("{ resource.service.name = \"svc-a\" }", t => t.Service == "svc-a"),
            ("{ status = error && span.http.status_code >= 500 }", t => t.RootStatus == 2 && t.HttpStatus >= 500),
        };
        foreach (var (query, expected) in searches)
        {
            var want = data.Matching(expected);
            Assert.NotEmpty(want);
            var got = await data.WaitForSearchAsync(server, query, want, withRange: true);
            Assert.Equal(want, got);
            Phase($"search {query} over blocks returned its {want.Count} traces");
        }
    }
}

/// <summary>
/// One TraceQL query set gives identical trace-id sets live, from blocks, after WAL replay and after a restart over
/// flushed blocks.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SearchConsistencyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Search_LiveBlocksWalReplayAndRestart_ReturnIdenticalTraceSets()
    {
        var clock = Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {what}");
        await using var server = await RubatoProcess.StartAsync(SearchDataset.SearchConfig, output);
        var data = SearchDataset.Generate(240, new Random(4242));
        await data.PushAsync(server);
        Phase("pushed");

        var queries = new (string Query, Func<GeneratedTrace, bool> Expected)[]
        {
            ("{ resource.service.name = \"svc-b\" }", t => t.Service == "svc-b"),
            ("{ status = error }", t => t.RootStatus == 2),
            ("{ kind = client }", t => t.Children > 0),
            ("{ duration > 600ms }", t => t.RootDurationMs > 600),
            ("{ resource.service.name = \"svc-c\" && status = error }", t => t.Service == "svc-c" && t.RootStatus == 2),
            ("{ span.http.status_code >= 500 }", t => t.HttpStatus >= 500),
            ("{ name = \"GET /api/2\" }", t => t.RootName == "GET /api/2"),
            ("{ kind = server && duration < 200ms }", t => t.RootDurationMs < 200),
        };
        var expected = queries.Select(q => data.Matching(q.Expected)).ToArray();
        foreach (var (set, i) in expected.Select((s, i) => (s, i)))
        {
            Assert.True(set.Count > 0 && set.Count < data.Traces.Count, $"query {queries[i].Query} selects {set.Count} of {data.Traces.Count}: not discriminating");
        }

        async Task CheckAllAsync(string when, bool withRange)
        {
            for (int i = 0; i < queries.Length; i++)
            {
                var got = await data.WaitForSearchAsync(server, queries[i].Query, expected[i], withRange);
                Assert.True(expected[i].SetEquals(got), $"{when}: {queries[i].Query} returned {got.Count} traces, want {expected[i].Count}; missing {string.Join(',', expected[i].Except(got).Take(5))}, extra {string.Join(',', got.Except(expected[i]).Take(5))}");
            }

            // Tag names and values come from the same data (blocks through their dictionaries, memory span by span).
            var values = await data.WaitForTagAsync(server, "/api/v2/search/tag/resource.service.name/values", "svc-c", withRange);
            Assert.Equal("svc-a,svc-b,svc-c", values);
            var names = await data.WaitForTagAsync(server, "/api/v2/search/tags?scope=span", "http.status_code", withRange);
            Assert.Equal("http.status_code", names);
            Phase($"{queries.Length} queries and tag lookups consistent {when}");
        }

        await CheckAllAsync("live (no start/end)", withRange: false);

        // WAL replay: kill -9 before any flush, so the restart rebuilds the data from the WAL alone. The ingester
        // writes replayed generations to blocks before it reports ready and keeps them as complete blocks for
        // complete_block_timeout, so a search without a range (recent data only) still finds every trace, and one
        // with start/end finds them in the blocks.
        await server.KillAsync();
        await server.RestartAsync();
        await CheckAllAsync("after kill -9 and WAL replay (no start/end)", withRange: false);
        await CheckAllAsync("after kill -9 and WAL replay", withRange: true);

        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        await CheckAllAsync("after /flush (blocks, start/end)", withRange: true);
        await CheckAllAsync("after /flush (no start/end)", withRange: false);

        // RestartAsync kills (-9): the WAL is empty now, and the ingester's persisted list of complete blocks brings
        // the flushed blocks back into recent data.
        await server.RestartAsync();
        await CheckAllAsync("after kill -9 over flushed blocks", withRange: true);
        await CheckAllAsync("after kill -9 over flushed blocks (no start/end)", withRange: false);
    }
}

/// <summary>One generated trace: a SERVER root span and 0..2 CLIENT children, all in one resource.</summary>
public sealed record GeneratedTrace(string TraceIdHex, string Service, string RootName, int RootStatus, int HttpStatus, int RootDurationMs, int Children)
{
    public int SpanCount => 1 + Children;
}

/// <summary>A known dataset with several services, statuses, kinds and durations, pushed as OTLP/JSON.</summary>
public sealed class SearchDataset
{
    private static readonly string[] Services = ["svc-a", "svc-b", "svc-c"];

    private SearchDataset(List<GeneratedTrace> traces, ulong baseNanos)
    {
        Traces = traces;
        BaseNanos = baseNanos;
    }

    /// <summary>
    /// Blocks become searchable quickly: the block list is polled every second and blocks are searched for data older
    /// than two seconds (the validated minimum, twice the poll).
    /// </summary>
    public static RubatoConfig SearchConfig { get; } = new()
    {
        TraceStorageYaml = "    blocklist_poll: 1s\n",
        ExtraYaml = """
            query_frontend:
              search:
                query_backend_after: 2s

            """,
    };

    public List<GeneratedTrace> Traces { get; }

    /// <summary>Earliest span start (unix nanoseconds).</summary>
    public ulong BaseNanos { get; }

    public static SearchDataset Generate(int count, Random rng)
    {
        var traces = new List<GeneratedTrace>(count);
        for (int i = 0; i < count; i++)
        {
            var id = new byte[16];
            rng.NextBytes(id);
            id[0] |= 0x10; // no leading zero nibble: search answers trim leading zeros
            traces.Add(new GeneratedTrace(
                Convert.ToHexStringLower(id),
                Services[i % Services.Length],
                $"GET /api/{i % 5}",
                (i / 3) % 3, // unset, ok, error, independent of the service
                i % 7 == 0 ? 503 : 200,
                1 + (i * 37 % 1000),
                i % 3));
        }

        // Starts lie in the past minute, so every span ends before now.
        ulong now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;
        return new SearchDataset(traces, now - 60_000_000_000UL);
    }

    public HashSet<string> Matching(Func<GeneratedTrace, bool> predicate) =>
        Traces.Where(predicate).Select(t => t.TraceIdHex).ToHashSet(StringComparer.Ordinal);

    /// <summary>POSTs the traces as OTLP/JSON in batches of 50 to <c>/v1/traces</c>.</summary>
    public async Task PushAsync(RubatoProcess server)
    {
        foreach (var chunk in Traces.Select((t, i) => (t, i)).Chunk(50))
        {
            byte[] body = Encoding.UTF8.GetBytes(Json(chunk));
            var (status, text) = await server.PostOtlpHttpAsync(body, "application/json");
            Assert.True(status == 200, $"push answered {status}: {text}");
        }
    }

    /// <summary>Every trace answers by id with all its spans (each trace is waited for, one deadline overall).</summary>
    public async Task AssertAllByIdAsync(RubatoProcess server, string when)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var problems = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(Traces, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (t, _) =>
        {
            try
            {
                var spans = await server.WaitForTraceAsync(t.TraceIdHex, t.SpanCount, timeout: TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)));
                if (spans.Count != t.SpanCount)
                {
                    problems.Add($"{t.TraceIdHex}: {spans.Count} spans, want {t.SpanCount}");
                }
            }
            catch (TimeoutException e)
            {
                problems.Add(e.Message);
            }
        });
        Assert.True(problems.IsEmpty, $"{when}: {problems.Count} traces wrong, e.g. {string.Join("; ", problems.Take(3))}");
    }

    /// <summary>
    /// Runs <c>/api/search</c> until it returns exactly <paramref name="expected"/> (blocks and ingest become visible
    /// asynchronously) or 30 s pass; returns the last answer's trace ids either way for the caller to assert.
    /// </summary>
    public async Task<HashSet<string>> WaitForSearchAsync(RubatoProcess server, string query, HashSet<string> expected, bool withRange)
    {
        string url = "/api/search?limit=1000&q=" + Uri.EscapeDataString(query);
        if (withRange)
        {
            long start = (long)(BaseNanos / 1_000_000_000UL) - 60;
            long end = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60;
            url += string.Create(CultureInfo.InvariantCulture, $"&start={start}&end={end}");
        }

        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var response = await server.Http.GetAsync(url);
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url} answered {(int)response.StatusCode}: {body}");
            var got = ParseTraceIds(body);
            if (got.SetEquals(expected) || clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                return got;
            }

            await Task.Delay(200);
        }
    }

    /// <summary>
    /// GETs a tag names (<c>scopes</c>) or values (<c>tagValues</c>) URL until the answer contains <paramref name="until"/>
    /// or 30 s pass; returns the sorted names/values joined with commas.
    /// </summary>
    public async Task<string> WaitForTagAsync(RubatoProcess server, string url, string until, bool withRange)
    {
        if (withRange)
        {
            long start = (long)(BaseNanos / 1_000_000_000UL) - 60;
            long end = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60;
            url += string.Create(CultureInfo.InvariantCulture, $"{(url.Contains('?', StringComparison.Ordinal) ? '&' : '?')}start={start}&end={end}");
        }

        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var response = await server.Http.GetAsync(url);
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url} answered {(int)response.StatusCode}: {body}");
            using var doc = JsonDocument.Parse(body);
            var items = new List<string>();
            if (doc.RootElement.TryGetProperty("tagValues", out var tv))
            {
                items.AddRange(tv.EnumerateArray().Select(v => v.GetProperty("value").GetString()!));
            }
            else
            {
                items.AddRange(doc.RootElement.GetProperty("scopes").EnumerateArray().SelectMany(sc => sc.GetProperty("tags").EnumerateArray().Select(t => t.GetString()!)));
            }

            if (items.Contains(until) || clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                return string.Join(',', items.Order(StringComparer.Ordinal));
            }

            await Task.Delay(200);
        }
    }

    private static HashSet<string> ParseTraceIds(string body)
    {
        using var doc = JsonDocument.Parse(body);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        if (doc.RootElement.TryGetProperty("traces", out var traces))
        {
            foreach (var t in traces.EnumerateArray())
            {
                ids.Add(t.GetProperty("traceID").GetString()!.PadLeft(32, '0'));
            }
        }

        return ids;
    }

    private string Json(IEnumerable<(GeneratedTrace T, int Index)> chunk)
    {
        var sb = new StringBuilder("{\"resourceSpans\":[");
        bool firstResource = true;
        foreach (var (t, index) in chunk)
        {
            if (!firstResource)
            {
                sb.Append(',');
            }

            firstResource = false;
            ulong start = BaseNanos + (ulong)index * 100_000_000UL;
            ulong end = start + (ulong)t.RootDurationMs * 1_000_000UL;
            string rootId = SpanId(index, 0);
            sb.Append(CultureInfo.InvariantCulture,
                $"{{\"resource\":{{\"attributes\":[{{\"key\":\"service.name\",\"value\":{{\"stringValue\":\"{t.Service}\"}}}}]}},\"scopeSpans\":[{{\"scope\":{{\"name\":\"it\"}},\"spans\":[");
            sb.Append(CultureInfo.InvariantCulture,
                $"{{\"traceId\":\"{t.TraceIdHex}\",\"spanId\":\"{rootId}\",\"name\":\"{t.RootName}\",\"kind\":2,\"startTimeUnixNano\":\"{start}\",\"endTimeUnixNano\":\"{end}\",");
            sb.Append(CultureInfo.InvariantCulture,
                $"\"attributes\":[{{\"key\":\"http.status_code\",\"value\":{{\"intValue\":\"{t.HttpStatus}\"}}}}],\"status\":{{\"code\":{t.RootStatus}}}}}");
            for (int c = 1; c <= t.Children; c++)
            {
                // Children sit inside the root, always OK, so they never change the root-based expectations.
                ulong childStart = start + (ulong)c;
                ulong childEnd = childStart + ((end - start) / 4);
                sb.Append(CultureInfo.InvariantCulture,
                    $",{{\"traceId\":\"{t.TraceIdHex}\",\"spanId\":\"{SpanId(index, c)}\",\"parentSpanId\":\"{rootId}\",\"name\":\"db.query\",\"kind\":3,\"startTimeUnixNano\":\"{childStart}\",\"endTimeUnixNano\":\"{childEnd}\",\"status\":{{\"code\":1}}}}");
            }

            sb.Append("]}]}");
        }

        sb.Append("]}");
        return sb.ToString();
    }

    private static string SpanId(int index, int n) => (0x1000_0000_0000_0000UL + ((ulong)index << 8) + (ulong)n).ToString("x16", CultureInfo.InvariantCulture);
}
