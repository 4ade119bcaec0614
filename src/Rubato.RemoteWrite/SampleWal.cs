using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;

namespace Rubato.RemoteWrite;

/// <summary>A place in one tenant's WAL: a segment number and a byte offset in it (the start of a record).</summary>
internal readonly record struct WalPosition(long Segment, long Offset) : IComparable<WalPosition>
{
    public int CompareTo(WalPosition other) => Segment != other.Segment ? Segment.CompareTo(other.Segment) : Offset.CompareTo(other.Offset);

    public static bool operator <(WalPosition a, WalPosition b) => a.CompareTo(b) < 0;

    public static bool operator >(WalPosition a, WalPosition b) => a.CompareTo(b) > 0;

    public static bool operator <=(WalPosition a, WalPosition b) => a.CompareTo(b) <= 0;

    public static bool operator >=(WalPosition a, WalPosition b) => a.CompareTo(b) >= 0;
}

/// <summary>
/// The record format of a sample WAL segment. A segment file is a sequence of records:
/// <c>[u32 payload length][u32 CRC-32C of payload][payload]</c>, little-endian, where the payload is
/// <c>[i64 append time, Unix ms][i32 sample count][WriteRequest.timeseries fields]</c>. A record that is cut short
/// or whose CRC does not match ends the segment (a torn tail from a crash); everything before it is intact
/// because records are only ever appended and fsynced before <c>AppendAsync</c> returns.
/// </summary>
internal static class WalRecord
{
    public const int HeaderSize = 8;
    public const int PayloadPrefix = 12;

    /// <summary>Records above this are treated as corruption (a record is at most max_samples_per_send series).</summary>
    public const int MaxPayload = 64 << 20;

    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, MemoryMarshal.Read<ulong>(data));
            data = data[8..];
        }

        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return ~crc;
    }

    /// <summary>
    /// Validates the record at the start of <paramref name="data"/>: returns its total length, or 0 when the bytes
    /// are a torn or corrupt tail (too short, bad length, bad CRC).
    /// </summary>
    public static int Validate(ReadOnlySpan<byte> data, out int sampleCount, out long appendMs)
    {
        sampleCount = 0;
        appendMs = 0;
        if (data.Length < HeaderSize)
        {
            return 0;
        }

        uint len = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (len < PayloadPrefix || len > MaxPayload || len > data.Length - HeaderSize)
        {
            return 0;
        }

        var payload = data.Slice(HeaderSize, (int)len);
        if (Crc32C(payload) != BinaryPrimitives.ReadUInt32LittleEndian(data[4..]))
        {
            return 0;
        }

        appendMs = BinaryPrimitives.ReadInt64LittleEndian(payload);
        sampleCount = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
        return HeaderSize + (int)len;
    }
}

/// <summary>What is known about one segment file.</summary>
internal sealed class WalSegment
{
    public required long Number { get; init; }

    /// <summary>Bytes of valid records (the file may be longer by a torn tail).</summary>
    public long ValidBytes { get; set; }

    public long Samples { get; set; }

    /// <summary>Append time of the newest record (Unix ms); 0 for an empty segment.</summary>
    public long NewestAppendMs { get; set; }

    /// <summary>Append time of the oldest record (Unix ms); 0 for an empty segment.</summary>
    public long OldestAppendMs { get; set; }
}

/// <summary>One batch read from the WAL: concatenated <c>WriteRequest.timeseries</c> bytes and where it ends.</summary>
internal sealed class WalBatch : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);

    public int Length { get; private set; }

    public int Samples { get; private set; }

    public int Records { get; private set; }

    public WalPosition Start { get; set; }

    public WalPosition End { get; set; }

    /// <summary>Which sender generation this batch was read under (see <see cref="TenantWal.Commit"/>).</summary>
    public long Generation { get; set; }

    public ReadOnlyMemory<byte> Body => _buffer.AsMemory(0, Length);

    public void Reset(WalPosition start, long generation)
    {
        Length = 0;
        Samples = 0;
        Records = 0;
        Start = start;
        End = start;
        Generation = generation;
    }

    public void Add(ReadOnlySpan<byte> timeseries, int samples)
    {
        if (_buffer.Length - Length < timeseries.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, Length + timeseries.Length));
            _buffer.AsSpan(0, Length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        timeseries.CopyTo(_buffer.AsSpan(Length));
        Length += timeseries.Length;
        Samples += samples;
        Records++;
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }
}

