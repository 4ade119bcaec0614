using System.Buffers.Binary;
using System.Text;

namespace Rubato.Receivers.Wire;

/// <summary>The two Thrift encodings Jaeger clients use.</summary>
public enum ThriftProtocol
{
    /// <summary>TBinaryProtocol: big-endian fixed-width ints (agent UDP 6832, collector HTTP 14268).</summary>
    Binary,

    /// <summary>TCompactProtocol: zigzag varints and packed field headers (agent UDP 6831).</summary>
    Compact,
}

/// <summary>Thrift type ids as the binary protocol writes them; compact types are mapped to these.</summary>
internal static class TType
{
    public const byte Stop = 0;
    public const byte Bool = 2;
    public const byte Byte = 3;
    public const byte Double = 4;
    public const byte I16 = 6;
    public const byte I32 = 8;
    public const byte I64 = 10;
    public const byte String = 11;
    public const byte Struct = 12;
    public const byte Map = 13;
    public const byte Set = 14;
    public const byte List = 15;

    public static string Name(byte t) => t switch
    {
        Bool => "bool",
        Byte => "byte",
        Double => "double",
        I16 => "i16",
        I32 => "i32",
        I64 => "i64",
        String => "string",
        Struct => "struct",
        Map => "map",
        Set => "set",
        List => "list",
        _ => $"type {t}",
    };
}

