using System.Buffers.Binary;

namespace Rubato.Storage.Encoding.V1;

/// <summary>One data page of a paged column chunk (<see cref="ColumnPageIndex"/>).</summary>
/// <param name="Offset">Start of the page's stored bytes, relative to the chunk start.</param>
/// <param name="Stored">Stored bytes; equal to <paramref name="Raw"/> when the page is kept uncompressed.</param>
/// <param name="Raw">Uncompressed bytes.</param>
/// <param name="Crc">CRC-32C of the stored bytes.</param>
/// <param name="Min">Smallest value (Zigzag columns, once the stats section was read; else <see cref="long.MinValue"/>).</param>
/// <param name="Max">Largest value (Zigzag columns, once the stats section was read; else <see cref="long.MaxValue"/>).</param>
public readonly record struct PageInfo(int Offset, int Stored, int Raw, uint Crc, long Min, long Max);

/// <summary>
/// What the footer (and the row-group directory) records of a revision-3 column chunk besides its extent: enough to
/// compute where every part of the chunk is without reading it. Entry <c>p</c> is at
/// <see cref="EntryOffset"/>(p) = header length + 12·p; the stats section follows the P entries; the pages region
/// (dictionary page, then data pages) follows the stats section.
/// </summary>
/// <param name="Rows">Values of the column in the row group.</param>
/// <param name="RowsPerPage">Rows per data page R (≥ 1); page p holds rows [p·R, min((p+1)·R, rows)).</param>
/// <param name="StatsLength">Bytes of the min/max section including its CRC (0 without stats or pages).</param>
public readonly record struct ChunkShape(int Rows, int RowsPerPage, int StatsLength)
{
    /// <summary>P = ceil(rows / R).</summary>
    public int PageCount => Rows <= 0 || RowsPerPage <= 0 ? 0 : ((Rows - 1) / RowsPerPage) + 1; // an implausible shape has none; ShapeFits rejects it

    /// <summary>Fixed header bytes of a chunk of <paramref name="column"/>: 24, plus the 12-byte dictionary entry for dictionary columns, plus the header CRC.</summary>
    public static int HeaderLength(int column) =>
        ColumnPages.FixedHeaderSize + ((uint)column < Col.Count && Col.Kind(column) == ColumnKind.Dict ? ColumnPages.EntrySize : 0) + 4;

    /// <summary>Offset of page entry <paramref name="page"/> in the chunk (page = P gives the stats section's offset).</summary>
    public long EntryOffset(int column, int page) => HeaderLength(column) + ((long)ColumnPages.EntrySize * page);

    public long StatsOffset(int column) => EntryOffset(column, PageCount);

    /// <summary>Offset of the pages region (dictionary page first) in the chunk.</summary>
    public long PagesOffset(int column) => StatsOffset(column) + StatsLength;

    public int PageOf(int row) => row / RowsPerPage;
}

/// <summary>
/// The page index of a revision-3 column chunk, as much of it as was read: the fixed header (codec, rows, rows per
/// page, dictionary entry) always; page entries (extent, raw length, CRC) for the pages read or all of them; and the
/// min/max stats section when a range filter asked for it. Row <c>r</c> of the column is in page <c>r / RowsPerPage</c>.
/// </summary>
/// <remarks>
/// Entries are fixed-width and carry no CRC of their own when read one by one (the header's entries CRC covers all of
/// them and is checked when they are read together). A damaged entry is still caught before any of its bytes are
/// used: a wrong stored end gives the page (and its neighbour) a wrong extent, so its CRC-32C over the bytes read
/// fails (or the extent falls outside the chunk or runs backwards); a wrong CRC fails the same check; a wrong raw
/// length makes the page inflate to another length (or, for a page kept raw, makes stored ≠ raw so the bytes are
/// inflated and fail), and the page decoder checks that the page holds exactly its rows. Every failure is a
/// <see cref="BlockCorruptException"/> naming the object key, the absolute offset of the entry or page, and the column.
/// </remarks>
public sealed class ColumnPageIndex
{
    private readonly uint[] _end;
    private readonly int[] _raw;
    private readonly uint[] _crc;
    private readonly bool[] _known;
    private long[]? _min;
    private long[]? _max;
    private readonly string _key;
    private readonly long _chunkAt;
    private readonly uint _entriesCrc;

