using System.Collections.Concurrent;
using Rubato.Integration.Tests.Harness;
using Rubato.LoadGen.Otlp;
using Xunit;
using Xunit.Abstractions;

namespace Rubato.Integration.Tests;

/// <summary>Acknowledged spans survive kill -9, exactly once, before and after a flush to blocks.</summary>
[Collection(ServerCollection.Name)]
public sealed class DurabilityTests(ITestOutputHelper output)
{
    private const int Traces = 2000;
    private const int SpansPerTrace = 10;
    private const int TracesPerBatch = 100;

    [Fact]
    public async Task KillDashNine_AfterAcks_EveryAcknowledgedSpanComesBackExactlyOnce()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1}s {what}");
        await using var server = await RubatoProcess.StartAsync(output: output);
        Phase("server ready");
        var batches = Enumerable.Range(0, Traces / TracesPerBatch).Select(_ => Pushes.NewBatch(TracesPerBatch, SpansPerTrace)).ToList();

        var acked = new ConcurrentBag<BuiltTrace>();
        using (var sender = new GrpcOtlpSender(server.OtlpGrpc))
        {
            await Parallel.ForEachAsync(batches, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (batch, ct) =>
            {
                var result = await sender.SendAsync(batch.Body, null, ct);
                Assert.True(result.Ok, $"push failed: {result.Status} {result.Message}");
                foreach (var t in batch.Traces)
                {
                    acked.Add(t);
                }
            });
        }

        Assert.Equal(Traces, acked.Count);
        Phase($"{Traces * SpansPerTrace} spans acknowledged");
        await server.KillAsync();
        await server.RestartAsync();
        Phase("killed and restarted");
        await AssertAllExactlyOnceAsync(server, acked, "after kill -9 and restart");
        Phase("all traces verified after restart");

        using (var flush = await server.Http.GetAsync("/flush"))
        {
            Assert.True(flush.IsSuccessStatusCode, $"/flush answered {(int)flush.StatusCode}");
        }

        Phase("flushed");
        await AssertAllExactlyOnceAsync(server, acked, "after /flush");
        Phase("all traces verified after flush");

        // Flushed blocks, the WAL and the restart replay must not double anything up either.
        await server.RestartAsync();
        Phase("restarted after flush");
        await AssertAllExactlyOnceAsync(server, acked, "after /flush, kill -9 and restart");
        Phase("all traces verified after the second restart");
    }

    private static async Task AssertAllExactlyOnceAsync(RubatoProcess server, IEnumerable<BuiltTrace> traces, string when)
    {
        // One deadline for the whole sweep, so a server that lost everything fails in bounded time.
        var deadline = DateTime.UtcNow.AddSeconds(180);
        var problems = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(traces, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (t, _) =>
        {
            string hex = Pushes.Hex(t.TraceId);
            List<SpanView> spans;
            try
            {
                spans = await server.WaitForTraceAsync(hex, SpansPerTrace, timeout: TimeSpan.FromTicks(Math.Max(0, (deadline - DateTime.UtcNow).Ticks)));
            }
            catch (TimeoutException e)
            {
                problems.Add(e.Message);
                return;
            }

            var got = spans.Select(s => s.SpanId).OrderBy(x => x, StringComparer.Ordinal).ToList();
            var want = t.SpanIds.Select(id => id.ToString("x16")).OrderBy(x => x, StringComparer.Ordinal).ToList();
            if (!got.SequenceEqual(want))
            {
                problems.Add($"{hex}: {got.Count} spans back ({got.Distinct().Count()} distinct), want {want.Count}");
            }
        });

        Assert.True(problems.IsEmpty, $"{when}: {problems.Count} traces wrong, e.g. {string.Join("; ", problems.Take(5))}");
    }
}
