using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Rubato.Common.Otlp;

/// <summary>Protobuf wire types.</summary>
public enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>
/// A forward-only protobuf reader over a span: no allocation, every read bounds-checked.
/// Malformed input throws <see cref="OtlpFormatException"/> naming the problem and its absolute byte offset
/// (<see cref="BaseOffset"/> + position), so nested readers report offsets into the original request.
/// </summary>
public ref struct ProtoReader
{
    /// <summary>Groups nested deeper than this are rejected rather than risking deep recursion.</summary>
    private const int MaxGroupDepth = 64;

    private readonly ReadOnlySpan<byte> _data;
    private readonly int _baseOffset;
    private int _pos;

    public ProtoReader(ReadOnlySpan<byte> data, int baseOffset = 0)
    {
        _data = data;
        _baseOffset = baseOffset;
        _pos = 0;
    }

    /// <summary>Absolute offset of <see cref="Data"/>[0] in the outermost input.</summary>
    public readonly int BaseOffset => _baseOffset;

    public readonly ReadOnlySpan<byte> Data => _data;

    /// <summary>Position relative to <see cref="Data"/>.</summary>
    public readonly int Position => _pos;

    /// <summary>Absolute position in the outermost input.</summary>
    public readonly int AbsolutePosition => _baseOffset + _pos;

    public readonly bool IsAtEnd => _pos >= _data.Length;

    /// <summary>Reads the next tag; false at the end of the data.</summary>
    public bool TryReadTag(out int fieldNumber, out WireType wireType)
    {
        if (_pos >= _data.Length)
        {
            fieldNumber = 0;
            wireType = 0;
            return false;
        }

        int at = _pos;
        ulong tag = ReadVarint();
        int wt = (int)(tag & 7);
        ulong fn = tag >> 3;
        if (fn == 0 || fn > 536_870_911)
        {
            throw new OtlpFormatException($"invalid field number {fn} at offset {_baseOffset + at}", _baseOffset + at);
        }

        if (wt > 5)
        {
            throw new OtlpFormatException($"invalid wire type {wt} for field {fn} at offset {_baseOffset + at}", _baseOffset + at);
        }

        fieldNumber = (int)fn;
        wireType = (WireType)wt;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadVarint()
    {
        // Fast path: one-byte varints (tags, small lengths, enums) dominate.
        if ((uint)_pos < (uint)_data.Length)
        {
            byte b = _data[_pos];
            if (b < 0x80)
            {
                _pos++;
                return b;
            }
        }

        return ReadVarintSlow();
    }

    private ulong ReadVarintSlow()
    {
        int start = _pos;
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_pos >= _data.Length)
            {
                throw new OtlpFormatException($"truncated varint at offset {_baseOffset + start}", _baseOffset + start);
            }

            byte b = _data[_pos++];
            if (shift == 63 && b > 1)
            {
                throw new OtlpFormatException($"varint overflows 64 bits at offset {_baseOffset + start}", _baseOffset + start);
            }

            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw new OtlpFormatException($"varint longer than 10 bytes at offset {_baseOffset + start}", _baseOffset + start);
    }

    /// <summary>Reads a varint that must fit in 32 bits (uint32 fields; int32 enums are sign-extended to 64 bits on the wire).</summary>
    public uint ReadVarint32() => (uint)ReadVarint();

    public uint ReadFixed32()
    {
        if (_data.Length - _pos < 4)
        {
            throw Truncated("fixed32", 4);
        }

        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    public ulong ReadFixed64()
    {
        if (_data.Length - _pos < 8)
        {
            throw Truncated("fixed64", 8);
        }

        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return v;
    }

    public double ReadDouble() => BitConverter.UInt64BitsToDouble(ReadFixed64());

    /// <summary>Reads a length prefix and returns the payload, checking it fits.</summary>
    public ReadOnlySpan<byte> ReadLengthDelimited() => _data.Slice(ReadLengthDelimitedRange(out int len), len);

    /// <summary>Reads a length prefix; returns the payload's start relative to <see cref="Data"/> and its length.</summary>
    public int ReadLengthDelimitedRange(out int length)
    {
        int at = _pos;
        ulong len = ReadVarint();
        int remaining = _data.Length - _pos;
        if (len > (ulong)remaining)
        {
            throw new OtlpFormatException(
                $"length-delimited field at offset {_baseOffset + at} declares {len} bytes but only {remaining} remain",
                _baseOffset + at);
        }

        int start = _pos;
        length = (int)len;
        _pos += length;
        return start;
    }

    /// <summary>
    /// Reads a length-delimited field as strict UTF-8: invalid bytes throw (naming the field's offset) instead of
    /// becoming U+FFFD. Allocates the string.
    /// </summary>
    public string ReadString()
    {
        int at = AbsolutePosition;
        var bytes = ReadLengthDelimited();
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new OtlpFormatException($"string field at offset {at} is not valid UTF-8", at);
        }
    }

    /// <summary>A reader over a length-delimited sub-message, carrying the absolute offset.</summary>
    public ProtoReader ReadSubMessage()
    {
        int start = ReadLengthDelimitedRange(out int len);
        return new ProtoReader(_data.Slice(start, len), _baseOffset + start);
    }

    /// <summary>Skips the value of a field whose tag was just read, for every wire type (groups included).</summary>
    public void SkipField(int fieldNumber, WireType wireType) => SkipField(fieldNumber, wireType, 0);

    private void SkipField(int fieldNumber, WireType wireType, int depth)
    {
        switch (wireType)
        {
            case WireType.Varint:
                ReadVarint();
                break;
            case WireType.Fixed64:
                if (_data.Length - _pos < 8)
                {
                    throw Truncated("fixed64", 8);
                }

                _pos += 8;
                break;
            case WireType.LengthDelimited:
                ReadLengthDelimitedRange(out _);
                break;
            case WireType.Fixed32:
                if (_data.Length - _pos < 4)
                {
                    throw Truncated("fixed32", 4);
                }

                _pos += 4;
                break;
            case WireType.StartGroup:
                SkipGroup(fieldNumber, depth + 1);
                break;
            default:
                throw new OtlpFormatException($"unexpected end-group for field {fieldNumber} at offset {AbsolutePosition}", AbsolutePosition);
        }
    }

    private void SkipGroup(int groupField, int depth)
    {
        int start = AbsolutePosition;
        if (depth > MaxGroupDepth)
        {
            throw new OtlpFormatException($"groups nested deeper than {MaxGroupDepth} at offset {start}", start);
        }

        while (TryReadTag(out int fn, out WireType wt))
        {
            if (wt == WireType.EndGroup)
            {
                if (fn != groupField)
                {
                    throw new OtlpFormatException($"end-group for field {fn} does not match start-group {groupField} at offset {AbsolutePosition}", AbsolutePosition);
                }

                return;
            }

            SkipField(fn, wt, depth);
        }

        throw new OtlpFormatException($"truncated group for field {groupField} starting at offset {start}", start);
    }

    /// <summary>Throws unless the wire type is the one the field requires.</summary>
    public readonly void Expect(WireType actual, WireType expected, int fieldNumber, string message)
    {
        if (actual != expected)
        {
            throw new OtlpFormatException(
                $"field {fieldNumber} of {message} has wire type {actual}, expected {expected} (offset {AbsolutePosition})",
                AbsolutePosition);
        }
    }

    /// <summary>Throws unless the wire type is the one the field requires; <paramref name="field"/> names it (e.g. <c>Span.name</c>).</summary>
    public readonly void Expect(WireType actual, WireType expected, string field)
    {
        if (actual != expected)
        {
            throw new OtlpFormatException(
                $"field {field} has wire type {actual}, expected {expected} (offset {AbsolutePosition})",
                AbsolutePosition);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly OtlpFormatException Truncated(string what, int size) =>
        new($"truncated {what} at offset {AbsolutePosition}: needs {size} bytes, {_data.Length - _pos} remain", AbsolutePosition);
}
