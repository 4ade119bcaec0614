namespace Rubato.Cache;

/// <summary>
/// Stops calls to a failing server: after <c>consecutiveFailures</c> failures in a row it opens for
/// <c>openFor</c>; then it lets exactly one probe call through (half-open). A successful probe closes it, a failed one
/// opens it again for another period. Lock-free; called from any thread.
/// </summary>
public sealed class CircuitBreaker
{
    private readonly int _threshold;
    private readonly long _openForTicks;
    private readonly TimeProvider _time;
    private int _failures;
    private long _openUntil;
    private int _probing;

    public CircuitBreaker(int consecutiveFailures, TimeSpan openFor, TimeProvider? time = null)
    {
        _threshold = Math.Max(1, consecutiveFailures);
        _time = time ?? TimeProvider.System;
        _openForTicks = (long)(openFor.TotalSeconds * _time.TimestampFrequency);
    }

    /// <summary>True while calls are refused (open and not yet due for a probe, or a probe is in flight).</summary>
    public bool IsOpen => Volatile.Read(ref _failures) >= _threshold;

    /// <summary>Whether a call may go out now. When it returns true the caller must report the outcome.</summary>
    public bool TryEnter()
    {
        if (Volatile.Read(ref _failures) < _threshold)
        {
            return true;
        }

        if (_time.GetTimestamp() < Volatile.Read(ref _openUntil))
        {
            return false;
        }

        // Half-open: one probe at a time.
        return Interlocked.CompareExchange(ref _probing, 1, 0) == 0;
    }

    public void OnSuccess()
    {
        Volatile.Write(ref _failures, 0);
        Volatile.Write(ref _probing, 0);
    }

    /// <summary>The call ended without an outcome (the caller cancelled): lets another probe go out.</summary>
    public void Abandon() => Volatile.Write(ref _probing, 0);

    public void OnFailure()
    {
        if (Interlocked.Increment(ref _failures) >= _threshold)
        {
            Volatile.Write(ref _openUntil, _time.GetTimestamp() + _openForTicks);
            Volatile.Write(ref _probing, 0);
        }
    }
}
