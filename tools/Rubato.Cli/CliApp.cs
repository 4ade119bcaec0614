using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Spectre.Console;

namespace Rubato.Cli;

/// <summary>
/// rubato-cli (Tempo's tempo-cli): inspect a bucket. Runs on the caller's thread; every command is one pass of
/// object-store calls. Exit codes: 0 ok, 1 not found, 2 usage error, 3 any other failure.
/// </summary>
public static class CliApp
{
    public const int ExitOk = 0, ExitNotFound = 1, ExitUsage = 2, ExitError = 3;

    public const string DefaultTenant = "single-tenant";

    private const string Usage = """
        usage: rubato-cli <command> [args] (--backend local|s3|azure|gcs --path DIR | backend flags | --config rubato.yaml)
          list tenants
          list blocks <tenant>
          view block <tenant> <blockID>            (alias: list block)
          query trace <traceID> [tenant] [--summary] (alias: query blocks)
          query search <tenant> <blockID> '<traceql>' [--limit N] [--spss N]
          gen index <tenant>
          copy blocks <tenant> --to-backend ... [--to-path DIR ...] [--block ID ...]
        backend flags: --bucket --endpoint --region --access-key --secret-key --insecure --forcepathstyle --prefix
                       --container --account --account-key
        --json prints stable JSON for scripts.
        """;

    /// <summary>
    /// Runs one command. <paramref name="storeFactory"/> (backend name, configs) replaces
    /// <see cref="ObjectStores.Create"/> when given (tests wrap stores with it).
    /// </summary>
    public static async Task<int> RunAsync(
        string[] args, TextWriter stdout, TextWriter stderr, Func<string, ObjectStoreConfigs, IObjectStore>? storeFactory, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(args);
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                (args.Length == 0 ? stderr : stdout).WriteLine(Usage);
                return args.Length == 0 ? ExitUsage : ExitOk;
            }

            if (args.Length < 2)
            {
                throw new UsageException($"'{args[0]}' needs a subcommand");
            }

            // Tempo's tempo-cli names are accepted too: "list block" = "view block", "query blocks" = "query trace".
            string cmd = (args[0] + " " + args[1]) switch
            {
                "list block" => "view block",
                "query blocks" => "query trace",
                var c => c,
            };
            var valueOpts = new HashSet<string>(BackendSelection.ValueOptions, StringComparer.Ordinal);
            var flagOpts = new HashSet<string>(BackendSelection.FlagOptions, StringComparer.Ordinal) { "json" };
            switch (cmd)
            {
                case "query trace":
                    flagOpts.Add("summary");
                    break;
                case "query search":
                    valueOpts.Add("limit");
                    valueOpts.Add("spss");
                    break;
                case "copy blocks":
                    valueOpts.Add("block");
                    foreach (var o in BackendSelection.ValueOptions)
                    {
                        valueOpts.Add("to-" + o);
                    }

                    foreach (var o in BackendSelection.FlagOptions)
                    {
                        flagOpts.Add("to-" + o);
                    }

                    break;
                case "list tenants" or "list blocks" or "view block" or "gen index":
                    break;
                default:
                    throw new UsageException($"unknown command '{cmd}'");
            }

