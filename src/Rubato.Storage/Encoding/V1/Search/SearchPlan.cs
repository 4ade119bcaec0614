using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.Storage.Encoding.V1.Search;

/// <summary>How one condition is tested against the columns.</summary>
internal enum CondKind : byte
{
    /// <summary>Not tested by the scan (always "could match"): no filter, or fields computed per trace (childCount, nested sets).</summary>
    PassThrough,
    Duration,
    Name,
    Status,
    StatusMessage,
    Kind,
    SpanId,
    ParentId,
    TraceDuration,
    TraceRootName,
    TraceRootService,
    TraceId,
    EventName,
    EventTime,
    LinkTraceId,
    LinkSpanId,
    ScopeName,
    ScopeVersion,

    /// <summary>An attribute of <see cref="CondPlan.Level"/> (plus resource for unscoped <c>.x</c>).</summary>
    Attr,
}

/// <summary>One condition compiled for column evaluation.</summary>
internal sealed class CondPlan
{
    public CondPlan(Condition c)
    {
        Condition = c;
        NilMatches = c.CouldMatch(TraceQLValue.Nil);
        if (c.Op == ConditionOp.Equal && c.Operands.Count == 1 && c.Operands[0].Kind == ValueKind.String)
        {
            // String '=' string is ordinal equality: compare dictionary entries as UTF-8 bytes without decoding them.
            EqualUtf8 = System.Text.Encoding.UTF8.GetBytes(c.Operands[0].String);
        }

        KeyUtf8 = System.Text.Encoding.UTF8.GetBytes(c.Field.Name);
        if (c.Op == ConditionOp.None)
        {
            Kind = CondKind.PassThrough;
        }
        else if (c.Field.Intrinsic is { } i)
        {
            Kind = i switch
            {
                Intrinsic.Duration => CondKind.Duration,
                Intrinsic.Name => CondKind.Name,
                Intrinsic.Status => CondKind.Status,
                Intrinsic.StatusMessage => CondKind.StatusMessage,
                Intrinsic.Kind => CondKind.Kind,
                Intrinsic.SpanId => CondKind.SpanId,
                Intrinsic.ParentId => CondKind.ParentId,
                Intrinsic.TraceDuration => CondKind.TraceDuration,
                Intrinsic.TraceRootName => CondKind.TraceRootName,
                Intrinsic.TraceRootService => CondKind.TraceRootService,
                Intrinsic.TraceId => CondKind.TraceId,
                Intrinsic.EventName => CondKind.EventName,
                Intrinsic.EventTimeSinceStart => CondKind.EventTime,
                Intrinsic.LinkTraceId => CondKind.LinkTraceId,
                Intrinsic.LinkSpanId => CondKind.LinkSpanId,
                Intrinsic.InstrumentationName => CondKind.ScopeName,
                Intrinsic.InstrumentationVersion => CondKind.ScopeVersion,
                _ => CondKind.PassThrough,
            };
        }
        else
        {
            Kind = CondKind.Attr;
            (Level, Unscoped) = c.Field.Scope switch
            {
                AttributeScope.Resource => (AttrLevel.Resource, false),
                AttributeScope.Instrumentation => (AttrLevel.Scope, false),
                AttributeScope.Event => (AttrLevel.Event, false),
                AttributeScope.Link => (AttrLevel.Link, false),
                AttributeScope.Span => (AttrLevel.Span, false),
                _ => (AttrLevel.Span, true),
            };
        }
    }

    public Condition Condition { get; }

    public CondKind Kind { get; }

    public AttrLevel Level { get; }

    /// <summary>Unscoped <c>.x</c>: the span attribute when the span has the key, else the resource attribute.</summary>
    public bool Unscoped { get; }

    /// <summary>Result for a missing value (no attribute, no event, ...), computed once.</summary>
    public bool NilMatches { get; }

    public byte[]? EqualUtf8 { get; }

    public byte[] KeyUtf8 { get; }

