namespace Rubato.Common.Tenancy;

/// <summary>Tenant id rules, as Tempo (and Cortex) apply them to <c>X-Scope-OrgID</c>.</summary>
public static class TenantIds
{
    /// <summary>The tenant used for everything when <c>multitenancy_enabled</c> is false.</summary>
    public const string SingleTenant = "single-tenant";

    public const string HeaderName = "X-Scope-OrgID";

    public const int MaxLength = 150;

    /// <summary>
    /// Validates one tenant id: 1..150 bytes of <c>[0-9a-zA-Z!-_.*'()]</c>, not <c>.</c> or <c>..</c>.
    /// </summary>
    /// <returns>Null when valid, else a message naming the problem.</returns>
    public static string? Validate(string tenantId)
    {
        if (tenantId.Length == 0)
        {
            return "tenant ID is empty";
        }

        if (tenantId.Length > MaxLength)
        {
            return $"tenant ID is too long: max {MaxLength} characters";
        }

        if (tenantId is "." or "..")
        {
            return "tenant ID is '.' or '..'";
        }

        foreach (char c in tenantId)
        {
            if (!IsAllowed(c))
            {
                return $"tenant ID '{tenantId}' contains unsupported character '{c}'";
            }
        }

        return null;
    }

    private static bool IsAllowed(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
            or '!' or '-' or '_' or '.' or '*' or '\'' or '(' or ')';
}
