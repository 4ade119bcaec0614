using System.IO.Compression;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Encoding.V1;

/// <summary>Constants of block format <c>vRubato1</c>; docs/block-format.md describes every byte.</summary>
public static class FormatV1
{
    public const string Version = "vRubato1";
    public const string DataName = "data";
    public const string IndexName = "index";
    public const string BloomPrefix = "bloom-";

    /// <summary>"RBV1": data object header and trailer magic.</summary>
    public const uint DataMagic = 0x31564252;

    /// <summary>"RBRG": row group header magic.</summary>
    public const uint RowGroupMagic = 0x47524252;

    /// <summary>"RBTI": index object magic.</summary>
    public const uint IndexMagic = 0x49544252;

    /// <summary>
    /// Layout revision in the data header, footer and index. Revision 3 (fixed-width page entries, the chunk shape in the
    /// footer) replaced revision 2 (varint page index) and revision 1 (one compressed chunk per column); readers reject
    /// other revisions with <see cref="BlockCorruptException"/>.
    /// </summary>
    public const ushort FormatRevision = 3;

    /// <summary>Data object header: magic u32, revision u16, reserved u16.</summary>
    public const int DataHeaderSize = 8;

    /// <summary>Data object tail: footer length u32, footer CRC-32C u32, magic u32.</summary>
    public const int DataTailSize = 12;

    /// <summary>
    /// Row-group directory and footer entry per column: chunk offset u32, chunk length u32, rows u32, rows per page u32,
    /// stats section length u32 (<see cref="ChunkShape"/>: enough to locate any page entry without reading the chunk).
    /// </summary>
    public const int DirectoryEntrySize = 20;

    /// <summary>Index header: magic u32, revision u16, reserved u16, row group count u32, footer offset in data u64.</summary>
    public const int IndexHeaderSize = 20;

    /// <summary>Bytes per index entry: min id 16, max id 16, offset u64, length u32, traces u32.</summary>
    public const int IndexEntrySize = 48;

    public static string BloomName(int shard) => BloomPrefix + shard.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Appends <paramref name="raw"/> compressed with <paramref name="codec"/> to <paramref name="output"/>; false (and
    /// nothing appended) when the codec is None, the input is tiny (≤ 64 bytes) or compression would not shrink it.
    /// </summary>
    public static bool TryCompress(BlockCompression codec, ReadOnlySpan<byte> raw, ByteWriter output)
    {
        if (codec == BlockCompression.None || raw.Length <= 64)
        {
            return false;
        }

        int bound = raw.Length + (raw.Length / 2) + 64;
        var dest = output.GetSpan(bound);
        int written = codec switch
        {
            BlockCompression.Brotli => BrotliEncoder.TryCompress(raw, dest, out int w, quality: 4, window: 22) ? w : -1,
            BlockCompression.Deflate => DeflateTo(raw, dest),
            _ => -1,
        };
        if (written <= 0 || written >= raw.Length)
        {
            return false;
        }

        output.Advance(written);
        return true;
    }

    /// <summary>Inflates <paramref name="stored"/> into exactly <paramref name="raw"/>; false when the data is not valid or has another length.</summary>
    public static bool TryInflate(BlockCompression codec, ReadOnlySpan<byte> stored, Span<byte> raw) => codec switch
    {
        BlockCompression.Brotli => BrotliDecoder.TryDecompress(stored, raw, out int w) && w == raw.Length,
        BlockCompression.Deflate => InflateTo(stored, raw) == raw.Length,
        _ => false,
    };

    public static string CodecName(BlockCompression c) => c switch
    {
        BlockCompression.Brotli => "brotli",
        BlockCompression.Deflate => "deflate",
        _ => "none",
    };

    private static unsafe int DeflateTo(ReadOnlySpan<byte> raw, Span<byte> dest)
    {
        fixed (byte* p = dest)
        {
            using var ms = new UnmanagedMemoryStream(p, 0, dest.Length, FileAccess.Write);
            try
            {
                using (var ds = new DeflateStream(ms, CompressionLevel.Fastest, leaveOpen: true))
                {
                    ds.Write(raw);
                }

                return (int)ms.Position;
            }
            catch (NotSupportedException)
            {
                return -1; // Did not fit: store raw.
            }
            catch (IOException)
            {
                return -1;
            }
        }
    }

    private static unsafe int InflateTo(ReadOnlySpan<byte> stored, Span<byte> raw)
    {
        fixed (byte* p = stored)
        {
            try
            {
                using var ms = new UnmanagedMemoryStream(p, stored.Length);
                using var ds = new DeflateStream(ms, CompressionMode.Decompress);
                int total = 0;
                while (total < raw.Length)
                {
                    int n = ds.Read(raw[total..]);
                    if (n == 0)
                    {
                        break;
                    }

                    total += n;
                }

                return ds.Read(stackalloc byte[1]) == 0 ? total : -1;
            }
            catch (InvalidDataException)
            {
                return -1;
            }
        }
    }
}

/// <summary>How a column's raw bytes are laid out.</summary>
public enum ColumnKind : byte
{
    /// <summary>Unsigned LEB128 varints, one per row.</summary>
    Varint,

