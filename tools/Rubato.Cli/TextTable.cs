namespace Rubato.Cli;

/// <summary>Plain aligned text table (no colours: output is often piped). Numeric-looking cells right-aligned.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

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

        WriteRow(w, headers, widths);
        w.WriteLine(string.Join("  ", widths.Select(x => new string('-', x))));
        foreach (var r in _rows)
        {
            WriteRow(w, r, widths);
        }
    }

    private static void WriteRow(TextWriter w, string[] cells, int[] widths)
    {
        var parts = new string[widths.Length];
        for (int i = 0; i < widths.Length; i++)
        {
            string c = i < cells.Length ? cells[i] : string.Empty;
            parts[i] = c.Length > 0 && (char.IsDigit(c[0]) && c.All(ch => char.IsDigit(ch) || ch is '.' or ',')) ? c.PadLeft(widths[i]) : c.PadRight(widths[i]);
        }

        w.WriteLine(string.Join("  ", parts).TrimEnd());
    }
}
