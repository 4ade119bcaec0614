using Rubato.Storage.Backend;

namespace Rubato.Cli;

/// <summary>
/// A forward-only read stream over one object, fetched with <see cref="IObjectStore.ReadRangeAsync"/> in chunks of
/// <c>chunkSize</c> bytes, so copying a large data object holds one chunk in memory instead of the whole object.
/// The end is the first short read (the store's contract). Not seekable; one reader at a time.
/// </summary>
public sealed class RangeReadStream : Stream
{
    public const int DefaultChunkSize = 8 * 1024 * 1024;

    private readonly IObjectStore _store;
    private readonly string _key;
    private readonly byte[] _chunk;
    private long _nextOffset;
    private int _chunkPos;
    private int _chunkLen;
    private bool _eof;

    public RangeReadStream(IObjectStore store, string key, int chunkSize = DefaultChunkSize)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        _store = store;
        _key = key;
        _chunk = new byte[chunkSize];
    }

    /// <summary>Bytes handed to the reader so far.</summary>
    public long BytesRead { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException("RangeReadStream does not know the object's length");

    public override long Position
    {
        get => BytesRead;
        set => throw new NotSupportedException("RangeReadStream is forward-only");
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        if (_chunkPos == _chunkLen)
        {
            if (_eof)
            {
                return 0;
            }

            _chunkLen = await _store.ReadRangeAsync(_key, _nextOffset, _chunk, cancellationToken).ConfigureAwait(false);
            _chunkPos = 0;
            _nextOffset += _chunkLen;
            _eof = _chunkLen < _chunk.Length;
            if (_chunkLen == 0)
            {
                return 0;
            }
        }

        int n = Math.Min(buffer.Length, _chunkLen - _chunkPos);
        _chunk.AsMemory(_chunkPos, n).CopyTo(buffer);
        _chunkPos += n;
        BytesRead += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("RangeReadStream is forward-only");

    public override void SetLength(long value) => throw new NotSupportedException("RangeReadStream is read-only");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("RangeReadStream is read-only");
}
