using Rubato.Common.Ids;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

// The contract between the TraceQL engine and a storage layer (backend blocks, WAL, live traces).
//
// Flow: the engine extracts a FetchSpansRequest from the query (ConditionExtractor), the storage layer streams one
// Spanset per candidate trace (ISpansetFetcher), the engine re-evaluates the full query on those spans. Conditions are
// only hints for skipping data: a fetcher may return MORE spans than the conditions select (even every span), never
// fewer than could match.

/// <summary>
/// An attribute or intrinsic the query reads. For intrinsics <see cref="Intrinsic"/> is set and <see cref="Name"/> is
/// the canonical spelling (<c>span:duration</c>); for attributes <see cref="Scope"/> and <see cref="Name"/> identify it
/// (<see cref="AttributeScope.None"/> = unscoped <c>.name</c>: span attribute first, else resource attribute).
/// </summary>
public sealed record FieldRef(AttributeScope Scope, string Name, Intrinsic? Intrinsic)
{
    public static FieldRef ForAttribute(AttributeScope scope, string name) => new(scope, name, null);

    public static FieldRef ForIntrinsic(Intrinsic intrinsic) => new(AttributeScope.None, Intrinsics.CanonicalName(intrinsic), intrinsic);

    public bool IsIntrinsic => Intrinsic is not null;

    public override string ToString() => Intrinsic is not null
        ? Name
        : Scope switch
        {
            AttributeScope.None => "." + Name,
            AttributeScope.Span => "span." + Name,
            AttributeScope.Resource => "resource." + Name,
            AttributeScope.Event => "event." + Name,
            AttributeScope.Link => "link." + Name,
            AttributeScope.Instrumentation => "instrumentation." + Name,
            _ => Name,
        };
}

/// <summary>What a <see cref="Condition"/> tests.</summary>
public enum ConditionOp : byte
{
    /// <summary>No filter: the field is only needed (to evaluate something the storage cannot, e.g. arithmetic).</summary>
    None,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,

    /// <summary>Fully anchored regex; the operand is the unanchored pattern as written.</summary>
    Regex,
    NotRegex,
    Exists,
    NotExists,
}

/// <summary>
/// <c>field op operand</c> (Tempo's <c>Condition</c>). <see cref="Operands"/> holds one literal for comparisons and
/// is empty for <see cref="ConditionOp.None"/>/<see cref="ConditionOp.Exists"/>/<see cref="ConditionOp.NotExists"/>.
/// A span "could match" a condition when <c>CouldMatch</c> is true for the span's value of the field (for
/// event/link fields: for any of its events/links, or nil when it has none; for arrays: any element).
/// </summary>
public sealed record Condition(FieldRef Field, ConditionOp Op, IReadOnlyList<TraceQLValue> Operands)
{
    public static Condition Fetch(FieldRef field) => new(field, ConditionOp.None, []);

    /// <summary>
    /// True when a field value may satisfy this condition, with the evaluator's exact semantics (numeric coercion,
    /// anchored regex, array any-match). Storage layers may call this per value; it never returns false for a value
    /// the engine would accept. Thread-safe.
    /// </summary>
    public bool CouldMatch(in TraceQLValue value) => Op switch
    {
        ConditionOp.None => true,
        ConditionOp.Exists => !value.IsNil,
        ConditionOp.NotExists => value.IsNil,
        _ => ValueOps.CompareForCondition(Op, value, Operands.Count > 0 ? Operands[0] : TraceQLValue.Nil),
    };

