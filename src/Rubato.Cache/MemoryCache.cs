using Rubato.Common.Metrics;

namespace Rubato.Cache;

/// <summary>
/// In-process LRU cache bounded by total bytes. An entry costs <c>key.Length + value.Length</c> bytes (the key counted
/// one byte per char); when a set pushes the total over <c>max_size_bytes</c>, least recently used entries are evicted
/// until it fits. A value larger than the whole budget is not stored (and drops any older value of that key).
/// </summary>
/// <remarks>
/// Thread-safe under one lock; every operation is O(1) (hash map + intrusive doubly linked list) apart from the
/// copy of the value on set. Gets hand out the stored array itself (no copy): callers must not mutate it.
/// Expired entries are removed when read or when they reach the LRU tail.
/// </remarks>
public sealed class MemoryCache : ICache
{
    private readonly Dictionary<string, LinkedListNode<Entry>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _lru = new(); // First = most recently used.
    private readonly Lock _lock = new();
    private readonly long _maxSizeBytes;
    private readonly TimeSpan _defaultTtl;
    private readonly TimeProvider _time;
    private readonly CacheMetrics _metrics;
    private long _sizeBytes;

    public MemoryCache(string name, long maxSizeBytes, TimeSpan defaultTtl, MetricsRegistry metrics, TimeProvider? time = null)
    {
        if (maxSizeBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSizeBytes), maxSizeBytes, "max_size_bytes must be positive");
        }

        Name = name;
        _maxSizeBytes = maxSizeBytes;
        _defaultTtl = defaultTtl;
        _time = time ?? TimeProvider.System;
        _metrics = new CacheMetrics(metrics, name);
    }

    public string Name { get; }

    /// <summary>Total cost of the entries held now.</summary>
    public long SizeBytes
    {
        get
        {
            lock (_lock)
            {
                return _sizeBytes;
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _map.Count;
            }
        }
    }

    public ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default) => new(Get(key));

    public byte[]? Get(string key)
    {
        long now = _time.GetTimestamp();
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                if (node.Value.ExpiresAt != 0 && now >= node.Value.ExpiresAt)
                {
                    RemoveNode(node);
                }
                else
                {
                    _lru.Remove(node);
                    _lru.AddFirst(node);
                    _metrics.GetHit.Inc();
                    return node.Value.Value;
                }
            }
        }

        _metrics.GetMiss.Inc();
        return null;
    }

    public ValueTask SetAsync(string key, ReadOnlyMemory<byte> value, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        Set(key, value.Span, ttl);
        return ValueTask.CompletedTask;
    }

    public void Set(string key, ReadOnlySpan<byte> value, TimeSpan? ttl = null)
    {
        long cost = (long)key.Length + value.Length;
        var effectiveTtl = ttl ?? _defaultTtl;
        long expiresAt = effectiveTtl > TimeSpan.Zero
            ? _time.GetTimestamp() + (long)(effectiveTtl.TotalSeconds * _time.TimestampFrequency)
            : 0;
        if (cost > _maxSizeBytes)
        {
            lock (_lock)
            {
                if (_map.TryGetValue(key, out var old))
                {
                    RemoveNode(old);
                }
            }

            _metrics.SetTooLarge.Inc();
            return;
        }

        byte[] copy = value.ToArray(); // Outside the lock: the copy is the only O(n) part.
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var old))
            {
                RemoveNode(old);
            }

            var node = _lru.AddFirst(new Entry(key, copy, expiresAt, cost));
            _map[key] = node;
            _sizeBytes += cost;
            while (_sizeBytes > _maxSizeBytes)
            {
                RemoveNode(_lru.Last!);
            }
        }

        _metrics.SetStored.Inc();
    }

    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _map.Clear();
            _lru.Clear();
            _sizeBytes = 0;
        }

        return ValueTask.CompletedTask;
    }

    // Caller holds _lock.
    private void RemoveNode(LinkedListNode<Entry> node)
    {
        _lru.Remove(node);
        _map.Remove(node.Value.Key);
        _sizeBytes -= node.Value.Cost;
    }

    private readonly record struct Entry(string Key, byte[] Value, long ExpiresAt, long Cost);
}