/// <summary>
/// One endpoint's place in a tenant's WAL: the committed position (everything before it was acknowledged, dropped
/// or rejected for good), persisted in <c>checkpoint-NAME</c>.
/// </summary>
internal sealed class WalCursor
{
    public required string Endpoint { get; init; }

    public WalPosition Committed { get; set; }

    /// <summary>Samples in the committed position's segment before its offset (for the pending gauge).</summary>
    public long SamplesIntoSegment { get; set; }

    /// <summary>Bumped when truncation moves the cursor past deleted segments, so an in-flight batch does not commit.</summary>
    public long Generation { get; set; }

    /// <summary>Reader state of the sender: where its next read starts (at or after <see cref="Committed"/>).</summary>
    public WalPosition ReadPosition { get; set; }

    public long ReadSamplesIntoSegment { get; set; }
}

/// <summary>
/// The sample WAL of one tenant: numbered segment files under <c>path/TENANT/</c> plus one checkpoint per endpoint.
/// </summary>
/// <remarks>
/// Threads: <see cref="Append"/> runs on the registry's collection thread; each endpoint's sender task calls
/// <see cref="ReadBatch"/> and <see cref="Commit"/>. All state changes happen under <c>_lock</c>; file reads happen
/// outside it on the sender's own file handle, bounded by <see cref="WalSegment.ValidBytes"/> (which only covers
/// bytes that are already fsynced). Deleting a segment a sender still has open is safe on Linux and Windows
/// (FileShare.Delete): its handle keeps reading the old inode.
/// </remarks>
internal sealed class TenantWal : IDisposable
{
    private const string SegmentPrefix = "segment-";
    private const string CheckpointPrefix = "checkpoint-";

    private readonly object _lock = new();
    private readonly string _dir;
    private readonly RemoteWriteWalConfig _config;
    private readonly TimeProvider _time;
    private readonly SortedDictionary<long, WalSegment> _segments = [];
    private readonly Dictionary<string, WalCursor> _cursors = new(StringComparer.Ordinal);
    private readonly Action<string, long> _onDropped;
    private FileStream? _active;
    private WalSegment? _activeSegment;
    private long _nextSegment = 1;
    private long _totalBytes;
    private TaskCompletionSource _dataSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _disposed;

    /// <summary>Opens (and replays) the WAL of one tenant. <paramref name="onDropped"/> is told (endpoint, samples) when the size/age bound drops unsent samples.</summary>
    public TenantWal(string dir, string tenant, RemoteWriteWalConfig config, IEnumerable<string> endpoints, TimeProvider time, Action<string, long> onDropped)
    {
        _dir = dir;
        Tenant = tenant;
        _config = config;
        _time = time;
        _onDropped = onDropped;
        Directory.CreateDirectory(dir);
        Replay(endpoints);
    }

    public string Tenant { get; }

    /// <summary>The durable end of the WAL when it was opened: data before it may already have been sent before a restart.</summary>
    public WalPosition EndAtOpen { get; private set; }

    public long TotalBytes
    {
        get
        {
            lock (_lock)
            {
                return _totalBytes;
            }
        }
    }

    public int SegmentCount
    {
        get
        {
            lock (_lock)
            {
                return _segments.Count;
            }
        }
    }

    /// <summary>Completes when data is appended after the call (or the WAL is disposed).</summary>
    public Task WaitForDataAsync()
    {
        lock (_lock)
        {
            return _dataSignal.Task;
        }
    }

