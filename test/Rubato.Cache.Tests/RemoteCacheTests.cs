using System.Diagnostics;
using Rubato.Common.Metrics;
using Rubato.TestSupport;
using Xunit;

namespace Rubato.Cache.Tests;

/// <summary>
/// Behaviour every remote cache shares, run against a real server process (memcached or redis-server).
/// Each test class instance gets its own server on a free port, stopped on dispose.
/// </summary>
public abstract class RemoteCacheTests : IAsyncLifetime
{
    protected MetricsRegistry Metrics { get; } = new();

    protected ServerProcess Server { get; private set; } = null!;

    protected abstract Task<ServerProcess> StartServerAsync();

    /// <summary>A cache on <paramref name="address"/> with the given timeout and breaker settings.</summary>
    protected abstract RemoteCache CreateCache(string address, TimeSpan timeout, int breakerFailures, TimeSpan breakerOpenFor);

    protected RemoteCache CreateCache() => CreateCache(Server.Address, TimeSpan.FromSeconds(2), 3, TimeSpan.FromMilliseconds(200));

    public async Task InitializeAsync() => Server = await StartServerAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    protected double Count(string cache, string op, string result) =>
        Metrics.Counter("rubato_cache_requests_total", "", "cache", "op", "result").Value(cache, op, result);