    internal ColumnPageIndex(int column, BlockCompression codec, ChunkShape shape, int chunkLength, PageInfo? dictionary, bool hasStats, uint entriesCrc, string objectKey, long chunkAt)
    {
        Column = column;
        Codec = codec;
        Shape = shape;
        ChunkLength = chunkLength;
        Dictionary = dictionary;
        HasStats = hasStats;
        _entriesCrc = entriesCrc;
        _key = objectKey;
        _chunkAt = chunkAt;
        int p = shape.PageCount;
        _end = new uint[p];
        _raw = new int[p];
        _crc = new uint[p];
        _known = new bool[p];
        Pages = new PageList(this);
    }

    public int Column { get; }

    public BlockCompression Codec { get; }

    public ChunkShape Shape { get; }

    public int ChunkLength { get; }

    /// <summary>Values (rows) in the column chunk.</summary>
    public int Rows => Shape.Rows;

    /// <summary>Rows per data page (the last page may hold fewer); at least 1.</summary>
    public int RowsPerPage => Shape.RowsPerPage;

    public int PageCount => Shape.PageCount;

    /// <summary>Bytes of the fixed header (including the dictionary entry and the header CRC).</summary>
    public int HeaderLength => ChunkShape.HeaderLength(Column);

    /// <summary>Offset of the pages region (the dictionary page, or page 0) in the chunk.</summary>
    public int PagesOffset => (int)Shape.PagesOffset(Column);

    /// <summary>Bytes of header, entries and stats: what a whole read of the index fetches.</summary>
    public int IndexLength => PagesOffset;

    /// <summary>The dictionary page of a <see cref="ColumnKind.Dict"/> column; null for other kinds.</summary>
    public PageInfo? Dictionary { get; }

    /// <summary>
    /// Every page, by number. Reading an entry that was not loaded throws <see cref="InvalidOperationException"/>;
    /// Min/Max are the stats when they were loaded and the unbounded range otherwise.
    /// </summary>
    public IReadOnlyList<PageInfo> Pages { get; }

    /// <summary>Whether the column has a min/max stats section (Zigzag columns: times, durations, int attributes).</summary>
    public bool HasStats { get; }

    /// <summary>Whether the stats section was read.</summary>
    public bool StatsLoaded => _min is not null;

    public int PageOf(int row) => row / RowsPerPage;

    public int FirstRow(int page) => page * RowsPerPage;

    public int RowCount(int page) => Math.Min(RowsPerPage, Rows - (page * RowsPerPage));

    /// <summary>Whether page <paramref name="page"/>'s extent is known: its entry and the previous one (which holds its start) were read.</summary>
    public bool HasEntry(int page) => _known[page] && (page == 0 || _known[page - 1]);

    /// <summary>The min/max of a page; requires the stats section.</summary>
    public (long Min, long Max) Stats(int page) =>
        _min is null ? throw new InvalidOperationException($"the stats of column {Col.Name(Column)} were not read") : (_min[page], _max![page]);

    /// <summary>
    /// The entry of page <paramref name="page"/> with its extent checked against the chunk: start ≤ end ≤ the pages
    /// region, stored ≤ raw.
    /// </summary>
    public PageInfo Page(int page)
    {
        if (!HasEntry(page))
        {
            throw new InvalidOperationException($"the entry of page {page} of column {Col.Name(Column)} was not read");
        }

        long start = page == 0 ? (Dictionary?.Stored ?? 0) : _end[page - 1];
        long end = _end[page];
        long region = ChunkLength - PagesOffset;
        if (end < start || end > region || end - start > _raw[page])
        {
            throw new BlockCorruptException(_key, _chunkAt + Shape.EntryOffset(Column, page), $"column {Col.Name(Column)}: page {page} entry [{start}, {end}) raw {_raw[page]} does not fit the {region}-byte pages region");
        }

        return new PageInfo(
            PagesOffset + (int)start,
            (int)(end - start),
            _raw[page],
            _crc[page],
            _min?[page] ?? long.MinValue,
            _max?[page] ?? long.MaxValue);
    }