    /// <summary>
    /// Whether a filled span could match: the field's value per <see cref="FieldEvaluator"/> (event/link fields: any
    /// event/link, or nil when there are none). The reference for storage layers that build <see cref="EvalSpan"/>s first.
    /// </summary>
    public bool CouldMatch(EvalSpan span)
    {
        ArgumentNullException.ThrowIfNull(span);
        if (Op == ConditionOp.None)
        {
            return true;
        }

        if (Field.Intrinsic is { } i)
        {
            switch (i)
            {
                case Ast.Intrinsic.EventName or Ast.Intrinsic.EventTimeSinceStart:
                    return AnyOf(span.Events, e => FieldEvaluator.IntrinsicValue(i, span, e, null));
                case Ast.Intrinsic.LinkTraceId or Ast.Intrinsic.LinkSpanId:
                    return AnyOf(span.Links, l => FieldEvaluator.IntrinsicValue(i, span, null, l));
                default:
                    return CouldMatch(FieldEvaluator.IntrinsicValue(i, span, null, null));
            }
        }

        return Field.Scope switch
        {
            AttributeScope.Event => AnyOf(span.Events, e => FieldEvaluator.Attribute(AttributeScope.Event, Field.Name, span, e, null)),
            AttributeScope.Link => AnyOf(span.Links, l => FieldEvaluator.Attribute(AttributeScope.Link, Field.Name, span, null, l)),
            _ => CouldMatch(FieldEvaluator.Attribute(Field.Scope, Field.Name, span, null, null)),
        };
    }

    private bool AnyOf<T>(IReadOnlyList<T> items, Func<T, TraceQLValue> value)
    {
        if (items.Count == 0)
        {
            return CouldMatch(TraceQLValue.Nil);
        }

        foreach (var item in items)
        {
            if (CouldMatch(value(item)))
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => Op switch
    {
        ConditionOp.None => Field.ToString(),
        ConditionOp.Exists => $"{Field} != nil",
        ConditionOp.NotExists => $"{Field} = nil",
        _ => $"{Field} {Op} {string.Join(",", Operands)}",
    };
}

/// <summary>
/// What the engine asks a storage layer for (Tempo's <c>FetchSpansRequest</c>).
/// </summary>
/// <remarks>
/// Span selection: with <see cref="AllConditions"/> a span is a candidate when it could match EVERY condition; otherwise
/// when it could match ANY condition. A <see cref="ConditionOp.None"/> condition always "could match". No conditions
/// at all means every span. Only traces overlapping [<see cref="StartUnixNanos"/>, <see cref="EndUnixNanos"/>] are
/// needed (0/0 = no time bound); a trace overlaps when its start &lt;= End and its end &gt;= Start.
/// <para>
/// Returned spans must carry: id, parent id, name, start, duration (always), trace-level fields of
/// <see cref="TraceInfo"/> (always), every field of <see cref="Conditions"/> and of <see cref="SecondPassFields"/>.
/// Other fields may be left empty (with <see cref="OnlyNamedFields"/>, the name, status, service name and the trace's
/// root names and service stats too). When <see cref="NeedsStructure"/> is set, nested-set numbers and child counts must
/// be computed over the WHOLE trace (use <see cref="NestedSet.Compute"/> on the trace's id/parent-id columns), even
/// though only candidate spans are returned.
/// </para>
/// </remarks>
public sealed record FetchSpansRequest
{
    public long StartUnixNanos { get; init; }

    public long EndUnixNanos { get; init; }

    public IReadOnlyList<Condition> Conditions { get; init; } = [];

    public bool AllConditions { get; init; }

    /// <summary>Fields the final result needs on returned spans (select(), by(), aggregates) that are not conditions.</summary>
    public IReadOnlyList<FieldRef> SecondPassFields { get; init; } = [];

    /// <summary>The query uses structural operators, childCount or nestedSet intrinsics.</summary>
    public bool NeedsStructure { get; init; }

    /// <summary>
    /// The caller reads nothing of the returned spans but their ids, start, duration, the trace's id, start and
    /// duration, and the fields of <see cref="Conditions"/> and <see cref="SecondPassFields"/> (metrics queries: no
    /// search response is built). A fetcher may then also leave the span's name, status and
    /// <see cref="EvalSpan.ServiceName"/> and the trace's root names and <see cref="TraceInfo.ServiceStats"/> empty
    /// unless a condition or second-pass field names them. Only a permission: a fetcher that fills everything
    /// (<see cref="TraceModelFetcher"/>, the ingester's live and WAL fetchers) honours it as well.
    /// </summary>
    public bool OnlyNamedFields { get; init; }

    /// <summary>True when no filtering is possible: every span of every trace in range is a candidate.</summary>
    public bool FetchesEverything => Conditions.Count == 0 || (!AllConditions && Conditions.Any(c => c.Op == ConditionOp.None));

    /// <summary>Whether a span whose per-condition results are given could be a candidate under this request.</summary>
    public bool Selects(ReadOnlySpan<bool> couldMatchPerCondition)
    {
        if (couldMatchPerCondition.Length == 0)
        {
            return true;
        }

        foreach (bool b in couldMatchPerCondition)
        {
            if (AllConditions && !b)
            {
                return false;
            }

            if (!AllConditions && b)
            {
                return true;
            }
        }

        return AllConditions;
    }
}

/// <summary>
/// A storage layer's TraceQL scan. Yields at most one <see cref="Spanset"/> per trace per call (spans of a trace that
/// are stored in several places, e.g. WAL and a block, come from different fetchers and are merged by
/// <c>SearchResultCombiner</c>). Spansets with no spans are not yielded. The engine consumes the stream on one
/// thread and stops enumerating (disposing the enumerator) once it has enough results; fetchers must release readers
/// on dispose. The engine may keep references to yielded spansets and spans, so fetchers must not reuse them.
/// </summary>
public interface ISpansetFetcher
{
    IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, CancellationToken cancellationToken);
}

/// <summary>Per-service span and error counts of a whole trace (Tempo's <c>serviceStats</c>).</summary>
public struct ServiceStat
{
    public int SpanCount;
    public int ErrorCount;
}

/// <summary>Trace-level fields, shared by every span and spanset of one trace.</summary>
public sealed class TraceInfo
{
    public TraceId TraceId { get; set; }

