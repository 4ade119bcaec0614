using System.Globalization;
using System.Text.Json;

namespace Rubato.Storage.Backend;

/// <summary>
/// A block's <c>meta.json</c>, with Tempo's JSON keys (<c>tempodb/backend</c> BlockMeta), so tooling that reads Tempo
/// metas reads ours. Written last when a block is built: a block without <c>meta.json</c> is invisible.
/// </summary>
/// <remarks>Plain mutable data; not thread-safe while being filled, treat as read-only once published.</remarks>
public sealed class BlockMeta
{
    /// <summary>Block format (<c>format</c>), e.g. <c>vRubato1</c>.</summary>
    public string Version { get; set; } = string.Empty;

    /// <summary><c>blockID</c>: GUID string.</summary>
    public Guid BlockId { get; set; }

    /// <summary><c>tenantID</c>.</summary>
    public string TenantId { get; set; } = string.Empty;

    /// <summary><c>startTime</c>: earliest span start, RFC3339, second precision (Tempo truncates to seconds too).</summary>
    public DateTimeOffset StartTime { get; set; }

    /// <summary><c>endTime</c>: latest span end, RFC3339, rounded up to the next second.</summary>
    public DateTimeOffset EndTime { get; set; }

    /// <summary><c>totalObjects</c>: traces in the block.</summary>
    public long TotalObjects { get; set; }

    /// <summary><c>size</c>: bytes of every object in the block except meta.json.</summary>
    public ulong Size { get; set; }

    /// <summary><c>compactionLevel</c>: 0 for freshly flushed blocks.</summary>
    public uint CompactionLevel { get; set; }

    /// <summary><c>encoding</c>: the compression codec of the data (e.g. <c>brotli</c>).</summary>
    public string Encoding { get; set; } = "none";

    /// <summary><c>indexPageSize</c>: bytes of the <c>index</c> object.</summary>
    public uint IndexPageSize { get; set; }

    /// <summary><c>totalRecords</c>: row groups in the data object (as in Tempo's parquet blocks).</summary>
    public uint TotalRecords { get; set; }

    /// <summary><c>dataEncoding</c>: the encoding of trace payloads; empty for columnar blocks.</summary>
    public string DataEncoding { get; set; } = string.Empty;

    /// <summary><c>bloomShards</c>: number of <c>bloom-N</c> objects.</summary>
    public uint BloomShards { get; set; }

    /// <summary><c>footerSize</c>: bytes of the data object's footer (including its fixed tail).</summary>
    public uint FooterSize { get; set; }

    /// <summary><c>postingsSize</c> (Rubato extension): bytes of the <c>postings</c> object; 0 = the block has none.</summary>
    public ulong PostingsSize { get; set; }

    /// <summary><c>replicationFactor</c>: 0 means Tempo's default (RF3 ingesters); 1 for single-writer blocks.</summary>
    public uint ReplicationFactor { get; set; }

    /// <summary><c>minID</c>/<c>maxID</c>: smallest and largest trace id (base64 bytes, like Go's []byte).</summary>
    public Rubato.Common.Ids.TraceId MinId { get; set; }

    public Rubato.Common.Ids.TraceId MaxId { get; set; }

    /// <summary><c>spanCount</c> (Rubato extension): spans in the block.</summary>
    public long SpanCount { get; set; }

    /// <summary>True when [start, end] (unix seconds, 0 = unbounded) overlaps this block's time range.</summary>
    public bool Overlaps(Rubato.Common.Contracts.TimeRange range)
    {
        if (range.StartUnixSeconds > 0 && EndTime.ToUnixTimeSeconds() < range.StartUnixSeconds)
        {
            return false;
        }

        return range.EndUnixSeconds <= 0 || StartTime.ToUnixTimeSeconds() <= range.EndUnixSeconds;
    }

    public BlockMeta Clone() => (BlockMeta)MemberwiseClone();

