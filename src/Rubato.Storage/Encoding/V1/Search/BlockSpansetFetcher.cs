using System.Buffers;
using System.Runtime.CompilerServices;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.Storage.Encoding.V1.Search;

/// <summary>
/// TraceQL scan of one <c>vRubato1</c> block with predicate pushdown (<see cref="ISpansetFetcher"/>).
/// </summary>
/// <remarks>
/// Per row group, in order:
/// <list type="number">
/// <item>Footer statistics: skip when the time range misses the row group or a duration comparison cannot hold
/// (with <see cref="FetchSpansRequest.AllConditions"/> false only when no condition can hold). No data read.</item>
/// <item>Filter columns: range-read only the count columns and the columns of the conditions; test each condition
/// column-wise (strings once per dictionary entry, then per row by id; typed numeric columns directly; attribute
/// values of other types only for rows with the wanted key). No candidate span → the row group is done.</item>
/// <item>Fill columns: range-read the columns the returned spans need (ids, name, times, status, kind, the
/// condition and second-pass fields) and build <see cref="EvalSpan"/>s for candidate spans only, with the trace's
/// <see cref="TraceInfo"/> (service stats over the whole trace) and, for structural queries, nested-set numbers over
/// the whole trace. Under <see cref="FetchSpansRequest.OnlyNamedFields"/> (metrics) name, status, service name, root
/// names and service stats are filled only when named, and their columns are not read. Spansets are built one trace
/// at a time as the engine pulls them; the row group's buffers are released when it is done or the enumerator is
/// disposed.</item>
/// </list>
/// Results equal <see cref="TraceModelFetcher"/>'s over the same traces (in trace-id order) for every query.
/// Thread model: the engine enumerates on one thread; an instance may be reused for consecutive fetches but not
/// concurrently. Counters accumulate over all fetches of the instance.
/// </remarks>
public sealed class BlockSpansetFetcher : ISpansetFetcher, IFetchStatistics
{
    private readonly BackendBlockV1 _block;
    private readonly bool _usePostings;
    private long _inspectedBytes;

    public BlockSpansetFetcher(BackendBlockV1 block)
        : this(block, usePostings: true)
    {
    }

