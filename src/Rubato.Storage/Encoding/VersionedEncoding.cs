using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Encoding;

/// <summary>A block format version (Tempo's <c>encoding.VersionedEncoding</c>): builds and opens blocks of that version.</summary>
public interface IVersionedEncoding
{
    /// <summary>The <c>format</c> written to meta.json.</summary>
    string Version { get; }

    IBlockBuilder CreateBlockBuilder(BlockBuilderOptions options);

    /// <summary>Opens a block for reading; cheap (no I/O until the first query).</summary>
    IBackendBlock OpenBlock(BlockMeta meta, IObjectStore store);
}

/// <summary>Options for building one block.</summary>
public sealed class BlockBuilderOptions
{
    public string TenantId { get; set; } = string.Empty;

    public Guid BlockId { get; set; } = Guid.NewGuid();

    /// <summary>Bloom filter false positive rate (Tempo <c>bloom_filter_false_positive</c>, default 0.01).</summary>
    public double BloomFalsePositive { get; set; } = 0.01;

    /// <summary>Target bytes per bloom shard (Tempo <c>bloom_filter_shard_size_bytes</c>, default 100 KiB).</summary>
    public int BloomShardSizeBytes { get; set; } = 100 * 1024;

    /// <summary>
    /// Uncompressed bytes of trace data after which a row group is cut (Tempo <c>parquet_row_group_size_bytes</c>).
    /// Smaller row groups make a by-ID lookup read less; larger ones compress better. Default 8 MiB.
    /// </summary>
    public long RowGroupSizeBytes { get; set; } = 8L * 1024 * 1024;

    /// <summary>
    /// Traces whose rows share one data page of a column that scans read page by page: such a column gets a fixed
    /// number of rows per page, about this many traces' worth (a trace-level column holds this many rows per page, a
    /// span-level column about this many traces' spans), but see <see cref="MinPageStoredBytes"/>. A scan that needs a
    /// few traces reads the pages holding them; smaller pages read less around each trace but compress worse and need
    /// more 12-byte page entries. Default 4.
    /// </summary>
    public int TracesPerPage { get; set; } = 4;

    /// <summary>
    /// Lower bound of a data page's compressed bytes (estimated per column), which in practice sets the page size of
    /// most columns: a fill reads about this much plus two 12-byte entries per column and matched row. Columns that
    /// compress to a few bytes per trace (kinds, status codes, trace times) get pages of many traces, since smaller
    /// pages would cost them compression and entries while saving little. Default 192 (docs/block-format.md §2 has
    /// the trials behind it).
    /// </summary>
    public int MinPageStoredBytes { get; set; } = 192;

    /// <summary>
    /// Upper bound of a data page's uncompressed bytes, whatever <see cref="TracesPerPage"/> gives; also the page size
    /// of the columns scans always read whole (counts, attribute keys and types, blobs). Default 16 KiB.
    /// </summary>
    public int PageSizeBytes { get; set; } = 16 * 1024;

    /// <summary>Compaction level written to meta (0 for freshly flushed blocks).</summary>
    public uint CompactionLevel { get; set; }

    /// <summary>Replication factor written to meta.</summary>
    public uint ReplicationFactor { get; set; }

    /// <summary>Column chunk compression.</summary>
    public BlockCompression Compression { get; set; } = BlockCompression.Brotli;

    /// <summary>
    /// Most distinct values an attribute key of a level may have in a row group to be indexed in the <c>postings</c>
    /// object (docs/block-format.md §4a); 0 writes no postings object. Default 64.
    /// </summary>
    public int PostingsMaxValues { get; set; } = 64;

    /// <summary>
    /// Largest share of a level's rows in a row group that an indexed value may occur in and still get a posting (a
    /// row list); commoner values are listed with their count only, and conditions accepting them read the columns.
    /// Default 0.25.
    /// </summary>
    public double PostingsMaxShare { get; set; } = 0.25;

