using System.Buffers.Binary;

namespace Rubato.LoadGen.Otlp;

/// <summary>One trace inside a built batch: its id and the ids of the spans it carries, in order.</summary>
public sealed record BuiltTrace(byte[] TraceId, ulong[] SpanIds);

/// <summary>
/// An OTLP <c>ExportTraceServiceRequest</c> body plus where each trace id sits in it, so the same template can be
/// re-stamped with fresh trace ids for every send (unique traces without re-encoding).
/// </summary>
public sealed class OtlpBatch
{
    public OtlpBatch(byte[] body, IReadOnlyList<BuiltTrace> traces, int[][] traceIdOffsets, int spanCount)
    {
        Body = body;
        Traces = traces;
        TraceIdOffsets = traceIdOffsets;
        SpanCount = spanCount;
    }

    public byte[] Body { get; }

    public IReadOnlyList<BuiltTrace> Traces { get; }

    /// <summary>For trace i, every offset in <see cref="Body"/> where its 16 id bytes start (one per span).</summary>
    public int[][] TraceIdOffsets { get; }

    public int SpanCount { get; }

    /// <summary>
    /// Copies the body into <paramref name="destination"/> and overwrites trace i's id with
    /// (<paramref name="runPrefix"/>, <paramref name="firstSequence"/> + i), both big-endian. Runs on the sending thread;
    /// costs one memcpy of the body plus 16 bytes per span.
    /// </summary>
    public void StampInto(Span<byte> destination, ulong runPrefix, ulong firstSequence)
    {
        Body.CopyTo(destination);
        for (int t = 0; t < TraceIdOffsets.Length; t++)
        {
            foreach (int off in TraceIdOffsets[t])
            {
                BinaryPrimitives.WriteUInt64BigEndian(destination[off..], runPrefix);
                BinaryPrimitives.WriteUInt64BigEndian(destination[(off + 8)..], firstSequence + (ulong)t);
            }
        }
    }
}

/// <summary>
/// Builds realistic OTLP span batches (~400 bytes a span: HTTP server/client spans with the usual semantic-convention
/// attributes) directly as protobuf bytes.
/// </summary>
public static class OtlpBatchBuilder
{
    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE"];
    private static readonly string[] Routes = ["/api/v1/orders/{id}", "/api/v1/cart", "/api/v1/users/{id}/profile", "/checkout", "/api/v1/search"];
    private static readonly string[] Services = ["frontend", "checkout", "cart", "payments", "search", "users"];

    /// <summary>Builds a batch with the given trace ids and <paramref name="spansPerTrace"/> spans each.</summary>
    /// <param name="traceIds">16-byte trace ids, all distinct.</param>
    /// <param name="rng">Seeded source for span ids, names and attribute values.</param>
    /// <param name="nowUnixNano">Start time base; spans start within a second after it.</param>
    public static OtlpBatch Build(IReadOnlyList<byte[]> traceIds, int spansPerTrace, Random rng, ulong nowUnixNano)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(spansPerTrace, 1);
        var w = new ProtoWriter();
        var traces = new List<BuiltTrace>(traceIds.Count);
        string service = Services[rng.Next(Services.Length)];

        // ExportTraceServiceRequest.resource_spans = 1
        w.BeginMessage(1);
        {
            // ResourceSpans.resource = 1
            w.BeginMessage(1);
            StringAttr(w, 1, "service.name", service);
            StringAttr(w, 1, "service.version", "1.4.2");
            StringAttr(w, 1, "deployment.environment", "production");
            StringAttr(w, 1, "host.name", $"ip-10-0-{rng.Next(256)}-{rng.Next(256)}");
            StringAttr(w, 1, "telemetry.sdk.language", "dotnet");
            w.EndMessage();

            // ResourceSpans.scope_spans = 2
            w.BeginMessage(2);
            w.BeginMessage(1); // ScopeSpans.scope
            w.String(1, "rubato.loadgen");
            w.String(2, "1.0.0");
            w.EndMessage();

            foreach (byte[] traceId in traceIds)
            {
                if (traceId.Length != 16)
                {
                    throw new ArgumentException($"trace id must be 16 bytes, got {traceId.Length}", nameof(traceIds));
                }

                var spanIds = new ulong[spansPerTrace];
                ulong start = nowUnixNano + (ulong)rng.Next(1_000_000_000);
                for (int s = 0; s < spansPerTrace; s++)
                {
                    spanIds[s] = NextNonZero(rng);
                    WriteSpan(w, rng, traceId, spanIds[s], s == 0 ? 0 : spanIds[rng.Next(s)], start + ((ulong)s * 1_000_000), s);
                }

                traces.Add(new BuiltTrace(traceId, spanIds));
            }

            w.EndMessage(); // scope_spans
        }

