using System.Reflection;

namespace Rubato.Integration.Tests.Harness;

/// <summary>Where the repository, the built server and the node clients are.</summary>
public static class RepoPaths
{
    /// <summary>The repository root: the nearest ancestor holding Rubato.slnx (<see cref="RepoRoot"/>).</summary>
    public static string Root => RepoRoot.Path;

    /// <summary>
    /// The built <c>rubato.dll</c>. The test project builds the server (a non-referencing ProjectReference) and records
    /// its output path in assembly metadata <c>RubatoServerDll</c>; <c>RUBATO_SERVER_DLL</c> overrides it.
    /// </summary>
    public static string ServerDll
    {
        get
        {
            string? path = Environment.GetEnvironmentVariable("RUBATO_SERVER_DLL");
            if (string.IsNullOrEmpty(path))
            {
                path = typeof(RepoPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                    .FirstOrDefault(a => a.Key == "RubatoServerDll")?.Value;
            }

            if (string.IsNullOrEmpty(path) || !File.Exists(path))
            {
                throw new InvalidOperationException(
                    $"rubato.dll not found at '{path}'. Build the solution first (dotnet build Rubato.slnx -c Release) or set RUBATO_SERVER_DLL.");
            }

            return path;
        }
    }

    /// <summary>The built <c>rubato-loadgen.dll</c> (assembly metadata <c>RubatoLoadGenDll</c>).</summary>
    public static string LoadGenDll
    {
        get
        {
            string? path = typeof(RepoPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "RubatoLoadGenDll")?.Value;
            return !string.IsNullOrEmpty(path) && File.Exists(path)
                ? path
                : throw new InvalidOperationException($"rubato-loadgen.dll not found at '{path}'. Build the solution first.");
        }
    }

    public static string ClientsDir => Path.Combine(Root, "test", "clients");

    /// <summary>Fails with a clear message when the npm clients are not installed (CI runs <c>npm ci</c> first).</summary>
    public static void RequireNodeModules()
    {
        string modules = Path.Combine(ClientsDir, "node_modules");
        if (!Directory.Exists(Path.Combine(modules, "@opentelemetry", "sdk-trace-base")) || !Directory.Exists(Path.Combine(modules, "jaeger-client")))
        {
            throw new InvalidOperationException(
                $"node clients are not installed in {modules}: run `npm ci --prefix test/clients` (.ci/run does this).");
        }
    }
}
