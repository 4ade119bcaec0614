using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Metrics;
using Xunit;

namespace Rubato.Cache.Tests;

public sealed class MemoryCacheTests
{
    private readonly MetricsRegistry _metrics = new();

    /// <summary>A clock the test advances by hand (TimeProvider is the BCL's abstraction for this).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    [Fact]
    public void Set_OverBudget_EvictsLeastRecentlyUsedFirst()
    {
        var cache = new MemoryCache("m", 30, TimeSpan.Zero, _metrics); // Each entry below costs 1 + 9 = 10.
        cache.Set("a", new byte[9]);
        cache.Set("b", new byte[9]);
        cache.Set("c", new byte[9]);
        Assert.NotNull(cache.Get("a")); // a is now most recent; b is least.
        cache.Set("d", new byte[9]);
        Assert.Null(cache.Get("b"));
        Assert.NotNull(cache.Get("a"));
        Assert.NotNull(cache.Get("c"));
        Assert.NotNull(cache.Get("d"));
        Assert.Equal(30, cache.SizeBytes);
    }

    [Fact]
    public void Set_LargeValue_EvictsSeveralEntries()
    {
        var cache = new MemoryCache("m", 100, TimeSpan.Zero, _metrics);
        for (int i = 0; i < 10; i++)
        {
            cache.Set($"k{i}", new byte[8]); // cost 10 each, total 100
        }

        cache.Set("big", new byte[47]); // cost 50: the five oldest go.
        Assert.Equal(6, cache.Count);
        for (int i = 0; i < 5; i++)
        {
            Assert.Null(cache.Get($"k{i}"));
        }

        Assert.NotNull(cache.Get("k5"));
        Assert.True(cache.SizeBytes <= 100);
    }

    [Fact]
    public void Set_ValueLargerThanBudget_IsNotStoredAndDropsOldValue()
    {
        var cache = new MemoryCache("m", 50, TimeSpan.Zero, _metrics);
        cache.Set("k", new byte[10]);
        cache.Set("k", new byte[50]);
        Assert.Null(cache.Get("k"));
        Assert.Equal(0, cache.SizeBytes);
        Assert.Equal(1, _metrics.Counter("rubato_cache_requests_total", "", "cache", "op", "result").Value("m", "set", "too_large"));
    }

    [Fact]
    public void Set_SameKeyAgain_ReplacesAndRecountsSize()
    {
        var cache = new MemoryCache("m", 1000, TimeSpan.Zero, _metrics);
        cache.Set("k", new byte[100]);
        cache.Set("k", new byte[10]);
        Assert.Equal(11, cache.SizeBytes);
        Assert.Equal(10, cache.Get("k")!.Length);
    }

    [Fact]
    public void Set_ValueIsCopied_LaterChangesToTheSourceDoNotLeakIn()
    {
        var cache = new MemoryCache("m", 1000, TimeSpan.Zero, _metrics);
        byte[] source = [1, 2, 3];
        cache.Set("k", source);
        source[0] = 9;
        Assert.Equal([1, 2, 3], cache.Get("k"));
    }

    [Fact]
    public void Get_AfterTtl_ReturnsNullAndFreesBytes()
    {
        var clock = new ManualClock();
        var cache = new MemoryCache("m", 1000, TimeSpan.FromMinutes(1), _metrics, clock);
        cache.Set("default", new byte[5]);
        cache.Set("short", new byte[5], TimeSpan.FromSeconds(1));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(cache.Get("short"));
        Assert.NotNull(cache.Get("default"));
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Null(cache.Get("default"));
        Assert.Equal(0, cache.SizeBytes);
    }

    [Fact]
    public async Task GetAsync_ManyThreads_SizeNeverExceedsBudgetAndValuesMatchKeys()
    {
        var cache = new MemoryCache("m", 10_000, TimeSpan.Zero, _metrics);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var rnd = new Random(t);
            for (int i = 0; i < 20_000; i++)
            {
                int k = rnd.Next(500);
                string key = $"k{k}";
                if (rnd.Next(2) == 0)
                {
                    cache.Set(key, Enumerable.Repeat((byte)k, k % 97).ToArray());
                }
                else if (cache.Get(key) is { } v)
                {
                    Assert.Equal(k % 97, v.Length);
                    Assert.All(v, b => Assert.Equal((byte)k, b));
                }
            }
        })));
        Assert.InRange(cache.SizeBytes, 0, 10_000);
    }

    [Fact]
    public void MemoryCache_RandomOperations_BehavesLikeAReferenceLru()
    {
        // An op is (isSet, key 0..7, value length 0..40); the budget is 100 bytes.
        var ops = Gen.Choose(0, 1).SelectMany(isSet => Gen.Choose(0, 7).SelectMany(key => Gen.Choose(0, 40).Select(len => (isSet == 1, key, len))));
        var arb = Arb.From(Gen.ListOf(ops).Select(l => l.ToArray()));
        Prop.ForAll(arb, sequence =>
        {
            var cache = new MemoryCache("prop", 100, TimeSpan.Zero, new MetricsRegistry());
            var model = new List<(string Key, int Len)>(); // index 0 = most recent
            foreach (var (isSet, k, len) in sequence)
            {
                string key = $"k{k}";
                int idx = model.FindIndex(e => e.Key == key);
                if (isSet)
                {
                    cache.Set(key, Enumerable.Repeat((byte)len, len).ToArray());
                    if (idx >= 0)
                    {
                        model.RemoveAt(idx);
                    }

                    if (key.Length + len <= 100)
                    {
                        model.Insert(0, (key, len));
                        while (model.Sum(e => e.Key.Length + e.Len) > 100)
                        {
                            model.RemoveAt(model.Count - 1);
                        }
                    }
                }
                else
                {
                    byte[]? got = cache.Get(key);
                    if (idx >= 0)
                    {
                        var e = model[idx];
                        model.RemoveAt(idx);
                        model.Insert(0, e);
                        if (got is null || got.Length != e.Len)
                        {
                            return false;
                        }
                    }
                    else if (got is not null)
                    {
                        return false;
                    }
                }
            }

            return cache.SizeBytes == model.Sum(e => e.Key.Length + e.Len) && cache.Count == model.Count;
        }).QuickCheckThrowOnFailure();
    }
}
