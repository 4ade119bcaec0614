using System.Buffers.Binary;
using System.Globalization;
using System.Threading.Channels;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Storage.Encoding;

namespace Rubato.Storage.Wal;

/// <summary>When an append is acknowledged.</summary>
public enum SyncPolicy
{
    /// <summary>
    /// After the batch's bytes are handed to the OS with <c>write()</c>: survives the process being killed (<c>kill -9</c>),
    /// not a power loss or kernel crash.
    /// </summary>
    Write,

    /// <summary>
    /// After the batch is <c>fsync</c>'d (one fsync per group-committed batch): survives power loss.
    /// </summary>
    Fsync,
}

public sealed class WalOptions
{
    /// <summary>Folder holding the generation files; created when missing.</summary>
    public string Path { get; set; } = string.Empty;

    public SyncPolicy SyncPolicy { get; set; } = SyncPolicy.Write;

    /// <summary>
    /// When positive, the writer starts a new generation by itself once the current one passes this many bytes
    /// (appends then return the new generation). 0 (default): generations change only on <see cref="WriteAheadLog.Rotate"/>.
    /// </summary>
    public long SegmentSizeHintBytes { get; set; }

    /// <summary>Upper bound on bytes gathered into one write (group commit); a single larger append is still written whole.</summary>
    public int MaxBatchBytes { get; set; } = 4 * 1024 * 1024;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Path))
        {
            throw new ArgumentException("WalOptions.Path must be set");
        }

        if (SegmentSizeHintBytes < 0)
        {
            throw new ArgumentException($"WalOptions.SegmentSizeHintBytes must not be negative, got {SegmentSizeHintBytes}");
        }

        if (MaxBatchBytes < 4096)
        {
            throw new ArgumentException($"WalOptions.MaxBatchBytes must be at least 4096, got {MaxBatchBytes}");
        }
    }
}

/// <summary>One replayed trace segment.</summary>
public readonly record struct WalRecord(string TenantId, TraceId TraceId, ReadOnlyMemory<byte> Payload, int SpanCount, ulong StartUnixNano, ulong EndUnixNano);

/// <summary>The result of replaying one generation.</summary>
/// <param name="Records">Every intact record, in write order.</param>
/// <param name="DiscardedBytes">Bytes after the last intact record (a torn or corrupt tail); 0 for a clean file.</param>
public sealed record WalReplay(IReadOnlyList<WalRecord> Records, long DiscardedBytes);

/// <summary>Counters for the server's metrics endpoint. Updated by the writer thread; read with any thread.</summary>
public sealed class WalStats
{
    internal long _appendedBytes;
    internal long _appendedRecords;
    internal long _appends;
    internal long _writes;
    internal long _fsyncs;

    public long AppendedBytes => Interlocked.Read(ref _appendedBytes);

    public long AppendedRecords => Interlocked.Read(ref _appendedRecords);

    /// <summary>AppendAsync calls completed.</summary>
    public long Appends => Interlocked.Read(ref _appends);

    /// <summary>write() calls (each carries one group-committed batch).</summary>
    public long Writes => Interlocked.Read(ref _writes);

    public long Fsyncs => Interlocked.Read(ref _fsyncs);
}

/// <summary>
/// The ingester's write-ahead log: trace segments are appended here, and acknowledged only once durable per
/// <see cref="SyncPolicy"/>, before they are acknowledged to clients.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> A folder of generation files <c>NNNNNNNNNNNNNNNNNNNN.wal</c> (20-digit zero-padded generation).
/// Each file starts with a 16-byte header: magic "RWAL" (u32), revision u16, reserved u16, generation u64; then records:
/// <c>[u32 payload length][u32 CRC-32C of payload][payload]</c>, payload = <c>[u16 tenant length][tenant UTF-8]
/// [16-byte trace id][u64 start][u64 end][i32 span count][segment bytes]</c>. All integers little-endian.</para>
/// <para><b>Group commit.</b> Request threads enqueue appends on a channel and await; one writer task drains everything
/// queued, encodes it into one buffer, issues one <c>write()</c> (and, under <see cref="SyncPolicy.Fsync"/>, one fsync),
/// then completes all of them. So N concurrent appends cost one syscall pair, not N.</para>
/// <para><b>Generations.</b> Opening always starts a fresh generation (max on disk + 1): old ones are for replay.
/// <see cref="Rotate"/> closes the current generation (fsync'd) and starts the next; the ingester deletes a generation
/// once every trace in it is in a flushed block.</para>
/// <para><b>Replay.</b> A torn or corrupt tail (crash mid-write) ends replay of that generation; records before it are
/// intact (CRC-checked), no corrupt record is ever returned.</para>
/// </remarks>
public sealed class WriteAheadLog : IAsyncDisposable
{
    public const uint Magic = 0x4C415752; // "RWAL"
    public const ushort Revision = 1;
    public const int FileHeaderSize = 16;
    public const int RecordHeaderSize = 8;
    public const int MaxTenantBytes = 1024;
    private const string Extension = ".wal";

