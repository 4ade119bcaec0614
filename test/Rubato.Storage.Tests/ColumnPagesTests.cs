using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Xunit;

namespace Rubato.Storage.Tests;

/// <summary>Paged column chunks: the page index's edge cases, decoding, and corruption detection.</summary>
public sealed class ColumnPagesTests
{
    private const string Key = "t/b/data";

    [Theory]
    [InlineData(BlockCompression.Brotli)]
    [InlineData(BlockCompression.Deflate)]
    [InlineData(BlockCompression.None)]
    public void Write_EmptyColumn_HasNoPagesAndReadsEmpty(BlockCompression codec)
    {
        var w = new ByteWriter();
        var shape = ColumnPages.Write(w, Col.SpanDuration, [], [], 0, 1, codec, new ByteWriter());
        var chunk = w.ToArray();
        byte[] raw = ColumnPages.ReadWhole(chunk, Col.SpanDuration, shape, Key, 100, out var index);
        Assert.Empty(raw);
        Assert.Empty(index.Pages);
        Assert.Equal(0, index.Rows);
        Assert.Equal(chunk.Length, shape.PagesOffset(Col.SpanDuration));
    }

    [Fact]
    public void Write_EmptyDictionaryColumn_KeepsItsDictionaryPage()
    {
        var dict = new ByteWriter();
        dict.WriteVarint(0);
        var w = new ByteWriter();
        var shape = ColumnPages.Write(w, Col.SpanName, dict.WrittenSpan, [], 0, 1, BlockCompression.Brotli, new ByteWriter());
        byte[] raw = ColumnPages.ReadWhole(w.WrittenSpan, Col.SpanName, shape, Key, 0, out var index);
        Assert.Equal([0], raw);
        Assert.NotNull(index.Dictionary);
        Assert.Empty(index.Pages);
    }

    [Fact]
    public void Write_VarintRowsAcrossPages_RoundTripsWithRowRangesAndMinMax()
    {
        // 10 zig-zag values of 1..3 bytes, 3 rows per page: pages hold rows [0,3), [3,6), [6,9), [9,10).
        long[] values = [5, -1, 300, 70_000, 0, -70_000, 1, 2, 3, 1_000_000];
        var v = new ByteWriter();
        foreach (long x in values)
        {
            v.WriteZigzag(x);
        }

        var w = new ByteWriter();
        var shape = ColumnPages.Write(w, Col.SpanDuration, [], v.WrittenSpan, values.Length, 3, BlockCompression.Brotli, new ByteWriter());
        byte[] raw = ColumnPages.ReadWhole(w.WrittenSpan, Col.SpanDuration, shape, Key, 0, out var index);
        Assert.Equal(v.ToArray(), raw);
        Assert.Equal(4, index.Pages.Count);
        Assert.Equal(1, index.RowCount(3));
        Assert.Equal(2, index.PageOf(6));
        Assert.True(index.HasStats);
        Assert.Equal((-1L, 300L), (index.Pages[0].Min, index.Pages[0].Max));
        Assert.Equal((-70_000L, 70_000L), (index.Pages[1].Min, index.Pages[1].Max));
        Assert.Equal((1_000_000L, 1_000_000L), (index.Pages[3].Min, index.Pages[3].Max));
    }

    [Fact]
    public void Write_OneRowLargerThanPageTarget_GetsItsOwnPage()
    {
        // A blob row of 10 KiB among tiny ones, one row per page: the big row is one page of its own, not split.
        var v = new ByteWriter();
        v.WriteBytesWithLength([1]);
        v.WriteBytesWithLength(new byte[10 * 1024]);
        v.WriteBytesWithLength([2, 3]);
        int perPage = ColumnPages.RowsPerPage(3, v.Length, v.Length, 1, new BlockBuilderOptions { TracesPerPage = 1, MinPageStoredBytes = 1, PageSizeBytes = 64 });
        Assert.Equal(1, perPage);
        var w = new ByteWriter();
        int blob = Col.Attr(AttrLevel.Span, Col.AttrBlob);
        var shape = ColumnPages.Write(w, blob, [], v.WrittenSpan, 3, perPage, BlockCompression.None, new ByteWriter());
        byte[] raw = ColumnPages.ReadWhole(w.WrittenSpan, blob, shape, Key, 0, out var index);
        Assert.Equal(v.ToArray(), raw);
        Assert.Equal([2, 10 * 1024 + 2, 3], index.Pages.Select(p => p.Raw));
    }

