namespace Rubato.Cli;

/// <summary>Plain aligned text table (no colours: output is often piped). Numeric-looking cells right-aligned.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    /// <summary>Left-align every cell (key/value tables).</summary>
    public bool LeftAlign { get; init; }

    public void Add(params string[] cells) => _rows.Add(cells);

    public void Write(TextWriter w)
    {
        var widths = headers.Select(h => h.Length).ToArray();
        foreach (var r in _rows)
        {
            for (int i = 0; i < widths.Length && i < r.Length; i++)
            {
                widths[i] = Math.Max(widths[i], r[i].Length);
            }
        }

        WriteRow(w, headers, widths, LeftAlign);
        w.WriteLine(string.Join("  ", widths.Select(x => new string('-', x))));
        foreach (var r in _rows)
        {
            WriteRow(w, r, widths, LeftAlign);
        }
    }

    private static void WriteRow(TextWriter w, string[] cells, int[] widths, bool leftAlign)
    {
        var parts = new string[widths.Length];
        for (int i = 0; i < widths.Length; i++)
        {
            string c = i < cells.Length ? cells[i] : string.Empty;
            parts[i] = !leftAlign && c.Length > 0 && (char.IsDigit(c[0]) && c.All(ch => char.IsDigit(ch) || ch is '.' or ',')) ? c.PadLeft(widths[i]) : c.PadRight(widths[i]);
        }

        w.WriteLine(string.Join("  ", parts).TrimEnd());
    }
}