    protected static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < timeout, $"timed out after {timeout} waiting until {what}");
            await Task.Delay(50); // Polling interval, not a fixed wait.
        }
    }

    [Fact]
    public async Task GetAsync_AfterSet_ReturnsTheSameBytes()
    {
        await using var cache = CreateCache();
        byte[] value = "hello \r\nEND\r\n\0world"u8.ToArray();
        await cache.SetAsync("k1", value);
        Assert.Equal(value, await cache.GetAsync("k1"));
        Assert.Equal(1, Count(cache.Name, "get", "hit"));
        Assert.Equal(1, Count(cache.Name, "set", "stored"));
    }

    [Fact]
    public async Task GetAsync_BinaryValueOfEveryByte_RoundTrips()
    {
        await using var cache = CreateCache();
        byte[] value = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 % 256)).ToArray();
        await cache.SetAsync("binary", value);
        Assert.Equal(value, await cache.GetAsync("binary"));
        await cache.SetAsync("empty", ReadOnlyMemory<byte>.Empty);
        byte[]? empty = await cache.GetAsync("empty");
        Assert.NotNull(empty);
        Assert.Empty(empty);
    }

    [Fact]
    public async Task GetAsync_MissingKey_ReturnsNullAndCountsMiss()
    {
        await using var cache = CreateCache();
        Assert.Null(await cache.GetAsync("never-set"));
        Assert.Equal(1, Count(cache.Name, "get", "miss"));
    }

    [Fact]
    public async Task SetAsync_OverwritesPreviousValue()
    {
        await using var cache = CreateCache();
        await cache.SetAsync("k", "one"u8.ToArray());
        await cache.SetAsync("k", "two"u8.ToArray());
        Assert.Equal("two"u8.ToArray(), await cache.GetAsync("k"));
    }

    [Fact]
    public async Task GetAsync_KeyWithSpacesAndUnicodeAndOver250Chars_RoundTrips()
    {
        await using var cache = CreateCache();
        string longKey = "sj:tenant " + new string('x', 400) + " ✓";
        await cache.SetAsync(longKey, "long"u8.ToArray());
        await cache.SetAsync(longKey + "2", "other"u8.ToArray());
        Assert.Equal("long"u8.ToArray(), await cache.GetAsync(longKey));
        Assert.Equal("other"u8.ToArray(), await cache.GetAsync(longKey + "2"));
    }

    [Fact]
    public async Task SetAsync_WithTtl_ValueExpires()
    {
        await using var cache = CreateCache();
        await cache.SetAsync("ttl", "v"u8.ToArray(), TimeSpan.FromSeconds(2));
        Assert.NotNull(await cache.GetAsync("ttl"));
        await WaitUntilAsync(async () => await cache.GetAsync("ttl") is null, TimeSpan.FromSeconds(10), "the value expired");
    }

    [Fact]
    public async Task GetAsync_ManyConcurrentTasks_EveryValueIsCorrect()
    {
        await using var cache = CreateCache();
        var tasks = Enumerable.Range(0, 32).Select(t => Task.Run(async () =>
        {
            for (int i = 0; i < 50; i++)
            {
                string key = $"c:{t}:{i}";
                byte[] value = BitConverter.GetBytes((t * 1000) + i).Concat(new byte[i * 37]).ToArray();
                await cache.SetAsync(key, value);
                Assert.Equal(value, await cache.GetAsync(key));
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(32 * 50, Count(cache.Name, "get", "hit"));
    }

    [Fact]
    public async Task GetManyAsync_MixedHitsAndMisses_ReturnsInKeyOrder()
    {
        await using var cache = CreateCache();
        await cache.SetAsync("a", "1"u8.ToArray());
        await cache.SetAsync("c", "3"u8.ToArray());
        var values = await cache.GetManyAsync(["a", "b", "c"]);
        Assert.Equal("1"u8.ToArray(), values[0]);
        Assert.Null(values[1]);
        Assert.Equal("3"u8.ToArray(), values[2]);
    }

    [Fact]
    public async Task GetManyAsync_HundredsOfKeysWithDuplicates_MatchesSingleGets()
    {
        await using var cache = CreateCache();
        var keys = new List<string>();
        for (int i = 0; i < 300; i++)
        {
            keys.Add($"many {i}"); // The space forces memcached key hashing.
            if (i % 3 == 0)
            {
                await cache.SetAsync($"many {i}", BitConverter.GetBytes(i));
            }
        }

        keys.Add("many 0");
        keys.Add("many 1");
        var values = await cache.GetManyAsync(keys);
        for (int i = 0; i < keys.Count; i++)
        {
            Assert.Equal(await cache.GetAsync(keys[i]), values[i]);
        }

        Assert.Equal(BitConverter.GetBytes(0), values[0]);
        Assert.Null(values[1]);
        Assert.NotNull(values[300]);
        Assert.Null(values[301]);
    }

    [Fact]
    public async Task GetManyAsync_ServerDown_AllMissFast()
    {
        await using var cache = CreateCache(Server.Address, TimeSpan.FromMilliseconds(500), 3, TimeSpan.FromSeconds(30));
        await cache.SetAsync("a", "1"u8.ToArray());
        await Server.StopAsync();
        var sw = Stopwatch.StartNew();
        var values = await cache.GetManyAsync(["a", "b", "c"]);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"took {sw.Elapsed}");
        Assert.All(values, Assert.Null);
        Assert.Equal(3, Count(cache.Name, "get", "error") + Count(cache.Name, "get", "timeout"));
    }

    [Fact]
    public async Task GetAsync_ServerStoppedMidRun_MissesFastThenRecoversAfterRestart()
    {
        await using var cache = CreateCache(Server.Address, TimeSpan.FromMilliseconds(500), 3, TimeSpan.FromMilliseconds(200));
        await cache.SetAsync("before", "v"u8.ToArray());
        Assert.NotNull(await cache.GetAsync("before"));

        await Server.StopAsync();
        for (int i = 0; i < 10; i++)
        {
            var sw = Stopwatch.StartNew();
            Assert.Null(await cache.GetAsync("before"));
            await cache.SetAsync("during", "x"u8.ToArray()); // Must not throw.
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"get+set with the server down took {sw.Elapsed}");
        }

        Assert.True(Count(cache.Name, "get", "error") + Count(cache.Name, "get", "circuit_open") >= 10);
        Assert.True(Count(cache.Name, "get", "circuit_open") > 0, "the breaker never opened");

        await Server.StartAsync();
        await WaitUntilAsync(async () =>
        {
            await cache.SetAsync("after", "back"u8.ToArray());
            return await cache.GetAsync("after") is { } v && v.SequenceEqual("back"u8.ToArray());
        }, TimeSpan.FromSeconds(10), "the cache works again after the restart");
    }

    [Fact]
    public async Task GetAsync_ServerAcceptsButNeverAnswers_TimesOutWithinTheConfiguredTimeout()
    {
        using var silent = new SilentServer();
        var timeout = TimeSpan.FromMilliseconds(200);
        await using var cache = CreateCache(silent.Address, timeout, 100, TimeSpan.FromSeconds(30));
        var times = new List<TimeSpan>();
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            Assert.Null(await cache.GetAsync("k"));
            times.Add(sw.Elapsed);
            sw.Restart();
            await cache.SetAsync("k", "v"u8.ToArray());
            times.Add(sw.Elapsed);
        }

        // Without the deadline every op would hang until the test host is killed. Each op must end near the timeout;
        // the per-op ceiling leaves room for a scheduling stall on a loaded 2-core CI box, the median must be tight.
        string all = string.Join(", ", times.Select(t => $"{t.TotalMilliseconds:F0}ms"));
        Assert.True(times.All(t => t < timeout + TimeSpan.FromSeconds(1)), $"an op overran its {timeout} timeout: {all}");
        Assert.True(times.Order().ElementAt(times.Count / 2) < timeout * 2, $"median op far over the {timeout} timeout: {all}");
        Assert.Equal(5, Count(cache.Name, "get", "timeout"));
        Assert.Equal(5, Count(cache.Name, "set", "timeout"));
    }

    [Fact]
    public async Task GetAsync_AfterConsecutiveFailures_BreakerSkipsTheServer()
    {
        using var silent = new SilentServer();
        await using var cache = CreateCache(silent.Address, TimeSpan.FromMilliseconds(100), 2, TimeSpan.FromMinutes(5));
        Assert.Null(await cache.GetAsync("k"));
        Assert.Null(await cache.GetAsync("k"));
        var sw = Stopwatch.StartNew();
        Assert.Null(await cache.GetAsync("k"));
        // The metric proves no attempt was made; the time bound only rules out waiting for the 100 ms deadline
        // plus a scheduling stall.
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(500), $"an open breaker still took {sw.Elapsed}");
        Assert.Equal(2, Count(cache.Name, "get", "timeout"));
        Assert.Equal(1, Count(cache.Name, "get", "circuit_open"));
    }

    [Fact]
    public async Task GetAsync_CallerCancelsTheHalfOpenProbe_NextCallProbesAgain()
    {
        using var silent = new SilentServer();
        await using var cache = CreateCache(silent.Address, TimeSpan.FromMilliseconds(300), 1, TimeSpan.FromMilliseconds(100));
        Assert.Null(await cache.GetAsync("k")); // Times out and opens the breaker.
        await WaitUntilAsync(async () =>
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            try
            {
                await cache.GetAsync("k", cts.Token); // A miss by circuit_open until the period ends.
                return false;
            }
            catch (OperationCanceledException)
            {
                return true; // The probe went out and the caller cancelled it.
            }
        }, TimeSpan.FromSeconds(5), "a probe was cancelled by its caller");
        double timeouts = Count(cache.Name, "get", "timeout");
        Assert.Null(await cache.GetAsync("k")); // Must be tried (and time out), not refused as circuit_open forever.
        Assert.Equal(timeouts + 1, Count(cache.Name, "get", "timeout"));
    }

    [Fact]
    public async Task GetAsync_CallerCancelled_Throws()
    {
        await using var cache = CreateCache();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await cache.GetAsync("k", cts.Token));
    }
}