            var p = ParsedArgs.Parse(args[2..], valueOpts, flagOpts);
            var (backend, configs) = BackendSelection.Resolve(p, string.Empty);
            var store = Open(storeFactory, backend, configs);
            var output = new Output(stdout, p.Flag("json"));
            switch (cmd)
            {
                case "list tenants":
                    p.NoMoreThan(0);
                    await ListTenantsAsync(store, output, ct).ConfigureAwait(false);
                    break;
                case "list blocks":
                    p.NoMoreThan(1);
                    await ListBlocksAsync(store, Tenant(p.Require(0, "tenant")), output, ct).ConfigureAwait(false);
                    break;
                case "view block":
                    p.NoMoreThan(2);
                    await ViewBlockAsync(store, Tenant(p.Require(0, "tenant")), BlockId(p.Require(1, "blockID")), output, ct).ConfigureAwait(false);
                    break;
                case "query trace":
                    p.NoMoreThan(2);
                    var id = ParseTraceId(p.Require(0, "traceID"));
                    await QueryTraceAsync(store, id, Tenant(p.Positionals.Count > 1 ? p.Positionals[1] : DefaultTenant), p.Flag("summary"), output, ct).ConfigureAwait(false);
                    break;
                case "query search":
                    p.NoMoreThan(3);
                    await SearchAsync(
                        store,
                        Tenant(p.Require(0, "tenant")),
                        BlockId(p.Require(1, "blockID")),
                        p.Require(2, "traceql"),
                        new SearchOptions { Limit = p.GetInt("limit", SearchOptions.DefaultLimit, 1), SpansPerSpanSet = p.GetInt("spss", SearchOptions.DefaultSpansPerSpanSet, 1) },
                        output,
                        ct).ConfigureAwait(false);
                    break;
                case "gen index":
                    p.NoMoreThan(1);
                    await GenIndexAsync(store, Tenant(p.Require(0, "tenant")), output, ct).ConfigureAwait(false);
                    break;
                case "copy blocks":
                    p.NoMoreThan(1);
                    var (toBackend, toConfigs) = BackendSelection.Resolve(p, "to-");
                    var dest = Open(storeFactory, toBackend, toConfigs);
                    var blocks = p.All("block").Select(b => BlockId(b, "--block")).ToList();
                    await CopyBlocksAsync(store, dest, Tenant(p.Require(0, "tenant")), blocks, output, ReferenceEquals(stdout, Console.Out), ct).ConfigureAwait(false);
                    break;
            }

