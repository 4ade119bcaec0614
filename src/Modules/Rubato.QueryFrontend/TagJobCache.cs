using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Rubato.Cache;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend;

/// <summary>
/// The <c>frontend-search</c> cache role for tag-name and tag-value block jobs (Tempo's <c>st:</c> / <c>stv:</c>
/// keys): what one block job of a tag search collected, under tenant + canonical request + block id + page range.
/// </summary>
/// <remarks>
/// <para><b>When.</b> As for search jobs (<see cref="SearchJobCache"/>): only jobs over one immutable block whose range
/// covers the block entirely (or requests without a range), and only results of jobs that ran to their own end: a job
/// cut short because the whole answer was already full (the run closed and cancelled it), or whose data vanished
/// while it was read (<see cref="SearchJob.DataVanished"/>), is not stored.</para>
/// <para><b>What.</b> The job's own collector: the names (with scope) or typed values in the order the job found them,
/// capped by <c>limit</c> and the byte budget exactly as the uncached job caps them (both are in the key), its
/// <c>Exceeded</c> flag, and the bytes it inspected. Merged into a run it gives what merging the job's live collector
/// gives, so a warm answer equals a cold one, metrics included.</para>
/// <para><b>Value.</b> Version byte, flags (bit 0: exceeded), inspected bytes (varint), count (varint), then per entry
/// a scope byte (index into span, resource, event, link, instrumentation) or a type byte (index into string, int,
/// float, bool, duration, keyword) followed by the UTF-8 string (varint length). A value of another version, with an
/// unknown scope/type byte, a count past the value or trailing bytes is undecodable: a miss.</para>
/// </remarks>
public static class TagJobCache
{
    private const byte FormatVersion = 1;

    private static readonly string[] s_scopes = ["span", "resource", "event", "link", "instrumentation"];
    private static readonly string[] s_types = ["string", "int", "float", "bool", "duration", "keyword"];

    /// <summary>
    /// <c>st:{tenant}:{hash}:{block id}:{first page}:{pages}</c>, or null when the job must not be cached. The hash
    /// covers the scope (<c>all</c> when none), the canonical <c>q</c> filter (the AST printer's text; empty when there
    /// is none or it does not parse, since it is then ignored), <c>limit</c> and the byte budget.
    /// </summary>
    public static string? NamesKey(string tenant, SearchJob job, TagNamesQuery query, RootExpr? filter, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(query);
        string canonical = string.Create(CultureInfo.InvariantCulture,
            $"scope={(query.Scope is null or "all" ? "all" : query.Scope)}\nq={(filter is null ? string.Empty : AstPrinter.Print(filter))}\nlimit={query.Limit}\nmax_bytes={maxBytes}");
        return Key("st", tenant, job, query.StartUnixSeconds, query.EndUnixSeconds, canonical);
    }

    /// <summary><c>stv:{tenant}:{hash}:{block id}:{first page}:{pages}</c>: as <see cref="NamesKey"/>, with the tag text instead of the scope.</summary>
    public static string? ValuesKey(string tenant, SearchJob job, TagValuesQuery query, RootExpr? filter, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(query);
        string canonical = string.Create(CultureInfo.InvariantCulture,
            $"tag={query.Tag}\nq={(filter is null ? string.Empty : AstPrinter.Print(filter))}\nlimit={query.Limit}\nmax_bytes={maxBytes}");
        return Key("stv", tenant, job, query.StartUnixSeconds, query.EndUnixSeconds, canonical);
    }