    /// <param name="block">The block to scan.</param>
    /// <param name="usePostings">
    /// Whether attribute conditions may be answered from the block's <c>postings</c> object (when it has one); false
    /// reads the attribute columns as blocks without postings do (same results, for comparisons).
    /// </param>
    public BlockSpansetFetcher(BackendBlockV1 block, bool usePostings)
    {
        _block = block ?? throw new ArgumentNullException(nameof(block));
        DataKey = ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName);
        PostingsKey = ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, Postings.ObjectName);
        _usePostings = usePostings && block.HasPostings;
    }

    /// <summary>
    /// Bytes (stored, compressed) read from the data object (column chunks, page indexes, pages) and the postings object
    /// (<see cref="PostingsBytes"/>). The footer, cached per block, is not counted.
    /// </summary>
    public ulong InspectedBytes => (ulong)Interlocked.Read(ref _inspectedBytes);

    /// <summary>Bytes read from the postings object (row-group table when this fetcher loaded it, directories, postings).</summary>
    public long PostingsBytes { get; private set; }

    /// <summary>Range requests issued for column chunks and pages.</summary>
    public int Reads { get; private set; }

    /// <summary>Bytes read per column (<see cref="Col"/>) while finding candidates (dictionaries, filter columns).</summary>
    public long[] FilterBytesByColumn { get; } = new long[Col.Count];

    /// <summary>Bytes read per column while filling candidate spans (the second pass).</summary>
    public long[] FillBytesByColumn { get; } = new long[Col.Count];

    /// <summary>Row groups skipped from footer statistics alone (no chunk read).</summary>
    public int RowGroupsSkippedByStats { get; private set; }

    /// <summary>
    /// Row groups skipped from dictionaries alone: an attribute key of the conditions is in none of their key
    /// dictionaries, a string intrinsic's dictionary lacks the <c>=</c> operand, or a condition answered by the
    /// postings directory accepts none of the key's values there.
    /// </summary>
    public int RowGroupsSkippedByDictionary { get; private set; }

    /// <summary>Row groups whose filter columns showed no candidate span (fill columns never read).</summary>
    public int RowGroupsWithoutCandidates { get; private set; }

    /// <summary>Row groups whose spans were filled and returned.</summary>
    public int RowGroupsScanned { get; private set; }

    private string DataKey { get; }

    private string PostingsKey { get; }

    public async IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var plan = new SearchPlan(request);
        if (!OverlapsBlock(request))
        {
            yield break;
        }

        var footer = await _block.GetFooterAsync(cancellationToken).ConfigureAwait(false);
        for (int rgIndex = 0; rgIndex < footer.Count; rgIndex++)
        {
            var rg = footer[rgIndex];
            cancellationToken.ThrowIfCancellationRequested();
            if (!CouldMatchByStats(plan, rg))
            {
                RowGroupsSkippedByStats++;
                continue;
            }

            // Spansets are built one trace at a time as the engine pulls them, so they die young (metrics keep no span):
            // building a whole row group's first kept ~25 MB of spans alive per job, and every collection promoted them.
            var fill = await ScanRowGroupAsync(plan, rg, rgIndex, cancellationToken).ConfigureAwait(false);
            if (fill is null)
            {
                continue;
            }

            try
            {
                foreach (var s in fill.Spansets())
                {
                    yield return s;
                }
            }
            finally
            {
                fill.Dispose();
            }
        }
    }

    private bool OverlapsBlock(FetchSpansRequest request)
    {
        if (request.EndUnixNanos <= 0)
        {
            return true;
        }

        // meta times are whole seconds (start floored, end ceiled), so this never drops an overlapping block.
        long startNs = _block.Meta.StartTime.ToUnixTimeSeconds() * 1_000_000_000L;
        long endNs = _block.Meta.EndTime.ToUnixTimeSeconds() * 1_000_000_000L;
        return startNs <= request.EndUnixNanos && endNs >= request.StartUnixNanos;
    }

    private static bool CouldMatchByStats(SearchPlan plan, RowGroupStats rg)
    {
        var req = plan.Request;
        if (req.EndUnixNanos > 0 && (rg.MinStartUnixNano > (ulong)req.EndUnixNanos || rg.MaxEndUnixNano < (ulong)req.StartUnixNanos))
        {
            return false;
        }

        if (plan.Everything || plan.Conds.Length == 0)
        {
            return true;
        }

        foreach (var c in plan.Conds)
        {
            bool can = c.CouldMatchRowGroup(rg);
            if (plan.All && !can)
            {
                return false;
            }

            if (!plan.All && can)
            {
                return true;
            }
        }

        return plan.All;
    }

    /// <summary>
    /// Scans one row group: first the postings of the conditions they can answer (<see cref="PostingsAnswers"/>), then
    /// the columns of the others (<see cref="ScanColumnsAsync"/>).
    /// </summary>
    /// <returns>The row group's spansets to build (the caller disposes it), or null when it has no candidate.</returns>
    private async Task<RowGroupFill?> ScanRowGroupAsync(SearchPlan plan, RowGroupStats rg, int rgIndex, CancellationToken ct)
    {
        var stats = new PostingsReadStats();
        PostingsAnswers? answers = null;
        try
        {
            // Under '||' a row group with any candidate needs its attribute columns for the fill anyway (values come
            // from postings only under '&&'), so postings pay off only when they can rule the whole row group out:
            // when every condition is one they may answer.
            if (_usePostings && !plan.Everything && (plan.All || plan.Conds.All(PostingsAnswers.Eligible)))
            {
                answers = await PostingsAnswers.ReadAsync(_block, plan, rgIndex, stats, ct).ConfigureAwait(false);
                if (answers is not null && !answers.Any)
                {
                    answers.Dispose();
                    answers = null;
                }
            }

            if (answers is not null && !PostingsCouldMatch(plan, answers))
            {
                // An answered condition matches no owner of the row group and the others cannot make up for it.
                RowGroupsSkippedByDictionary++;
                return null;
            }

            var fill = await ScanColumnsAsync(plan, rg, answers, ct).ConfigureAwait(false);
            if (fill is not null)
            {
                fill.Answers = answers; // the filler may read values from them: disposed with the fill
                answers = null;
            }

            return fill;
        }
        finally
        {
            answers?.Dispose();
            Interlocked.Add(ref _inspectedBytes, stats.Bytes);
            PostingsBytes += stats.Bytes;
            Reads += stats.Reads;
        }
    }

    /// <summary>Whether the row group can hold a candidate given the answered conditions' matches (others: could).</summary>
    private static bool PostingsCouldMatch(SearchPlan plan, PostingsAnswers answers)
    {
        for (int i = 0; i < plan.Conds.Length; i++)
        {
            bool can = !answers.Answered(i) || answers.AnyMatch(i, plan.Conds[i]);
            if (plan.All && !can)
            {
                return false;
            }

            if (!plan.All && can)
            {
                return true;
            }
        }

        return plan.All;
    }

    private async Task<RowGroupFill?> ScanColumnsAsync(SearchPlan plan, RowGroupStats rg, PostingsAnswers? answers, CancellationToken ct)
    {
        // Phase 0: dictionaries. A condition on an attribute key that no key dictionary of the row group holds can only
        // see nil, and '=' on a string intrinsic whose dictionary lacks the operand matches no row; when such conditions
        // rule out every span, the row group is done after reading just those chunks.
        RowGroupColumns? data = null;
        bool Answered(int i) => answers?.Answered(i) == true;
        if (!plan.Everything && plan.Conds.Where((c, i) => !Answered(i)).Any(c => c.DictionaryColumn(out _)))
        {
            var keyCols = new HashSet<int>();
            foreach (var (c, i) in plan.Conds.Select((c, i) => (c, i)))
            {
                if (!Answered(i) && c.DictionaryColumn(out int col))
                {
                    keyCols.Add(col);
                    if (c.Kind == CondKind.Attr && c.Unscoped)
                    {
                        keyCols.Add(Col.Attr(AttrLevel.Resource, Col.AttrKey));
                    }
                }
            }

            data = await _block.ReadColumnsAsync(rg, keyCols, null, ct).ConfigureAwait(false);
            if (!KeysCouldMatch(plan, data, answers))
            {
                RowGroupsSkippedByDictionary++;
                Interlocked.Add(ref _inspectedBytes, data.BytesRead);
                Reads += data.Reads;
                Accumulate(data.BytesReadByColumn, FilterBytesByColumn, null);
                return null;
            }
        }

        // Phase 1: filter columns.
        var cols = new HashSet<int>(ColumnScan.StructureColumns);
        if (!plan.Everything)
        {
            for (int i = 0; i < plan.Conds.Length; i++)
            {
                if (!Answered(i))
                {
                    plan.Conds[i].AddColumns(cols);
                }
            }
        }

        if (!plan.Everything && cols.Contains(Col.SpanDuration))
        {
            cols.Remove(Col.SpanDuration);
            data ??= new RowGroupColumns(rg);
            await ReadDurationPagesAsync(plan, rg, data, ct).ConfigureAwait(false);
        }

        data = await _block.ReadColumnsAsync(rg, cols, data, ct).ConfigureAwait(false);
        long[]? filterBytes = null;
        var scan = new ColumnScan(data, DataKey);
        bool[]? candidates = null;
        bool handedOver = false;

        // Releases the row group's buffers and counts its bytes: here, or when the caller disposes the fill.
        void Release()
        {
            if (candidates is not null)
            {
                ArrayPool<bool>.Shared.Return(candidates);
            }

            scan.Dispose();
            data.ReturnBuffers(); // the spansets hold copies; nothing refers to the page arrays any more
            Interlocked.Add(ref _inspectedBytes, data.BytesRead);
            Reads += data.Reads;
            Accumulate(data.BytesReadByColumn, FilterBytesByColumn, filterBytes);
        }

        try
        {
            scan.DecodeStructure();
            answers?.Validate(scan, PostingsKey);
            int spans = scan.SpanCount;
            candidates = ArrayPool<bool>.Shared.Rent(Math.Max(1, spans));
            bool any;
            if (plan.Everything)
            {
                Array.Fill(candidates, true, 0, spans);
                any = spans > 0;
            }
            else
            {
                // Value columns of attribute conditions: only the types that rows with the wanted key actually have.
                var valueCols = new HashSet<int>();
                foreach (var c in plan.Conds.Where((c, i) => c.Kind == CondKind.Attr && !Answered(i)))
                {
                    AddValueColumns(scan, c.Level, [c.Condition.Field.Name], valueCols);
                    if (c.Unscoped)
                    {
                        AddValueColumns(scan, AttrLevel.Resource, [c.Condition.Field.Name], valueCols);
                    }
                }

                await _block.ReadColumnsAsync(rg, valueCols, data, ct).ConfigureAwait(false);
                any = Select(plan, scan, answers, candidates.AsSpan(0, spans));
            }

            filterBytes = (long[])data.BytesReadByColumn.Clone();
            if (!any)
            {
                RowGroupsWithoutCandidates++;
                return null;
            }

            // Phase 2: fill columns for the candidates' traces. Count, key and type columns are read whole (prefix sums
            // and value indexes need every row); the value columns only in the pages that hold the candidate traces'
            // rows, unless those are most of the column.
            var traces = CandidateTraces(scan, candidates.AsSpan(0, spans));
            // Attribute levels whose wanted values the postings gave (AND plans): their attribute columns are not read.
            var known = new bool[5];
            for (int l = 0; l < 5; l++)
            {
                known[l] = answers?.KnownLevel(plan, (AttrLevel)l) == true;
            }

            var fill = plan.FillColumns(known);
            await ReadFillAsync(rg, data, scan, fill, traces, candidates, plan.NeedsStructure, ct).ConfigureAwait(false);
            var fillValues = new HashSet<int>();
            for (int l = 0; l < 5; l++)
            {
                if (plan.AttrKeys[l].Count > 0 && !known[l])
                {
                    AddValueColumns(scan, (AttrLevel)l, plan.AttrKeys[l], fillValues);
                }
            }

            await ReadFillAsync(rg, data, scan, fillValues, traces, candidates, plan.NeedsStructure, ct).ConfigureAwait(false);
            RowGroupsScanned++;
            var filler = new SpanFiller(plan, scan, known[..3].Contains(true) ? answers : null, known);
            handedOver = true;
            return new RowGroupFill(filler, candidates, Release);
        }
        finally
        {
            if (!handedOver)
            {
                Release();
            }
        }
    }

    /// <summary>Adds one row group's per-column bytes: up to <paramref name="filter"/> (a snapshot) to the filter pass, the rest to the fill pass.</summary>
    private void Accumulate(long[] total, long[] filterTotals, long[]? filter)
    {
        for (int c = 0; c < Col.Count; c++)
        {
            long f = filter?[c] ?? total[c];
            filterTotals[c] += f;
            FillBytesByColumn[c] += total[c] - f;
        }
    }

    /// <summary>
    /// Reads <c>span.duration</c> for the duration conditions: its header and min/max section first, then only the pages whose min/max
    /// let some duration condition hold (the whole column when that is at least half of the pages). Rows of the pages
    /// left out match no duration condition; <see cref="Select"/> masks them.
    /// </summary>
    private async Task ReadDurationPagesAsync(SearchPlan plan, RowGroupStats rg, RowGroupColumns data, CancellationToken ct)
    {
        // Header and min/max section only; ReadPagesAsync then reads the entries of the chosen pages with them.
        await _block.ReadPageStatsAsync(rg, [Col.SpanDuration], data, ct).ConfigureAwait(false);
        var index = data.PageIndex(Col.SpanDuration)!;
        var pages = new List<int>();
        for (int p = 0; p < index.PageCount; p++)
        {
            var (min, max) = index.Stats(p);
            if (plan.Conds.Any(c => c.Kind == CondKind.Duration && c.CouldMatchDurations(min, max)))
            {
                pages.Add(p);
            }
        }

        if (pages.Count >= WholeColumnRowShare * index.PageCount)
        {
            await _block.ReadColumnsAsync(rg, [Col.SpanDuration], data, ct).ConfigureAwait(false);
        }
        else
        {
            // Even with no page to read, the (empty) sparse column marks every row as not matching.
            data.SparseFor(Col.SpanDuration, index);
            await _block.ReadPagesAsync(rg, [(Col.SpanDuration, pages)], data, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Trace rows with at least one candidate span, ascending.</summary>
    private static List<int> CandidateTraces(ColumnScan scan, ReadOnlySpan<bool> candidates)
    {
        var traces = new List<int>();
        for (int t = 0; t < scan.TraceCount; t++)
        {
            if (candidates[scan.TraceSpanStart(t)..scan.TraceSpanStart(t + 1)].Contains(true))
            {
                traces.Add(t);
            }
        }

        return traces;
    }

    /// <summary>
    /// Reads fill columns for the rows the response needs: whole when the column is a count/key/type/blob column
    /// (decoded over every row) or when the needed rows are at least <see cref="WholeColumnRowShare"/> of the column's
    /// level; otherwise only the pages holding those rows (their page entries first, then the pages, coalesced). The
    /// needed rows are those of the candidate spans for columns only a returned span reads
    /// (<see cref="CandidateOnly"/>), else those of every span of <paramref name="traces"/> (service stats, structure).
    /// </summary>
    private async Task ReadFillAsync(RowGroupStats rg, RowGroupColumns data, ColumnScan scan, IEnumerable<int> columns, List<int> traces, bool[] candidates, bool structure, CancellationToken ct)
    {
        // Count/key/type/blob columns first: the row ranges of the others are computed from them.
        var list = columns.Where(c => !data.Has(c)).ToList();
        await _block.ReadColumnsAsync(rg, list.Where(c => FillLevel(c) < 0), data, ct).ConfigureAwait(false);
        var whole = new List<int>();
        var sparse = new List<(int Column, List<(int From, int To)> Rows)>();
        var rowsByLevel = new Dictionary<int, List<(int From, int To)>>();
        foreach (int c in list)
        {
            int level = FillLevel(c);
            if (level < 0)
            {
                continue;
            }

            bool candidateOnly = CandidateOnly(c, structure);
            if (!rowsByLevel.TryGetValue(candidateOnly ? -1 - level : level, out var rows))
            {
                rows = candidateOnly ? CandidateRows(scan, level, candidates) : LevelRows(scan, level, traces);
                rowsByLevel[candidateOnly ? -1 - level : level] = rows;
            }

            long needed = 0;
            foreach (var (from, to) in rows)
            {
                needed += to - from;
            }

            if (needed >= WholeColumnRowShare * LevelRowCount(scan, level))
            {
                whole.Add(c);
            }
            else if (needed > 0)
            {
                sparse.Add((c, rows));
            }
        }

        await _block.ReadColumnsAsync(rg, whole, data, ct).ConfigureAwait(false);
        if (sparse.Count == 0)
        {
            return;
        }

        // Pages are chosen from the footer's chunk shapes; ReadPagesAsync reads their entries, then them.
        var pages = new List<(int Column, IReadOnlyList<int> Pages)>(sparse.Count);
        foreach (var (c, rows) in sparse)
        {
            pages.Add((c, PageSets.ForRows(rg.Shapes[c], rows)));
        }

        await _block.ReadPagesAsync(rg, pages, data, ct).ConfigureAwait(false);
    }

    /// <summary>Share of a level's rows from which a fill column is read whole rather than page by page.</summary>
    private const double WholeColumnRowShare = 0.5;

    /// <summary>
    /// The row level of a fill column that can be read page by page: 0 trace, 1 resource, 2 scope, 3 span, 4 event,
    /// 5 link, 10 + 8L + which for the string/int/double value column of attribute level L; -1 for columns always
    /// read whole.
    /// </summary>
    private static int FillLevel(int c)
    {
        switch (c)
        {
            case Col.TraceId or Col.TraceStart or Col.TraceEndDelta or Col.TraceRootService or Col.TraceRootSpanName: return 0;
            case Col.ResourceServiceName: return 1;
            case Col.ScopeName or Col.ScopeVersion: return 2;
            case Col.SpanId or Col.SpanParentId or Col.SpanName or Col.SpanKind or Col.SpanStartDelta or Col.SpanDuration
                or Col.SpanStatusCode or Col.SpanStatusMessage: return 3;
            case Col.EventName or Col.EventTimeDelta: return 4;
            case Col.LinkTraceId or Col.LinkSpanId: return 5;
            default:
                if (c >= Col.AttrBase)
                {
                    int which = (c - Col.AttrBase) % Col.AttrColumnsPerLevel;
                    if (which is Col.AttrString or Col.AttrInt or Col.AttrDouble)
                    {
                        return 10 + (8 * ((c - Col.AttrBase) / Col.AttrColumnsPerLevel)) + which;
                    }
                }

                return -1;
        }
    }

    private static int LevelRowCount(ColumnScan scan, int level) => level switch
    {
        0 => scan.TraceCount,
        1 => scan.ResourceCount,
        2 => scan.ScopeCount,
        3 => scan.SpanCount,
        4 => scan.EventStart[scan.SpanCount],
        5 => scan.LinkStart[scan.SpanCount],
        _ => ValueRowCount(scan, (AttrLevel)((level - 10) / 8), (level - 10) % 8),
    };

    /// <summary>Rows of one value column of an attribute level: the attributes of its types.</summary>
    private static int ValueRowCount(ColumnScan scan, AttrLevel level, int which)
    {
        var types = scan.Columns.Raw(Col.Attr(level, Col.AttrType));
        int n = scan.AttrStart(level)[scan.OwnerCount(level)], count = 0;
        for (int a = 0; a < n; a++)
        {
            count += ValueColumnOf((AnyValueKind)types[a]) == which ? 1 : 0;
        }

        return count;
    }

    /// <summary>The value column (<see cref="Col.AttrString"/>, ...) holding values of a kind; -1 for kinds without one read here.</summary>
    private static int ValueColumnOf(AnyValueKind kind) => kind switch
    {
        AnyValueKind.String => Col.AttrString,
        AnyValueKind.Bool or AnyValueKind.Int => Col.AttrInt,
        AnyValueKind.Double => Col.AttrDouble,
        _ => -1,
    };

    /// <summary>Ascending row ranges of <paramref name="level"/> that belong to <paramref name="traces"/>.</summary>
    private static List<(int From, int To)> LevelRows(ColumnScan scan, int level, List<int> traces)
    {
        var rows = new List<(int From, int To)>(traces.Count);
        foreach (int t in traces)
        {
            int spanFrom = scan.TraceSpanStart(t), spanTo = scan.TraceSpanStart(t + 1);
            (int From, int To) r = level switch
            {
                0 => (t, t + 1),
                1 => (scan.ResourceStart(t), scan.ResourceStart(t + 1)),
                2 => (scan.ScopeStartOfTrace(t), scan.ScopeStartOfTrace(t + 1)),
                3 => (spanFrom, spanTo),
                4 => (scan.EventStart[spanFrom], scan.EventStart[spanTo]),
                5 => (scan.LinkStart[spanFrom], scan.LinkStart[spanTo]),
                _ => (0, 0),
            };
            if (level >= 10)
            {
                r = ValueRowsOfTrace(scan, (AttrLevel)((level - 10) / 8), (level - 10) % 8, t, spanFrom, spanTo);
            }

            if (r.To > r.From)
            {
                rows.Add(r);
            }
        }

        return rows;
    }

    /// <summary>
    /// Whether fill column <paramref name="c"/> is read only by the spans returned (the candidates): the span fields
    /// <c>SpanFiller.BuildSpan</c> copies, the candidates' events and links, and span/event/link attribute values.
    /// <c>span.status_code</c> and <c>resource.service_name</c> feed every span's service stats, trace-level columns
    /// every trace, and span ids/parent ids every span when the plan computes nested sets: those stay whole-trace.
    /// </summary>
    private static bool CandidateOnly(int c, bool structure)
    {
        switch (c)
        {
            case Col.SpanName or Col.SpanKind or Col.SpanStartDelta or Col.SpanDuration or Col.SpanStatusMessage
                or Col.EventName or Col.EventTimeDelta or Col.LinkTraceId or Col.LinkSpanId:
                return true;
            case Col.SpanId or Col.SpanParentId:
                return !structure;
            default:
                int level = FillLevel(c);
                return level >= 10 && (AttrLevel)((level - 10) / 8) is AttrLevel.Span or AttrLevel.Event or AttrLevel.Link;
        }
    }

    /// <summary>
    /// Ascending row ranges of <paramref name="level"/> (3 span, 4 event, 5 link, or a span/event/link value column)
    /// that belong to the candidate spans.
    /// </summary>
    private static List<(int From, int To)> CandidateRows(ColumnScan scan, int level, bool[] candidates)
    {
        var rows = new List<(int From, int To)>();
        for (int sp = 0; sp < scan.SpanCount; sp++)
        {
            if (!candidates[sp])
            {
                continue;
            }

            (int From, int To) r = level switch
            {
                3 => (sp, sp + 1),
                4 => (scan.EventStart[sp], scan.EventStart[sp + 1]),
                5 => (scan.LinkStart[sp], scan.LinkStart[sp + 1]),
                _ => ValueRowsOfOwners(scan, (AttrLevel)((level - 10) / 8), (level - 10) % 8, sp, sp + 1),
            };
            if (r.To <= r.From)
            {
                continue;
            }

            if (rows.Count > 0 && r.From <= rows[^1].To)
            {
                rows[^1] = (rows[^1].From, Math.Max(rows[^1].To, r.To));
            }
            else
            {
                rows.Add(r);
            }
        }

        return rows;
    }

    /// <summary>
    /// The rows of value column <paramref name="which"/> holding the attributes owned by trace <paramref name="t"/>:
    /// value columns are dense per type, so one trace's values are contiguous in each.
    /// </summary>
    private static (int From, int To) ValueRowsOfTrace(ColumnScan scan, AttrLevel level, int which, int t, int spanFrom, int spanTo)
    {
        var (o0, o1) = level switch
        {
            AttrLevel.Resource => (scan.ResourceStart(t), scan.ResourceStart(t + 1)),
            AttrLevel.Scope => (scan.ScopeStartOfTrace(t), scan.ScopeStartOfTrace(t + 1)),
            AttrLevel.Span => (spanFrom, spanTo),
            AttrLevel.Event => (scan.EventStart[spanFrom], scan.EventStart[spanTo]),
            _ => (scan.LinkStart[spanFrom], scan.LinkStart[spanTo]),
        };
        return ValueRowsOfOwners(scan, level, which, o0, o1);
    }

    /// <summary>
    /// The rows of value column <paramref name="which"/> holding the attributes of owner rows [o0, o1) of
    /// <paramref name="level"/>: contiguous, since value columns are dense per type in owner order.
    /// </summary>
    private static (int From, int To) ValueRowsOfOwners(ColumnScan scan, AttrLevel level, int which, int o0, int o1)
    {
        if (o1 <= o0)
        {
            return (0, 0);
        }

        var st = scan.AttrStart(level);
        int a0 = st[o0], a1 = st[o1];
        if (a1 <= a0)
        {
            return (0, 0);
        }

        var vi = scan.ValueIndex(level);
        var types = scan.Columns.Raw(Col.Attr(level, Col.AttrType));
        int from = int.MaxValue, to = 0;
        for (int a = a0; a < a1; a++)
        {
            if (ValueColumnOf((AnyValueKind)types[a]) == which)
            {
                from = Math.Min(from, vi[a]);
                to = Math.Max(to, vi[a] + 1);
            }
        }

        return to > from ? (from, to) : (0, 0);
    }

    /// <summary>Whether the row group can hold a candidate given which condition keys its key dictionaries contain.</summary>
    private bool KeysCouldMatch(SearchPlan plan, RowGroupColumns data, PostingsAnswers? answers)
    {
        using var scan = new ColumnScan(data, DataKey);
        for (int i = 0; i < plan.Conds.Length; i++)
        {
            var c = plan.Conds[i];
            bool can = true;
            if (answers?.Answered(i) == true)
            {
                can = answers.AnyMatch(i, c);
            }
            else if (c.DictionaryColumn(out int col))
            {
                can = c.Kind == CondKind.Attr
                    ? scan.FindInDict(col, c.KeyUtf8) >= 0 || (c.Unscoped && scan.FindInDict(Col.Attr(AttrLevel.Resource, Col.AttrKey), c.KeyUtf8) >= 0)
                    : scan.FindInDict(col, c.EqualUtf8!) >= 0;
            }

            if (plan.All && !can)
            {
                return false;
            }

            if (!plan.All && can)
            {
                return true;
            }
        }

        return plan.All;
    }

    /// <summary>Adds the value columns (string/int/double/blob) of the types that rows with one of the keys have.</summary>
    private static void AddValueColumns(ColumnScan scan, AttrLevel level, IEnumerable<string> keys, HashSet<int> into)
    {
        int keyCol = Col.Attr(level, Col.AttrKey);
        var keyIds = new List<int>();
        foreach (var k in keys)
        {
            int id = scan.FindInDict(keyCol, System.Text.Encoding.UTF8.GetBytes(k));
            if (id >= 0)
            {
                keyIds.Add(id);
            }
        }

        if (keyIds.Count == 0)
        {
            return;
        }

        var ids = scan.Ids(keyCol);
        var types = scan.Columns.Raw(Col.Attr(level, Col.AttrType));
        var st = scan.AttrStart(level);
        int owners = scan.OwnerCount(level);
        int svc = level == AttrLevel.Resource ? scan.ServiceNameKeyId : -1;
        bool s = false, i = false, d = false, b = false, svcColumn = false;
        for (int o = 0; o < owners; o++)
        {
            bool svcSeen = false;
            for (int a = st[o]; a < st[o + 1]; a++)
            {
                bool first = ids[a] == svc && !svcSeen;
                svcSeen |= ids[a] == svc;
                if (!keyIds.Contains(ids[a]))
                {
                    continue;
                }

                switch ((AnyValueKind)types[a])
                {
                    case AnyValueKind.String when first: svcColumn = true; break; // ColumnScan.IsServiceNameCopy
                    case AnyValueKind.String: s = true; break;
                    case AnyValueKind.Bool or AnyValueKind.Int: i = true; break;
                    case AnyValueKind.Double: d = true; break;
                    case AnyValueKind.Array: b = true; break;
                    default: break; // bytes and kvlist are nil in TraceQL: their values are never read
                }
            }
        }

        if (svcColumn)
        {
            into.Add(Col.ResourceServiceName);
        }

        if (s)
        {
            into.Add(Col.Attr(level, Col.AttrString));
        }

        if (i)
        {
            into.Add(Col.Attr(level, Col.AttrInt));
        }

        if (d)
        {
            into.Add(Col.Attr(level, Col.AttrDouble));
        }

        if (b)
        {
            into.Add(Col.Attr(level, Col.AttrBlob));
        }
    }

    /// <summary>Evaluates every condition column-wise and combines them into <paramref name="candidates"/>; true when any is set.</summary>
    private static bool Select(SearchPlan plan, ColumnScan scan, PostingsAnswers? answers, Span<bool> candidates)
    {
        int spans = candidates.Length;
        bool[] scratch = ArrayPool<bool>.Shared.Rent(Math.Max(1, spans));
        try
        {
            candidates.Fill(plan.All);
            var one = scratch.AsSpan(0, spans);
            for (int i = 0; i < plan.Conds.Length; i++)
            {
                var c = plan.Conds[i];
                if (answers?.Answered(i) == true)
                {
                    answers.SpanMask(i, c, scan, one);
                }
                else
                {
                    ConditionEvaluator.Evaluate(c, scan, one);
                }

                if (c.Kind == CondKind.Duration && scan.Columns.Sparse(Col.SpanDuration) is { } sparse)
                {
                    // Pages not read hold no span this condition can match (their min/max ruled it out).
                    int perPage = sparse.Index.RowsPerPage;
                    for (int s = 0; s < spans; s++)
                    {
                        one[s] &= sparse.Loaded[s / perPage];
                    }
                }

                for (int s = 0; s < spans; s++)
                {
                    candidates[s] = plan.All ? candidates[s] & one[s] : candidates[s] | one[s];
                }
            }
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(scratch);
        }

        return candidates.Contains(true);
    }
}

/// <summary>
/// A <see cref="ISpansetFetcher"/> over several blocks (a tenant's block list): blocks are scanned one after another,
/// each by its own <see cref="BlockSpansetFetcher"/>; counters are summed.
/// </summary>
public sealed class MultiBlockSpansetFetcher : ISpansetFetcher, IFetchStatistics
{
    private readonly List<BlockSpansetFetcher> _fetchers;

    public MultiBlockSpansetFetcher(IEnumerable<BackendBlockV1> blocks)
        : this(blocks, usePostings: true)
    {
    }

    /// <param name="blocks">The blocks, scanned in this order.</param>
    /// <param name="usePostings">See <see cref="BlockSpansetFetcher(BackendBlockV1, bool)"/>.</param>
    public MultiBlockSpansetFetcher(IEnumerable<BackendBlockV1> blocks, bool usePostings)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        _fetchers = [.. blocks.Select(b => new BlockSpansetFetcher(b, usePostings))];
    }

    /// <summary>
    /// A fetcher over blocks as the block list hands them out (<see cref="IBackendBlock"/>); every block must be a
    /// <c>vRubato1</c> block (<see cref="BackendBlockV1"/>), otherwise an <see cref="ArgumentException"/> names it.
    /// </summary>
    public static MultiBlockSpansetFetcher ForBlocks(IEnumerable<IBackendBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        return new MultiBlockSpansetFetcher(blocks.Select(b => b as BackendBlockV1
            ?? throw new ArgumentException($"block {b.Meta.BlockId} has format '{b.Meta.Version}'; TraceQL search supports only '{FormatV1.Version}'", nameof(blocks))));
    }

    public ulong InspectedBytes => (ulong)_fetchers.Sum(f => (long)f.InspectedBytes);

    /// <summary>Bytes read from the blocks' postings objects (part of <see cref="InspectedBytes"/>).</summary>
    public long PostingsBytes => _fetchers.Sum(f => f.PostingsBytes);

    public int RowGroupsSkippedByStats => _fetchers.Sum(f => f.RowGroupsSkippedByStats);

    public int RowGroupsSkippedByDictionary => _fetchers.Sum(f => f.RowGroupsSkippedByDictionary);

    public int RowGroupsWithoutCandidates => _fetchers.Sum(f => f.RowGroupsWithoutCandidates);

    public int RowGroupsScanned => _fetchers.Sum(f => f.RowGroupsScanned);

    /// <summary>Range requests issued to the object store over all blocks.</summary>
    public int Reads => _fetchers.Sum(f => f.Reads);

    /// <summary>Per column: bytes read by the filter pass over all blocks.</summary>
    public long[] FilterBytesByColumn => [.. Enumerable.Range(0, Col.Count).Select(c => _fetchers.Sum(f => f.FilterBytesByColumn[c]))];

    /// <summary>Per column: bytes read by the fill pass over all blocks.</summary>
    public long[] FillBytesByColumn => [.. Enumerable.Range(0, Col.Count).Select(c => _fetchers.Sum(f => f.FillBytesByColumn[c]))];

    public async IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var f in _fetchers)
        {
            await foreach (var s in f.FetchAsync(request, cancellationToken).ConfigureAwait(false))
            {
                yield return s;
            }
        }
    }
}

