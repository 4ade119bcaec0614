using Rubato.Common.Services;
using Xunit;

namespace Rubato.Server.Tests;

public sealed class ServiceLifecycleTests
{
    [Fact]
    public async Task BasicService_StartThenStop_PassesThroughStates()
    {
        var seen = new List<string>();
        var running = new TaskCompletionSource();
        var svc = new BasicService(
            "x",
            starting: _ => { seen.Add("starting"); return Task.CompletedTask; },
            running: async ct => { running.SetResult(); await Task.Delay(Timeout.Infinite, ct); },
            stopping: _ => { seen.Add("stopping"); return Task.CompletedTask; });

        Assert.Equal(ServiceState.New, svc.State);
        await svc.StartAsync(CancellationToken.None);
        Assert.Equal(ServiceState.Running, svc.State);
        await running.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await svc.StopAsync();

        Assert.Equal(ServiceState.Terminated, svc.State);
        Assert.Equal(["starting", "stopping"], seen);
    }

    [Fact]
    public async Task BasicService_RunningThrows_BecomesFailedAndRaisesEvent()
    {
        var failed = new TaskCompletionSource<Exception>();
        var svc = new BasicService("x", running: _ => throw new InvalidOperationException("boom"));
        svc.Failed += (_, e) => failed.TrySetResult(e);

        await svc.StartAsync(CancellationToken.None);
        var e = await failed.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal("boom", e.Message);
        Assert.Equal(ServiceState.Failed, svc.State);
        await svc.StopAsync();
    }

    [Fact]
    public async Task BasicService_StartingThrows_IsFailedAndRethrows()
    {
        var svc = new BasicService("x", starting: _ => throw new IOException("disk"));

        await Assert.ThrowsAsync<IOException>(() => svc.StartAsync(CancellationToken.None));

        Assert.Equal(ServiceState.Failed, svc.State);
        Assert.IsType<IOException>(svc.FailureCause);
    }

    [Fact]
    public async Task BasicService_StopTwice_StopsOnce()
    {
        int stops = 0;
        var svc = new BasicService("x", stopping: _ => { Interlocked.Increment(ref stops); return Task.CompletedTask; });
        await svc.StartAsync(CancellationToken.None);

        await Task.WhenAll(svc.StopAsync(), svc.StopAsync());

        Assert.Equal(1, stops);
    }
}
