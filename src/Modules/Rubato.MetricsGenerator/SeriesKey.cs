using System.Buffers.Text;
using System.Globalization;
using System.Text;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.MetricsGenerator;

/// <summary>
/// Builds a series key: the label values of one series, each as a varint length and its UTF-8 bytes, in the
/// metric's label order. The registry looks series up by these bytes (no string per span); label strings are
/// decoded from the key only when a new series is created.
/// </summary>
/// <remarks>One builder per processing thread; it reuses its buffers.</remarks>
internal sealed class SeriesKeyBuilder
{
    private readonly int _maxValueBytes;
    private byte[] _buf = new byte[256];
    private byte[] _scratch = new byte[256];
    private int _len;
    private int _scratchLen;

    public SeriesKeyBuilder(int maxValueBytes) => _maxValueBytes = maxValueBytes;

    public ReadOnlySpan<byte> Key => _buf.AsSpan(0, _len);

    public int Count { get; private set; }

    public void Reset()
    {
        _len = 0;
        Count = 0;
    }

    /// <summary>Appends one label value given as UTF-8 bytes, truncated to max_label_value_length at a character boundary.</summary>
    public void Add(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > _maxValueBytes)
        {
            int cut = _maxValueBytes;
            while (cut > 0 && (utf8[cut] & 0xC0) == 0x80)
            {
                cut--;
            }

            utf8 = utf8[..cut];
        }

        Ensure(utf8.Length + 5);
        uint n = (uint)utf8.Length;
        while (n >= 0x80)
        {
            _buf[_len++] = (byte)(n | 0x80);
            n >>= 7;
        }

        _buf[_len++] = (byte)n;
        utf8.CopyTo(_buf.AsSpan(_len));
        _len += utf8.Length;
        Count++;
    }

    public void Add(string value)
    {
        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max <= 256)
        {
            Span<byte> tmp = stackalloc byte[256];
            Add(tmp[..Encoding.UTF8.GetBytes(value, tmp)]);
            return;
        }

        Add(Encoding.UTF8.GetBytes(value));
    }

    /// <summary>Appends an attribute value stringified as Tempo's <c>StringifyAnyValue</c> does.</summary>
    public void Add(ref AttributeValue value)
    {
        if (value.Field == F.AnyValue.StringValue)
        {
            Add(value.Bytes);
            return;
        }

        _scratchLen = 0;
        Stringify(ref value);
        Add(_scratch.AsSpan(0, _scratchLen));
    }

    private void Stringify(ref AttributeValue value)
    {
        switch (value.Field)
        {
            case F.AnyValue.StringValue:
                Scratch(value.Bytes);
                break;
            case F.AnyValue.BoolValue:
                Scratch(value.Bool ? "true"u8 : "false"u8);
                break;
            case F.AnyValue.IntValue:
                EnsureScratch(24);
                Utf8Formatter.TryFormat(value.Int, _scratch.AsSpan(_scratchLen), out int n);
                _scratchLen += n;
                break;
            case F.AnyValue.DoubleValue:
                EnsureScratch(64);
                value.Double.TryFormat(_scratch.AsSpan(_scratchLen), out int d, "R", CultureInfo.InvariantCulture);
                _scratchLen += d;
                break;
            case F.AnyValue.ArrayValue:
                Scratch("["u8);
                var arr = new AttributeEnumeratorOfValues(value.Bytes);
                while (arr.MoveNext(out var element))
                {
                    Stringify(ref element);
                }

                Scratch("]"u8);
                break;
            case F.AnyValue.KvlistValue:
                Scratch("{"u8);
                var kvs = new AttributeEnumerator(value.Bytes, F.KeyValueList.Values);
                while (kvs.MoveNext(out var k, out var v))
                {
                    Scratch(k);
                    Scratch(":"u8);
                    Stringify(ref v);
                }

                Scratch("}"u8);
                break;
        }
    }

    private void Scratch(ReadOnlySpan<byte> bytes)
    {
        EnsureScratch(bytes.Length);
        bytes.CopyTo(_scratch.AsSpan(_scratchLen));
        _scratchLen += bytes.Length;
    }

    private void EnsureScratch(int more)
    {
        if (_scratchLen + more > _scratch.Length)
        {
            Array.Resize(ref _scratch, Math.Max(_scratch.Length * 2, _scratchLen + more));
        }
    }

    private void Ensure(int more)
    {
        if (_len + more > _buf.Length)
        {
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + more));
        }
    }

    /// <summary>The UTF-8 bytes of a key's first value.</summary>
    public static ReadOnlySpan<byte> DecodeFirstBytes(ReadOnlySpan<byte> key)
    {
        int pos = 0, len = 0, shift = 0;
        byte b;
        do
        {
            b = key[pos++];
            len |= (b & 0x7F) << shift;
            shift += 7;
        }
        while (b >= 0x80);
        return key.Slice(pos, len);
    }

    /// <summary>The label values of a key, in order.</summary>
    public static string[] Decode(ReadOnlySpan<byte> key)
    {
        var values = new List<string>(8);
        int pos = 0;
        while (pos < key.Length)
        {
            int len = 0, shift = 0;
            byte b;
            do
            {
                b = key[pos++];
                len |= (b & 0x7F) << shift;
                shift += 7;
            }
            while (b >= 0x80);
            values.Add(Encoding.UTF8.GetString(key.Slice(pos, len)));
            pos += len;
        }

        return [.. values];
    }
}

/// <summary>Enumerates the values of an OTLP ArrayValue.</summary>
internal ref struct AttributeEnumeratorOfValues
{
    private Rubato.Common.Otlp.ProtoReader _reader;

    public AttributeEnumeratorOfValues(ReadOnlySpan<byte> arrayValue) => _reader = new Rubato.Common.Otlp.ProtoReader(arrayValue);

    public bool MoveNext(out AttributeValue value)
    {
        while (_reader.TryReadTag(out int f, out var w))
        {
            if (f == F.ArrayValue.Values && w == Rubato.Common.Otlp.WireType.LengthDelimited)
            {
                value = SpanWalker.ReadAnyValue(_reader.ReadLengthDelimited());
                return true;
            }

            _reader.SkipField(f, w);
        }

        value = default;
        return false;
    }
}

/// <summary>A series key with its hash computed once, so one span's several metric lookups hash it once.</summary>
public readonly ref struct HashedKey
{
    public HashedKey(ReadOnlySpan<byte> bytes)
    {
        Bytes = bytes;
        Hash = ByteKeyComparer.Hash(bytes);
    }

    public ReadOnlySpan<byte> Bytes { get; }

    public int Hash { get; }
}

/// <summary>Byte-array keys compared by content, with span lookups that allocate nothing.</summary>
internal sealed class ByteKeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>, IAlternateEqualityComparer<HashedKey, byte[]>
{
    public static readonly ByteKeyComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => Hash(obj);

    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<byte> alternate) => Hash(alternate);

    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();

    public bool Equals(HashedKey alternate, byte[] other) => alternate.Bytes.SequenceEqual(other);

    public int GetHashCode(HashedKey alternate) => alternate.Hash;

    public byte[] Create(HashedKey alternate) => alternate.Bytes.ToArray();

    internal static int Hash(ReadOnlySpan<byte> bytes)
    {
        var h = new HashCode();
        h.AddBytes(bytes);
        return h.ToHashCode();
    }
}
