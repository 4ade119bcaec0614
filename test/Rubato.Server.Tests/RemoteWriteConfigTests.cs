using Rubato.Common.Configuration;
using Rubato.Server.Configuration;
using Xunit;

namespace Rubato.Server.Tests;

public class RemoteWriteConfigTests
{
    private const string Yaml = """
        metrics_generator:
          storage:
            path: /tmp/gen-wal
            wal:
              wal_segment_size: 65536
              truncate_frequency: 10m
              max_wal_time: 1h
              max_wal_bytes: 1048576
            remote_write_flush_deadline: 5s
            remote_write_add_org_id_header: false
            remote_write:
              - url: http://127.0.0.1:9090/api/v1/write
                name: prom
                remote_timeout: 3s
                headers: { X-Extra: "1" }
                queue_config:
                  max_samples_per_send: 500
                  min_backoff: 10ms
                  max_backoff: 2s
                  retry_on_http_429: false
        """;

    [Fact]
    public void Parse_MetricsGeneratorStorage_ReadsTempoAndPrometheusKeys()
    {
        var c = ConfigLoader.Parse(Yaml, false, []).MetricsGenerator.Storage;

        Assert.Equal("/tmp/gen-wal", c.Path);
        Assert.Equal(65536, c.Wal.WalSegmentSize);
        Assert.Equal(TimeSpan.FromMinutes(10), c.Wal.TruncateFrequency);
        Assert.Equal(TimeSpan.FromHours(1), c.Wal.MaxWalTime);
        Assert.Equal(1048576, c.Wal.MaxWalBytes);
        Assert.Equal(TimeSpan.FromSeconds(5), c.RemoteWriteFlushDeadline);
        Assert.False(c.RemoteWriteAddOrgIdHeader);
        var ep = Assert.Single(c.RemoteWrite);
        Assert.Equal("prom", ep.Name);
        Assert.Equal(TimeSpan.FromSeconds(3), ep.RemoteTimeout);
        Assert.Equal("1", ep.Headers["X-Extra"]);
        Assert.Equal(500, ep.QueueConfig.MaxSamplesPerSend);
        Assert.Equal(TimeSpan.FromMilliseconds(10), ep.QueueConfig.MinBackoff);
        Assert.Equal(TimeSpan.FromSeconds(2), ep.QueueConfig.MaxBackoff);
        Assert.False(ep.QueueConfig.RetryOnHttp429);
    }

    [Fact]
    public void Validate_BadRemoteWrite_ErrorsNameKeys()
    {
        const string bad = """
            metrics_generator:
              storage:
                remote_write:
                  - url: ftp://x
                    headers: { Content-Encoding: gzip }
                    queue_config: { max_samples_per_send: 0 }
                  - url: http://a/api/v1/write
                    name: n
                  - url: http://b/api/v1/write
                    name: n
            """;
        var v = new ConfigValidation();

        ConfigLoader.Parse(bad, false, []).Validate(string.Empty, v);

        Assert.Contains(v.Errors, e => e.StartsWith("metrics_generator.storage.remote_write[0].url:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("metrics_generator.storage.remote_write[0].headers:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("metrics_generator.storage.remote_write[0].queue_config.max_samples_per_send:", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("metrics_generator.storage.remote_write[2].name:", StringComparison.Ordinal));
    }
}
