using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Rubato.Grpc.Tests;

/// <summary>A fact that is skipped only when <c>node</c> is not installed (CI installs it).</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public NodeFactAttribute()
    {
        if (NodeInteropTests.FindOnPath("node") is null)
        {
            Skip = "node is not installed";
        }
    }
}

/// <summary>A real gRPC implementation (@grpc/grpc-js, test/Rubato.Grpc.Tests/interop) against our server.</summary>
public sealed class NodeInteropTests
{
    [NodeFact]
    public async Task GrpcJsClient_UnaryErrorAndStreamingWithGzip_Interoperate()
    {
        var interop = InteropDirectory();
        if (!File.Exists(Path.Combine(interop, "node_modules", "@grpc", "grpc-js", "package.json")))
        {
            var npm = FindOnPath("npm") ?? throw new InvalidOperationException("node is installed but npm is not: cannot install @grpc/grpc-js");
            var (code, output) = await RunAsync(npm, ["ci", "--no-audit", "--no-fund"], interop);
            Assert.True(code == 0, $"npm ci failed ({code}): {output}");
        }
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var host = await GrpcTestHost.StartAsync(e =>
        {
            var options = new GrpcServerOptions { EnableResponseCompression = true };
            e.MapGrpcUnary("rubato.interop.Echo", "Unary", (ctx, req) =>
            {
                seen.Enqueue($"unary encoding={ctx.GetHeader("grpc-encoding")} tenant={ctx.GetHeader("x-scope-orgid")} accept={ctx.GetHeader("grpc-accept-encoding")} deadline={ctx.Deadline is not null}");
                return ValueTask.FromResult<ReadOnlyMemory<byte>>(System.Text.Encoding.UTF8.GetBytes("echo: " + System.Text.Encoding.UTF8.GetString(req.Span)[..15]));
            }, options);
            e.MapGrpcUnary("rubato.interop.Echo", "Fail", (ctx, req) =>
                throw new GrpcException(GrpcStatusCode.NotFound, "trace not found: 100% ünïcode\nsecond line"), options);
            e.MapGrpcServerStreaming("rubato.interop.Echo", "Stream", async (ctx, req, writer) =>
            {
                var n = int.Parse(System.Text.Encoding.ASCII.GetString(req.Span), System.Globalization.CultureInfo.InvariantCulture);
                for (var i = 0; i < n; i++)
                {
                    await writer.WriteAsync(System.Text.Encoding.UTF8.GetBytes($"part {i} " + new string('z', 200)));
                }
            }, options);
        });

        var (exit, stdout) = await RunAsync(FindOnPath("node")!, [Path.Combine(interop, "interop.js"), $"127.0.0.1:{host.Address.Port}"], interop);

        Assert.True(exit == 0, $"node exited {exit}: {stdout}");
        using var json = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        var root = json.RootElement;
        Assert.Equal("echo: hello from node", root.GetProperty("unary").GetString());
        Assert.Equal(5, root.GetProperty("fail").GetProperty("code").GetInt32()); // NOT_FOUND
        Assert.Equal("trace not found: 100% ünïcode\nsecond line", root.GetProperty("fail").GetProperty("details").GetString());
        var messages = root.GetProperty("stream").GetProperty("messages").EnumerateArray().Select(m => m.GetString()).ToList();
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"part {i} " + new string('z', 200)), messages);
        var unarySeen = Assert.Single(seen);
        Assert.Contains("encoding=gzip", unarySeen); // grpc-js compressed its request
        Assert.Contains("tenant=node-tenant", unarySeen);
        Assert.Contains("gzip", unarySeen[unarySeen.IndexOf("accept=", StringComparison.Ordinal)..]);
        Assert.Contains("deadline=True", unarySeen);
    }

    internal static string? FindOnPath(string program)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    // The script and package files are copied next to the test assembly; node_modules is installed there.
    private static string InteropDirectory() => Path.Combine(AppContext.BaseDirectory, "interop");

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, string workingDirectory)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within 3 minutes");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
