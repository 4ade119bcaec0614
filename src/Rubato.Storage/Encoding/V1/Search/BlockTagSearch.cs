using Rubato.Storage.Backend;
using Rubato.TraceQL;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;

namespace Rubato.Storage.Encoding.V1.Search;

/// <summary>
/// Tag names and tag values of a <c>vRubato1</c> block (Tempo's <c>/api/v2/search/tags</c> and
/// <c>/api/v2/search/tag/{tag}/values</c>), fed into the engine's <see cref="TagNamesCollector"/> /
/// <see cref="TagValuesCollector"/> so per-block results combine with live data and other blocks.
/// </summary>
/// <remarks>
/// Names come from the attribute key dictionaries and count columns only (resource/scope keys count only for owners
/// that have spans, as a span-by-span walk would see them). Values of scoped attributes come from the key, type and
/// value columns of that level; values of dictionary intrinsics (name, statusMessage, event:name, instrumentation
/// name/version, trace root name/service) and byte intrinsics (status, kind) come from the dictionary/column of
/// entries actually used. Other tags (unscoped <c>.x</c>, numeric and id intrinsics) run a column scan that reads just
/// that field. A time range (unix ns, 0/0 = none) skips row groups by footer statistics only. Results equal the
/// collectors fed with every span of the block. Runs on the caller's thread; not thread-safe per collector.
/// </remarks>
public static class BlockTagSearch
{
    private static readonly TraceInfo s_probeTrace = new();

