using System.Buffers.Binary;
using System.Text;
using Rubato.Receivers.Wire;

namespace Rubato.Receivers.Tests.Support;

/// <summary>Thrift type ids (binary protocol numbering).</summary>
public static class TT
{
    public const byte Bool = 2, Byte = 3, Double = 4, I16 = 6, I32 = 8, I64 = 10, String = 11, Struct = 12, Map = 13, Set = 14, List = 15;
}

/// <summary>
/// A test-side Thrift writer (binary and compact protocols), written independently of the reader from the protocol
/// specs, used to build Jaeger fixtures.
/// </summary>
public sealed class ThriftWriter
{
    private readonly MemoryStream _out = new();
    private readonly ThriftProtocol _protocol;
    private readonly Stack<short> _lastIds = new();
    private short _lastId;

    public ThriftWriter(ThriftProtocol protocol) => _protocol = protocol;

    public byte[] ToArray() => _out.ToArray();

    public ThriftWriter MessageBegin(string name, byte type, int seq)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            RawI32(unchecked((int)(0x80010000u | type)));
            WriteString(name);
            RawI32(seq);
        }
        else
        {
            _out.WriteByte(0x82);
            _out.WriteByte((byte)(1 | (type << 5)));
            Varint((uint)seq);
            WriteString(name);
        }

        return this;
    }

    public ThriftWriter StructBegin()
    {
        _lastIds.Push(_lastId);
        _lastId = 0;
        return this;
    }

    public ThriftWriter StructEnd()
    {
        _out.WriteByte(0);
        _lastId = _lastIds.Pop();
        return this;
    }

    /// <summary>Field header. For compact bool fields use <see cref="BoolField"/>.</summary>
    public ThriftWriter Field(short id, byte type)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            _out.WriteByte(type);
            RawI16(id);
            return this;
        }

        WriteCompactFieldHeader(id, CompactType(type));
        return this;
    }

    private void WriteCompactFieldHeader(short id, byte ctype)
    {
        int delta = id - _lastId;
        if (delta is > 0 and <= 15)
        {
            _out.WriteByte((byte)((delta << 4) | ctype));
        }
        else
        {
            _out.WriteByte(ctype);
            Varint(ZigZag(id));
        }

        _lastId = id;
    }

    public ThriftWriter BoolField(short id, bool value)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            Field(id, TT.Bool);
            _out.WriteByte(value ? (byte)1 : (byte)0);
        }
        else
        {
            WriteCompactFieldHeader(id, value ? (byte)1 : (byte)2);
        }

        return this;
    }

    public ThriftWriter I32(int v)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            RawI32(v);
        }
        else
        {
            Varint(ZigZag(v));
        }

        return this;
    }

    public ThriftWriter I64(long v)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteInt64BigEndian(b, v);
            _out.Write(b);
        }
        else
        {
            Varint((ulong)((v << 1) ^ (v >> 63)));
        }

        return this;
    }

    public ThriftWriter Double(double v)
    {
        Span<byte> b = stackalloc byte[8];
        if (_protocol == ThriftProtocol.Binary)
        {
            BinaryPrimitives.WriteDoubleBigEndian(b, v);
        }
        else
        {
            BinaryPrimitives.WriteDoubleLittleEndian(b, v);
        }

        _out.Write(b);
        return this;
    }

    public ThriftWriter WriteString(string s) => Binary(Encoding.UTF8.GetBytes(s));

    public ThriftWriter Binary(byte[] bytes)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            RawI32(bytes.Length);
        }
        else
        {
            Varint((uint)bytes.Length);
        }

        _out.Write(bytes);
        return this;
    }

    public ThriftWriter ListBegin(byte elemType, int count)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            _out.WriteByte(elemType);
            RawI32(count);
        }
        else if (count < 15)
        {
            _out.WriteByte((byte)((count << 4) | CompactType(elemType)));
        }
        else
        {
            _out.WriteByte((byte)(0xf0 | CompactType(elemType)));
            Varint((uint)count);
        }

        return this;
    }

    public ThriftWriter MapBegin(byte keyType, byte valueType, int count)
    {
        if (_protocol == ThriftProtocol.Binary)
        {
            _out.WriteByte(keyType);
            _out.WriteByte(valueType);
            RawI32(count);
        }
        else
        {
            Varint((uint)count);
            if (count > 0)
            {
                _out.WriteByte((byte)((CompactType(keyType) << 4) | CompactType(valueType)));
            }
        }

        return this;
    }

    public ThriftWriter Raw(params byte[] bytes)
    {
        _out.Write(bytes);
        return this;
    }

    private static byte CompactType(byte t) => t switch
    {
        TT.Bool => 1,
        TT.Byte => 3,
        TT.I16 => 4,
        TT.I32 => 5,
        TT.I64 => 6,
        TT.Double => 7,
        TT.String => 8,
        TT.List => 9,
        TT.Set => 10,
        TT.Map => 11,
        TT.Struct => 12,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    private static ulong ZigZag(long v) => (ulong)((v << 1) ^ (v >> 63));

    private void Varint(ulong v)
    {
        while (v >= 0x80)
        {
            _out.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        _out.WriteByte((byte)v);
    }

    private void RawI32(int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, v);
        _out.Write(b);
    }

    private void RawI16(short v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteInt16BigEndian(b, v);
        _out.Write(b);
    }
}
