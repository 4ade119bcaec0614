using System.Reflection;
using System.Runtime.InteropServices;

namespace Rubato.Server.App;

/// <summary>Version facts for <c>/api/status/buildinfo</c> and <c>-version</c>, in Tempo's JSON shape.</summary>
public static class BuildInfo
{
    public static string Version { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.1.0";

    public static string Revision { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+').ElementAtOrDefault(1) ?? "unknown";

    public static string RuntimeVersion => RuntimeInformation.FrameworkDescription;

    /// <summary>Keys as Tempo returns them; <c>goVersion</c> carries the .NET runtime, since clients expect the key.</summary>
    public static Dictionary<string, string> ToJsonObject() => new()
    {
        ["version"] = Version,
        ["revision"] = Revision,
        ["branch"] = "main",
        ["buildDate"] = File.GetLastWriteTimeUtc(typeof(BuildInfo).Assembly.Location).ToString("yyyy-MM-ddTHH:mm:ssZ"),
        ["buildUser"] = "rubato",
        ["goVersion"] = RuntimeVersion,
    };
}
