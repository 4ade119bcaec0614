using System.Buffers;
using Rubato.Common.Model;
using Rubato.TraceQL.Engine;

namespace Rubato.Storage.Encoding.V1;

/// <summary>
/// The <c>postings</c> object of a block: per row group and per attribute level (resource, scope, span), the distinct
/// values of every low-cardinality attribute key with the owner rows holding each (docs/block-format.md §4a). Lets an
/// equality or range condition on such a key read just the row lists of the values it accepts instead of the level's
/// attribute key/type/value columns.
/// </summary>
public static class Postings
{
    public const string ObjectName = "postings";

    /// <summary>"RBPS": postings object magic.</summary>
    public const uint Magic = 0x53504252;

    public const ushort Revision = 1;

    /// <summary>Header: magic u32, revision u16, codec u8 (0 none, 1 deflate, 2 brotli), reserved u8, row-group count u32.</summary>
    public const int HeaderSize = 12;

    /// <summary>Row-group table entry: region offset u64, directory length u32, postings length u32, directory CRC-32C u32.</summary>
    public const int TableEntrySize = 20;

    /// <summary>The attribute levels that are indexed, in directory order.</summary>
    public static readonly AttrLevel[] Levels = [AttrLevel.Resource, AttrLevel.Scope, AttrLevel.Span];

    /// <summary>Bytes of the header plus row-group table plus its CRC for <paramref name="rowGroups"/> row groups.</summary>
    public static int TableSize(int rowGroups) => HeaderSize + (rowGroups * TableEntrySize) + 4;