        w.EndMessage(); // resource_spans
        byte[] body = w.ToArray();
        var offsets = new int[traces.Count][];
        for (int t = 0; t < traces.Count; t++)
        {
            offsets[t] = FindAll(body, traces[t].TraceId);
            if (offsets[t].Length != spansPerTrace)
            {
                throw new InvalidOperationException($"trace id found {offsets[t].Length} times in the body, expected {spansPerTrace}");
            }
        }

        return new OtlpBatch(body, traces, offsets, traces.Count * spansPerTrace);
    }

    /// <summary>A random 16-byte trace id.</summary>
    public static byte[] RandomTraceId(Random rng)
    {
        var id = new byte[16];
        do
        {
            rng.NextBytes(id);
        }
        while (id.AsSpan().IndexOfAnyExcept((byte)0) < 0);

        return id;
    }

    private static void WriteSpan(ProtoWriter w, Random rng, byte[] traceId, ulong spanId, ulong parentId, ulong start, int index)
    {
        Span<byte> idBytes = stackalloc byte[8];
        w.BeginMessage(2); // ScopeSpans.spans
        w.Bytes(1, traceId);
        BinaryPrimitives.WriteUInt64BigEndian(idBytes, spanId);
        w.Bytes(2, idBytes);
        if (parentId != 0)
        {
            BinaryPrimitives.WriteUInt64BigEndian(idBytes, parentId);
            w.Bytes(4, idBytes);
        }

        string method = Methods[rng.Next(Methods.Length)];
        string route = Routes[rng.Next(Routes.Length)];
        bool server = index == 0 || rng.Next(2) == 0;
        w.String(5, $"{method} {route}");
        w.UInt64(6, server ? 2UL : 3UL); // SPAN_KIND_SERVER / SPAN_KIND_CLIENT
        ulong duration = 50_000 + (ulong)rng.Next(200_000_000);
        w.Fixed64(7, start);
        w.Fixed64(8, start + duration);
        StringAttr(w, 9, "http.method", method);
        StringAttr(w, 9, "http.url", $"https://shop.example.com{route.Replace("{id}", rng.Next(1_000_000).ToString())}?page={rng.Next(10)}");
        StringAttr(w, 9, "http.route", route);
        IntAttr(w, 9, "http.status_code", rng.Next(20) == 0 ? 500 : 200);
        StringAttr(w, 9, "net.peer.name", $"{Services[rng.Next(Services.Length)]}.svc.cluster.local");
        StringAttr(w, 9, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)");
        IntAttr(w, 9, "http.response_content_length", rng.Next(100_000));
        w.EndMessage();
    }

    private static void StringAttr(ProtoWriter w, int field, string key, string value)
    {
        w.BeginMessage(field); // KeyValue
        w.String(1, key);
        w.BeginMessage(2); // AnyValue
        w.String(1, value);
        w.EndMessage();
        w.EndMessage();
    }

    private static void IntAttr(ProtoWriter w, int field, string key, long value)
    {
        w.BeginMessage(field);
        w.String(1, key);
        w.BeginMessage(2);
        w.Int64(3, value);
        w.EndMessage();
        w.EndMessage();
    }

    private static ulong NextNonZero(Random rng)
    {
        ulong v;
        do
        {
            v = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
        }
        while (v == 0);

        return v;
    }

    private static int[] FindAll(byte[] haystack, byte[] needle)
    {
        var found = new List<int>();
        int from = 0;
        while (true)
        {
            int i = haystack.AsSpan(from).IndexOf(needle);
            if (i < 0)
            {
                return [.. found];
            }

            found.Add(from + i);
            from += i + 1;
        }
    }
}