    /// <summary>Zig-zag LEB128 varints (signed deltas), one per row.</summary>
    Zigzag,

    /// <summary>One byte per row.</summary>
    Byte,

    /// <summary>Fixed 8 bytes per row (span ids big-endian; doubles little-endian IEEE-754).</summary>
    Fixed8,

    /// <summary>Fixed 16 bytes per row (trace ids, big-endian).</summary>
    Fixed16,

    /// <summary>Dictionary: varint n, n × (varint len, UTF-8), then one varint dictionary index per row.</summary>
    Dict,

    /// <summary>Varint length + bytes per row.</summary>
    Blob,
}

/// <summary>Attribute owner levels; each has its own seven attribute columns.</summary>
public enum AttrLevel
{
    Resource = 0,
    Scope = 1,
    Span = 2,
    Event = 3,
    Link = 4,
}

/// <summary>The columns of a row group, in on-disk order. Numbers are stable: they are the column directory index.</summary>
public static class Col
{
    // Trace level: one row per trace, sorted by trace id.
    public const int TraceId = 0, TraceStart = 1, TraceEndDelta = 2, TraceRootService = 3, TraceRootSpanName = 4, TraceSpanCount = 5, TraceResourceCount = 6;

    // Resource level: one row per ResourceSpans.
    public const int ResourceSchemaUrl = 7, ResourceDroppedAttrs = 8, ResourceScopeCount = 9, ResourceServiceName = 10;

    // Scope level: one row per ScopeSpans.
    public const int ScopeName = 11, ScopeVersion = 12, ScopeSchemaUrl = 13, ScopeDroppedAttrs = 14, ScopeSpanCount = 15;

    // Span level: one row per span.
    public const int SpanId = 16, SpanParentId = 17, SpanName = 18, SpanKind = 19, SpanStartDelta = 20, SpanDuration = 21, SpanStatusCode = 22,
        SpanStatusMessage = 23, SpanTraceState = 24, SpanFlags = 25, SpanDroppedAttrs = 26, SpanDroppedEvents = 27, SpanDroppedLinks = 28,
        SpanEventCount = 29, SpanLinkCount = 30;

    // Event level: one row per event.
    public const int EventTimeDelta = 31, EventName = 32, EventDroppedAttrs = 33;

    // Link level: one row per link.
    public const int LinkTraceId = 34, LinkSpanId = 35, LinkTraceState = 36, LinkFlags = 37, LinkDroppedAttrs = 38;

    /// <summary>First attribute column; level L's columns are AttrBase + 7L + {count, key, type, string, int, double, blob}.</summary>
    public const int AttrBase = 39;
    public const int AttrCount = 0, AttrKey = 1, AttrType = 2, AttrString = 3, AttrInt = 4, AttrDouble = 5, AttrBlob = 6;
    public const int AttrColumnsPerLevel = 7;

    public const int Count = AttrBase + (5 * AttrColumnsPerLevel);

    public static int Attr(AttrLevel level, int which) => AttrBase + ((int)level * AttrColumnsPerLevel) + which;

    private static readonly string[] Names = BuildNames();
    private static readonly ColumnKind[] Kinds = BuildKinds();

