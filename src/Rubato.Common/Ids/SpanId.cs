using System.Buffers.Binary;

namespace Rubato.Common.Ids;

/// <summary>An 8-byte span id held by value (big-endian), zero meaning "none" (e.g. no parent).</summary>
public readonly struct SpanId : IEquatable<SpanId>, IComparable<SpanId>
{
    public const int Size = 8;

    public readonly ulong Value;

    public SpanId(ulong value) => Value = value;

    public bool IsEmpty => Value == 0;

    public static SpanId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"span id must be {Size} bytes, got {bytes.Length}", nameof(bytes));
        }

        return new SpanId(BinaryPrimitives.ReadUInt64BigEndian(bytes));
    }

    public void WriteTo(Span<byte> destination) => BinaryPrimitives.WriteUInt64BigEndian(destination, Value);

    public byte[] ToByteArray()
    {
        var b = new byte[Size];
        WriteTo(b);
        return b;
    }

    public string ToHex() => Value.ToString("x16");

    public static bool TryParseHex(ReadOnlySpan<char> hex, out SpanId id)
    {
        id = default;
        if (hex.Length is 0 or > 16)
        {
            return false;
        }

        ulong v = 0;
        foreach (char c in hex)
        {
            int d = TraceId.HexValue(c);
            if (d < 0)
            {
                return false;
            }

            v = (v << 4) | (uint)d;
        }

        id = new SpanId(v);
        return true;
    }

    public bool Equals(SpanId other) => Value == other.Value;

    public override bool Equals(object? obj) => obj is SpanId s && Equals(s);

    public override int GetHashCode() => Value.GetHashCode();

    public int CompareTo(SpanId other) => Value.CompareTo(other.Value);

    public static bool operator ==(SpanId a, SpanId b) => a.Equals(b);

    public static bool operator !=(SpanId a, SpanId b) => !a.Equals(b);

    public static bool operator <(SpanId a, SpanId b) => a.Value < b.Value;

    public static bool operator >(SpanId a, SpanId b) => a.Value > b.Value;

    public static bool operator <=(SpanId a, SpanId b) => a.Value <= b.Value;

    public static bool operator >=(SpanId a, SpanId b) => a.Value >= b.Value;

    public override string ToString() => ToHex();
}
