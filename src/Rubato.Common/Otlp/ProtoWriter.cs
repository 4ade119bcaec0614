using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Rubato.Common.Otlp;

/// <summary>
/// Writes protobuf into a growable buffer rented from <see cref="ArrayPool{T}.Shared"/> (returned on
/// <see cref="Dispose"/>). Sub-messages are length-prefixed without a sizing pass: <see cref="BeginMessage"/>
/// reserves 5 bytes for the length and <see cref="EndMessage"/> writes the real varint and shifts the body left
/// (one memmove per nesting level, cheap next to materialising sizes). Not thread-safe; one writer per call.
/// </summary>
public sealed class ProtoWriter : IBufferWriter<byte>, IDisposable
{
    private const int ReservedLength = 5;

    private byte[] _buffer;
    private int _pos;

    public ProtoWriter(int initialCapacity = 4096)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(16, initialCapacity));
    }

    public int Length => _pos;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _pos);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _pos);

    public byte[] ToArray() => WrittenSpan.ToArray();

    /// <summary>Forgets the content, keeping the buffer.</summary>
    public void Clear() => _pos = 0;

    public void CopyTo(IBufferWriter<byte> destination)
    {
        var span = WrittenSpan;
        while (!span.IsEmpty)
        {
            var dst = destination.GetSpan(Math.Min(span.Length, 1 << 20));
            int n = Math.Min(dst.Length, span.Length);
            span[..n].CopyTo(dst);
            destination.Advance(n);
            span = span[n..];
        }
    }

    public void Dispose()
    {
        byte[] b = _buffer;
        _buffer = [];
        _pos = 0;
        if (b.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    // IBufferWriter<byte>
    public void Advance(int count)
    {
        if (count < 0 || _pos + count > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _pos += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(Math.Max(sizeHint, 1));
        return _buffer.AsMemory(_pos);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(Math.Max(sizeHint, 1));
        return _buffer.AsSpan(_pos);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Ensure(int extra)
    {
        if (_buffer.Length - _pos < extra)
        {
            Grow(extra);
        }
    }

    private void Grow(int extra)
    {
        int size = Math.Max(_buffer.Length * 2, _pos + extra);
        byte[] next = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _pos).CopyTo(next);
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = next;
    }

    public static int VarintSize(ulong v)
    {
        // 1 + floor(log2(v|1) / 7)
        return 1 + ((63 - System.Numerics.BitOperations.LeadingZeroCount(v | 1)) / 7);
    }

    public static int TagSize(int fieldNumber) => VarintSize((ulong)fieldNumber << 3);

    /// <summary>Bytes a length-delimited field of <paramref name="length"/> payload bytes takes.</summary>
    public static int LengthDelimitedSize(int fieldNumber, int length) => TagSize(fieldNumber) + VarintSize((ulong)length) + length;

    public void WriteVarint(ulong v)
    {
        Ensure(10);
        _pos += WriteVarint(_buffer.AsSpan(_pos), v);
    }

    /// <summary>Writes a varint into <paramref name="dst"/>, returning bytes written.</summary>
    public static int WriteVarint(Span<byte> dst, ulong v)
    {
        int i = 0;
        while (v >= 0x80)
        {
            dst[i++] = (byte)(v | 0x80);
            v >>= 7;
        }

        dst[i++] = (byte)v;
        return i;
    }

    public void WriteTag(int fieldNumber, WireType wireType) => WriteVarint(((ulong)fieldNumber << 3) | (uint)wireType);

    public void WriteVarintField(int fieldNumber, ulong value)
    {
        WriteTag(fieldNumber, WireType.Varint);
        WriteVarint(value);
    }

    public void WriteFixed64Field(int fieldNumber, ulong value)
    {
        WriteTag(fieldNumber, WireType.Fixed64);
        Ensure(8);
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.AsSpan(_pos), value);
        _pos += 8;
    }

    public void WriteFixed32Field(int fieldNumber, uint value)
    {
        WriteTag(fieldNumber, WireType.Fixed32);
        Ensure(4);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_pos), value);
        _pos += 4;
    }

    public void WriteBytesField(int fieldNumber, ReadOnlySpan<byte> value)
    {
        WriteTag(fieldNumber, WireType.LengthDelimited);
        WriteVarint((ulong)value.Length);
        Ensure(value.Length);
        value.CopyTo(_buffer.AsSpan(_pos));
        _pos += value.Length;
    }

    public void WriteStringField(int fieldNumber, string value)
    {
        WriteTag(fieldNumber, WireType.LengthDelimited);
        int len = Encoding.UTF8.GetByteCount(value);
        WriteVarint((ulong)len);
        Ensure(len);
        _pos += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_pos));
    }

    /// <summary>Writes raw bytes (e.g. an already-encoded field copied verbatim).</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_pos));
        _pos += bytes.Length;
    }

    /// <summary>Starts a length-delimited sub-message; pass the returned token to <see cref="EndMessage"/>.</summary>
    public int BeginMessage(int fieldNumber)
    {
        WriteTag(fieldNumber, WireType.LengthDelimited);
        Ensure(ReservedLength);
        int token = _pos;
        _pos += ReservedLength;
        return token;
    }

    public void EndMessage(int token)
    {
        int bodyStart = token + ReservedLength;
        int bodyLen = _pos - bodyStart;
        Span<byte> tmp = stackalloc byte[ReservedLength];
        int n = WriteVarint(tmp, (ulong)bodyLen);
        tmp[..n].CopyTo(_buffer.AsSpan(token));
        if (n != ReservedLength)
        {
            Buffer.BlockCopy(_buffer, bodyStart, _buffer, token + n, bodyLen);
            _pos -= ReservedLength - n;
        }
    }
}
