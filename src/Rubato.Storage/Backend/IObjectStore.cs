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