    /// <summary><c>service.name</c> of the root span's resource; empty when the root is missing.</summary>
    public string RootServiceName { get; set; } = string.Empty;

    public string RootSpanName { get; set; } = string.Empty;

    /// <summary>Earliest span start.</summary>
    public ulong StartUnixNanos { get; set; }

    /// <summary>Latest span end minus <see cref="StartUnixNanos"/>.</summary>
    public ulong DurationNanos { get; set; }

    /// <summary>Service name → counts over the whole trace; null when the fetcher cannot provide it cheaply.</summary>
    public Dictionary<string, ServiceStat>? ServiceStats { get; set; }
}

/// <summary>
/// A list of attributes as parallel key/value arrays (no dictionary: spans have few attributes and lookups are a
/// linear scan of interned keys). Filled once by a fetcher, read-only afterwards. Duplicate keys: first wins.
/// </summary>
public sealed class AttributeBag
{
    public static readonly AttributeBag Empty = new(0);

    private string[] _keys;
    private TraceQLValue[] _values;

    public AttributeBag(int capacity = 4)
    {
        _keys = capacity == 0 ? [] : new string[capacity];
        _values = capacity == 0 ? [] : new TraceQLValue[capacity];
    }

    public int Count { get; private set; }

    public string KeyAt(int i) => _keys[i];

    public TraceQLValue ValueAt(int i) => _values[i];

    public void Add(string key, TraceQLValue value)
    {
        if (ReferenceEquals(this, Empty))
        {
            throw new InvalidOperationException("AttributeBag.Empty is shared and read-only; create a new bag");
        }

        if (Count == _keys.Length)
        {
            int n = Math.Max(4, Count * 2);
            Array.Resize(ref _keys, n);
            Array.Resize(ref _values, n);
        }

        _keys[Count] = key;
        _values[Count] = value;
        Count++;
    }