    /// <summary>Parses and validates the header and row-group table (the first <see cref="TableSize"/> bytes).</summary>
    public static PostingsTable ParseTable(ReadOnlySpan<byte> bytes, int rowGroups, long objectSize, string objectKey)
    {
        int size = TableSize(rowGroups);
        if (bytes.Length != size)
        {
            throw new BlockCorruptException(objectKey, 0, $"postings table: {bytes.Length} bytes where {rowGroups} row groups need {size}");
        }

        uint crc = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..]);
        if (Crc32C.Compute(bytes[..^4]) != crc)
        {
            throw new BlockCorruptException(objectKey, size - 4, "postings table: CRC-32C mismatch");
        }

        var r = new ByteReader(bytes, objectKey, 0, "postings table");
        if (r.ReadU32() != Magic)
        {
            throw new BlockCorruptException(objectKey, 0, "postings table: bad magic");
        }

        ushort rev = r.ReadU16();
        if (rev != Revision)
        {
            throw new BlockCorruptException(objectKey, 4, $"postings table: unsupported revision {rev}");
        }

        var codec = (BlockCompression)r.ReadByte();
        if (codec is not (BlockCompression.None or BlockCompression.Deflate or BlockCompression.Brotli))
        {
            throw new BlockCorruptException(objectKey, 6, $"postings table: unknown codec {(byte)codec}");
        }

        r.ReadByte();
        uint count = r.ReadU32();
        if (count != rowGroups)
        {
            throw new BlockCorruptException(objectKey, 8, $"postings table: {count} row groups, the footer has {rowGroups}");
        }

        var entries = new PostingsRegion[rowGroups];
        long expected = size;
        for (int i = 0; i < rowGroups; i++)
        {
            long at = r.Position;
            ulong offset = r.ReadU64();
            uint dirLength = r.ReadU32();
            uint postingsLength = r.ReadU32();
            uint dirCrc = r.ReadU32();
            if (offset != (ulong)expected || dirLength == 0 || (long)offset + dirLength + postingsLength > objectSize)
            {
                throw new BlockCorruptException(objectKey, at, $"postings table: row group {i} region [{offset}, +{dirLength}+{postingsLength}) does not follow at {expected} within the {objectSize}-byte object");
            }

            entries[i] = new PostingsRegion((long)offset, (int)dirLength, (int)postingsLength, dirCrc);
            expected = (long)offset + dirLength + postingsLength;
        }

        if (expected != objectSize)
        {
            throw new BlockCorruptException(objectKey, expected, $"postings table: regions end at {expected}, the object has {objectSize} bytes");
        }

        return new PostingsTable(codec, entries);
    }

    /// <summary>Parses and validates one row group's directory (its CRC-32C is checked first).</summary>
    public static PostingsDirectory ParseDirectory(ReadOnlySpan<byte> bytes, PostingsRegion region, int rowGroup, string objectKey)
    {
        if (bytes.Length != region.DirectoryLength || Crc32C.Compute(bytes) != region.DirectoryCrc)
        {
            throw new BlockCorruptException(objectKey, region.Offset, $"postings directory of row group {rowGroup}: CRC-32C mismatch");
        }

        var r = new ByteReader(bytes, objectKey, region.Offset, $"postings directory of row group {rowGroup}");
        var levels = new PostingsLevel[Levels.Length];
        long postingAt = region.Offset + region.DirectoryLength;
        long postingsEnd = postingAt + region.PostingsLength;
        for (int l = 0; l < Levels.Length; l++)
        {
            int owners = r.ReadCount(int.MaxValue);
            int keyCount = r.ReadCount(r.Remaining);
            var keys = new Dictionary<string, PostingsKey>(keyCount, StringComparer.Ordinal);
            for (int k = 0; k < keyCount; k++)
            {
                int keyAt = r.Position;
                string key = r.ReadString();
                var kind = (AnyValueKind)r.ReadByte();
                if (kind is not (AnyValueKind.String or AnyValueKind.Bool or AnyValueKind.Int))
                {
                    throw r.Corrupt($"key '{key}' has value kind {(byte)kind}");
                }

                int n = r.ReadCount(r.Remaining);
                if (n == 0)
                {
                    throw r.Corrupt($"key '{key}' has no values");
                }

                var values = new PostingsValue[n];
                long occurrences = 0;
                for (int v = 0; v < n; v++)
                {
                    TraceQLValue value;
                    long order;
                    string? s = null;
                    switch (kind)
                    {
                        case AnyValueKind.String:
                            s = r.ReadString();
                            value = TraceQLValue.FromString(s);
                            order = 0;
                            break;
                        case AnyValueKind.Bool:
                            byte b = r.ReadByte();
                            if (b > 1)
                            {
                                throw r.Corrupt($"key '{key}' has bool value {b}");
                            }

                            value = TraceQLValue.FromBool(b == 1);
                            order = b;
                            break;
                        default:
                            order = r.ReadZigzag();
                            value = TraceQLValue.FromInt(order);
                            break;
                    }

                    if (v > 0 && s is null && values[v - 1].Order >= order)
                    {
                        throw r.Corrupt($"key '{key}': values are not strictly ascending at value {v}");
                    }

                    int count = r.ReadCount(owners);
                    int stored = r.ReadCount(int.MaxValue);
                    int raw = 0;
                    uint crc = 0;
                    if (count == 0)
                    {
                        throw r.Corrupt($"key '{key}' value {v} occurs 0 times");
                    }

                    if (stored > 0)
                    {
                        raw = r.ReadCount(int.MaxValue);
                        crc = r.ReadU32();
                        if (raw < stored || raw < count)
                        {
                            throw r.Corrupt($"key '{key}' value {v}: posting of {count} rows has raw length {raw} and stored length {stored}");
                        }

                        if (postingAt + stored > postingsEnd)
                        {
                            throw r.Corrupt($"key '{key}' value {v}: posting extends past the row group's {region.PostingsLength} posting bytes");
                        }
                    }

                    occurrences += count;
                    values[v] = new PostingsValue(value, s, order, count, stored > 0 ? postingAt : 0, stored, raw, crc);
                    postingAt += stored;
                }

                if (occurrences > owners)
                {
                    throw new BlockCorruptException(objectKey, region.Offset + keyAt, $"postings directory of row group {rowGroup}: key '{key}' has {occurrences} occurrences in {owners} rows");
                }

                if (!keys.TryAdd(key, new PostingsKey(key, kind, values)))
                {
                    throw new BlockCorruptException(objectKey, region.Offset + keyAt, $"postings directory of row group {rowGroup}: key '{key}' is listed twice");
                }
            }

            levels[l] = new PostingsLevel(owners, keys);
        }

        if (!r.End)
        {
            throw r.Corrupt($"{r.Remaining} bytes after the last level");
        }

        if (postingAt != postingsEnd)
        {
            throw new BlockCorruptException(objectKey, postingAt, $"postings directory of row group {rowGroup}: postings end at {postingAt}, the region at {postingsEnd}");
        }

        return new PostingsDirectory(rowGroup, region.Offset, levels);
    }

    /// <summary>
    /// Decodes one posting's stored bytes into its ascending owner rows (exactly <see cref="PostingsValue.Count"/> of
    /// them, each below <paramref name="owners"/>). CRC-checked before anything is decoded.
    /// </summary>
    public static int[] Decode(ReadOnlySpan<byte> stored, PostingsValue value, int owners, BlockCompression codec, string objectKey, string what)
    {
        if (stored.Length != value.Stored || Crc32C.Compute(stored) != value.Crc)
        {
            throw new BlockCorruptException(objectKey, value.Offset, $"posting {what}: CRC-32C mismatch");
        }

        byte[]? rented = null;
        ReadOnlySpan<byte> raw = stored;
        try
        {
            if (value.Raw != value.Stored)
            {
                rented = ArrayPool<byte>.Shared.Rent(value.Raw);
                if (!FormatV1.TryInflate(codec, stored, rented.AsSpan(0, value.Raw)))
                {
                    throw new BlockCorruptException(objectKey, value.Offset, $"posting {what}: does not inflate to {value.Raw} bytes with {FormatV1.CodecName(codec)}");
                }

                raw = rented.AsSpan(0, value.Raw);
            }

            var r = new ByteReader(raw, objectKey, value.Offset, $"posting {what}");
            var rows = new int[value.Count];
            long prev = -1;
            for (int i = 0; i < rows.Length; i++)
            {
                ulong d = r.ReadVarint();
                long row = i == 0 ? (long)Math.Min(d, int.MaxValue) : prev + (long)Math.Min(d, int.MaxValue);
                if ((i > 0 && d == 0) || row >= owners)
                {
                    throw r.Corrupt($"row {row} (entry {i}) is not ascending below {owners}");
                }

                rows[i] = (int)row;
                prev = row;
            }

            if (!r.End)
            {
                throw r.Corrupt($"{r.Remaining} bytes after {rows.Length} rows");
            }

            return rows;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

}

/// <summary>One row group's extent in the postings object: directory, then its postings.</summary>
public readonly record struct PostingsRegion(long Offset, int DirectoryLength, int PostingsLength, uint DirectoryCrc);

/// <summary>The header and row-group table of a postings object (cached per open block).</summary>
public sealed class PostingsTable(BlockCompression codec, PostingsRegion[] regions)
{
    /// <summary>The codec of compressed postings (a posting is stored raw when compression does not shrink it).</summary>
    public BlockCompression Codec { get; } = codec;

    public IReadOnlyList<PostingsRegion> Regions { get; } = regions;
}

/// <summary>One distinct value of an indexed key and where its posting is (<see cref="Stored"/> = 0: no posting).</summary>
/// <param name="Value">The value as TraceQL sees it.</param>
/// <param name="String">The string value (string keys), else null.</param>
/// <param name="Order">The int value (0/1 for bools), the sort order of non-string values.</param>
/// <param name="Count">Owner rows whose first attribute with the key has this value.</param>
/// <param name="Offset">Absolute offset of the stored posting in the postings object.</param>
public readonly record struct PostingsValue(TraceQLValue Value, string? String, long Order, int Count, long Offset, int Stored, int Raw, uint Crc)
{
    public bool HasPosting => Stored > 0;
}

/// <summary>An indexed key of one level: its single value kind and every distinct value, ascending.</summary>
public sealed record PostingsKey(string Key, AnyValueKind Kind, PostingsValue[] Values);

/// <summary>One attribute level of a row group's directory: the level's rows and its indexed keys.</summary>
public sealed record PostingsLevel(int Owners, IReadOnlyDictionary<string, PostingsKey> Keys);

/// <summary>A row group's postings directory (<see cref="Postings.ParseDirectory"/>).</summary>
public sealed class PostingsDirectory(int rowGroup, long offset, PostingsLevel[] levels)
{
    public int RowGroup { get; } = rowGroup;

    /// <summary>Absolute offset of the directory in the postings object (for errors).</summary>
    public long Offset { get; } = offset;

    /// <summary>The directory of an indexed level (resource, scope, span).</summary>
    public PostingsLevel Level(AttrLevel level) => level switch
    {
        AttrLevel.Resource => levels[0],
        AttrLevel.Scope => levels[1],
        AttrLevel.Span => levels[2],
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "only resource, scope and span attributes are indexed"),
    };

    /// <summary>The indexed key, or null when the key is not indexed in this row group (absent or not indexable).</summary>
    public PostingsKey? Find(AttrLevel level, string key) =>
        level is AttrLevel.Resource or AttrLevel.Scope or AttrLevel.Span && Level(level).Keys.TryGetValue(key, out var k) ? k : null;
}

