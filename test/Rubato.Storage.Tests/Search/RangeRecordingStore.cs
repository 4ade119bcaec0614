using Rubato.Storage.Backend;

namespace Rubato.Storage.Tests.Search;

/// <summary>A decorator over a real store that records every range read (key, offset, length).</summary>
/// <param name="inner">The real store.</param>
/// <param name="readCoalesceGapBytes">What the decorator reports as <see cref="IObjectStore.ReadCoalesceGapBytes"/>
/// (null: the inner store's), so a test can read a local block the way it is read from an object store.</param>
internal sealed class RangeRecordingStore(IObjectStore inner, int? readCoalesceGapBytes = null) : IObjectStore
{
    private readonly List<(string Key, long Offset, int Length)> _ranges = [];

    public IReadOnlyList<(string Key, long Offset, int Length)> Ranges
    {
        get
        {
            lock (_ranges)
            {
                return _ranges.ToList();
            }
        }
    }

    public void Clear()
    {
        lock (_ranges)
        {
            _ranges.Clear();
        }
    }

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => inner.PutAsync(key, data, ct);

    public Task PutAsync(string key, Stream data, CancellationToken ct) => inner.PutAsync(key, data, ct);

    public Task<byte[]?> GetAsync(string key, CancellationToken ct) => inner.GetAsync(key, ct);

    public async Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        int n = await inner.ReadRangeAsync(key, offset, buffer, ct);
        lock (_ranges)
        {
            _ranges.Add((key, offset, buffer.Length));
        }

        return n;
    }

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task<bool> ExistsAsync(string key, CancellationToken ct) => inner.ExistsAsync(key, ct);

    public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

    public int ReadCoalesceGapBytes => readCoalesceGapBytes ?? inner.ReadCoalesceGapBytes;
}
