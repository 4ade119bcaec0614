using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Blocklist;

/// <summary>
/// A tenant's block list in one object, <c>&lt;tenant&gt;/index.json.gz</c>: gzip of
/// <c>{"created_at": RFC3339, "meta": [BlockMeta...], "compacted": [CompactedBlockMeta...]}</c>, Tempo's JSON
/// tenant index (tempodb/backend/raw.go). Readers fetch this instead of listing every block folder.
/// </summary>
/// <remarks>Immutable once built; safe to share between threads.</remarks>
public sealed class TenantIndex
{
    /// <summary>The object name under the tenant's folder.</summary>
    public const string ObjectName = "index.json.gz";

    public TenantIndex(DateTimeOffset createdAt, IReadOnlyList<BlockMeta> meta, IReadOnlyList<CompactedBlockMeta> compacted)
    {
        CreatedAt = createdAt;
        Meta = meta ?? throw new ArgumentNullException(nameof(meta));
        Compacted = compacted ?? throw new ArgumentNullException(nameof(compacted));
    }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>Live blocks (meta.json, no meta.compacted.json).</summary>
    public IReadOnlyList<BlockMeta> Meta { get; }

    /// <summary>Blocks marked compacted and not yet deleted.</summary>
    public IReadOnlyList<CompactedBlockMeta> Compacted { get; }

    public static string Key(string tenantId) => tenantId + "/" + ObjectName;

    public byte[] ToGzipJson()
    {
        var meta = new JsonArray();
        foreach (var m in Meta)
        {
            meta.Add(JsonNode.Parse(m.ToJson()));
        }

        var compacted = new JsonArray();
        foreach (var c in Compacted)
        {
            compacted.Add(c.ToJsonNode());
        }

        var root = new JsonObject
        {
            ["created_at"] = CompactedBlockMeta.FormatTime(CreatedAt),
            ["meta"] = meta,
            ["compacted"] = compacted,
        };
        byte[] json = JsonSerializerHelpers.Serialize(root);
        using var ms = new MemoryStream(json.Length / 4 + 64);
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true))
        {
            gz.Write(json);
        }

        return ms.ToArray();
    }

    /// <exception cref="FormatException">Not gzip, not JSON, or an entry is not a valid (compacted) block meta.</exception>
    public static TenantIndex FromGzipJson(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        byte[] json;
        try
        {
            using var gz = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            json = ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new FormatException($"tenant index is not valid gzip: {e.Message}", e);
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("tenant index must be a JSON object");
            }

            DateTimeOffset created = root.TryGetProperty("created_at", out var c) && c.ValueKind == JsonValueKind.String
                ? CompactedBlockMeta.ParseTime(c.GetString()!)
                : throw new FormatException("tenant index has no created_at string");
            var meta = new List<BlockMeta>();
            if (root.TryGetProperty("meta", out var m) && m.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in m.EnumerateArray())
                {
                    meta.Add(BlockMeta.FromJson(System.Text.Encoding.UTF8.GetBytes(e.GetRawText())));
                }
            }

            var compacted = new List<CompactedBlockMeta>();
            if (root.TryGetProperty("compacted", out var cm) && cm.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in cm.EnumerateArray())
                {
                    compacted.Add(CompactedBlockMeta.FromJson(System.Text.Encoding.UTF8.GetBytes(e.GetRawText())));
                }
            }

            return new TenantIndex(created, meta, compacted);
        }
        catch (JsonException e)
        {
            throw new FormatException($"tenant index is not valid JSON: {e.Message}", e);
        }
    }
}
