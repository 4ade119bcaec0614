using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Tests;

/// <summary>A temporary folder deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rubato-storage-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}

/// <summary>A decorator over a real store that counts range-read bytes and whole-object reads.</summary>
public sealed class CountingObjectStore(IObjectStore inner) : IObjectStore
{
    private long _bytesRead;
    private long _reads;

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long Reads => Interlocked.Read(ref _reads);

    public List<string> ReadKeys { get; } = [];

    public void Reset()
    {
        Interlocked.Exchange(ref _bytesRead, 0);
        Interlocked.Exchange(ref _reads, 0);
        lock (ReadKeys)
        {
            ReadKeys.Clear();
        }
    }

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => inner.PutAsync(key, data, ct);

    public Task PutAsync(string key, Stream data, CancellationToken ct) => inner.PutAsync(key, data, ct);

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        var b = await inner.GetAsync(key, ct);
        Count(key, b?.Length ?? 0);
        return b;
    }

    public async Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        int n = await inner.ReadRangeAsync(key, offset, buffer, ct);
        Count(key, n);
        return n;
    }

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task<bool> ExistsAsync(string key, CancellationToken ct) => inner.ExistsAsync(key, ct);

    public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

    private void Count(string key, long n)
    {
        Interlocked.Add(ref _bytesRead, n);
        Interlocked.Increment(ref _reads);
        lock (ReadKeys)
        {
            ReadKeys.Add(key);
        }
    }
}

/// <summary>Deep structural comparison of traces; returns the path of the first difference, or null.</summary>
public static class TraceDiff
{
    public static string? Diff(Trace expected, Trace actual)
    {
        var sb = new StringBuilder();
        if (expected.ResourceSpans.Count != actual.ResourceSpans.Count)
        {
            return $"ResourceSpans.Count {expected.ResourceSpans.Count} != {actual.ResourceSpans.Count}";
        }

        for (int r = 0; r < expected.ResourceSpans.Count; r++)
        {
            var e = expected.ResourceSpans[r];
            var a = actual.ResourceSpans[r];
            string p = $"rs[{r}]";
            if (e.SchemaUrl != a.SchemaUrl) return $"{p}.SchemaUrl";
            if (e.Resource.DroppedAttributesCount != a.Resource.DroppedAttributesCount) return $"{p}.Resource.Dropped";
            if (AttrDiff(e.Resource.Attributes, a.Resource.Attributes) is { } d1) return $"{p}.Resource.{d1}";
            if (e.ScopeSpans.Count != a.ScopeSpans.Count) return $"{p}.ScopeSpans.Count";
            for (int s = 0; s < e.ScopeSpans.Count; s++)
            {
                var es = e.ScopeSpans[s];
                var @as = a.ScopeSpans[s];
                string ps = $"{p}.ss[{s}]";
                if (es.SchemaUrl != @as.SchemaUrl || es.Scope.Name != @as.Scope.Name || es.Scope.Version != @as.Scope.Version || es.Scope.DroppedAttributesCount != @as.Scope.DroppedAttributesCount) return $"{ps}.Scope";
                if (AttrDiff(es.Scope.Attributes, @as.Scope.Attributes) is { } d2) return $"{ps}.Scope.{d2}";
                if (es.Spans.Count != @as.Spans.Count) return $"{ps}.Spans.Count";
                for (int i = 0; i < es.Spans.Count; i++)
                {
                    if (SpanDiff(es.Spans[i], @as.Spans[i]) is { } d3) return $"{ps}.span[{i}].{d3}";
                }
            }
        }

        return null;
    }

