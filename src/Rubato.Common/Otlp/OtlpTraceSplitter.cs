using System.Buffers;
using System.Collections;
using System.Text;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.Common.Otlp;

/// <summary>Options of <see cref="OtlpTraceSplitter.Split"/>.</summary>
/// <param name="MaxAttributeBytes">
/// Tempo's <c>max_attribute_bytes</c>: attribute keys and string values longer than this many UTF-8 bytes are cut
/// (span, resource, scope, event and link attributes; top level only). 0 turns it off.
/// </param>
public readonly record struct OtlpSplitOptions(int MaxAttributeBytes)
{
    public static OtlpSplitOptions None => default;
}

/// <summary>
/// The per-trace segments of one request. Every <see cref="TraceSegment.Payload"/> points into one buffer rented
/// from <see cref="ArrayPool{T}.Shared"/>: it is valid until <see cref="Dispose"/>, after which it must not be read.
/// </summary>
public sealed class OtlpSplitResult : IReadOnlyList<TraceSegment>, IDisposable
{
    private byte[]? _buffer;
    private TraceSegment[]? _segments;
    private readonly int _count;

    internal OtlpSplitResult(byte[]? buffer, TraceSegment[]? segments, int count, int spanCount, int truncated, int payloadBytes)
    {
        _buffer = buffer;
        _segments = segments;
        _count = count;
        SpanCount = spanCount;
        TruncatedAttributes = truncated;
        PayloadBytes = payloadBytes;
    }

    /// <summary>One segment per distinct trace id, in order of first appearance in the request.</summary>
    public IReadOnlyList<TraceSegment> Segments => this;

    /// <summary>Spans in the request (all of them are in some segment).</summary>
    public int SpanCount { get; }

    /// <summary>Attribute keys and string values cut by <see cref="OtlpSplitOptions.MaxAttributeBytes"/>.</summary>
    public int TruncatedAttributes { get; }

    /// <summary>Total bytes of all payloads.</summary>
    public int PayloadBytes { get; }

    public int Count => _count;

    public TraceSegment this[int index]
    {
        get
        {
            ObjectDisposedException.ThrowIf(_segments is null && _count > 0, this);
            if ((uint)index >= (uint)_count)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }

            return _segments![index];
        }
    }

    public IEnumerator<TraceSegment> GetEnumerator()
    {
        for (int i = 0; i < _count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is not null)
        {
            ArrayPool<byte>.Shared.Return(b);
        }

        var s = Interlocked.Exchange(ref _segments, null);
        if (s is not null)
        {
            ArrayPool<TraceSegment>.Shared.Return(s, clearArray: true);
        }
    }
}

/// <summary>
/// The ingest hot path: splits an OTLP <c>ExportTraceServiceRequest</c> into one <c>tempopb.Trace</c> payload per
/// trace id without materialising the model. Resource, scope and span sub-messages are copied verbatim (unknown
/// fields inside them survive); unknown fields at the ResourceSpans/ScopeSpans level are dropped.
/// </summary>
/// <remarks>
/// Cost: one scan of the request plus one copy of every span. Bookkeeping lives in per-thread scratch arrays reused
/// across calls (the split runs synchronously on the caller's thread), so after warm-up a call allocates only the
/// <see cref="OtlpSplitResult"/> object; payloads and the segment array are rented from the shared pools.
/// Spans whose attributes need truncation (and resources/scopes likewise) are decoded, cut and re-encoded: the rare path.
/// </remarks>
public static class OtlpTraceSplitter
{
    [ThreadStatic]
    private static Scratch? t_scratch;

    public static OtlpSplitResult Split(ReadOnlySpan<byte> request, in OtlpSplitOptions options)
    {
        var sc = t_scratch ??= new Scratch();
        sc.Reset();
        try
        {
            return SplitCore(request, options, sc);
        }
        finally
        {
            sc.TrimIfHuge();
        }
    }

    private static OtlpSplitResult SplitCore(ReadOnlySpan<byte> request, in OtlpSplitOptions options, Scratch sc)
    {
        int max = options.MaxAttributeBytes;
        var r = new ProtoReader(request);
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            if (fn == F.TracesData.ResourceSpans)
            {
                r.Expect(wt, WireType.LengthDelimited, fn, "ExportTraceServiceRequest");
                var sub = r.ReadSubMessage();
                ParseResourceSpans(request, ref sub, sc, max);
            }
            else
            {
                r.SkipField(fn, wt);
            }
        }