    /// <summary>
    /// The dictionary column that can rule this condition out for a whole row group, when there is one: the attribute
    /// key column (key absent ⇒ every value is nil) when nil cannot match, or the dictionary of a string intrinsic
    /// compared with <c>=</c> (operand absent ⇒ no row has it; these intrinsics are never arrays).
    /// </summary>
    public bool DictionaryColumn(out int column)
    {
        column = -1;
        if (NilMatches)
        {
            return false;
        }

        if (Kind == CondKind.Attr)
        {
            column = Col.Attr(Level, Col.AttrKey);
            return true;
        }

        if (EqualUtf8 is null)
        {
            return false;
        }

        column = Kind switch
        {
            CondKind.Name => Col.SpanName,
            CondKind.StatusMessage => Col.SpanStatusMessage,
            CondKind.ScopeName => Col.ScopeName,
            CondKind.ScopeVersion => Col.ScopeVersion,
            CondKind.TraceRootName => Col.TraceRootSpanName,
            CondKind.TraceRootService => Col.TraceRootService,
            CondKind.EventName => Col.EventName,
            _ => -1,
        };
        return column >= 0;
    }

    /// <summary>The columns this condition reads before value columns are known (value columns: see the fetcher).</summary>
    public void AddColumns(ICollection<int> cols)
    {
        switch (Kind)
        {
            case CondKind.Duration: cols.Add(Col.SpanDuration); break;
            case CondKind.Name: cols.Add(Col.SpanName); break;
            case CondKind.Status: cols.Add(Col.SpanStatusCode); break;
            case CondKind.StatusMessage: cols.Add(Col.SpanStatusMessage); break;
            case CondKind.Kind: cols.Add(Col.SpanKind); break;
            case CondKind.SpanId: cols.Add(Col.SpanId); break;
            case CondKind.ParentId: cols.Add(Col.SpanParentId); break;
            case CondKind.TraceDuration: cols.Add(Col.TraceEndDelta); break;
            case CondKind.TraceRootName: cols.Add(Col.TraceRootSpanName); break;
            case CondKind.TraceRootService: cols.Add(Col.TraceRootService); break;
            case CondKind.TraceId: cols.Add(Col.TraceId); break;
            case CondKind.EventName: cols.Add(Col.SpanEventCount); cols.Add(Col.EventName); break;
            case CondKind.EventTime: cols.Add(Col.SpanEventCount); cols.Add(Col.EventTimeDelta); break;
            case CondKind.LinkTraceId: cols.Add(Col.SpanLinkCount); cols.Add(Col.LinkTraceId); break;
            case CondKind.LinkSpanId: cols.Add(Col.SpanLinkCount); cols.Add(Col.LinkSpanId); break;
            case CondKind.ScopeName: cols.Add(Col.ScopeName); break;
            case CondKind.ScopeVersion: cols.Add(Col.ScopeVersion); break;
            case CondKind.Attr:
                AddAttrKeyColumns(Level, cols);
                if (Unscoped)
                {
                    AddAttrKeyColumns(AttrLevel.Resource, cols);
                }

                break;
            default:
                break;
        }
    }

    /// <summary>Count, key and type columns of an attribute level, plus the count column of its owner level.</summary>
    public static void AddAttrKeyColumns(AttrLevel level, ICollection<int> cols)
    {
        cols.Add(Col.Attr(level, Col.AttrCount));
        cols.Add(Col.Attr(level, Col.AttrKey));
        cols.Add(Col.Attr(level, Col.AttrType));
        if (level == AttrLevel.Event)
        {
            cols.Add(Col.SpanEventCount);
        }
        else if (level == AttrLevel.Link)
        {
            cols.Add(Col.SpanLinkCount);
        }
    }