    public static string Name(int column) => (uint)column < (uint)Names.Length ? Names[column] : $"#{column}";

    public static ColumnKind Kind(int column) => Kinds[column];

    private static string[] BuildNames()
    {
        var n = new string[Count];
        string[] fixedNames =
        [
            "trace.id", "trace.start", "trace.end_delta", "trace.root_service", "trace.root_span_name", "trace.span_count", "trace.resource_count",
            "resource.schema_url", "resource.dropped_attrs", "resource.scope_count", "resource.service_name",
            "scope.name", "scope.version", "scope.schema_url", "scope.dropped_attrs", "scope.span_count",
            "span.id", "span.parent_id", "span.name", "span.kind", "span.start_delta", "span.duration", "span.status_code",
            "span.status_message", "span.trace_state", "span.flags", "span.dropped_attrs", "span.dropped_events", "span.dropped_links",
            "span.event_count", "span.link_count",
            "event.time_delta", "event.name", "event.dropped_attrs",
            "link.trace_id", "link.span_id", "link.trace_state", "link.flags", "link.dropped_attrs",
        ];
        fixedNames.CopyTo(n, 0);
        string[] levels = ["resource", "scope", "span", "event", "link"];
        string[] parts = ["count", "key", "type", "string", "int", "double", "blob"];
        for (int l = 0; l < levels.Length; l++)
        {
            for (int p = 0; p < parts.Length; p++)
            {
                n[AttrBase + (l * AttrColumnsPerLevel) + p] = $"{levels[l]}.attr.{parts[p]}";
            }
        }

        return n;
    }

    private static ColumnKind[] BuildKinds()
    {
        var k = new ColumnKind[Count];
        Array.Fill(k, ColumnKind.Varint);
        k[TraceId] = ColumnKind.Fixed16;
        k[TraceStart] = ColumnKind.Zigzag;
        k[TraceEndDelta] = ColumnKind.Zigzag;
        k[TraceRootService] = ColumnKind.Dict;
        k[TraceRootSpanName] = ColumnKind.Dict;
        k[ResourceSchemaUrl] = ColumnKind.Dict;
        k[ResourceServiceName] = ColumnKind.Dict;
        k[ScopeName] = ColumnKind.Dict;
        k[ScopeVersion] = ColumnKind.Dict;
        k[ScopeSchemaUrl] = ColumnKind.Dict;
        k[SpanId] = ColumnKind.Fixed8;
        k[SpanParentId] = ColumnKind.Fixed8;
        k[SpanName] = ColumnKind.Dict;
        k[SpanKind] = ColumnKind.Byte;
        k[SpanStartDelta] = ColumnKind.Zigzag;
        k[SpanDuration] = ColumnKind.Zigzag;
        k[SpanStatusCode] = ColumnKind.Byte;
        k[SpanStatusMessage] = ColumnKind.Dict;
        k[SpanTraceState] = ColumnKind.Dict;
        k[EventTimeDelta] = ColumnKind.Zigzag;
        k[EventName] = ColumnKind.Dict;
        k[LinkTraceId] = ColumnKind.Fixed16;
        k[LinkSpanId] = ColumnKind.Fixed8;
        k[LinkTraceState] = ColumnKind.Dict;
        for (int l = 0; l < 5; l++)
        {
            int b = AttrBase + (l * AttrColumnsPerLevel);
            k[b + AttrKey] = ColumnKind.Dict;
            k[b + AttrType] = ColumnKind.Byte;
            k[b + AttrString] = ColumnKind.Dict;
            k[b + AttrInt] = ColumnKind.Zigzag;
            k[b + AttrDouble] = ColumnKind.Fixed8;
            k[b + AttrBlob] = ColumnKind.Blob;
        }

        return k;
    }
}

/// <summary>The encoding registered as <see cref="FormatV1.Version"/>.</summary>
public sealed class EncodingV1 : IVersionedEncoding
{
    public string Version => FormatV1.Version;

    public IBlockBuilder CreateBlockBuilder(BlockBuilderOptions options) => new BlockBuilderV1(options);

    public IBackendBlock OpenBlock(BlockMeta meta, IObjectStore store) => new BackendBlockV1(meta, store);
}
