using System.Text.Json;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Engine;

/// <summary>
/// Collects attribute names per scope from spans (Tempo's <c>/api/v2/search/tags</c>: <c>{"scopes":[{name,tags}]}</c>).
/// Scopes: span, resource, event, link, instrumentation, intrinsic (the fixed list of intrinsic names). Also the
/// combiner: <see cref="Add(TagNamesCollector)"/> merges collectors of other jobs. Not thread-safe.
/// </summary>
public sealed class TagNamesCollector
{
    /// <summary>The intrinsic names Tempo lists in the <c>intrinsic</c> scope.</summary>
    public static readonly IReadOnlyList<string> IntrinsicTags =
    [
        "duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version", "kind",
        "link:spanID", "link:traceID", "name", "rootName", "rootServiceName", "span:childCount", "span:duration",
        "span:id", "span:kind", "span:name", "span:parentID", "span:status", "span:statusMessage", "status",
        "statusMessage", "trace:duration", "trace:id", "trace:rootName", "trace:rootService", "traceDuration",
    ];

    private static readonly string[] s_scopes = ["span", "resource", "event", "link", "instrumentation"];
    private readonly Dictionary<string, HashSet<string>> _tags = new(StringComparer.Ordinal);

    // Every name in the order it was first added (append-only): streaming sends the names added since an index.
    private readonly List<(string Scope, string Name)> _added = [];
    private long _bytes;

    /// <param name="scope">null or "all" for every scope, else one of span/resource/event/link/instrumentation/intrinsic.</param>
    /// <param name="limit">Maximum distinct names per scope (0 = unlimited).</param>
    /// <param name="maxBytes">
    /// Maximum total bytes (UTF-8) of the names kept (Tempo's <c>max_bytes_per_tag_values_query</c>, which bounds tag
    /// names too); 0 = unlimited. A name that would go over is dropped and <see cref="Exceeded"/> turns true.
    /// </param>
    public TagNamesCollector(string? scope = null, int limit = 0, long maxBytes = 0)
    {
        if (scope is not null && scope != "all" && scope != "intrinsic" && Array.IndexOf(s_scopes, scope) < 0)
        {
            throw new ArgumentException($"unknown tag scope '{scope}': use span, resource, event, link, instrumentation, intrinsic or all", nameof(scope));
        }

        Scope = scope is null or "all" ? null : scope;
        Limit = limit;
        MaxBytes = maxBytes;
    }

    public string? Scope { get; }

    public int Limit { get; }

    public long MaxBytes { get; }

    /// <summary>Whether <see cref="Scopes"/> lists the fixed intrinsic scope (false for streamed partial answers).</summary>
    public bool IncludeIntrinsic { get; init; } = true;

    /// <summary>True once a name was dropped because of <see cref="MaxBytes"/>.</summary>
    public bool Exceeded { get; private set; }