    private readonly WalOptions _options;
    private readonly Channel<Pending> _queue;
    private readonly Lock _fileLock = new();
    private readonly Task _writer;
    private readonly ByteWriter _batch = new(64 * 1024);
    private FileStream _file;
    private long _fileLength = FileHeaderSize;
    private long _generation;
    private volatile Exception? _failure;
    private bool _disposed;

    private WriteAheadLog(WalOptions options, long generation, FileStream file)
    {
        _options = options;
        _generation = generation;
        _file = file;
        _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
        _writer = Task.Run(WriterLoopAsync);
    }

    public WalStats Stats { get; } = new();

    public string Path => _options.Path;

    /// <summary>The generation new appends go to.</summary>
    public long CurrentGeneration
    {
        get
        {
            lock (_fileLock)
            {
                return _generation;
            }
        }
    }

    /// <summary>Opens (creating if needed) the WAL folder and starts a new generation after the newest on disk.</summary>
    public static Task<WriteAheadLog> OpenAsync(WalOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ct.ThrowIfCancellationRequested();
        Directory.CreateDirectory(options.Path);
        var gens = ListGenerations(options.Path);
        long next = gens.Count == 0 ? 1 : gens[^1] + 1;
        var file = CreateGenerationFile(options.Path, next);
        return Task.FromResult(new WriteAheadLog(options, next, file));
    }

    /// <summary>
    /// Appends one record per segment and completes when they are durable per policy.
    /// Thread-safe; concurrent callers are group-committed.
    /// </summary>
    /// <returns>The generation the records were written to (all segments of one call land in one generation).</returns>
    public ValueTask<long> AppendAsync(string tenantId, IReadOnlyList<TraceSegment> segments, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);
        ArgumentNullException.ThrowIfNull(segments);
        if (System.Text.Encoding.UTF8.GetByteCount(tenantId) > MaxTenantBytes)
        {
            throw new ArgumentException($"tenant id longer than {MaxTenantBytes} bytes", nameof(tenantId));
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_failure is { } failure)
        {
            throw new IOException($"WAL at {_options.Path} is failed after an unrecoverable write error: {failure.Message}", failure);
        }

        if (ct.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<long>(ct);
        }

        var p = new Pending(tenantId, segments);
        if (!_queue.Writer.TryWrite(p))
        {
            throw new ObjectDisposedException(nameof(WriteAheadLog));
        }