        if (sc.TraceCount == 0)
        {
            return new OtlpSplitResult(null, null, 0, 0, sc.Truncated, 0);
        }

        // Sizing pass: sub-message lengths in pre-order, so the write pass can emit length prefixes directly.
        long total = 0;
        for (int t = 0; t < sc.TraceCount; t++)
        {
            ref var tr = ref sc.Traces[t];
            tr.SizeIndex = sc.SizeCount;
            tr.Size = SizeTrace(sc, tr.First);
            total += tr.Size;
        }

        if (total > Array.MaxLength)
        {
            throw new OtlpFormatException($"split payloads would need {total} bytes, more than one buffer can hold");
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)total);
        TraceSegment[] segments = ArrayPool<TraceSegment>.Shared.Rent(sc.TraceCount);
        ReadOnlySpan<byte> rewritten = sc.RewrittenSpan;
        int pos = 0;
        int spanTotal = 0;
        for (int t = 0; t < sc.TraceCount; t++)
        {
            ref var tr = ref sc.Traces[t];
            int start = pos;
            pos = WriteTrace(sc, tr.First, tr.SizeIndex, request, rewritten, buffer, pos);
            segments[t] = new TraceSegment(tr.Id, new ReadOnlyMemory<byte>(buffer, start, pos - start), tr.Count, tr.Start, tr.End);
            spanTotal += tr.Count;
        }

        return new OtlpSplitResult(buffer, segments, sc.TraceCount, spanTotal, sc.Truncated, pos);
    }

    // ------------------------------------------------------------------ parse

    private static void ParseResourceSpans(ReadOnlySpan<byte> request, ref ProtoReader r, Scratch sc, int max)
    {
        int res = sc.AddResource();
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.ResourceSpans.Resource:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ResourceSpans");
                        int start = r.BaseOffset + r.ReadLengthDelimitedRange(out int len);
                        ref var re = ref sc.Resources[res];
                        re.Body = new Range32(start, len, false);
                        if (max > 0 && len > max && AttributesNeedCut(request.Slice(start, len), start, F.Resource.Attributes, max))
                        {
                            var rr = new ProtoReader(request.Slice(start, len), start);
                            var model = OtlpProto.DecodeResource(ref rr);
                            sc.Truncated += CutAttributes(model.Attributes, max);
                            var w = sc.Rewritten;
                            int at = w.Length;
                            OtlpProto.WriteResourceBody(w, model);
                            re.Body = new Range32(at, w.Length - at, true);
                        }

                        break;
                    }

                case F.ResourceSpans.ScopeSpans:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ResourceSpans");
                        var sub = r.ReadSubMessage();
                        ParseScopeSpans(request, ref sub, sc, res, max);
                        break;
                    }

                case F.ResourceSpans.SchemaUrl:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ResourceSpans");
                        int start = r.BaseOffset + r.ReadLengthDelimitedRange(out int len);
                        sc.Resources[res].SchemaUrl = new Range32(start, len, false);
                        break;
                    }

                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }
    }

    private static void ParseScopeSpans(ReadOnlySpan<byte> request, ref ProtoReader r, Scratch sc, int res, int max)
    {
        int scope = sc.AddScope(res);
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.ScopeSpans.Scope:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ScopeSpans");
                        int start = r.BaseOffset + r.ReadLengthDelimitedRange(out int len);
                        ref var se = ref sc.Scopes[scope];
                        se.Body = new Range32(start, len, false);
                        if (max > 0 && len > max && AttributesNeedCut(request.Slice(start, len), start, F.InstrumentationScope.Attributes, max))
                        {
                            var rr = new ProtoReader(request.Slice(start, len), start);
                            var model = OtlpProto.DecodeScope(ref rr);
                            sc.Truncated += CutAttributes(model.Attributes, max);
                            var w = sc.Rewritten;
                            int at = w.Length;
                            OtlpProto.WriteScopeBody(w, model);
                            se.Body = new Range32(at, w.Length - at, true);
                        }

                        break;
                    }

                case F.ScopeSpans.Spans:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ScopeSpans");
                        int start = r.BaseOffset + r.ReadLengthDelimitedRange(out int len);
                        ParseSpan(request, start, len, sc, scope, max);
                        break;
                    }

                case F.ScopeSpans.SchemaUrl:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "ScopeSpans");
                        int start = r.BaseOffset + r.ReadLengthDelimitedRange(out int len);
                        sc.Scopes[scope].SchemaUrl = new Range32(start, len, false);
                        break;
                    }

                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }
    }

    private static void ParseSpan(ReadOnlySpan<byte> request, int start, int len, Scratch sc, int scope, int max)
    {
        ReadOnlySpan<byte> body = request.Slice(start, len);
        var r = new ProtoReader(body, start);
        ReadOnlySpan<byte> traceId = default;
        ReadOnlySpan<byte> spanId = default;
        ReadOnlySpan<byte> parentId = default;
        ulong startNs = 0, endNs = 0;
        bool cut = false;
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            switch (fn)
            {
                case F.Span.TraceId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    traceId = r.ReadLengthDelimited();
                    break;
                case F.Span.SpanId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    spanId = r.ReadLengthDelimited();
                    break;
                case F.Span.ParentSpanId:
                    r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                    parentId = r.ReadLengthDelimited();
                    break;
                case F.Span.StartTimeUnixNano:
                    r.Expect(wt, WireType.Fixed64, fn, "Span");
                    startNs = r.ReadFixed64();
                    break;
                case F.Span.EndTimeUnixNano:
                    r.Expect(wt, WireType.Fixed64, fn, "Span");
                    endNs = r.ReadFixed64();
                    break;
                case F.Span.Attributes:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                        int at = r.ReadLengthDelimitedRange(out int l);
                        if (max > 0 && !cut && l > max)
                        {
                            cut = KeyValueNeedsCut(body.Slice(at, l), start + at, max);
                        }

                        break;
                    }

                case F.Span.Events:
                case F.Span.Links:
                    {
                        r.Expect(wt, WireType.LengthDelimited, fn, "Span");
                        int at = r.ReadLengthDelimitedRange(out int l);
                        if (max > 0 && !cut && l > max)
                        {
                            int attrField = fn == F.Span.Events ? F.Event.Attributes : F.Link.Attributes;
                            cut = AttributesNeedCut(body.Slice(at, l), start + at, attrField, max);
                        }

                        break;
                    }

                default:
                    r.SkipField(fn, wt);
                    break;
            }
        }

        if (traceId.Length != TraceId.Size)
        {
            throw new OtlpValidationException($"trace ids must be 128 bit, got {traceId.Length} bytes");
        }

        if (spanId.Length != SpanId.Size)
        {
            throw new OtlpValidationException($"span ids must be 64 bit, got {spanId.Length} bytes");
        }

        if (parentId.Length != 0 && parentId.Length != SpanId.Size)
        {
            throw new OtlpValidationException($"parent span ids must be empty or 64 bit, got {parentId.Length} bytes");
        }

        var id = TraceId.FromBytes(traceId);
        if (id.IsEmpty)
        {
            throw new OtlpValidationException("trace ids must not be all zero");
        }

        if (SpanId.FromBytes(spanId).IsEmpty)
        {
            throw new OtlpValidationException("span ids must not be all zero");
        }

        var range = new Range32(start, len, false);
        if (cut)
        {
            var rr = new ProtoReader(body, start);
            var model = OtlpProto.DecodeSpan(ref rr);
            int n = CutAttributes(model.Attributes, max);
            foreach (var e in model.Events)
            {
                n += CutAttributes(e.Attributes, max);
            }

            foreach (var l in model.Links)
            {
                n += CutAttributes(l.Attributes, max);
            }

            sc.Truncated += n;
            var w = sc.Rewritten;
            int at = w.Length;
            OtlpProto.WriteSpanBody(w, model);
            range = new Range32(at, w.Length - at, true);
        }

        sc.AddSpan(id, range, scope, startNs, endNs);
    }

    /// <summary>True when any KeyValue in field <paramref name="attrField"/> of the message has an over-long key or string value.</summary>
    private static bool AttributesNeedCut(ReadOnlySpan<byte> message, int baseOffset, int attrField, int max)
    {
        var r = new ProtoReader(message, baseOffset);
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            if (fn == attrField && wt == WireType.LengthDelimited)
            {
                int at = r.ReadLengthDelimitedRange(out int l);
                if (l > max && KeyValueNeedsCut(message.Slice(at, l), baseOffset + at, max))
                {
                    return true;
                }
            }
            else
            {
                r.SkipField(fn, wt);
            }
        }

        return false;
    }

    private static bool KeyValueNeedsCut(ReadOnlySpan<byte> kv, int baseOffset, int max)
    {
        var r = new ProtoReader(kv, baseOffset);
        while (r.TryReadTag(out int fn, out WireType wt))
        {
            if (fn == F.KeyValue.Key && wt == WireType.LengthDelimited)
            {
                r.ReadLengthDelimitedRange(out int l);
                if (l > max)
                {
                    return true;
                }
            }
            else if (fn == F.KeyValue.Value && wt == WireType.LengthDelimited)
            {
                var v = r.ReadSubMessage();
                while (v.TryReadTag(out int vfn, out WireType vwt))
                {
                    if (vfn == F.AnyValue.StringValue && vwt == WireType.LengthDelimited)
                    {
                        v.ReadLengthDelimitedRange(out int l);
                        if (l > max)
                        {
                            return true;
                        }
                    }
                    else
                    {
                        v.SkipField(vfn, vwt);
                    }
                }
            }
            else
            {
                r.SkipField(fn, wt);
            }
        }

        return false;
    }

    /// <summary>Cuts keys and string values to at most <paramref name="max"/> UTF-8 bytes; returns how many were cut.</summary>
    internal static int CutAttributes(List<KeyValue> attributes, int max)
    {
        int n = 0;
        for (int i = 0; i < attributes.Count; i++)
        {
            var kv = attributes[i];
            string key = TruncateUtf8(kv.Key, max, ref n);
            var value = kv.Value;
            if (value.Kind == AnyValueKind.String)
            {
                int before = n;
                string s = TruncateUtf8(value.StringValue!, max, ref n);
                if (n != before)
                {
                    value = AnyValue.String(s);
                }
            }

            if (!ReferenceEquals(key, kv.Key) || !ReferenceEquals(value, kv.Value))
            {
                attributes[i] = new KeyValue(key, value);
            }
        }

        return n;
    }

    /// <summary>The longest prefix of whole characters within <paramref name="maxBytes"/> UTF-8 bytes.</summary>
    internal static string TruncateUtf8(string s, int maxBytes, ref int count)
    {
        if (s.Length * 3 <= maxBytes || Encoding.UTF8.GetByteCount(s) <= maxBytes)
        {
            return s;
        }

        int bytes = 0;
        int i = 0;
        while (i < s.Length)
        {
            int cb;
            int step = 1;
            char c = s[i];
            if (c < 0x80)
            {
                cb = 1;
            }
            else if (c < 0x800)
            {
                cb = 2;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cb = 4;
                step = 2;
            }
            else
            {
                cb = 3;
            }

            if (bytes + cb > maxBytes)
            {
                break;
            }

            bytes += cb;
            i += step;
        }

        count++;
        return s[..i];
    }

    // ------------------------------------------------------------------ size + write

    private static int ResourceFieldSize(in ResEntry re) =>
        (re.Body.Length >= 0 ? ProtoWriter.LengthDelimitedSize(F.ResourceSpans.Resource, re.Body.Length) : 0);

    private static int SizeTrace(Scratch sc, int s)
    {
        int total = 0;
        while (s >= 0)
        {
            int res = sc.Scopes[sc.Spans[s].Scope].Resource;
            ref var re = ref sc.Resources[res];
            int rsIdx = sc.PushSize();
            int rsLen = ResourceFieldSize(re);
            while (s >= 0 && sc.Scopes[sc.Spans[s].Scope].Resource == res)
            {
                int scope = sc.Spans[s].Scope;
                ref var se = ref sc.Scopes[scope];
                int ssIdx = sc.PushSize();
                int ssLen = se.Body.Length >= 0 ? ProtoWriter.LengthDelimitedSize(F.ScopeSpans.Scope, se.Body.Length) : 0;
                while (s >= 0 && sc.Spans[s].Scope == scope)
                {
                    ssLen += ProtoWriter.LengthDelimitedSize(F.ScopeSpans.Spans, sc.Spans[s].Body.Length);
                    s = sc.Spans[s].Next;
                }

                if (se.SchemaUrl.Length >= 0)
                {
                    ssLen += ProtoWriter.LengthDelimitedSize(F.ScopeSpans.SchemaUrl, se.SchemaUrl.Length);
                }

                sc.Sizes[ssIdx] = ssLen;
                rsLen += ProtoWriter.LengthDelimitedSize(F.ResourceSpans.ScopeSpans, ssLen);
            }

            if (re.SchemaUrl.Length >= 0)
            {
                rsLen += ProtoWriter.LengthDelimitedSize(F.ResourceSpans.SchemaUrl, re.SchemaUrl.Length);
            }

            sc.Sizes[rsIdx] = rsLen;
            total += ProtoWriter.LengthDelimitedSize(F.TracesData.ResourceSpans, rsLen);
        }

        return total;
    }

    private static int WriteTrace(Scratch sc, int s, int sizeIdx, ReadOnlySpan<byte> request, ReadOnlySpan<byte> rewritten, byte[] buffer, int pos)
    {
        Span<byte> dst = buffer;
        while (s >= 0)
        {
            int res = sc.Scopes[sc.Spans[s].Scope].Resource;
            ref var re = ref sc.Resources[res];
            pos = PutHeader(dst, pos, F.TracesData.ResourceSpans, sc.Sizes[sizeIdx++]);
            if (re.Body.Length >= 0)
            {
                pos = PutField(dst, pos, F.ResourceSpans.Resource, re.Body.Of(request, rewritten));
            }

            while (s >= 0 && sc.Scopes[sc.Spans[s].Scope].Resource == res)
            {
                int scope = sc.Spans[s].Scope;
                ref var se = ref sc.Scopes[scope];
                pos = PutHeader(dst, pos, F.ResourceSpans.ScopeSpans, sc.Sizes[sizeIdx++]);
                if (se.Body.Length >= 0)
                {
                    pos = PutField(dst, pos, F.ScopeSpans.Scope, se.Body.Of(request, rewritten));
                }

                while (s >= 0 && sc.Spans[s].Scope == scope)
                {
                    pos = PutField(dst, pos, F.ScopeSpans.Spans, sc.Spans[s].Body.Of(request, rewritten));
                    s = sc.Spans[s].Next;
                }

                if (se.SchemaUrl.Length >= 0)
                {
                    pos = PutField(dst, pos, F.ScopeSpans.SchemaUrl, se.SchemaUrl.Of(request, rewritten));
                }
            }

            if (re.SchemaUrl.Length >= 0)
            {
                pos = PutField(dst, pos, F.ResourceSpans.SchemaUrl, re.SchemaUrl.Of(request, rewritten));
            }
        }

        return pos;
    }

    private static int PutHeader(Span<byte> dst, int pos, int field, int length)
    {
        pos += ProtoWriter.WriteVarint(dst[pos..], ((ulong)field << 3) | (ulong)WireType.LengthDelimited);
        return pos + ProtoWriter.WriteVarint(dst[pos..], (ulong)length);
    }

    private static int PutField(Span<byte> dst, int pos, int field, ReadOnlySpan<byte> body)
    {
        pos = PutHeader(dst, pos, field, body.Length);
        body.CopyTo(dst[pos..]);
        return pos + body.Length;
    }

    // ------------------------------------------------------------------ scratch

    /// <summary>A byte range in the request or (when <see cref="Rewritten"/>) in the scratch re-encode buffer; Length -1 = absent.</summary>
    private readonly struct Range32(int offset, int length, bool rewritten)
    {
        public static readonly Range32 Absent = new(0, -1, false);

        public readonly int Offset = offset;
        public readonly int Length = length;
        public readonly bool Rewritten = rewritten;

        public ReadOnlySpan<byte> Of(ReadOnlySpan<byte> request, ReadOnlySpan<byte> rewritten) =>
            (Rewritten ? rewritten : request).Slice(Offset, Length);
    }

    private struct SpanEntry
    {
        public Range32 Body;
        public int Scope;
        public int Next;
    }

    private struct ScopeEntry
    {
        public Range32 Body;
        public Range32 SchemaUrl;
        public int Resource;
    }

    private struct ResEntry
    {
        public Range32 Body;
        public Range32 SchemaUrl;
    }

    private struct TraceEntry
    {
        public TraceId Id;
        public int First;
        public int Last;
        public int Count;
        public ulong Start;
        public ulong End;
        public int SizeIndex;
        public int Size;
    }

    private sealed class Scratch
    {
        private const int HugeEntries = 1 << 16;

        public SpanEntry[] Spans = new SpanEntry[256];
        public int SpanCount;
        public ScopeEntry[] Scopes = new ScopeEntry[8];
        public int ScopeCount;
        public ResEntry[] Resources = new ResEntry[8];
        public int ResourceCount;
        public TraceEntry[] Traces = new TraceEntry[32];
        public int TraceCount;
        public int[] Sizes = new int[64];
        public int SizeCount;
        public int Truncated;

        // Open-addressing table of trace index + 1 (0 = free); capacity a power of two, kept at most half full.
        private int[] _table = new int[64];
        private ProtoWriter? _rewritten;

        public ProtoWriter Rewritten => _rewritten ??= new ProtoWriter(4096);

        public ReadOnlySpan<byte> RewrittenSpan => _rewritten is null ? default : _rewritten.WrittenSpan;

        public void Reset()
        {
            SpanCount = ScopeCount = ResourceCount = SizeCount = Truncated = 0;
            if (TraceCount > 0)
            {
                Array.Clear(_table);
                TraceCount = 0;
            }

            _rewritten?.Clear();
        }

        /// <summary>Drops scratch that a rare huge request grew, so one outlier does not pin memory on the thread forever.</summary>
        public void TrimIfHuge()
        {
            if (Spans.Length > HugeEntries || Traces.Length > HugeEntries || Sizes.Length > HugeEntries || (_rewritten?.Length ?? 0) > (1 << 22))
            {
                _rewritten?.Dispose();
                t_scratch = null;
            }
        }

        public int AddResource()
        {
            if (ResourceCount == Resources.Length)
            {
                Array.Resize(ref Resources, Resources.Length * 2);
            }

            Resources[ResourceCount] = new ResEntry { Body = Range32.Absent, SchemaUrl = Range32.Absent };
            return ResourceCount++;
        }

        public int AddScope(int resource)
        {
            if (ScopeCount == Scopes.Length)
            {
                Array.Resize(ref Scopes, Scopes.Length * 2);
            }

            Scopes[ScopeCount] = new ScopeEntry { Body = Range32.Absent, SchemaUrl = Range32.Absent, Resource = resource };
            return ScopeCount++;
        }

        public int PushSize()
        {
            if (SizeCount == Sizes.Length)
            {
                Array.Resize(ref Sizes, Sizes.Length * 2);
            }

            return SizeCount++;
        }

        public void AddSpan(TraceId id, Range32 body, int scope, ulong start, ulong end)
        {
            if (SpanCount == Spans.Length)
            {
                Array.Resize(ref Spans, Spans.Length * 2);
            }

            int s = SpanCount++;
            Spans[s] = new SpanEntry { Body = body, Scope = scope, Next = -1 };
            int t = FindOrAddTrace(id);
            ref var tr = ref Traces[t];
            if (tr.Count == 0)
            {
                tr.First = s;
                tr.Start = start;
                tr.End = end;
            }
            else
            {
                Spans[tr.Last].Next = s;
                tr.Start = Math.Min(tr.Start, start);
                tr.End = Math.Max(tr.End, end);
            }

            tr.Last = s;
            tr.Count++;
        }

        private int FindOrAddTrace(TraceId id)
        {
            int mask = _table.Length - 1;
            int slot = Hash(id) & mask;
            while (true)
            {
                int e = _table[slot];
                if (e == 0)
                {
                    break;
                }

                if (Traces[e - 1].Id == id)
                {
                    return e - 1;
                }

                slot = (slot + 1) & mask;
            }

            if (TraceCount == Traces.Length)
            {
                Array.Resize(ref Traces, Traces.Length * 2);
            }

            int t = TraceCount++;
            Traces[t] = new TraceEntry { Id = id };
            _table[slot] = t + 1;
            if (TraceCount * 2 > _table.Length)
            {
                Rehash();
            }

            return t;
        }

        private void Rehash()
        {
            _table = new int[_table.Length * 2];
            int mask = _table.Length - 1;
            for (int t = 0; t < TraceCount; t++)
            {
                int slot = Hash(Traces[t].Id) & mask;
                while (_table[slot] != 0)
                {
                    slot = (slot + 1) & mask;
                }

                _table[slot] = t + 1;
            }
        }

        private static int Hash(TraceId id)
        {
            ulong h = (id.High ^ (id.Low * 0x9E3779B97F4A7C15UL)) * 0xBF58476D1CE4E5B9UL;
            return (int)(h >> 33);
        }
    }
}
