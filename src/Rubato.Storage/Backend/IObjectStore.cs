namespace Rubato.Storage.Backend;

/// <summary>
/// A flat object store addressed by <c>/</c>-separated keys (Tempo's backend: local, S3, GCS, Azure).
/// Blocks live under <c>&lt;tenant&gt;/&lt;blockID&gt;/&lt;name&gt;</c>.
/// </summary>
/// <remarks>
/// Implementations are thread-safe. A Put is atomic: readers see either the old object, the new one, or nothing,
/// never a partial object. Listing is per "directory": the immediate child names under a prefix.
/// </remarks>
public interface IObjectStore
{
    /// <summary>Writes (or replaces) an object atomically.</summary>
    Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct);

    /// <summary>Writes (or replaces) an object atomically from a stream read to its end.</summary>
    Task PutAsync(string key, Stream data, CancellationToken ct);

    /// <summary>The whole object, or null when it does not exist.</summary>
    Task<byte[]?> GetAsync(string key, CancellationToken ct);

    /// <summary>
    /// Reads up to <c>buffer.Length</c> bytes starting at <paramref name="offset"/>; returns the count read, which is
    /// less than the buffer only at the end of the object.
    /// </summary>
    /// <exception cref="ObjectNotFoundException">The object does not exist.</exception>
    Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct);

    /// <summary>
    /// The immediate child names under <c>prefix/</c> (objects and "directories"), sorted ordinally, without the prefix.
    /// <c>ListAsync("")</c> lists tenants; <c>ListAsync("tenant")</c> lists that tenant's block ids.
    /// </summary>
    Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct);

    Task<bool> ExistsAsync(string key, CancellationToken ct);

    /// <summary>Deletes an object; deleting a missing object is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken ct);

    /// <summary>
    /// The largest gap between two wanted byte ranges of one object that a reader should read through rather than
    /// split into two requests. It prices a request in bytes: on local disk a second read costs a seek, so the gap is
    /// small; on an object store a request costs a round trip (tens of milliseconds, ~1 MiB of transfer), so readers
    /// of scattered pages should fetch them in few large requests. Decorators forward their inner store's value.
    /// </summary>
    int ReadCoalesceGapBytes => ObjectStoreReadGaps.Local;

    /// <summary>
    /// A reader for many range reads of one object in a row (a scan's scattered pages). The default forwards every read
    /// to <see cref="ReadRangeAsync"/>, so decorators count them as before; local disk opens the file once per reader
    /// and serves each range with one positional read, so a request costs a syscall rather than an open and a close.
    /// Not thread-safe: one reader serves one sequence of reads.
    /// </summary>
    IRangeReader OpenRangeReader(string key) => new ForwardingRangeReader(this, key);
}

/// <summary>Range reads of one object (<see cref="IObjectStore.OpenRangeReader"/>); dispose to release the object.</summary>
public interface IRangeReader : IDisposable
{
    /// <summary>Same contract as <see cref="IObjectStore.ReadRangeAsync"/> for the reader's object.</summary>
    ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct);
}

/// <summary>The default <see cref="IRangeReader"/>: each read is one <see cref="IObjectStore.ReadRangeAsync"/>.</summary>
internal sealed class ForwardingRangeReader(IObjectStore store, string key) : IRangeReader
{
    public ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct) =>
        new(store.ReadRangeAsync(key, offset, buffer, ct));

    public void Dispose()
    {
    }
}

/// <summary>Values of <see cref="IObjectStore.ReadCoalesceGapBytes"/>.</summary>
public static class ObjectStoreReadGaps
{
    /// <summary>
    /// Local disk: with <see cref="IObjectStore.OpenRangeReader"/> a request is one positional read, so reading through
    /// more than a short gap costs more than it saves. 128 rather than 512 bytes: the bench's needle query reads 16%
    /// fewer bytes (6.53 → 5.47 MB) for 30% more requests and ~7% more time, the broad one 24% fewer bytes for ~24%
    /// more time (docs/benchmarks.md §6).
    /// </summary>
    public const int Local = 128;

    /// <summary>
    /// S3, Azure Blob, GCS: a request's round trip is worth about 1 MiB at the ~50 MB/s one connection gets
    /// (docs/benchmarks.md §7 measured 20-47x more range GETs and slower scans against s3rver with the local gap).
    /// </summary>
    public const int ObjectStore = 1024 * 1024;
}

/// <summary>The object addressed by <see cref="Key"/> does not exist.</summary>
public sealed class ObjectNotFoundException : Exception
{
    public ObjectNotFoundException(string key)
        : base($"object '{key}' does not exist")
    {
        Key = key;
    }

    public ObjectNotFoundException(string key, Exception inner)
        : base($"object '{key}' does not exist", inner)
    {
        Key = key;
    }

    public string Key { get; }
}

/// <summary>Key helpers shared by every backend.</summary>
public static class ObjectKeys
{
    public const string MetaName = "meta.json";
    public const string CompactedMetaName = "meta.compacted.json";

    public static string Join(params string[] parts) => string.Join('/', parts.Where(p => p.Length > 0));

    public static string BlockPrefix(string tenantId, Guid blockId) => tenantId + "/" + blockId.ToString("D");

    public static string BlockObject(string tenantId, Guid blockId, string name) => BlockPrefix(tenantId, blockId) + "/" + name;

    /// <summary>Throws when a key is empty, absolute, has empty segments, backslashes or <c>.</c>/<c>..</c> segments.</summary>
    public static void Validate(string key, bool allowEmpty = false)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0)
        {
            if (allowEmpty)
            {
                return;
            }

            throw new ArgumentException("object key must not be empty", nameof(key));
        }

        if (key.Contains('\\') || key.Contains('\0'))
        {
            throw new ArgumentException($"object key '{key}' contains a backslash or NUL", nameof(key));
        }

        foreach (var seg in key.Split('/'))
        {
            if (seg.Length == 0 || seg == "." || seg == "..")
            {
                throw new ArgumentException($"object key '{key}' has an empty, '.' or '..' segment", nameof(key));
            }
        }
    }
}