/// <summary>
/// One row group's candidates, ready to be built into spansets as they are enumerated. Owns the row group's column
/// buffers, candidate mask and postings answers until disposed (which also counts the row group's bytes).
/// </summary>
internal sealed class RowGroupFill(SpanFiller filler, bool[] candidates, Action release) : IDisposable
{
    private bool _disposed;

    /// <summary>Postings answers the filler reads values from, disposed with the fill.</summary>
    public PostingsAnswers? Answers { get; set; }

    public IEnumerable<Spanset> Spansets() => filler.Fill(candidates);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        release();
        Answers?.Dispose();
    }
}

/// <summary>Builds the returned <see cref="EvalSpan"/>s of one row group from the fill columns.</summary>
internal sealed class SpanFiller
{
    private readonly SearchPlan _plan;
    private readonly ColumnScan _scan;
    private readonly int[]?[] _wantedKeyIds = new int[]?[5];
    private readonly AttributeBag?[] _resourceBags;
    private readonly AttributeBag?[] _scopeBags;
    private readonly PostingsAnswers? _answers;
    private readonly string[]?[] _knownKeys = new string[]?[5];

    /// <param name="plan">The fetch plan.</param>
    /// <param name="scan">The row group's columns.</param>
    /// <param name="answers">The postings answers when some level's values come from them, else null.</param>
    /// <param name="known">Per attribute level: the wanted attributes come from <paramref name="answers"/> (its columns were not read).</param>
    public SpanFiller(SearchPlan plan, ColumnScan scan, PostingsAnswers? answers = null, bool[]? known = null)
    {
        _plan = plan;
        _scan = scan;
        _answers = answers;
        _resourceBags = new AttributeBag?[scan.ResourceCount];
        _scopeBags = new AttributeBag?[scan.ScopeCount];
        for (int l = 0; l < 5; l++)
        {
            if (plan.AttrKeys[l].Count == 0)
            {
                continue;
            }

            if (answers is not null && known?[l] == true)
            {
                _knownKeys[l] = [.. plan.AttrKeys[l].Order(StringComparer.Ordinal)];
                continue;
            }

            int keyCol = Col.Attr((AttrLevel)l, Col.AttrKey);
            _wantedKeyIds[l] = [.. plan.AttrKeys[l].Select(k => scan.FindInDict(keyCol, System.Text.Encoding.UTF8.GetBytes(k))).Where(id => id >= 0)];
        }
    }

