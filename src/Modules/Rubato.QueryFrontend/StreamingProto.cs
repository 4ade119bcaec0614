using Rubato.Common.Ids;
using Rubato.Common.Otlp;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend;

/// <summary>
/// Hand-written protobuf for <c>tempopb</c> search messages (field numbers as tempo.proto). Encoders return a pooled
/// <see cref="ProtoWriter"/> the caller disposes after writing it out. Decoders of responses are for clients and tests.
/// </summary>
public static class StreamingProto
{
    /// <summary><c>SearchRequest</c>: 1 tags (map), 2 minDurationMs, 3 maxDurationMs, 4 limit, 5 start, 6 end, 8 query, 9 spss.</summary>
    public static SearchQuery DecodeSearchRequest(ReadOnlySpan<byte> data, SearchFrontendConfig config)
    {
        var r = new ProtoReader(data);
        var tags = new List<string>();
        uint minMs = 0, maxMs = 0, limit = 0, spss = 0;
        ulong start = 0, end = 0;
        string? query = null;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1 when wt == WireType.LengthDelimited:
                    var entry = r.ReadSubMessage();
                    string key = string.Empty, value = string.Empty;
                    while (entry.TryReadTag(out int ef, out var ewt))
                    {
                        if (ef == 1 && ewt == WireType.LengthDelimited)
                        {
                            key = entry.ReadString();
                        }
                        else if (ef == 2 && ewt == WireType.LengthDelimited)
                        {
                            value = entry.ReadString();
                        }
                        else
                        {
                            entry.SkipField(ef, ewt);
                        }
                    }

                    tags.Add(key + "=\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"");
                    break;
                case 2 when wt == WireType.Varint: minMs = r.ReadVarint32(); break;
                case 3 when wt == WireType.Varint: maxMs = r.ReadVarint32(); break;
                case 4 when wt == WireType.Varint: limit = r.ReadVarint32(); break;
                case 5 when wt == WireType.Varint: start = r.ReadVarint32(); break;
                case 6 when wt == WireType.Varint: end = r.ReadVarint32(); break;
                case 8 when wt == WireType.LengthDelimited: query = r.ReadString(); break;
                case 9 when wt == WireType.Varint: spss = r.ReadVarint32(); break;
                default: r.SkipField(field, wt); break;
            }
        }

