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