    private static string SegmentName(long n) => SegmentPrefix + n.ToString("D10", System.Globalization.CultureInfo.InvariantCulture);

    private string SegmentPath(long n) => Path.Combine(_dir, SegmentName(n));

    private string CheckpointPath(string endpoint) => Path.Combine(_dir, CheckpointPrefix + endpoint);

    private void Replay(IEnumerable<string> endpoints)
    {
        foreach (var file in Directory.EnumerateFiles(_dir, SegmentPrefix + "*"))
        {
            if (long.TryParse(Path.GetFileName(file).AsSpan(SegmentPrefix.Length), out long n) && n > 0)
            {
                var seg = ScanSegment(file, n, long.MaxValue, out _);
                _segments[n] = seg;
                _totalBytes += new FileInfo(file).Length;
                _nextSegment = Math.Max(_nextSegment, n + 1);
            }
        }

        // Every existing segment is closed: new appends go to a fresh segment, so a torn tail is never appended to.
        EndAtOpen = new WalPosition(_nextSegment, 0);
        var wanted = new HashSet<string>(endpoints, StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(_dir, CheckpointPrefix + "*"))
        {
            string name = Path.GetFileName(file)[CheckpointPrefix.Length..];
            if (!wanted.Contains(name) && !name.EndsWith(".tmp", StringComparison.Ordinal))
            {
                // An endpoint removed from the config: its position no longer holds segments back.
                File.Delete(file);
            }
        }

        foreach (var endpoint in wanted)
        {
            var pos = ReadCheckpoint(endpoint) ?? new WalPosition(FirstSegment(), 0);
            var cursor = new WalCursor { Endpoint = endpoint };
            SetCursor(cursor, pos);
            _cursors[endpoint] = cursor;
        }

        OpenNewSegment();
        TruncateLocked();
    }

    private long FirstSegment() => _segments.Count > 0 ? _segments.Keys.First() : _nextSegment;

    /// <summary>Places a cursor at <paramref name="pos"/>, or at the next existing segment when its segment is gone.</summary>
    private void SetCursor(WalCursor cursor, WalPosition pos)
    {
        long samplesInto = 0;
        if (!_segments.TryGetValue(pos.Segment, out var seg))
        {
            long next = _segments.Keys.FirstOrDefault(k => k > pos.Segment, _nextSegment);
            pos = new WalPosition(next, 0);
        }
        else if (pos.Offset > 0)
        {
            // Clamp to a record boundary inside the valid part and count the samples before it.
            ScanSegment(SegmentPath(pos.Segment), pos.Segment, pos.Offset, out long boundary, countOnly: true, samples: s => samplesInto += s);
            pos = new WalPosition(pos.Segment, Math.Min(boundary, seg.ValidBytes));
        }

        cursor.Committed = pos;
        cursor.SamplesIntoSegment = samplesInto;
        cursor.ReadPosition = pos;
        cursor.ReadSamplesIntoSegment = samplesInto;
    }

    private static WalSegment ScanSegment(string file, long n, long stopAt, out long end, bool countOnly = false, Action<long>? samples = null)
    {
        var seg = new WalSegment { Number = n };
        end = 0;
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
        byte[] data = new byte[fs.Length];
        fs.ReadExactly(data);
        long offset = 0;
        while (offset < data.Length && offset < stopAt)
        {
            int len = WalRecord.Validate(data.AsSpan((int)offset), out int count, out long appendMs);
            if (len == 0)
            {
                break;
            }

            offset += len;
            seg.Samples += count;
            samples?.Invoke(count);
            if (!countOnly)
            {
                seg.OldestAppendMs = seg.OldestAppendMs == 0 ? appendMs : seg.OldestAppendMs;
                seg.NewestAppendMs = appendMs;
            }
        }

        seg.ValidBytes = offset;
        end = offset;
        return seg;
    }

