using System.Buffers.Binary;

namespace Rubato.Storage.Encoding;

/// <summary>A growable little-endian byte buffer with varint helpers. Single-threaded.</summary>
public sealed class ByteWriter
{
    private byte[] _buf;
    private int _len;

    public ByteWriter(int capacity = 256) => _buf = new byte[Math.Max(16, capacity)];

    public int Length => _len;

    public ReadOnlySpan<byte> WrittenSpan => _buf.AsSpan(0, _len);

    public ReadOnlyMemory<byte> WrittenMemory => _buf.AsMemory(0, _len);

    public void Clear() => _len = 0;

    public Span<byte> GetSpan(int size)
    {
        if (_len + size > _buf.Length)
        {
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + size));
        }

        return _buf.AsSpan(_len, size);
    }

    public void Advance(int count) => _len += count;

    public void WriteByte(byte b)
    {
        GetSpan(1)[0] = b;
        _len++;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        data.CopyTo(GetSpan(data.Length));
        _len += data.Length;
    }

    public void WriteU16(ushort v)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(GetSpan(2), v);
        _len += 2;
    }

    public void WriteU32(uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(GetSpan(4), v);
        _len += 4;
    }

    public void WriteU64(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(GetSpan(8), v);
        _len += 8;
    }

    public void WriteF64(double v) => WriteU64(BitConverter.DoubleToUInt64Bits(v));

    public void WriteVarint(ulong v)
    {
        var s = GetSpan(10);
        int i = 0;
        while (v >= 0x80)
        {
            s[i++] = (byte)(v | 0x80);
            v >>= 7;
        }

        s[i++] = (byte)v;
        _len += i;
    }

    public void WriteZigzag(long v) => WriteVarint((ulong)((v << 1) ^ (v >> 63)));

    /// <summary>Varint byte length, then UTF-8 bytes.</summary>
    public void WriteString(string s)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(s.Length);
        WriteVarint((ulong)System.Text.Encoding.UTF8.GetByteCount(s));
        int n = System.Text.Encoding.UTF8.GetBytes(s, GetSpan(max));
        _len += n;
    }

    public void WriteBytesWithLength(ReadOnlySpan<byte> b)
    {
        WriteVarint((ulong)b.Length);
        Write(b);
    }

    /// <summary>A writable view of already-written bytes (for back-patching headers).</summary>
    public Span<byte> Slice(int position, int length) => _buf.AsSpan(0, _len).Slice(position, length);

    public void WriteU32At(int position, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(position, 4), v);

    public byte[] ToArray() => _buf.AsSpan(0, _len).ToArray();
}

/// <summary>
/// A bounds-checked little-endian reader over a span. Every failure throws <see cref="BlockCorruptException"/> naming
/// the object and the absolute offset (<see cref="BaseOffset"/> + position).
/// </summary>
public ref struct ByteReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _objectKey;
    private readonly string _what;
    private int _pos;

    public ByteReader(ReadOnlySpan<byte> data, string objectKey, long baseOffset, string what)
    {
        _data = data;
        _objectKey = objectKey;
        BaseOffset = baseOffset;
        _what = what;
        _pos = 0;
    }

    public long BaseOffset { get; }

    public int Position
    {
        readonly get => _pos;
        set => _pos = value;
    }

    public readonly int Remaining => _data.Length - _pos;

    public readonly bool End => _pos >= _data.Length;

    public byte ReadByte()
    {
        Need(1);
        return _data[_pos++];
    }

    public ushort ReadU16()
    {
        Need(2);
        ushort v = BinaryPrimitives.ReadUInt16LittleEndian(_data[_pos..]);
        _pos += 2;
        return v;
    }

    public uint ReadU32()
    {
        Need(4);
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    public ulong ReadU64()
    {
        Need(8);
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return v;
    }

    public double ReadF64() => BitConverter.UInt64BitsToDouble(ReadU64());

    public ulong ReadVarint()
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = ReadByte();
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return v;
            }
        }

        throw Corrupt("varint longer than 10 bytes");
    }

    public long ReadZigzag()
    {
        ulong v = ReadVarint();
        return (long)(v >> 1) ^ -(long)(v & 1);
    }

    /// <summary>A varint that must fit in [0, max].</summary>
    public int ReadCount(int max)
    {
        ulong v = ReadVarint();
        if (v > (ulong)max)
        {
            throw Corrupt($"count {v} exceeds {max}");
        }

        return (int)v;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        Need(count);
        var s = _data.Slice(_pos, count);
        _pos += count;
        return s;
    }

    public ReadOnlySpan<byte> ReadBytesWithLength() => ReadBytes(ReadCount(Remaining));

    public string ReadString()
    {
        var b = ReadBytesWithLength();
        return b.Length == 0 ? string.Empty : System.Text.Encoding.UTF8.GetString(b);
    }

    public readonly BlockCorruptException Corrupt(string problem) =>
        new(_objectKey, BaseOffset + _pos, $"{_what}: {problem}");

    private readonly void Need(int n)
    {
        if (n < 0 || _data.Length - _pos < n)
        {
            throw Corrupt($"needs {n} bytes but only {_data.Length - _pos} remain");
        }
    }
}
