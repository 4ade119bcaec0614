using System.Text.Json;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;

namespace Rubato.Cli.Tests;

public sealed class CliTests(CliFixture fx) : IClassFixture<CliFixture>
{
    private string[] Args(params string[] a) => [.. a, "--backend", "local", "--path", fx.Root, "--json"];

    private static List<string> SpanNames(JsonElement e)
    {
        var names = new List<string>();
        Walk(e);
        return names;

        void Walk(JsonElement x)
        {
            if (x.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in x.EnumerateObject())
                {
                    if (p.Name == "spans")
                    {
                        names.AddRange(p.Value.EnumerateArray().Select(s => s.GetProperty("name").GetString()!));
                    }
                    else
                    {
                        Walk(p.Value);
                    }
                }
            }
            else if (x.ValueKind == JsonValueKind.Array)
            {
                foreach (var i in x.EnumerateArray())
                {
                    Walk(i);
                }
            }
        }
    }

    [Fact]
    public async Task ListBlocks_Json_ListsBlocksWithCountsAndCompactedFlag()
    {
        var (code, stdout, stderr) = await CliFixture.RunAsync(Args("list", "blocks", "t1"));
        Assert.True(code == 0, stderr);
        var j = CliFixture.Json(stdout);
        var blocks = j.GetProperty("blocks").EnumerateArray().ToList();
        Assert.Equal(3, blocks.Count);
        var byId = blocks.ToDictionary(b => Guid.Parse(b.GetProperty("blockId").GetString()!));
        Assert.Equal(3, byId[fx.BlockA.BlockId].GetProperty("traces").GetInt64());
        Assert.Equal(6, byId[fx.BlockA.BlockId].GetProperty("spans").GetInt64());
        Assert.False(byId[fx.BlockA.BlockId].GetProperty("compacted").GetBoolean());
        Assert.True(byId[fx.BlockC.BlockId].GetProperty("compacted").GetBoolean());
        var totals = j.GetProperty("totals");
        Assert.Equal(6, totals.GetProperty("traces").GetInt64());
        Assert.Equal(2, totals.GetProperty("liveBlocks").GetInt32());
        Assert.Equal(1, totals.GetProperty("compactedBlocks").GetInt32());
        var starts = blocks.Select(b => b.GetProperty("startTime").GetString()!).ToList();
        Assert.Equal(starts.Order(StringComparer.Ordinal), starts);
    }

    [Fact]
    public async Task ListBlocks_Table_HasTotalsRow()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(["list", "blocks", "t1", "--path", fx.Root]);
        Assert.Equal(0, code);
        Assert.Contains(fx.BlockA.BlockId.ToString("D"), stdout, StringComparison.Ordinal);
        Assert.Contains("total 3", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListTenants_Json_ListsTenant()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(Args("list", "tenants"));
        Assert.Equal(0, code);
        Assert.Contains("t1", CliFixture.Json(stdout).GetProperty("tenants").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task ViewBlock_Json_ShowsRowGroupsAndColumns()
    {
        var (code, stdout, stderr) = await CliFixture.RunAsync(Args("view", "block", "t1", fx.BlockA.BlockId.ToString()));
        Assert.True(code == 0, stderr);
        var j = CliFixture.Json(stdout);
        Assert.Equal(fx.BlockA.BlockId.ToString("D"), j.GetProperty("meta").GetProperty("blockId").GetString());
        var rgs = j.GetProperty("rowGroups").EnumerateArray().ToList();
        Assert.NotEmpty(rgs);
        Assert.Equal(3, rgs.Sum(r => r.GetProperty("traces").GetInt32()));
        Assert.Equal(6, rgs.Sum(r => r.GetProperty("spans").GetInt32()));
        var cols = j.GetProperty("columns").EnumerateArray().ToList();
        Assert.Contains(cols, c => c.GetProperty("bytes").GetInt64() > 0);
        long colBytes = cols.Sum(c => c.GetProperty("bytes").GetInt64());
        Assert.True(colBytes <= rgs.Sum(r => r.GetProperty("bytes").GetInt64()), "column chunks must fit in their row groups");
    }

    [Fact]
    public async Task ViewBlock_CompactedBlock_ReportsCompacted()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(Args("view", "block", "t1", fx.BlockC.BlockId.ToString()));
        Assert.Equal(0, code);
        Assert.True(CliFixture.Json(stdout).GetProperty("meta").GetProperty("compacted").GetBoolean());
    }

    [Fact]
    public async Task ViewBlock_UnknownBlock_ExitsNotFound()
    {
        var (code, _, stderr) = await CliFixture.RunAsync(Args("view", "block", "t1", Guid.NewGuid().ToString()));
        Assert.Equal(1, code);
        Assert.Contains("meta.json", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryTrace_TraceInTwoBlocks_ReturnsSpansOfBoth()
    {
        var (code, stdout, stderr) = await CliFixture.RunAsync(Args("query", "trace", CliFixture.Id(3).ToHex(), "t1"));
        Assert.True(code == 0, stderr);
        var names = SpanNames(CliFixture.Json(stdout));
        Assert.Equal(["child-3-0", "child-3-100", "op-3-0", "op-3-100"], names.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task QueryBlocks_TempoAlias_FindsTrace()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(Args("query", "blocks", CliFixture.Id(4).ToHex(), "t1"));
        Assert.Equal(0, code);
        Assert.Equal(["child-4-100", "op-4-100"], SpanNames(CliFixture.Json(stdout)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task QueryTrace_Summary_Json()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(Args("query", "trace", CliFixture.Id(1).ToHex(), "t1", "--summary"));
        Assert.Equal(0, code);
        var j = CliFixture.Json(stdout);
        Assert.Equal(2, j.GetProperty("spans").GetInt32());
        Assert.Equal("op-1-0", j.GetProperty("rootSpanName").GetString());
        Assert.Equal("svc-1", j.GetProperty("rootServiceName").GetString());
    }

    [Fact]
    public async Task QueryTrace_CompactedBlockOnly_ExitsNotFound()
    {
        var (code, _, stderr) = await CliFixture.RunAsync(Args("query", "trace", CliFixture.Id(9).ToHex(), "t1"));
        Assert.Equal(1, code);
        Assert.Contains(CliFixture.Id(9).ToHex(), stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryTrace_MissingId_ExitsNotFound()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(Args("query", "trace", "deadbeef", "t1"));
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, stdout);
    }

    [Fact]
    public async Task QuerySearch_OneBlock_ReturnsMatchingTrace()
    {
        var (code, stdout, stderr) = await CliFixture.RunAsync(Args("query", "search", "t1", fx.BlockA.BlockId.ToString(), "{ name = \"op-2-0\" }"));
        Assert.True(code == 0, stderr);
        var traces = CliFixture.Json(stdout).GetProperty("traces").EnumerateArray().ToList();
        var t = Assert.Single(traces);
        Assert.Equal("svc-2", t.GetProperty("rootServiceName").GetString());
    }

    [Fact]
    public async Task QuerySearch_Limit_CapsTraces()
    {
        var (code, stdout, _) = await CliFixture.RunAsync(Args("query", "search", "t1", fx.BlockA.BlockId.ToString(), "{ kind = server }", "--limit", "2"));
        Assert.Equal(0, code);
        Assert.Equal(2, CliFixture.Json(stdout).GetProperty("traces").GetArrayLength());
    }

    [Fact]
    public async Task GenIndex_WritesReadableTenantIndex()
    {
        using var copy = new CliFixture();
        var (code, stdout, stderr) = await CliFixture.RunAsync(["gen", "index", "t1", "--path", copy.Root, "--json"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(2, CliFixture.Json(stdout).GetProperty("blocks").GetInt32());
        var data = await new LocalObjectStore(copy.Root).GetAsync(TenantIndex.Key("t1"), CancellationToken.None);
        Assert.NotNull(data);
        var index = TenantIndex.FromGzipJson(data);
        Assert.Equal(new[] { copy.BlockA.BlockId, copy.BlockB.BlockId }.Order(), index.Meta.Select(m => m.BlockId).Order());
        Assert.Equal(copy.BlockC.BlockId, Assert.Single(index.Compacted).Meta.BlockId);
    }

    [Fact]
    public async Task CopyBlocks_LocalToLocal_CopiesTracesWithMetaLast()
    {
        string dest = Path.Combine(Path.GetTempPath(), "rubato-cli-copy-" + Guid.NewGuid().ToString("N"));
        try
        {
            var recorder = new RecordingObjectStore(new LocalObjectStore(dest));
            var (code, stdout, stderr) = await CliFixture.RunAsync(
                ["copy", "blocks", "t1", "--path", fx.Root, "--to-backend", "local", "--to-path", dest, "--json"],
                (backend, configs) => configs.LocalPath == dest ? recorder : new LocalObjectStore(configs.LocalPath));
            Assert.True(code == 0, stderr);
            var copiedJson = CliFixture.Json(stdout);
            Assert.Equal(2, copiedJson.GetProperty("blocks").GetArrayLength());
            long sourceBytes = new[] { fx.BlockA, fx.BlockB }
                .SelectMany(m => Directory.GetFiles(Path.Combine(fx.Root, "t1", m.BlockId.ToString("D"))))
                .Sum(f => new FileInfo(f).Length);
            Assert.Equal(sourceBytes, copiedJson.GetProperty("bytes").GetInt64());

            foreach (var meta in new[] { fx.BlockA, fx.BlockB })
            {
                var puts = recorder.Puts.Where(k => k.Contains(meta.BlockId.ToString("D"), StringComparison.Ordinal)).ToList();
                Assert.True(puts.Count > 1);
                Assert.EndsWith("/" + ObjectKeys.MetaName, puts[^1], StringComparison.Ordinal);
                var copied = Encodings.FromVersion(meta.Version).OpenBlock(meta, new LocalObjectStore(dest));
                var original = Encodings.FromVersion(meta.Version).OpenBlock(meta, new LocalObjectStore(fx.Root));
                var a = new List<string>();
                await foreach (var (id, t) in original.IterateAsync(CancellationToken.None))
                {
                    a.Add(id.ToHex() + ":" + string.Join(",", t.AllSpans().Select(s => s.Span.Name)));
                }

                var b = new List<string>();
                await foreach (var (id, t) in copied.IterateAsync(CancellationToken.None))
                {
                    b.Add(id.ToHex() + ":" + string.Join(",", t.AllSpans().Select(s => s.Span.Name)));
                }

                Assert.NotEmpty(a);
                Assert.Equal(a, b);
            }

            Assert.DoesNotContain(recorder.Puts, k => k.Contains(fx.BlockC.BlockId.ToString("D"), StringComparison.Ordinal));
            var (qcode, qout, _) = await CliFixture.RunAsync(["query", "trace", CliFixture.Id(2).ToHex(), "t1", "--path", dest]);
            Assert.Equal(0, qcode);
            Assert.Contains("op-2-0", qout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dest, recursive: true);
        }
    }

    [Fact]
    public async Task CopyBlocks_UnknownBlock_ExitsNotFound()
    {
        string dest = Path.Combine(Path.GetTempPath(), "rubato-cli-copy-" + Guid.NewGuid().ToString("N"));
        var (code, _, stderr) = await CliFixture.RunAsync(["copy", "blocks", "t1", "--path", fx.Root, "--to-path", dest, "--block", Guid.NewGuid().ToString()]);
        Assert.Equal(1, code);
        Assert.Contains("not found", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dest, "t1")));
    }

    [Theory]
    [InlineData(new[] { "frob", "blocks" }, "unknown command 'frob blocks'")]
    [InlineData(new[] { "list", "blocks", "t1" }, "--backend is required")]
    [InlineData(new[] { "list", "blocks", "t1", "--backend", "ftp" }, "--backend 'ftp'")]
    [InlineData(new[] { "list", "blocks", "--path", "/tmp" }, "<tenant>")]
    [InlineData(new[] { "view", "block", "t1", "nope", "--path", "/tmp" }, "<blockID> 'nope'")]
    [InlineData(new[] { "query", "trace", "xyz", "--path", "/tmp" }, "<traceID> 'xyz'")]
    [InlineData(new[] { "query", "search", "t1", "00000000-0000-0000-0000-000000000001", "{ name = ", "--path", "/tmp" }, "<traceql>")]
    [InlineData(new[] { "query", "search", "t1", "00000000-0000-0000-0000-000000000001", "{}", "--limit", "abc", "--path", "/tmp" }, "--limit")]
    [InlineData(new[] { "list", "blocks", "t1", "--path", "/tmp", "--bogus" }, "unknown option --bogus")]
    [InlineData(new[] { "copy", "blocks", "t1", "--path", "/tmp" }, "--to-backend is required")]
    [InlineData(new[] { "list", "blocks", "t1", "--config", "/nonexistent/rubato.yaml" }, "--config")]
    public async Task Run_UsageError_ExitsTwoNamingArgument(string[] args, string expected)
    {
        var (code, _, stderr) = await CliFixture.RunAsync(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_StorageTraceLocalPath_IsUsed()
    {
        string cfg = Path.Combine(fx.Root, "..", "rubato-cli-" + Guid.NewGuid().ToString("N") + ".yaml");
        await File.WriteAllTextAsync(cfg, $"server:\n  http_listen_port: 3200\nstorage:\n  trace:\n    backend: local\n    blocklist_poll: 5m\n    local:\n      path: {fx.Root}\n");
        try
        {
            var (code, stdout, stderr) = await CliFixture.RunAsync(["list", "blocks", "t1", "--config", cfg, "--json"]);
            Assert.True(code == 0, stderr);
            Assert.Equal(3, CliFixture.Json(stdout).GetProperty("blocks").GetArrayLength());
        }
        finally
        {
            File.Delete(cfg);
        }
    }
}

public sealed class ConfigEnvTests
{
    [Fact]
    public async Task Config_EnvReferenceWithDefault_IsExpanded()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rubato-cli-env-" + Guid.NewGuid().ToString("N"));
        string cfg = dir + ".yaml";
        await File.WriteAllTextAsync(cfg, "storage:\n  trace:\n    backend: local\n    local:\n      path: ${RUBATO_CLI_TEST_UNSET_VAR:-" + dir + "}\n");
        try
        {
            var (code, stdout, stderr) = await CliFixture.RunAsync(["gen", "index", "t9", "--config", cfg, "--json"]);
            Assert.True(code == 0, stderr);
            Assert.Equal(0, CliFixture.Json(stdout).GetProperty("blocks").GetInt32());
            Assert.True(File.Exists(Path.Combine(dir, "t9", TenantIndex.ObjectName)));
        }
        finally
        {
            File.Delete(cfg);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }
}

/// <summary>A decorator over a real store that records the order of writes.</summary>
public sealed class RecordingObjectStore(IObjectStore inner) : IObjectStore
{
    private readonly List<string> _puts = [];

    public IReadOnlyList<string> Puts
    {
        get
        {
            lock (_puts)
            {
                return [.. _puts];
            }
        }
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        await inner.PutAsync(key, data, ct);
        Record(key);
    }

    public async Task PutAsync(string key, Stream data, CancellationToken ct)
    {
        await inner.PutAsync(key, data, ct);
        Record(key);
    }

    public Task<byte[]?> GetAsync(string key, CancellationToken ct) => inner.GetAsync(key, ct);

    public Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct) => inner.ReadRangeAsync(key, offset, buffer, ct);

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task<bool> ExistsAsync(string key, CancellationToken ct) => inner.ExistsAsync(key, ct);

    public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

    private void Record(string key)
    {
        lock (_puts)
        {
            _puts.Add(key);
        }
    }
}
