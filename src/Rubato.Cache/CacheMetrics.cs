using Rubato.Common.Metrics;

namespace Rubato.Cache;

/// <summary>
/// <c>rubato_cache_requests_total{cache,op,result}</c>: op is <c>get</c> or <c>set</c>; result is <c>hit</c>,
/// <c>miss</c>, <c>stored</c>, <c>error</c> (backend failed or answered an error), <c>timeout</c>,
/// <c>circuit_open</c> (not tried: the breaker is open) or <c>too_large</c> (set skipped).
/// The children are looked up once per cache, so counting is one interlocked add.
/// </summary>
public sealed class CacheMetrics
{
    public CacheMetrics(MetricsRegistry registry, string cacheName)
    {
        var c = registry.Counter("rubato_cache_requests_total", "Cache requests by cache, operation and result.", "cache", "op", "result");
        GetHit = c.WithLabels(cacheName, "get", "hit");
        GetMiss = c.WithLabels(cacheName, "get", "miss");
        GetError = c.WithLabels(cacheName, "get", "error");
        GetTimeout = c.WithLabels(cacheName, "get", "timeout");
        GetCircuitOpen = c.WithLabels(cacheName, "get", "circuit_open");
        SetStored = c.WithLabels(cacheName, "set", "stored");
        SetError = c.WithLabels(cacheName, "set", "error");
        SetTimeout = c.WithLabels(cacheName, "set", "timeout");
        SetCircuitOpen = c.WithLabels(cacheName, "set", "circuit_open");
        SetTooLarge = c.WithLabels(cacheName, "set", "too_large");
    }

    internal Counter.Child GetHit { get; }

    internal Counter.Child GetMiss { get; }

    internal Counter.Child GetError { get; }

    internal Counter.Child GetTimeout { get; }

    internal Counter.Child GetCircuitOpen { get; }

    internal Counter.Child SetStored { get; }

    internal Counter.Child SetError { get; }

    internal Counter.Child SetTimeout { get; }

    internal Counter.Child SetCircuitOpen { get; }

    internal Counter.Child SetTooLarge { get; }
}
