using System.Buffers;
using System.IO.Pipelines;

namespace Rubato.Grpc;

/// <summary>
/// Reads length-prefixed gRPC messages from a <see cref="PipeReader"/> (Kestrel's request body, or the client's
/// response stream). Each message is copied (or decompressed) into one pooled buffer that is reused:
/// <see cref="Current"/> is valid only until the next <see cref="ReadNextAsync"/> or <see cref="Dispose"/>.
/// Not thread-safe: one reader per call, used by one task at a time.
/// </summary>
public sealed class GrpcMessageReader : IDisposable
{
    private readonly PipeReader _reader;
    private readonly int _maxMessageSize;
    private readonly GrpcEncoding _encoding;
    private byte[] _buffer = [];
    private int _length;

    public GrpcMessageReader(PipeReader reader, int maxMessageSize, GrpcEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessageSize);
        _reader = reader;
        _maxMessageSize = maxMessageSize;
        _encoding = encoding;
    }

    /// <summary>The last message read; a view of a pooled buffer (copy it to keep it).</summary>
    public ReadOnlyMemory<byte> Current => _buffer.AsMemory(0, _length);

    /// <summary>
    /// Reads the next message. Returns false at a clean end of stream; throws <see cref="GrpcException"/> for a
    /// truncated frame, an oversize message, a bad flag or a bad gzip payload.
    /// </summary>
    public async ValueTask<bool> ReadNextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            bool complete;
            try
            {
                complete = GrpcFraming.TryReadMessage(ref buffer, _maxMessageSize, out var compressed, out var payload);
                if (complete)
                {
                    Materialize(payload, compressed);
                }
            }
            catch
            {
                _reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                throw;
            }
            if (complete)
            {
                _reader.AdvanceTo(buffer.Start);
                return true;
            }
            if (result.IsCompleted)
            {
                _reader.AdvanceTo(buffer.End);
                if (buffer.IsEmpty)
                {
                    _length = 0;
                    return false;
                }
                throw new GrpcException(GrpcStatusCode.Internal, $"stream ended inside a message frame ({buffer.Length} trailing bytes)");
            }
            if (result.IsCanceled)
            {
                _reader.AdvanceTo(buffer.Start, buffer.End);
                throw new OperationCanceledException("the message stream read was cancelled");
            }
            // Incomplete frame: keep everything, ask for more.
            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private void Materialize(ReadOnlySequence<byte> payload, bool compressed)
    {
        if (compressed)
        {
            if (_encoding == GrpcEncoding.Identity)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "received a compressed message but grpc-encoding is identity");
            }
            _length = GrpcCompression.Decompress(payload, ref _buffer, _maxMessageSize);
            return;
        }
        var length = (int)payload.Length;
        if (_buffer.Length < length)
        {
            GrpcCompression.Grow(ref _buffer, length, 0);
        }
        payload.CopyTo(_buffer);
        _length = length;
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        _length = 0;
        if (b.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }
}
