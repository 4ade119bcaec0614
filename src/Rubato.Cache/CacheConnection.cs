using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Rubato.Cache;

/// <summary>
/// One TCP connection to a cache server with a read buffer for line-oriented protocols (memcached text, RESP2).
/// Used by one operation at a time (rented from a <see cref="ConnectionPool"/>). After any exception or cancellation
/// the protocol state is unknown, so the owner disposes the connection instead of returning it.
/// </summary>
internal sealed class CacheConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    private CacheConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public static async ValueTask<CacheConnection> ConnectAsync(string host, int port, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (IPAddress.TryParse(host, out var ip))
            {
                await socket.ConnectAsync(new IPEndPoint(ip, port), ct);
            }
            else
            {
                await socket.ConnectAsync(new DnsEndPoint(host, port), ct);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new CacheConnection(socket);
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct) => _stream.WriteAsync(data, ct);

    /// <summary>Reads one line ending in <c>\r\n</c> and returns it without the terminator (ASCII; lines are short headers).</summary>
    public async ValueTask<string> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            int idx = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (idx >= 0)
            {
                string line = Encoding.ASCII.GetString(_buffer, _start, idx);
                _start += idx + 2;
                return line;
            }

            if (_start == 0 && _end == _buffer.Length)
            {
                throw new IOException("cache server sent a header line longer than 16 KiB");
            }

            await FillAsync(ct);
        }
    }

    /// <summary>Reads exactly <paramref name="dest"/>.Length bytes followed by <c>\r\n</c>.</summary>
    public async ValueTask ReadBlockAsync(Memory<byte> dest, CancellationToken ct)
    {
        int filled = 0;
        while (filled < dest.Length)
        {
            if (_start == _end)
            {
                int remaining = dest.Length - filled;
                if (remaining >= _buffer.Length)
                {
                    // Large values are read straight into the destination, skipping the buffer copy.
                    int n = await _stream.ReadAsync(dest[filled..], ct);
                    if (n == 0)
                    {
                        throw new EndOfStreamException("cache server closed the connection mid-value");
                    }

                    filled += n;
                    continue;
                }

                await FillAsync(ct);
            }

            int take = Math.Min(_end - _start, dest.Length - filled);
            _buffer.AsMemory(_start, take).CopyTo(dest[filled..]);
            _start += take;
            filled += take;
        }

        string tail = await ReadLineAsync(ct);
        if (tail.Length != 0)
        {
            throw new IOException("cache server value was not followed by CRLF");
        }
    }

    private async ValueTask FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        int n = await _stream.ReadAsync(_buffer.AsMemory(_end), ct);
        if (n == 0)
        {
            throw new EndOfStreamException("cache server closed the connection");
        }

        _end += n;
    }

    /// <summary>True when a pooled connection has unread bytes (a protocol desync) and must not be reused.</summary>
    public bool HasPendingInput => _start != _end;

    /// <summary>Set once the protocol's per-connection setup (Redis AUTH/SELECT) has run.</summary>
    public bool Initialized { get; set; }

    public void Dispose() => _stream.Dispose();
}

/// <summary>
/// Idle connections to one server. Rent takes an idle one or dials; Return keeps at most <c>maxIdle</c>.
/// Thread-safe (a concurrent queue plus an interlocked count).
/// </summary>
internal sealed class ConnectionPool : IDisposable
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<CacheConnection> _idle = new();
    private readonly string _host;
    private readonly int _port;
    private readonly int _maxIdle;
    private int _idleCount;
    private bool _disposed;

    public ConnectionPool(string host, int port, int maxIdle)
    {
        _host = host;
        _port = port;
        _maxIdle = Math.Max(1, maxIdle);
    }

    public string Address => $"{_host}:{_port}";

    public ValueTask<CacheConnection> RentAsync(CancellationToken ct)
    {
        if (_idle.TryDequeue(out var c))
        {
            Interlocked.Decrement(ref _idleCount);
            return new(c);
        }

        return CacheConnection.ConnectAsync(_host, _port, ct);
    }

    public void Return(CacheConnection c)
    {
        if (Volatile.Read(ref _disposed) || c.HasPendingInput)
        {
            c.Dispose();
            return;
        }

        if (Interlocked.Increment(ref _idleCount) > _maxIdle)
        {
            Interlocked.Decrement(ref _idleCount);
            c.Dispose();
            return;
        }

        _idle.Enqueue(c);
    }

    /// <summary>Drops every idle connection, e.g. after a failure showed the server went away.</summary>
    public void Clear()
    {
        while (_idle.TryDequeue(out var c))
        {
            Interlocked.Decrement(ref _idleCount);
            c.Dispose();
        }
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        Clear();
    }
}

/// <summary>Scratch request buffers from the shared pool.</summary>
internal static class RequestBuffer
{
    public static byte[] Rent(int size) => ArrayPool<byte>.Shared.Rent(size);

    public static void Return(byte[] buffer) => ArrayPool<byte>.Shared.Return(buffer);
}
