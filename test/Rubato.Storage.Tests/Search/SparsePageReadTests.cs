using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Xunit;

namespace Rubato.Storage.Tests.Search;

/// <summary>
/// <see cref="BackendBlockV1.ReadPagesAsync"/> on revision-3 chunks: a sparse read fetches the header, the entries that
/// locate the wanted pages and those pages, nothing else; a damaged entry, page or header is a
/// <see cref="BlockCorruptException"/> naming the column and the offset.
/// </summary>
public sealed class SparsePageReadTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task ReadPagesAsync_SomePages_ReadsExactlyHeadersEntriesAndPages()
    {
        var (block, rg, full) = await WriteAsync();
        var duration = full.PageIndex(Col.SpanDuration)!;
        var name = full.PageIndex(Col.SpanName)!;
        Assert.True(duration.PageCount > 20 && name.PageCount > 8, $"{duration.PageCount} / {name.PageCount} pages");

        // No coalescing: every extent is its own request, so bytes and requests can be counted exactly.
        var store = new RangeRecordingStore(new LocalObjectStore(_dir.Path), readCoalesceGapBytes: -1);
        var reader = new BackendBlockV1(block.Meta, store);
        var cols = new RowGroupColumns(rg);
        await reader.ReadPagesAsync(rg, [(Col.SpanDuration, [3, 4, 17]), (Col.SpanName, [0, 6])], cols, CancellationToken.None);

        // Round 1: each header; entries 2..4 and 16..17 of span.duration, 0 and 5..6 of span.name (a page's start is
        // the previous entry's end; page 0 starts after the dictionary page, whose entry is in the header).
        // Round 2: the five pages and span.name's dictionary page.
        long expected = ChunkShape.HeaderLength(Col.SpanDuration) + ChunkShape.HeaderLength(Col.SpanName)
            + (ColumnPages.EntrySize * (3 + 2 + 1 + 2))
            + duration.Page(3).Stored + duration.Page(4).Stored + duration.Page(17).Stored
            + name.Dictionary!.Value.Stored + name.Page(0).Stored + name.Page(6).Stored;
        Assert.Equal(expected, cols.BytesRead);
        Assert.Equal(expected, store.Ranges.Sum(r => (long)r.Length));
        Assert.Equal(2 + 4 + 6, cols.Reads);

        var sparse = cols.Sparse(Col.SpanDuration)!;
        var whole = await WholeZigzagAsync(block, rg, Col.SpanDuration);
        foreach (int p in new[] { 3, 4, 17 })
        {
            for (int r = duration.FirstRow(p); r < duration.FirstRow(p) + duration.RowCount(p); r++)
            {
                Assert.Equal(whole[r], sparse.Longs![r]);
            }
        }

        Assert.False(sparse.Loaded[5]);
        Assert.False(sparse.Index.HasEntry(10));
        Assert.Throws<InvalidOperationException>(() => sparse.Index.Page(10));
    }

    [Fact]
    public async Task ReadPagesAsync_StoreGap_IndexExtentsCoalescedAcrossAnEighthOfIt()
    {
        var (block, rg, full) = await WriteAsync();
        var duration = full.PageIndex(Col.SpanDuration)!;
        int header = ChunkShape.HeaderLength(Col.SpanDuration);
        var (p3, p40) = (duration.Page(3), duration.Page(40));
        Assert.True(p40.Offset - (p3.Offset + p3.Stored) > 800, "pages 3 and 40 must be more than the store's gap apart");

        // Store gap 800, index gap 100: entries 2..3 start 24 bytes after the header (one request with it); entries
        // 39..40 start 420 bytes after them (a request of their own, though within the store's gap).
        var store = new RangeRecordingStore(new LocalObjectStore(_dir.Path), readCoalesceGapBytes: 800);
        var cols = new RowGroupColumns(rg);
        await new BackendBlockV1(block.Meta, store).ReadPagesAsync(rg, [(Col.SpanDuration, [3, 40])], cols, CancellationToken.None);

        Assert.Equal(header + (4 * ColumnPages.EntrySize) + (2 * ColumnPages.EntrySize) + p3.Stored + p40.Stored, cols.BytesRead);
        Assert.Equal(4, cols.Reads);
    }

    [Fact]
    public async Task ReadPageStatsAsync_ReadsHeaderAndStatsOnly()
    {
        var (block, rg, full) = await WriteAsync();
        var duration = full.PageIndex(Col.SpanDuration)!;
        var store = new RangeRecordingStore(new LocalObjectStore(_dir.Path), readCoalesceGapBytes: -1);
        var cols = new RowGroupColumns(rg);
        await new BackendBlockV1(block.Meta, store).ReadPageStatsAsync(rg, [Col.SpanDuration], cols, CancellationToken.None);

        Assert.Equal(ChunkShape.HeaderLength(Col.SpanDuration) + duration.Shape.StatsLength, cols.BytesRead);
        var index = cols.PageIndex(Col.SpanDuration)!;
        for (int p = 0; p < index.PageCount; p++)
        {
            Assert.Equal(duration.Stats(p), index.Stats(p));
        }
    }

    [Theory]
    [InlineData(0)] // cumulative stored end
    [InlineData(4)] // raw length
    [InlineData(8)] // CRC-32C
    public async Task ReadPagesAsync_DamagedEntryField_ThrowsNamingColumnAndPageOffset(int field)
    {
        var (block, rg, full) = await WriteAsync();
        var index = full.PageIndex(Col.SpanStartDelta)!;
        const int page = 7;
        long chunkAt = rg.Offset + rg.Columns[Col.SpanStartDelta].Offset;
        long entryAt = chunkAt + index.Shape.EntryOffset(Col.SpanStartDelta, page);
        await PatchU32Async(block, entryAt + field, v => field switch
        {
            0 => v - 1, // the page's extent ends a byte early: still inside the chunk, so only its CRC can tell
            4 => v + 1,
            _ => v ^ 1,
        });

        var e = await Assert.ThrowsAsync<BlockCorruptException>(() => ReadAsync(block, rg, Col.SpanStartDelta, page));

        // A wrong end or CRC fails the page's CRC; a wrong raw length makes it inflate to another length. Either way the
        // error is at the page (whose start, from entry 6, is intact).
        Assert.Equal(chunkAt + index.Page(page).Offset, e.Offset);
        Assert.Contains("span.start_delta", e.Message, StringComparison.Ordinal);
        Assert.Contains(field == 4 ? "inflate" : "CRC-32C", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadPagesAsync_DamagedPageByte_ThrowsAtPage()
    {
        var (block, rg, full) = await WriteAsync();
        var page = full.PageIndex(Col.SpanId)!.Page(5);
        long at = rg.Offset + rg.Columns[Col.SpanId].Offset + page.Offset;
        await FlipAsync(block, at + (page.Stored / 2), 0x40);

        var e = await Assert.ThrowsAsync<BlockCorruptException>(() => ReadAsync(block, rg, Col.SpanId, 5));
        Assert.Equal(at, e.Offset);
        Assert.Contains("span.id", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadPagesAsync_DamagedHeader_ThrowsAtChunk()
    {
        var (block, rg, _) = await WriteAsync();
        long chunkAt = rg.Offset + rg.Columns[Col.SpanName].Offset;
        await FlipAsync(block, chunkAt + 9, 0x02); // a byte of rows per page

        var e = await Assert.ThrowsAsync<BlockCorruptException>(() => ReadAsync(block, rg, Col.SpanName, 2));
        Assert.Equal(chunkAt, e.Offset);
        Assert.Contains("span.name page header", e.Message, StringComparison.Ordinal);
    }

    private async Task<(BackendBlockV1 Block, RowGroupStats RowGroup, RowGroupColumns Full)> WriteAsync()
    {
        var data = SearchDataset.Generate(600, seed: 21);
        var block = await SearchDataset.WriteBlockAsync(new LocalObjectStore(_dir.Path), data, rowGroupBytes: 1 << 24, configure: o =>
        {
            o.TracesPerPage = 4;
            o.MinPageStoredBytes = 1;
        });
        var rg = Assert.Single(await block.GetFooterAsync(CancellationToken.None));
        var full = new RowGroupColumns(rg);
        await block.ReadPageIndexesAsync(rg, [Col.SpanDuration, Col.SpanName, Col.SpanStartDelta, Col.SpanId], full, CancellationToken.None);
        return (block, rg, full);
    }

    /// <summary>Every value of a zigzag column, from a whole-chunk read.</summary>
    private static async Task<long[]> WholeZigzagAsync(BackendBlockV1 block, RowGroupStats rg, int column)
    {
        var raw = (await block.ReadColumnsAsync(rg, [column], null, CancellationToken.None)).Raw(column);
        return Decode(raw, rg.Shapes[column].Rows);

        static long[] Decode(byte[] raw, int rows)
        {
            var r = new ByteReader(raw, "test", 0, "values");
            var values = new long[rows];
            for (int i = 0; i < rows; i++)
            {
                values[i] = r.ReadZigzag();
            }

            Assert.True(r.End);
            return values;
        }
    }

    private async Task ReadAsync(BackendBlockV1 block, RowGroupStats rg, int column, int page)
    {
        var reopened = new BackendBlockV1(block.Meta, new LocalObjectStore(_dir.Path));
        await reopened.ReadPagesAsync(rg, [(column, [page])], new RowGroupColumns(rg), CancellationToken.None);
    }

    private async Task PatchU32Async(BackendBlockV1 block, long offset, Func<uint, uint> patch)
    {
        string path = Path.Combine(_dir.Path, ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName));
        var bytes = await File.ReadAllBytesAsync(path);
        uint v = BitConverter.ToUInt32(bytes, (int)offset);
        BitConverter.TryWriteBytes(bytes.AsSpan((int)offset), patch(v));
        await File.WriteAllBytesAsync(path, bytes);
    }

    private async Task FlipAsync(BackendBlockV1 block, long offset, byte mask)
    {
        string path = Path.Combine(_dir.Path, ObjectKeys.BlockObject(block.Meta.TenantId, block.Meta.BlockId, FormatV1.DataName));
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[offset] ^= mask;
        await File.WriteAllBytesAsync(path, bytes);
    }
}