            return ExitOk;
        }
        catch (UsageException e)
        {
            stderr.WriteLine("error: " + e.Message);
            stderr.WriteLine("run 'rubato-cli help' for usage");
            return ExitUsage;
        }
        catch (NotFoundException e)
        {
            stderr.WriteLine("not found: " + e.Message);
            return ExitNotFound;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            stderr.WriteLine("error: " + e.Message);
            return ExitError;
        }
    }

    private static IObjectStore Open(Func<string, ObjectStoreConfigs, IObjectStore>? factory, string backend, ObjectStoreConfigs configs)
    {
        try
        {
            return factory is not null ? factory(backend, configs) : ObjectStores.Create(backend, configs);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static string Tenant(string t)
    {
        try
        {
            ObjectKeys.Validate(t);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"<tenant> '{t}' is not a valid tenant id");
        }

        if (t.Contains('/'))
        {
            throw new UsageException($"<tenant> '{t}' must not contain '/'");
        }

        return t;
    }

    private static Guid BlockId(string s, string what = "<blockID>") =>
        Guid.TryParse(s, out var g) ? g : throw new UsageException($"{what} '{s}' is not a block id (a UUID)");

    private static TraceId ParseTraceId(string s) =>
        TraceId.TryParseHex(s, out var id) ? id : throw new UsageException($"<traceID> '{s}' is not 1-32 hex digits");

    // ---- list ----------------------------------------------------------------------------------------------------

    private static async Task ListTenantsAsync(IObjectStore store, Output o, CancellationToken ct)
    {
        var tenants = await store.ListAsync(string.Empty, ct).ConfigureAwait(false);
        o.Write(
            w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("tenants");
                foreach (var t in tenants)
                {
                    w.WriteStringValue(t);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            },
            tw =>
            {
                foreach (var t in tenants)
                {
                    tw.WriteLine(t);
                }
            });
    }

    private static async Task ListBlocksAsync(IObjectStore store, string tenant, Output o, CancellationToken ct)
    {
        var listed = await new BlocklistPoller(store, BlocklistPollMode.Listing).ListTenantAsync(tenant, ct).ConfigureAwait(false);
        var rows = listed.Live.Select(m => (Meta: m, Compacted: (DateTimeOffset?)null))
            .Concat(listed.Compacted.Select(c => (c.Meta, Compacted: (DateTimeOffset?)c.CompactedTime)))
            .OrderBy(r => r.Meta.StartTime).ThenBy(r => r.Meta.BlockId)
            .ToList();
        long traces = rows.Sum(r => r.Meta.TotalObjects), spans = rows.Sum(r => r.Meta.SpanCount);
        ulong size = 0;
        foreach (var r in rows)
        {
            size += r.Meta.Size;
        }

        o.Write(
            w =>
            {
                w.WriteStartObject();
                w.WriteString("tenant", tenant);
                w.WriteStartArray("blocks");
                foreach (var (m, compacted) in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("blockId", m.BlockId.ToString("D"));
                    w.WriteString("version", m.Version);
                    w.WriteNumber("compactionLevel", m.CompactionLevel);
                    w.WriteString("startTime", Time(m.StartTime));
                    w.WriteString("endTime", Time(m.EndTime));
                    w.WriteNumber("traces", m.TotalObjects);
                    w.WriteNumber("spans", m.SpanCount);
                    w.WriteNumber("size", m.Size);
                    w.WriteBoolean("compacted", compacted is not null);
                    if (compacted is { } ctime)
                    {
                        w.WriteString("compactedTime", Time(ctime));
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteStartArray("incomplete");
                foreach (var g in listed.Incomplete)
                {
                    w.WriteStringValue(g.ToString("D"));
                }

                w.WriteEndArray();
                w.WriteStartObject("totals");
                w.WriteNumber("blocks", rows.Count);
                w.WriteNumber("liveBlocks", listed.Live.Count);
                w.WriteNumber("compactedBlocks", listed.Compacted.Count);
                w.WriteNumber("traces", traces);
                w.WriteNumber("spans", spans);
                w.WriteNumber("size", size);
                w.WriteEndObject();
                w.WriteEndObject();
            },
            tw =>
            {
                var t = new TextTable("BLOCK", "LVL", "START", "END", "TRACES", "SPANS", "SIZE", "COMPACTED");
                foreach (var (m, compacted) in rows)
                {
                    t.Add(m.BlockId.ToString("D"), N(m.CompactionLevel), Time(m.StartTime), Time(m.EndTime), N(m.TotalObjects), N(m.SpanCount), Bytes(m.Size), compacted is { } c ? Time(c) : string.Empty);
                }

                t.Add("total " + N(rows.Count), string.Empty, string.Empty, string.Empty, N(traces), N(spans), Bytes(size), N(listed.Compacted.Count) + " compacted");
                t.Write(tw);
                if (listed.Incomplete.Count > 0)
                {
                    tw.WriteLine($"{listed.Incomplete.Count} incomplete block folder(s) (no meta.json): {string.Join(", ", listed.Incomplete)}");
                }
            });
    }

    // ---- view block ----------------------------------------------------------------------------------------------

    private static async Task<(BlockMeta Meta, DateTimeOffset? CompactedTime)> ReadMetaAsync(IObjectStore store, string tenant, Guid blockId, CancellationToken ct)
    {
        // The compacted marker wins (as in the poller's listing): marking adds meta.compacted.json and may leave meta.json.
        var json = await store.GetAsync(ObjectKeys.BlockObject(tenant, blockId, ObjectKeys.CompactedMetaName), ct).ConfigureAwait(false);
        if (json is not null)
        {
            var c = CompactedBlockMeta.FromJson(json);
            return (c.Meta, c.CompactedTime);
        }

        json = await store.GetAsync(ObjectKeys.BlockObject(tenant, blockId, ObjectKeys.MetaName), ct).ConfigureAwait(false);
        if (json is not null)
        {
            return (BlockMeta.FromJson(json), null);
        }

        throw new NotFoundException($"block {blockId} of tenant '{tenant}' has neither {ObjectKeys.MetaName} nor {ObjectKeys.CompactedMetaName}");
    }

    private static async Task ViewBlockAsync(IObjectStore store, string tenant, Guid blockId, Output o, CancellationToken ct)
    {
        var (meta, compacted) = await ReadMetaAsync(store, tenant, blockId, ct).ConfigureAwait(false);
        var block = Encodings.FromVersion(meta.Version).OpenBlock(meta, store) as BackendBlockV1
            ?? throw new InvalidOperationException($"block {blockId} has format '{meta.Version}'; only {FormatV1.Version} footers can be shown");
        var footer = await block.GetFooterAsync(ct).ConfigureAwait(false);
        int columnCount = footer.Count == 0 ? 0 : footer.Max(r => r.Columns.Count);
        var columnBytes = new long[columnCount];
        foreach (var rg in footer)
        {
            for (int c = 0; c < rg.Columns.Count; c++)
            {
                columnBytes[c] += rg.Columns[c].Length;
            }
        }

        o.Write(
            w =>
            {
                w.WriteStartObject();
                w.WriteStartObject("meta");
                w.WriteString("blockId", meta.BlockId.ToString("D"));
                w.WriteString("tenantId", meta.TenantId);
                w.WriteString("version", meta.Version);
                w.WriteString("startTime", Time(meta.StartTime));
                w.WriteString("endTime", Time(meta.EndTime));
                w.WriteNumber("traces", meta.TotalObjects);
                w.WriteNumber("spans", meta.SpanCount);
                w.WriteNumber("size", meta.Size);
                w.WriteNumber("compactionLevel", meta.CompactionLevel);
                w.WriteString("encoding", meta.Encoding);
                w.WriteString("dataEncoding", meta.DataEncoding);
                w.WriteNumber("bloomShards", meta.BloomShards);
                w.WriteNumber("footerSize", meta.FooterSize);
                w.WriteNumber("replicationFactor", meta.ReplicationFactor);
                w.WriteString("minId", meta.MinId.ToHex());
                w.WriteString("maxId", meta.MaxId.ToHex());
                w.WriteBoolean("compacted", compacted is not null);
                if (compacted is { } ctime)
                {
                    w.WriteString("compactedTime", Time(ctime));
                }

                w.WriteEndObject();
                w.WriteStartArray("rowGroups");
                for (int i = 0; i < footer.Count; i++)
                {
                    var rg = footer[i];
                    w.WriteStartObject();
                    w.WriteNumber("index", i);
                    w.WriteNumber("offset", rg.Offset);
                    w.WriteNumber("bytes", rg.Length);
                    w.WriteNumber("traces", rg.Traces);
                    w.WriteNumber("spans", rg.Spans);
                    w.WriteString("minId", rg.MinId.ToHex());
                    w.WriteString("maxId", rg.MaxId.ToHex());
                    w.WriteString("startTime", NanoTime(rg.MinStartUnixNano));
                    w.WriteString("endTime", NanoTime(rg.MaxEndUnixNano));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteStartArray("columns");
                for (int c = 0; c < columnCount; c++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("column", c);
                    w.WriteString("name", Col.Name(c));
                    w.WriteNumber("bytes", columnBytes[c]);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            },
            tw =>
            {
                var mt = new TextTable("FIELD", "VALUE") { LeftAlign = true };
                mt.Add("block", meta.BlockId.ToString("D"));
                mt.Add("tenant", meta.TenantId);
                mt.Add("version", meta.Version);
                mt.Add("start", Time(meta.StartTime));
                mt.Add("end", Time(meta.EndTime));
                mt.Add("traces", N(meta.TotalObjects));
                mt.Add("spans", N(meta.SpanCount));
                mt.Add("size", Bytes(meta.Size));
                mt.Add("compaction level", N(meta.CompactionLevel));
                mt.Add("encoding", meta.Encoding);
                mt.Add("bloom shards", N(meta.BloomShards));
                mt.Add("footer size", Bytes(meta.FooterSize));
                mt.Add("id range", meta.MinId.ToHex() + " .. " + meta.MaxId.ToHex());
                mt.Add("compacted", compacted is { } when ? Time(when) : "no");
                mt.Write(tw);
                tw.WriteLine();
                var rt = new TextTable("ROW GROUP", "TRACES", "SPANS", "START", "END", "BYTES");
                for (int i = 0; i < footer.Count; i++)
                {
                    var rg = footer[i];
                    rt.Add(N(i), N(rg.Traces), N(rg.Spans), NanoTime(rg.MinStartUnixNano), NanoTime(rg.MaxEndUnixNano), Bytes((ulong)rg.Length));
                }

                rt.Write(tw);
                tw.WriteLine();
                var ct2 = new TextTable("COLUMN", "BYTES");
                foreach (int c in Enumerable.Range(0, columnCount).Where(c => columnBytes[c] > 0).OrderByDescending(c => columnBytes[c]))
                {
                    ct2.Add(Col.Name(c), Bytes((ulong)columnBytes[c]));
                }

                ct2.Write(tw);
            });
    }

    // ---- query ---------------------------------------------------------------------------------------------------

    private static async Task QueryTraceAsync(IObjectStore store, TraceId id, string tenant, bool summary, Output o, CancellationToken ct)
    {
        var listed = await new BlocklistPoller(store, BlocklistPollMode.Listing).ListTenantAsync(tenant, ct).ConfigureAwait(false);
        var merged = new Trace();
        var seen = new HashSet<SpanId>();
        var foundIn = new List<Guid>();
        foreach (var meta in listed.Live)
        {
            var block = Encodings.FromVersion(meta.Version).OpenBlock(meta, store);
            var part = await block.FindTraceByIdAsync(id, ct).ConfigureAwait(false);
            if (part is null)
            {
                continue;
            }

            foundIn.Add(meta.BlockId);
            MergeInto(merged, part, seen);
        }

        if (foundIn.Count == 0)
        {
            throw new NotFoundException($"trace {id.ToHex()} is in none of the {listed.Live.Count} live block(s) of tenant '{tenant}'");
        }

        if (!summary)
        {
            o.WriteRaw(w => OtlpJson.WriteTempoTraceV1(merged, w));
            return;
        }

        var spans = merged.AllSpans().ToList();
        ulong start = spans.Min(s => s.Span.StartTimeUnixNano), end = spans.Max(s => s.Span.EndTimeUnixNano);
        var root = spans.FirstOrDefault(s => s.Span.ParentSpanId.IsEmpty);
        var services = spans.Select(s => s.Resource.Resource.ServiceName() ?? string.Empty).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        o.Write(
            w =>
            {
                w.WriteStartObject();
                w.WriteString("traceId", id.ToHex());
                w.WriteNumber("spans", spans.Count);
                w.WriteString("rootServiceName", root.Resource?.Resource.ServiceName() ?? string.Empty);
                w.WriteString("rootSpanName", root.Span?.Name ?? string.Empty);
                w.WriteString("startTime", NanoTime(start));
                w.WriteNumber("durationMs", (end - start) / 1_000_000.0);
                w.WriteStartArray("services");
                foreach (var s in services)
                {
                    w.WriteStringValue(s);
                }

                w.WriteEndArray();
                w.WriteStartArray("blocks");
                foreach (var b in foundIn)
                {
                    w.WriteStringValue(b.ToString("D"));
                }

                w.WriteEndArray();
                w.WriteEndObject();
            },
            tw =>
            {
                var t = new TextTable("FIELD", "VALUE") { LeftAlign = true };
                t.Add("trace", id.ToHex());
                t.Add("spans", N(spans.Count));
                t.Add("root", root.Span is null ? "<root span not yet received>" : $"{root.Resource!.Resource.ServiceName()} {root.Span.Name}");
                t.Add("start", NanoTime(start));
                t.Add("duration", ((end - start) / 1_000_000.0).ToString("0.###", CultureInfo.InvariantCulture) + " ms");
                t.Add("services", string.Join(", ", services));
                t.Add("blocks", string.Join(", ", foundIn));
                t.Write(tw);
            });
    }

    /// <summary>Appends <paramref name="part"/>'s spans not already in <paramref name="into"/> (same span in two blocks).</summary>
    private static void MergeInto(Trace into, Trace part, HashSet<SpanId> seen)
    {
        foreach (var rs in part.ResourceSpans)
        {
            var copy = new ResourceSpans { Resource = rs.Resource, SchemaUrl = rs.SchemaUrl };
            foreach (var ss in rs.ScopeSpans)
            {
                var scope = new ScopeSpans { Scope = ss.Scope, SchemaUrl = ss.SchemaUrl };
                scope.Spans.AddRange(ss.Spans.Where(s => seen.Add(s.SpanId)));
                if (scope.Spans.Count > 0)
                {
                    copy.ScopeSpans.Add(scope);
                }
            }

            if (copy.ScopeSpans.Count > 0)
            {
                into.ResourceSpans.Add(copy);
            }
        }
    }

    private static async Task SearchAsync(IObjectStore store, string tenant, Guid blockId, string query, SearchOptions options, Output o, CancellationToken ct)
    {
        Rubato.TraceQL.Ast.RootExpr root;
        try
        {
            root = TraceQLParser.ParseAndValidate(query);
        }
        catch (TraceQLException e)
        {
            throw new UsageException($"<traceql> '{query}': {e.Message}");
        }

        var (meta, _) = await ReadMetaAsync(store, tenant, blockId, ct).ConfigureAwait(false);
        var block = Encodings.FromVersion(meta.Version).OpenBlock(meta, store);
        var result = await TraceQLEngine.SearchAsync(root, MultiBlockSpansetFetcher.ForBlocks([block]), options, ct).ConfigureAwait(false);
        o.WriteRaw(w => SearchResultJson.Write(w, result));
    }

    // ---- gen index -----------------------------------------------------------------------------------------------

    private static async Task GenIndexAsync(IObjectStore store, string tenant, Output o, CancellationToken ct)
    {
        var index = await new BlocklistPoller(store, BlocklistPollMode.Listing).WriteTenantIndexAsync(tenant, ct).ConfigureAwait(false);
        o.Write(
            w =>
            {
                w.WriteStartObject();
                w.WriteString("tenant", tenant);
                w.WriteString("key", TenantIndex.Key(tenant));
                w.WriteString("createdAt", Time(index.CreatedAt));
                w.WriteNumber("blocks", index.Meta.Count);
                w.WriteNumber("compactedBlocks", index.Compacted.Count);
                w.WriteEndObject();
            },
            tw => tw.WriteLine($"wrote {TenantIndex.Key(tenant)}: {index.Meta.Count} live block(s), {index.Compacted.Count} compacted"));
    }

    // ---- copy ----------------------------------------------------------------------------------------------------

    private static async Task CopyBlocksAsync(IObjectStore source, IObjectStore dest, string tenant, List<Guid> selected, Output o, bool interactive, CancellationToken ct)
    {
        var listed = await new BlocklistPoller(source, BlocklistPollMode.Listing).ListTenantAsync(tenant, ct).ConfigureAwait(false);
        var known = listed.Live.Select(m => m.BlockId).Concat(listed.Compacted.Select(c => c.Meta.BlockId)).ToHashSet();
        List<Guid> blocks;
        if (selected.Count > 0)
        {
            var missing = selected.Where(b => !known.Contains(b)).ToList();
            if (missing.Count > 0)
            {
                throw new NotFoundException($"block(s) {string.Join(", ", missing)} of tenant '{tenant}' not found (no meta.json or meta.compacted.json)");
            }

            blocks = [.. selected.Distinct()];
        }
        else
        {
            blocks = [.. listed.Live.Select(m => m.BlockId)];
        }

        var results = new List<(Guid Block, int Objects, long Bytes)>();
        if (interactive && !o.Json && !Console.IsOutputRedirected)
        {
            await AnsiConsole.Progress().StartAsync(async pc =>
            {
                var task = pc.AddTask($"copying {blocks.Count} block(s) of {tenant}", maxValue: Math.Max(1, blocks.Count));
                foreach (var b in blocks)
                {
                    results.Add(await CopyBlockAsync(source, dest, tenant, b, ct).ConfigureAwait(false));
                    task.Increment(1);
                }
            }).ConfigureAwait(false);
        }
        else
        {
            foreach (var b in blocks)
            {
                results.Add(await CopyBlockAsync(source, dest, tenant, b, ct).ConfigureAwait(false));
            }
        }

        o.Write(
            w =>
            {
                w.WriteStartObject();
                w.WriteString("tenant", tenant);
                w.WriteStartArray("blocks");
                foreach (var (b, n, bytes) in results)
                {
                    w.WriteStartObject();
                    w.WriteString("blockId", b.ToString("D"));
                    w.WriteNumber("objects", n);
                    w.WriteNumber("bytes", bytes);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteNumber("objects", results.Sum(r => r.Objects));
                w.WriteNumber("bytes", results.Sum(r => r.Bytes));
                w.WriteEndObject();
            },
            tw =>
            {
                var t = new TextTable("BLOCK", "OBJECTS", "BYTES");
                foreach (var (b, n, bytes) in results)
                {
                    t.Add(b.ToString("D"), N(n), Bytes((ulong)bytes));
                }

                t.Write(tw);
            });
    }

    /// <summary>
    /// Copies every object of one block; the markers (meta.json, meta.compacted.json) go last so a reader of the
    /// destination never sees a block whose data is not all there. Data objects are streamed in
    /// <see cref="RangeReadStream.DefaultChunkSize"/> range reads, so one chunk is in memory at a time.
    /// </summary>
    private static async Task<(Guid, int, long)> CopyBlockAsync(IObjectStore source, IObjectStore dest, string tenant, Guid blockId, CancellationToken ct)
    {
        string prefix = ObjectKeys.BlockPrefix(tenant, blockId);
        var names = await source.ListAsync(prefix, ct).ConfigureAwait(false);
        var ordered = names.Where(n => n is not ObjectKeys.MetaName and not ObjectKeys.CompactedMetaName)
            .Concat(names.Where(n => n == ObjectKeys.CompactedMetaName))
            .Concat(names.Where(n => n == ObjectKeys.MetaName));
        int count = 0;
        long bytes = 0;
        foreach (var name in ordered)
        {
            string key = prefix + "/" + name;
            if (name is ObjectKeys.MetaName or ObjectKeys.CompactedMetaName)
            {
                // Small markers: read whole, so a marker that vanished mid-copy is reported, not written empty.
                var marker = await source.GetAsync(key, ct).ConfigureAwait(false)
                    ?? throw new InvalidOperationException($"object '{key}' disappeared during the copy");
                await dest.PutAsync(key, marker, ct).ConfigureAwait(false);
                bytes += marker.Length;
            }
            else
            {
                await using var stream = new RangeReadStream(source, key);
                await dest.PutAsync(key, stream, ct).ConfigureAwait(false);
                bytes += stream.BytesRead;
            }

            count++;
        }

        return (blockId, count, bytes);
    }

    // ---- formatting ----------------------------------------------------------------------------------------------

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static string NanoTime(ulong unixNanos) =>
        DateTimeOffset.UnixEpoch.AddTicks((long)(unixNanos / 100)).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private static string N(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string N(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Bytes(ulong b) => b switch
    {
        < 1024 => b.ToString(CultureInfo.InvariantCulture) + " B",
        < 1024 * 1024 => (b / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        < 1024UL * 1024 * 1024 => (b / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        _ => (b / (1024.0 * 1024 * 1024)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
    };

    /// <summary>Writes either JSON (indented, stable field order, no colours) or text to the command's stdout.</summary>
    private sealed class Output(TextWriter stdout, bool json)
    {
        public bool Json => json;

        public void Write(Action<Utf8JsonWriter> writeJson, Action<TextWriter> writeText)
        {
            if (json)
            {
                WriteRaw(writeJson);
            }
            else
            {
                writeText(stdout);
            }
        }

        public void WriteRaw(Action<Utf8JsonWriter> writeJson)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = json, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                writeJson(w);
            }

            stdout.WriteLine(Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length));
        }
    }
}
