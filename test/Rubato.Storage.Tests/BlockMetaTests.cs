using System.Text.Json;
using Rubato.Common.Contracts;
using Rubato.Common.Ids;
using Rubato.Storage.Backend;
using Xunit;

namespace Rubato.Storage.Tests;

public sealed class BlockMetaTests
{
    [Fact]
    public void ToJson_UsesTempoKeys_AndRoundTrips()
    {
        var m = new BlockMeta
        {
            Version = "vRubato1",
            BlockId = Guid.Parse("b27b0e53-6a5b-4d3c-8f1a-0123456789ab"),
            TenantId = "single-tenant",
            StartTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
            EndTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_100),
            TotalObjects = 42,
            Size = 12345,
            CompactionLevel = 1,
            Encoding = "brotli",
            IndexPageSize = 68,
            TotalRecords = 3,
            BloomShards = 2,
            FooterSize = 900,
            ReplicationFactor = 1,
            MinId = new TraceId(1, 2),
            MaxId = new TraceId(3, 4),
            SpanCount = 99,
        };
        byte[] json = m.ToJson();
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal("vRubato1", root.GetProperty("format").GetString());
        Assert.Equal("b27b0e53-6a5b-4d3c-8f1a-0123456789ab", root.GetProperty("blockID").GetString());
        Assert.Equal("single-tenant", root.GetProperty("tenantID").GetString());
        Assert.Equal("2023-11-14T22:13:20Z", root.GetProperty("startTime").GetString());
        Assert.Equal(42, root.GetProperty("totalObjects").GetInt64());
        foreach (var key in new[] { "size", "compactionLevel", "encoding", "indexPageSize", "totalRecords", "dataEncoding", "bloomShards", "footerSize", "replicationFactor" })
        {
            Assert.True(root.TryGetProperty(key, out _), key);
        }

        var back = BlockMeta.FromJson(json);
        Assert.Equal(m.ToJson(), back.ToJson());
    }

    [Fact]
    public void FromJson_TempoMetaWithFractionalTimeAndUnknownKeys_Parses()
    {
        string json = """{"format":"vParquet4","blockID":"00000000-0000-0000-0000-000000000001","tenantID":"t","startTime":"2024-01-02T03:04:05.123456789Z","endTime":"2024-01-02T04:04:05Z","totalObjects":1,"size":10,"compactionLevel":0,"encoding":"none","indexPageSize":0,"totalRecords":1,"dataEncoding":"","bloomShards":1,"footerSize":100,"dedicatedColumns":[{"s":"resource","n":"x"}],"replicationFactor":1}""";
        var m = BlockMeta.FromJson(System.Text.Encoding.UTF8.GetBytes(json));
        Assert.Equal("vParquet4", m.Version);
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234568), m.StartTime);
        Assert.Equal(100u, m.FooterSize);
        Assert.True(m.MinId.IsEmpty);
    }

    [Fact]
    public void FromJson_NotAnObject_ThrowsFormatException()
    {
        Assert.Throws<FormatException>(() => BlockMeta.FromJson("[1]"u8));
        Assert.Throws<FormatException>(() => BlockMeta.FromJson("""{"totalObjects":"x"}"""u8));
    }

    [Theory]
    [InlineData(0, 0, true)]
    [InlineData(1_700_000_050, 0, true)]
    [InlineData(1_700_000_101, 0, false)]
    [InlineData(0, 1_699_999_999, false)]
    [InlineData(1_600_000_000, 1_700_000_000, true)]
    public void Overlaps_TimeRange_MatchesInclusiveSeconds(long start, long end, bool expected)
    {
        var m = new BlockMeta { StartTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), EndTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_100) };
        Assert.Equal(expected, m.Overlaps(new TimeRange(start, end)));
    }
}
