using System.Buffers.Binary;

namespace Rubato.Storage.Encoding.V1;

/// <summary>One data page of a paged column chunk (<see cref="ColumnPageIndex"/>).</summary>
/// <param name="Offset">Start of the page's stored bytes, relative to the chunk start.</param>
/// <param name="Stored">Stored bytes; equal to <paramref name="Raw"/> when the page is kept uncompressed.</param>
/// <param name="Raw">Uncompressed bytes.</param>
/// <param name="Crc">CRC-32C of the stored bytes.</param>
/// <param name="Min">Smallest value (Zigzag columns only).</param>
/// <param name="Max">Largest value (Zigzag columns only).</param>
public readonly record struct PageInfo(int Offset, int Stored, int Raw, uint Crc, long Min, long Max);

/// <summary>
/// The page index at the head of a revision-2 column chunk: rows, rows per page, the dictionary page and every data
/// page's extent, CRC and (for integer columns) min/max. A scan reads it (its length is in the footer) to range-read
/// only the pages it needs. Row <c>r</c> of the column is in page <c>r / RowsPerPage</c>.
/// </summary>
public sealed class ColumnPageIndex
{
    internal ColumnPageIndex(int column, BlockCompression codec, int rows, int rowsPerPage, int headerLength, PageInfo? dictionary, PageInfo[] pages, bool hasStats)
    {
        Column = column;
        Codec = codec;
        Rows = rows;
        RowsPerPage = rowsPerPage;
        HeaderLength = headerLength;
        Dictionary = dictionary;
        Pages = pages;
        HasStats = hasStats;
    }

    public int Column { get; }

    public BlockCompression Codec { get; }

    /// <summary>Values (rows) in the column chunk.</summary>
    public int Rows { get; }

    /// <summary>Rows per data page (the last page may hold fewer); at least 1.</summary>
    public int RowsPerPage { get; }

    /// <summary>Bytes of the page index itself, including its CRC; the dictionary page (or page 0) starts here.</summary>
    public int HeaderLength { get; }

    /// <summary>The dictionary page of a <see cref="ColumnKind.Dict"/> column; null for other kinds.</summary>
    public PageInfo? Dictionary { get; }

    public IReadOnlyList<PageInfo> Pages { get; }

    /// <summary>Whether <see cref="PageInfo.Min"/>/<see cref="PageInfo.Max"/> are set (Zigzag columns: times, durations, int attributes).</summary>
    public bool HasStats { get; }

    public int PageOf(int row) => row / RowsPerPage;

    public int FirstRow(int page) => page * RowsPerPage;

    public int RowCount(int page) => Math.Min(RowsPerPage, Rows - (page * RowsPerPage));
}

/// <summary>
/// Writer and reader of revision-2 (paged) column chunks; docs/block-format.md §2 has the byte layout. A chunk is its
/// page index, then the dictionary page (dictionary columns), then the data pages. Every page is compressed on its own
/// (kept raw when that is not smaller) and carries its own CRC in the index, so any subset of pages can be range-read
/// and verified without the rest of the chunk.
/// </summary>
public static class ColumnPages
{
    private const byte FlagDictionary = 1;
    private const byte FlagStats = 2;

    /// <summary>Largest raw page or dictionary the reader accepts (corrupt lengths fail before allocating).</summary>
    private const int MaxRawBytes = 1 << 30;

    /// <summary>
    /// Rows per page for a column of <paramref name="rows"/> rows over <paramref name="valueBytes"/> raw bytes (about
    /// <paramref name="storedBytes"/> once compressed) in a row group of <paramref name="traces"/> traces: about
    /// <paramref name="options"/>.TracesPerPage traces' rows, but pages of at least MinPageStoredBytes stored (a column
    /// that compresses to little gains nothing from small pages and would pay their index entries and lost compression)
    /// and at most PageSizeBytes raw.
    /// </summary>
    public static int RowsPerPage(int rows, int valueBytes, long storedBytes, int traces, BlockBuilderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (rows <= 0)
        {
            return 1;
        }

        long byTraces = ((long)rows * options.TracesPerPage + Math.Max(1, traces) - 1) / Math.Max(1, traces);
        long byMinStored = (long)rows * options.MinPageStoredBytes / Math.Max(1, storedBytes);
        long byMaxBytes = (long)rows * options.PageSizeBytes / Math.Max(1, valueBytes);
        return (int)Math.Clamp(Math.Min(Math.Max(byTraces, byMinStored), byMaxBytes), 1, rows);
    }