    public void Validate()
    {
        if (string.IsNullOrEmpty(TenantId))
        {
            throw new ArgumentException("BlockBuilderOptions.TenantId must be set");
        }

        ObjectKeys.Validate(TenantId);
        if (BlockId == Guid.Empty)
        {
            throw new ArgumentException("BlockBuilderOptions.BlockId must not be empty");
        }

        if (BloomFalsePositive is <= 0 or >= 1)
        {
            throw new ArgumentException($"BlockBuilderOptions.BloomFalsePositive must be in (0,1), got {BloomFalsePositive}");
        }

        if (BloomShardSizeBytes < 64)
        {
            throw new ArgumentException($"BlockBuilderOptions.BloomShardSizeBytes must be at least 64, got {BloomShardSizeBytes}");
        }

        if (TracesPerPage < 1)
        {
            throw new ArgumentException($"BlockBuilderOptions.TracesPerPage must be at least 1, got {TracesPerPage}");
        }

        if (MinPageStoredBytes < 1)
        {
            throw new ArgumentException($"BlockBuilderOptions.MinPageStoredBytes must be positive, got {MinPageStoredBytes}");
        }

        if (PostingsMaxValues < 0)
        {
            throw new ArgumentException($"BlockBuilderOptions.PostingsMaxValues must not be negative, got {PostingsMaxValues}");
        }

        if (PostingsMaxShare is < 0 or > 1 || double.IsNaN(PostingsMaxShare))
        {
            throw new ArgumentException($"BlockBuilderOptions.PostingsMaxShare must be in [0,1], got {PostingsMaxShare}");
        }

        if (PageSizeBytes < 64)
        {
            throw new ArgumentException($"BlockBuilderOptions.PageSizeBytes must be at least 64, got {PageSizeBytes}");
        }

        if (RowGroupSizeBytes < 1)
        {
            throw new ArgumentException($"BlockBuilderOptions.RowGroupSizeBytes must be positive, got {RowGroupSizeBytes}");
        }
    }
}

/// <summary>Compression codec of column chunks; the byte values are written in chunk headers.</summary>
public enum BlockCompression : byte
{
    None = 0,
    Deflate = 1,
    Brotli = 2,
}

/// <summary>
/// Builds one block. Traces are added in ascending trace-id order (one call per trace id);
/// <see cref="WriteAsync"/> writes the data, index and bloom objects and then meta.json, last.
/// </summary>
/// <remarks>Single-threaded: one owner adds traces and writes.</remarks>
public interface IBlockBuilder : IDisposable
{
    /// <exception cref="ArgumentException">The id is not greater than the previous one.</exception>
    void AddTrace(TraceId id, Trace trace);

    /// <summary>Traces added so far.</summary>
    int TraceCount { get; }

    Task<BlockMeta> WriteAsync(IObjectStore store, CancellationToken ct);
}

/// <summary>A block in the object store, opened for reading. Thread-safe; caches its index and bloom lazily.</summary>
public interface IBackendBlock
{
    BlockMeta Meta { get; }

    /// <summary>The trace's spans in this block, or null when absent (usually decided by the bloom filter alone).</summary>
    ValueTask<Trace?> FindTraceByIdAsync(TraceId id, CancellationToken ct);

    /// <summary>Every trace in id order (compaction, export).</summary>
    IAsyncEnumerable<(TraceId Id, Trace Trace)> IterateAsync(CancellationToken ct);
}

/// <summary>The registry of block encodings (Tempo's <c>encoding.FromVersion</c>).</summary>
public static class Encodings
{
    private static readonly IVersionedEncoding[] All = [new V1.EncodingV1()];

    /// <summary>The encoding new blocks are written with.</summary>
    public static IVersionedEncoding Default => All[0];

    public static IReadOnlyList<string> Versions => [.. All.Select(e => e.Version)];

    /// <exception cref="ArgumentException">Unknown version; the message names the valid ones.</exception>
    public static IVersionedEncoding FromVersion(string version)
    {
        foreach (var e in All)
        {
            if (e.Version == version)
            {
                return e;
            }
        }

        throw new ArgumentException($"unknown block version '{version}'; valid versions: {string.Join(", ", Versions)}", nameof(version));
    }
}

/// <summary>A block object is malformed: bad magic, checksum, length or value. Names the object and byte offset.</summary>
public sealed class BlockCorruptException : Exception
{
    public BlockCorruptException(string objectKey, long offset, string problem)
        : base($"corrupt block object '{objectKey}' at offset {offset}: {problem}")
    {
        ObjectKey = objectKey;
        Offset = offset;
        Problem = problem;
    }

    public BlockCorruptException(string objectKey, long offset, string problem, Exception inner)
        : base($"corrupt block object '{objectKey}' at offset {offset}: {problem}", inner)
    {
        ObjectKey = objectKey;
        Offset = offset;
        Problem = problem;
    }

    public string ObjectKey { get; }

    public long Offset { get; }

    public string Problem { get; }
}
