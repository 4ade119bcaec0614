using Rubato.Common.Tenancy;

namespace Rubato.Receivers;

/// <summary>Why a request has no usable tenant.</summary>
public enum TenantError
{
    None,

    /// <summary>Multitenancy is on and the request has no <c>X-Scope-OrgID</c>: HTTP 401 / gRPC UNAUTHENTICATED.</summary>
    Missing,

    /// <summary>The header fails <see cref="TenantIds.Validate"/>: HTTP 400 / gRPC INVALID_ARGUMENT.</summary>
    Invalid,
}

/// <summary>The outcome of <see cref="TenantResolver.Resolve"/>: a tenant id, or an error with its message.</summary>
public readonly record struct TenantResolution(string? TenantId, TenantError Error, string? Message)
{
    public bool Ok => Error == TenantError.None;

    public int HttpStatus => Error switch
    {
        TenantError.Missing => 401,
        TenantError.Invalid => 400,
        _ => 200,
    };
}

/// <summary>
/// Picks the tenant of an ingest request as Tempo does. With multitenancy off everything is
/// <see cref="TenantIds.SingleTenant"/> and the header is ignored; with it on the <c>X-Scope-OrgID</c> header
/// (gRPC metadata <c>x-scope-orgid</c>) is required: missing gives dskit's "no org id".
/// </summary>
/// <remarks>Immutable and thread-safe.</remarks>
public sealed class TenantResolver
{
    /// <summary>dskit's <c>user.ErrNoOrgID</c> text, which Tempo returns.</summary>
    public const string NoOrgIdMessage = "no org id";

    public TenantResolver(bool multitenancyEnabled)
    {
        MultitenancyEnabled = multitenancyEnabled;
    }

    public bool MultitenancyEnabled { get; }

    /// <param name="headerValue">The header's value, or null when absent.</param>
    public TenantResolution Resolve(string? headerValue)
    {
        if (!MultitenancyEnabled)
        {
            return new TenantResolution(TenantIds.SingleTenant, TenantError.None, null);
        }

        if (string.IsNullOrEmpty(headerValue))
        {
            return new TenantResolution(null, TenantError.Missing, NoOrgIdMessage);
        }

        string tenant = headerValue.Trim();
        string? error = TenantIds.Validate(tenant);
        return error is null
            ? new TenantResolution(tenant, TenantError.None, null)
            : new TenantResolution(null, TenantError.Invalid, error);
    }
}
