using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rubato.Storage.Backend;

namespace Rubato.Storage.Blocklist;

/// <summary>
/// The object-store steps of a block's life after it is written: marking it compacted, deleting it, and the
/// provenance marker a compaction output carries. Every step is idempotent, so a crashed job can simply be redone.
/// </summary>
/// <remarks>Stateless and thread-safe; every method runs on the caller's thread and does only object-store I/O.</remarks>
public static class BlockLifecycle
{
    /// <summary>
    /// <c>compaction.json</c>: <c>{"inputs":[blockID...]}</c>, written into a compaction output's folder before any
    /// other object of it, so a scheduler that restarted can find an unfinished output and re-issue the job that
    /// produces it (same inputs → same output id).
    /// </summary>
    public const string ProvenanceName = "compaction.json";

    /// <summary>
    /// The output block id of a compaction of <paramref name="inputs"/>: a name-based UUID (version 8, RFC 9562) from
    /// SHA-256 over the tenant and the sorted input ids. Redoing a job therefore overwrites its earlier, possibly
    /// partial, output instead of producing a second copy of the data.
    /// </summary>
    public static Guid CompactionOutputId(string tenantId, IEnumerable<Guid> inputs)
    {
        ArgumentNullException.ThrowIfNull(tenantId);
        ArgumentNullException.ThrowIfNull(inputs);
        var sorted = inputs.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new ArgumentException("a compaction needs at least one input block", nameof(inputs));
        }

        var sb = new StringBuilder("rubato-compaction\n").Append(tenantId);
        foreach (var id in sorted)
        {
            sb.Append('\n').Append(id.ToString("D"));
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sb.ToString()), hash);
        Span<byte> b = hash[..16];
        b[6] = (byte)((b[6] & 0x0F) | 0x80); // version 8
        b[8] = (byte)((b[8] & 0x3F) | 0x80); // RFC 9562 variant
        return new Guid(b, bigEndian: true);
    }

    /// <summary>
    /// Writes <c>meta.compacted.json</c> (the meta plus <paramref name="compactedTime"/>) unless the block already has
    /// one; returns false in that case. From then on readers skip the block.
    /// </summary>
    public static async Task<bool> MarkCompactedAsync(IObjectStore store, BlockMeta meta, DateTimeOffset compactedTime, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(meta);
        string key = ObjectKeys.BlockObject(meta.TenantId, meta.BlockId, ObjectKeys.CompactedMetaName);
        if (await store.ExistsAsync(key, ct).ConfigureAwait(false))
        {
            return false;
        }

        await store.PutAsync(key, new CompactedBlockMeta(meta, compactedTime).ToJson(), ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Deletes every object of a block in the one order that never resurrects it and never strands garbage:
    /// <c>meta.json</c> first (the block is invisible from then on, and without meta.json it can never look live
    /// again), then the data, index, bloom and provenance objects, and <c>meta.compacted.json</c> last. A crash part
    /// way leaves a folder holding <c>meta.compacted.json</c>, which every listing still reports as a compacted block,
    /// so the next retention pass deletes the rest. Deleting meta.compacted.json first instead would make a
    /// half-deleted block with meta.json look live again.
    /// </summary>
    public static async Task DeleteBlockAsync(IObjectStore store, string tenantId, Guid blockId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        string prefix = ObjectKeys.BlockPrefix(tenantId, blockId);
        await store.DeleteAsync(prefix + "/" + ObjectKeys.MetaName, ct).ConfigureAwait(false);
        foreach (string name in await store.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            if (name != ObjectKeys.CompactedMetaName && name != ObjectKeys.MetaName)
            {
                await store.DeleteAsync(prefix + "/" + name, ct).ConfigureAwait(false);
            }
        }

        await store.DeleteAsync(prefix + "/" + ObjectKeys.CompactedMetaName, ct).ConfigureAwait(false);
    }

    public static Task WriteProvenanceAsync(IObjectStore store, string tenantId, Guid outputId, IReadOnlyList<Guid> inputs, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(inputs);
        var arr = new JsonArray();
        foreach (var id in inputs.Order())
        {
            arr.Add(id.ToString("D"));
        }

        byte[] json = JsonSerializerHelpers.Serialize(new JsonObject { ["inputs"] = arr });
        return store.PutAsync(ObjectKeys.BlockObject(tenantId, outputId, ProvenanceName), json, ct);
    }

    /// <summary>The inputs recorded in a block's <c>compaction.json</c>, or null when it has none.</summary>
    /// <exception cref="FormatException">The marker exists but is malformed.</exception>
    public static async Task<IReadOnlyList<Guid>?> ReadProvenanceAsync(IObjectStore store, string tenantId, Guid blockId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        string key = ObjectKeys.BlockObject(tenantId, blockId, ProvenanceName);
        byte[]? json = await store.GetAsync(key, ct).ConfigureAwait(false);
        if (json is null)
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            if (!doc.RootElement.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException($"'{key}' has no inputs array");
            }

            return [.. inputs.EnumerateArray().Select(e => Guid.Parse(e.GetString() ?? throw new FormatException($"'{key}': input ids must be strings")))];
        }
        catch (JsonException e)
        {
            throw new FormatException($"'{key}' is not valid JSON: {e.Message}", e);
        }
    }
}
