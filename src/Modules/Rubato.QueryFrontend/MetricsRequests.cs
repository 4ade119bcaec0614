using System.Globalization;
using Rubato.Common.Configuration;
using Rubato.TraceQL;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Metrics;
using Rubato.TraceQL.Parsing;

namespace Rubato.QueryFrontend;

/// <summary><c>query_frontend.metrics:</c> (TraceQL metrics), with Tempo's keys and defaults.</summary>
public sealed class MetricsFrontendConfig
{
    /// <summary><c>concurrent_jobs</c>: jobs of one metrics query running at once.</summary>
    public int ConcurrentJobs { get; set; } = 1000;

    /// <summary><c>max_duration</c>: longest start..end range of a metrics query; 0 = unlimited.</summary>
    public TimeSpan MaxDuration { get; set; } = TimeSpan.FromHours(24);

    /// <summary><c>max_exemplars</c>: most exemplars per query (also the default when a request asks for none).</summary>
    public int MaxExemplars { get; set; } = CompiledMetricsQuery.DefaultMaxExemplars;

    /// <summary><c>max_response_series</c>: most series in a response (the request's <c>maxSeries</c> may lower it); 0 = unlimited.</summary>
    public int MaxResponseSeries { get; set; } = 1000;

    /// <summary>Interval between partial results on the streaming gRPC metrics API (Tempo: 500 ms).</summary>
    public TimeSpan StreamingUpdateInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (ConcurrentJobs <= 0)
        {
            validation.Error(prefix + ".concurrent_jobs", $"must be positive, got {ConcurrentJobs}");
        }

        if (MaxDuration < TimeSpan.Zero)
        {
            validation.Error(prefix + ".max_duration", "must not be negative");
        }

        if (MaxExemplars < 0)
        {
            validation.Error(prefix + ".max_exemplars", $"must not be negative, got {MaxExemplars}");
        }

        if (MaxResponseSeries < 0)
        {
            validation.Error(prefix + ".max_response_series", $"must not be negative, got {MaxResponseSeries}");
        }

        if (StreamingUpdateInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".streaming_update_interval", "must be positive");
        }
    }
}

/// <summary>A parsed metrics request (HTTP <c>/api/metrics/query_range</c>, <c>/api/metrics/query</c>, or gRPC).</summary>
public sealed record MetricsQueryRequest
{
    public required string Query { get; init; }

    public required RootExpr Root { get; init; }

    /// <summary>Requested range in Unix nanoseconds (before step alignment).</summary>
    public long StartUnixNanos { get; init; }

    public long EndUnixNanos { get; init; }

    /// <summary>Step in nanoseconds; for instant queries end − start.</summary>
    public long StepNanos { get; init; }

    public bool Instant { get; init; }

    /// <summary>Exemplars wanted; 0 = the configured maximum (range queries), instant queries never compute them.</summary>
    public int Exemplars { get; init; }

    /// <summary>Series limit from the request; 0 = the configured one.</summary>
    public int MaxSeries { get; init; }

    /// <summary>The time grid: aligned to the step (range) or the single interval (instant).</summary>
    public MetricsRange Range() => Instant ? MetricsRange.Instant(StartUnixNanos, EndUnixNanos) : MetricsRange.Align(StartUnixNanos, EndUnixNanos, StepNanos);
}

/// <summary>
/// Tempo's metrics request parameters: <c>q</c> (or <c>query</c>), <c>start</c>/<c>end</c> as Unix seconds (≤ 10 digits),
/// Unix nanoseconds, decimal seconds or RFC3339; <c>since</c> (default 1h, a Prometheus duration) when start is absent,
/// counted back from end or now (whichever is earlier); <c>step</c> as seconds or a Go duration (default
/// <see cref="MetricsRange.DefaultStep"/>); <c>exemplars</c>; <c>maxSeries</c>. Every problem is a 400
/// <see cref="SearchRequestException"/> naming the parameter.
/// </summary>
public static class MetricsRequestParser
{
    public static readonly TimeSpan DefaultSince = TimeSpan.FromHours(1);

