using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Blocklist;

/// <summary>
/// A block's <c>meta.compacted.json</c>: the block's whole <c>meta.json</c> plus <c>compactedTime</c> (Tempo's
/// <c>backend.CompactedBlockMeta</c>, which embeds BlockMeta, so the JSON is flat). Its presence hides the block from
/// queries; the block is deleted <c>compacted_block_retention</c> after <see cref="CompactedTime"/>.
/// </summary>
public sealed class CompactedBlockMeta
{
    public CompactedBlockMeta(BlockMeta meta, DateTimeOffset compactedTime)
    {
        ArgumentNullException.ThrowIfNull(meta);
        Meta = meta;
        CompactedTime = compactedTime;
    }

    public BlockMeta Meta { get; }

    /// <summary><c>compactedTime</c>: when the block was marked (RFC3339 with fractional seconds, like Go's time.Time).</summary>
    public DateTimeOffset CompactedTime { get; }

    public byte[] ToJson() => JsonSerializerHelpers.Serialize(ToJsonNode());

    internal JsonObject ToJsonNode()
    {
        var obj = JsonNode.Parse(Meta.ToJson())!.AsObject();
        obj["compactedTime"] = FormatTime(CompactedTime);
        return obj;
    }

    /// <exception cref="FormatException">Not a JSON object, a bad meta field, or a missing/invalid <c>compactedTime</c>.</exception>
    public static CompactedBlockMeta FromJson(ReadOnlySpan<byte> json)
    {
        var meta = BlockMeta.FromJson(json);
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray());
            if (!doc.RootElement.TryGetProperty("compactedTime", out var t) || t.ValueKind != JsonValueKind.String)
            {
                throw new FormatException("compacted block meta has no compactedTime string");
            }

            return new CompactedBlockMeta(meta, ParseTime(t.GetString()!));
        }
        catch (JsonException e)
        {
            throw new FormatException($"invalid compacted block meta: {e.Message}", e);
        }
    }

    internal static string FormatTime(DateTimeOffset t) =>
        t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    internal static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : throw new FormatException($"invalid time '{s}': want RFC3339");
}

internal static class JsonSerializerHelpers
{
    public static byte[] Serialize(JsonNode node)
    {
        using var ms = new MemoryStream(512);
        using (var w = new Utf8JsonWriter(ms))
        {
            node.WriteTo(w);
        }

        return ms.ToArray();
    }
}
