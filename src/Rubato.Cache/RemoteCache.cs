using Rubato.Common.Metrics;

namespace Rubato.Cache;

/// <summary>Thrown inside a remote cache when the server answers something the client cannot use.</summary>
public sealed class CacheProtocolException(string message) : Exception(message);

/// <summary>One remote server: its connection pool and circuit breaker.</summary>
internal sealed class RemoteServer(string host, int port, int maxIdle, CircuitBreaker breaker) : IDisposable
{
    public ConnectionPool Pool { get; } = new(host, port, maxIdle);

    public CircuitBreaker Breaker { get; } = breaker;

    public void Dispose() => Pool.Dispose();
}

/// <summary>
/// The resilience shared by the memcached and Redis clients: every operation runs under a deadline (<c>timeout</c>),
/// any failure or timeout reads as a miss / dropped set and is counted, a failure also empties the server's idle pool
/// (its connections are probably dead), and a per-server <see cref="CircuitBreaker"/> skips servers that keep failing
/// until a probe succeeds. Only the caller's own cancellation propagates. Runs on the caller's thread/continuations;
/// no background work.
/// </summary>
public abstract class RemoteCache : ICache
{
    private readonly TimeSpan _timeout;
    private readonly CacheMetrics _metrics;

    private protected RemoteCache(string name, TimeSpan timeout, MetricsRegistry metrics)
    {
        Name = name;
        _timeout = timeout > TimeSpan.Zero ? timeout : TimeSpan.FromMilliseconds(500);
        _metrics = new CacheMetrics(metrics, name);
    }

    public string Name { get; }

    /// <summary>The per-operation deadline.</summary>
    public TimeSpan Timeout => _timeout;

    private protected abstract RemoteServer PickServer(string key);

    /// <summary>Per-connection setup run once on a fresh connection (Redis AUTH and SELECT).</summary>
    private protected virtual ValueTask InitializeAsync(CacheConnection connection, CancellationToken ct) => ValueTask.CompletedTask;

    private protected abstract ValueTask<byte[]?> GetCoreAsync(CacheConnection connection, string key, CancellationToken ct);

    /// <summary>Returns false when the server refused the value but the connection stays in sync.</summary>
    private protected abstract ValueTask<bool> SetCoreAsync(CacheConnection connection, string key, ReadOnlyMemory<byte> value, TimeSpan? ttl, CancellationToken ct);

    /// <summary>Whether a value of this size may be sent at all (memcached's item limit).</summary>
    private protected virtual bool Fits(string key, int valueLength) => true;

    public async ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var server = PickServer(key);
        if (!server.Breaker.TryEnter())
        {
            _metrics.GetCircuitOpen.Inc();
            return null;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(_timeout);
        CacheConnection? c = null;
        bool reported = false;
        try
        {
            c = await server.Pool.RentAsync(cts.Token);
            if (!c.Initialized)
            {
                await InitializeAsync(c, cts.Token);
                c.Initialized = true;
            }

            byte[]? value = await GetCoreAsync(c, key, cts.Token);
            server.Pool.Return(c);
            c = null;
            server.Breaker.OnSuccess();
            reported = true;
            (value is null ? _metrics.GetMiss : _metrics.GetHit).Inc();
            return value;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            (cts.IsCancellationRequested ? _metrics.GetTimeout : _metrics.GetError).Inc();
            Fail(server);
            reported = true;
            return null;
        }
        finally
        {
            if (!reported)
            {
                // The caller cancelled: no outcome to report, but a half-open probe slot must be freed.
                server.Breaker.Abandon();
            }

            c?.Dispose();
        }
    }

    public async ValueTask SetAsync(string key, ReadOnlyMemory<byte> value, TimeSpan? ttl = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!Fits(key, value.Length))
        {
            _metrics.SetTooLarge.Inc();
            return;
        }

        var server = PickServer(key);
        if (!server.Breaker.TryEnter())
        {
            _metrics.SetCircuitOpen.Inc();
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(_timeout);
        CacheConnection? c = null;
        bool reported = false;
        try
        {
            c = await server.Pool.RentAsync(cts.Token);
            if (!c.Initialized)
            {
                await InitializeAsync(c, cts.Token);
                c.Initialized = true;
            }

            bool stored = await SetCoreAsync(c, key, value, ttl, cts.Token);
            server.Pool.Return(c);
            c = null;
            server.Breaker.OnSuccess();
            reported = true; // A refusal is an answer from a healthy server.
            (stored ? _metrics.SetStored : _metrics.SetError).Inc();
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            (cts.IsCancellationRequested ? _metrics.SetTimeout : _metrics.SetError).Inc();
            Fail(server);
            reported = true;
        }
        finally
        {
            if (!reported)
            {
                // The caller cancelled: no outcome to report, but a half-open probe slot must be freed.
                server.Breaker.Abandon();
            }

            c?.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        DisposeServers();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private protected abstract void DisposeServers();

    private static void Fail(RemoteServer server)
    {
        server.Breaker.OnFailure();
        server.Pool.Clear();
    }

    /// <summary>Converts a TTL to whole milliseconds, at least 1 (a positive TTL must not become "never expires").</summary>
    private protected static long ToMilliseconds(TimeSpan ttl) => Math.Max(1, (long)Math.Ceiling(ttl.TotalMilliseconds));
}