    /// <summary>The spansets of the traces with a candidate span (<paramref name="candidates"/> by span row), built lazily one trace at a time.</summary>
    public IEnumerable<Spanset> Fill(bool[] candidates)
    {
        var req = _plan.Request;
        var s = _scan;
        for (int t = 0; t < s.TraceCount; t++)
        {
            int from = s.TraceSpanStart(t), to = s.TraceSpanStart(t + 1);
            int selected = 0;
            for (int sp = from; sp < to; sp++)
            {
                selected += candidates[sp] ? 1 : 0;
            }

            if (selected == 0)
            {
                continue;
            }

            ulong start = s.TraceStart(t), duration = s.TraceDuration(t);
            if (req.EndUnixNanos > 0 && (start > (ulong)req.EndUnixNanos || start + duration < (ulong)req.StartUnixNanos))
            {
                continue;
            }

            var info = new TraceInfo
            {
                TraceId = s.TraceIdAt(Col.TraceId, t),
                StartUnixNanos = start,
                DurationNanos = duration,
            };
            if (_plan.RootNames)
            {
                info.RootServiceName = s.Str(Col.TraceRootService, t);
                info.RootSpanName = s.Str(Col.TraceRootSpanName, t);
            }

            if (_plan.ServiceStats)
            {
                info.ServiceStats = new Dictionary<string, ServiceStat>(StringComparer.Ordinal);
                for (int sp = from; sp < to; sp++)
                {
                    string service = s.Str(Col.ResourceServiceName, s.SpanResource(sp));
                    info.ServiceStats.TryGetValue(service, out var st);
                    st.SpanCount++;
                    if (s.ByteAt(Col.SpanStatusCode, sp) == (byte)StatusCode.Error)
                    {
                        st.ErrorCount++;
                    }

                    info.ServiceStats[service] = st;
                }
            }

            int[]? left = null, right = null, parent = null, children = null;
            if (_plan.NeedsStructure)
            {
                int n = to - from;
                var ids = new ulong[n];
                var parents = new ulong[n];
                for (int i = 0; i < n; i++)
                {
                    ids[i] = s.SpanIdAt(Col.SpanId, from + i);
                    parents[i] = s.SpanIdAt(Col.SpanParentId, from + i);
                }

                left = new int[n];
                right = new int[n];
                parent = new int[n];
                children = new int[n];
                NestedSet.Compute(ids, parents, left, right, parent, children);
            }

            var list = new List<EvalSpan>(selected);
            for (int sp = from; sp < to; sp++)
            {
                if (!candidates[sp])
                {
                    continue;
                }

                var e = BuildSpan(info, start, sp);
                if (left is not null)
                {
                    int i = sp - from;
                    e.NestedSetLeft = left[i];
                    e.NestedSetRight = right![i];
                    e.NestedSetParent = parent![i];
                    e.ChildCount = children![i];
                }

                list.Add(e);
            }

            yield return new Spanset(info, list);
        }
    }

