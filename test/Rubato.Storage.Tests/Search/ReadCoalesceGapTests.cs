using Rubato.Storage.Backend;
using Rubato.Storage.Backend.Azure;
using Rubato.Storage.Backend.Gcs;
using Rubato.Storage.Backend.S3;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.TraceQL.Engine;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.Storage.Tests.Search;

/// <summary>
/// <see cref="IObjectStore.ReadCoalesceGapBytes"/>: a block read from a store that prices a request like an object
/// store does (1 MiB) fetches its scattered pages in fewer range requests than from local disk (512 B), with the
/// same result; the remote stores report the object-store gap and the local store the small one.
/// </summary>
public sealed class ReadCoalesceGapTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("{ duration > 1s }")]
    [InlineData("{ span.http.method = \"GET\" && status = error }")]
    [InlineData("{ resource.service.name = \"cart\" } | select(span.http.method)")]
    public async Task SearchAsync_ObjectStoreGap_FewerRangeReadsSameResult(string query)
    {
        var local = new LocalObjectStore(_dir.Path);
        var data = SearchDataset.Generate(400, seed: 11);
        var block = await SearchDataset.WriteBlockAsync(local, data, rowGroupBytes: 32 * 1024, configure: o =>
        {
            o.TracesPerPage = 4;
            o.MinPageStoredBytes = 1;
        });

        var disk = new RangeRecordingStore(local);
        var remote = new RangeRecordingStore(local, ObjectStoreReadGaps.ObjectStore);
        string onDisk = await SearchAsync(query, new BackendBlockV1(block.Meta, disk));
        string onRemote = await SearchAsync(query, new BackendBlockV1(block.Meta, remote));

        Assert.Equal(onDisk, onRemote);
        Assert.True(2 * remote.Ranges.Count <= disk.Ranges.Count, $"object-store gap made {remote.Ranges.Count} range reads, local gap {disk.Ranges.Count}");

        // With the gap spanning a row group, each read step of one row group (page indexes, first-pass pages, each
        // second-pass batch) is about one request: a handful per row group (measured 5-8), against 14-17 at 512 B.
        long rowGroups = (await new BackendBlockV1(block.Meta, local).GetFooterAsync(CancellationToken.None)).Count;
        Assert.True(remote.Ranges.Count <= 10 * rowGroups, $"{remote.Ranges.Count} range reads for {rowGroups} row groups (local gap: {disk.Ranges.Count})");
    }

    [Fact]
    public void ReadCoalesceGapBytes_RemoteStores_ObjectStoreGapLocalDiskSmallGap()
    {
        IObjectStore local = new LocalObjectStore(_dir.Path);
        Assert.Equal(ObjectStoreReadGaps.Local, local.ReadCoalesceGapBytes);
        Assert.Equal(ObjectStoreReadGaps.ObjectStore, GapOf<S3ObjectStore>());
        Assert.Equal(ObjectStoreReadGaps.ObjectStore, GapOf<AzureBlobObjectStore>());
        Assert.Equal(ObjectStoreReadGaps.ObjectStore, GapOf<GcsObjectStore>());
    }

    /// <summary>The gap a remote store type reports, read from its public property without connecting anywhere.</summary>
    private static int GapOf<T>()
        where T : IObjectStore =>
        (int)typeof(T).GetProperty(nameof(IObjectStore.ReadCoalesceGapBytes))!.GetValue(System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(typeof(T)))!;

    private static async Task<string> SearchAsync(string query, BackendBlockV1 block)
    {
        var fetcher = MultiBlockSpansetFetcher.ForBlocks([block]);
        var options = new SearchOptions { Limit = 100_000, SpansPerSpanSet = 1000 };
        var result = await TraceQLEngine.SearchAsync(TraceQLParser.ParseAndValidate(query), fetcher, options, CancellationToken.None);
        return SearchResultJson.ToJson(new SearchResult { Traces = result.Traces });
    }
}