    public bool TryGet(string key, out TraceQLValue value)
    {
        for (int i = 0; i < Count; i++)
        {
            if (string.Equals(_keys[i], key, StringComparison.Ordinal))
            {
                value = _values[i];
                return true;
            }
        }

        value = TraceQLValue.Nil;
        return false;
    }

    public TraceQLValue Get(string key) => TryGet(key, out var v) ? v : TraceQLValue.Nil;
}

/// <summary>A span event as TraceQL sees it.</summary>
public sealed class EvalEvent
{
    public string Name { get; set; } = string.Empty;

    /// <summary>Event time minus span start, nanoseconds.</summary>
    public long TimeSinceStartNanos { get; set; }

    public AttributeBag Attributes { get; set; } = AttributeBag.Empty;
}

/// <summary>A span link as TraceQL sees it.</summary>
public sealed class EvalLink
{
    public TraceId TraceId { get; set; }

    public SpanId SpanId { get; set; }

    public AttributeBag Attributes { get; set; } = AttributeBag.Empty;
}

/// <summary>
/// One span as the engine evaluates it. Plain settable fields so a columnar reader fills them straight from column
/// arrays; attribute bags may be shared (one resource bag for all spans of that resource).
/// </summary>
public sealed class EvalSpan
{
    public required TraceInfo Trace { get; set; }

    public SpanId SpanId { get; set; }

    /// <summary>Empty for a root span.</summary>
    public SpanId ParentSpanId { get; set; }

    public string Name { get; set; } = string.Empty;

    public Ast.SpanKind Kind { get; set; }

    public SpanStatus Status { get; set; }

    public string StatusMessage { get; set; } = string.Empty;

    public ulong StartUnixNanos { get; set; }

    public long DurationNanos { get; set; }

    /// <summary><c>service.name</c> of the span's resource (for serviceStats and tag values), empty if none.</summary>
    public string ServiceName { get; set; } = string.Empty;

    /// <summary>Nested-set numbers over the whole trace (see <see cref="NestedSet"/>); 0 when not computed.</summary>
    public int NestedSetLeft { get; set; }

    public int NestedSetRight { get; set; }

    /// <summary>Left number of the parent; -1 for a root, 0 when not computed.</summary>
    public int NestedSetParent { get; set; }

    /// <summary>Direct children in the whole trace; -1 when not computed.</summary>
    public int ChildCount { get; set; } = -1;

    public AttributeBag Attributes { get; set; } = AttributeBag.Empty;

    public AttributeBag ResourceAttributes { get; set; } = AttributeBag.Empty;

    public AttributeBag ScopeAttributes { get; set; } = AttributeBag.Empty;

    public string ScopeName { get; set; } = string.Empty;

    public string ScopeVersion { get; set; } = string.Empty;

    public IReadOnlyList<EvalEvent> Events { get; set; } = [];

    public IReadOnlyList<EvalLink> Links { get; set; } = [];

    /// <summary>True when the span has structure (nested-set numbers) the structural operators can use.</summary>
    public bool HasNestedSet => NestedSetLeft > 0;
}

/// <summary>
/// A set of spans of one trace (Tempo's <c>Spanset</c>): what fetchers yield (candidate spans) and what each pipeline
/// stage produces. <see cref="Scalar"/> is the last aggregate value; <see cref="GroupAttributes"/> the <c>by()</c> keys.
/// </summary>
public sealed class Spanset
{
    public Spanset(TraceInfo trace, List<EvalSpan> spans)
    {
        Trace = trace;
        Spans = spans;
    }

    public TraceInfo Trace { get; }

    public List<EvalSpan> Spans { get; }

    public TraceQLValue Scalar { get; set; }

    /// <summary>by() results: (canonical field text, value), e.g. ("resource.service.name", "a").</summary>
    public List<KeyValuePair<string, TraceQLValue>> GroupAttributes { get; init; } = [];

