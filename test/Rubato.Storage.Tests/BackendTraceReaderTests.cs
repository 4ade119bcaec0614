using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Xunit;

namespace Rubato.Storage.Tests;

public sealed class BackendTraceReaderTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly LocalObjectStore _store;

    public BackendTraceReaderTests() => _store = new LocalObjectStore(_dir.Path);

    public void Dispose() => _dir.Dispose();

    private async Task<BlockMeta> WriteBlock(string tenant, ulong baseSeconds, params TraceId[] ids)
    {
        using var b = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = tenant, BlockId = Guid.NewGuid() });
        foreach (var id in ids.Order())
        {
            var t = SampleTraces.Make(id, 2, baseSeconds * 1_000_000_000UL);
            foreach (var (_, _, s) in t.AllSpans())
            {
                s.SpanId = new SpanId(s.SpanId.Value + baseSeconds); // distinct spans per block
            }

            b.AddTrace(id, t);
        }

        return await b.WriteAsync(_store, default);
    }

    [Fact]
    public async Task FindTraceByIdAsync_TraceInTwoBlocks_ReturnsCombinedParts()
    {
        var id = new TraceId(5, 5);
        await WriteBlock("t1", 1000, id, new TraceId(1, 1));
        await WriteBlock("t1", 2000, id);
        await WriteBlock("t2", 1000, new TraceId(9, 9));
        var reader = new BackendTraceReader(_store);
        var t = await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default);
        Assert.NotNull(t);
        Assert.Single(t.ResourceSpans); // same resource in both blocks: grouped by the combiner
        Assert.Equal(4, t.SpanCount());
        Assert.Equal(["t1", "t2"], reader.Tenants());
        Assert.Null(await reader.FindTraceByIdAsync("t2", id, TimeRange.All, default));
        Assert.Null(await reader.FindTraceByIdAsync("t3", id, TimeRange.All, default));
    }

    [Fact]
    public async Task FindTraceByIdAsync_TimeRangeExcludesBlock_SkipsIt()
    {
        var id = new TraceId(5, 5);
        await WriteBlock("t1", 1000, id);
        await WriteBlock("t1", 5000, id);
        var reader = new BackendTraceReader(_store);
        var t = await reader.FindTraceByIdAsync("t1", id, new TimeRange(4000, 6000), default);
        Assert.NotNull(t);
        Assert.Single(t.ResourceSpans);
        Assert.Null(await reader.FindTraceByIdAsync("t1", id, new TimeRange(2000, 3000), default));
    }

    [Fact]
    public async Task RefreshAsync_CompactedOrMetaLessBlocks_AreInvisible()
    {
        var id = new TraceId(5, 5);
        var compacted = await WriteBlock("t1", 1000, id);
        await _store.PutAsync($"t1/{compacted.BlockId}/meta.compacted.json", compacted.ToJson(), default);
        var metaless = await WriteBlock("t1", 1000, id);
        await _store.DeleteAsync($"t1/{metaless.BlockId}/meta.json", default);
        var reader = new BackendTraceReader(_store);
        await reader.RefreshAsync();
        Assert.Empty(reader.Blocks("t1"));
        Assert.Null(await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default));
    }

    [Fact]
    public async Task FindTraceByIdAsync_ListOlderThanPollInterval_RefreshesFirst()
    {
        var clock = new ManualClock();
        var reader = new BackendTraceReader(_store, new BackendTraceReaderOptions { PollInterval = TimeSpan.FromMinutes(1) }, clock);
        var id = new TraceId(4, 4);
        Assert.Null(await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default));
        await WriteBlock("t1", 1000, id);
        Assert.Null(await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default)); // list is fresh: not re-listed
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.NotNull(await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default));
    }

    [Fact]
    public async Task AddBlock_BeforeNextPoll_MakesBlockSearchable()
    {
        var reader = new BackendTraceReader(_store, new BackendTraceReaderOptions { PollInterval = TimeSpan.FromHours(1) });
        await reader.RefreshAsync();
        var id = new TraceId(3, 3);
        var meta = await WriteBlock("t1", 1000, id);
        Assert.Null(await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default));
        reader.AddBlock(meta);
        Assert.NotNull(await reader.FindTraceByIdAsync("t1", id, TimeRange.All, default));
        await reader.RefreshAsync();
        Assert.Single(reader.Blocks("t1"));
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
