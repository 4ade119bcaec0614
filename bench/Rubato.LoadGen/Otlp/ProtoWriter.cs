using System.Buffers.Binary;
using System.Text;

namespace Rubato.LoadGen.Otlp;

/// <summary>
/// A minimal protobuf writer for building OTLP request bodies by hand. Nested messages are written with
/// <see cref="BeginMessage"/>/<see cref="EndMessage"/>: the writer reserves a 5-byte slot for the length and, when the
/// message ends, writes the minimal varint and shifts the body down (one memmove per nested message).
/// </summary>
/// <remarks>
/// Used off the measured path (the load generator pre-builds its bodies; tests build a handful), so clarity wins over
/// speed here. Single-threaded.
/// </remarks>
public sealed class ProtoWriter
{
    private byte[] _buffer = new byte[4096];
    private int _length;
    private readonly Stack<int> _open = new();

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public byte[] ToArray()
    {
        if (_open.Count != 0)
        {
            throw new InvalidOperationException($"{_open.Count} nested message(s) still open");
        }

        return _buffer.AsSpan(0, _length).ToArray();
    }

    public void Tag(int field, int wireType) => Varint(((ulong)(uint)field << 3) | (uint)wireType);

    public void Varint(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _buffer[_length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _buffer[_length++] = (byte)value;
    }

    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, 2);
        Varint((ulong)value.Length);
        Ensure(value.Length);
        value.CopyTo(_buffer.AsSpan(_length));
        _length += value.Length;
    }

    public void String(int field, string value)
    {
        int n = Encoding.UTF8.GetByteCount(value);
        Tag(field, 2);
        Varint((ulong)n);
        Ensure(n);
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
    }

    public void UInt64(int field, ulong value)
    {
        Tag(field, 0);
        Varint(value);
    }

    public void Int64(int field, long value) => UInt64(field, unchecked((ulong)value));

    public void Bool(int field, bool value) => UInt64(field, value ? 1UL : 0UL);

    public void Fixed64(int field, ulong value)
    {
        Tag(field, 1);
        Ensure(8);
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.AsSpan(_length), value);
        _length += 8;
    }

    public void Fixed32(int field, uint value)
    {
        Tag(field, 5);
        Ensure(4);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_length), value);
        _length += 4;
    }

    public void Double(int field, double value) => Fixed64(field, BitConverter.DoubleToUInt64Bits(value));

    /// <summary>Starts a length-delimited nested message; must be paired with <see cref="EndMessage"/>.</summary>
    public void BeginMessage(int field)
    {
        Tag(field, 2);
        Ensure(5);
        _open.Push(_length);
        _length += 5;
    }

    /// <summary>
    /// Ends the innermost open message: writes its length as a canonical (minimal) varint into the reserved slot and
    /// moves the body left over the unused slot bytes, so the output is byte-identical to what protobuf libraries emit.
    /// </summary>
    public void EndMessage()
    {
        int slot = _open.Pop();
        int bodyStart = slot + 5;
        int len = _length - bodyStart;
        Span<byte> prefix = stackalloc byte[5];
        int n = 0;
        uint v = (uint)len;
        while (v >= 0x80)
        {
            prefix[n++] = (byte)(v | 0x80);
            v >>= 7;
        }

        prefix[n++] = (byte)v;
        prefix[..n].CopyTo(_buffer.AsSpan(slot));
        if (n != 5)
        {
            _buffer.AsSpan(bodyStart, len).CopyTo(_buffer.AsSpan(slot + n));
            _length -= 5 - n;
        }
    }

    private void Ensure(int extra)
    {
        if (_length + extra > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + extra));
        }
    }
}