    public Spanset CloneWith(List<EvalSpan> spans) => new(Trace, spans)
    {
        Scalar = Scalar,
        GroupAttributes = [.. GroupAttributes],
    };
}

/// <summary>
/// Nested-set numbering (Tempo's <c>nestedSetLeft/Right/Parent</c>) from span and parent ids, for fetchers that store
/// only parent ids. Depth-first over the trace; roots (no parent, or a parent id not in the trace) in input order,
/// children in input order. <c>left &lt; x.left &amp;&amp; x.right &lt; right</c> ⇔ x is a descendant.
/// Numbers start at 1. Cost: O(n) plus one hash table of n entries per trace.
/// </summary>
public static class NestedSet
{
    /// <param name="spanIds">Span ids of every span in the trace.</param>
    /// <param name="parentIds">Parent ids (0 for roots).</param>
    /// <param name="left">Receives the left numbers.</param>
    /// <param name="right">Receives the right numbers.</param>
    /// <param name="parent">Receives the parent's left number, -1 for roots.</param>
    /// <param name="childCount">Receives the number of direct children.</param>
    public static void Compute(
        ReadOnlySpan<ulong> spanIds,
        ReadOnlySpan<ulong> parentIds,
        Span<int> left,
        Span<int> right,
        Span<int> parent,
        Span<int> childCount)
    {
        int n = spanIds.Length;
        if (parentIds.Length != n || left.Length < n || right.Length < n || parent.Length < n || childCount.Length < n)
        {
            throw new ArgumentException("NestedSet.Compute: all spans must have the same length as spanIds");
        }

        var indexById = new Dictionary<ulong, int>(n);
        for (int i = 0; i < n; i++)
        {
            indexById.TryAdd(spanIds[i], i);
        }

        // Children as linked lists in input order: firstChild/nextSibling, built back to front.
        var firstChild = new int[n];
        var nextSibling = new int[n];
        var parentIndex = new int[n];
        Array.Fill(firstChild, -1);
        Array.Fill(nextSibling, -1);
        childCount[..n].Clear();
        for (int i = n - 1; i >= 0; i--)
        {
            int p = -1;
            if (parentIds[i] != 0 && parentIds[i] != spanIds[i] && indexById.TryGetValue(parentIds[i], out int pi) && pi != i)
            {
                p = pi;
            }

            parentIndex[i] = p;
            if (p >= 0)
            {
                nextSibling[i] = firstChild[p];
                firstChild[p] = i;
                childCount[p]++;
            }
        }

        var visited = new bool[n];
        var kids = new List<int>();
        var stack = new Stack<(int Node, bool Exit)>();
        int counter = 0;

        // Pass 0 numbers the trees under real roots; pass 1 numbers spans caught in parent cycles (never reached from a
        // root) as roots, so every span gets numbers.
        for (int pass = 0; pass < 2; pass++)
        {
            for (int start = 0; start < n; start++)
            {
                if (visited[start] || (pass == 0 && parentIndex[start] >= 0))
                {
                    continue;
                }

                if (pass == 1)
                {
                    parentIndex[start] = -1;
                }

                stack.Push((start, false));
                while (stack.Count > 0)
                {
                    var (node, exit) = stack.Pop();
                    if (exit)
                    {
                        right[node] = ++counter;
                        continue;
                    }

                    if (visited[node])
                    {
                        continue;
                    }

                    visited[node] = true;
                    left[node] = ++counter;
                    parent[node] = parentIndex[node] >= 0 ? left[parentIndex[node]] : -1;
                    stack.Push((node, true));

                    // Push children in reverse so they are visited in input order.
                    kids.Clear();
                    for (int c = firstChild[node]; c >= 0; c = nextSibling[c])
                    {
                        kids.Add(c);
                    }

                    for (int j = kids.Count - 1; j >= 0; j--)
                    {
                        if (!visited[kids[j]])
                        {
                            stack.Push((kids[j], false));
                        }
                    }
                }
            }
        }
    }
}
