using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Rubato.LoadGen.Otlp;

namespace Rubato.LoadGen;

/// <summary>
/// rubato-loadgen: drives OTLP gRPC or HTTP at a fixed concurrency with pre-built ~400-byte spans and reports
/// throughput, latency percentiles, errors by status and the server's peak RSS.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        LoadOptions options;
        try
        {
            options = LoadOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"rubato-loadgen: {e.Message}");
            Console.Error.WriteLine(LoadOptions.Usage);
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(LoadOptions.Usage);
            return 0;
        }

        LoadReport report;
        try
        {
            report = await LoadRunner.RunAsync(options, Console.Out, CancellationToken.None);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"rubato-loadgen: {e.Message}");
            return 2;
        }

        Console.WriteLine(report.ToText());
        Console.WriteLine(JsonSerializer.Serialize(report, LoadReport.JsonOptions));
        return report.SpansOk > 0 ? 0 : 1;
    }
}

/// <summary>Command-line options; see <see cref="Usage"/>.</summary>
public sealed class LoadOptions
{
    public const string Usage = """
        usage: rubato-loadgen --endpoint http://127.0.0.1:4317 [options]
          --endpoint URL          OTLP endpoint (gRPC: host:port base; HTTP: base, /v1/traces is appended)
          --protocol grpc|http    default grpc
          --concurrency N         concurrent in-flight requests, default 8
          --batch-spans N         spans per request, default 500
          --traces-per-batch N    traces per request, default 50 (spans split evenly)
          --duration SECONDS      run time, default 30 (ignored when --total-spans is set)
          --total-spans N         stop after sending this many spans
          --tenant ID             send X-Scope-OrgID
          --server-pid PID        sample the server's VmRSS/VmHWM from /proc/PID/status
          --pool N                pre-built request bodies, default 64
          --seed N                random seed, default 1
        """;

    public Uri Endpoint { get; private set; } = new("http://127.0.0.1:4317");
    public string Protocol { get; private set; } = "grpc";
    public int Concurrency { get; private set; } = 8;
    public int BatchSpans { get; private set; } = 500;
    public int TracesPerBatch { get; private set; } = 50;
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(30);
    public long? TotalSpans { get; private set; }
    public string? Tenant { get; private set; }
    public int? ServerPid { get; private set; }
    public int Pool { get; private set; } = 64;
    public int Seed { get; private set; } = 1;
    public bool Help { get; private set; }

    public static LoadOptions Parse(string[] args)
    {
        var o = new LoadOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            switch (a)
            {
                case "--endpoint": o.Endpoint = new Uri(Next()); break;
                case "--protocol":
                    o.Protocol = Next();
                    if (o.Protocol is not ("grpc" or "http"))
                    {
                        throw new ArgumentException($"--protocol must be grpc or http, got '{o.Protocol}'");
                    }

                    break;
                case "--concurrency": o.Concurrency = Positive(a, Next()); break;
                case "--batch-spans": o.BatchSpans = Positive(a, Next()); break;
                case "--traces-per-batch": o.TracesPerBatch = Positive(a, Next()); break;
                case "--duration": o.Duration = TimeSpan.FromSeconds(Positive(a, Next())); break;
                case "--total-spans": o.TotalSpans = Positive(a, Next()); break;
                case "--tenant": o.Tenant = Next(); break;
                case "--server-pid": o.ServerPid = Positive(a, Next()); break;
                case "--pool": o.Pool = Positive(a, Next()); break;
                case "--seed": o.Seed = int.Parse(Next()); break;
                case "-h" or "--help": o.Help = true; break;
                default: throw new ArgumentException($"unknown flag '{a}'");
            }
        }

        if (o.TracesPerBatch > o.BatchSpans)
        {
            throw new ArgumentException($"--traces-per-batch ({o.TracesPerBatch}) exceeds --batch-spans ({o.BatchSpans})");
        }

        return o;
    }

    private static int Positive(string flag, string value) =>
        int.TryParse(value, out int v) && v > 0 ? v : throw new ArgumentException($"{flag} must be a positive integer, got '{value}'");
}

/// <summary>Result of one run.</summary>
public sealed class LoadReport
{
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    public string Protocol { get; init; } = "";
    public int Concurrency { get; init; }
    public int BatchSpans { get; init; }
    public double Seconds { get; init; }
    public long Requests { get; init; }
    public long SpansOk { get; init; }
    public long BytesOk { get; init; }
    public double SpansPerSecond { get; init; }
    public double MegabytesPerSecond { get; init; }
    public double AvgSpanBytes { get; init; }
    public double P50Ms { get; init; }
    public double P99Ms { get; init; }
    public double MaxMs { get; init; }
    public Dictionary<string, long> Errors { get; init; } = [];
    public string FirstError { get; init; } = "";
    public long? PeakRssKb { get; init; }
    public long? VmHwmKb { get; init; }

    public string ToText()
    {
        var errors = Errors.Count == 0 ? "none" : string.Join(", ", Errors.Select(e => $"{e.Key}={e.Value}"));
        string rss = PeakRssKb is null ? "n/a" : $"{PeakRssKb / 1024.0:F0} MiB sampled peak, VmHWM {VmHwmKb / 1024.0:F0} MiB";
        return $"""
            protocol={Protocol} concurrency={Concurrency} batch={BatchSpans} spans ({AvgSpanBytes:F0} B/span)
            {SpansOk:N0} spans ok in {Requests:N0} requests over {Seconds:F1}s
            throughput: {SpansPerSecond:N0} spans/s, {MegabytesPerSecond:F1} MB/s
            latency: p50 {P50Ms:F1} ms, p99 {P99Ms:F1} ms, max {MaxMs:F1} ms
            errors: {errors}{(FirstError.Length > 0 ? $" (first: {FirstError})" : "")}
            server RSS: {rss}
            """;
    }
}