    /// <summary>
    /// Whether the row group can hold a span that could match, from footer statistics alone. Only duration range
    /// comparisons are decided here (monotone: if the longest span fails '&gt;' every span fails).
    /// </summary>
    public bool CouldMatchRowGroup(RowGroupStats rg)
    {
        if (Kind != CondKind.Duration || rg.MaxSpanDurationNanos > long.MaxValue || rg.Spans == 0)
        {
            return true;
        }

        return CouldMatchDurations((long)rg.MinSpanDurationNanos, (long)rg.MaxSpanDurationNanos);
    }

    /// <summary>
    /// Whether a <see cref="CondKind.Duration"/> condition can hold for some span whose duration is in [min, max]
    /// (a row group's or a page's range); only range comparisons are decided, others answer true.
    /// </summary>
    public bool CouldMatchDurations(long min, long max) => Condition.Op switch
    {
        ConditionOp.Greater or ConditionOp.GreaterEqual => Condition.CouldMatch(TraceQLValue.FromDuration(max)),
        ConditionOp.Less or ConditionOp.LessEqual => Condition.CouldMatch(TraceQLValue.FromDuration(min)),
        _ => true,
    };
}

/// <summary>A fetch request compiled once per <see cref="BlockSpansetFetcher.FetchAsync"/>: conditions and fields to fill.</summary>
internal sealed class SearchPlan
{
    public SearchPlan(FetchSpansRequest request)
    {
        Request = request;
        Everything = request.FetchesEverything;
        All = request.AllConditions;
        Conds = [.. request.Conditions.Select(c => new CondPlan(c))];
        for (int l = 0; l < 5; l++)
        {
            AttrKeys[l] = new HashSet<string>(StringComparer.Ordinal);
        }

        foreach (var f in request.Conditions.Select(c => c.Field).Concat(request.SecondPassFields))
        {
            AddField(f);
        }

        NeedsStructure = request.NeedsStructure;
        ParentIds |= NeedsStructure;
        if (!request.OnlyNamedFields)
        {
            SpanName = Status = RootNames = ServiceStats = true;
        }
    }

    public FetchSpansRequest Request { get; }

    public CondPlan[] Conds { get; }

    public bool Everything { get; }

    public bool All { get; }

    public bool NeedsStructure { get; }

    /// <summary>Attribute keys to fill per level (index = <see cref="AttrLevel"/>).</summary>
    public HashSet<string>[] AttrKeys { get; } = new HashSet<string>[5];

    public bool StatusMessage { get; private set; }

    /// <summary>
    /// Whether filled spans carry their kind: only when a condition, select(), by() or compare() names <c>kind</c>
    /// (the fetch contract leaves other fields empty). Skipping it saves one span-level page read per returned span.
    /// </summary>
    public bool SpanKind { get; private set; }

    public bool ScopeNameVersion { get; private set; }

    /// <summary>
    /// Whether filled spans carry their name; under <see cref="FetchSpansRequest.OnlyNamedFields"/> (metrics) only when
    /// a condition or second-pass field names <c>name</c>, which saves the <c>span.name</c> chunk and a dictionary
    /// lookup per returned span.
    /// </summary>
    public bool SpanName { get; private set; }

    /// <summary>Whether filled spans carry their status (always, unless <see cref="FetchSpansRequest.OnlyNamedFields"/>).</summary>
    public bool Status { get; private set; }

    /// <summary>Whether the trace's root service and root span name are filled (as <see cref="Status"/>).</summary>
    public bool RootNames { get; private set; }

    /// <summary>
    /// Whether <see cref="TraceInfo.ServiceStats"/> and <see cref="EvalSpan.ServiceName"/> are filled: false only
    /// under <see cref="FetchSpansRequest.OnlyNamedFields"/>, where no search response is built. Skipping them saves a
    /// dictionary per trace, two hash lookups per span of every candidate trace (not just the candidate spans), and the
    /// status column over those spans.
    /// </summary>
    public bool ServiceStats { get; private set; }

    public bool Events { get; private set; }

    public bool Links { get; private set; }