    private static string? SpanDiff(Span e, Span a)
    {
        if (e.TraceId != a.TraceId) return "TraceId";
        if (e.SpanId != a.SpanId) return "SpanId";
        if (e.ParentSpanId != a.ParentSpanId) return "ParentSpanId";
        if (e.TraceState != a.TraceState) return "TraceState";
        if (e.Flags != a.Flags) return "Flags";
        if (e.Name != a.Name) return "Name";
        if (e.Kind != a.Kind) return "Kind";
        if (e.StartTimeUnixNano != a.StartTimeUnixNano) return $"Start {e.StartTimeUnixNano} != {a.StartTimeUnixNano}";
        if (e.EndTimeUnixNano != a.EndTimeUnixNano) return $"End {e.EndTimeUnixNano} != {a.EndTimeUnixNano}";
        if (e.DroppedAttributesCount != a.DroppedAttributesCount || e.DroppedEventsCount != a.DroppedEventsCount || e.DroppedLinksCount != a.DroppedLinksCount) return "Dropped";
        if (e.StatusCode != a.StatusCode || e.StatusMessage != a.StatusMessage) return "Status";
        if (AttrDiff(e.Attributes, a.Attributes) is { } d) return d;
        if (e.Events.Count != a.Events.Count) return "Events.Count";
        for (int i = 0; i < e.Events.Count; i++)
        {
            var ee = e.Events[i];
            var ae = a.Events[i];
            if (ee.TimeUnixNano != ae.TimeUnixNano || ee.Name != ae.Name || ee.DroppedAttributesCount != ae.DroppedAttributesCount) return $"event[{i}]";
            if (AttrDiff(ee.Attributes, ae.Attributes) is { } de) return $"event[{i}].{de}";
        }

        if (e.Links.Count != a.Links.Count) return "Links.Count";
        for (int i = 0; i < e.Links.Count; i++)
        {
            var el = e.Links[i];
            var al = a.Links[i];
            if (el.TraceId != al.TraceId || el.SpanId != al.SpanId || el.TraceState != al.TraceState || el.Flags != al.Flags || el.DroppedAttributesCount != al.DroppedAttributesCount) return $"link[{i}]";
            if (AttrDiff(el.Attributes, al.Attributes) is { } dl) return $"link[{i}].{dl}";
        }

        return null;
    }

    private static string? AttrDiff(List<KeyValue> e, List<KeyValue> a)
    {
        if (e.Count != a.Count) return $"Attributes.Count {e.Count} != {a.Count}";
        for (int i = 0; i < e.Count; i++)
        {
            if (e[i].Key != a[i].Key) return $"attr[{i}].Key";
            if (!e[i].Value.Equals(a[i].Value)) return $"attr[{i}].Value {e[i].Value} != {a[i].Value}";
        }

        return null;
    }
}

/// <summary>FsCheck generators covering every field of the trace model and every AnyValue kind, nested.</summary>
public static class TraceGen
{
    private static readonly Gen<string> Str = Gen.OneOf(
        Gen.Elements("", "a", "service-a", "GET /api/traces", "ünïcödé ✓", "http.method", "k8s.pod.name"),
        Gen.Choose(0, 40).SelectMany(n => Gen.ArrayOf(Gen.Choose(32, 0x24F).Select(c => (char)c), n)).Select(cs => new string(cs)));

    private static readonly Gen<ulong> U64 = Gen.Zip(Gen.Choose(int.MinValue, int.MaxValue), Gen.Choose(int.MinValue, int.MaxValue))
        .Select(t => ((ulong)(uint)t.Item1 << 32) | (uint)t.Item2);

    private static readonly Gen<uint> U32 = Gen.OneOf(Gen.Constant(0u), Gen.Choose(0, 1000).Select(i => (uint)i), U64.Select(v => (uint)v));