    private static string? Key(string prefix, string tenant, SearchJob job, long start, long end, string canonical)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Block is not { } b)
        {
            return null;
        }

        bool unbounded = start == 0 && end == 0;
        if (!unbounded && (b.StartUnixSeconds < start || b.EndUnixSeconds > end))
        {
            return null;
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(canonical), hash);
        return string.Create(CultureInfo.InvariantCulture,
            $"{prefix}:{tenant}:{Convert.ToHexStringLower(hash[..16])}:{b.BlockId:N}:{b.StartPage}:{b.Pages}");
    }

    /// <summary>The cached bytes, or null on a miss, a failure or a lookup slower than <see cref="SearchJobCache.GetTimeout"/>.</summary>
    /// <exception cref="OperationCanceledException">Only when <paramref name="ct"/> is cancelled.</exception>
    public static async ValueTask<byte[]?> TryGetAsync(ICache cache, string key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cache);
        try
        {
            return await cache.GetAsync(key, ct).AsTask().WaitAsync(SearchJobCache.GetTimeout, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            // Timeout or an unexpected cache failure: a miss (the job runs).
            return null;
        }
    }

    /// <summary>Stores a value in the background; never throws and never delays the caller.</summary>
    public static void SetInBackground(ICache cache, string key, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(cache);
        _ = Task.Run(async () =>
        {
            try
            {
                await cache.SetAsync(key, value).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Best effort: a failed set only means a later miss.
            }
        });
    }

    public static byte[] EncodeNames(TagNamesCollector names, ulong inspectedBytes)
    {
        ArgumentNullException.ThrowIfNull(names);
        return Encode(names.Exceeded, inspectedBytes, names.Added, s_scopes);
    }

    public static byte[] EncodeValues(TagValuesCollector values, ulong inspectedBytes)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Encode(values.Exceeded, inspectedBytes, values.Values, s_types);
    }

    /// <summary>Decodes <see cref="EncodeNames"/>' output into a collector of the request's scope, limit and budget; null when undecodable.</summary>
    public static (TagNamesCollector Names, ulong InspectedBytes)? DecodeNames(byte[] value, string? scope, int limit, long maxBytes) =>
        Decode(value, s_scopes) is { } d ? (TagNamesCollector.Restore(scope, limit, maxBytes, d.Entries, d.Exceeded), d.InspectedBytes) : null;

    /// <summary>Decodes <see cref="EncodeValues"/>' output into a collector of the request's tag, limit and budget; null when undecodable.</summary>
    public static (TagValuesCollector Values, ulong InspectedBytes)? DecodeValues(byte[] value, string tag, int limit, long maxBytes) =>
        Decode(value, s_types) is { } d ? (TagValuesCollector.Restore(tag, limit, maxBytes, d.Entries, d.Exceeded), d.InspectedBytes) : null;

    private static byte[] Encode(bool exceeded, ulong inspectedBytes, IReadOnlyList<(string, string)> entries, string[] kinds)
    {
        var stream = new MemoryStream(16 + (entries.Count * 24));
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(FormatVersion);
            w.Write((byte)(exceeded ? 1 : 0));
            w.Write7BitEncodedInt64((long)inspectedBytes);
            w.Write7BitEncodedInt(entries.Count);
            foreach (var (kind, text) in entries)
            {
                int k = Array.IndexOf(kinds, kind);
                // Collectors only produce the listed scopes/types; anything else is a bug, not data.
                w.Write(k >= 0 ? (byte)k : throw new InvalidOperationException($"unexpected tag scope or type '{kind}'"));
                w.Write(text);
            }
        }

        return stream.ToArray();
    }

    private static (bool Exceeded, ulong InspectedBytes, List<(string, string)> Entries)? Decode(byte[] value, string[] kinds)
    {
        ArgumentNullException.ThrowIfNull(value);
        try
        {
            using var r = new BinaryReader(new MemoryStream(value, writable: false), Encoding.UTF8);
            if (r.ReadByte() != FormatVersion)
            {
                return null;
            }

            byte flags = r.ReadByte();
            if (flags > 1)
            {
                return null;
            }

            ulong inspected = (ulong)r.Read7BitEncodedInt64();
            int count = r.Read7BitEncodedInt();
            // Each entry takes at least two bytes: a count past that is damage, not a reason to allocate.
            if (count < 0 || count > value.Length / 2)
            {
                return null;
            }

            var entries = new List<(string, string)>(count);
            for (int i = 0; i < count; i++)
            {
                int k = r.ReadByte();
                if (k >= kinds.Length)
                {
                    return null;
                }

                entries.Add((kinds[k], r.ReadString()));
            }

            return r.BaseStream.Position == value.Length ? (flags == 1, inspected, entries) : null;
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or IOException or ArgumentException or OverflowException)
        {
            return null;
        }
    }
}
