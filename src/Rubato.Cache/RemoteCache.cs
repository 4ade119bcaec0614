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
            c = await RentReadyAsync(server, cts.Token);

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

    /// <summary>
    /// Looks keys up with one round trip per server (memcached multi-key <c>get</c>, Redis pipelined <c>GET</c>s),
    /// the servers in parallel, each under its own deadline and breaker. A failing server makes only its keys miss.
    /// </summary>
    public async ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var result = new byte[]?[keys.Count];
        var groups = new Dictionary<RemoteServer, List<int>>();
        for (int i = 0; i < keys.Count; i++)
        {
            var server = PickServer(keys[i]);
            if (!groups.TryGetValue(server, out var list))
            {
                groups[server] = list = [];
            }

            list.Add(i);
        }

        if (groups.Count == 1)
        {
            foreach (var (server, idx) in groups)
            {
                await GetGroupAsync(server, idx, keys, result, cancellationToken);
            }
        }
        else
        {
            await Task.WhenAll(groups.Select(g => GetGroupAsync(g.Key, g.Value, keys, result, cancellationToken)));
        }

        return result;
    }

    /// <summary>
    /// Rents a connection and runs the protocol's handshake (<see cref="InitializeAsync"/>) the first time it is used;
    /// a connection whose handshake fails is disposed, never returned to the pool.
    /// </summary>
    private async ValueTask<CacheConnection> RentReadyAsync(RemoteServer server, CancellationToken cancellationToken)
    {
        var c = await server.Pool.RentAsync(cancellationToken);
        if (c.Initialized)
        {
            return c;
        }

        try
        {
            await InitializeAsync(c, cancellationToken);
            c.Initialized = true;
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    private async Task GetGroupAsync(RemoteServer server, List<int> indexes, IReadOnlyList<string> allKeys, byte[]?[] result, CancellationToken cancellationToken)
    {
        if (!server.Breaker.TryEnter())
        {
            _metrics.GetCircuitOpen.Inc(indexes.Count);
            return;
        }

        var keys = indexes.Select(i => allKeys[i]).ToArray();
        var values = new byte[]?[keys.Length];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(_timeout);
        CacheConnection? c = null;
        bool reported = false;
        try
        {
            c = await RentReadyAsync(server, cts.Token);

            await GetManyCoreAsync(c, keys, values, cts.Token);
            server.Pool.Return(c);
            c = null;
            server.Breaker.OnSuccess();
            reported = true;
            int hits = 0;
            for (int j = 0; j < indexes.Count; j++)
            {
                result[indexes[j]] = values[j];
                hits += values[j] is null ? 0 : 1;
            }

            _metrics.GetHit.Inc(hits);
            _metrics.GetMiss.Inc(indexes.Count - hits);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            (cts.IsCancellationRequested ? _metrics.GetTimeout : _metrics.GetError).Inc(indexes.Count);
            Fail(server);
            reported = true;
        }
        finally
        {
            if (!reported)
            {
                server.Breaker.Abandon();
            }

            c?.Dispose();
        }
    }

    /// <summary>Fills <paramref name="values"/> (same order as <paramref name="keys"/>) over one connection.</summary>
    private protected virtual async ValueTask GetManyCoreAsync(CacheConnection connection, string[] keys, byte[]?[] values, CancellationToken ct)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            values[i] = await GetCoreAsync(connection, keys[i], ct);
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
            c = await RentReadyAsync(server, cts.Token);

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