    public static Gen<AnyValue> Value(int depth)
    {
        var leaves = new List<(int, Gen<AnyValue>)>
        {
            (1, Gen.Constant(AnyValue.EmptyValue)),
            (4, Str.Select(AnyValue.String)),
            (2, Gen.Elements(true, false).Select(AnyValue.Bool)),
            (3, U64.Select(v => AnyValue.Int((long)v))),
            (2, Gen.OneOf(U64.Select(v => BitConverter.UInt64BitsToDouble(v)), Gen.Elements(0.0, -0.0, 1.5, double.NaN, double.PositiveInfinity, double.MinValue)).Select(AnyValue.Double)),
            (1, Gen.Choose(0, 20).SelectMany(n => Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), n)).Select(AnyValue.Bytes)),
        };
        if (depth > 0)
        {
            leaves.Add((1, Gen.Choose(0, 3).SelectMany(n => Gen.ArrayOf(Value(depth - 1), n)).Select(a => AnyValue.Array(a))));
            leaves.Add((1, Gen.Choose(0, 3).SelectMany(n => Gen.ArrayOf(KeyValueGen(depth - 1), n)).Select(a => AnyValue.KvList(a))));
        }

        return Gen.Frequency(leaves.ToArray());
    }

    public static Gen<KeyValue> KeyValueGen(int depth) => Gen.Zip(Str, Value(depth)).Select(t => new KeyValue(t.Item1, t.Item2));

    private static Gen<KeyValue[]> Attrs => Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(KeyValueGen(2), n));

    private static Gen<SpanEvent> EventGen =>
        from t in U64
        from name in Str
        from attrs in Attrs
        from dropped in U32
        select Fill(new SpanEvent { TimeUnixNano = t, Name = name, DroppedAttributesCount = dropped }, e => e.Attributes, attrs);

    private static Gen<SpanLink> LinkGen =>
        from hi in U64
        from lo in U64
        from sid in U64
        from ts in Str
        from flags in U32
        from dropped in U32
        from attrs in Attrs
        select Fill(new SpanLink { TraceId = new TraceId(hi, lo), SpanId = new SpanId(sid), TraceState = ts, Flags = flags, DroppedAttributesCount = dropped }, l => l.Attributes, attrs);

    private static Gen<Span> SpanGen =>
        from sid in U64
        from parent in Gen.OneOf(Gen.Constant(0UL), U64)
        from name in Str
        from kind in Gen.Choose(0, 5)
        from start in U64
        from end in Gen.OneOf(U64, Gen.Choose(0, 1_000_000).Select(d => (ulong)d))
        from status in Gen.Choose(0, 2)
        from msg in Str
        from ts in Str
        from flags in U32
        from dropped in Gen.Three(U32)
        from attrs in Attrs
        from events in Gen.Choose(0, 2).SelectMany(n => Gen.ArrayOf(EventGen, n))
        from links in Gen.Choose(0, 2).SelectMany(n => Gen.ArrayOf(LinkGen, n))
        select MakeSpan(sid, parent, name, kind, start, end, status, msg, ts, flags, dropped, attrs, events, links);

    private static Gen<ScopeSpans> ScopeGen =>
        from name in Str
        from version in Str
        from url in Str
        from dropped in U32
        from attrs in Attrs
        from spans in Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(SpanGen, n))
        select MakeScope(name, version, url, dropped, attrs, spans);

    private static Gen<ResourceSpans> ResourceGen =>
        from url in Str
        from dropped in U32
        from attrs in Attrs
        from service in Gen.OneOf(Gen.Constant<string?>(null), Str.Select(s => (string?)s))
        from scopes in Gen.Choose(0, 3).SelectMany(n => Gen.ArrayOf(ScopeGen, n))
        select MakeResource(url, dropped, attrs, service, scopes);

    /// <summary>A trace with 0..3 resources; span trace ids are left empty (set by <see cref="WithId"/>).</summary>
    public static Gen<Trace> TraceGenerator =>
        Gen.Choose(0, 3).SelectMany(n => Gen.ArrayOf(ResourceGen, n)).Select(rs =>
        {
            var t = new Trace();
            t.ResourceSpans.AddRange(rs);
            return t;
        });

    /// <summary>Stamps the id on every span (the block stores one id per trace row).</summary>
    public static Trace WithId(Trace t, TraceId id)
    {
        foreach (var (_, _, s) in t.AllSpans())
        {
            s.TraceId = id;
        }

        return t;
    }

    private static T Fill<T>(T target, Func<T, List<KeyValue>> list, KeyValue[] attrs)
    {
        list(target).AddRange(attrs);
        return target;
    }

    private static Span MakeSpan(ulong sid, ulong parent, string name, int kind, ulong start, ulong end, int status, string msg, string ts, uint flags, (uint, uint, uint) dropped, KeyValue[] attrs, SpanEvent[] events, SpanLink[] links)
    {
        var s = new Span
        {
            SpanId = new SpanId(sid),
            ParentSpanId = new SpanId(parent),
            Name = name,
            Kind = (SpanKind)kind,
            StartTimeUnixNano = start,
            EndTimeUnixNano = end < 1_000_001 ? start + end : end,
            StatusCode = (StatusCode)status,
            StatusMessage = msg,
            TraceState = ts,
            Flags = flags,
            DroppedAttributesCount = dropped.Item1,
            DroppedEventsCount = dropped.Item2,
            DroppedLinksCount = dropped.Item3,
        };
        s.Attributes.AddRange(attrs);
        s.Events.AddRange(events);
        s.Links.AddRange(links);
        return s;
    }

    private static ScopeSpans MakeScope(string name, string version, string url, uint dropped, KeyValue[] attrs, Span[] spans)
    {
        var ss = new ScopeSpans { SchemaUrl = url };
        ss.Scope.Name = name;
        ss.Scope.Version = version;
        ss.Scope.DroppedAttributesCount = dropped;
        ss.Scope.Attributes.AddRange(attrs);
        ss.Spans.AddRange(spans);
        return ss;
    }

    private static ResourceSpans MakeResource(string url, uint dropped, KeyValue[] attrs, string? service, ScopeSpans[] scopes)
    {
        var rs = new ResourceSpans { SchemaUrl = url };
        rs.Resource.DroppedAttributesCount = dropped;
        if (service is not null)
        {
            rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
        }

        rs.Resource.Attributes.AddRange(attrs);
        rs.ScopeSpans.AddRange(scopes);
        return rs;
    }
}