/// <summary>Runs the load: a pool of pre-built bodies re-stamped with fresh trace ids per request.</summary>
public static class LoadRunner
{
    public static async Task<LoadReport> RunAsync(LoadOptions o, TextWriter log, CancellationToken cancellationToken)
    {
        var rng = new Random(o.Seed);
        int spansPerTrace = Math.Max(1, o.BatchSpans / o.TracesPerBatch);
        ulong now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000UL;
        var pool = new OtlpBatch[o.Pool];
        for (int i = 0; i < pool.Length; i++)
        {
            var ids = Enumerable.Range(0, o.TracesPerBatch).Select(_ => OtlpBatchBuilder.RandomTraceId(rng)).ToList();
            pool[i] = OtlpBatchBuilder.Build(ids, spansPerTrace, rng, now);
        }

        int spansPerRequest = pool[0].SpanCount;
        double avgSpanBytes = pool.Average(b => (double)b.Body.Length) / spansPerRequest;
        log.WriteLine($"pre-built {pool.Length} bodies: {spansPerRequest} spans, {avgSpanBytes:F0} B/span; sending to {o.Endpoint} over {o.Protocol}");

        using IOtlpSender sender = o.Protocol == "grpc" ? new GrpcOtlpSender(o.Endpoint) : new HttpOtlpSender(o.Endpoint);
        ulong runPrefix = (ulong)rng.NextInt64() | 1UL;
        long sequence = 0;
        long reserved = 0;
        long requests = 0, spansOk = 0, bytesOk = 0;
        var latencies = new ConcurrentBag<List<double>>();
        var errors = new ConcurrentDictionary<string, long>();
        string firstError = "";
        using var rss = o.ServerPid is int pid ? new RssSampler(pid) : null;

        var sw = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (o.TotalSpans is null)
        {
            stop.CancelAfter(o.Duration);
        }

        async Task Worker(int worker)
        {
            var mine = new List<double>(4096);
            latencies.Add(mine);
            int next = worker;
            while (!stop.IsCancellationRequested)
            {
                if (o.TotalSpans is long total && Interlocked.Add(ref reserved, spansPerRequest) > total)
                {
                    break;
                }

                var batch = pool[next++ % pool.Length];
                byte[] buffer = ArrayPool<byte>.Shared.Rent(batch.Body.Length);
                try
                {
                    long first = Interlocked.Add(ref sequence, batch.Traces.Count) - batch.Traces.Count;
                    batch.StampInto(buffer, runPrefix, (ulong)first);
                    long t0 = Stopwatch.GetTimestamp();
                    SendResult result;
                    try
                    {
                        result = await sender.SendAsync(buffer.AsMemory(0, batch.Body.Length), o.Tenant, CancellationToken.None);
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                    {
                        result = new SendResult(false, e.GetType().Name, e.Message);
                    }

                    mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    Interlocked.Increment(ref requests);
                    if (result.Ok)
                    {
                        Interlocked.Add(ref spansOk, batch.SpanCount);
                        Interlocked.Add(ref bytesOk, batch.Body.Length);
                    }
                    else
                    {
                        errors.AddOrUpdate(result.Status, 1, (_, v) => v + 1);
                        Interlocked.CompareExchange(ref firstError, $"{result.Status}: {result.Message}", "");
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, o.Concurrency).Select(i => Task.Run(() => Worker(i))));
        double seconds = sw.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).OrderBy(x => x).ToArray();
        double Pct(double p) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)Math.Ceiling(p * all.Length) - 1)];
        var (peak, hwm) = rss?.Finish() ?? (null, null);
        return new LoadReport
        {
            Protocol = o.Protocol,
            Concurrency = o.Concurrency,
            BatchSpans = spansPerRequest,
            Seconds = seconds,
            Requests = requests,
            SpansOk = spansOk,
            BytesOk = bytesOk,
            SpansPerSecond = spansOk / seconds,
            MegabytesPerSecond = bytesOk / seconds / 1e6,
            AvgSpanBytes = avgSpanBytes,
            P50Ms = Pct(0.50),
            P99Ms = Pct(0.99),
            MaxMs = all.Length == 0 ? 0 : all[^1],
            Errors = new Dictionary<string, long>(errors),
            FirstError = firstError.Length > 300 ? firstError[..300] : firstError,
            PeakRssKb = peak,
            VmHwmKb = hwm,
        };
    }
}

/// <summary>Samples VmRSS of a process every 100 ms on a timer thread; reports the peak and the kernel's VmHWM.</summary>
public sealed class RssSampler : IDisposable
{
    private readonly int _pid;
    private readonly Timer _timer;
    private long _peakKb;

    public RssSampler(int pid)
    {
        _pid = pid;
        if (!File.Exists($"/proc/{pid}/status"))
        {
            throw new ArgumentException($"no process {pid}: /proc/{pid}/status does not exist");
        }

        _timer = new Timer(_ => Sample(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(100));
    }

    public (long? PeakKb, long? HwmKb) Finish()
    {
        _timer.Dispose();
        Sample();
        return (Interlocked.Read(ref _peakKb), Read("VmHWM:"));
    }

    public void Dispose() => _timer.Dispose();

    private void Sample()
    {
        if (Read("VmRSS:") is long kb)
        {
            long seen;
            while (kb > (seen = Interlocked.Read(ref _peakKb)) && Interlocked.CompareExchange(ref _peakKb, kb, seen) != seen)
            {
            }
        }
    }

    /// <summary>Reads a "Name:   1234 kB" line from /proc/PID/status; null once the process is gone.</summary>
    public long? Read(string field)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{_pid}/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0]);
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }
}
