using System.Diagnostics;
using System.Text.Json;
using Rubato.Integration.Tests.Harness;
using Xunit;

namespace Rubato.Integration.Tests;

/// <summary>The rubato-loadgen binary against a real server: a short bounded run on both protocols.</summary>
[Collection(ServerCollection.Name)]
public sealed class LoadGenTests(SharedServer shared)
{
    [Theory]
    [InlineData("grpc")]
    [InlineData("http")]
    public async Task LoadGen_TotalSpans_SendsExactlyThatManyAndReportsServerRss(string protocol)
    {
        var server = shared.Server;
        var endpoint = protocol == "grpc" ? server.OtlpGrpc : server.OtlpHttp;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            RepoPaths.LoadGenDll, "--endpoint", endpoint.ToString(), "--protocol", protocol, "--concurrency", "2",
            "--batch-spans", "200", "--traces-per-batch", "20", "--total-spans", "4000", "--pool", "4",
            "--server-pid", server.Pid.ToString(),
        })
        {
            psi.ArgumentList.Add(a);
        }

        using var proc = Process.Start(psi)!;
        var stdout = proc.StandardOutput.ReadToEndAsync();
        var stderr = proc.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await proc.WaitForExitAsync(cts.Token);
        string outText = await stdout;
        Assert.True(proc.ExitCode == 0, $"rubato-loadgen exited {proc.ExitCode}\n{outText}\n{await stderr}");

        using var report = JsonDocument.Parse(outText.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last());
        var r = report.RootElement;
        Assert.Equal(4000, r.GetProperty("SpansOk").GetInt64());
        Assert.Equal(20, r.GetProperty("Requests").GetInt64());
        Assert.Empty(r.GetProperty("Errors").EnumerateObject());
        Assert.True(r.GetProperty("PeakRssKb").GetInt64() > 10_000, "server RSS was not sampled");
        Assert.True(r.GetProperty("P99Ms").GetDouble() >= r.GetProperty("P50Ms").GetDouble());
        Assert.Contains("spans/s", outText);
    }
}
