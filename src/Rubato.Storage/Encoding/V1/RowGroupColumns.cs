namespace Rubato.Storage.Encoding.V1;

/// <summary>
/// A subset of one row group's column chunks, decompressed and CRC-checked (what <see cref="BackendBlockV1.ReadColumnsAsync"/>
/// returns for scans that read only the columns a query needs). Columns that were not read are null. Further columns
/// can be added to the same instance by a later <see cref="BackendBlockV1.ReadColumnsAsync"/> call.
/// </summary>
/// <remarks>Not thread-safe; one instance per row group scan.</remarks>
public sealed class RowGroupColumns
{
    private readonly byte[]?[] _raw = new byte[]?[Col.Count];

    public RowGroupColumns(RowGroupStats rowGroup)
    {
        RowGroup = rowGroup ?? throw new ArgumentNullException(nameof(rowGroup));
    }

    public RowGroupStats RowGroup { get; }

    /// <summary>Stored (compressed) bytes fetched from the object store for this row group so far.</summary>
    public long BytesRead { get; internal set; }

    /// <summary>Range requests issued for this row group so far (neighbouring chunks are coalesced into one).</summary>
    public int Reads { get; internal set; }

    public bool Has(int column) => _raw[column] is not null;

    /// <summary>The raw bytes of a column (layout per <see cref="Col.Kind"/>); throws when it was not read.</summary>
    public byte[] Raw(int column) => _raw[column] ?? throw new InvalidOperationException($"column {Col.Name(column)} was not read");

    internal void Set(int column, byte[] raw) => _raw[column] = raw;
}
