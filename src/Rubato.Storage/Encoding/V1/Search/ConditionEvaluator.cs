using System.Buffers;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.Storage.Encoding.V1.Search;

/// <summary>
/// Column-wise evaluation of one condition over every span of a row group: the per-span result is
/// <see cref="Condition.CouldMatch(EvalSpan)"/>'s, computed without building spans. Strings are tested once per
/// dictionary entry (UTF-8 byte comparison for <c>=</c>, no string decoded), then looked up by id per row; byte columns
/// (status, kind) through a 256-entry table; numeric columns directly. Event/link fields: any event/link of the span,
/// or nil when it has none. Allocation: a few rented arrays per call; strings only for id/hex comparisons.
/// </summary>
internal static class ConditionEvaluator
{
    public static void Evaluate(CondPlan c, ColumnScan scan, Span<bool> result)
    {
        var cond = c.Condition;
        int spans = result.Length;
        switch (c.Kind)
        {
            case CondKind.PassThrough:
                result.Fill(true);
                break;
            case CondKind.Duration:
                {
                    var d = scan.Longs(Col.SpanDuration);
                    for (int s = 0; s < spans; s++)
                    {
                        result[s] = cond.CouldMatch(TraceQLValue.FromDuration(d[s]));
                    }

                    break;
                }

            case CondKind.Name:
                PerRowDict(c, scan, Col.SpanName, spans, static (_, row) => row, result);
                break;
            case CondKind.StatusMessage:
                PerRowDict(c, scan, Col.SpanStatusMessage, spans, static (_, row) => row, result);
                break;
            case CondKind.ScopeName:
                PerRowDict(c, scan, Col.ScopeName, spans, static (sc, row) => sc.SpanScope(row), result);
                break;
            case CondKind.ScopeVersion:
                PerRowDict(c, scan, Col.ScopeVersion, spans, static (sc, row) => sc.SpanScope(row), result);
                break;
            case CondKind.TraceRootName:
                PerRowDict(c, scan, Col.TraceRootSpanName, spans, static (sc, row) => sc.SpanTrace(row), result);
                break;
            case CondKind.TraceRootService:
                PerRowDict(c, scan, Col.TraceRootService, spans, static (sc, row) => sc.SpanTrace(row), result);
                break;
            case CondKind.Status or CondKind.Kind:
                {
                    int col = c.Kind == CondKind.Status ? Col.SpanStatusCode : Col.SpanKind;
                    Span<bool> table = stackalloc bool[256];
                    for (int b = 0; b < 256; b++)
                    {
                        table[b] = cond.CouldMatch(c.Kind == CondKind.Status
                            ? TraceQLValue.FromStatus((SpanStatus)b)
                            : TraceQLValue.FromKind((TraceQL.Ast.SpanKind)b));
                    }

                    var raw = scan.Columns.Raw(col);
                    if (raw.Length != spans)
                    {
                        throw scan.Corrupt(col, $"holds {raw.Length} values for {spans} spans");
                    }

                    for (int s = 0; s < spans; s++)
                    {
                        result[s] = table[raw[s]];
                    }

                    break;
                }

            case CondKind.SpanId:
                for (int s = 0; s < spans; s++)
                {
                    result[s] = cond.CouldMatch(TraceQLValue.FromString(new SpanId(scan.SpanIdAt(Col.SpanId, s)).ToHex()));
                }

                break;
            case CondKind.ParentId:
                for (int s = 0; s < spans; s++)
                {
                    ulong p = scan.SpanIdAt(Col.SpanParentId, s);
                    result[s] = p == 0 ? c.NilMatches : cond.CouldMatch(TraceQLValue.FromString(new SpanId(p).ToHex()));
                }

                break;
            case CondKind.TraceDuration or CondKind.TraceId:
                {
                    // Trace-level: evaluated once per trace, then broadcast to the trace's spans.
                    int traces = scan.TraceCount;
                    bool[] perTrace = ArrayPool<bool>.Shared.Rent(Math.Max(1, traces));
                    try
                    {
                        for (int t = 0; t < traces; t++)
                        {
                            perTrace[t] = cond.CouldMatch(c.Kind == CondKind.TraceDuration
                                ? TraceQLValue.FromDuration((long)scan.TraceDuration(t))
                                : TraceQLValue.FromString(scan.TraceIdAt(Col.TraceId, t).ToHex()));
                        }

                        for (int s = 0; s < spans; s++)
                        {
                            result[s] = perTrace[scan.SpanTrace(s)];
                        }
                    }
                    finally
                    {
                        ArrayPool<bool>.Shared.Return(perTrace);
                    }

                    break;
                }

            case CondKind.EventName or CondKind.EventTime:
                {
                    var starts = scan.EventStart;
                    int events = starts[spans];
                    bool[] perEvent = ArrayPool<bool>.Shared.Rent(Math.Max(1, events));
                    try
                    {
                        if (c.Kind == CondKind.EventName)
                        {
                            DictMatches(c, scan, Col.EventName, events, perEvent);
                        }
                        else
                        {
                            var d = scan.Longs(Col.EventTimeDelta);
                            for (int e = 0; e < events; e++)
                            {
                                perEvent[e] = cond.CouldMatch(TraceQLValue.FromDuration(d[e]));
                            }
                        }

                        AnyChild(starts, perEvent, c.NilMatches, result);
                    }
                    finally
                    {
                        ArrayPool<bool>.Shared.Return(perEvent);
                    }

                    break;
                }

            case CondKind.LinkTraceId or CondKind.LinkSpanId:
                {
                    var starts = scan.LinkStart;
                    int links = starts[spans];
                    bool[] perLink = ArrayPool<bool>.Shared.Rent(Math.Max(1, links));
                    try
                    {
                        for (int l = 0; l < links; l++)
                        {
                            string hex = c.Kind == CondKind.LinkTraceId
                                ? scan.TraceIdAt(Col.LinkTraceId, l).ToHex()
                                : new SpanId(scan.SpanIdAt(Col.LinkSpanId, l)).ToHex();
                            perLink[l] = cond.CouldMatch(TraceQLValue.FromString(hex));
                        }

                        AnyChild(starts, perLink, c.NilMatches, result);
                    }
                    finally
                    {
                        ArrayPool<bool>.Shared.Return(perLink);
                    }

                    break;
                }

            case CondKind.Attr:
                EvaluateAttr(c, scan, result);
                break;
            default:
                result.Fill(true);
                break;
        }
    }

