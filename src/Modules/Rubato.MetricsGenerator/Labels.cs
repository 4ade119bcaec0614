using System.Buffers.Text;
using System.Text;

namespace Rubato.MetricsGenerator;

/// <summary>Prometheus label-name rules, as Tempo applies them (prometheus/util/strutil).</summary>
public static class Labels
{
    /// <summary>The label name every series carries.</summary>
    public const string MetricName = "__name__";

    /// <summary>Label names as Prometheus' data model allows them: <c>[a-zA-Z_][a-zA-Z0-9_]*</c>.</summary>
    public static bool IsValidName(string name)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            return false;
        }

        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// <c>strutil.SanitizeLabelName</c>: every character outside <c>[a-zA-Z0-9_]</c> becomes <c>_</c>
    /// (<c>http.method</c> → <c>http_method</c>). A leading digit is kept, as Prometheus' function does.
    /// </summary>
    public static string Sanitize(string name)
    {
        if (name.Length == 0)
        {
            return name;
        }

        var sb = new StringBuilder(name.Length);
        foreach (char c in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        }

        return sb.ToString();
    }

    /// <summary>
    /// Tempo's <c>SanitizeLabelNameWithCollisions</c>: a sanitized dimension that collides with an intrinsic label
    /// name is prefixed with <c>__</c>.
    /// </summary>
    public static string SanitizeWithCollisions(string name, IReadOnlyCollection<string> reserved)
    {
        string s = Sanitize(name);
        return reserved.Contains(s) ? "__" + s : s;
    }

    /// <summary>Truncates a label name to <paramref name="max"/> characters.</summary>
    public static string TruncateName(string name, int max) => name.Length <= max ? name : name[..max];

    /// <summary>Prometheus' float text for bucket bounds (<c>strconv.FormatFloat(v, 'f', -1, 64)</c>; +Inf for infinity).</summary>
    public static string FormatBound(double v)
    {
        if (double.IsPositiveInfinity(v))
        {
            return "+Inf";
        }

        // Shortest round-trip digits, never in exponent form (Go's 'f' with precision -1).
        string r = v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return r.Contains('E', StringComparison.Ordinal) ? ((decimal)v).ToString(System.Globalization.CultureInfo.InvariantCulture) : r;
    }

    /// <summary>Writes <paramref name="value"/> as decimal UTF-8 into <paramref name="destination"/>; returns bytes written.</summary>
    internal static int FormatInt(long value, Span<byte> destination) =>
        Utf8Formatter.TryFormat(value, destination, out int n) ? n : 0;
}
