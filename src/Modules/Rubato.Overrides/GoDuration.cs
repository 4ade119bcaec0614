using System.Globalization;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Rubato.Overrides;

/// <summary>
/// Durations as Tempo's YAML writes them: Go's <c>time.Duration</c> syntax (<c>10s</c>, <c>1h30m</c>, <c>500ms</c>,
/// <c>1.5h</c>) plus Prometheus' <c>d</c>, <c>w</c>, <c>y</c> units (<c>model.Duration</c>, used for retention).
/// A bare <c>0</c> is zero.
/// </summary>
public static class GoDuration
{
    public static TimeSpan Parse(string text)
    {
        if (!TryParse(text, out var value, out string? error))
        {
            throw new FormatException(error);
        }

        return value;
    }

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

            totalTicks += number * ticksPerUnit.Value;
            if (totalTicks > TimeSpan.MaxValue.Ticks)
            {
                error = $"invalid duration \"{text}\": too large";
                return false;
            }
        }

        long ticks = (long)decimal.Round(totalTicks);
        value = TimeSpan.FromTicks(negative ? -ticks : ticks);
        return true;
    }

    /// <summary>Formats like Go prints durations, without zero parts: <c>336h</c>, <c>1h30m</c>, <c>10s</c>, <c>250ms</c>, <c>0s</c>.</summary>
    public static string Format(TimeSpan value)
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

/// <summary>YamlDotNet converter reading and writing <see cref="TimeSpan"/> in <see cref="GoDuration"/> syntax.</summary>
public sealed class GoDurationYamlConverter : IYamlTypeConverter
{
    public static readonly GoDurationYamlConverter Instance = new();

    public bool Accepts(Type type) => type == typeof(TimeSpan) || type == typeof(TimeSpan?);

    public object? ReadYaml(IParser parser, Type type, ObjectDeserializer rootDeserializer)
    {
        var scalar = parser.Consume<Scalar>();
        if (type == typeof(TimeSpan?) && scalar.Value is "" or "null" or "~")
        {
            return null;
        }

        if (!GoDuration.TryParse(scalar.Value, out var value, out string? error))
        {
            throw new YamlException(scalar.Start, scalar.End, error!);
        }

        return value;
    }

    public void WriteYaml(IEmitter emitter, object? value, Type type, ObjectSerializer serializer)
    {
        emitter.Emit(new Scalar(value is TimeSpan ts ? GoDuration.Format(ts) : "null"));
    }
}
