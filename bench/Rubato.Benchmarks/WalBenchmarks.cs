using BenchmarkDotNet.Attributes;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Wal;

namespace Rubato.Bench;

/// <summary>
/// WAL append throughput: one append = 100 trace segments of 400 bytes (≈41 KB of records), acknowledged per
/// <see cref="SyncPolicy"/>. <c>Concurrent8</c> issues 8 appends at once to show group commit (one write/fsync for many).
/// Bytes/s = 41 KB × appends / time.
/// </summary>
[MemoryDiagnoser]
public class WalBenchmarks
{
    private const int Segments = 100;
    private const int PayloadBytes = 400;
    private readonly TraceSegment[] _segments = new TraceSegment[Segments];
    private string _dir = string.Empty;
    private WriteAheadLog? _wal;
    private int _appends;

    [Params(SyncPolicy.Write, SyncPolicy.Fsync)]
    public SyncPolicy Policy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(7);
        for (int i = 0; i < Segments; i++)
        {
            var payload = new byte[PayloadBytes];
            rnd.NextBytes(payload);
            _segments[i] = new TraceSegment(new TraceId((ulong)rnd.NextInt64(), (ulong)rnd.NextInt64()), payload, 4, 1_700_000_000_000_000_000UL, 1_700_000_001_000_000_000UL);
        }

        _dir = Path.Combine(Path.GetTempPath(), "rubato-walbench-" + Guid.NewGuid().ToString("N"));
        _wal = WriteAheadLog.OpenAsync(new WalOptions { Path = _dir, SyncPolicy = Policy }, default).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _wal!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public async Task<long> Append()
    {
        long g = await _wal!.AppendAsync("bench", _segments, default);
        Trim();
        return g;
    }

    [Benchmark(OperationsPerInvoke = 8)]
    public async Task<long> AppendConcurrent8()
    {
        var tasks = new Task<long>[8];
        for (int i = 0; i < tasks.Length; i++)
        {
            tasks[i] = _wal!.AppendAsync("bench", _segments, default).AsTask();
        }

        long[] gens = await Task.WhenAll(tasks);
        _appends += 7;
        Trim();
        return gens[0];
    }

    /// <summary>Keeps disk use bounded: every ~40 MB, rotate and delete the closed generation.</summary>
    private void Trim()
    {
        if (++_appends >= 1000)
        {
            _appends = 0;
            _wal!.DeleteGeneration(_wal.Rotate());
        }
    }
}

/// <summary>
/// vRubato1 block build (2,000 traces × 10 spans, written to a local store) and by-ID lookup on an open block
/// (bloom + index cached; each lookup range-reads one row group).
/// </summary>
[MemoryDiagnoser]
public class WalBlockBenchmarks
{
    private const int Traces = 2000;
    private readonly List<(TraceId Id, Trace Trace)> _traces = [];
    private string _dir = string.Empty;
    private LocalObjectStore _store = null!;
    private IBackendBlock _block = null!;
    private int _next;

    [Params(BlockCompression.Brotli, BlockCompression.Deflate)]
    public BlockCompression Compression { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(11);
        var ids = Enumerable.Range(0, Traces).Select(_ => new TraceId((ulong)rnd.NextInt64(), (ulong)rnd.NextInt64())).Order().ToArray();
        foreach (var id in ids)
        {
            _traces.Add((id, MakeTrace(id, rnd)));
        }

        _dir = Path.Combine(Path.GetTempPath(), "rubato-blockbench-" + Guid.NewGuid().ToString("N"));
        _store = new LocalObjectStore(_dir);
        var meta = Build().GetAwaiter().GetResult();
        _block = Encodings.Default.OpenBlock(meta, _store);
        Console.WriteLine($"// block: {meta.Size} bytes, {meta.TotalRecords} row groups, {meta.BloomShards} bloom shards, codec {meta.Encoding}");
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark]
    public async Task<BlockMeta> BuildBlock()
    {
        var meta = await Build();
        foreach (var name in await _store.ListAsync($"bench/{meta.BlockId}", default))
        {
            await _store.DeleteAsync($"bench/{meta.BlockId}/{name}", default);
        }

        return meta;
    }

    [Benchmark]
    public async Task<Trace?> FindTraceById()
    {
        var (id, _) = _traces[_next];
        _next = (_next + 997) % Traces;
        return await _block.FindTraceByIdAsync(id, default);
    }

    private async Task<BlockMeta> Build()
    {
        using var b = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions
        {
            TenantId = "bench",
            BlockId = Guid.NewGuid(),
            RowGroupSizeBytes = 256 * 1024,
            Compression = Compression,
        });
        foreach (var (id, t) in _traces)
        {
            b.AddTrace(id, t);
        }

        return await b.WriteAsync(_store, default);
    }

    private static Trace MakeTrace(TraceId id, Random rnd)
    {
        string[] services = ["checkout", "cart", "payment", "shipping", "frontend"];
        string[] ops = ["GET /api/cart", "POST /api/checkout", "SELECT orders", "redis GET", "grpc Charge"];
        var t = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(services[rnd.Next(services.Length)])));
        rs.Resource.Attributes.Add(new KeyValue("k8s.pod.name", AnyValue.String("pod-" + rnd.Next(50))));
        rs.Resource.Attributes.Add(new KeyValue("host.name", AnyValue.String("ip-10-0-" + rnd.Next(20) + "-" + rnd.Next(250))));
        var ss = new ScopeSpans();
        ss.Scope.Name = "io.opentelemetry.instrumentation";
        ss.Scope.Version = "2.1.0";
        ulong start = 1_700_000_000_000_000_000UL + (ulong)rnd.NextInt64(3_600_000_000_000L);
        for (int i = 0; i < 10; i++)
        {
            var s = new Span
            {
                TraceId = id,
                SpanId = new SpanId((ulong)rnd.NextInt64()),
                ParentSpanId = i == 0 ? default : new SpanId((ulong)rnd.NextInt64()),
                Name = ops[rnd.Next(ops.Length)],
                Kind = i == 0 ? SpanKind.Server : SpanKind.Client,
                StartTimeUnixNano = start + ((ulong)i * 1_000_000),
                EndTimeUnixNano = start + ((ulong)i * 1_000_000) + (ulong)rnd.Next(100_000, 50_000_000),
                StatusCode = rnd.Next(20) == 0 ? StatusCode.Error : StatusCode.Unset,
            };
            s.Attributes.Add(new KeyValue("http.method", AnyValue.String(rnd.Next(2) == 0 ? "GET" : "POST")));
            s.Attributes.Add(new KeyValue("http.status_code", AnyValue.Int(rnd.Next(20) == 0 ? 500 : 200)));
            s.Attributes.Add(new KeyValue("http.url", AnyValue.String("https://shop.example.com/api/items/" + rnd.Next(10_000))));
            s.Attributes.Add(new KeyValue("net.peer.port", AnyValue.Int(rnd.Next(1024, 65535))));
            ss.Spans.Add(s);
        }

        rs.ScopeSpans.Add(ss);
        t.ResourceSpans.Add(rs);
        return t;
    }
}
