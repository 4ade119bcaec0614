using System.IO.Compression;
using System.Text.Json;
using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Xunit;

namespace Rubato.Compaction.Tests;

public sealed class TenantIndexTests
{
    private static readonly long T0 = new DateTimeOffset(2026, 11, 20, 11, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    [Fact]
    public async Task WriteTenantIndexAsync_ThenRead_RoundTripsLiveAndCompactedMetasWithTempoKeys()
    {
        using var f = new Fixture();
        var live = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1, 2))]);
        var gone = await f.WriteBlockAsync([(Traces.Id(2), Traces.Make(Traces.Id(2), T0, "svc", 3))]);
        var compactedAt = new DateTimeOffset(2026, 11, 20, 11, 30, 0, 123, TimeSpan.Zero);
        await BlockLifecycle.MarkCompactedAsync(f.Store, gone, compactedAt, CancellationToken.None);

        var written = await new BlocklistPoller(f.Store, BlocklistPollMode.Listing, null, f.Clock).WriteTenantIndexAsync(Fixture.Tenant, CancellationToken.None);
        byte[] raw = (await f.Store.GetAsync(Fixture.Tenant + "/index.json.gz", CancellationToken.None))!;

        // Tempo's layout: gzip JSON with created_at, meta[], compacted[] (compacted metas flat, plus compactedTime).
        using (var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress))
        using (var doc = JsonDocument.Parse(gz))
        {
            var root = doc.RootElement;
            Assert.Equal(f.Clock.GetUtcNow(), root.GetProperty("created_at").GetDateTimeOffset());
            Assert.Equal(live.BlockId.ToString("D"), root.GetProperty("meta")[0].GetProperty("blockID").GetString());
            var c = root.GetProperty("compacted")[0];
            Assert.Equal(gone.BlockId.ToString("D"), c.GetProperty("blockID").GetString());
            Assert.Equal(compactedAt, c.GetProperty("compactedTime").GetDateTimeOffset());
        }

        var read = TenantIndex.FromGzipJson(raw);
        Assert.Equal(written.CreatedAt, read.CreatedAt);
        Assert.Equal(live.ToJson(), Assert.Single(read.Meta).ToJson());
        var rc = Assert.Single(read.Compacted);
        Assert.Equal(gone.ToJson(), rc.Meta.ToJson());
        Assert.Equal(compactedAt, rc.CompactedTime);
    }

    [Fact]
    public void FromGzipJson_NotGzip_ThrowsFormatException()
    {
        var e = Assert.Throws<FormatException>(() => TenantIndex.FromGzipJson("{\"meta\":[]}"u8.ToArray()));
        Assert.Contains("gzip", e.Message);
    }

    [Fact]
    public async Task PollAsync_IndexMode_UsesTheIndexNotTheListing()
    {
        using var f = new Fixture();
        var a = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1))]);
        await new BlocklistPoller(f.Store, BlocklistPollMode.Listing, null, f.Clock).WriteTenantIndexAsync(Fixture.Tenant, CancellationToken.None);

        // A block written after the index was built is not seen until the index is rebuilt: readers lag by design.
        var b = await f.WriteBlockAsync([(Traces.Id(2), Traces.Make(Traces.Id(2), T0, "svc", 2))]);
        var reader = new BlocklistPoller(f.Store, BlocklistPollMode.TenantIndex, null, f.Clock);
        var polled = await reader.PollAsync(CancellationToken.None);
        Assert.Equal([a.BlockId], polled.Live(Fixture.Tenant).Select(m => m.BlockId));
        Assert.Equal(f.Clock.GetUtcNow(), polled.Tenants[Fixture.Tenant].IndexCreatedAt);
        Assert.Equal(0, reader.FallbackCount);

        await new BlocklistPoller(f.Store, BlocklistPollMode.Listing, null, f.Clock).WriteTenantIndexAsync(Fixture.Tenant, CancellationToken.None);
        Assert.Equal(new[] { a.BlockId, b.BlockId }.Order(), (await reader.PollAsync(CancellationToken.None)).Live(Fixture.Tenant).Select(m => m.BlockId).Order());
    }

    [Fact]
    public async Task PollAsync_IndexMissingOrStale_FallsBackToListing()
    {
        using var f = new Fixture();
        var a = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1))]);
        var reader = new BlocklistPoller(f.Store, BlocklistPollMode.TenantIndex, new BlocklistPollerOptions { StaleTenantIndex = TimeSpan.FromMinutes(10) }, f.Clock);
        Assert.Equal([a.BlockId], (await reader.PollAsync(CancellationToken.None)).Live(Fixture.Tenant).Select(m => m.BlockId));
        Assert.Equal(1, reader.FallbackCount);

        await new BlocklistPoller(f.Store, BlocklistPollMode.Listing, null, f.Clock).WriteTenantIndexAsync(Fixture.Tenant, CancellationToken.None);
        var b = await f.WriteBlockAsync([(Traces.Id(2), Traces.Make(Traces.Id(2), T0, "svc", 2))]);
        Assert.Single((await reader.PollAsync(CancellationToken.None)).Live(Fixture.Tenant));
        Assert.Equal(1, reader.FallbackCount);

        f.Clock.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(2, (await reader.PollAsync(CancellationToken.None)).Live(Fixture.Tenant).Count);
        Assert.Equal(2, reader.FallbackCount);
        Assert.Contains(b.BlockId, (await reader.PollAsync(CancellationToken.None)).Live(Fixture.Tenant).Select(m => m.BlockId));
    }

    [Fact]
    public async Task PollAsync_FallbackOffAndNoIndex_ThrowsNamingTheTenant()
    {
        using var f = new Fixture();
        await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1))]);
        var reader = new BlocklistPoller(f.Store, BlocklistPollMode.TenantIndex, new BlocklistPollerOptions { PollFallback = false });
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => reader.PollAsync(CancellationToken.None));
        Assert.Contains(Fixture.Tenant, e.Message);
    }

    [Fact]
    public async Task BackendTraceReader_WithIndexPoller_FindsTracesAndDropsCompactedBlocksAfterTheIndexUpdates()
    {
        using var f = new Fixture();
        var a = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1))]);
        var b = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 2))]);
        var builder = new BlocklistPoller(f.Store, BlocklistPollMode.Listing, null, f.Clock);
        await builder.WriteTenantIndexAsync(Fixture.Tenant, CancellationToken.None);
        var reader = new BackendTraceReader(f.Store, blocklist: new BlocklistPoller(f.Store, BlocklistPollMode.TenantIndex, null, f.Clock));

        var t = await reader.FindTraceByIdAsync(Fixture.Tenant, Traces.Id(1), TimeRange.All, CancellationToken.None);
        Assert.Equal(2, t!.SpanCount());

        var result = await f.Compactor().CompactAsync(Fixture.Tenant, [a.BlockId, b.BlockId], CancellationToken.None);
        await builder.WriteTenantIndexAsync(Fixture.Tenant, CancellationToken.None);
        await reader.RefreshAsync(CancellationToken.None);
        Assert.Equal([result.Output!.BlockId], reader.Blocks(Fixture.Tenant).Select(m => m.BlockId));
        Assert.Equal(2, (await reader.FindTraceByIdAsync(Fixture.Tenant, Traces.Id(1), TimeRange.All, CancellationToken.None))!.SpanCount());
    }

    [Fact]
    public async Task BackendTraceReader_PinnedBlockCompactedBeforeFirstListing_IsUnpinned()
    {
        using var f = new Fixture();
        var a = await f.WriteBlockAsync([(Traces.Id(1), Traces.Make(Traces.Id(1), T0, "svc", 1))]);
        var b = await f.WriteBlockAsync([(Traces.Id(2), Traces.Make(Traces.Id(2), T0, "svc", 2))]);
        var reader = new BackendTraceReader(f.Store);
        reader.AddBlock(a); // As the ingester does right after flushing, before any listing saw the block.
        var output = (await f.Compactor().CompactAsync(Fixture.Tenant, [a.BlockId, b.BlockId], CancellationToken.None)).Output!;

        await reader.RefreshAsync(CancellationToken.None);
        Assert.Equal([output.BlockId], reader.Blocks(Fixture.Tenant).Select(m => m.BlockId));
    }

    [Theory]
    [InlineData("5m", "1h", "10m", true)]
    [InlineData("5m", "10m", "10m", true)]
    [InlineData("5m", "9m", "15m", false)]
    [InlineData("5m", "1h", "9m", false)]
    public void ValidateConsistency_RetentionAndQueryBackendAfterVersusTwoPolls(string poll, string compactedRetention, string queryBackendAfter, bool ok)
    {
        static TimeSpan D(string s) => GoDuration.TryParse(s, out var t) ? t : throw new FormatException(s);
        var v = new ConfigValidation();
        BlocklistPoller.ValidateConsistency(D(poll), D(compactedRetention), D(queryBackendAfter), v);
        Assert.Equal(ok, !v.HasErrors);
        if (!ok)
        {
            Assert.Contains(v.Errors, e => e.Contains("2 × storage.trace.blocklist_poll", StringComparison.Ordinal));
        }
    }
}
