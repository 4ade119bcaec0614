using System.Globalization;
using System.Text;
using Rubato.Common.Configuration;
using Rubato.TraceQL;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Parsing;

namespace Rubato.QueryFrontend;

/// <summary>A request the frontend refuses; <see cref="StatusCode"/> is the HTTP status (400, 401, 429).</summary>
public sealed class SearchRequestException(int statusCode, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    public static SearchRequestException BadRequest(string message) => new(400, message);
}

/// <summary>A parsed <c>/api/search</c> request (or a streaming <c>SearchRequest</c>).</summary>
public sealed record SearchQuery
{
    /// <summary>The TraceQL text searched (legacy <c>tags=</c> requests are converted to it).</summary>
    public required string Query { get; init; }

    public required RootExpr Root { get; init; }

    public int Limit { get; init; }

    public int SpansPerSpanSet { get; init; }

    /// <summary>Unix seconds; 0/0 = no range (recent data only).</summary>
    public long StartUnixSeconds { get; init; }

    public long EndUnixSeconds { get; init; }
}

/// <summary>A parsed tag-names request (<c>/api/search/tags</c>, <c>/api/v2/search/tags</c>).</summary>
public sealed record TagNamesQuery
{
    /// <summary>null = all scopes; else span, resource, event, link, instrumentation or intrinsic.</summary>
    public string? Scope { get; init; }

    /// <summary>The <c>q</c> filter text (v2 only); unparsable filters are ignored (full list), as Tempo does.</summary>
    public string? Query { get; init; }

    public long StartUnixSeconds { get; init; }

    public long EndUnixSeconds { get; init; }

    /// <summary>Maximum names per scope; 0 = unlimited.</summary>
    public int Limit { get; init; }
}

/// <summary>A parsed tag-values request (<c>/api/search/tag/{tag}/values</c> and v2).</summary>
public sealed record TagValuesQuery
{
    /// <summary>The tag as a TraceQL field: <c>span.http.method</c>, <c>.x</c>, <c>name</c>, ... (v1 tags get a leading dot).</summary>
    public required string Tag { get; init; }

    public string? Query { get; init; }

    public long StartUnixSeconds { get; init; }

    public long EndUnixSeconds { get; init; }

    public int Limit { get; init; }
}

/// <summary>
/// Parses Tempo's search request parameters. Every failure is a <see cref="SearchRequestException"/> (400) whose message
/// names the parameter; TraceQL errors carry the parser's line/column text.
/// </summary>
public static class SearchRequestParser
{
    public const int DefaultSpansPerSpanSet = 3;

    public static SearchQuery ParseSearch(Func<string, string?> param, SearchFrontendConfig config)
    {
        ArgumentNullException.ThrowIfNull(param);
        ArgumentNullException.ThrowIfNull(config);
        var (start, end) = ParseRange(param("start"), param("end"));
        int limit = ParseInt(param("limit"), "limit", config.DefaultResultLimit, allowZero: true);
        if (limit == 0)
        {
            limit = config.DefaultResultLimit;
        }

        if (config.MaxResultLimit > 0 && limit > config.MaxResultLimit)
        {
            limit = config.MaxResultLimit;
        }

        int spss = ParseInt(param("spss"), "spss", DefaultSpansPerSpanSet, allowZero: false);
        if (config.MaxSpansPerSpanSet > 0 && spss > config.MaxSpansPerSpanSet)
        {
            throw SearchRequestException.BadRequest($"invalid spss: must be at most {config.MaxSpansPerSpanSet}, got {spss}");
        }

        string? q = param("q");
        string? tags = param("tags");
        string? minDuration = param("minDuration");
        string? maxDuration = param("maxDuration");
        if (string.IsNullOrWhiteSpace(q))
        {
            q = LegacyToTraceQL(tags, minDuration, maxDuration);
        }

        return new SearchQuery
        {
            Query = q,
            Root = ParseTraceQL(q),
            Limit = limit,
            SpansPerSpanSet = spss,
            StartUnixSeconds = start,
            EndUnixSeconds = end,
        };
    }

    public static TagNamesQuery ParseTags(Func<string, string?> param)
    {
        ArgumentNullException.ThrowIfNull(param);
        var (start, end) = ParseRange(param("start"), param("end"));
        string? scope = param("scope");
        if (string.IsNullOrEmpty(scope) || scope == "all")
        {
            scope = null;
        }
        else if (scope is not ("span" or "resource" or "event" or "link" or "instrumentation" or "intrinsic"))
        {
            throw SearchRequestException.BadRequest($"invalid scope '{scope}': use all, span, resource, event, link, instrumentation or intrinsic");
        }

        int limit = ParseInt(param("limit") ?? param("maxTagsPerScope"), "limit", 0, allowZero: true);
        return new TagNamesQuery { Scope = scope, Query = NullIfBlank(param("q")), StartUnixSeconds = start, EndUnixSeconds = end, Limit = limit };
    }

    public static TagValuesQuery ParseTagValues(string tag, bool scoped, Func<string, string?> param)
    {
        ArgumentNullException.ThrowIfNull(param);
        if (string.IsNullOrWhiteSpace(tag))
        {
            throw SearchRequestException.BadRequest("please provide a non-empty tagName");
        }

        var (start, end) = ParseRange(param("start"), param("end"));
        int limit = ParseInt(param("limit") ?? param("maxTagValues"), "limit", 0, allowZero: true);
        return new TagValuesQuery
        {
            Tag = scoped ? tag : "." + tag,
            Query = NullIfBlank(param("q")),
            StartUnixSeconds = start,
            EndUnixSeconds = end,
            Limit = limit,
        };
    }

