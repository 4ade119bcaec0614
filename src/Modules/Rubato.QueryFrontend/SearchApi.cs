using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Rubato.Common.Tenancy;
using Rubato.TraceQL.Engine;

namespace Rubato.QueryFrontend;

/// <summary>
/// Tenants of a query: the single tenant when multitenancy is off; otherwise <c>X-Scope-OrgID</c> (or the
/// <c>x-scope-orgid</c> gRPC metadata), where <c>a|b</c> asks several tenants (Tempo's cross-tenant queries).
/// </summary>
public static class SearchTenants
{
    private static readonly string[] Single = [TenantIds.SingleTenant];

    /// <exception cref="SearchRequestException">401 "no org id" when missing, 400 for an invalid tenant id.</exception>
    public static IReadOnlyList<string> Resolve(bool multitenancyEnabled, string? header)
    {
        if (!multitenancyEnabled)
        {
            return Single;
        }

        var tenants = (header ?? string.Empty).Split('|', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToArray();
        if (tenants.Length == 0)
        {
            throw new SearchRequestException(401, "no org id");
        }

        foreach (var t in tenants)
        {
            if (TenantIds.Validate(t) is { } problem)
            {
                throw SearchRequestException.BadRequest(problem);
            }
        }

        return tenants;
    }
}

/// <summary>
/// Tempo's search HTTP API: <c>GET /api/search</c>, <c>/api/search/tags</c>, <c>/api/v2/search/tags</c>,
/// <c>/api/search/tag/{tag}/values</c>, <c>/api/v2/search/tag/{tag}/values</c>. Errors are plain text with the
/// status of <see cref="SearchRequestException"/> (400 bad request, 401 no org id, 429 queue full).
/// </summary>
public static class SearchApi
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Map(IEndpointRouteBuilder endpoints, SearchFrontend frontend, bool multitenancyEnabled)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(frontend);
        endpoints.MapGet("/api/search", ctx => Handle(ctx, frontend, multitenancyEnabled, async (tenants, p, ct) =>
        {
            var q = SearchRequestParser.ParseSearch(p, frontend.Config.Search);
            var result = await frontend.SearchAsync(tenants, q, ct).ConfigureAwait(false);
            return w => SearchResultJson.Write(w, result);
        }));
        endpoints.MapGet("/api/search/tags", ctx => Handle(ctx, frontend, multitenancyEnabled, async (tenants, p, ct) =>
        {
            var q = SearchRequestParser.ParseTags(p) with { Query = null };
            var (names, metrics) = await frontend.SearchTagsAsync(tenants, q, ct).ConfigureAwait(false);
            return w => WriteTagNamesV1(w, names, metrics);
        }));
        endpoints.MapGet("/api/v2/search/tags", ctx => Handle(ctx, frontend, multitenancyEnabled, async (tenants, p, ct) =>
        {
            var q = SearchRequestParser.ParseTags(p);
            var (names, metrics) = await frontend.SearchTagsAsync(tenants, q, ct).ConfigureAwait(false);
            return w => WriteTagNamesV2(w, names, metrics);
        }));
        endpoints.MapGet("/api/search/tag/{tag}/values", ctx => Handle(ctx, frontend, multitenancyEnabled, async (tenants, p, ct) =>
        {
            var q = SearchRequestParser.ParseTagValues((string)ctx.Request.RouteValues["tag"]!, scoped: false, p) with { Query = null };
            var (values, metrics) = await frontend.SearchTagValuesAsync(tenants, q, ct).ConfigureAwait(false);
            return w => WriteTagValuesV1(w, values, metrics);
        }));
        endpoints.MapGet("/api/v2/search/tag/{tag}/values", ctx => Handle(ctx, frontend, multitenancyEnabled, async (tenants, p, ct) =>
        {
            var q = SearchRequestParser.ParseTagValues((string)ctx.Request.RouteValues["tag"]!, scoped: true, p);
            var (values, metrics) = await frontend.SearchTagValuesAsync(tenants, q, ct).ConfigureAwait(false);
            return w => WriteTagValuesV2(w, values, metrics);
        }));
    }

    /// <summary><c>{"tagNames":[...],"metrics":{...}}</c>: names of every requested scope (intrinsics only when asked), sorted.</summary>
    public static void WriteTagNamesV1(Utf8JsonWriter w, TagNamesCollector names, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(names);
        var all = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (scope, tags) in names.Scopes())
        {
            if (scope != "intrinsic" || names.Scope == "intrinsic")
            {
                all.UnionWith(tags);
            }
        }

        w.WriteStartObject();
        w.WriteStartArray("tagNames");
        foreach (var n in all)
        {
            w.WriteStringValue(n);
        }

        w.WriteEndArray();
        WriteMetrics(w, metrics);
        w.WriteEndObject();
    }

    /// <summary><c>{"scopes":[{"name":"span","tags":[...]},...],"metrics":{...}}</c>.</summary>
    public static void WriteTagNamesV2(Utf8JsonWriter w, TagNamesCollector names, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(names);
        w.WriteStartObject();
        w.WriteStartArray("scopes");
        foreach (var (scope, tags) in names.Scopes())
        {
            w.WriteStartObject();
            w.WriteString("name", scope);
            w.WriteStartArray("tags");
            foreach (var t in tags)
            {
                w.WriteStringValue(t);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        WriteMetrics(w, metrics);
        w.WriteEndObject();
    }

    /// <summary><c>{"tagValues":["a","b"],"metrics":{...}}</c>, values sorted.</summary>
    public static void WriteTagValuesV1(Utf8JsonWriter w, TagValuesCollector values, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(values);
        w.WriteStartObject();
        w.WriteStartArray("tagValues");
        foreach (var v in values.Values.Select(v => v.Value).Distinct().Order(StringComparer.Ordinal))
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
        WriteMetrics(w, metrics);
        w.WriteEndObject();
    }

    /// <summary><c>{"tagValues":[{"type":"string","value":"x"}],"metrics":{...}}</c>, sorted by value then type.</summary>
    public static void WriteTagValuesV2(Utf8JsonWriter w, TagValuesCollector values, MetadataMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(values);
        w.WriteStartObject();
        w.WriteStartArray("tagValues");
        foreach (var (type, value) in SortedTypedValues(values))
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteString("value", value);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        WriteMetrics(w, metrics);
        w.WriteEndObject();
    }

    internal static IEnumerable<(string Type, string Value)> SortedTypedValues(TagValuesCollector values) =>
        values.Values.OrderBy(v => v.Value, StringComparer.Ordinal).ThenBy(v => v.Type, StringComparer.Ordinal);

    /// <summary>protojson of <c>MetadataMetrics</c>: zero fields omitted, 64-bit values as strings.</summary>
    private static void WriteMetrics(Utf8JsonWriter w, MetadataMetrics m)
    {
        w.WriteStartObject("metrics");
        if (m.InspectedBytes != 0)
        {
            w.WriteString("inspectedBytes", m.InspectedBytes.ToString(CultureInfo.InvariantCulture));
        }

        if (m.TotalJobs != 0)
        {
            w.WriteNumber("totalJobs", m.TotalJobs);
        }

        if (m.CompletedJobs != 0)
        {
            w.WriteNumber("completedJobs", m.CompletedJobs);
        }

        if (m.TotalBlocks != 0)
        {
            w.WriteNumber("totalBlocks", m.TotalBlocks);
        }

        if (m.TotalBlockBytes != 0)
        {
            w.WriteString("totalBlockBytes", m.TotalBlockBytes.ToString(CultureInfo.InvariantCulture));
        }

        w.WriteEndObject();
    }

    private static async Task Handle(HttpContext ctx, SearchFrontend frontend, bool multitenancyEnabled,
        Func<IReadOnlyList<string>, Func<string, string?>, CancellationToken, Task<Action<Utf8JsonWriter>>> run)
    {
        var ct = ctx.RequestAborted;
        try
        {
            var tenants = SearchTenants.Resolve(multitenancyEnabled, ctx.Request.Headers[TenantIds.HeaderName].ToString());
            using var lease = frontend.Admit(tenants);
            var query = ctx.Request.Query;
            var write = await run(tenants, name => query.TryGetValue(name, out var v) && v.Count > 0 ? v[0] : null, ct).ConfigureAwait(false);
            ctx.Response.ContentType = "application/json";
            await using (var w = new Utf8JsonWriter(ctx.Response.BodyWriter, WriterOptions))
            {
                write(w);
            }

            await ctx.Response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (SearchRequestException e)
        {
            ctx.Response.StatusCode = e.StatusCode;
            ctx.Response.ContentType = "text/plain; charset=utf-8";
            await ctx.Response.WriteAsync(e.Message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away; Tempo logs 499. Nothing can be written.
            ctx.Response.StatusCode = 499;
        }
    }
}
