using System.Buffers.Binary;
using System.Text;

namespace Rubato.Receivers.Wire;

/// <summary>Protobuf wire types.</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    Len = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>
/// A forward-only protobuf reader over a span. Every failure throws <see cref="TraceFormatException"/> with the
/// absolute offset (<see cref="BaseOffset"/> + position), so nested readers report where in the request it broke.
/// </summary>
/// <remarks>A ref struct: no allocation beyond the strings and byte arrays the caller asks for.</remarks>
internal ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly int _baseOffset;
    private int _pos;

    public ProtoReader(ReadOnlySpan<byte> data, int baseOffset = 0)
    {
        _data = data;
        _baseOffset = baseOffset;
        _pos = 0;
    }

    public readonly bool End => _pos >= _data.Length;

    public readonly int BaseOffset => _baseOffset;

    public readonly int Position => _baseOffset + _pos;

    /// <summary>Reads the next tag; returns false at the end of the input.</summary>
    public bool TryReadTag(out int fieldNumber, out WireType wireType)
    {
        if (End)
        {
            fieldNumber = 0;
            wireType = 0;
            return false;
        }

        int at = Position;
        ulong tag = ReadVarint();
        fieldNumber = (int)(tag >> 3);
        wireType = (WireType)(tag & 7);
        if (fieldNumber <= 0 || tag >> 3 > int.MaxValue)
        {
            throw new TraceFormatException($"protobuf: invalid field number {tag >> 3}", at);
        }

        if (wireType is WireType.StartGroup or WireType.EndGroup || (int)wireType > 5)
        {
            throw new TraceFormatException($"protobuf: unsupported wire type {(int)wireType} for field {fieldNumber}", at);
        }

        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        int shift = 0;
        int start = _pos;
        while (true)
        {
            if (_pos >= _data.Length)
            {
                throw new TraceFormatException("protobuf: truncated varint", _baseOffset + start);
            }

            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }

            shift += 7;
            if (shift >= 64)
            {
                throw new TraceFormatException("protobuf: varint longer than 10 bytes", _baseOffset + start);
            }
        }
    }

    public ulong ReadFixed64()
    {
        Need(8, "fixed64");
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return v;
    }

    public uint ReadFixed32()
    {
        Need(4, "fixed32");
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    public double ReadDouble() => BitConverter.Int64BitsToDouble((long)ReadFixed64());

    /// <summary>Reads a length-delimited field's payload.</summary>
    public ReadOnlySpan<byte> ReadBytes(out int payloadOffset)
    {
        int at = Position;
        ulong len = ReadVarint();
        if (len > (ulong)(_data.Length - _pos))
        {
            throw new TraceFormatException($"protobuf: length {len} runs past the end of the message", at);
        }

        payloadOffset = Position;
        var s = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    public ReadOnlySpan<byte> ReadBytes() => ReadBytes(out _);

    /// <summary>A reader over an embedded message, keeping absolute offsets.</summary>
    public ProtoReader ReadMessage()
    {
        var bytes = ReadBytes(out int off);
        return new ProtoReader(bytes, off);
    }

    public string ReadString()
    {
        int at = Position;
        var bytes = ReadBytes();
        try
        {
            return Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new TraceFormatException("protobuf: string field is not valid UTF-8", at);
        }
    }

    public void Skip(WireType wireType)
    {
        switch (wireType)
        {
            case WireType.Varint:
                ReadVarint();
                break;
            case WireType.Fixed64:
                Need(8, "fixed64");
                _pos += 8;
                break;
            case WireType.Fixed32:
                Need(4, "fixed32");
                _pos += 4;
                break;
            case WireType.Len:
                ReadBytes();
                break;
            default:
                throw new TraceFormatException($"protobuf: cannot skip wire type {(int)wireType}", Position);
        }
    }

    /// <summary>Throws when a field arrives with a wire type other than the schema's.</summary>
    public readonly void Expect(WireType actual, WireType expected, string field)
    {
        if (actual != expected)
        {
            throw new TraceFormatException($"protobuf: field {field} has wire type {(int)actual}, expected {(int)expected}", Position);
        }
    }

    private readonly void Need(int n, string what)
    {
        if (_data.Length - _pos < n)
        {
            throw new TraceFormatException($"protobuf: truncated {what}", Position);
        }
    }

    private static readonly UTF8Encoding Strict = new(false, true);
}