    private EvalSpan BuildSpan(TraceInfo info, ulong traceStart, int sp)
    {
        var s = _scan;
        int scope = s.SpanScope(sp);
        int res = s.SpanResource(sp);
        var e = new EvalSpan
        {
            Trace = info,
            SpanId = new SpanId(s.SpanIdAt(Col.SpanId, sp)),
            ParentSpanId = _plan.ParentIds ? new SpanId(s.SpanIdAt(Col.SpanParentId, sp)) : default,
            Name = _plan.SpanName ? s.Str(Col.SpanName, sp) : string.Empty,
            Kind = _plan.SpanKind ? (TraceQL.Ast.SpanKind)s.ByteAt(Col.SpanKind, sp) : default,
            Status = _plan.Status ? (SpanStatus)s.ByteAt(Col.SpanStatusCode, sp) : default,
            StartUnixNanos = unchecked(traceStart + (ulong)s.LongAt(Col.SpanStartDelta, sp)),
            DurationNanos = s.LongAt(Col.SpanDuration, sp),
            ServiceName = _plan.ServiceStats ? s.Str(Col.ResourceServiceName, res) : string.Empty,
            Attributes = Bag(AttrLevel.Span, sp),
            ResourceAttributes = _resourceBags[res] ??= Bag(AttrLevel.Resource, res),
            ScopeAttributes = _scopeBags[scope] ??= Bag(AttrLevel.Scope, scope),
        };
        if (_plan.StatusMessage)
        {
            e.StatusMessage = s.Str(Col.SpanStatusMessage, sp);
        }

        if (_plan.ScopeNameVersion)
        {
            e.ScopeName = s.Str(Col.ScopeName, scope);
            e.ScopeVersion = s.Str(Col.ScopeVersion, scope);
        }

        if (_plan.Events)
        {
            var starts = s.EventStart;
            int n = starts[sp + 1] - starts[sp];
            if (n > 0)
            {
                var events = new EvalEvent[n];
                for (int i = 0; i < n; i++)
                {
                    int ev = starts[sp] + i;
                    events[i] = new EvalEvent
                    {
                        Name = s.Str(Col.EventName, ev),
                        TimeSinceStartNanos = s.LongAt(Col.EventTimeDelta, ev),
                        Attributes = Bag(AttrLevel.Event, ev),
                    };
                }

                e.Events = events;
            }
        }

        if (_plan.Links)
        {
            var starts = s.LinkStart;
            int n = starts[sp + 1] - starts[sp];
            if (n > 0)
            {
                var links = new EvalLink[n];
                for (int i = 0; i < n; i++)
                {
                    int l = starts[sp] + i;
                    links[i] = new EvalLink
                    {
                        TraceId = s.TraceIdAt(Col.LinkTraceId, l),
                        SpanId = new SpanId(s.SpanIdAt(Col.LinkSpanId, l)),
                        Attributes = Bag(AttrLevel.Link, l),
                    };
                }

                e.Links = links;
            }
        }

        return e;
    }

