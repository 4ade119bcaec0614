using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Rubato.Cache;
using Rubato.Common.Ids;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend;

/// <summary>
/// The <c>frontend-search</c> cache role for search jobs (Tempo's query-frontend job cache, keys <c>sj:</c>): the
/// result of one block job, stored under tenant + canonical query + result-shaping parameters + block id + page range.
/// </summary>
/// <remarks>
/// <para><b>When a job is cached.</b> Only jobs over one immutable block (<see cref="SearchJob.Block"/>), and only when
/// the searched range covers the block entirely (or the search has no range): then the range cannot change what the
/// job finds, so it is not part of the key. In-memory data is never cached.</para>
/// <para><b>What is stored.</b> The job's own result: the first <c>limit</c> matching traces of the block in block
/// order (the <c>limit</c> most recent with <c>most_recent=true</c>) with their spansets, and the job's inspected
/// counts, in a compact binary form (varints, exact nanoseconds). A job cut short because the whole search already had
/// <c>limit</c> traces is not stored: its result would depend on the other jobs.</para>
/// <para><b>Failures.</b> A cache that fails, is down, or does not answer within <see cref="GetTimeout"/> is a miss and
/// the job runs; sets run in the background and their failures are dropped, so the cache never changes a result and
/// never holds a search up for long. Thread-safe.</para>
/// </remarks>
public sealed class SearchJobCache(ICache cache)
{
    /// <summary>Longest a search waits for a cache lookup before it runs the job instead.</summary>
    public static readonly TimeSpan GetTimeout = TimeSpan.FromMilliseconds(500);

    private const byte FormatVersion = 1;

    public ICache Cache { get; } = cache ?? throw new ArgumentNullException(nameof(cache));

    /// <summary>
    /// The job's key, or null when the job must not be cached (not a single block, or the range cuts the block).
    /// Key: <c>sj:{tenant}:{hash of canonical query, limit, spss}:{block id}:{first page}:{pages}</c>.
    /// </summary>
    public static string? KeyFor(string tenant, SearchJob job, SearchQuery query)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(query);
        if (job.Block is not { } b)
        {
            return null;
        }