/// <summary>A simple realistic trace for bulk tests and benchmarks-like scenarios.</summary>
public static class SampleTraces
{
    public static TraceId Id(int i) => new(0x1000_0000_0000_0000UL + ((ulong)i * 7919UL), (ulong)i * 0x9E3779B97F4A7C15UL);

    public static Trace Make(TraceId id, int spans, ulong baseNanos)
    {
        var t = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("svc-" + (id.Low % 5))));
        rs.Resource.Attributes.Add(new KeyValue("k8s.pod.name", AnyValue.String("pod-" + (id.Low % 17))));
        var ss = new ScopeSpans();
        ss.Scope.Name = "io.opentelemetry.http";
        ss.Scope.Version = "1.2.3";
        for (int i = 0; i < spans; i++)
        {
            var s = new Span
            {
                TraceId = id,
                SpanId = new SpanId((ulong)i + 1),
                ParentSpanId = i == 0 ? default : new SpanId(1),
                Name = i == 0 ? "GET /api" : "db.query " + (i % 4),
                Kind = i == 0 ? SpanKind.Server : SpanKind.Client,
                StartTimeUnixNano = baseNanos + ((ulong)i * 1000),
                EndTimeUnixNano = baseNanos + ((ulong)i * 1000) + 50_000,
                StatusCode = i % 7 == 0 ? StatusCode.Error : StatusCode.Unset,
            };
            s.Attributes.Add(new KeyValue("http.status_code", AnyValue.Int(200 + (i % 3))));
            s.Attributes.Add(new KeyValue("db.statement", AnyValue.String("select * from t where id = " + (i % 11))));
            ss.Spans.Add(s);
        }

        rs.ScopeSpans.Add(ss);
        t.ResourceSpans.Add(rs);
        return t;
    }
}
