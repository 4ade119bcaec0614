using System.Reflection;

namespace Rubato.TestSupport;

/// <summary>Where the repository is: the nearest ancestor of the running assembly holding <c>Rubato.slnx</c>.</summary>
public static class RepoRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Rubato.slnx")))
            {
                return dir.FullName;
            }
        }

        // Built outside the tree (--artifacts-path): this project records the repository at build time.
        string? recorded = typeof(RepoRoot).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RubatoRepoRoot")?.Value;
        if (recorded is not null && File.Exists(System.IO.Path.Combine(recorded, "Rubato.slnx")))
        {
            return System.IO.Path.GetFullPath(recorded);
        }

        throw new InvalidOperationException($"no Rubato.slnx above {AppContext.BaseDirectory} nor at the recorded '{recorded}'");
    }
}