/// <summary>
/// Collects the postings of a block while it is built: <see cref="Owner"/> for every resource, scope and span in row
/// order, <see cref="CutRowGroup"/> at every row-group cut, <see cref="ToArray"/> once at the end. Memory: one int per
/// indexed occurrence of the current row group plus the encoded regions of the block (small: see the cost rule in
/// docs/block-format.md).
/// </summary>
internal sealed class PostingsBuilder
{
    private readonly int _maxValues;
    private readonly double _maxShare;
    private readonly BlockCompression _codec;
    private readonly LevelState[] _levels;
    private readonly ByteWriter _regions = new(4096);
    private readonly ByteWriter _dir = new(1024);
    private readonly ByteWriter _postings = new(4096);
    private readonly ByteWriter _raw = new(1024);
    private readonly ByteWriter _compressed = new(1024);
    private readonly List<(int DirLength, int PostingsLength, uint Crc)> _table = [];
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    public PostingsBuilder(int maxValues, double maxShare, BlockCompression codec)
    {
        _maxValues = maxValues;
        _maxShare = maxShare;
        _codec = codec;
        _levels = [new LevelState(), new LevelState(), new LevelState()];
    }

    /// <summary>The next owner row of <paramref name="level"/> with its attributes (first attribute with a key wins).</summary>
    public void Owner(AttrLevel level, List<KeyValue> attrs)
    {
        var st = _levels[(int)level];
        int row = st.Owners++;
        bool manyAttrs = attrs.Count > 16;
        if (manyAttrs)
        {
            _seen.Clear();
        }

        for (int i = 0; i < attrs.Count; i++)
        {
            string key = attrs[i].Key;
            if (manyAttrs ? !_seen.Add(key) : EarlierHas(attrs, i, key))
            {
                continue; // a later duplicate: the evaluator never sees it
            }

            if (!st.Keys.TryGetValue(key, out var ks))
            {
                ks = new KeyState(key);
                st.Keys.Add(key, ks);
                st.Order.Add(ks);
            }

            ks.Add(attrs[i].Value, row, _maxValues);
        }
    }