    /// <summary>Estimated stored size of <paramref name="raw"/>: compresses a prefix of up to 16 KiB and scales.</summary>
    public static long EstimateStored(ReadOnlySpan<byte> raw, BlockCompression codec, ByteWriter scratch)
    {
        var sample = raw[..Math.Min(raw.Length, 16 * 1024)];
        scratch.Clear();
        if (sample.Length == 0 || !FormatV1.TryCompress(codec, sample, scratch))
        {
            return raw.Length;
        }

        return (long)raw.Length * scratch.Length / sample.Length;
    }

    /// <summary>
    /// Writes one paged column chunk into <paramref name="output"/>: page index, dictionary page, data pages.
    /// <paramref name="values"/> holds <paramref name="rows"/> values laid out per <see cref="Col.Kind"/>.
    /// </summary>
    /// <returns>The length of the page index (the footer records it so scans can read just the index).</returns>
    public static int Write(
        ByteWriter output,
        int column,
        ReadOnlySpan<byte> dictionary,
        ReadOnlySpan<byte> values,
        int rows,
        int rowsPerPage,
        BlockCompression codec,
        ByteWriter scratch)
    {
        var kind = Col.Kind(column);
        bool isDict = kind == ColumnKind.Dict;
        bool stats = kind == ColumnKind.Zigzag;
        int pageCount = rows == 0 ? 0 : ((rows - 1) / rowsPerPage) + 1;

        // Pages are compressed into scratch first: the index in front of them needs their stored lengths.
        scratch.Clear();
        PageInfo dict = default;
        if (isDict)
        {
            dict = Compress(scratch, dictionary, codec, 0, 0);
        }

        var pages = new PageInfo[pageCount];
        int pos = 0;
        for (int p = 0; p < pageCount; p++)
        {
            int n = Math.Min(rowsPerPage, rows - (p * rowsPerPage));
            int end = SkipRows(kind, values, pos, n, out long min, out long max, column);
            pages[p] = Compress(scratch, values[pos..end], codec, stats ? min : 0, stats ? max : 0);
            pos = end;
        }

        if (pos != values.Length)
        {
            throw new InvalidOperationException($"column {Col.Name(column)}: {values.Length - pos} bytes after {rows} rows");
        }

        int headerAt = output.Length;
        output.WriteByte((byte)codec);
        output.WriteByte((byte)((isDict ? FlagDictionary : 0) | (stats ? FlagStats : 0)));
        output.WriteVarint((ulong)rows);
        output.WriteVarint((ulong)rowsPerPage);
        output.WriteVarint((ulong)pageCount);
        if (isDict)
        {
            WritePageEntry(output, dict, false);
        }

        foreach (var p in pages)
        {
            WritePageEntry(output, p, stats);
        }

        output.WriteU32(Crc32C.Compute(output.Slice(headerAt, output.Length - headerAt)));
        int headerLength = output.Length - headerAt;
        output.Write(scratch.WrittenSpan);
        return headerLength;
    }