    /// <summary>Parses and validates TraceQL; errors become 400 with the parser's message (which names line and column).</summary>
    public static RootExpr ParseTraceQL(string query)
    {
        try
        {
            return TraceQLParser.ParseAndValidate(query);
        }
        catch (TraceQLException e)
        {
            throw SearchRequestException.BadRequest("invalid TraceQL query: " + e.Message);
        }
    }

    /// <summary>Lenient parse for <c>q</c> filters of tag APIs: null when the text does not parse.</summary>
    public static RootExpr? TryParseFilter(string? query)
    {
        if (string.IsNullOrWhiteSpace(query))
        {
            return null;
        }

        try
        {
            var root = TraceQLParser.ParseAndValidate(query);
            return root.IsMetrics ? null : root;
        }
        catch (TraceQLException)
        {
            return null;
        }
    }

    /// <summary>
    /// Tempo's legacy search (<c>tags</c> logfmt, <c>minDuration</c>, <c>maxDuration</c>) as TraceQL: each
    /// <c>key=value</c> becomes a spanset filter <c>{ .key = "value" }</c> (<c>name</c>, <c>status</c> and the
    /// <c>service.name</c> resource attribute map to their TraceQL fields), joined with <c>&amp;&amp;</c>; durations
    /// become <c>{ traceDuration &gt;= min }</c>/<c>{ traceDuration &lt;= max }</c>. No criteria = <c>{}</c>.
    /// </summary>
    public static string LegacyToTraceQL(string? tags, string? minDuration, string? maxDuration)
    {
        var filters = new List<string>();
        foreach (var (key, value) in ParseLogfmt(tags ?? string.Empty))
        {
            filters.Add(key switch
            {
                "name" => "{ name = " + Quote(value) + " }",
                "status" or "status.code" when value is "error" or "ok" or "unset" => "{ status = " + value + " }",
                "service.name" => "{ resource.service.name = " + Quote(value) + " }",
                "error" when value == "true" => "{ status = error }",
                _ => "{ ." + AttributeName(key) + " = " + Quote(value) + " }",
            });
        }

        if (!string.IsNullOrEmpty(minDuration))
        {
            filters.Add("{ traceDuration >= " + LegacyDuration(minDuration, "minDuration") + " }");
        }

        if (!string.IsNullOrEmpty(maxDuration))
        {
            filters.Add("{ traceDuration <= " + LegacyDuration(maxDuration, "maxDuration") + " }");
        }

        return filters.Count == 0 ? "{}" : string.Join(" && ", filters);
    }

    /// <summary>logfmt pairs: <c>k=v</c>, <c>k="quoted \" value"</c>; a key without value is an error.</summary>
    public static List<(string Key, string Value)> ParseLogfmt(string text)
    {
        var pairs = new List<(string, string)>();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            if (i >= text.Length)
            {
                break;
            }

            int keyStart = i;
            while (i < text.Length && text[i] != '=' && !char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            string key = text[keyStart..i];
            if (i >= text.Length || text[i] != '=' || key.Length == 0)
            {
                throw SearchRequestException.BadRequest($"invalid tags: expected key=value at offset {keyStart} in '{text}'");
            }

            i++;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                i++;
                bool closed = false;
                while (i < text.Length)
                {
                    char c = text[i++];
                    if (c == '\\' && i < text.Length)
                    {
                        value.Append(text[i++]);
                    }
                    else if (c == '"')
                    {
                        closed = true;
                        break;
                    }
                    else
                    {
                        value.Append(c);
                    }
                }

                if (!closed)
                {
                    throw SearchRequestException.BadRequest($"invalid tags: unterminated quoted value for '{key}'");
                }
            }
            else
            {
                while (i < text.Length && !char.IsWhiteSpace(text[i]))
                {
                    value.Append(text[i++]);
                }
            }

            pairs.Add((key, value.ToString()));
        }

        return pairs;
    }

    private static string AttributeName(string key) =>
        key.All(c => char.IsLetterOrDigit(c) || c is '_' or '.' or '-' or '/') ? key : "\"" + key.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string Quote(string v) =>
        "\"" + v.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string LegacyDuration(string text, string name)
    {
        if (!GoDuration.TryParse(text, out var d, out var error) || d < TimeSpan.Zero)
        {
            throw SearchRequestException.BadRequest($"invalid {name}: '{text}' is not a duration ({error ?? "negative"})");
        }

        return (d.Ticks * 100).ToString(CultureInfo.InvariantCulture) + "ns";
    }

    private static (long Start, long End) ParseRange(string? start, string? end)
    {
        long s = ParseSeconds(start, "start");
        long e = ParseSeconds(end, "end");
        if ((s == 0) != (e == 0))
        {
            throw SearchRequestException.BadRequest($"http parameters start and end must be given together. received start={s} end={e}");
        }

        if (s > e)
        {
            throw SearchRequestException.BadRequest($"http parameter start must be before end. received start={s} end={e}");
        }

        return (s, e);
    }

    private static long ParseSeconds(string? text, string name)
    {
        if (string.IsNullOrEmpty(text))
        {
            return 0;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v) || v > 253402300799)
        {
            throw SearchRequestException.BadRequest($"invalid {name}: '{text}' is not a Unix time in seconds");
        }

        return v;
    }

    private static int ParseInt(string? text, string name, int fallback, bool allowZero)
    {
        if (string.IsNullOrEmpty(text))
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) || v < 0 || (!allowZero && v == 0))
        {
            throw SearchRequestException.BadRequest($"invalid {name}: '{text}' must be a {(allowZero ? "non-negative" : "positive")} integer");
        }

        return v;
    }

    private static string? NullIfBlank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;
}
