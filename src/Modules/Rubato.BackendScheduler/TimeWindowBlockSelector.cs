using Rubato.Storage.Backend;

namespace Rubato.BackendScheduler;

/// <summary>
/// Picks groups of blocks to compact together, like Tempo's time-window selector
/// (tempodb/blockselector/compaction_block_selector.go). Each block belongs to the <c>compaction_window</c> of its end
/// time. Blocks in the active window (the last 24h) are grouped by (compaction level, window, replication factor):
/// lower levels first, then newer windows, smallest blocks (fewest traces) first within a group. Older blocks are
/// grouped by (window, replication factor) only, newest window first, and within a group by level then size. Blocks
/// of the window that straddles the 24h cut-over are left alone, as in Tempo. Only blocks of the same format version,
/// codec and data encoding are compacted together. Each group yields runs of 2–4 adjacent blocks (min/max input
/// blocks) whose total traces and bytes stay under <c>max_compaction_objects</c> and <c>max_block_bytes</c>.
/// </summary>
/// <remarks>
/// Single use: built from a snapshot of the block list, consumed by repeated <see cref="Next"/> calls on one thread.
/// Cost: O(n log n) to sort, then O(n × max_input_blocks) over all <see cref="Next"/> calls.
/// </remarks>
public sealed class TimeWindowBlockSelector
{
    /// <summary>Blocks ending within this long of now are "active" and grouped by level too (Tempo: 24h).</summary>
    public static readonly TimeSpan ActiveWindowDuration = TimeSpan.FromHours(24);

    public const int DefaultMinInputBlocks = 2;
    public const int DefaultMaxInputBlocks = 4;

    private readonly Entry[] _entries;
    private readonly int _minInput;
    private readonly int _maxInput;
    private readonly long _maxObjects;
    private readonly ulong _maxBytes;
    private int _cursor;

    public TimeWindowBlockSelector(
        IEnumerable<BlockMeta> blocks,
        TimeSpan window,
        long maxCompactionObjects,
        ulong maxBlockBytes,
        int minInputBlocks,
        int maxInputBlocks,
        DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (window < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(window), window, "compaction window must be at least 1s");
        }

        if (minInputBlocks < 2 || maxInputBlocks < minInputBlocks)
        {
            throw new ArgumentOutOfRangeException(nameof(minInputBlocks), $"need 2 <= min_input_blocks ({minInputBlocks}) <= max_input_blocks ({maxInputBlocks})");
        }

        _minInput = minInputBlocks;
        _maxInput = maxInputBlocks;
        _maxObjects = maxCompactionObjects;
        _maxBytes = maxBlockBytes;
        long windowSeconds = (long)window.TotalSeconds;
        long current = WindowOf(now, windowSeconds);
        long activeCut = WindowOf(now - ActiveWindowDuration, windowSeconds);

        var entries = new List<Entry>();
        foreach (var b in blocks)
        {
            long w = WindowOf(b.EndTime, windowSeconds);
            if (w == activeCut)
            {
                continue; // The window crossing from active to inactive: left alone while it changes grouping.
            }

            long age = current - w;
            entries.Add(w > activeCut
                ? new Entry(b, Active: true, GroupLevel: b.CompactionLevel, Age: age)
                : new Entry(b, Active: false, GroupLevel: 0, Age: age));
        }

        entries.Sort(Compare);
        _entries = [.. entries];
    }

    /// <summary>The next run of blocks to compact together (2–4 blocks), or null when no group has one left.</summary>
    public IReadOnlyList<BlockMeta>? Next()
    {
        while (_cursor < _entries.Length)
        {
            int i = _cursor;
            int chosen = 0;
            for (; i < _entries.Length; i++)
            {
                chosen = LongestRun(i);
                if (chosen >= 2)
                {
                    break;
                }
            }

            if (i >= _entries.Length)
            {
                _cursor = _entries.Length;
                return null;
            }

            _cursor = i + chosen;
            if (chosen >= _minInput)
            {
                var result = new BlockMeta[chosen];
                for (int k = 0; k < chosen; k++)
                {
                    result[k] = _entries[i + k].Meta;
                }

                return result;
            }
        }

        return null;
    }

    /// <summary>Every remaining run (used to measure a tenant's outstanding blocks).</summary>
    public IEnumerable<IReadOnlyList<BlockMeta>> All()
    {
        while (Next() is { } run)
        {
            yield return run;
        }
    }

    private int LongestRun(int start)
    {
        var first = _entries[start];
        long objects = first.Meta.TotalObjects;
        ulong bytes = first.Meta.Size;
        int n = 1;
        for (int j = start + 1; j < _entries.Length && n < _maxInput; j++)
        {
            var e = _entries[j];
            objects += e.Meta.TotalObjects;
            bytes += e.Meta.Size;
            if (!SameGroup(first, e) || objects > _maxObjects || bytes > _maxBytes)
            {
                break;
            }

            n++;
        }

        return n;
    }

    private static bool SameGroup(Entry a, Entry b) =>
        a.Active == b.Active && a.GroupLevel == b.GroupLevel && a.Age == b.Age
        && a.Meta.ReplicationFactor == b.Meta.ReplicationFactor
        && a.Meta.Version == b.Meta.Version
        && a.Meta.Encoding == b.Meta.Encoding
        && a.Meta.DataEncoding == b.Meta.DataEncoding;

    private static int Compare(Entry a, Entry b)
    {
        // Groups: active before inactive ("A-" < "B-" in Tempo); active by level then newest window; inactive by newest window.
        int c = b.Active.CompareTo(a.Active);
        if (c == 0) c = a.GroupLevel.CompareTo(b.GroupLevel);
        if (c == 0) c = a.Age.CompareTo(b.Age);
        if (c == 0) c = a.Meta.ReplicationFactor.CompareTo(b.Meta.ReplicationFactor);

        // Within a group keep blocks of one format together, so runs do not break on a version change in the middle.
        if (c == 0) c = string.CompareOrdinal(a.Meta.Version, b.Meta.Version);
        if (c == 0) c = string.CompareOrdinal(a.Meta.Encoding, b.Meta.Encoding);
        if (c == 0) c = string.CompareOrdinal(a.Meta.DataEncoding, b.Meta.DataEncoding);

        // Inactive groups prefer lower levels first; both prefer the smallest blocks.
        if (c == 0 && !a.Active) c = a.Meta.CompactionLevel.CompareTo(b.Meta.CompactionLevel);
        if (c == 0) c = a.Meta.TotalObjects.CompareTo(b.Meta.TotalObjects);
        if (c == 0) c = a.Meta.BlockId.CompareTo(b.Meta.BlockId);
        return c;
    }

    private static long WindowOf(DateTimeOffset t, long windowSeconds) => Math.DivRem(t.ToUnixTimeSeconds(), windowSeconds, out long r) - (r < 0 ? 1 : 0);

    private readonly record struct Entry(BlockMeta Meta, bool Active, uint GroupLevel, long Age);
}