public sealed class MemcachedCacheTests : RemoteCacheTests
{
    protected override Task<ServerProcess> StartServerAsync() => CacheServers.StartMemcachedAsync();

    protected override RemoteCache CreateCache(string address, TimeSpan timeout, int breakerFailures, TimeSpan breakerOpenFor) =>
        new MemcachedCache("memcached-test", new MemcachedConfig
        {
            Addresses = address,
            Timeout = timeout,
            CircuitBreakerConsecutiveFailures = breakerFailures,
            CircuitBreakerTimeout = breakerOpenFor,
        }, Metrics);

    [Fact]
    public async Task GetAsync_ValueNearTheServerItemLimit_RoundTrips()
    {
        await using var cache = CreateCache();
        byte[] value = new byte[(1024 * 1024) - 4096];
        new Random(1).NextBytes(value);
        await cache.SetAsync("big", value);
        Assert.Equal(value, await cache.GetAsync("big"));
    }

    [Fact]
    public async Task SetAsync_ValueOverTheServerItemLimit_IsRefusedWithoutThrowing()
    {
        await using var cache = CreateCache();
        await cache.SetAsync("huge", new byte[2 * 1024 * 1024]);
        Assert.Null(await cache.GetAsync("huge"));
        Assert.Equal(1, Count(cache.Name, "set", "error"));
        await cache.SetAsync("small", "ok"u8.ToArray()); // The connection is still usable.
        Assert.Equal("ok"u8.ToArray(), await cache.GetAsync("small"));
    }

