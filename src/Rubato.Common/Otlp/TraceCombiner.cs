using System.Text;
using Rubato.Common.Model;

namespace Rubato.Common.Otlp;

/// <summary>
/// Merges the parts of one trace found in several places (live traces, WAL, several blocks; or replicas).
/// Spans are deduplicated by (span id, kind): the token Tempo's combiner uses (pkg/model/trace/combine.go hashes the
/// span id with the kind, so the client and server halves of a shared Zipkin span both survive). The first copy wins.
/// </summary>
/// <remarks>
/// Output order is deterministic whatever the input order: resources by <c>service.name</c>, then by their canonical
/// encoding (attributes sorted by key, dropped count, schema url); scopes likewise by name, version, encoding; spans by
/// start time, span id, kind. Equal resources/scopes from different parts are grouped into one. The result shares the
/// <see cref="Resource"/>, <see cref="InstrumentationScope"/> and <see cref="Span"/> objects of its inputs (no deep copy):
/// treat inputs and output as read-only afterwards. Cost: O(n log n) in spans plus one small encode per resource/scope.
/// </remarks>
public static class TraceCombiner
{
    public static Trace Combine(IEnumerable<Trace> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var seen = new HashSet<(ulong SpanId, SpanKind Kind)>();
        var resources = new Dictionary<string, ResourceGroup>(StringComparer.Ordinal);
        using var keyWriter = new ProtoWriter(256);
        foreach (var part in parts)
        {
            if (part is null)
            {
                continue;
            }

            foreach (var rs in part.ResourceSpans)
            {
                ResourceGroup? rg = null;
                foreach (var ss in rs.ScopeSpans)
                {
                    ScopeGroup? sg = null;
                    foreach (var span in ss.Spans)
                    {
                        if (!seen.Add((span.SpanId.Value, span.Kind)))
                        {
                            continue;
                        }

                        if (rg is null)
                        {
                            string rk = ResourceKey(keyWriter, rs);
                            if (!resources.TryGetValue(rk, out rg))
                            {
                                rg = new ResourceGroup(rk, rs.Resource, rs.SchemaUrl);
                                resources.Add(rk, rg);
                            }
                        }

                        if (sg is null)
                        {
                            string sk = ScopeKey(keyWriter, ss);
                            if (!rg.Scopes.TryGetValue(sk, out sg))
                            {
                                sg = new ScopeGroup(sk, ss.Scope, ss.SchemaUrl);
                                rg.Scopes.Add(sk, sg);
                            }
                        }

                        sg.Spans.Add(span);
                    }
                }
            }
        }

        var groups = resources.Values.ToList();
        groups.Sort(static (a, b) =>
        {
            int c = string.CompareOrdinal(a.Resource.ServiceName() ?? string.Empty, b.Resource.ServiceName() ?? string.Empty);
            return c != 0 ? c : string.CompareOrdinal(a.Key, b.Key);
        });

        var result = new Trace();
        foreach (var rg in groups)
        {
            var rs = new ResourceSpans { Resource = rg.Resource, SchemaUrl = rg.SchemaUrl };
            var scopes = rg.Scopes.Values.ToList();
            scopes.Sort(static (a, b) =>
            {
                int c = string.CompareOrdinal(a.Scope.Name, b.Scope.Name);
                if (c == 0)
                {
                    c = string.CompareOrdinal(a.Scope.Version, b.Scope.Version);
                }

                return c != 0 ? c : string.CompareOrdinal(a.Key, b.Key);
            });
            foreach (var sg in scopes)
            {
                var ss = new ScopeSpans { Scope = sg.Scope, SchemaUrl = sg.SchemaUrl };
                sg.Spans.Sort(CompareSpans);
                ss.Spans.AddRange(sg.Spans);
                rs.ScopeSpans.Add(ss);
            }

            result.ResourceSpans.Add(rs);
        }

        return result;
    }

    /// <summary>Span order used in combined output: start time, then span id, then kind.</summary>
    public static int CompareSpans(Span? a, Span? b)
    {
        if (ReferenceEquals(a, b))
        {
            return 0;
        }

        if (a is null)
        {
            return -1;
        }

        if (b is null)
        {
            return 1;
        }

        int c = a.StartTimeUnixNano.CompareTo(b.StartTimeUnixNano);
        if (c == 0)
        {
            c = a.SpanId.CompareTo(b.SpanId);
        }

        return c != 0 ? c : a.Kind.CompareTo(b.Kind);
    }

    /// <summary>Distinct (span id, kind) pairs in the trace: the span count after <see cref="Combine"/>.</summary>
    public static int CountDistinctSpans(Trace trace)
    {
        var seen = new HashSet<(ulong, SpanKind)>();
        foreach (var (_, _, s) in trace.AllSpans())
        {
            seen.Add((s.SpanId.Value, s.Kind));
        }

        return seen.Count;
    }

    /// <summary>Earliest start and latest end over all spans; (0, 0) for an empty trace.</summary>
    public static (ulong StartUnixNano, ulong EndUnixNano) TimeRange(Trace trace)
    {
        ulong start = ulong.MaxValue, end = 0;
        foreach (var (_, _, s) in trace.AllSpans())
        {
            start = Math.Min(start, s.StartTimeUnixNano);
            end = Math.Max(end, s.EndTimeUnixNano);
        }

        return start == ulong.MaxValue ? (0, 0) : (start, end);
    }

    private static string ResourceKey(ProtoWriter w, ResourceSpans rs)
    {
        w.Clear();
        var sorted = new Resource { DroppedAttributesCount = rs.Resource.DroppedAttributesCount };
        sorted.Attributes.AddRange(rs.Resource.Attributes.OrderBy(static a => a.Key, StringComparer.Ordinal));
        OtlpProto.WriteResourceBody(w, sorted);
        if (rs.SchemaUrl.Length > 0)
        {
            w.WriteStringField(OtlpFieldNumbers.ResourceSpans.SchemaUrl, rs.SchemaUrl);
        }

        return Encoding.Latin1.GetString(w.WrittenSpan);
    }

    private static string ScopeKey(ProtoWriter w, ScopeSpans ss)
    {
        w.Clear();
        var sorted = new InstrumentationScope
        {
            Name = ss.Scope.Name,
            Version = ss.Scope.Version,
            DroppedAttributesCount = ss.Scope.DroppedAttributesCount,
        };
        sorted.Attributes.AddRange(ss.Scope.Attributes.OrderBy(static a => a.Key, StringComparer.Ordinal));
        OtlpProto.WriteScopeBody(w, sorted);
        if (ss.SchemaUrl.Length > 0)
        {
            w.WriteStringField(OtlpFieldNumbers.ScopeSpans.SchemaUrl, ss.SchemaUrl);
        }

        return Encoding.Latin1.GetString(w.WrittenSpan);
    }

    private sealed class ResourceGroup(string key, Resource resource, string schemaUrl)
    {
        public string Key { get; } = key;

        public Resource Resource { get; } = resource;

        public string SchemaUrl { get; } = schemaUrl;

        public Dictionary<string, ScopeGroup> Scopes { get; } = new(StringComparer.Ordinal);
    }

    private sealed class ScopeGroup(string key, InstrumentationScope scope, string schemaUrl)
    {
        public string Key { get; } = key;

        public InstrumentationScope Scope { get; } = scope;

        public string SchemaUrl { get; } = schemaUrl;

        public List<Span> Spans { get; } = [];
    }
}
