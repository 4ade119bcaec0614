using System.Diagnostics;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Xunit;

namespace Rubato.Compaction.Tests;

/// <summary>
/// The real thing: a child process compacts the blocks and is killed with SIGKILL (<see cref="Process.Kill(bool)"/>
/// on Unix) at a chosen step, or right after it starts; then a rerun in this process must find every span exactly once
/// and no partial block visible.
/// </summary>
public sealed class KillTests
{
    [Theory]
    [InlineData("ProvenanceWritten")]
    [InlineData("OutputWritten")]
    [InlineData("InputMarked")]
    [InlineData("none")]
    public async Task CompactAsync_ChildProcessKilledWithSigkill_RerunCompletesWithoutLossOrDuplicates(string killAt)
    {
        using var f = new Fixture();
        var (inputs, expected) = await CrashTests.WriteOverlappingBlocksAsync(f);
        Guid outId = BlockLifecycle.CompactionOutputId(Fixture.Tenant, inputs);

        string host = Path.Combine(AppContext.BaseDirectory, "Rubato.Compaction.CrashHost.dll");
        Assert.True(File.Exists(host), "crash host not built next to the tests: " + host);
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { host, f.Store.RootPath, Fixture.Tenant, killAt }.Concat(inputs.Select(i => i.ToString("D"))))
        {
            psi.ArgumentList.Add(a);
        }

        // Both pipes are drained by events so the child can never block on a full pipe.
        string want = killAt == "none" ? "STARTED" : "AT " + killAt;
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var child = new Process { StartInfo = psi, EnableRaisingEvents = true };
        child.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            output.Enqueue(e.Data);
            if (e.Data == want)
            {
                reached.TrySetResult();
            }
        };
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output.Enqueue("stderr: " + e.Data);
            }
        };
        child.Exited += (_, _) => reached.TrySetResult();
        Assert.True(child.Start());
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        try
        {
            await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            // Reported by the assertion below, with the child's output.
        }
        finally
        {
            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync();
        }

        Assert.True(output.Contains(want), $"child did not reach '{want}'; its output: {string.Join(" | ", output)}");
        if (killAt != "none")
        {
            Assert.NotEqual(0, child.ExitCode); // Killed while parked at the step. ("none" may finish before the kill lands.)
        }

        // Whatever the kill left: readers see each span once and no output without meta.json.
        var reader = new BackendTraceReader(f.Store);
        await CrashTests.AssertReaderSeesExactlyAsync(reader, expected);
        bool outputHasMeta = await f.Store.ExistsAsync(ObjectKeys.BlockObject(Fixture.Tenant, outId, ObjectKeys.MetaName), CancellationToken.None);
        Assert.Equal(outputHasMeta, reader.Blocks(Fixture.Tenant).Any(b => b.BlockId == outId));
        if (killAt is "OutputWritten" or "InputMarked")
        {
            Assert.True(outputHasMeta);
        }
        else if (killAt == "ProvenanceWritten")
        {
            Assert.False(outputHasMeta);
        }

        await f.Compactor().CompactAsync(Fixture.Tenant, inputs, CancellationToken.None);
        await CrashTests.AssertCompactedOnceAsync(f, inputs, outId, expected);
    }
}
