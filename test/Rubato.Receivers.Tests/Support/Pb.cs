using System.Buffers.Binary;
using System.Text;

namespace Rubato.Receivers.Tests.Support;

/// <summary>A tiny test-side protobuf writer for building fixtures.</summary>
public sealed class Pb
{
    private readonly MemoryStream _out = new();

    public byte[] ToArray() => _out.ToArray();

    public Pb Varint(int field, ulong v)
    {
        Raw((ulong)field << 3);
        Raw(v);
        return this;
    }

    public Pb Double(int field, double v)
    {
        Raw(((ulong)field << 3) | 1);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(b, v);
        _out.Write(b);
        return this;
    }

    public Pb Fixed64(int field, ulong v)
    {
        Raw(((ulong)field << 3) | 1);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _out.Write(b);
        return this;
    }

    public Pb Bytes(int field, byte[] bytes)
    {
        Raw(((ulong)field << 3) | 2);
        Raw((ulong)bytes.Length);
        _out.Write(bytes);
        return this;
    }

    public Pb String(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

    public Pb Message(int field, Action<Pb> build)
    {
        var inner = new Pb();
        build(inner);
        return Bytes(field, inner.ToArray());
    }

    private void Raw(ulong v)
    {
        while (v >= 0x80)
        {
            _out.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        _out.WriteByte((byte)v);
    }
}