    /// <summary>Per span: any child row (event/link) matches; nil result for spans without children.</summary>
    private static void AnyChild(int[] starts, bool[] perChild, bool nilMatches, Span<bool> result)
    {
        for (int s = 0; s < result.Length; s++)
        {
            int from = starts[s], to = starts[s + 1];
            if (from == to)
            {
                result[s] = nilMatches;
                continue;
            }

            bool any = false;
            for (int i = from; i < to && !any; i++)
            {
                any = perChild[i];
            }

            result[s] = any;
        }
    }

    /// <summary>Per-row results of a dictionary column: the condition is tested once per dictionary entry.</summary>
    private static void DictMatches(CondPlan c, ColumnScan scan, int col, int rows, Span<bool> result)
    {
        bool[] byId = DictTable(c, scan, col, out _);
        try
        {
            var ids = scan.Ids(col);
            for (int r = 0; r < rows; r++)
            {
                result[r] = byId[ids[r]];
            }
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(byId);
        }
    }

    private static void PerRowDict(CondPlan c, ColumnScan scan, int col, int spans, Func<ColumnScan, int, int> rowOf, Span<bool> result)
    {
        bool[] byId = DictTable(c, scan, col, out _);
        try
        {
            var ids = scan.Ids(col);
            for (int s = 0; s < spans; s++)
            {
                result[s] = byId[ids[rowOf(scan, s)]];
            }
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(byId);
        }
    }

    /// <summary>CouldMatch per dictionary entry (rented; caller returns it).</summary>
    private static bool[] DictTable(CondPlan c, ColumnScan scan, int col, out int n)
    {
        n = scan.DictCount(col);
        bool[] byId = ArrayPool<bool>.Shared.Rent(Math.Max(1, n));
        for (int i = 0; i < n; i++)
        {
            byId[i] = c.EqualUtf8 is { } eq
                ? scan.DictBytes(col, i).SequenceEqual(eq)
                : c.Condition.CouldMatch(TraceQLValue.FromString(scan.DictString(col, i)));
        }

        return byId;
    }

