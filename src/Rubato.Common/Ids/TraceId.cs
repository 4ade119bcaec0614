using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Rubato.Common.Ids;

/// <summary>A 16-byte trace id held by value as two big-endian halves, so ordering matches byte order.</summary>
/// <remarks>Blocks are sorted by trace id; <see cref="CompareTo"/> is the order used on disk.</remarks>
[StructLayout(LayoutKind.Sequential)]
public readonly struct TraceId : IEquatable<TraceId>, IComparable<TraceId>
{
    public const int Size = 16;

    /// <summary>Bytes 0..7, big-endian.</summary>
    public readonly ulong High;

    /// <summary>Bytes 8..15, big-endian.</summary>
    public readonly ulong Low;

    public TraceId(ulong high, ulong low)
    {
        High = high;
        Low = low;
    }

    public static TraceId Empty => default;

    public bool IsEmpty => High == 0 && Low == 0;

    /// <summary>Reads exactly 16 bytes.</summary>
    public static TraceId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"trace id must be {Size} bytes, got {bytes.Length}", nameof(bytes));
        }

        return new TraceId(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    /// <summary>
    /// Accepts 1..16 bytes, left-padding shorter ids with zeros (Jaeger and Zipkin 64-bit ids; Tempo pads the same way).
    /// </summary>
    public static bool TryFromBytesPadded(ReadOnlySpan<byte> bytes, out TraceId id)
    {
        if (bytes.Length is 0 or > Size)
        {
            id = default;
            return false;
        }

        Span<byte> buf = stackalloc byte[Size];
        buf.Clear();
        bytes.CopyTo(buf[(Size - bytes.Length)..]);
        id = FromBytes(buf);
        return true;
    }

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Low);
    }

    public byte[] ToByteArray()
    {
        var b = new byte[Size];
        WriteTo(b);
        return b;
    }

    /// <summary>Lower-case 32-character hex, as Tempo prints ids.</summary>
    public string ToHex()
    {
        Span<byte> b = stackalloc byte[Size];
        WriteTo(b);
        return Convert.ToHexStringLower(b);
    }

    /// <summary>
    /// Parses a hex trace id as Tempo's API accepts it: up to 32 hex digits, shorter ids left-padded with zeros.
    /// </summary>
    public static bool TryParseHex(ReadOnlySpan<char> hex, out TraceId id)
    {
        id = default;
        if (hex.Length is 0 or > 32)
        {
            return false;
        }

        Span<char> padded = stackalloc char[32];
        padded.Fill('0');
        hex.CopyTo(padded[(32 - hex.Length)..]);
        Span<byte> b = stackalloc byte[Size];
        for (int i = 0; i < Size; i++)
        {
            int hi = HexValue(padded[2 * i]);
            int lo = HexValue(padded[(2 * i) + 1]);
            if ((hi | lo) < 0)
            {
                return false;
            }

            b[i] = (byte)((hi << 4) | lo);
        }

        id = FromBytes(b);
        return true;
    }

    internal static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    public bool Equals(TraceId other) => High == other.High && Low == other.Low;

    public override bool Equals(object? obj) => obj is TraceId t && Equals(t);

    public override int GetHashCode() => HashCode.Combine(High, Low);

    public int CompareTo(TraceId other)
    {
        int c = High.CompareTo(other.High);
        return c != 0 ? c : Low.CompareTo(other.Low);
    }

    /// <summary>32-bit FNV-1a of the 16 id bytes: used for bloom shard selection and ring tokens.</summary>
    public uint Fnv32a()
    {
        Span<byte> b = stackalloc byte[Size];
        WriteTo(b);
        uint h = 2166136261;
        foreach (byte x in b)
        {
            h ^= x;
            h *= 16777619;
        }

        return h;
    }

    public static bool operator ==(TraceId a, TraceId b) => a.Equals(b);

    public static bool operator !=(TraceId a, TraceId b) => !a.Equals(b);

    public static bool operator <(TraceId a, TraceId b) => a.CompareTo(b) < 0;

    public static bool operator >(TraceId a, TraceId b) => a.CompareTo(b) > 0;

    public static bool operator <=(TraceId a, TraceId b) => a.CompareTo(b) <= 0;

    public static bool operator >=(TraceId a, TraceId b) => a.CompareTo(b) >= 0;

    public override string ToString() => ToHex();
}