    /// <summary>Encodes the current row group's directory and postings and starts the next row group.</summary>
    public void CutRowGroup()
    {
        _dir.Clear();
        _postings.Clear();
        foreach (var st in _levels)
        {
            _dir.WriteVarint((ulong)st.Owners);
            var indexed = st.Order.Where(k => !k.Dead).ToList();
            _dir.WriteVarint((ulong)indexed.Count);
            long maxRows = (long)Math.Floor(_maxShare * st.Owners);
            foreach (var ks in indexed)
            {
                _dir.WriteString(ks.Key);
                _dir.WriteByte((byte)ks.Kind);
                var values = ks.SortedValues();
                _dir.WriteVarint((ulong)values.Count);
                foreach (var (s, n, rows) in values)
                {
                    switch (ks.Kind)
                    {
                        case AnyValueKind.String: _dir.WriteString(s!); break;
                        case AnyValueKind.Bool: _dir.WriteByte((byte)n); break;
                        default: _dir.WriteZigzag(n); break;
                    }

                    _dir.WriteVarint((ulong)rows.Count);
                    if (rows.Count > maxRows)
                    {
                        _dir.WriteVarint(0); // too common: a condition accepting it reads the columns instead
                        continue;
                    }

                    _raw.Clear();
                    int prev = 0;
                    foreach (int row in rows)
                    {
                        _raw.WriteVarint((ulong)(row - prev));
                        prev = row;
                    }

                    _compressed.Clear();
                    var stored = FormatV1.TryCompress(_codec, _raw.WrittenSpan, _compressed) ? _compressed.WrittenSpan : _raw.WrittenSpan;
                    _dir.WriteVarint((ulong)stored.Length);
                    _dir.WriteVarint((ulong)_raw.Length);
                    _dir.WriteU32(Crc32C.Compute(stored));
                    _postings.Write(stored);
                }
            }

            st.Clear();
        }

        _table.Add((_dir.Length, _postings.Length, Crc32C.Compute(_dir.WrittenSpan)));
        _regions.Write(_dir.WrittenSpan);
        _regions.Write(_postings.WrittenSpan);
    }