    private static void EvaluateAttr(CondPlan c, ColumnScan scan, Span<bool> result)
    {
        int spans = result.Length;
        var level = c.Level;
        int owners = scan.OwnerCount(level);
        bool[] match = ArrayPool<bool>.Shared.Rent(Math.Max(1, owners));
        bool[] has = ArrayPool<bool>.Shared.Rent(Math.Max(1, owners));
        bool[]? resMatch = null;
        try
        {
            OwnerMatches(c, scan, level, owners, match, has);
            switch (level)
            {
                case AttrLevel.Span when c.Unscoped:
                    {
                        int resources = scan.ResourceCount;
                        resMatch = ArrayPool<bool>.Shared.Rent(Math.Max(1, resources));
                        bool[] resHas = ArrayPool<bool>.Shared.Rent(Math.Max(1, resources));
                        try
                        {
                            OwnerMatches(c, scan, AttrLevel.Resource, resources, resMatch, resHas);
                        }
                        finally
                        {
                            ArrayPool<bool>.Shared.Return(resHas);
                        }

                        for (int s = 0; s < spans; s++)
                        {
                            result[s] = has[s] ? match[s] : resMatch[scan.SpanResource(s)];
                        }

                        break;
                    }

                case AttrLevel.Span:
                    match.AsSpan(0, spans).CopyTo(result);
                    break;
                case AttrLevel.Resource:
                    for (int s = 0; s < spans; s++)
                    {
                        result[s] = match[scan.SpanResource(s)];
                    }

                    break;
                case AttrLevel.Scope:
                    for (int s = 0; s < spans; s++)
                    {
                        result[s] = match[scan.SpanScope(s)];
                    }

                    break;
                case AttrLevel.Event:
                    AnyChild(scan.EventStart, match, c.NilMatches, result);
                    break;
                default:
                    AnyChild(scan.LinkStart, match, c.NilMatches, result);
                    break;
            }
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(match);
            ArrayPool<bool>.Shared.Return(has);
            if (resMatch is not null)
            {
                ArrayPool<bool>.Shared.Return(resMatch);
            }
        }
    }

    /// <summary>
    /// Per owner row: whether it has the key (first attribute with the key wins) and whether that value (or nil) could
    /// match. A key missing from the key dictionary settles the whole level without touching a value column.
    /// </summary>
    private static void OwnerMatches(CondPlan c, ColumnScan scan, AttrLevel level, int owners, bool[] match, bool[] has)
    {
        int keyCol = Col.Attr(level, Col.AttrKey);
        int keyId = scan.FindInDict(keyCol, c.KeyUtf8);
        if (keyId < 0)
        {
            Array.Fill(match, c.NilMatches, 0, owners);
            Array.Fill(has, false, 0, owners);
            return;
        }

        var st = scan.AttrStart(level);
        var keys = scan.Ids(keyCol);
        var types = scan.Columns.Raw(Col.Attr(level, Col.AttrType));
        var valueIndex = scan.ValueIndex(level);
        int strCol = Col.Attr(level, Col.AttrString);
        bool[]? strTable = null;
        int[]? strIds = null;
        bool[]? svcTable = null;
        int[]? svcIds = null;
        try
        {
            for (int o = 0; o < owners; o++)
            {
                bool found = false, m = c.NilMatches;
                for (int a = st[o]; a < st[o + 1]; a++)
                {
                    if (keys[a] != keyId)
                    {
                        continue;
                    }

                    found = true;
                    if ((AnyValueKind)types[a] == AnyValueKind.String && level == AttrLevel.Resource && keyId == scan.ServiceNameKeyId)
                    {
                        // The first service.name of the resource, a string: resource.service_name holds its value.
                        svcTable ??= DictTable(c, scan, Col.ResourceServiceName, out _);
                        svcIds ??= scan.Ids(Col.ResourceServiceName);
                        m = svcTable[svcIds[o]];
                    }
                    else if ((AnyValueKind)types[a] == AnyValueKind.String)
                    {
                        strTable ??= DictTable(c, scan, strCol, out _);
                        strIds ??= scan.Ids(strCol);
                        m = strTable[strIds[valueIndex[a]]];
                    }
                    else
                    {
                        m = c.Condition.CouldMatch(scan.AttrValue(level, a, o));
                    }

                    break;
                }

                has[o] = found;
                match[o] = m;
            }
        }
        finally
        {
            if (strTable is not null)
            {
                ArrayPool<bool>.Shared.Return(strTable);
            }

            if (svcTable is not null)
            {
                ArrayPool<bool>.Shared.Return(svcTable);
            }
        }
    }
}