    /// <summary>
    /// Whether filled spans carry their parent span id. The engine reads it only for structural operators (which set
    /// <see cref="NeedsStructure"/>) and <c>span:parentID</c>; skipping it elsewhere saves the parent-id chunk, ~7% of a
    /// typical data object, in every row group with candidates.
    /// </summary>
    public bool ParentIds { get; private set; }

    /// <summary>Columns phase 2 (filling candidate spans) needs beyond the attribute value columns.</summary>
    /// <param name="knownLevels">Attribute levels whose values come from postings (their count/key/type columns are skipped).</param>
    public List<int> FillColumns(bool[]? knownLevels = null)
    {
        var cols = new List<int>
        {
            Col.TraceId, Col.TraceStart, Col.TraceEndDelta, Col.SpanId, Col.SpanStartDelta, Col.SpanDuration,
        };
        if (RootNames)
        {
            cols.Add(Col.TraceRootService);
            cols.Add(Col.TraceRootSpanName);
        }

        if (ServiceStats)
        {
            cols.Add(Col.ResourceServiceName);
        }

        if (SpanName)
        {
            cols.Add(Col.SpanName);
        }

        if (Status || ServiceStats)
        {
            cols.Add(Col.SpanStatusCode);
        }

        if (SpanKind)
        {
            cols.Add(Col.SpanKind);
        }

        if (ParentIds)
        {
            cols.Add(Col.SpanParentId);
        }
        if (StatusMessage)
        {
            cols.Add(Col.SpanStatusMessage);
        }

        if (ScopeNameVersion)
        {
            cols.Add(Col.ScopeName);
            cols.Add(Col.ScopeVersion);
        }

        if (Events)
        {
            cols.Add(Col.SpanEventCount);
            cols.Add(Col.EventName);
            cols.Add(Col.EventTimeDelta);
        }

        if (Links)
        {
            cols.Add(Col.SpanLinkCount);
            cols.Add(Col.LinkTraceId);
            cols.Add(Col.LinkSpanId);
        }

        for (int l = 0; l < 5; l++)
        {
            if (AttrKeys[l].Count > 0 && knownLevels?[l] != true)
            {
                CondPlan.AddAttrKeyColumns((AttrLevel)l, cols);
            }
        }

        return cols;
    }

    private void AddField(FieldRef f)
    {
        if (f.Intrinsic is { } i)
        {
            switch (i)
            {
                case Intrinsic.StatusMessage: StatusMessage = true; break;
                case Intrinsic.Kind: SpanKind = true; break;
                case Intrinsic.InstrumentationName or Intrinsic.InstrumentationVersion: ScopeNameVersion = true; break;
                case Intrinsic.EventName or Intrinsic.EventTimeSinceStart: Events = true; break;
                case Intrinsic.LinkTraceId or Intrinsic.LinkSpanId: Links = true; break;
                case Intrinsic.ParentId: ParentIds = true; break;
                case Intrinsic.Name: SpanName = true; break;
                case Intrinsic.Status: Status = true; break;
                case Intrinsic.TraceRootName or Intrinsic.TraceRootService: RootNames = true; break;
                default: break;
            }

            return;
        }

        switch (f.Scope)
        {
            case AttributeScope.Span: AttrKeys[(int)AttrLevel.Span].Add(f.Name); break;
            case AttributeScope.Resource: AttrKeys[(int)AttrLevel.Resource].Add(f.Name); break;
            case AttributeScope.Instrumentation: AttrKeys[(int)AttrLevel.Scope].Add(f.Name); break;
            case AttributeScope.Event:
                Events = true;
                AttrKeys[(int)AttrLevel.Event].Add(f.Name);
                break;
            case AttributeScope.Link:
                Links = true;
                AttrKeys[(int)AttrLevel.Link].Add(f.Name);
                break;
            default:
                AttrKeys[(int)AttrLevel.Span].Add(f.Name);
                AttrKeys[(int)AttrLevel.Resource].Add(f.Name);
                break;
        }
    }
}