    [Fact]
    public async Task SetAsync_ValueOverMaxItemSize_IsSkippedClientSide()
    {
        await using var cache = new MemcachedCache("memcached-limit", new MemcachedConfig { Addresses = Server.Address, MaxItemSize = 100 }, Metrics);
        await cache.SetAsync("big", new byte[101]);
        await cache.SetAsync("fits", new byte[100]);
        Assert.Null(await cache.GetAsync("big"));
        Assert.NotNull(await cache.GetAsync("fits"));
        Assert.Equal(1, Count("memcached-limit", "set", "too_large"));
    }

    [Fact]
    public async Task SetAsync_TwoServers_KeysAreSpreadAndEachFoundOnItsServer()
    {
        await using var second = await CacheServers.StartMemcachedAsync();
        await using var both = new MemcachedCache("both", new MemcachedConfig { Addresses = $"{Server.Address},{second.Address}", Timeout = TimeSpan.FromSeconds(2) }, Metrics);
        await using var onlyFirst = new MemcachedCache("first", new MemcachedConfig { Addresses = Server.Address, Timeout = TimeSpan.FromSeconds(2) }, Metrics);
        await using var onlySecond = new MemcachedCache("second", new MemcachedConfig { Addresses = second.Address, Timeout = TimeSpan.FromSeconds(2) }, Metrics);
        int onFirst = 0, onSecond = 0;
        for (int i = 0; i < 200; i++)
        {
            string key = $"spread:{i}";
            await both.SetAsync(key, BitConverter.GetBytes(i));
            Assert.Equal(BitConverter.GetBytes(i), await both.GetAsync(key));
            bool a = await onlyFirst.GetAsync(key) is not null;
            bool b = await onlySecond.GetAsync(key) is not null;
            Assert.True(a ^ b, $"key {key} should live on exactly one server");
            onFirst += a ? 1 : 0;
            onSecond += b ? 1 : 0;
        }

        Assert.InRange(onFirst, 50, 150);
        Assert.InRange(onSecond, 50, 150);

        var keys = Enumerable.Range(0, 200).Select(i => $"spread:{i}").Append("absent").ToArray();
        var many = await both.GetManyAsync(keys);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(BitConverter.GetBytes(i), many[i]);
        }

        Assert.Null(many[200]);

        // One server down: only its keys miss, the other server's keys still hit.
        await second.StopAsync();
        var partial = await both.GetManyAsync(keys);
        int hits = partial.Count(v => v is not null);
        Assert.Equal(onFirst, hits);
    }

    [Fact]
    public void ToMemcachedKey_UnsafeOrLongKeys_BecomeShortPrintableAscii()
    {
        Assert.Equal("plain:key", MemcachedCache.ToMemcachedKey("plain:key"));
        foreach (string k in new[] { "with space", new string('a', 251), "ü", "line\nbreak", "", "sha256:abc" })
        {
            string m = MemcachedCache.ToMemcachedKey(k);
            Assert.StartsWith("sha256:", m);
            Assert.True(m.Length <= MemcachedCache.MaxKeyLength && m.All(c => c is > ' ' and <= '~'), m);
        }

        Assert.NotEqual(MemcachedCache.ToMemcachedKey("a b"), MemcachedCache.ToMemcachedKey("a  b"));
    }

    [Fact]
    public void JumpHash_GrowingBuckets_MovesOnlyAboutOneNth()
    {
        int moved = 0;
        for (ulong k = 0; k < 10_000; k++)
        {
            ulong key = k * 0x9E3779B97F4A7C15UL;
            int a = MemcachedCache.JumpHash(key, 4);
            int b = MemcachedCache.JumpHash(key, 5);
            Assert.InRange(a, 0, 3);
            if (a != b)
            {
                Assert.Equal(4, b); // Keys only ever move to the new bucket.
                moved++;
            }
        }

        Assert.InRange(moved, 1500, 2500); // ~1/5 of the keys.
    }
}