    /// <summary>Parses and verifies a page index (the first <c>headerLength</c> bytes of a chunk).</summary>
    /// <param name="absoluteOffset">Offset of the chunk in the data object, for error messages.</param>
    public static ColumnPageIndex ParseIndex(ReadOnlySpan<byte> header, int column, int chunkLength, string objectKey, long absoluteOffset)
    {
        string what = $"column {Col.Name(column)} page index";
        if (header.Length < 4 + 5)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"{what}: {header.Length} bytes is too short");
        }

        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(header[^4..]);
        if (Crc32C.Compute(header[..^4]) != crc)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"{what}: CRC-32C mismatch");
        }

        var r = new ByteReader(header[..^4], objectKey, absoluteOffset, what);
        var codec = (BlockCompression)r.ReadByte();
        if (codec is not (BlockCompression.None or BlockCompression.Deflate or BlockCompression.Brotli))
        {
            throw r.Corrupt($"unknown codec {(byte)codec}");
        }

        byte flags = r.ReadByte();
        bool isDict = (flags & FlagDictionary) != 0;
        bool stats = (flags & FlagStats) != 0;
        if (isDict != (Col.Kind(column) == ColumnKind.Dict))
        {
            throw r.Corrupt("dictionary flag does not match the column kind");
        }

        if (stats != (Col.Kind(column) == ColumnKind.Zigzag))
        {
            throw r.Corrupt("stats flag does not match the column kind");
        }

        int rows = r.ReadCount(int.MaxValue);
        int rowsPerPage = r.ReadCount(int.MaxValue);
        int pageCount = r.ReadCount(header.Length);
        if (rowsPerPage < 1 || pageCount != (rows == 0 ? 0 : ((rows - 1) / rowsPerPage) + 1))
        {
            throw r.Corrupt($"{pageCount} pages of {rowsPerPage} rows do not hold {rows} rows");
        }

        int offset = header.Length;
        PageInfo? dict = null;
        if (isDict)
        {
            dict = ReadPageEntry(ref r, ref offset, false);
        }

        var pages = new PageInfo[pageCount];
        for (int p = 0; p < pageCount; p++)
        {
            pages[p] = ReadPageEntry(ref r, ref offset, stats);
        }

        if (!r.End)
        {
            throw r.Corrupt($"{r.Remaining} bytes after the last page entry");
        }

        if (offset != chunkLength)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"{what}: pages end at {offset}, the chunk has {chunkLength} bytes");
        }

        return new ColumnPageIndex(column, codec, rows, rowsPerPage, header.Length, dict, pages, stats);
    }

    /// <summary>
    /// Verifies and inflates a whole chunk into one array laid out as revision 1 had it: the dictionary (dictionary
    /// columns) followed by every page's values.
    /// </summary>
    public static byte[] ReadWhole(ReadOnlySpan<byte> chunk, int column, int headerLength, string objectKey, long absoluteOffset, out ColumnPageIndex index)
    {
        if (headerLength <= 0 || headerLength > chunk.Length)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: page index of {headerLength} bytes does not fit the {chunk.Length}-byte chunk");
        }

        index = ParseIndex(chunk[..headerLength], column, chunk.Length, objectKey, absoluteOffset);
        long total = index.Dictionary?.Raw ?? 0;
        foreach (var p in index.Pages)
        {
            total += p.Raw;
        }

        if (total > MaxRawBytes)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: raw length {total} is implausible");
        }

        var raw = new byte[total];
        int at = 0;
        if (index.Dictionary is { } d)
        {
            Inflate(chunk.Slice(d.Offset, d.Stored), d, index.Codec, raw.AsSpan(0, d.Raw), objectKey, absoluteOffset + d.Offset, column);
            at = d.Raw;
        }

        foreach (var p in index.Pages)
        {
            Inflate(chunk.Slice(p.Offset, p.Stored), p, index.Codec, raw.AsSpan(at, p.Raw), objectKey, absoluteOffset + p.Offset, column);
            at += p.Raw;
        }

        return raw;
    }

    /// <summary>Verifies one page's stored bytes (CRC) and inflates them into <paramref name="raw"/> (exactly its raw length).</summary>
    public static void Inflate(ReadOnlySpan<byte> stored, PageInfo page, BlockCompression codec, Span<byte> raw, string objectKey, long absoluteOffset, int column)
    {
        if (stored.Length != page.Stored || raw.Length != page.Raw)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: page extent {stored.Length}/{raw.Length} does not match its index {page.Stored}/{page.Raw}");
        }

        if (Crc32C.Compute(stored) != page.Crc)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: CRC-32C mismatch");
        }

        if (page.Stored == page.Raw)
        {
            stored.CopyTo(raw); // kept uncompressed: compression did not make it smaller
            return;
        }

        if (!FormatV1.TryInflate(codec, stored, raw))
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: {FormatV1.CodecName(codec)} data does not inflate to {page.Raw} bytes");
        }
    }

    /// <summary>
    /// The end offset of <paramref name="n"/> rows of a column starting at <paramref name="pos"/>, with the min/max of
    /// Varint/Zigzag values.
    /// </summary>
    internal static int SkipRows(ColumnKind kind, ReadOnlySpan<byte> values, int pos, int n, out long min, out long max, int column)
    {
        min = long.MaxValue;
        max = long.MinValue;
        var r = new ByteReader(values, "builder", 0, Col.Name(column)) { Position = pos };
        for (int i = 0; i < n; i++)
        {
            switch (kind)
            {
                case ColumnKind.Varint:
                    {
                        long v = (long)Math.Min(r.ReadVarint(), long.MaxValue);
                        min = Math.Min(min, v);
                        max = Math.Max(max, v);
                        break;
                    }

                case ColumnKind.Zigzag:
                    {
                        long v = r.ReadZigzag();
                        min = Math.Min(min, v);
                        max = Math.Max(max, v);
                        break;
                    }

                case ColumnKind.Dict: r.ReadVarint(); break;
                case ColumnKind.Byte: r.ReadByte(); break;
                case ColumnKind.Fixed8: r.ReadBytes(8); break;
                case ColumnKind.Fixed16: r.ReadBytes(16); break;
                default: r.ReadBytesWithLength(); break;
            }
        }

        return r.Position;
    }

    private static PageInfo Compress(ByteWriter scratch, ReadOnlySpan<byte> raw, BlockCompression codec, long min, long max)
    {
        int at = scratch.Length;
        if (!FormatV1.TryCompress(codec, raw, scratch))
        {
            scratch.Write(raw);
        }

        int stored = scratch.Length - at;
        return new PageInfo(at, stored, raw.Length, Crc32C.Compute(scratch.Slice(at, stored)), min, max);
    }

    private static void WritePageEntry(ByteWriter w, PageInfo p, bool stats)
    {
        w.WriteVarint((ulong)p.Raw);
        w.WriteVarint((ulong)p.Stored);
        w.WriteU32(p.Crc);
        if (stats)
        {
            w.WriteZigzag(p.Min);
            w.WriteZigzag(p.Max);
        }
    }

    private static PageInfo ReadPageEntry(ref ByteReader r, ref int offset, bool stats)
    {
        int raw = r.ReadCount(MaxRawBytes);
        int stored = r.ReadCount(MaxRawBytes);
        if (stored > raw)
        {
            throw r.Corrupt($"page stores {stored} bytes for {raw} raw bytes");
        }

        uint crc = r.ReadU32();
        long min = stats ? r.ReadZigzag() : 0, max = stats ? r.ReadZigzag() : 0;
        var p = new PageInfo(offset, stored, raw, crc, min, max);
        offset += stored;
        return p;
    }
}

