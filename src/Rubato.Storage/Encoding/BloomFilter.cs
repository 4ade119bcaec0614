using System.Buffers.Binary;
using Rubato.Common.Ids;

namespace Rubato.Storage.Encoding;

/// <summary>
/// A bloom filter over trace ids. The k probe positions come from double hashing of two 64-bit values mixed from the
/// id's halves (ids are usually random already; the mix keeps sequential test ids well spread).
/// </summary>
/// <remarks>
/// Serialized as: magic "RBTB" | u32 k | u64 bit count | bits (little-endian u64 words) | u32 CRC-32C of everything before.
/// Not thread-safe while adding; read-only use is thread-safe.
/// </remarks>
public sealed class BloomFilter
{
    public const uint Magic = 0x42544252; // "RBTB" little-endian
    private readonly ulong[] _words;

    public BloomFilter(long bitCount, int hashCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bitCount, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(hashCount, 1);
        _words = new ulong[(bitCount + 63) / 64];
        BitCount = _words.LongLength * 64;
        HashCount = hashCount;
    }

    private BloomFilter(ulong[] words, int hashCount)
    {
        _words = words;
        BitCount = words.LongLength * 64;
        HashCount = hashCount;
    }

    public long BitCount { get; }

    public int HashCount { get; }

    public int SerializedSize => 4 + 4 + 8 + (_words.Length * 8) + 4;

    /// <summary>Optimal bits and hashes for <paramref name="items"/> at false positive rate <paramref name="fp"/>.</summary>
    public static (long Bits, int Hashes) Size(long items, double fp)
    {
        items = Math.Max(1, items);
        double m = Math.Ceiling(-items * Math.Log(fp) / (Math.Log(2) * Math.Log(2)));
        int k = (int)Math.Max(1, Math.Round(m / items * Math.Log(2)));
        return (Math.Max(64, (long)m), Math.Min(k, 30));
    }

    /// <summary>Shard count for a block: enough shards that each stays under the target size (1..1000, as Tempo).</summary>
    public static int ShardCount(long items, double fp, int shardSizeBytes)
    {
        var (bits, _) = Size(items, fp);
        long shards = ((bits / 8) + shardSizeBytes - 1) / shardSizeBytes;
        return (int)Math.Clamp(shards, 1, 1000);
    }

    public static int ShardOf(TraceId id, int shards) => (int)(id.Fnv32a() % (uint)shards);

    public void Add(TraceId id)
    {
        var (h1, h2) = Hash(id);
        ulong m = (ulong)BitCount;
        for (int i = 0; i < HashCount; i++)
        {
            ulong bit = (h1 + ((ulong)i * h2)) % m;
            _words[bit >> 6] |= 1UL << (int)(bit & 63);
        }
    }

    public bool MayContain(TraceId id)
    {
        var (h1, h2) = Hash(id);
        ulong m = (ulong)BitCount;
        for (int i = 0; i < HashCount; i++)
        {
            ulong bit = (h1 + ((ulong)i * h2)) % m;
            if ((_words[bit >> 6] & (1UL << (int)(bit & 63))) == 0)
            {
                return false;
            }
        }

        return true;
    }

    public byte[] Serialize()
    {
        var buf = new byte[SerializedSize];
        BinaryPrimitives.WriteUInt32LittleEndian(buf, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(4), HashCount);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(8), BitCount);
        for (int i = 0; i < _words.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(16 + (i * 8)), _words[i]);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(buf.Length - 4), Crc32C.Compute(buf.AsSpan(0, buf.Length - 4)));
        return buf;
    }

    /// <exception cref="BlockCorruptException">Bad magic, size or checksum.</exception>
    public static BloomFilter Deserialize(ReadOnlySpan<byte> data, string objectKey)
    {
        if (data.Length < 20)
        {
            throw new BlockCorruptException(objectKey, 0, $"bloom shard is {data.Length} bytes, shorter than its 20-byte frame");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(data) != Magic)
        {
            throw new BlockCorruptException(objectKey, 0, "bad bloom magic");
        }

        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(data[^4..]);
        if (crc != Crc32C.Compute(data[..^4]))
        {
            throw new BlockCorruptException(objectKey, data.Length - 4, "bloom checksum mismatch");
        }

        int k = BinaryPrimitives.ReadInt32LittleEndian(data[4..]);
        long bits = BinaryPrimitives.ReadInt64LittleEndian(data[8..]);
        if (k is < 1 or > 30 || bits < 64 || bits % 64 != 0 || (bits / 8) != data.Length - 20)
        {
            throw new BlockCorruptException(objectKey, 4, $"bloom header k={k} bits={bits} does not match its {data.Length}-byte size");
        }

        var words = new ulong[bits / 64];
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = BinaryPrimitives.ReadUInt64LittleEndian(data[(16 + (i * 8))..]);
        }

        return new BloomFilter(words, k);
    }

    private static (ulong H1, ulong H2) Hash(TraceId id)
    {
        ulong h1 = Mix(id.High ^ Mix(id.Low));
        ulong h2 = Mix(id.Low + 0x9E3779B97F4A7C15UL) | 1UL;
        return (h1, h2);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