public sealed class RedisCacheTests : RemoteCacheTests
{
    protected override Task<ServerProcess> StartServerAsync() => CacheServers.StartRedisAsync();

    protected override RemoteCache CreateCache(string address, TimeSpan timeout, int breakerFailures, TimeSpan breakerOpenFor) =>
        new RedisCache("redis-test", new RedisConfig
        {
            Endpoint = address,
            Timeout = timeout,
            CircuitBreakerConsecutiveFailures = breakerFailures,
            CircuitBreakerTimeout = breakerOpenFor,
        }, Metrics);

    [Fact]
    public async Task GetAsync_FourMegabyteValue_RoundTrips()
    {
        await using var cache = CreateCache();
        byte[] value = new byte[4 * 1024 * 1024];
        new Random(2).NextBytes(value);
        await cache.SetAsync("big", value);
        Assert.Equal(value, await cache.GetAsync("big"));
    }

    [Fact]
    public async Task SetAsync_WithDb_WritesToThatDatabaseOnly()
    {
        await using var db3 = new RedisCache("db3", new RedisConfig { Endpoint = Server.Address, Db = 3 }, Metrics);
        await using var db0 = new RedisCache("db0", new RedisConfig { Endpoint = Server.Address }, Metrics);
        await db3.SetAsync("k", "three"u8.ToArray());
        Assert.Equal("three"u8.ToArray(), await db3.GetAsync("k"));
        Assert.Null(await db0.GetAsync("k"));
    }

    [Fact]
    public async Task SetAsync_ConfigExpiration_AppliesWhenNoTtlGiven()
    {
        await using var cache = new RedisCache("exp", new RedisConfig { Endpoint = Server.Address, Expiration = TimeSpan.FromMilliseconds(300) }, Metrics);
        await cache.SetAsync("k", "v"u8.ToArray());
        await WaitUntilAsync(async () => await cache.GetAsync("k") is null, TimeSpan.FromSeconds(5), "the value expired");
    }
}

public sealed class RedisAuthTests : IAsyncLifetime
{
    private readonly MetricsRegistry _metrics = new();
    private ServerProcess _server = null!;

    public async Task InitializeAsync() => _server = await CacheServers.StartRedisAsync("--requirepass", "s3cret");

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task GetAsync_WithPassword_Authenticates()
    {
        await using var cache = new RedisCache("auth", new RedisConfig { Endpoint = _server.Address, Password = "s3cret", Db = 1 }, _metrics);
        await cache.SetAsync("k", "v"u8.ToArray());
        Assert.Equal("v"u8.ToArray(), await cache.GetAsync("k"));
    }

    [Fact]
    public async Task GetAsync_WrongPassword_IsAMissCountedAsError()
    {
        await using var cache = new RedisCache("badauth", new RedisConfig { Endpoint = _server.Address, Password = "wrong" }, _metrics);
        await cache.SetAsync("k", "v"u8.ToArray());
        Assert.Null(await cache.GetAsync("k"));
        var c = _metrics.Counter("rubato_cache_requests_total", "", "cache", "op", "result");
        Assert.Equal(1, c.Value("badauth", "get", "error"));
        Assert.Equal(1, c.Value("badauth", "set", "error"));
    }
}