        // Once queued, the append is not cancellable: the writer reads the caller's payload memory, so the caller must
        // not get control back (and reuse its buffers) before the write is done.
        return new ValueTask<long>(p.Completion.Task);
    }

    /// <summary>Closes the current generation (after an fsync) and starts the next.</summary>
    /// <returns>The generation that was closed.</returns>
    public long Rotate()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_fileLock)
        {
            return RotateLocked();
        }
    }

    /// <summary>Generations on disk, ascending (including the current one).</summary>
    public IReadOnlyList<long> Generations() => ListGenerations(_options.Path);

    /// <summary>Deletes a generation's file. The current generation cannot be deleted; a missing one is ignored.</summary>
    public void DeleteGeneration(long generation)
    {
        lock (_fileLock)
        {
            if (generation == _generation && !_disposed)
            {
                throw new InvalidOperationException($"generation {generation} is the one being written; rotate first");
            }
        }

        File.Delete(GenerationPath(_options.Path, generation));
    }

    /// <summary>Replays a generation lazily; <paramref name="onDiscarded"/> gets the torn-tail byte count at the end.</summary>
    public IEnumerable<WalRecord> ReadGeneration(long generation, Action<long>? onDiscarded = null)
    {
        var replay = ReplayGeneration(generation);
        onDiscarded?.Invoke(replay.DiscardedBytes);
        return replay.Records;
    }

    /// <summary>Reads a generation's intact records and how many tail bytes were discarded.</summary>
    public WalReplay ReplayGeneration(long generation) => ReplayFile(GenerationPath(_options.Path, generation));

    /// <summary>Parses a generation file; never throws for torn or corrupt content (only for I/O errors).</summary>
    public static WalReplay ReplayFile(string path)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return new WalReplay([], 0);
        }

        var records = new List<WalRecord>();
        if (data.Length < FileHeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(data) != Magic || BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(4)) != Revision)
        {
            return new WalReplay(records, data.Length);
        }

        int pos = FileHeaderSize;
        var mem = data.AsMemory();
        while (data.Length - pos >= RecordHeaderSize)
        {
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos));
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos + 4));
            if (len > data.Length - pos - RecordHeaderSize)
            {
                break;
            }

            var payload = data.AsSpan(pos + RecordHeaderSize, (int)len);
            if (Crc32C.Compute(payload) != crc || !TryParsePayload(mem.Slice(pos + RecordHeaderSize, (int)len), out var rec))
            {
                break;
            }

            records.Add(rec);
            pos += RecordHeaderSize + (int)len;
        }

        return new WalReplay(records, data.Length - pos);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        lock (_fileLock)
        {
            _file.Flush(flushToDisk: _options.SyncPolicy == SyncPolicy.Fsync);
            _file.Dispose();
        }
    }

    private static bool TryParsePayload(ReadOnlyMemory<byte> payload, out WalRecord rec)
    {
        rec = default;
        var s = payload.Span;
        if (s.Length < 2)
        {
            return false;
        }

        int tl = BinaryPrimitives.ReadUInt16LittleEndian(s);
        int fixedLen = 2 + tl + 16 + 8 + 8 + 4;
        if (tl == 0 || s.Length < fixedLen)
        {
            return false;
        }

        string tenant = System.Text.Encoding.UTF8.GetString(s.Slice(2, tl));
        int p = 2 + tl;
        var id = TraceId.FromBytes(s.Slice(p, 16));
        ulong start = BinaryPrimitives.ReadUInt64LittleEndian(s[(p + 16)..]);
        ulong end = BinaryPrimitives.ReadUInt64LittleEndian(s[(p + 24)..]);
        int spans = BinaryPrimitives.ReadInt32LittleEndian(s[(p + 32)..]);
        rec = new WalRecord(tenant, id, payload[fixedLen..], spans, start, end);
        return true;
    }

    private static void EncodeRecord(ByteWriter w, string tenant, in TraceSegment seg)
    {
        int tl = System.Text.Encoding.UTF8.GetByteCount(tenant);
        int len = 2 + tl + 16 + 8 + 8 + 4 + seg.Payload.Length;
        var header = w.GetSpan(RecordHeaderSize + len)[..(RecordHeaderSize + len)];
        var payload = header[RecordHeaderSize..];
        BinaryPrimitives.WriteUInt16LittleEndian(payload, (ushort)tl);
        System.Text.Encoding.UTF8.GetBytes(tenant, payload.Slice(2, tl));
        int p = 2 + tl;
        seg.TraceId.WriteTo(payload.Slice(p, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(payload[(p + 16)..], seg.StartUnixNano);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[(p + 24)..], seg.EndUnixNano);
        BinaryPrimitives.WriteInt32LittleEndian(payload[(p + 32)..], seg.SpanCount);
        seg.Payload.Span.CopyTo(payload[(p + 36)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)len);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32C.Compute(payload));
        w.Advance(RecordHeaderSize + len);
    }

    /// <summary>The single writer: drains the queue into one buffer per batch, writes (and fsyncs) it, completes callers.</summary>
    /// <remarks>
    /// Runs on a thread-pool task for the WAL's lifetime. A failed write truncates the file back to the end of the last
    /// good batch, so a partial batch can never sit in front of later acknowledged records (replay stops at the first
    /// bad record). If even the truncation fails the WAL becomes failed: every later append throws.
    /// </remarks>
    private async Task WriterLoopAsync()
    {
        var batch = new List<Pending>(64);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            _batch.Clear();
            long records = 0;
            long generation = 0;
            Exception? error = _failure;
            try
            {
                while (_batch.Length < _options.MaxBatchBytes && reader.TryRead(out var p))
                {
                    batch.Add(p);
                    foreach (var seg in p.Segments)
                    {
                        EncodeRecord(_batch, p.TenantId, seg);
                    }

                    records += p.Segments.Count;
                }

                if (error is null)
                {
                    generation = WriteBatch();
                }
            }
            catch (Exception e)
            {
                error = e;
            }

            if (error is not null)
            {
                foreach (var p in batch)
                {
                    p.Completion.TrySetException(new IOException($"WAL write to {_options.Path} failed: {error.Message}", error));
                }

                continue;
            }

            Interlocked.Add(ref Stats._appendedBytes, _batch.Length);
            Interlocked.Add(ref Stats._appendedRecords, records);
            Interlocked.Add(ref Stats._appends, batch.Count);
            foreach (var p in batch)
            {
                p.Completion.TrySetResult(generation);
            }
        }
    }

    private long WriteBatch()
    {
        lock (_fileLock)
        {
            if (_options.SegmentSizeHintBytes > 0 && _fileLength > FileHeaderSize && _fileLength + _batch.Length > _options.SegmentSizeHintBytes)
            {
                RotateLocked();
            }

            try
            {
                // bufferSize 1: Write goes straight to write(2); after it returns the bytes are the kernel's.
                _file.Write(_batch.WrittenSpan);
                Interlocked.Increment(ref Stats._writes);
                if (_options.SyncPolicy == SyncPolicy.Fsync)
                {
                    _file.Flush(flushToDisk: true);
                    Interlocked.Increment(ref Stats._fsyncs);
                }

                _fileLength += _batch.Length;
                return _generation;
            }
            catch (Exception)
            {
                try
                {
                    _file.SetLength(_fileLength);
                    _file.Position = _fileLength;
                }
                catch (Exception truncateError)
                {
                    _failure = truncateError;
                }

                throw;
            }
        }
    }

    private long RotateLocked()
    {
        long closed = _generation;
        _file.Flush(flushToDisk: true);
        _file.Dispose();
        _generation = closed + 1;
        _file = CreateGenerationFile(_options.Path, _generation);
        _fileLength = FileHeaderSize;
        return closed;
    }

    private static FileStream CreateGenerationFile(string dir, long generation)
    {
        // bufferSize 1 disables FileStream buffering: every Write is a write() syscall straight to the OS.
        var fs = new FileStream(GenerationPath(dir, generation), FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, 1);
        Span<byte> h = stackalloc byte[FileHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], Revision);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(h[8..], generation);
        fs.Write(h);
        fs.Flush(flushToDisk: true);
        return fs;
    }

    private static string GenerationPath(string dir, long generation) =>
        System.IO.Path.Combine(dir, generation.ToString("D20", CultureInfo.InvariantCulture) + Extension);

    private static List<long> ListGenerations(string dir)
    {
        var gens = new List<long>();
        if (!Directory.Exists(dir))
        {
            return gens;
        }

        foreach (var f in Directory.EnumerateFiles(dir, "*" + Extension))
        {
            string name = System.IO.Path.GetFileNameWithoutExtension(f);
            if (name.Length == 20 && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out long g))
            {
                gens.Add(g);
            }
        }

        gens.Sort();
        return gens;
    }

    private sealed class Pending(string tenantId, IReadOnlyList<TraceSegment> segments)
    {
        public string TenantId { get; } = tenantId;

        public IReadOnlyList<TraceSegment> Segments { get; } = segments;

        public TaskCompletionSource<long> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
