using System.Buffers;

namespace Rubato.Storage.Encoding.V1;

/// <summary>
/// A subset of one row group's columns, decompressed and CRC-checked (what <see cref="BackendBlockV1.ReadColumnsAsync"/>
/// and <see cref="BackendBlockV1.ReadPagesAsync"/> return for scans that read only what a query needs). A column is
/// absent, whole (<see cref="Has"/>: every row, raw bytes as revision 1 laid them out) or sparse
/// (<see cref="Sparse"/>: only some pages decoded, into row-indexed arrays whose other rows are undefined). Further
/// columns and pages can be added to the same instance by later reads.
/// </summary>
/// <remarks>Not thread-safe; one instance per row group scan.</remarks>
public sealed class RowGroupColumns
{
    private readonly byte[]?[] _raw = new byte[]?[Col.Count];
    private readonly SparseColumn?[] _sparse = new SparseColumn?[Col.Count];
    private readonly ColumnPageIndex?[] _pageIndex = new ColumnPageIndex?[Col.Count];

    public RowGroupColumns(RowGroupStats rowGroup)
    {
        RowGroup = rowGroup ?? throw new ArgumentNullException(nameof(rowGroup));
    }

    public RowGroupStats RowGroup { get; }

    /// <summary>Stored bytes fetched from the object store for this row group so far (page indexes included).</summary>
    public long BytesRead { get; internal set; }

    /// <summary>Range requests issued for this row group so far (neighbouring extents are coalesced into one).</summary>
    public int Reads { get; internal set; }

    /// <summary>
    /// <see cref="BytesRead"/> split by column (a coalesced gap between two extents counts for the first one), so a
    /// benchmark can show where a query's bytes go.
    /// </summary>
    public long[] BytesReadByColumn { get; } = new long[Col.Count];

    /// <summary>Whether the whole column was read.</summary>
    public bool Has(int column) => _raw[column] is not null;

    /// <summary>Whether the whole column or some of its pages were read.</summary>
    public bool HasAny(int column) => _raw[column] is not null || _sparse[column] is not null;

    /// <summary>
    /// The raw bytes of a column (layout per <see cref="Col.Kind"/>). For a sparse fixed-width or byte column, a buffer
    /// of at least the full column length holding the read pages at their row positions. Throws when the column was not read,
    /// or is sparse and of a variable-width kind (use <see cref="Sparse"/>).
    /// </summary>
    public byte[] Raw(int column)
    {
        if (_raw[column] is { } r)
        {
            return r;
        }

        if (_sparse[column] is { Positional: { } p })
        {
            return p;
        }

        throw new InvalidOperationException(_sparse[column] is null
            ? $"column {Col.Name(column)} was not read"
            : $"column {Col.Name(column)} was read sparsely and has no contiguous raw form");
    }

    /// <summary>The decoded pages of a sparsely read column; null when the column is whole or absent.</summary>
    public SparseColumn? Sparse(int column) => _raw[column] is null ? _sparse[column] : null;

    /// <summary>The page index of a column, when it was read (always for whole reads).</summary>
    public ColumnPageIndex? PageIndex(int column) => _pageIndex[column];

    /// <summary>Rows per page of a column (from the footer's chunk shape; nothing needs to have been read).</summary>
    public int RowsPerPage(int column) => RowGroup.Shapes[column].RowsPerPage;

    internal void Set(int column, byte[] raw, ColumnPageIndex index)
    {
        _raw[column] = raw;
        _pageIndex[column] = index;
        _sparse[column] = null;
    }

    internal void SetIndex(int column, ColumnPageIndex index) => _pageIndex[column] = index;

    internal SparseColumn SparseFor(int column, ColumnPageIndex index) => _sparse[column] ??= new SparseColumn(index);

    /// <summary>
    /// Returns the sparse columns' row arrays to the shared pools; the instance must not be used afterwards. Callers
    /// that copy out what they need (the search fetcher, once its spansets are built) call this to spare the GC a
    /// few large arrays per row group.
    /// </summary>
    public void ReturnBuffers()
    {
        for (int c = 0; c < _sparse.Length; c++)
        {
            _sparse[c]?.Return();
            _sparse[c] = null;
        }
    }
}

/// <summary>
/// Pages of one column decoded into arrays indexed by row (rows of pages not read hold garbage; arrays may be longer
/// than the column): fixed-width and byte
/// columns as raw bytes at their positions, Varint/Zigzag as longs, dictionary columns as ids plus the dictionary.
/// Blob columns are never read sparsely.
/// </summary>
public sealed class SparseColumn
{
    internal SparseColumn(ColumnPageIndex index)
    {
        // Rented, not cleared: only rows of pages in Loaded are ever read, and those are overwritten when decoded.
        Index = index;
        Loaded = new bool[index.PageCount];
        switch (Col.Kind(index.Column))
        {
            case ColumnKind.Byte: Positional = ArrayPool<byte>.Shared.Rent(Math.Max(1, index.Rows)); break;
            case ColumnKind.Fixed8: Positional = ArrayPool<byte>.Shared.Rent(Math.Max(1, index.Rows * 8)); break;
            case ColumnKind.Fixed16: Positional = ArrayPool<byte>.Shared.Rent(Math.Max(1, index.Rows * 16)); break;
            case ColumnKind.Varint or ColumnKind.Zigzag: Longs = ArrayPool<long>.Shared.Rent(Math.Max(1, index.Rows)); break;
            case ColumnKind.Dict: Ids = ArrayPool<int>.Shared.Rent(Math.Max(1, index.Rows)); break;
            default: throw new ArgumentException($"column {Col.Name(index.Column)} cannot be read sparsely", nameof(index));
        }
    }

    public ColumnPageIndex Index { get; }

    /// <summary>Per page: whether it was read.</summary>
    public bool[] Loaded { get; }

    public byte[]? Positional { get; }

    public long[]? Longs { get; }

    public int[]? Ids { get; }

    /// <summary>The raw dictionary page (dictionary columns), once read.</summary>
    public byte[]? Dictionary { get; internal set; }

    internal void Return()
    {
        if (Positional is not null)
        {
            ArrayPool<byte>.Shared.Return(Positional);
        }

        if (Longs is not null)
        {
            ArrayPool<long>.Shared.Return(Longs);
        }

        if (Ids is not null)
        {
            ArrayPool<int>.Shared.Return(Ids);
        }
    }
}
