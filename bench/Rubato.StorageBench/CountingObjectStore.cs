using Rubato.Storage.Backend;

namespace Rubato.StorageBench;

/// <summary>Object-store requests and bytes read, as counted by <see cref="CountingObjectStore"/>; subtract two snapshots for one query.</summary>
public readonly record struct StoreCounts(long Gets, long RangeGets, long Lists, long Heads, long Puts, long Deletes, long BytesRead)
{
    public long Reads => Gets + RangeGets + Lists + Heads;

    public static StoreCounts operator -(StoreCounts a, StoreCounts b) => new(
        a.Gets - b.Gets, a.RangeGets - b.RangeGets, a.Lists - b.Lists, a.Heads - b.Heads, a.Puts - b.Puts, a.Deletes - b.Deletes, a.BytesRead - b.BytesRead);
}

/// <summary>
/// Decorates a real <see cref="IObjectStore"/> and counts every call by kind (whole-object GET, range GET, LIST,
/// HEAD/exists, PUT, DELETE) and the bytes returned by reads. One call is one request of Rubato's store client
/// (the S3 client's listing may page, which this counts as one LIST). Thread-safe: counters are interlocked, so
/// concurrent block reads of one query are all counted.
/// </summary>
public sealed class CountingObjectStore(IObjectStore inner) : IObjectStore
{
    private long _gets;
    private long _rangeGets;
    private long _lists;
    private long _heads;
    private long _puts;
    private long _deletes;
    private long _bytesRead;

    public int ReadCoalesceGapBytes => inner.ReadCoalesceGapBytes;

    public StoreCounts Snapshot() => new(
        Interlocked.Read(ref _gets), Interlocked.Read(ref _rangeGets), Interlocked.Read(ref _lists), Interlocked.Read(ref _heads),
        Interlocked.Read(ref _puts), Interlocked.Read(ref _deletes), Interlocked.Read(ref _bytesRead));

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        Interlocked.Increment(ref _puts);
        return inner.PutAsync(key, data, ct);
    }

    public Task PutAsync(string key, Stream data, CancellationToken ct)
    {
        Interlocked.Increment(ref _puts);
        return inner.PutAsync(key, data, ct);
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        Interlocked.Increment(ref _gets);
        byte[]? data = await inner.GetAsync(key, ct).ConfigureAwait(false);
        Interlocked.Add(ref _bytesRead, data?.Length ?? 0);
        return data;
    }

    public async Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        Interlocked.Increment(ref _rangeGets);
        int n = await inner.ReadRangeAsync(key, offset, buffer, ct).ConfigureAwait(false);
        Interlocked.Add(ref _bytesRead, n);
        return n;
    }

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct)
    {
        Interlocked.Increment(ref _lists);
        return inner.ListAsync(prefix, ct);
    }

    public Task<bool> ExistsAsync(string key, CancellationToken ct)
    {
        Interlocked.Increment(ref _heads);
        return inner.ExistsAsync(key, ct);
    }

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        Interlocked.Increment(ref _deletes);
        return inner.DeleteAsync(key, ct);
    }
}