    private WalPosition? ReadCheckpoint(string endpoint)
    {
        string file = CheckpointPath(endpoint);
        if (!File.Exists(file))
        {
            return null;
        }

        byte[] b = File.ReadAllBytes(file);
        if (b.Length != 24 || WalRecord.Crc32C(b.AsSpan(0, 20)) != BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(20))
            || BinaryPrimitives.ReadUInt32LittleEndian(b) != CheckpointMagic)
        {
            // Written atomically (temp + rename), so this is outside damage: resend from the start, which Prometheus
            // answers as duplicates / out-of-order for what it already has.
            return null;
        }

        return new WalPosition(BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(4)), BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(12)));
    }

    private const uint CheckpointMagic = 0x4B435752; // "RWCK"

    /// <summary>Writes a checkpoint atomically: temp file, fsync, rename over the old one.</summary>
    private void WriteCheckpoint(string endpoint, WalPosition pos)
    {
        Span<byte> b = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(b, CheckpointMagic);
        BinaryPrimitives.WriteInt64LittleEndian(b[4..], pos.Segment);
        BinaryPrimitives.WriteInt64LittleEndian(b[12..], pos.Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], WalRecord.Crc32C(b[..20]));
        string file = CheckpointPath(endpoint);
        string tmp = file + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1))
        {
            fs.Write(b);
            fs.Flush(flushToDisk: true);
        }

        File.Move(tmp, file, overwrite: true);
    }

    private void OpenNewSegment()
    {
        long n = _nextSegment++;
        _active = new FileStream(SegmentPath(n), FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, 1);
        _activeSegment = new WalSegment { Number = n };
        _segments[n] = _activeSegment;
    }

    /// <summary>
    /// Appends records and fsyncs them; returns once they are durable. <paramref name="records"/> holds, per record,
    /// its timeseries bytes and sample count. Costs one write + one fsync per call.
    /// </summary>
    public void Append(IReadOnlyList<(ReadOnlyMemory<byte> TimeSeries, int Samples)> records)
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        int total = 0;
        foreach (var r in records)
        {
            total += WalRecord.HeaderSize + WalRecord.PayloadPrefix + r.TimeSeries.Length;
        }

        byte[] buf = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            int pos = 0;
            long samples = 0;
            foreach (var r in records)
            {
                var span = buf.AsSpan(pos);
                int payloadLen = WalRecord.PayloadPrefix + r.TimeSeries.Length;
                var payload = span.Slice(WalRecord.HeaderSize, payloadLen);
                BinaryPrimitives.WriteInt64LittleEndian(payload, now);
                BinaryPrimitives.WriteInt32LittleEndian(payload[8..], r.Samples);
                r.TimeSeries.Span.CopyTo(payload[WalRecord.PayloadPrefix..]);
                BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)payloadLen);
                BinaryPrimitives.WriteUInt32LittleEndian(span[4..], WalRecord.Crc32C(payload));
                pos += WalRecord.HeaderSize + payloadLen;
                samples += r.Samples;
            }

            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                RotateIfNeededLocked(now);
                _active!.Write(buf, 0, total);
                _active.Flush(flushToDisk: true);
                var seg = _activeSegment!;
                seg.ValidBytes += total;
                seg.Samples += samples;
                seg.OldestAppendMs = seg.OldestAppendMs == 0 ? now : seg.OldestAppendMs;
                seg.NewestAppendMs = now;
                _totalBytes += total;
                TruncateLocked();
                var signal = _dataSignal;
                _dataSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                signal.TrySetResult();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>
    /// Closes the active segment when it is full, or when its oldest record is older than <c>truncate_frequency</c>
    /// (so sent data becomes deletable and the age bound can act even under a trickle of samples).
    /// </summary>
    private void RotateIfNeededLocked(long nowMs)
    {
        var seg = _activeSegment!;
        bool full = seg.ValidBytes >= _config.WalSegmentSize;
        bool old = seg.OldestAppendMs > 0 && nowMs - seg.OldestAppendMs >= (long)_config.TruncateFrequency.TotalMilliseconds;
        if (full || old)
        {
            _active!.Dispose();
            OpenNewSegment();
        }
    }

    /// <summary>
    /// Reads whole records from the sender's read position into <paramref name="batch"/> until it holds at least
    /// <paramref name="maxSamples"/> samples' worth (a record is never split) or the durable end is reached.
    /// Returns false when there is nothing to read. Runs on the endpoint's sender task.
    /// </summary>
    public bool ReadBatch(string endpoint, int maxSamples, WalBatch batch)
    {
        WalCursor cursor;
        WalPosition pos;
        long generation;
        lock (_lock)
        {
            cursor = _cursors[endpoint];
            pos = cursor.ReadPosition;
            generation = cursor.Generation;
        }

        batch.Reset(pos, generation);
        long samplesInto = cursor.ReadSamplesIntoSegment;
        FileStream? fs = null;
        byte[] header = new byte[WalRecord.HeaderSize];
        try
        {
            while (batch.Samples < maxSamples)
            {
                long limit;
                bool closed;
                long nextSegment;
                lock (_lock)
                {
                    if (!_segments.TryGetValue(pos.Segment, out var seg))
                    {
                        // Deleted by truncation under us (the cursor was moved; Commit will notice the generation).
                        break;
                    }

                    limit = seg.ValidBytes;
                    closed = !ReferenceEquals(seg, _activeSegment);
                    nextSegment = _segments.Keys.FirstOrDefault(k => k > pos.Segment, 0);
                }

                if (pos.Offset >= limit)
                {
                    if (closed && nextSegment > 0)
                    {
                        fs?.Dispose();
                        fs = null;
                        pos = new WalPosition(nextSegment, 0);
                        samplesInto = 0;
                        continue;
                    }

                    break;
                }

                fs ??= new FileStream(SegmentPath(pos.Segment), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
                fs.Position = pos.Offset;
                fs.ReadExactly(header);
                int payloadLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(header);
                byte[] record = ArrayPool<byte>.Shared.Rent(WalRecord.HeaderSize + payloadLen);
                try
                {
                    header.CopyTo(record, 0);
                    fs.ReadExactly(record, WalRecord.HeaderSize, payloadLen);
                    int len = WalRecord.Validate(record.AsSpan(0, WalRecord.HeaderSize + payloadLen), out int count, out _);
                    if (len == 0)
                    {
                        throw new InvalidDataException($"sample WAL {SegmentPath(pos.Segment)} has a corrupt record at offset {pos.Offset} inside its fsynced part");
                    }

                    batch.Add(record.AsSpan(WalRecord.HeaderSize + WalRecord.PayloadPrefix, payloadLen - WalRecord.PayloadPrefix), count);
                    pos = new WalPosition(pos.Segment, pos.Offset + len);
                    samplesInto += count;
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(record);
                }
            }
        }
        finally
        {
            fs?.Dispose();
        }

        batch.End = pos;
        lock (_lock)
        {
            if (cursor.Generation == generation)
            {
                cursor.ReadPosition = pos;
                cursor.ReadSamplesIntoSegment = samplesInto;
                if (batch.Records == 0 && pos > cursor.Committed)
                {
                    // Only moved past fully sent closed segments: nothing to send, but they become deletable.
                    cursor.Committed = pos;
                    cursor.SamplesIntoSegment = samplesInto;
                    WriteCheckpoint(endpoint, pos);
                    TruncateLocked();
                }
            }
        }

        return batch.Records > 0;
    }

    /// <summary>
    /// Marks everything before <paramref name="batch"/>'s end as done for <paramref name="endpoint"/> (acknowledged,
    /// or rejected for good), persists the checkpoint atomically and deletes segments every endpoint is past.
    /// A batch read before truncation moved the cursor is ignored (its samples were already counted as dropped).
    /// </summary>
    public void Commit(string endpoint, WalBatch batch)
    {
        lock (_lock)
        {
            var cursor = _cursors[endpoint];
            if (cursor.Generation != batch.Generation || batch.End <= cursor.Committed)
            {
                return;
            }

            WriteCheckpoint(endpoint, batch.End);
            cursor.Committed = batch.End;

            // The sender is sequential, so its read position is this batch's end.
            cursor.SamplesIntoSegment = cursor.ReadSamplesIntoSegment;
            TruncateLocked();
        }
    }

    /// <summary>Moves the reader back to the committed position (after a failed read).</summary>
    public void Rewind(string endpoint)
    {
        lock (_lock)
        {
            var cursor = _cursors[endpoint];
            cursor.ReadPosition = cursor.Committed;
            cursor.ReadSamplesIntoSegment = cursor.SamplesIntoSegment;
        }
    }

    /// <summary>Samples in the WAL at or after the endpoint's committed position.</summary>
    public long Pending(string endpoint)
    {
        lock (_lock)
        {
            var cursor = _cursors[endpoint];
            long pending = -cursor.SamplesIntoSegment;
            foreach (var (n, seg) in _segments)
            {
                if (n >= cursor.Committed.Segment)
                {
                    pending += seg.Samples;
                }
            }

            return Math.Max(0, pending);
        }
    }

    /// <summary>True when every endpoint has committed everything durable.</summary>
    public bool CaughtUp(string endpoint)
    {
        lock (_lock)
        {
            var c = _cursors[endpoint];
            return c.Committed >= new WalPosition(_activeSegment!.Number, _activeSegment.ValidBytes);
        }
    }

    /// <summary>
    /// Deletes closed segments that every endpoint has passed, then enforces the bounds: while the tenant's WAL is
    /// above <c>max_wal_bytes</c>, or its oldest closed segment's newest record is older than <c>max_wal_time</c>, the
    /// oldest closed segment is deleted even if unsent, and endpoints still inside it are moved past it with their
    /// unsent samples counted as dropped. The active segment is never deleted.
    /// </summary>
    private void TruncateLocked()
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        while (_segments.Count > 0)
        {
            var (n, seg) = _segments.First();
            if (ReferenceEquals(seg, _activeSegment))
            {
                break;
            }

            bool allPast = _cursors.Values.All(c => c.Committed.Segment > n);
            bool overSize = _config.MaxWalBytes > 0 && _totalBytes > _config.MaxWalBytes;
            bool tooOld = seg.NewestAppendMs > 0 && now - seg.NewestAppendMs > (long)_config.MaxWalTime.TotalMilliseconds;
            if (!allPast && !overSize && !tooOld)
            {
                break;
            }

            if (!allPast)
            {
                long next = _segments.Keys.First(k => k > n);
                foreach (var cursor in _cursors.Values)
                {
                    if (cursor.Committed.Segment <= n)
                    {
                        long dropped = seg.Samples - cursor.SamplesIntoSegment;
                        if (dropped > 0)
                        {
                            _onDropped(cursor.Endpoint, dropped);
                        }

                        cursor.Generation++;
                        cursor.Committed = new WalPosition(next, 0);
                        cursor.SamplesIntoSegment = 0;
                        cursor.ReadPosition = cursor.Committed;
                        cursor.ReadSamplesIntoSegment = 0;
                        WriteCheckpoint(cursor.Endpoint, cursor.Committed);
                    }
                }
            }

            string file = SegmentPath(n);
            _totalBytes -= File.Exists(file) ? new FileInfo(file).Length : seg.ValidBytes;
            File.Delete(file);
            _segments.Remove(n);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _active?.Dispose();
            _dataSignal.TrySetResult();
        }
    }

    /// <summary>For diagnostics and tests: a summary of the segment files.</summary>
    public override string ToString()
    {
        lock (_lock)
        {
            var sb = new StringBuilder($"tenant {Tenant}: ");
            foreach (var (n, s) in _segments)
            {
                sb.Append($"[{n}: {s.ValidBytes} B, {s.Samples} samples] ");
            }

            return sb.ToString();
        }
    }
}
