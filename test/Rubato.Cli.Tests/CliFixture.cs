using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;

namespace Rubato.Cli.Tests;

/// <summary>
/// A local bucket with tenant "t1": block A (3 traces, 2 spans each), block B (2 traces, one of them also in A with
/// another span) and block C (1 trace), C marked compacted.
/// </summary>
public sealed class CliFixture : IDisposable
{
    public static readonly DateTimeOffset Base = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public CliFixture()
    {
        Directory.CreateDirectory(Root);
        var store = new LocalObjectStore(Root);
        BlockA = Write(store, [1, 2, 3], 0).GetAwaiter().GetResult();
        BlockB = Write(store, [3, 4], 100).GetAwaiter().GetResult();
        var c = Write(store, [9], 200).GetAwaiter().GetResult();
        BlockLifecycle.MarkCompactedAsync(store, c, Base.AddHours(1), CancellationToken.None).GetAwaiter().GetResult();
        BlockC = c;
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "rubato-cli-tests-" + Guid.NewGuid().ToString("N"));

    public BlockMeta BlockA { get; }

    public BlockMeta BlockB { get; }

    public BlockMeta BlockC { get; }

    public static TraceId Id(int n) => new(0xabc, (ulong)n);

    /// <summary>Span names of a trace: "op-{n}-{spanOffset}" and "child-{n}-{spanOffset}".</summary>
    public static Trace MakeTrace(int n, int spanOffset)
    {
        var trace = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("svc-" + n)));
        var ss = new ScopeSpans();
        ulong start = (ulong)Base.AddMinutes(n).ToUnixTimeMilliseconds() * 1_000_000UL;
        var root = new Span
        {
            TraceId = Id(n),
            SpanId = new SpanId((ulong)((n * 1000) + spanOffset + 1)),
            Name = $"op-{n}-{spanOffset}",
            Kind = SpanKind.Server,
            StartTimeUnixNano = start,
            EndTimeUnixNano = start + 5_000_000,
        };
        root.Attributes.Add(new KeyValue("http.status_code", AnyValue.Int(200)));
        ss.Spans.Add(root);
        ss.Spans.Add(new Span
        {
            TraceId = Id(n),
            SpanId = new SpanId((ulong)((n * 1000) + spanOffset + 2)),
            ParentSpanId = spanOffset == 0 ? root.SpanId : new SpanId(999_999),
            Name = $"child-{n}-{spanOffset}",
            Kind = SpanKind.Client,
            StartTimeUnixNano = start + 1_000_000,
            EndTimeUnixNano = start + 2_000_000,
        });
        rs.ScopeSpans.Add(ss);
        trace.ResourceSpans.Add(rs);
        return trace;
    }

    public static async Task<(int Code, string Out, string Err)> RunAsync(string[] args, Func<string, ObjectStoreConfigs, IObjectStore>? factory = null)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, stderr, factory, CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public static JsonElement Json(string s) => JsonDocument.Parse(s).RootElement;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    private static async Task<BlockMeta> Write(IObjectStore store, int[] traces, int spanOffset)
    {
        using var builder = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = "t1" });
        foreach (int n in traces)
        {
            builder.AddTrace(Id(n), MakeTrace(n, spanOffset));
        }

        return await builder.WriteAsync(store, CancellationToken.None);
    }
}
