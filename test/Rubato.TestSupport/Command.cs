using System.Diagnostics;

namespace Rubato.TestSupport;

/// <summary>Runs a set-up command (apt-get, npm) to completion.</summary>
public static class Command
{
    /// <summary>
    /// Runs <paramref name="file"/> and waits up to <paramref name="timeout"/>; a non-zero exit throws with its output.
    /// A command still running at the deadline is killed and reported.
    /// </summary>
    public static async Task RunAsync(string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file, args)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not run {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
        }

        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {await stdout}{await stderr}");
        }
    }
}