/// <summary>A set of pages of one column, as sorted distinct page numbers.</summary>
internal static class PageSets
{
    /// <summary>The pages holding any row in <paramref name="rows"/> (ascending row ranges [from, to)).</summary>
    public static List<int> ForRows(ColumnPageIndex index, IEnumerable<(int From, int To)> rows)
    {
        var pages = new List<int>();
        foreach (var (from, to) in rows)
        {
            if (to <= from)
            {
                continue;
            }

            int first = index.PageOf(from), last = index.PageOf(Math.Min(to, index.Rows) - 1);
            for (int p = pages.Count > 0 ? Math.Max(first, pages[^1] + 1) : first; p <= last; p++)
            {
                pages.Add(p);
            }
        }

        return pages;
    }
}

/// <summary>Decodes one data page into a <see cref="SparseColumn"/> at its rows.</summary>
internal static class SparsePages
{
    public static void Place(SparseColumn sparse, int page, ReadOnlySpan<byte> raw, string objectKey, long absoluteOffset)
    {
        var index = sparse.Index;
        int col = index.Column;
        int first = index.FirstRow(page), n = index.RowCount(page);
        var kind = Col.Kind(col);
        int width = kind switch
        {
            ColumnKind.Byte => 1,
            ColumnKind.Fixed8 => 8,
            ColumnKind.Fixed16 => 16,
            _ => 0,
        };
        if (width > 0)
        {
            if (raw.Length != n * width)
            {
                throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(col)}: page {page} holds {raw.Length} bytes for {n} rows of {width}");
            }

            raw.CopyTo(sparse.Positional.AsSpan(first * width));
            return;
        }

        var r = new ByteReader(raw, objectKey, absoluteOffset, Col.Name(col));
        if (kind == ColumnKind.Dict)
        {
            var dr = new ByteReader(sparse.Dictionary ?? throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(col)}: page {page} read before its dictionary"), objectKey, absoluteOffset, Col.Name(col));
            int entries = dr.ReadCount(sparse.Dictionary.Length);
            for (int i = 0; i < n; i++)
            {
                ulong id = r.ReadVarint();
                if (id >= (ulong)entries)
                {
                    throw r.Corrupt($"row {first + i} refers to dictionary entry {id} of {entries}");
                }

                sparse.Ids![first + i] = (int)id;
            }
        }
        else
        {
            bool zig = kind == ColumnKind.Zigzag;
            for (int i = 0; i < n; i++)
            {
                sparse.Longs![first + i] = zig ? r.ReadZigzag() : (long)Math.Min(r.ReadVarint(), long.MaxValue);
            }
        }

        if (!r.End)
        {
            throw r.Corrupt($"page {page} has {r.Remaining} bytes after its {n} rows");
        }
    }
}
