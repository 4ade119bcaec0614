using System.Globalization;
using System.Text;

namespace Rubato.Common.Configuration;

/// <summary>
/// Go's <c>time.Duration</c> text form, which Tempo configs use: <c>300ms</c>, <c>1.5h</c>, <c>2h45m</c>, <c>0</c>.
/// Units: ns, us (µs, μs), ms, s, m, h; Prometheus-style d, w, y are accepted too (Tempo's model.Duration uses them).
/// A sign may lead; a bare <c>0</c> is zero. Two output forms: <see cref="Format"/> (Go's, <c>1h30m0s</c>) and
/// <see cref="FormatCompact"/> (zero parts dropped, <c>1h30m</c>, as the runtime overrides print).
/// </summary>
public static class GoDuration
{
    public static bool TryParse(string text, out TimeSpan value) => TryParse(text, out value, out _);

    /// <summary>Parses or throws <see cref="FormatException"/> whose message names the text and the problem.</summary>
    public static TimeSpan Parse(string text)
    {
        if (!TryParse(text, out var value, out string? error))
        {
            throw new FormatException(error);
        }

        return value;
    }

    /// <summary>
    /// Parses, summing the parts exactly (decimal ticks, rounded once at the end, so <c>0.3s</c> is exactly 300ms);
    /// on failure <paramref name="error"/> says what is wrong and where. Out of <see cref="TimeSpan"/>'s range fails.
    /// </summary>
    public static bool TryParse(string text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        var s = text.AsSpan().Trim();
        if (s.Length == 0)
        {
            error = "empty duration";
            return false;
        }

        bool negative = false;
        if (s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s is "0")
        {
            return true;
        }

        if (s.Length == 0)
        {
            error = $"invalid duration \"{text}\": expected a number after the sign";
            return false;
        }

        decimal totalTicks = 0;
        int i = 0;
        while (i < s.Length)
        {
            int numStart = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            if (i == numStart || !decimal.TryParse(s[numStart..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal number))
            {
                error = $"invalid duration \"{text}\": expected a number at position {numStart}";
                return false;
            }

            int unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }

            decimal? ticksPerUnit = s[unitStart..i] switch
            {
                "ns" => 0.01m,
                "us" or "µs" or "μs" => 10m,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                "d" => TimeSpan.TicksPerDay,
                "w" => TimeSpan.TicksPerDay * 7,
                "y" => TimeSpan.TicksPerDay * 365,
                _ => null,
            };
            if (ticksPerUnit is null)
            {
                error = unitStart == i
                    ? $"invalid duration \"{text}\": missing unit (use ns, us, ms, s, m, h, d, w or y)"
                    : $"invalid duration \"{text}\": unknown unit \"{s[unitStart..i]}\"";
                return false;
            }

            // Checked by division first: a huge number times the unit would overflow decimal itself.
            if (number > (TimeSpan.MaxValue.Ticks - totalTicks) / ticksPerUnit.Value)
            {
                error = $"invalid duration \"{text}\": too large";
                return false;
            }

            totalTicks += number * ticksPerUnit.Value;
        }

        long ticks = (long)decimal.Round(totalTicks);
        value = TimeSpan.FromTicks(negative ? -ticks : ticks);
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

    /// <summary>Formats without zero parts: <c>336h</c>, <c>1h30m</c>, <c>10s</c>, <c>250ms</c>, <c>0s</c>; sub-millisecond rests print as <c>us</c>.</summary>
    public static string FormatCompact(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        var sb = new StringBuilder();
        long ticks = value.Ticks;
        if (ticks < 0)
        {
            sb.Append('-');
            ticks = -ticks;
        }

        long hours = ticks / TimeSpan.TicksPerHour;
        ticks %= TimeSpan.TicksPerHour;
        long minutes = ticks / TimeSpan.TicksPerMinute;
        ticks %= TimeSpan.TicksPerMinute;
        long seconds = ticks / TimeSpan.TicksPerSecond;
        ticks %= TimeSpan.TicksPerSecond;
        if (hours > 0)
        {
            sb.Append(hours).Append('h');
        }

        if (minutes > 0)
        {
            sb.Append(minutes).Append('m');
        }

        if (seconds > 0)
        {
            sb.Append(seconds).Append('s');
        }

        if (ticks > 0)
        {
            if (ticks % TimeSpan.TicksPerMillisecond == 0)
            {
                sb.Append(ticks / TimeSpan.TicksPerMillisecond).Append("ms");
            }
            else
            {
                sb.Append(ticks / 10).Append("us");
            }
        }

        return sb.ToString();
    }
}