        var p = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["q"] = query,
            ["tags"] = tags.Count == 0 ? null : string.Join(' ', tags),
            ["minDuration"] = minMs == 0 ? null : minMs + "ms",
            ["maxDuration"] = maxMs == 0 ? null : maxMs + "ms",
            ["limit"] = limit == 0 ? null : limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["spss"] = spss == 0 ? null : spss.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["start"] = start == 0 ? null : start.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["end"] = end == 0 ? null : end.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return SearchRequestParser.ParseSearch(k => p.GetValueOrDefault(k), config);
    }

    /// <summary><c>SearchTagsRequest</c>: 1 scope, 2 query, 3 start, 4 end, 5 maxTagsPerScope.</summary>
    public static TagNamesQuery DecodeTagsRequest(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data);
        var p = new Dictionary<string, string?>(StringComparer.Ordinal);
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1 when wt == WireType.LengthDelimited: p["scope"] = r.ReadString(); break;
                case 2 when wt == WireType.LengthDelimited: p["q"] = r.ReadString(); break;
                case 3 when wt == WireType.Varint: p["start"] = Num(r.ReadVarint()); break;
                case 4 when wt == WireType.Varint: p["end"] = Num(r.ReadVarint()); break;
                case 5 when wt == WireType.Varint: p["limit"] = Num(r.ReadVarint()); break;
                default: r.SkipField(field, wt); break;
            }
        }

        return SearchRequestParser.ParseTags(k => p.GetValueOrDefault(k));
    }

    /// <summary><c>SearchTagValuesRequest</c>: 1 tagName, 2 query, 4 start, 5 end, 6 maxTagValues.</summary>
    public static TagValuesQuery DecodeTagValuesRequest(ReadOnlySpan<byte> data, bool scoped)
    {
        var r = new ProtoReader(data);
        var p = new Dictionary<string, string?>(StringComparer.Ordinal);
        string tag = string.Empty;
        while (r.TryReadTag(out int field, out var wt))
        {
            switch (field)
            {
                case 1 when wt == WireType.LengthDelimited: tag = r.ReadString(); break;
                case 2 when wt == WireType.LengthDelimited: p["q"] = r.ReadString(); break;
                case 4 when wt == WireType.Varint: p["start"] = Num(r.ReadVarint()); break;
                case 5 when wt == WireType.Varint: p["end"] = Num(r.ReadVarint()); break;
                case 6 when wt == WireType.Varint: p["limit"] = Num(r.ReadVarint()); break;
                default: r.SkipField(field, wt); break;
            }
        }

        return SearchRequestParser.ParseTagValues(tag, scoped, k => p.GetValueOrDefault(k));
    }

    /// <summary>Index after the last trace from <paramref name="from"/> that keeps the packet within <paramref name="maxBytes"/> (at least one trace).</summary>
    public static int PacketEnd(SearchResult result, int from, int maxBytes)
    {
        ArgumentNullException.ThrowIfNull(result);
        using var w = new ProtoWriter();
        WriteSearchMetrics(w, result.Metrics);
        int size = w.Length;
        int i = from;
        while (i < result.Traces.Count)
        {
            w.Clear();
            WriteTrace(w, result.Traces[i]);
            if (i > from && size + w.Length > maxBytes)
            {
                break;
            }

            size += w.Length;
            i++;
        }

        return i;
    }

    /// <summary><c>SearchResponse</c> with traces [from, to) and the metrics.</summary>
    public static ProtoWriter EncodeSearchResponse(SearchResult result, int from, int to)
    {
        ArgumentNullException.ThrowIfNull(result);
        var w = new ProtoWriter();
        for (int i = from; i < to; i++)
        {
            WriteTrace(w, result.Traces[i]);
        }

        WriteSearchMetrics(w, result.Metrics);
        return w;
    }

    public static ProtoWriter EncodeTagsV1(TagNamesCollector names, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(names);
        var w = new ProtoWriter();
        var all = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (scope, tags) in names.Scopes())
        {
            if (scope != "intrinsic" || names.Scope == "intrinsic")
            {
                all.UnionWith(tags);
            }
        }

        foreach (var n in all)
        {
            w.WriteStringField(1, n);
        }

        WriteMetadataMetrics(w, metrics);
        return w;
    }

    public static ProtoWriter EncodeTagsV2(TagNamesCollector names, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(names);
        var w = new ProtoWriter();
        foreach (var (scope, tags) in names.Scopes())
        {
            int t = w.BeginMessage(1);
            w.WriteStringField(1, scope);
            foreach (var n in tags)
            {
                w.WriteStringField(2, n);
            }

            w.EndMessage(t);
        }

        WriteMetadataMetrics(w, metrics);
        return w;
    }

    public static ProtoWriter EncodeTagValuesV1(TagValuesCollector values, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(values);
        var w = new ProtoWriter();
        foreach (var v in values.Values.Select(v => v.Value).Distinct().Order(StringComparer.Ordinal))
        {
            w.WriteStringField(1, v);
        }

        WriteMetadataMetrics(w, metrics);
        return w;
    }

    public static ProtoWriter EncodeTagValuesV2(TagValuesCollector values, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(values);
        var w = new ProtoWriter();
        foreach (var (type, value) in SearchApi.SortedTypedValues(values))
        {
            int t = w.BeginMessage(1);
            w.WriteStringField(1, type);
            w.WriteStringField(2, value);
            w.EndMessage(t);
        }

        WriteMetadataMetrics(w, metrics);
        return w;
    }

    /// <summary>Decodes a <c>SearchResponse</c> (for clients and tests); attribute values come back as TraceQL values.</summary>
    public static SearchResult DecodeSearchResponse(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data);
        var result = new SearchResult();
        while (r.TryReadTag(out int field, out var wt))
        {
            if (field == 1 && wt == WireType.LengthDelimited)
            {
                result.Traces.Add(ReadTrace(r.ReadSubMessage()));
            }
            else if (field == 2 && wt == WireType.LengthDelimited)
            {
                var m = r.ReadSubMessage();
                while (m.TryReadTag(out int f, out var mwt))
                {
                    if (mwt != WireType.Varint)
                    {
                        m.SkipField(f, mwt);
                        continue;
                    }

                    ulong v = m.ReadVarint();
                    switch (f)
                    {
                        case 1: result.Metrics.InspectedTraces = (uint)v; break;
                        case 2: result.Metrics.InspectedBytes = v; break;
                        case 3: result.Metrics.TotalBlocks = (uint)v; break;
                        case 4: result.Metrics.CompletedJobs = (uint)v; break;
                        case 5: result.Metrics.TotalJobs = (uint)v; break;
                        case 6: result.Metrics.TotalBlockBytes = v; break;
                        case 7: result.Metrics.InspectedSpans = v; break;
                    }
                }
            }
            else
            {
                r.SkipField(field, wt);
            }
        }

        return result;
    }

    private static TraceSearchMetadata ReadTrace(ProtoReader r)
    {
        var t = new TraceSearchMetadata();
        while (r.TryReadTag(out int f, out var wt))
        {
            switch (f)
            {
                case 1 when wt == WireType.LengthDelimited:
                    TraceId.TryParseHex(r.ReadString().PadLeft(32, '0'), out var id);
                    t.TraceId = id;
                    break;
                case 2 when wt == WireType.LengthDelimited: t.RootServiceName = r.ReadString(); break;
                case 3 when wt == WireType.LengthDelimited: t.RootTraceName = r.ReadString(); break;
                case 4 when wt == WireType.Varint: t.StartTimeUnixNano = r.ReadVarint(); break;
                case 5 when wt == WireType.Varint: t.DurationNanos = r.ReadVarint() * 1_000_000; break;
                case 7 when wt == WireType.LengthDelimited: t.SpanSets.Add(ReadSpanSet(r.ReadSubMessage())); break;
                case 8 when wt == WireType.LengthDelimited:
                    var e = r.ReadSubMessage();
                    string svc = string.Empty;
                    var st = default(ServiceStat);
                    while (e.TryReadTag(out int ef, out var ewt))
                    {
                        if (ef == 1 && ewt == WireType.LengthDelimited)
                        {
                            svc = e.ReadString();
                        }
                        else if (ef == 2 && ewt == WireType.LengthDelimited)
                        {
                            var s = e.ReadSubMessage();
                            while (s.TryReadTag(out int sf, out var swt))
                            {
                                if (sf == 1 && swt == WireType.Varint)
                                {
                                    st.SpanCount = (int)s.ReadVarint();
                                }
                                else if (sf == 2 && swt == WireType.Varint)
                                {
                                    st.ErrorCount = (int)s.ReadVarint();
                                }
                                else
                                {
                                    s.SkipField(sf, swt);
                                }
                            }
                        }
                        else
                        {
                            e.SkipField(ef, ewt);
                        }
                    }

                    (t.ServiceStats ??= new(StringComparer.Ordinal))[svc] = st;
                    break;
                default: r.SkipField(f, wt); break;
            }
        }

        return t;
    }

    private static SpanSetResult ReadSpanSet(ProtoReader r)
    {
        var ss = new SpanSetResult();
        while (r.TryReadTag(out int f, out var wt))
        {
            switch (f)
            {
                case 1 when wt == WireType.LengthDelimited:
                    var s = r.ReadSubMessage();
                    var span = new SpanResult();
                    while (s.TryReadTag(out int sf, out var swt))
                    {
                        switch (sf)
                        {
                            case 1 when swt == WireType.LengthDelimited:
                                span.SpanId = new SpanId(Convert.ToUInt64(s.ReadString(), 16));
                                break;
                            case 2 when swt == WireType.LengthDelimited: span.Name = s.ReadString(); break;
                            case 3 when swt == WireType.Varint: span.StartTimeUnixNano = s.ReadVarint(); break;
                            case 4 when swt == WireType.Varint: span.DurationNanos = s.ReadVarint(); break;
                            case 5 when swt == WireType.LengthDelimited: span.Attributes.Add(ReadKeyValue(s.ReadSubMessage())); break;
                            default: s.SkipField(sf, swt); break;
                        }
                    }

                    ss.Spans.Add(span);
                    break;
                case 2 when wt == WireType.Varint: ss.Matched = r.ReadVarint32(); break;
                case 3 when wt == WireType.LengthDelimited: ss.Attributes.Add(ReadKeyValue(r.ReadSubMessage())); break;
                default: r.SkipField(f, wt); break;
            }
        }

        return ss;
    }

    private static KeyValuePair<string, TraceQLValue> ReadKeyValue(ProtoReader r)
    {
        string key = string.Empty;
        var value = TraceQLValue.Nil;
        while (r.TryReadTag(out int f, out var wt))
        {
            if (f == 1 && wt == WireType.LengthDelimited)
            {
                key = r.ReadString();
            }
            else if (f == 2 && wt == WireType.LengthDelimited)
            {
                value = ReadAnyValue(r.ReadSubMessage());
            }
            else
            {
                r.SkipField(f, wt);
            }
        }

        return new(key, value);
    }

    private static TraceQLValue ReadAnyValue(ProtoReader r)
    {
        var v = TraceQLValue.Nil;
        while (r.TryReadTag(out int f, out var wt))
        {
            switch (f)
            {
                case 1 when wt == WireType.LengthDelimited: v = TraceQLValue.FromString(r.ReadString()); break;
                case 2 when wt == WireType.Varint: v = TraceQLValue.FromBool(r.ReadVarint() != 0); break;
                case 3 when wt == WireType.Varint: v = TraceQLValue.FromInt((long)r.ReadVarint()); break;
                case 4 when wt == WireType.Fixed64: v = TraceQLValue.FromFloat(r.ReadDouble()); break;
                default: r.SkipField(f, wt); break;
            }
        }

        return v;
    }

    private static void WriteTrace(ProtoWriter w, TraceSearchMetadata t)
    {
        int token = w.BeginMessage(1);
        w.WriteStringField(1, SearchResultJson.TraceIdHex(t.TraceId));
        w.WriteStringField(2, t.RootServiceName.Length == 0 ? TraceSearchMetadata.RootSpanNotYetReceived : t.RootServiceName);
        if (t.RootTraceName.Length > 0)
        {
            w.WriteStringField(3, t.RootTraceName);
        }

        VarintIfSet(w, 4, t.StartTimeUnixNano);
        VarintIfSet(w, 5, t.DurationMs);
        if (t.SpanSets.Count > 0)
        {
            WriteSpanSet(w, 6, t.SpanSets[0]);
            foreach (var ss in t.SpanSets)
            {
                WriteSpanSet(w, 7, ss);
            }
        }

        if (t.ServiceStats is { Count: > 0 })
        {
            foreach (var (svc, st) in t.ServiceStats.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                int e = w.BeginMessage(8);
                w.WriteStringField(1, svc);
                int v = w.BeginMessage(2);
                VarintIfSet(w, 1, (ulong)st.SpanCount);
                VarintIfSet(w, 2, (ulong)st.ErrorCount);
                w.EndMessage(v);
                w.EndMessage(e);
            }
        }

        w.EndMessage(token);
    }

    private static void WriteSpanSet(ProtoWriter w, int field, SpanSetResult ss)
    {
        int token = w.BeginMessage(field);
        foreach (var s in ss.Spans)
        {
            int st = w.BeginMessage(1);
            w.WriteStringField(1, s.SpanId.ToHex());
            if (s.Name.Length > 0)
            {
                w.WriteStringField(2, s.Name);
            }

            VarintIfSet(w, 3, s.StartTimeUnixNano);
            VarintIfSet(w, 4, s.DurationNanos);
            foreach (var kv in s.Attributes)
            {
                WriteKeyValue(w, 5, kv);
            }

            w.EndMessage(st);
        }

        VarintIfSet(w, 2, ss.Matched);
        foreach (var kv in ss.Attributes)
        {
            WriteKeyValue(w, 3, kv);
        }

        w.EndMessage(token);
    }

    private static void WriteKeyValue(ProtoWriter w, int field, KeyValuePair<string, TraceQLValue> kv)
    {
        int token = w.BeginMessage(field);
        w.WriteStringField(1, kv.Key);
        int v = w.BeginMessage(2);
        WriteAnyValueBody(w, kv.Value);
        w.EndMessage(v);
        w.EndMessage(token);
    }

    /// <summary>OTLP AnyValue: 1 string, 2 bool, 3 int, 4 double, 5 array; durations/status/kind as text, as the JSON does.</summary>
    internal static void WriteAnyValueBody(ProtoWriter w, in TraceQLValue v)
    {
        switch (v.Kind)
        {
            case ValueKind.Int:
                w.WriteVarintField(3, (ulong)v.Int);
                break;
            case ValueKind.Float:
                w.WriteFixed64Field(4, BitConverter.DoubleToUInt64Bits(v.Float));
                break;
            case ValueKind.Bool:
                w.WriteVarintField(2, v.Bool ? 1UL : 0UL);
                break;
            case ValueKind.Array:
                int a = w.BeginMessage(5);
                foreach (var e in v.Array)
                {
                    int ev = w.BeginMessage(1);
                    WriteAnyValueBody(w, e);
                    w.EndMessage(ev);
                }

                w.EndMessage(a);
                break;
            default:
                w.WriteStringField(1, ValueText.Format(v));
                break;
        }
    }

    private static void WriteSearchMetrics(ProtoWriter w, SearchMetrics m)
    {
        int token = w.BeginMessage(2);
        VarintIfSet(w, 1, m.InspectedTraces);
        VarintIfSet(w, 2, m.InspectedBytes);
        VarintIfSet(w, 3, m.TotalBlocks);
        VarintIfSet(w, 4, m.CompletedJobs);
        VarintIfSet(w, 5, m.TotalJobs);
        VarintIfSet(w, 6, m.TotalBlockBytes);
        VarintIfSet(w, 7, m.InspectedSpans);
        w.EndMessage(token);
    }

    private static void WriteMetadataMetrics(ProtoWriter w, MetadataMetrics m)
    {
        int token = w.BeginMessage(2);
        VarintIfSet(w, 1, m.InspectedBytes);
        VarintIfSet(w, 2, m.TotalJobs);
        VarintIfSet(w, 3, m.CompletedJobs);
        VarintIfSet(w, 4, m.TotalBlocks);
        VarintIfSet(w, 5, m.TotalBlockBytes);
        w.EndMessage(token);
    }

    private static void VarintIfSet(ProtoWriter w, int field, ulong v)
    {
        if (v != 0)
        {
            w.WriteVarintField(field, v);
        }
    }

    private static string Num(ulong v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