    [Fact]
    public void ReadWhole_FlippedPageByte_ThrowsNamingColumnAndPageOffset()
    {
        var v = new ByteWriter();
        for (int i = 0; i < 1000; i++)
        {
            v.WriteZigzag(i * 7919L);
        }

        var w = new ByteWriter();
        var shape = ColumnPages.Write(w, Col.SpanStartDelta, [], v.WrittenSpan, 1000, 100, BlockCompression.Deflate, new ByteWriter());
        var chunk = w.ToArray();
        int header = (int)shape.PagesOffset(Col.SpanStartDelta);
        var index = ColumnPages.ParseIndex(chunk.AsSpan(0, header), Col.SpanStartDelta, shape, chunk.Length, Key, 500);
        chunk[index.Pages[4].Offset + 1] ^= 0x40;
        var e = Assert.Throws<BlockCorruptException>(() => ColumnPages.ReadWhole(chunk, Col.SpanStartDelta, shape, Key, 500, out _));
        Assert.Equal(500 + index.Pages[4].Offset, e.Offset);
        Assert.Contains("span.start_delta", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseIndex_FlippedIndexByteOrWrongLength_ThrowsTyped()
    {
        var v = new ByteWriter();
        for (int i = 0; i < 50; i++)
        {
            v.WriteByte((byte)i);
        }

        var w = new ByteWriter();
        var shape = ColumnPages.Write(w, Col.SpanKind, [], v.WrittenSpan, 50, 8, BlockCompression.Brotli, new ByteWriter());
        var chunk = w.ToArray();
        int header = (int)shape.PagesOffset(Col.SpanKind);
        Assert.Throws<BlockCorruptException>(() => ColumnPages.ParseIndex(chunk.AsSpan(0, header), Col.SpanKind, shape, chunk.Length + 1, Key, 0));
        Assert.Throws<BlockCorruptException>(() => ColumnPages.ParseIndex(chunk.AsSpan(0, header), Col.SpanDuration, shape, chunk.Length, Key, 0));
        Assert.Throws<BlockCorruptException>(() => ColumnPages.ParseIndex(chunk.AsSpan(0, header), Col.SpanKind, shape with { RowsPerPage = 7 }, chunk.Length, Key, 0));
        chunk[5] ^= 1;
        var e = Assert.Throws<BlockCorruptException>(() => ColumnPages.ParseIndex(chunk.AsSpan(0, header), Col.SpanKind, shape, chunk.Length, Key, 0));
        Assert.Contains("CRC", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>Revision-3 chunks over every column kind: randomized round trips and the computable entry layout.</summary>
public sealed class ColumnPagesRoundTripTests
{
    private const string Key = "t/b/data";

    /// <summary>One column of each <see cref="ColumnKind"/>.</summary>
    public static TheoryData<int> KindColumns() =>
    [
        Col.SpanFlags, // Varint
        Col.SpanDuration, // Zigzag (with min/max)
        Col.SpanKind, // Byte
        Col.SpanId, // Fixed8
        Col.TraceId, // Fixed16
        Col.SpanName, // Dict
        Col.Attr(AttrLevel.Span, Col.AttrBlob), // Blob
    ];

    [Theory]
    [MemberData(nameof(KindColumns))]
    public void Write_RandomRowsAndPageSizes_ReadWholeAndEveryEntryAtItsComputedOffsetRoundTrip(int column)
    {
        var rnd = new Random(column * 7919);
        var kind = Col.Kind(column);
        for (int run = 0; run < 60; run++)
        {
            int rows = run == 0 ? 0 : rnd.Next(1, 400);
            int perPage = rnd.Next(1, rows + 6);
            var codec = (BlockCompression)rnd.Next(0, 3);
            bool compressible = rnd.Next(2) == 0;
            var (dictionary, values, longs) = RandomColumn(rnd, kind, rows, compressible);

            var w = new ByteWriter();
            w.Write(new byte[run % 5]); // the chunk need not start at offset 0 of the writer
            int at = w.Length;
            var shape = ColumnPages.Write(w, column, dictionary, values, rows, perPage, codec, new ByteWriter());
            var chunk = w.WrittenSpan[at..].ToArray();

            Assert.Equal(new ChunkShape(rows, perPage, shape.StatsLength), shape);
            byte[] raw = ColumnPages.ReadWhole(chunk, column, shape, Key, 1000, out var index);
            Assert.Equal([.. dictionary, .. values], raw);
            Assert.Equal(shape.PageCount, index.PageCount);
            Assert.Equal(kind == ColumnKind.Zigzag && rows > 0, shape.StatsLength > 0);

            // Entry p is at HeaderLength + 12·p: its u32 stored end (from the pages region) locates the page.
            int start = index.Dictionary?.Stored ?? 0;
            for (int p = 0; p < index.PageCount; p++)
            {
                long entryAt = shape.EntryOffset(column, p);
                uint end = BitConverter.ToUInt32(chunk, (int)entryAt);
                var page = index.Page(p);
                Assert.Equal(shape.PagesOffset(column) + start, page.Offset);
                Assert.Equal((int)end - start, page.Stored);
                Assert.Equal(BitConverter.ToUInt32(chunk, (int)entryAt + 4), (uint)page.Raw);
                Assert.Equal(BitConverter.ToUInt32(chunk, (int)entryAt + 8), page.Crc);
                if (longs is not null && kind == ColumnKind.Zigzag)
                {
                    var slice = longs.Skip(index.FirstRow(p)).Take(index.RowCount(p)).ToList();
                    Assert.Equal((slice.Min(), slice.Max()), index.Stats(p));
                }

                // Any page alone inflates from its extent.
                var alone = new byte[page.Raw];
                ColumnPages.Inflate(chunk.AsSpan(page.Offset, page.Stored), page, index.Codec, alone, Key, 1000 + page.Offset, column);
                start = (int)end;
            }

            Assert.Equal(chunk.Length, shape.PagesOffset(column) + start);
        }
    }

    [Fact]
    public void ParseHeader_ShapeDiffersFromDirectory_ThrowsNamingColumn()
    {
        var v = new ByteWriter();
        for (int i = 0; i < 40; i++)
        {
            v.WriteZigzag(i);
        }

        var w = new ByteWriter();
        var shape = ColumnPages.Write(w, Col.SpanDuration, [], v.WrittenSpan, 40, 8, BlockCompression.Brotli, new ByteWriter());
        var header = w.WrittenSpan[..ChunkShape.HeaderLength(Col.SpanDuration)].ToArray();

        var e = Assert.Throws<BlockCorruptException>(() => ColumnPages.ParseHeader(header, Col.SpanDuration, shape with { Rows = 41 }, w.Length, Key, 300));
        Assert.Equal(300, e.Offset);
        Assert.Contains("span.duration", e.Message, StringComparison.Ordinal);
        Assert.Equal(40, ColumnPages.ParseHeader(header, Col.SpanDuration, shape, w.Length, Key, 300).Rows);
    }

    [Theory]
    [InlineData(0, 5)] // rows per page 0
    [InlineData(-1, 40)] // negative stats length
    [InlineData(1, 100_000)] // more entries than the chunk holds
    public void ReadWhole_ImplausibleShape_ThrowsTypedBeforeReading(int rowsPerPage, int rows)
    {
        var v = new ByteWriter();
        for (int i = 0; i < 40; i++)
        {
            v.WriteByte((byte)i);
        }

        var w = new ByteWriter();
        var good = ColumnPages.Write(w, Col.SpanKind, [], v.WrittenSpan, 40, 8, BlockCompression.None, new ByteWriter());
        var bad = rowsPerPage < 0 ? good with { StatsLength = -1 } : good with { RowsPerPage = rowsPerPage, Rows = rows };

        var e = Assert.Throws<BlockCorruptException>(() => ColumnPages.ReadWhole(w.WrittenSpan, Col.SpanKind, bad, Key, 64, out _));
        Assert.Equal(64, e.Offset);
        Assert.Contains("span.kind", e.Message, StringComparison.Ordinal);
    }

    private static (byte[] Dictionary, byte[] Values, long[]? Longs) RandomColumn(Random rnd, ColumnKind kind, int rows, bool compressible)
    {
        var v = new ByteWriter();
        var dict = new ByteWriter();
        long[]? longs = kind is ColumnKind.Varint or ColumnKind.Zigzag ? new long[rows] : null;
        int entries = 1 + rnd.Next(20);
        if (kind == ColumnKind.Dict)
        {
            dict.WriteVarint((ulong)entries);
            for (int i = 0; i < entries; i++)
            {
                dict.WriteString(compressible ? $"name-{i}" : Convert.ToHexString(RandomBytes(rnd, rnd.Next(0, 40))));
            }
        }

        for (int r = 0; r < rows; r++)
        {
            switch (kind)
            {
                case ColumnKind.Varint:
                    longs![r] = compressible ? r % 3 : rnd.NextInt64(0, long.MaxValue);
                    v.WriteVarint((ulong)longs[r]);
                    break;
                case ColumnKind.Zigzag:
                    longs![r] = compressible ? (r % 7) - 3 : rnd.NextInt64(long.MinValue, long.MaxValue);
                    v.WriteZigzag(longs[r]);
                    break;
                case ColumnKind.Byte: v.WriteByte(compressible ? (byte)(r % 2) : (byte)rnd.Next(256)); break;
                case ColumnKind.Fixed8: v.Write(compressible ? new byte[8] : RandomBytes(rnd, 8)); break;
                case ColumnKind.Fixed16: v.Write(compressible ? new byte[16] : RandomBytes(rnd, 16)); break;
                case ColumnKind.Dict: v.WriteVarint((ulong)rnd.Next(entries)); break;
                default: v.WriteBytesWithLength(compressible ? new byte[rnd.Next(0, 100)] : RandomBytes(rnd, rnd.Next(0, 300))); break;
            }
        }

        return (dict.ToArray(), v.ToArray(), longs);
    }

    private static byte[] RandomBytes(Random rnd, int n)
    {
        var b = new byte[n];
        rnd.NextBytes(b);
        return b;
    }
}
