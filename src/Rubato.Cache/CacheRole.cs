namespace Rubato.Cache;

/// <summary>Tempo's cache roles (docs/sources/tempo/operations/caching.md): what a configured cache is used for.</summary>
public enum CacheRole
{
    /// <summary><c>bloom</c>: block bloom filters, checked before a trace-by-id lookup touches a block.</summary>
    Bloom,

    /// <summary><c>trace-id-index</c>: the per-block trace id index.</summary>
    TraceIdIndex,

    /// <summary><c>parquet-footer</c>: parquet file footers (schema and row-group metadata).</summary>
    ParquetFooter,

    /// <summary><c>parquet-column-idx</c>: parquet column indexes.</summary>
    ParquetColumnIdx,

    /// <summary><c>parquet-offset-idx</c>: parquet offset indexes.</summary>
    ParquetOffsetIdx,

    /// <summary><c>parquet-page</c>: parquet data pages.</summary>
    ParquetPage,

    /// <summary><c>frontend-search</c>: query-frontend job results (keys <c>sj:</c>, <c>st:</c>, <c>stv:</c>, <c>qr:</c>).</summary>
    FrontendSearch,
}

/// <summary>Converts <see cref="CacheRole"/> to and from the names used in YAML.</summary>
public static class CacheRoles
{
    private static readonly string[] s_names =
        ["bloom", "trace-id-index", "parquet-footer", "parquet-column-idx", "parquet-offset-idx", "parquet-page", "frontend-search"];

    /// <summary>Every role name, in enum order.</summary>
    public static IReadOnlyList<string> Names => s_names;

    public static string ToName(this CacheRole role) => s_names[(int)role];

    public static bool TryParse(string name, out CacheRole role)
    {
        int i = Array.IndexOf(s_names, name.Trim());
        role = (CacheRole)Math.Max(i, 0);
        return i >= 0;
    }
}
