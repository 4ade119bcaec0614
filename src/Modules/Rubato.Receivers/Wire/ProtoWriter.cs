using System.Buffers;
using System.Text;

namespace Rubato.Receivers.Wire;

/// <summary>
/// Minimal protobuf writer for the few small messages receivers answer with (responses, <c>google.rpc.Status</c>).
/// </summary>
internal sealed class ProtoWriter
{
    private readonly ArrayBufferWriter<byte> _buf = new(64);

    public void Tag(int field, WireType type) => Varint(((ulong)field << 3) | (uint)type);

    public void Varint(ulong v)
    {
        var span = _buf.GetSpan(10);
        int n = 0;
        while (v >= 0x80)
        {
            span[n++] = (byte)(v | 0x80);
            v >>= 7;
        }

        span[n++] = (byte)v;
        _buf.Advance(n);
    }

    public void Int64Field(int field, long v)
    {
        if (v == 0)
        {
            return;
        }

        Tag(field, WireType.Varint);
        Varint((ulong)v);
    }

    public void StringField(int field, string? s)
    {
        if (string.IsNullOrEmpty(s))
        {
            return;
        }

        BytesField(field, Encoding.UTF8.GetBytes(s));
    }

    public void BytesField(int field, ReadOnlySpan<byte> bytes)
    {
        Tag(field, WireType.Len);
        Varint((ulong)bytes.Length);
        _buf.Write(bytes);
    }

    public byte[] ToArray() => _buf.WrittenSpan.ToArray();
}
