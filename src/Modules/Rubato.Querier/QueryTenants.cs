using Microsoft.AspNetCore.Http;
using Rubato.Common.Tenancy;

namespace Rubato.Querier;

/// <summary>
/// Resolves the tenants a query runs for: the single tenant when multitenancy is off; otherwise the
/// <c>X-Scope-OrgID</c> header, where <c>a|b</c> asks several tenants at once (Tempo's cross-tenant queries).
/// </summary>
public sealed class QueryTenants(bool multitenancyEnabled)
{
    private static readonly string[] Single = [TenantIds.SingleTenant];

    /// <returns>The tenants, or an error result (401 when the header is missing, 400 when a tenant id is invalid).</returns>
    public (IReadOnlyList<string>? Tenants, IResult? Error) Resolve(HttpContext context)
    {
        if (!multitenancyEnabled)
        {
            return (Single, null);
        }

        string header = context.Request.Headers[TenantIds.HeaderName].ToString();
        if (header.Length == 0)
        {
            return (null, Results.Text("no org id", statusCode: StatusCodes.Status401Unauthorized));
        }

        var tenants = header.Split('|', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToArray();
        foreach (var t in tenants)
        {
            if (TenantIds.Validate(t) is { } problem)
            {
                return (null, Results.Text(problem, statusCode: StatusCodes.Status400BadRequest));
            }
        }

        return tenants.Length == 0
            ? (null, Results.Text("no org id", statusCode: StatusCodes.Status401Unauthorized))
            : (tenants, null);
    }
}