        bool unbounded = query.StartUnixSeconds == 0 && query.EndUnixSeconds == 0;
        if (!unbounded && (b.StartUnixSeconds < query.StartUnixSeconds || b.EndUnixSeconds > query.EndUnixSeconds))
        {
            return null;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"sj:{tenant}:{QueryHash(query)}:{b.BlockId:N}:{b.StartPage}:{b.Pages}");
    }

    /// <summary>SHA-256 (first 16 bytes, hex) of the canonical TraceQL (<see cref="AstPrinter"/>), limit and spss.</summary>
    public static string QueryHash(SearchQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        string canonical = string.Create(CultureInfo.InvariantCulture,
            $"{AstPrinter.Print(query.Root)}\nlimit={query.Limit}\nspss={query.SpansPerSpanSet}");
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(canonical), hash);
        return Convert.ToHexStringLower(hash[..16]);
    }

    /// <summary>The cached job result, or null on a miss, a failure, a timeout or an undecodable value.</summary>
    /// <exception cref="OperationCanceledException">Only when <paramref name="ct"/> is cancelled.</exception>
    public async ValueTask<SearchResult?> TryGetAsync(string key, CancellationToken ct)
    {
        byte[]? value;
        try
        {
            value = await Cache.GetAsync(key, ct).AsTask().WaitAsync(GetTimeout, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            // Timeout or an unexpected cache failure: a miss. The lookup itself is bounded by the cache's own timeout.
            return null;
        }

        return value is null ? null : Decode(value);
    }

    /// <summary>Stores a job result in the background; never throws and never delays the caller.</summary>
    public void SetInBackground(string key, SearchResult result)
    {
        byte[] value = Encode(result);
        _ = Task.Run(async () =>
        {
            try
            {
                await Cache.SetAsync(key, value).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Best effort: a failed set only means a later miss.
            }
        });
    }

    /// <summary>Compact binary form of a job result (traces with spansets and exact times, and its metrics).</summary>
    public static byte[] Encode(SearchResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var stream = new MemoryStream(256 + (result.Traces.Count * 128));
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(FormatVersion);
            var m = result.Metrics;
            w.Write7BitEncodedInt64(m.InspectedTraces);
            w.Write7BitEncodedInt64((long)m.InspectedBytes);
            w.Write7BitEncodedInt64((long)m.InspectedSpans);
            w.Write7BitEncodedInt(result.Traces.Count);
            foreach (var t in result.Traces)
            {
                w.Write(t.TraceId.High);
                w.Write(t.TraceId.Low);
                w.Write(t.RootServiceName);
                w.Write(t.RootTraceName);
                w.Write7BitEncodedInt64((long)t.StartTimeUnixNano);
                w.Write7BitEncodedInt64((long)t.DurationNanos);
                w.Write7BitEncodedInt(t.ServiceStats is null ? -1 : t.ServiceStats.Count);
                if (t.ServiceStats is not null)
                {
                    foreach (var (svc, st) in t.ServiceStats)
                    {
                        w.Write(svc);
                        w.Write7BitEncodedInt(st.SpanCount);
                        w.Write7BitEncodedInt(st.ErrorCount);
                    }
                }

                w.Write7BitEncodedInt(t.SpanSets.Count);
                foreach (var ss in t.SpanSets)
                {
                    w.Write7BitEncodedInt((int)ss.Matched);
                    WriteAttributes(w, ss.Attributes);
                    w.Write7BitEncodedInt(ss.Spans.Count);
                    foreach (var s in ss.Spans)
                    {
                        w.Write(s.SpanId.Value);
                        w.Write(s.Name);
                        w.Write7BitEncodedInt64((long)s.StartTimeUnixNano);
                        w.Write7BitEncodedInt64((long)s.DurationNanos);
                        WriteAttributes(w, s.Attributes);
                    }
                }
            }
        }

        return stream.ToArray();
    }

    /// <summary>Decodes <see cref="Encode"/>'s output; null when the bytes are not a value of this format.</summary>
    public static SearchResult? Decode(byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);
        try
        {
            using var r = new BinaryReader(new MemoryStream(value, writable: false), Encoding.UTF8);
            if (r.ReadByte() != FormatVersion)
            {
                return null;
            }

            var result = new SearchResult();
            result.Metrics.InspectedTraces = (uint)r.Read7BitEncodedInt64();
            result.Metrics.InspectedBytes = (ulong)r.Read7BitEncodedInt64();
            result.Metrics.InspectedSpans = (ulong)r.Read7BitEncodedInt64();
            int traces = Count(r, value.Length);
            for (int i = 0; i < traces; i++)
            {
                var t = new TraceSearchMetadata
                {
                    TraceId = new TraceId(r.ReadUInt64(), r.ReadUInt64()),
                    RootServiceName = r.ReadString(),
                    RootTraceName = r.ReadString(),
                    StartTimeUnixNano = (ulong)r.Read7BitEncodedInt64(),
                    DurationNanos = (ulong)r.Read7BitEncodedInt64(),
                };
                int stats = r.Read7BitEncodedInt();
                if (stats >= 0)
                {
                    t.ServiceStats = new(StringComparer.Ordinal);
                    for (int s = 0; s < Math.Min(stats, value.Length); s++)
                    {
                        string svc = r.ReadString();
                        t.ServiceStats[svc] = new ServiceStat { SpanCount = r.Read7BitEncodedInt(), ErrorCount = r.Read7BitEncodedInt() };
                    }
                }

                int sets = Count(r, value.Length);
                for (int s = 0; s < sets; s++)
                {
                    var ss = new SpanSetResult { Matched = (uint)r.Read7BitEncodedInt() };
                    ReadAttributes(r, ss.Attributes, value.Length);
                    int spans = Count(r, value.Length);
                    for (int k = 0; k < spans; k++)
                    {
                        var span = new SpanResult
                        {
                            SpanId = new SpanId(r.ReadUInt64()),
                            Name = r.ReadString(),
                            StartTimeUnixNano = (ulong)r.Read7BitEncodedInt64(),
                            DurationNanos = (ulong)r.Read7BitEncodedInt64(),
                        };
                        ReadAttributes(r, span.Attributes, value.Length);
                        ss.Spans.Add(span);
                    }

                    t.SpanSets.Add(ss);
                }

                result.Traces.Add(t);
            }

            return r.BaseStream.Position == value.Length ? result : null;
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or IOException or ArgumentException or OverflowException)
        {
            return null;
        }
    }

    private static int Count(BinaryReader r, int max)
    {
        int n = r.Read7BitEncodedInt();
        return n < 0 || n > max ? throw new FormatException("bad count") : n;
    }

    private static void WriteAttributes(BinaryWriter w, List<KeyValuePair<string, TraceQLValue>> attrs)
    {
        w.Write7BitEncodedInt(attrs.Count);
        foreach (var (k, v) in attrs)
        {
            w.Write(k);
            WriteValue(w, v);
        }
    }

    private static void ReadAttributes(BinaryReader r, List<KeyValuePair<string, TraceQLValue>> into, int max)
    {
        int n = Count(r, max);
        for (int i = 0; i < n; i++)
        {
            string k = r.ReadString();
            into.Add(new(k, ReadValue(r, max)));
        }
    }

    private static void WriteValue(BinaryWriter w, in TraceQLValue v)
    {
        w.Write((byte)v.Kind);
        switch (v.Kind)
        {
            case ValueKind.Int or ValueKind.Duration or ValueKind.Status or ValueKind.Kind:
                w.Write7BitEncodedInt64(v.Int);
                break;
            case ValueKind.Float:
                w.Write(v.Float);
                break;
            case ValueKind.String:
                w.Write(v.String);
                break;
            case ValueKind.Bool:
                w.Write(v.Bool);
                break;
            case ValueKind.Array:
                w.Write7BitEncodedInt(v.Array.Length);
                foreach (var e in v.Array)
                {
                    WriteValue(w, e);
                }

                break;
        }
    }

    private static TraceQLValue ReadValue(BinaryReader r, int max)
    {
        var kind = (ValueKind)r.ReadByte();
        switch (kind)
        {
            case ValueKind.Nil: return TraceQLValue.Nil;
            case ValueKind.Int: return TraceQLValue.FromInt(r.Read7BitEncodedInt64());
            case ValueKind.Duration: return TraceQLValue.FromDuration(r.Read7BitEncodedInt64());
            case ValueKind.Status: return TraceQLValue.FromStatus((SpanStatus)r.Read7BitEncodedInt64());
            case ValueKind.Kind: return TraceQLValue.FromKind((SpanKind)r.Read7BitEncodedInt64());
            case ValueKind.Float: return TraceQLValue.FromFloat(r.ReadDouble());
            case ValueKind.String: return TraceQLValue.FromString(r.ReadString());
            case ValueKind.Bool: return TraceQLValue.FromBool(r.ReadBoolean());
            case ValueKind.Array:
                var items = new TraceQLValue[Count(r, max)];
                for (int i = 0; i < items.Length; i++)
                {
                    items[i] = ReadValue(r, max);
                }

                return TraceQLValue.FromArray(items);
            default: throw new FormatException($"unknown value kind {(byte)kind}");
        }
    }
}