    /// <summary>The whole postings object: header, row-group table, CRC, then the regions.</summary>
    public byte[] ToArray()
    {
        int tableSize = Postings.TableSize(_table.Count);
        var w = new ByteWriter(tableSize + _regions.Length);
        w.WriteU32(Postings.Magic);
        w.WriteU16(Postings.Revision);
        w.WriteByte((byte)_codec);
        w.WriteByte(0);
        w.WriteU32((uint)_table.Count);
        long offset = tableSize;
        foreach (var (dirLength, postingsLength, crc) in _table)
        {
            w.WriteU64((ulong)offset);
            w.WriteU32((uint)dirLength);
            w.WriteU32((uint)postingsLength);
            w.WriteU32(crc);
            offset += dirLength + postingsLength;
        }

        w.WriteU32(Crc32C.Compute(w.WrittenSpan));
        w.Write(_regions.WrittenSpan);
        return w.ToArray();
    }

    private static bool EarlierHas(List<KeyValue> attrs, int i, string key)
    {
        for (int j = 0; j < i; j++)
        {
            if (string.Equals(attrs[j].Key, key, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private sealed class LevelState
    {
        public int Owners;

        public Dictionary<string, KeyState> Keys { get; } = new(StringComparer.Ordinal);

        /// <summary>Keys in first-seen order (the directory order).</summary>
        public List<KeyState> Order { get; } = [];

        public void Clear()
        {
            Owners = 0;
            Keys.Clear();
            Order.Clear();
        }
    }

    /// <summary>
    /// One key of one level in the current row group: its value kind and rows per distinct value, until it turns out
    /// not indexable (a second kind, a kind other than string/int/bool, or more than the value cap), then dead.
    /// </summary>
    private sealed class KeyState(string key)
    {
        private readonly Dictionary<string, List<int>> _strings = new(StringComparer.Ordinal);
        private readonly Dictionary<long, List<int>> _ints = [];

        public string Key { get; } = key;

        public AnyValueKind Kind { get; private set; } = AnyValueKind.Empty;

        public bool Dead { get; private set; }

        public void Add(AnyValue v, int row, int maxValues)
        {
            if (Dead)
            {
                return;
            }

            if (v.Kind is not (AnyValueKind.String or AnyValueKind.Bool or AnyValueKind.Int) || (Kind != AnyValueKind.Empty && Kind != v.Kind))
            {
                Kill();
                return;
            }

            Kind = v.Kind;
            List<int>? rows;
            if (v.Kind == AnyValueKind.String)
            {
                if (!_strings.TryGetValue(v.StringValue!, out rows))
                {
                    if (_strings.Count >= maxValues)
                    {
                        Kill();
                        return;
                    }

                    rows = [];
                    _strings.Add(v.StringValue!, rows);
                }
            }
            else
            {
                long n = v.Kind == AnyValueKind.Bool ? (v.BoolValue ? 1 : 0) : v.IntValue;
                if (!_ints.TryGetValue(n, out rows))
                {
                    if (_ints.Count >= maxValues)
                    {
                        Kill();
                        return;
                    }

                    rows = [];
                    _ints.Add(n, rows);
                }
            }

            rows.Add(row);
        }

        /// <summary>
        /// Distinct values in directory order: ints/bools ascending (readers check it), strings in ordinal order (readers
        /// do not rely on it: strings that are not valid UTF-16 can encode to equal UTF-8).
        /// </summary>
        public List<(string? S, long N, List<int> Rows)> SortedValues()
        {
            var list = new List<(string? S, long N, List<int> Rows)>();
            if (Kind == AnyValueKind.String)
            {
                list.AddRange(_strings.Select(kv => ((string?)kv.Key, 0L, kv.Value)));
                list.Sort((a, b) => string.CompareOrdinal(a.S, b.S));
            }
            else
            {
                list.AddRange(_ints.Select(kv => ((string?)null, kv.Key, kv.Value)));
                list.Sort((a, b) => a.N.CompareTo(b.N));
            }

            return list;
        }

        private void Kill()
        {
            Dead = true;
            _strings.Clear();
            _ints.Clear();
        }
    }
}

/// <summary>Bytes and range requests a scan spent on the postings object (added to by <see cref="BackendBlockV1"/>'s postings reads).</summary>
public sealed class PostingsReadStats
{
    public long Bytes { get; set; }

    public int Reads { get; set; }
}