    /// <summary>Adds the block's attribute names (per scope) to <paramref name="collector"/>.</summary>
    public static async Task CollectTagNamesAsync(BackendBlockV1 block, TagNamesCollector collector, long startUnixNanos, long endUnixNanos, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(collector);
        var levels = new List<AttrLevel>();
        foreach (var (scope, level) in new[] { ("span", AttrLevel.Span), ("resource", AttrLevel.Resource), ("event", AttrLevel.Event), ("link", AttrLevel.Link), ("instrumentation", AttrLevel.Scope) })
        {
            if (collector.Scope is null || collector.Scope == scope)
            {
                levels.Add(level);
            }
        }

        if (levels.Count == 0)
        {
            return;
        }

        string key = ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName);
        foreach (var rg in await block.GetFooterAsync(ct).ConfigureAwait(false))
        {
            if (collector.IsFull)
            {
                return;
            }

            if (!InRange(rg, startUnixNanos, endUnixNanos))
            {
                continue;
            }

            var cols = new HashSet<int>(ColumnScan.StructureColumns);
            foreach (var l in levels)
            {
                CondPlan.AddAttrKeyColumns(l, cols);
            }

            var data = await block.ReadColumnsAsync(rg, cols, null, ct).ConfigureAwait(false);
            using var scan = new ColumnScan(data, key);
            scan.DecodeStructure();
            foreach (var level in levels)
            {
                var bag = new AttributeBag();
                foreach (int id in UsedIds(scan, level, Col.Attr(level, Col.AttrKey)))
                {
                    bag.Add(scan.DictString(Col.Attr(level, Col.AttrKey), id), TraceQLValue.Nil);
                }

                if (bag.Count > 0)
                {
                    collector.Add(Probe(level, bag));
                }
            }
        }
    }

    /// <summary>Adds the block's distinct typed values of <paramref name="collector"/>'s tag; stops early once it is full.</summary>
    public static async Task CollectTagValuesAsync(BackendBlockV1 block, TagValuesCollector collector, long startUnixNanos, long endUnixNanos, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(collector);
        var field = ParseField(collector.Tag);
        AttrLevel? level = field switch
        {
            AttributeExpr { Scope: AttributeScope.Span } => AttrLevel.Span,
            AttributeExpr { Scope: AttributeScope.Resource } => AttrLevel.Resource,
            AttributeExpr { Scope: AttributeScope.Instrumentation } => AttrLevel.Scope,
            AttributeExpr { Scope: AttributeScope.Event } => AttrLevel.Event,
            AttributeExpr { Scope: AttributeScope.Link } => AttrLevel.Link,
            _ => null,
        };
        (int Col, AttrLevel Owner, Func<string, EvalSpan> Probe)? dictIntrinsic = field is IntrinsicExpr ie ? DictIntrinsic(ie.Intrinsic) : null;
        int? byteCol = field is IntrinsicExpr { Intrinsic: Intrinsic.Status } ? Col.SpanStatusCode
            : field is IntrinsicExpr { Intrinsic: Intrinsic.Kind } ? Col.SpanKind : null;
        if (level is null && dictIntrinsic is null && byteCol is null)
        {
            await ScanValuesAsync(block, field, collector, startUnixNanos, endUnixNanos, ct).ConfigureAwait(false);
            return;
        }

        string key = ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName);
        foreach (var rg in await block.GetFooterAsync(ct).ConfigureAwait(false))
        {
            if (collector.IsFull)
            {
                return;
            }

            if (!InRange(rg, startUnixNanos, endUnixNanos))
            {
                continue;
            }

            var cols = new HashSet<int>(ColumnScan.StructureColumns);
            if (level is { } l)
            {
                CondPlan.AddAttrKeyColumns(l, cols);
            }
            else if (dictIntrinsic is { } di)
            {
                cols.Add(di.Col);
                if (di.Owner == AttrLevel.Event)
                {
                    cols.Add(Col.SpanEventCount);
                }
            }
            else
            {
                cols.Add(byteCol!.Value);
            }

            var data = await block.ReadColumnsAsync(rg, cols, null, ct).ConfigureAwait(false);
            using var scan = new ColumnScan(data, key);
            scan.DecodeStructure();
            if (level is { } lv)
            {
                await CollectAttributeValuesAsync(block, rg, scan, lv, ((AttributeExpr)field).Name, collector, ct).ConfigureAwait(false);
            }
            else if (dictIntrinsic is { } di)
            {
                foreach (int id in UsedIds(scan, di.Owner, di.Col))
                {
                    collector.Add(di.Probe(scan.DictString(di.Col, id)));
                }
            }
            else
            {
                var seen = new bool[256];
                foreach (byte b in data.Raw(byteCol!.Value))
                {
                    if (!seen[b])
                    {
                        seen[b] = true;
                        collector.Add(byteCol == Col.SpanStatusCode
                            ? new EvalSpan { Trace = s_probeTrace, Status = (SpanStatus)b }
                            : new EvalSpan { Trace = s_probeTrace, Kind = (SpanKind)b });
                    }
                }
            }
        }
    }

    private static async Task CollectAttributeValuesAsync(BackendBlockV1 block, RowGroupStats rg, ColumnScan scan, AttrLevel level, string name, TagValuesCollector collector, CancellationToken ct)
    {
        int keyCol = Col.Attr(level, Col.AttrKey);
        int keyId = scan.FindInDict(keyCol, System.Text.Encoding.UTF8.GetBytes(name));
        if (keyId < 0)
        {
            return;
        }

        // Only the value columns of the types this key has in the row group.
        var owners = OwnersWithSpans(scan, level);
        var st = scan.AttrStart(level);
        var keys = scan.Ids(keyCol);
        var types = scan.Columns.Raw(Col.Attr(level, Col.AttrType));
        var valueCols = new HashSet<int>();
        for (int o = 0; o < owners.Length; o++)
        {
            for (int a = st[o]; owners[o] && a < st[o + 1]; a++)
            {
                if (keys[a] == keyId)
                {
                    valueCols.Add((Rubato.Common.Model.AnyValueKind)types[a] switch
                    {
                        Rubato.Common.Model.AnyValueKind.String => Col.Attr(level, Col.AttrString),
                        Rubato.Common.Model.AnyValueKind.Bool or Rubato.Common.Model.AnyValueKind.Int => Col.Attr(level, Col.AttrInt),
                        Rubato.Common.Model.AnyValueKind.Double => Col.Attr(level, Col.AttrDouble),
                        _ => Col.Attr(level, Col.AttrBlob),
                    });
                }
            }
        }

        await block.ReadColumnsAsync(rg, valueCols, scan.Columns, ct).ConfigureAwait(false);
        var seen = new HashSet<TraceQLValue>();
        for (int o = 0; o < owners.Length && !collector.IsFull; o++)
        {
            for (int a = st[o]; owners[o] && a < st[o + 1]; a++)
            {
                if (keys[a] == keyId && (Rubato.Common.Model.AnyValueKind)types[a] is not (Rubato.Common.Model.AnyValueKind.Bytes or Rubato.Common.Model.AnyValueKind.KvList or Rubato.Common.Model.AnyValueKind.Empty))
                {
                    var v = scan.AttrValue(level, a);
                    if (seen.Add(v))
                    {
                        var bag = new AttributeBag(1);
                        bag.Add(name, v);
                        collector.Add(Probe(level, bag));
                    }
                }
            }
        }
    }

    /// <summary>Fallback: a column scan of every span that reads just <paramref name="field"/>.</summary>
    private static async Task ScanValuesAsync(BackendBlockV1 block, FieldExpr field, TagValuesCollector collector, long start, long end, CancellationToken ct)
    {
        var fieldRef = field switch
        {
            AttributeExpr a => FieldRef.ForAttribute(a.Scope, a.Name),
            IntrinsicExpr i => FieldRef.ForIntrinsic(i.Intrinsic),
            _ => throw new ArgumentException($"'{collector.Tag}' is not an attribute or intrinsic", nameof(collector)),
        };
        var request = new FetchSpansRequest
        {
            StartUnixNanos = start,
            EndUnixNanos = end,
            SecondPassFields = [fieldRef],
            NeedsStructure = field is IntrinsicExpr { Intrinsic: Intrinsic.ChildCount or Intrinsic.NestedSetLeft or Intrinsic.NestedSetRight or Intrinsic.NestedSetParent },
        };
        var fetcher = new BlockSpansetFetcher(block);
        await foreach (var set in fetcher.FetchAsync(request, ct).ConfigureAwait(false))
        {
            foreach (var s in set.Spans)
            {
                collector.Add(s);
            }

            if (collector.IsFull)
            {
                return;
            }
        }
    }

    private static (int Col, AttrLevel Owner, Func<string, EvalSpan> Probe)? DictIntrinsic(Intrinsic i) => i switch
    {
        Intrinsic.Name => (Col.SpanName, AttrLevel.Span, v => new EvalSpan { Trace = s_probeTrace, Name = v }),
        Intrinsic.StatusMessage => (Col.SpanStatusMessage, AttrLevel.Span, v => new EvalSpan { Trace = s_probeTrace, StatusMessage = v }),
        Intrinsic.EventName => (Col.EventName, AttrLevel.Event, v => new EvalSpan { Trace = s_probeTrace, Events = [new EvalEvent { Name = v }] }),
        Intrinsic.InstrumentationName => (Col.ScopeName, AttrLevel.Scope, v => new EvalSpan { Trace = s_probeTrace, ScopeName = v }),
        Intrinsic.InstrumentationVersion => (Col.ScopeVersion, AttrLevel.Scope, v => new EvalSpan { Trace = s_probeTrace, ScopeVersion = v }),
        Intrinsic.TraceRootName => (Col.TraceRootSpanName, AttrLevel.Resource, v => new EvalSpan { Trace = new TraceInfo { RootSpanName = v } }),
        Intrinsic.TraceRootService => (Col.TraceRootService, AttrLevel.Resource, v => new EvalSpan { Trace = new TraceInfo { RootServiceName = v } }),
        _ => null,
    };

    /// <summary>
    /// Dictionary ids used by rows whose owner has spans. <paramref name="ownerLevel"/> names the row level of the
    /// dictionary column: span/event/link rows always belong to a span; resource/scope rows only when they hold spans;
    /// trace-level columns (root name/service) are passed as Resource and filtered to traces with spans.
    /// </summary>
    private static IEnumerable<int> UsedIds(ColumnScan scan, AttrLevel ownerLevel, int col)
    {
        var ids = scan.Ids(col);
        int n = scan.DictCount(col);
        var used = new bool[n];
        bool isAttrKey = col == Col.Attr(ownerLevel, Col.AttrKey);
        if (col is Col.TraceRootSpanName or Col.TraceRootService)
        {
            for (int t = 0; t < scan.TraceCount; t++)
            {
                if (scan.TraceSpanStart(t + 1) > scan.TraceSpanStart(t))
                {
                    used[ids[t]] = true;
                }
            }
        }
        else
        {
            var owners = OwnersWithSpans(scan, ownerLevel);
            var st = isAttrKey ? scan.AttrStart(ownerLevel) : null;
            for (int o = 0; o < owners.Length; o++)
            {
                if (!owners[o])
                {
                    continue;
                }

                if (st is null)
                {
                    used[ids[o]] = true;
                }
                else
                {
                    for (int a = st[o]; a < st[o + 1]; a++)
                    {
                        used[ids[a]] = true;
                    }
                }
            }
        }

        for (int i = 0; i < n; i++)
        {
            if (used[i])
            {
                yield return i;
            }
        }
    }

    /// <summary>Per owner row of a level: whether a span-by-span walk reaches it.</summary>
    private static bool[] OwnersWithSpans(ColumnScan scan, AttrLevel level)
    {
        int owners = scan.OwnerCount(level);
        var result = new bool[owners];
        switch (level)
        {
            case AttrLevel.Resource:
                for (int s = 0; s < scan.SpanCount; s++)
                {
                    result[scan.SpanResource(s)] = true;
                }

                break;
            case AttrLevel.Scope:
                for (int s = 0; s < scan.SpanCount; s++)
                {
                    result[scan.SpanScope(s)] = true;
                }

                break;
            default:
                Array.Fill(result, true);
                break;
        }

        return result;
    }

    private static EvalSpan Probe(AttrLevel level, AttributeBag bag) => level switch
    {
        AttrLevel.Span => new EvalSpan { Trace = s_probeTrace, Attributes = bag },
        AttrLevel.Resource => new EvalSpan { Trace = s_probeTrace, ResourceAttributes = bag },
        AttrLevel.Scope => new EvalSpan { Trace = s_probeTrace, ScopeAttributes = bag },
        AttrLevel.Event => new EvalSpan { Trace = s_probeTrace, Events = [new EvalEvent { Attributes = bag }] },
        _ => new EvalSpan { Trace = s_probeTrace, Links = [new EvalLink { Attributes = bag }] },
    };

    private static bool InRange(RowGroupStats rg, long start, long end) =>
        end <= 0 || (rg.MinStartUnixNano <= (ulong)end && rg.MaxEndUnixNano >= (ulong)start);

    private static FieldExpr ParseField(string tag)
    {
        try
        {
            var root = TraceQLParser.Parse("{ " + tag + " != nil }");
            if ((root.SearchPipeline?.Elements.FirstOrDefault() as SpansetFilter)?.Expression is UnaryExpr { Op: UnaryOp.Exists, Operand: AttributeExpr or IntrinsicExpr } u)
            {
                return u.Operand;
            }
        }
        catch (TraceQLException e)
        {
            throw new ArgumentException($"'{tag}' is not a TraceQL attribute or intrinsic name: {e.Message}", nameof(tag), e);
        }

        throw new ArgumentException($"'{tag}' is not a TraceQL attribute or intrinsic name", nameof(tag));
    }
}