    /// <summary>The wanted attributes of one owner row, in stored order (so duplicate keys keep "first wins").</summary>
    private AttributeBag Bag(AttrLevel level, int owner)
    {
        if (_knownKeys[(int)level] is { } knownKeys)
        {
            // Every wanted key of this level is an answered condition's: the owner's (first) value is the posting it is in.
            AttributeBag? known = null;
            foreach (var k in knownKeys)
            {
                if (_answers!.TryGetValue(level, k, owner, out var v))
                {
                    known ??= new AttributeBag(knownKeys.Length);
                    known.Add(k, v);
                }
            }

            return known ?? AttributeBag.Empty;
        }

        var wanted = _wantedKeyIds[(int)level];
        if (wanted is null || wanted.Length == 0)
        {
            return AttributeBag.Empty;
        }

        var st = _scan.AttrStart(level);
        var keys = _scan.Ids(Col.Attr(level, Col.AttrKey));
        int keyCol = Col.Attr(level, Col.AttrKey);
        AttributeBag? bag = null;
        for (int a = st[owner]; a < st[owner + 1]; a++)
        {
            if (Array.IndexOf(wanted, keys[a]) < 0)
            {
                continue;
            }

            bag ??= new AttributeBag(2);
            bag.Add(_scan.DictString(keyCol, keys[a]), _scan.AttrValue(level, a, owner));
        }

        return bag ?? AttributeBag.Empty;
    }
}
