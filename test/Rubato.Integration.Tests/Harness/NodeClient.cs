using System.Diagnostics;
using System.Text.Json;

namespace Rubato.Integration.Tests.Harness;

/// <summary>What a client script reports after a successful send: lower-case hex ids.</summary>
public sealed record SentTrace(string TraceId, string Root, string Child, string Grandchild, string? LinkTraceId, string? LinkSpanId);

/// <summary>Runs one of the node scripts in test/clients (unmodified npm clients) and parses its JSON line.</summary>
public static class NodeClient
{
    public static async Task<SentTrace> RunAsync(string script, params string[] args)
    {
        RepoPaths.RequireNodeModules();
        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoPaths.ClientsDir,
        };
        psi.ArgumentList.Add(Path.Combine(RepoPaths.ClientsDir, script));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var proc = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
        var stdout = proc.StandardOutput.ReadToEndAsync();
        var stderr = proc.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await proc.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            proc.Kill(entireProcessTree: true);
            throw new TimeoutException($"node {script} did not finish within 60s; stderr: {await stderr}");
        }

        string outText = await stdout, errText = await stderr;
        if (proc.ExitCode != 0)
        {
            throw new InvalidOperationException($"node {script} {string.Join(' ', args)} exited {proc.ExitCode}\nstdout: {outText}\nstderr: {errText}");
        }

        string line = outText.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last();
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        var spans = r.GetProperty("spans");
        string? linkTrace = null, linkSpan = null;
        if (r.TryGetProperty("link", out var link))
        {
            linkTrace = TraceJson.Id(link.GetProperty("traceId").GetString()!, 16);
            linkSpan = TraceJson.Id(link.GetProperty("spanId").GetString()!, 8);
        }

        return new SentTrace(
            TraceJson.Id(r.GetProperty("traceId").GetString()!, 16),
            TraceJson.Id(spans.GetProperty("root").GetString()!, 8),
            TraceJson.Id(spans.GetProperty("child").GetString()!, 8),
            TraceJson.Id(spans.GetProperty("grandchild").GetString()!, 8),
            linkTrace,
            linkSpan);
    }
}
