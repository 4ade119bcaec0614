using System.Globalization;
using System.Text;

namespace Rubato.Common.Configuration;

/// <summary>
/// Go's <c>time.Duration</c> text form, which Tempo configs use: <c>300ms</c>, <c>1.5h</c>, <c>2h45m</c>, <c>0</c>.
/// Units: ns, us (µs), ms, s, m, h; Prometheus-style d, w, y are accepted too (Tempo's model.Duration uses them).
/// </summary>
public static class GoDuration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var s = text.Trim();
        if (s.Length == 0)
        {
            return false;
        }

        if (s == "0")
        {
            return true;
        }

        bool negative = false;
        if (s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        double totalNanos = 0;
        int i = 0;
        bool any = false;
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            if (start == i || !double.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                return false;
            }

            int unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }

            double unit = s[unitStart..i] switch
            {
                "ns" => 1,
                "us" or "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "d" => 86400e9,
                "w" => 7 * 86400e9,
                "y" => 365 * 86400e9,
                _ => double.NaN,
            };
            if (double.IsNaN(unit))
            {
                return false;
            }

            totalNanos += number * unit;
            any = true;
        }

        if (!any)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)(totalNanos / 100) * (negative ? -1 : 1));
        return true;
    }

    /// <summary>Formats like Go does (<c>1h0m0s</c>, <c>500ms</c>, <c>0s</c>), for <c>/status/config</c>.</summary>
    public static string Format(TimeSpan t)
    {
        if (t == TimeSpan.Zero)
        {
            return "0s";
        }

        var sb = new StringBuilder();
        if (t < TimeSpan.Zero)
        {
            sb.Append('-');
            t = t.Negate();
        }

        if (t < TimeSpan.FromSeconds(1))
        {
            double ms = t.TotalMilliseconds;
            return sb.Append(ms >= 1 ? ms.ToString("0.###", CultureInfo.InvariantCulture) + "ms" : (t.Ticks * 100).ToString(CultureInfo.InvariantCulture) + "ns").ToString();
        }

        long hours = (long)t.TotalHours;
        if (hours > 0)
        {
            sb.Append(hours).Append('h');
        }

        if (hours > 0 || t.Minutes > 0)
        {
            sb.Append(t.Minutes).Append('m');
        }

        double secs = t.Seconds + (t.Milliseconds / 1000.0);
        sb.Append(secs.ToString("0.###", CultureInfo.InvariantCulture)).Append('s');
        return sb.ToString();
    }
}