    /// <summary>
    /// True when more spans cannot change the answer: the byte budget is spent, or every requested attribute scope
    /// holds <see cref="Limit"/> names (only the intrinsic scope requested: always, it is a fixed list).
    /// </summary>
    public bool IsFull
    {
        get
        {
            if (Exceeded || Scope == "intrinsic")
            {
                return true;
            }

            if (Limit <= 0)
            {
                return false;
            }

            foreach (var s in s_scopes)
            {
                if ((Scope is null || Scope == s) && (!_tags.TryGetValue(s, out var set) || set.Count < Limit))
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>Distinct names added so far (all scopes); <see cref="Since"/> takes an earlier value of it.</summary>
    public int AddedCount => _added.Count;

    /// <summary>Every name kept, with its scope, in the order it was first added (what a cached job result stores).</summary>
    public IReadOnlyList<(string Scope, string Name)> Added => _added;

    /// <summary>
    /// A collector holding <paramref name="names"/> (scope, name) added in that order, exceeded when
    /// <paramref name="exceeded"/>: a job result read back from a cache, equal to the collector it was taken from when
    /// built with the same scope, limit and byte budget.
    /// </summary>
    public static TagNamesCollector Restore(string? scope, int limit, long maxBytes, IEnumerable<(string Scope, string Name)> names, bool exceeded)
    {
        ArgumentNullException.ThrowIfNull(names);
        var c = new TagNamesCollector(scope, limit, maxBytes);
        foreach (var (s, n) in names)
        {
            if (Array.IndexOf(s_scopes, s) < 0)
            {
                throw new ArgumentException($"unknown tag scope '{s}'", nameof(names));
            }

            c.AddName(s, n);
        }

        c.Exceeded |= exceeded;
        return c;
    }

    /// <summary>A collector with just the names added after the first <paramref name="index"/> (a streamed partial answer), without intrinsics.</summary>
    public TagNamesCollector Since(int index)
    {
        var c = new TagNamesCollector(Scope, Limit) { IncludeIntrinsic = false };
        for (int i = Math.Clamp(index, 0, _added.Count); i < _added.Count; i++)
        {
            c.AddName(_added[i].Scope, _added[i].Name);
        }

        c.Exceeded = Exceeded;
        return c;
    }

    public void Add(EvalSpan span)
    {
        ArgumentNullException.ThrowIfNull(span);
        AddBag("span", span.Attributes);
        AddBag("resource", span.ResourceAttributes);
        AddBag("instrumentation", span.ScopeAttributes);
        foreach (var e in span.Events)
        {
            AddBag("event", e.Attributes);
        }

        foreach (var l in span.Links)
        {
            AddBag("link", l.Attributes);
        }
    }

    /// <summary>
    /// Merges another job's names. A collector that ran out of its byte budget makes this one exceeded too: the
    /// union holds at least its names, so the name it dropped would not fit here either.
    /// </summary>
    public void Add(TagNamesCollector other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (scope, names) in other._tags)
        {
            foreach (var n in names)
            {
                AddName(scope, n);
            }
        }

        Exceeded |= other.Exceeded;
    }

    /// <summary>(scope, sorted names) in Tempo's scope order; the intrinsic scope is included when requested.</summary>
    public List<(string Name, List<string> Tags)> Scopes()
    {
        var result = new List<(string, List<string>)>();
        foreach (var s in s_scopes)
        {
            if (Scope is not null && Scope != s)
            {
                continue;
            }

            var names = _tags.TryGetValue(s, out var set) ? set.Order(StringComparer.Ordinal).ToList() : [];
            if (names.Count > 0)
            {
                result.Add((s, names));
            }
        }

        if (IncludeIntrinsic && Scope is null or "intrinsic")
        {
            result.Add(("intrinsic", [.. IntrinsicTags]));
        }

        return result;
    }

    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteStartArray("scopes");
        foreach (var (name, tags) in Scopes())
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteStartArray("tags");
            foreach (var t in tags)
            {
                w.WriteStringValue(t);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private void AddBag(string scope, AttributeBag bag)
    {
        if (Scope is not null && Scope != scope)
        {
            return;
        }

        for (int i = 0; i < bag.Count; i++)
        {
            AddName(scope, bag.KeyAt(i));
        }
    }

    private void AddName(string scope, string name)
    {
        if (!_tags.TryGetValue(scope, out var set))
        {
            _tags[scope] = set = new HashSet<string>(StringComparer.Ordinal);
        }

        if ((Limit > 0 && set.Count >= Limit) || Exceeded || set.Contains(name))
        {
            return;
        }

        if (MaxBytes > 0)
        {
            int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
            if (_bytes + bytes > MaxBytes)
            {
                Exceeded = true;
                return;
            }

            _bytes += bytes;
        }

        set.Add(name);
        _added.Add((scope, name));
    }
}

/// <summary>
/// Collects distinct typed values of one tag (Tempo's <c>/api/v2/search/tag/{tag}/values</c>:
/// <c>{"tagValues":[{type,value}]}</c>; types string, int, float, bool, duration, keyword for status/kind).
/// The tag is a TraceQL field: <c>span.http.method</c>, <c>resource.service.name</c>, <c>.x</c>, <c>span:name</c>, ...
/// Array attributes contribute each element. Also the combiner (<see cref="Add(TagValuesCollector)"/>). Not thread-safe.
/// </summary>
public sealed class TagValuesCollector
{
    private readonly FieldExpr _field;
    private readonly HashSet<(string Type, string Value)> _values = [];
    private readonly List<(string Type, string Value)> _order = [];
    private long _bytes;

    /// <param name="tag">A scoped attribute or intrinsic name as in TraceQL (parsed with the TraceQL parser).</param>
    /// <param name="limit">Maximum distinct values (0 = unlimited).</param>
    /// <param name="maxBytes">
    /// Maximum total bytes (UTF-8) of the values kept (Tempo's <c>max_bytes_per_tag_values_query</c>); 0 = unlimited.
    /// A value that would go over is dropped, <see cref="Exceeded"/> turns true and nothing more is added.
    /// </param>
    public TagValuesCollector(string tag, int limit = 0, long maxBytes = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(tag);
        FieldExpr? field;
        try
        {
            var root = Parsing.TraceQLParser.Parse("{ " + tag + " != nil }");
            field = (root.SearchPipeline?.Elements.FirstOrDefault() as SpansetFilter)?.Expression is UnaryExpr { Op: UnaryOp.Exists } u ? u.Operand : null;
        }
        catch (TraceQLException e)
        {
            throw new ArgumentException($"'{tag}' is not a TraceQL attribute or intrinsic name: {e.Message}", nameof(tag), e);
        }

        _field = field is AttributeExpr or IntrinsicExpr
            ? field
            : throw new ArgumentException($"'{tag}' is not a TraceQL attribute or intrinsic name", nameof(tag));
        Tag = tag;
        Limit = limit;
        MaxBytes = maxBytes;
    }

    public string Tag { get; }

    public int Limit { get; }

    public long MaxBytes { get; }

    /// <summary>True once a value was dropped because of <see cref="MaxBytes"/>.</summary>
    public bool Exceeded { get; private set; }

    /// <summary>True once <see cref="Limit"/> distinct values are collected or the byte budget is spent.</summary>
    public bool IsFull => Exceeded || (Limit > 0 && _order.Count >= Limit);

    /// <summary>A collector with just the values after the first <paramref name="index"/> of <see cref="Values"/> (a streamed partial answer).</summary>
    public TagValuesCollector Since(int index)
    {
        var c = new TagValuesCollector(Tag, Limit);
        for (int i = Math.Clamp(index, 0, _order.Count); i < _order.Count; i++)
        {
            c.AddTyped(_order[i]);
        }

        c.Exceeded = Exceeded;
        return c;
    }

    public IReadOnlyList<(string Type, string Value)> Values => _order;

    /// <summary>
    /// A collector holding <paramref name="values"/> added in that order, exceeded when <paramref name="exceeded"/>: a
    /// job result read back from a cache, equal to the collector it was taken from when built with the same tag, limit
    /// and byte budget.
    /// </summary>
    public static TagValuesCollector Restore(string tag, int limit, long maxBytes, IEnumerable<(string Type, string Value)> values, bool exceeded)
    {
        ArgumentNullException.ThrowIfNull(values);
        var c = new TagValuesCollector(tag, limit, maxBytes);
        foreach (var v in values)
        {
            c.AddTyped(v);
        }

        c.Exceeded |= exceeded;
        return c;
    }

    public void Add(EvalSpan span)
    {
        ArgumentNullException.ThrowIfNull(span);
        var shape = FilterShape.Of(_field);
        if (shape.UsesEvents)
        {
            foreach (var e in span.Events)
            {
                AddValue(FieldEvaluator.Evaluate(_field, span, e, null));
            }
        }
        else if (shape.UsesLinks)
        {
            foreach (var l in span.Links)
            {
                AddValue(FieldEvaluator.Evaluate(_field, span, null, l));
            }
        }
        else
        {
            AddValue(FieldEvaluator.Evaluate(_field, span, null, null));
        }
    }

    /// <summary>Merges another job's values; its <see cref="Exceeded"/> carries over (see <see cref="TagNamesCollector.Add(TagNamesCollector)"/>).</summary>
    public void Add(TagValuesCollector other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var v in other._order)
        {
            AddTyped(v);
        }

        Exceeded |= other.Exceeded;
    }

    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteStartArray("tagValues");
        foreach (var (type, value) in _order)
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteString("value", value);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private void AddValue(in TraceQLValue v)
    {
        if (v.Kind == ValueKind.Array)
        {
            foreach (var e in v.Array)
            {
                AddValue(e);
            }

            return;
        }

        string? type = v.Kind switch
        {
            ValueKind.String => "string",
            ValueKind.Int => "int",
            ValueKind.Float => "float",
            ValueKind.Bool => "bool",
            ValueKind.Duration => "duration",
            ValueKind.Status or ValueKind.Kind => "keyword",
            _ => null,
        };
        if (type is not null)
        {
            AddTyped((type, ValueText.Format(v)));
        }
    }

    private void AddTyped((string Type, string Value) tv)
    {
        if (IsFull || _values.Contains(tv))
        {
            return;
        }

        if (MaxBytes > 0)
        {
            int bytes = System.Text.Encoding.UTF8.GetByteCount(tv.Value);
            if (_bytes + bytes > MaxBytes)
            {
                Exceeded = true;
                return;
            }

            _bytes += bytes;
        }

        _values.Add(tv);
        _order.Add(tv);
    }
}