    public static MetricsQueryRequest ParseRange(Func<string, string?> param, DateTimeOffset now) => Parse(param, now, instant: false);

    public static MetricsQueryRequest ParseInstant(Func<string, string?> param, DateTimeOffset now) => Parse(param, now, instant: true);

    /// <summary>Builds a request from already-typed values (gRPC); 0 start/end/step take the HTTP defaults.</summary>
    public static MetricsQueryRequest FromValues(string? query, ulong start, ulong end, ulong step, uint exemplars, uint maxSeries, bool instant, DateTimeOffset now)
    {
        var p = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["q"] = query,
            ["start"] = start == 0 ? null : start.ToString(CultureInfo.InvariantCulture),
            ["end"] = end == 0 ? null : end.ToString(CultureInfo.InvariantCulture),
            ["step"] = step == 0 ? null : step.ToString(CultureInfo.InvariantCulture) + "ns",
            ["exemplars"] = exemplars == 0 ? null : exemplars.ToString(CultureInfo.InvariantCulture),
            ["maxSeries"] = maxSeries == 0 ? null : maxSeries.ToString(CultureInfo.InvariantCulture),
        };
        return Parse(k => p.GetValueOrDefault(k), now, instant);
    }

    private static MetricsQueryRequest Parse(Func<string, string?> param, DateTimeOffset now, bool instant)
    {
        ArgumentNullException.ThrowIfNull(param);
        string? q = NonEmpty(param("q")) ?? NonEmpty(param("query"));
        if (q is null)
        {
            throw SearchRequestException.BadRequest("missing query: set q to a TraceQL metrics query such as '{ } | rate()'");
        }

        RootExpr root;
        try
        {
            root = TraceQLParser.ParseAndValidate(q);
        }
        catch (TraceQLException e)
        {
            throw SearchRequestException.BadRequest(e.Message);
        }

        if (!root.IsMetrics)
        {
            throw SearchRequestException.BadRequest(
                $"not a metrics query: '{q}' selects spans; metrics queries end in a function such as '| rate()' or '| quantile_over_time(duration, .99)'");
        }

        var since = DefaultSince;
        if (NonEmpty(param("since")) is { } s)
        {
            since = ParsePromDuration(s) ?? throw SearchRequestException.BadRequest($"could not parse 'since' parameter: invalid duration \"{s}\"");
        }

        long nowNs = now.ToUnixTimeMilliseconds() * 1_000_000;
        long end = NonEmpty(param("end")) is { } e2 ? ParseTimestamp(e2, "end") : nowNs;
        long endOrNow = Math.Min(end, nowNs);
        long start = NonEmpty(param("start")) is { } s2 ? ParseTimestamp(s2, "start") : endOrNow - since.Ticks * 100;
        if (end <= start)
        {
            throw SearchRequestException.BadRequest($"end must be greater than start. received start={start} end={end} (Unix nanoseconds)");
        }

        long step;
        if (instant)
        {
            step = end - start;
        }
        else if (NonEmpty(param("step")) is { } st)
        {
            step = ParseStep(st);
            if (step <= 0)
            {
                throw SearchRequestException.BadRequest($"step must be positive, got \"{st}\"");
            }
        }
        else
        {
            step = MetricsRange.DefaultStep(start, end);
        }

        if (!instant && (end - start) / step > 11_000)
        {
            throw SearchRequestException.BadRequest(
                $"step {Rubato.TraceQL.Engine.ValueText.GoDuration(step)} is too small for the range: at most 11000 points per series; use a larger step");
        }

        int exemplars = ParseNonNegative(param("exemplars"), "exemplars");
        int maxSeries = ParseNonNegative(param("maxSeries"), "maxSeries");
        return new MetricsQueryRequest
        {
            Query = q,
            Root = root,
            StartUnixNanos = start,
            EndUnixNanos = end,
            StepNanos = step,
            Instant = instant,
            Exemplars = exemplars,
            MaxSeries = maxSeries,
        };
    }

    /// <summary>Unix seconds (≤ 10 digits), Unix nanoseconds (more digits), decimal seconds (millisecond precision) or RFC3339.</summary>
    public static long ParseTimestamp(string value, string name)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Contains('.', StringComparison.Ordinal)
            && double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) && double.IsFinite(f))
        {
            double secs = Math.Truncate(f);
            double frac = Math.Round((f - secs) * 1000) / 1000;
            return ((long)secs * 1_000_000_000) + (long)Math.Round(frac * 1e9);
        }

        if (long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n))
        {
            return value.TrimStart('-').Length <= 10 ? n * 1_000_000_000 : n;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            && value.Contains('T', StringComparison.Ordinal))
        {
            return (t.ToUniversalTime().Ticks - DateTimeOffset.UnixEpoch.Ticks) * 100;
        }

        throw SearchRequestException.BadRequest(
            $"could not parse '{name}' parameter: \"{value}\" is not Unix seconds, Unix nanoseconds or an RFC3339 time");
    }

    /// <summary>Seconds as a number (<c>30</c>, <c>0.5</c>) or a Go duration (<c>30s</c>, <c>1m30s</c>, <c>500ms</c>).</summary>
    public static long ParseStep(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double secs))
        {
            double ns = secs * 1e9;
            if (!double.IsFinite(ns) || Math.Abs(ns) > long.MaxValue)
            {
                throw SearchRequestException.BadRequest($"cannot parse \"{value}\" to a valid duration. It overflows int64");
            }

            return (long)ns;
        }

        if (TryParseGoDuration(value, out long nanos))
        {
            return nanos;
        }

        throw SearchRequestException.BadRequest($"cannot parse \"{value}\" to a valid duration (step: seconds or a duration such as 30s)");
    }

    private static TimeSpan? ParsePromDuration(string s)
    {
        if (TryParseGoDuration(s, out long nanos) && nanos > 0)
        {
            return TimeSpan.FromTicks(nanos / 100);
        }

        // Prometheus units Go lacks: d, w, y (single unit, integer).
        if (s.Length > 1 && long.TryParse(s.AsSpan(0, s.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > 0)
        {
            return s[^1] switch
            {
                'd' => TimeSpan.FromDays(n),
                'w' => TimeSpan.FromDays(7 * n),
                'y' => TimeSpan.FromDays(365 * n),
                _ => null,
            };
        }

        return null;
    }

    /// <summary>Go's <c>time.ParseDuration</c>: a sequence of decimal numbers with units ns, us, µs, ms, s, m, h.</summary>
    public static bool TryParseGoDuration(string s, out long nanos)
    {
        nanos = 0;
        if (string.IsNullOrEmpty(s))
        {
            return false;
        }

        int i = 0;
        bool neg = false;
        if (s[0] is '-' or '+')
        {
            neg = s[0] == '-';
            i = 1;
        }

        if (s[i..] == "0")
        {
            return true;
        }

        double total = 0;
        bool any = false;
        while (i < s.Length)
        {
            int numStart = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            if (i == numStart || !double.TryParse(s.AsSpan(numStart, i - numStart), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double num))
            {
                return false;
            }

            int unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }

            double unit = s.AsSpan(unitStart, i - unitStart) switch
            {
                "ns" => 1,
                "us" or "µs" or "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => double.NaN,
            };
            if (double.IsNaN(unit))
            {
                return false;
            }

            total += num * unit;
            any = true;
        }

        if (!any || total > long.MaxValue)
        {
            return false;
        }

        nanos = (long)Math.Round(neg ? -total : total);
        return true;
    }

    private static int ParseNonNegative(string? value, string name)
    {
        if (NonEmpty(value) is not { } v)
        {
            return 0;
        }

        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
        {
            throw SearchRequestException.BadRequest($"invalid {name}: \"{v}\" is not a non-negative integer");
        }

        return n;
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