    /// <summary>Loads entries <paramref name="first"/>.. from their bytes (12 per entry) read at <paramref name="absoluteOffset"/>.</summary>
    internal void LoadEntries(int first, ReadOnlySpan<byte> bytes, long absoluteOffset)
    {
        if (bytes.Length % ColumnPages.EntrySize != 0 || first < 0 || first + (bytes.Length / ColumnPages.EntrySize) > PageCount)
        {
            throw new BlockCorruptException(_key, absoluteOffset, $"column {Col.Name(Column)}: {bytes.Length} entry bytes from page {first} do not fit {PageCount} pages");
        }

        for (int i = 0, p = first; i < bytes.Length; i += ColumnPages.EntrySize, p++)
        {
            uint end = BinaryPrimitives.ReadUInt32LittleEndian(bytes[i..]);
            uint raw = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(i + 4)..]);
            if (raw > ColumnPages.MaxRawBytes)
            {
                throw new BlockCorruptException(_key, absoluteOffset + i, $"column {Col.Name(Column)}: page {p} raw length {raw} is implausible");
            }

            _end[p] = end;
            _raw[p] = (int)raw;
            _crc[p] = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(i + 8)..]);
            _known[p] = true;
        }
    }

    /// <summary>Loads every entry and checks them against the header's entries CRC and the chunk's extent.</summary>
    internal void LoadAllEntries(ReadOnlySpan<byte> bytes, long absoluteOffset)
    {
        if (bytes.Length != ColumnPages.EntrySize * PageCount || Crc32C.Compute(bytes) != _entriesCrc)
        {
            throw new BlockCorruptException(_key, absoluteOffset, $"column {Col.Name(Column)}: page entries CRC-32C mismatch");
        }

        LoadEntries(0, bytes, absoluteOffset);
        for (int p = 0; p < PageCount; p++)
        {
            Page(p); // every extent in order and inside the chunk
        }

        long last = PageCount == 0 ? (Dictionary?.Stored ?? 0) : _end[PageCount - 1];
        if (PagesOffset + last != ChunkLength)
        {
            throw new BlockCorruptException(_key, absoluteOffset, $"column {Col.Name(Column)}: pages end at {PagesOffset + last}, the chunk has {ChunkLength} bytes");
        }
    }

    /// <summary>Loads the stats section (P × (zigzag min, zigzag max), u32 CRC-32C).</summary>
    internal void LoadStats(ReadOnlySpan<byte> bytes, long absoluteOffset)
    {
        string what = $"column {Col.Name(Column)} stats";
        if (bytes.Length != Shape.StatsLength || bytes.Length < 4 || Crc32C.Compute(bytes[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..]))
        {
            throw new BlockCorruptException(_key, absoluteOffset, $"{what}: CRC-32C mismatch");
        }

        var r = new ByteReader(bytes[..^4], _key, absoluteOffset, what);
        var min = new long[PageCount];
        var max = new long[PageCount];
        for (int p = 0; p < PageCount; p++)
        {
            min[p] = r.ReadZigzag();
            max[p] = r.ReadZigzag();
        }

        if (!r.End)
        {
            throw r.Corrupt($"{r.Remaining} bytes after the last page's min/max");
        }

        _max = max;
        _min = min;
    }

    private sealed class PageList(ColumnPageIndex index) : IReadOnlyList<PageInfo>
    {
        public PageInfo this[int page] => index.Page(page);

        public int Count => index.PageCount;

        public IEnumerator<PageInfo> GetEnumerator()
        {
            for (int p = 0; p < Count; p++)
            {
                yield return index.Page(p);
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>
/// Writer and reader of revision-3 (paged, fixed-width entries) column chunks; docs/block-format.md §2 has the byte
/// layout. A chunk is its fixed header, P page entries of 12 bytes, the min/max section, then the dictionary page
/// (dictionary columns) and the data pages. Every page is compressed on its own (kept raw when that is not smaller)
/// and carries its own CRC in its entry, so any subset of pages — and of entries — can be range-read and verified
/// without the rest of the chunk.
/// </summary>
public static class ColumnPages
{
    /// <summary>codec u8, flags u8, reserved u16, rows u32, R u32, P u32, stats length u32, entries CRC u32.</summary>
    public const int FixedHeaderSize = 24;

    /// <summary>Page entry: u32 cumulative stored end, u32 raw length, u32 CRC-32C (also the dictionary entry's size).</summary>
    public const int EntrySize = 12;

    private const byte FlagDictionary = 1;
    private const byte FlagStats = 2;

    /// <summary>Largest raw page or dictionary the reader accepts (corrupt lengths fail before allocating).</summary>
    internal const int MaxRawBytes = 1 << 30;

    /// <summary>
    /// Rows per page for a column of <paramref name="rows"/> rows over <paramref name="valueBytes"/> raw bytes (about
    /// <paramref name="storedBytes"/> once compressed) in a row group of <paramref name="traces"/> traces: about
    /// <paramref name="options"/>.TracesPerPage traces' rows, but pages of at least MinPageStoredBytes stored (a column
    /// that compresses to little gains nothing from small pages and would pay their index entries and lost compression)
    /// and at most PageSizeBytes raw.
    /// </summary>
    /// <remarks>
    /// Columns that scans never read page by page (<see cref="ReadByPages"/> false: counts, attribute keys and types,
    /// blobs, flags, dropped counts) get the largest pages, PageSizeBytes raw: small pages would only cost them
    /// compression and entries.
    /// </remarks>
    public static int RowsPerPage(int column, int rows, int valueBytes, long storedBytes, int traces, BlockBuilderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (ReadByPages(column) || rows <= 0)
        {
            return RowsPerPage(rows, valueBytes, storedBytes, traces, options);
        }

        return (int)Math.Clamp((long)rows * options.PageSizeBytes / Math.Max(1, valueBytes), 1, rows);
    }

    /// <summary>
    /// Whether scans read the column page by page (the search fill pass, the <c>duration</c> filter): the trace
    /// fields, <c>resource.service_name</c>, scope name/version, the span, event and link fields returned, and the
    /// string/int/double attribute value columns. Every other column is read whole wherever it is read.
    /// </summary>
    public static bool ReadByPages(int column)
    {
        switch (column)
        {
            case Col.TraceId or Col.TraceStart or Col.TraceEndDelta or Col.TraceRootService or Col.TraceRootSpanName
                or Col.ResourceServiceName or Col.ScopeName or Col.ScopeVersion
                or Col.SpanId or Col.SpanParentId or Col.SpanName or Col.SpanKind or Col.SpanStartDelta or Col.SpanDuration
                or Col.SpanStatusCode or Col.SpanStatusMessage or Col.EventName or Col.EventTimeDelta
                or Col.LinkTraceId or Col.LinkSpanId:
                return true;
            default:
                int which = (column - Col.AttrBase) % Col.AttrColumnsPerLevel;
                return column >= Col.AttrBase && which is Col.AttrString or Col.AttrInt or Col.AttrDouble;
        }
    }

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
    /// Writes one paged column chunk into <paramref name="output"/>: header, entries, stats, dictionary page, data
    /// pages. <paramref name="values"/> holds <paramref name="rows"/> values laid out per <see cref="Col.Kind"/>.
    /// </summary>
    /// <returns>The chunk's shape (the footer records it so readers can locate entries without reading the header).</returns>
    public static ChunkShape Write(
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

        // Pages are compressed into scratch first: the entries in front of them need their stored lengths.
        scratch.Clear();
        var (dictStored, dictRaw, dictCrc) = isDict ? Compress(scratch, dictionary, codec) : default;
        var entries = new ByteWriter(Math.Max(16, pageCount * EntrySize));
        var statBytes = new ByteWriter(stats ? Math.Max(16, pageCount * 4) : 16);
        int pos = 0;
        for (int p = 0; p < pageCount; p++)
        {
            int n = Math.Min(rowsPerPage, rows - (p * rowsPerPage));
            int end = SkipRows(kind, values, pos, n, out long min, out long max, column);
            var (_, raw, crc) = Compress(scratch, values[pos..end], codec);
            entries.WriteU32((uint)scratch.Length); // cumulative: the dictionary page is the first bytes of scratch
            entries.WriteU32((uint)raw);
            entries.WriteU32(crc);
            if (stats)
            {
                statBytes.WriteZigzag(min);
                statBytes.WriteZigzag(max);
            }

            pos = end;
        }

        if (pos != values.Length)
        {
            throw new InvalidOperationException($"column {Col.Name(column)}: {values.Length - pos} bytes after {rows} rows");
        }

        if (stats && pageCount > 0)
        {
            statBytes.WriteU32(Crc32C.Compute(statBytes.WrittenSpan));
        }
        else
        {
            statBytes.Clear();
        }

        int headerAt = output.Length;
        output.WriteByte((byte)codec);
        output.WriteByte((byte)((isDict ? FlagDictionary : 0) | (stats ? FlagStats : 0)));
        output.WriteU16(0);
        output.WriteU32((uint)rows);
        output.WriteU32((uint)rowsPerPage);
        output.WriteU32((uint)pageCount);
        output.WriteU32((uint)statBytes.Length);
        output.WriteU32(Crc32C.Compute(entries.WrittenSpan));
        if (isDict)
        {
            output.WriteU32((uint)dictStored);
            output.WriteU32((uint)dictRaw);
            output.WriteU32(dictCrc);
        }

        output.WriteU32(Crc32C.Compute(output.Slice(headerAt, output.Length - headerAt)));
        output.Write(entries.WrittenSpan);
        output.Write(statBytes.WrittenSpan);
        output.Write(scratch.WrittenSpan);
        return new ChunkShape(rows, rowsPerPage, statBytes.Length);
    }

    /// <summary>Whether a directory's shape is plausible for a chunk of <paramref name="chunkLength"/> bytes (rows ≥ 0, R ≥ 1, the index inside the chunk).</summary>
    public static bool ShapeFits(int column, ChunkShape shape, int chunkLength) =>
        shape.Rows >= 0 && shape.RowsPerPage >= 1 && shape.StatsLength >= 0 && shape.PagesOffset(column) <= chunkLength;

    /// <summary>
    /// Parses and verifies a chunk's fixed header (<see cref="ChunkShape.HeaderLength"/> bytes) against the
    /// <paramref name="shape"/> the footer or row-group directory records; entries and stats are not loaded.
    /// </summary>
    /// <param name="absoluteOffset">Offset of the chunk in the data object, for error messages.</param>
    public static ColumnPageIndex ParseHeader(ReadOnlySpan<byte> header, int column, ChunkShape shape, int chunkLength, string objectKey, long absoluteOffset)
    {
        string what = $"column {Col.Name(column)} page header";
        int length = ChunkShape.HeaderLength(column);
        if (header.Length != length)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"{what}: {header.Length} bytes, expected {length}");
        }

        if (Crc32C.Compute(header[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(header[^4..]))
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
        if (isDict != (Col.Kind(column) == ColumnKind.Dict) || stats != (Col.Kind(column) == ColumnKind.Zigzag) || r.ReadU16() != 0)
        {
            throw r.Corrupt($"flags {flags} do not match the column kind");
        }

        var own = new ChunkShape((int)Math.Min(r.ReadU32(), int.MaxValue), (int)Math.Min(r.ReadU32(), int.MaxValue), 0);
        uint pages = r.ReadU32();
        own = own with { StatsLength = (int)Math.Min(r.ReadU32(), int.MaxValue) };
        uint entriesCrc = r.ReadU32();
        if (own != shape || own.RowsPerPage < 1 || pages != own.PageCount)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"{what}: rows {own.Rows}, {own.RowsPerPage} per page, {pages} pages, {own.StatsLength}-byte stats do not match the directory's {shape}");
        }

        if (own.PagesOffset(column) > chunkLength || (own.StatsLength > 0) != (stats && pages > 0))
        {
            throw r.Corrupt($"{pages} entries and {own.StatsLength} stats bytes do not fit the {chunkLength}-byte chunk");
        }

        PageInfo? dict = null;
        if (isDict)
        {
            int stored = (int)Math.Min(r.ReadU32(), int.MaxValue), raw = (int)Math.Min(r.ReadU32(), int.MaxValue);
            uint crc = r.ReadU32();
            if (stored > raw || raw > MaxRawBytes || stored > chunkLength - own.PagesOffset(column))
            {
                throw r.Corrupt($"dictionary page stores {stored} bytes for {raw} raw bytes");
            }

            dict = new PageInfo((int)own.PagesOffset(column), stored, raw, crc, 0, 0);
        }

        return new ColumnPageIndex(column, codec, own, chunkLength, dict, stats, entriesCrc, objectKey, absoluteOffset);
    }

    /// <summary>
    /// Parses and verifies a whole page index (the chunk's first <see cref="ChunkShape.PagesOffset"/> bytes: header,
    /// every entry, stats).
    /// </summary>
    public static ColumnPageIndex ParseIndex(ReadOnlySpan<byte> index, int column, ChunkShape shape, int chunkLength, string objectKey, long absoluteOffset)
    {
        int header = ChunkShape.HeaderLength(column);
        if (!ShapeFits(column, shape, chunkLength))
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: {shape} does not fit the {chunkLength}-byte chunk");
        }

        long statsAt = shape.StatsOffset(column), pagesAt = shape.PagesOffset(column);
        if (index.Length != pagesAt)
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)} page index: {index.Length} bytes, expected {pagesAt}");
        }

        var parsed = ParseHeader(index[..header], column, shape, chunkLength, objectKey, absoluteOffset);
        parsed.LoadAllEntries(index[header..(int)statsAt], absoluteOffset + header);
        if (parsed.HasStats && parsed.PageCount > 0)
        {
            parsed.LoadStats(index[(int)statsAt..], absoluteOffset + statsAt);
        }

        return parsed;
    }

    /// <summary>
    /// Verifies and inflates a whole chunk into one array laid out as revision 1 had it: the dictionary (dictionary
    /// columns) followed by every page's values.
    /// </summary>
    public static byte[] ReadWhole(ReadOnlySpan<byte> chunk, int column, ChunkShape shape, string objectKey, long absoluteOffset, out ColumnPageIndex index)
    {
        if (!ShapeFits(column, shape, chunk.Length))
        {
            throw new BlockCorruptException(objectKey, absoluteOffset, $"column {Col.Name(column)}: {shape} does not fit the {chunk.Length}-byte chunk");
        }

        long pagesAt = shape.PagesOffset(column);

        index = ParseIndex(chunk[..(int)pagesAt], column, shape, chunk.Length, objectKey, absoluteOffset);
        long total = index.Dictionary?.Raw ?? 0;
        for (int p = 0; p < index.PageCount; p++)
        {
            total += index.Page(p).Raw;
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

        for (int p = 0; p < index.PageCount; p++)
        {
            var page = index.Page(p);
            Inflate(chunk.Slice(page.Offset, page.Stored), page, index.Codec, raw.AsSpan(at, page.Raw), objectKey, absoluteOffset + page.Offset, column);
            at += page.Raw;
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

    private static (int Stored, int Raw, uint Crc) Compress(ByteWriter scratch, ReadOnlySpan<byte> raw, BlockCompression codec)
    {
        int at = scratch.Length;
        if (!FormatV1.TryCompress(codec, raw, scratch))
        {
            scratch.Write(raw);
        }

        int stored = scratch.Length - at;
        return (stored, raw.Length, Crc32C.Compute(scratch.Slice(at, stored)));
    }
}

/// <summary>A set of pages of one column, as sorted distinct page numbers.</summary>
internal static class PageSets
{
    /// <summary>The pages holding any row in <paramref name="rows"/> (ascending row ranges [from, to)).</summary>
    /// <remarks>Needs only the chunk's shape (from the footer), so pages are chosen before anything of the chunk is read.</remarks>
    public static List<int> ForRows(ChunkShape shape, IEnumerable<(int From, int To)> rows)
    {
        var pages = new List<int>();
        foreach (var (from, to) in rows)
        {
            if (to <= from)
            {
                continue;
            }

            int first = shape.PageOf(from), last = shape.PageOf(Math.Min(to, shape.Rows) - 1);
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