/// <summary>
/// A hand-written reader for the Thrift binary and compact protocols over one buffer (a UDP datagram or an HTTP
/// body). Errors are <see cref="TraceFormatException"/>s carrying the byte offset where the input went wrong.
/// </summary>
/// <remarks>
/// Only what decoding Jaeger's IDL needs: messages, structs, lists/sets, maps (skipped), scalars.
/// Nesting is bounded (<see cref="MaxDepth"/>) so a hostile datagram cannot exhaust the stack, and every
/// collection count is checked against the bytes left before anything is allocated for it.
/// </remarks>
internal ref struct ThriftReader
{
    public const int MaxDepth = 64;

    private const uint BinaryVersionMask = 0xffff0000;
    private const uint BinaryVersion1 = 0x80010000;
    private const byte CompactProtocolId = 0x82;
    private const byte CompactVersion = 1;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly ReadOnlySpan<byte> _data;
    private readonly ThriftProtocol _protocol;
    private readonly short[]? _lastFieldIds;
    private int _pos;
    private int _depth;
    private short _lastFieldId;
    private int _pendingBool;

    public ThriftReader(ReadOnlySpan<byte> data, ThriftProtocol protocol)
    {
        _data = data;
        _protocol = protocol;
        _pos = 0;
        _depth = 0;
        _lastFieldId = 0;
        _pendingBool = -1;
        _lastFieldIds = protocol == ThriftProtocol.Compact ? new short[MaxDepth + 1] : null;
    }

    public readonly int Position => _pos;

    public readonly int Remaining => _data.Length - _pos;

    /// <summary>Reads a message envelope: name, message type (1 call, 4 oneway, ...) and sequence id.</summary>
    public (string Name, byte Type, int SeqId) ReadMessageBegin()
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            int at = _pos;
            int first = ReadI32Raw();
            if (first < 0)
            {
                if (((uint)first & BinaryVersionMask) != BinaryVersion1)
                {
                    throw Error($"thrift binary: bad message version 0x{(uint)first:x8}", at);
                }

                string name = ReadString();
                int seq = ReadI32Raw();
                return (name, (byte)(first & 0xff), seq);
            }

            // Old non-strict form: the name's length comes first, then the type byte.
            string oldName = ReadUtf8(first, at);
            byte type = ReadRawByte();
            return (oldName, type, ReadI32Raw());
        }

        int start = _pos;
        byte id = ReadRawByte();
        if (id != CompactProtocolId)
        {
            throw Error($"thrift compact: bad protocol id 0x{id:x2}, expected 0x82", start);
        }

        byte vt = ReadRawByte();
        if ((vt & 0x1f) != CompactVersion)
        {
            throw Error($"thrift compact: unsupported version {vt & 0x1f}", start + 1);
        }

        int seqId = (int)ReadVarint32();
        string msgName = ReadString();
        return (msgName, (byte)((vt >> 5) & 0x07), seqId);
    }

    public void ReadStructBegin()
    {
        if (_depth >= MaxDepth)
        {
            throw Error($"thrift: nesting deeper than {MaxDepth}", _pos);
        }

        if (_lastFieldIds is not null)
        {
            _lastFieldIds[_depth] = _lastFieldId;
            _lastFieldId = 0;
        }

        _depth++;
    }

    public void ReadStructEnd()
    {
        _depth--;
        if (_lastFieldIds is not null)
        {
            _lastFieldId = _lastFieldIds[_depth];
        }
    }

    /// <summary>Reads a field header; false at the struct's STOP byte.</summary>
    public bool ReadFieldBegin(out byte type, out short id)
    {
        int at = _pos;
        byte b = ReadRawByte();
        if (b == TType.Stop)
        {
            type = TType.Stop;
            id = 0;
            return false;
        }

        if (_protocol == ThriftProtocol.Binary)
        {
            type = b;
            id = ReadI16Raw();
            CheckType(type, at);
            return true;
        }

        int delta = b >> 4;
        byte ctype = (byte)(b & 0x0f);
        id = delta != 0 ? (short)(_lastFieldId + delta) : (short)ZigZag32(ReadVarint32());
        _lastFieldId = id;
        if (ctype is 1 or 2)
        {
            // Compact packs a bool field's value into its header.
            _pendingBool = ctype == 1 ? 1 : 0;
            type = TType.Bool;
            return true;
        }

        type = FromCompact(ctype, at);
        return true;
    }

    public bool ReadBool()
    {
        if (_pendingBool >= 0)
        {
            bool v = _pendingBool == 1;
            _pendingBool = -1;
            return v;
        }

        byte b = ReadRawByte();
        return _protocol == ThriftProtocol.Binary ? b != 0 : b == 1;
    }

    public sbyte ReadByte() => (sbyte)ReadRawByte();

    public short ReadI16() => _protocol == ThriftProtocol.Binary ? ReadI16Raw() : (short)ZigZag32(ReadVarint32());

    public int ReadI32() => _protocol == ThriftProtocol.Binary ? ReadI32Raw() : ZigZag32(ReadVarint32());

    public long ReadI64()
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            Need(8, "i64");
            long v = BinaryPrimitives.ReadInt64BigEndian(_data[_pos..]);
            _pos += 8;
            return v;
        }

        ulong u = ReadVarint64();
        return (long)(u >> 1) ^ -(long)(u & 1);
    }

    public double ReadDouble()
    {
        Need(8, "double");
        long bits = _protocol == ThriftProtocol.Binary
            ? BinaryPrimitives.ReadInt64BigEndian(_data[_pos..])
            : BinaryPrimitives.ReadInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return BitConverter.Int64BitsToDouble(bits);
    }

    public ReadOnlySpan<byte> ReadBinary()
    {
        int at = _pos;
        int len = _protocol == ThriftProtocol.Binary ? ReadI32Raw() : (int)ReadVarint32();
        return Take(len, at);
    }

    public string ReadString()
    {
        int at = _pos;
        int len = _protocol == ThriftProtocol.Binary ? ReadI32Raw() : (int)ReadVarint32();
        return ReadUtf8(len, at);
    }

    /// <summary>Reads a list or set header.</summary>
    public void ReadListBegin(out byte elemType, out int count)
    {
        int at = _pos;
        if (_protocol == ThriftProtocol.Binary)
        {
            elemType = ReadRawByte();
            count = ReadI32Raw();
            CheckType(elemType, at);
        }
        else
        {
            byte b = ReadRawByte();
            int size = b >> 4;
            byte ctype = (byte)(b & 0x0f);
            count = size == 15 ? (int)ReadVarint32() : size;
            elemType = ctype is 1 or 2 ? TType.Bool : FromCompact(ctype, at);
        }

        CheckCount(count, at);
    }

    /// <summary>Reads a map header.</summary>
    public void ReadMapBegin(out byte keyType, out byte valueType, out int count)
    {
        int at = _pos;
        if (_protocol == ThriftProtocol.Binary)
        {
            keyType = ReadRawByte();
            valueType = ReadRawByte();
            count = ReadI32Raw();
            CheckCount(count, at);
            if (count > 0)
            {
                CheckType(keyType, at);
                CheckType(valueType, at);
            }

            return;
        }

        count = (int)ReadVarint32();
        CheckCount(count, at);
        if (count == 0)
        {
            keyType = valueType = TType.Stop;
            return;
        }

        byte kv = ReadRawByte();
        keyType = (kv >> 4) is 1 or 2 ? TType.Bool : FromCompact((byte)(kv >> 4), at);
        valueType = (kv & 0xf) is 1 or 2 ? TType.Bool : FromCompact((byte)(kv & 0xf), at);
    }

    /// <summary>Skips a value of the given type (unknown fields, fields of no interest).</summary>
    public void Skip(byte type)
    {
        switch (type)
        {
            case TType.Bool:
                ReadBool();
                break;
            case TType.Byte:
                ReadRawByte();
                break;
            case TType.I16:
                ReadI16();
                break;
            case TType.I32:
                ReadI32();
                break;
            case TType.I64:
                ReadI64();
                break;
            case TType.Double:
                ReadDouble();
                break;
            case TType.String:
                ReadBinary();
                break;
            case TType.Struct:
                ReadStructBegin();
                while (ReadFieldBegin(out byte ft, out _))
                {
                    Skip(ft);
                }

                ReadStructEnd();
                break;
            case TType.List:
            case TType.Set:
                {
                    ReadListBegin(out byte et, out int n);
                    EnterCollection();
                    for (int i = 0; i < n; i++)
                    {
                        Skip(et);
                    }

                    _depth--;
                    break;
                }

            case TType.Map:
                {
                    ReadMapBegin(out byte kt, out byte vt, out int n);
                    EnterCollection();
                    for (int i = 0; i < n; i++)
                    {
                        Skip(kt);
                        Skip(vt);
                    }

                    _depth--;
                    break;
                }

            default:
                throw Error($"thrift: cannot skip unknown type {type}", _pos);
        }
    }

    /// <summary>Throws when a field of a known id has the wrong type.</summary>
    public readonly void Expect(byte actual, byte expected, string field)
    {
        if (actual != expected)
        {
            throw Error($"thrift: field {field} has type {TType.Name(actual)}, expected {TType.Name(expected)}", _pos);
        }
    }

    public readonly TraceFormatException Error(string message, int offset) => new(message, offset);

    private void EnterCollection()
    {
        if (_depth >= MaxDepth)
        {
            throw Error($"thrift: nesting deeper than {MaxDepth}", _pos);
        }

        _depth++;
    }

    private byte FromCompact(byte ctype, int at) => ctype switch
    {
        3 => TType.Byte,
        4 => TType.I16,
        5 => TType.I32,
        6 => TType.I64,
        7 => TType.Double,
        8 => TType.String,
        9 => TType.List,
        10 => TType.Set,
        11 => TType.Map,
        12 => TType.Struct,
        _ => throw Error($"thrift compact: unknown type {ctype}", at),
    };

    private readonly void CheckType(byte t, int at)
    {
        if (t is not (TType.Bool or TType.Byte or TType.Double or TType.I16 or TType.I32 or TType.I64 or TType.String
            or TType.Struct or TType.Map or TType.Set or TType.List))
        {
            throw Error($"thrift binary: unknown type {t}", at);
        }
    }

    private readonly void CheckCount(int count, int at)
    {
        // Every element takes at least one byte, so a count above the bytes left is a lie.
        if (count < 0 || count > Remaining)
        {
            throw Error($"thrift: collection size {count} is invalid ({Remaining} bytes left)", at);
        }
    }

    private string ReadUtf8(int len, int at)
    {
        var bytes = Take(len, at);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error("thrift: string is not valid UTF-8", at);
        }
    }

    private ReadOnlySpan<byte> Take(int len, int at)
    {
        if (len < 0 || len > Remaining)
        {
            throw Error($"thrift: length {len} is invalid ({Remaining} bytes left)", at);
        }

        var s = _data.Slice(_pos, len);
        _pos += len;
        return s;
    }

    private byte ReadRawByte()
    {
        Need(1, "byte");
        return _data[_pos++];
    }

    private short ReadI16Raw()
    {
        Need(2, "i16");
        short v = BinaryPrimitives.ReadInt16BigEndian(_data[_pos..]);
        _pos += 2;
        return v;
    }

    private int ReadI32Raw()
    {
        Need(4, "i32");
        int v = BinaryPrimitives.ReadInt32BigEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    private uint ReadVarint32()
    {
        int at = _pos;
        ulong v = ReadVarint64();
        if (v > uint.MaxValue)
        {
            throw Error("thrift compact: varint32 out of range", at);
        }

        return (uint)v;
    }

    private ulong ReadVarint64()
    {
        int start = _pos;
        ulong result = 0;
        int shift = 0;
        while (true)
        {
            if (_pos >= _data.Length)
            {
                throw Error("thrift compact: truncated varint", start);
            }

            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
            {
                return result;
            }

            shift += 7;
            if (shift >= 70)
            {
                throw Error("thrift compact: varint too long", start);
            }
        }
    }

    private static int ZigZag32(uint n) => (int)(n >> 1) ^ -(int)(n & 1);

    private readonly void Need(int n, string what)
    {
        if (Remaining < n)
        {
            throw Error($"thrift: truncated input reading {what} ({Remaining} bytes left, need {n})", _pos);
        }
    }
}
