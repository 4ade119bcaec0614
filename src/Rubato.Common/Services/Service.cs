namespace Rubato.Common.Services;

/// <summary>Service states, as in dskit: New → Starting → Running → Stopping → Terminated, or Failed from any of them.</summary>
public enum ServiceState
{
    New,
    Starting,
    Running,
    Stopping,
    Terminated,
    Failed,
}

/// <summary>
/// A component with an explicit lifecycle. The module manager starts a service only after its dependencies are
/// Running and stops it before them.
/// </summary>
public interface IService
{
    string Name { get; }

    ServiceState State { get; }

    /// <summary>Set when <see cref="State"/> is Failed.</summary>
    Exception? FailureCause { get; }

    /// <summary>Runs Starting; completes when the service is Running (or throws when it failed to start).</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Stops a Running service: cancels its run loop, then runs Stopping. Idempotent.</summary>
    Task StopAsync();
}

/// <summary>
/// A service built from three optional functions, like dskit's <c>NewBasicService(starting, running, stopping)</c>.
/// </summary>
/// <remarks>
/// Threads: <see cref="StartAsync"/> and <see cref="StopAsync"/> are called by the module manager one at a time.
/// The running function runs on the thread pool until its token is cancelled; if it ends with an exception the
/// service becomes Failed and <see cref="Failed"/> fires, which makes the process shut down.
/// </remarks>
public class BasicService : IService
{
    private readonly Func<CancellationToken, Task>? _starting;
    private readonly Func<CancellationToken, Task>? _running;
    private readonly Func<Exception?, Task>? _stopping;
    private readonly CancellationTokenSource _runCts = new();
    private readonly object _gate = new();
    private Task? _runTask;
    private Task? _stopTask;
    private volatile ServiceState _state = ServiceState.New;

    public BasicService(string name, Func<CancellationToken, Task>? starting = null, Func<CancellationToken, Task>? running = null, Func<Exception?, Task>? stopping = null)
    {
        Name = name;
        _starting = starting;
        _running = running;
        _stopping = stopping;
    }

    public string Name { get; }

    public ServiceState State => _state;

    public Exception? FailureCause { get; private set; }

    /// <summary>Raised (once) when the running function fails.</summary>
    public event Action<IService, Exception>? Failed;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_state != ServiceState.New)
        {
            throw new InvalidOperationException($"service {Name} cannot start from state {_state}");
        }

        _state = ServiceState.Starting;
        try
        {
            if (_starting is not null)
            {
                await _starting(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            FailureCause = e;
            _state = ServiceState.Failed;
            throw;
        }

        _state = ServiceState.Running;
        if (_running is not null)
        {
            _runTask = Task.Run(() => RunAsync(_runCts.Token), CancellationToken.None);
        }
    }

    private async Task RunAsync(CancellationToken token)
    {
        try
        {
            await _running!(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Normal stop.
        }
        catch (Exception e)
        {
            FailureCause = e;
            _state = ServiceState.Failed;
            Failed?.Invoke(this, e);
        }
    }

    public Task StopAsync()
    {
        lock (_gate)
        {
            return _stopTask ??= StopCoreAsync();
        }
    }

    private async Task StopCoreAsync()
    {
        if (_state is ServiceState.New or ServiceState.Terminated)
        {
            _state = ServiceState.Terminated;
            return;
        }

        bool failed = _state == ServiceState.Failed;
        if (!failed)
        {
            _state = ServiceState.Stopping;
        }

        await _runCts.CancelAsync().ConfigureAwait(false);
        if (_runTask is not null)
        {
            await _runTask.ConfigureAwait(false);
        }

        if (_stopping is not null)
        {
            await _stopping(FailureCause).ConfigureAwait(false);
        }

        if (!failed)
        {
            _state = ServiceState.Terminated;
        }
    }
}
