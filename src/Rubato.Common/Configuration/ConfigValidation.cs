namespace Rubato.Common.Configuration;

/// <summary>
/// Collects what <c>Validate()</c> finds in a configuration: errors stop the process, warnings are logged.
/// Messages name the YAML key they are about.
/// </summary>
public sealed class ConfigValidation
{
    private readonly List<string> _errors = [];
    private readonly List<string> _warnings = [];

    public IReadOnlyList<string> Errors => _errors;

    public IReadOnlyList<string> Warnings => _warnings;

    public bool HasErrors => _errors.Count > 0;

    public void Error(string key, string message) => _errors.Add($"{key}: {message}");

    public void Warning(string key, string message) => _warnings.Add($"{key}: {message}");
}

/// <summary>Implemented by every component's config class.</summary>
public interface IValidatableConfig
{
    /// <param name="prefix">The YAML path of this section, e.g. <c>distributor</c>, used in messages.</param>
    void Validate(string prefix, ConfigValidation validation);
}