    public byte[] ToJson()
    {
        using var ms = new MemoryStream(512);
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("format", Version);
            w.WriteString("blockID", BlockId.ToString("D"));
            w.WriteString("minID", Convert.ToBase64String(MinId.ToByteArray()));
            w.WriteString("maxID", Convert.ToBase64String(MaxId.ToByteArray()));
            w.WriteString("tenantID", TenantId);
            w.WriteString("startTime", FormatTime(StartTime));
            w.WriteString("endTime", FormatTime(EndTime));
            w.WriteNumber("totalObjects", TotalObjects);
            w.WriteNumber("size", Size);
            w.WriteNumber("compactionLevel", CompactionLevel);
            w.WriteString("encoding", Encoding);
            w.WriteNumber("indexPageSize", IndexPageSize);
            w.WriteNumber("totalRecords", TotalRecords);
            w.WriteString("dataEncoding", DataEncoding);
            w.WriteNumber("bloomShards", BloomShards);
            w.WriteNumber("footerSize", FooterSize);
            w.WriteNumber("replicationFactor", ReplicationFactor);
            w.WriteNumber("spanCount", SpanCount);
            if (PostingsSize > 0)
            {
                w.WriteNumber("postingsSize", PostingsSize);
            }
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    /// <summary>Parses a meta.json; unknown keys (e.g. Tempo's <c>dedicatedColumns</c>) are ignored.</summary>
    /// <exception cref="FormatException">Not a JSON object, or a known key has the wrong type.</exception>
    public static BlockMeta FromJson(ReadOnlySpan<byte> json)
    {
        var m = new BlockMeta();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        try
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("block meta must be a JSON object");
            }

            foreach (var p in doc.RootElement.EnumerateObject())
            {
                var v = p.Value;
                switch (p.Name)
                {
                    case "format": m.Version = v.GetString() ?? string.Empty; break;
                    case "blockID": m.BlockId = Guid.Parse(v.GetString() ?? string.Empty); break;
                    case "minID": m.MinId = ParseId(v); break;
                    case "maxID": m.MaxId = ParseId(v); break;
                    case "tenantID": m.TenantId = v.GetString() ?? string.Empty; break;
                    case "startTime": m.StartTime = ParseTime(v.GetString()); break;
                    case "endTime": m.EndTime = ParseTime(v.GetString()); break;
                    case "totalObjects": m.TotalObjects = v.GetInt64(); break;
                    case "size": m.Size = v.GetUInt64(); break;
                    case "compactionLevel": m.CompactionLevel = v.GetUInt32(); break;
                    case "encoding": m.Encoding = v.ValueKind == JsonValueKind.String ? v.GetString()! : v.ToString(); break;
                    case "indexPageSize": m.IndexPageSize = v.GetUInt32(); break;
                    case "totalRecords": m.TotalRecords = v.GetUInt32(); break;
                    case "dataEncoding": m.DataEncoding = v.GetString() ?? string.Empty; break;
                    case "bloomShards": m.BloomShards = v.GetUInt32(); break;
                    case "footerSize": m.FooterSize = v.GetUInt32(); break;
                    case "replicationFactor": m.ReplicationFactor = v.GetUInt32(); break;
                    case "spanCount": m.SpanCount = v.GetInt64(); break;
                    case "postingsSize": m.PostingsSize = v.GetUInt64(); break;
                    default: break;
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new FormatException($"invalid block meta: {e.Message}", e);
        }

        return m;
    }

    private static Rubato.Common.Ids.TraceId ParseId(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.String)
        {
            return default;
        }

        byte[] b = Convert.FromBase64String(v.GetString()!);
        return b.Length == 0 ? default : Rubato.Common.Ids.TraceId.TryFromBytesPadded(b, out var id) ? id : throw new FormatException("minID/maxID longer than 16 bytes");
    }

    private static string FormatTime(DateTimeOffset t) =>
        t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string? s) =>
        DateTimeOffset.Parse(s ?? throw new FormatException("time must be a string"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
