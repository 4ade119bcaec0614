using Rubato.BackendScheduler;
using Rubato.BackendWorker;
using Rubato.Cache;
using Rubato.Common.Configuration;
using Rubato.Distributor;
using Rubato.Ingester;
using Rubato.MetricsGenerator;
using Rubato.Overrides;
using Rubato.QueryFrontend;
using Rubato.Receivers;
using YamlDotNet.Serialization;

namespace Rubato.Server.Configuration;

/// <summary>
/// The root of the configuration file, in Tempo's layout and key names, so a Tempo monolithic config works
/// unchanged where the features overlap. Each section belongs to the component that reads it.
/// </summary>
public sealed class RubatoConfig : IValidatableConfig
{
    /// <summary>Which module graph node to run; <c>-target</c> overrides it.</summary>
    public string Target { get; set; } = "all";

    /// <summary>Prefix for every HTTP API route (e.g. <c>/tempo</c>).</summary>
    public string HttpApiPrefix { get; set; } = string.Empty;

    public bool MultitenancyEnabled { get; set; }

    /// <summary>Serve the streaming gRPC query API on the HTTP port too (Grafana needs it).</summary>
    public bool StreamOverHttpEnabled { get; set; }

    public ServerConfig Server { get; set; } = new();

    /// <summary><c>distributor.receivers</c>, bound separately because the receivers module owns it.</summary>
    [YamlIgnore]
    public ReceiversConfig Receivers { get; set; } = new();

    public DistributorConfig Distributor { get; set; } = new();

    public IngesterConfig Ingester { get; set; } = new();

    public StorageConfig Storage { get; set; } = new();

    public OverridesConfig Overrides { get; set; } = new();

    /// <summary><c>query_frontend:</c>: search job planning, concurrency, limits and queueing.</summary>
    public QueryFrontendConfig QueryFrontend { get; set; } = new();

    /// <summary><c>backend_scheduler:</c>: which compaction, retention and tenant-index jobs to hand out, and when.</summary>
    public BackendSchedulerConfig BackendScheduler { get; set; } = new();

    /// <summary><c>backend_worker:</c>: how jobs run; <c>backend_worker.compaction</c> holds Tempo's compaction keys.</summary>
    public BackendWorkerConfig BackendWorker { get; set; } = new();

    /// <summary><c>metrics_generator:</c>: span metrics, service graphs, the series registry and its storage.</summary>
    public MetricsGeneratorConfig MetricsGenerator { get; set; } = new();

    /// <summary><c>cache:</c>: the caches each role uses (docs/caching.md). Empty: nothing is cached.</summary>
    public CacheConfig Cache { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (HttpApiPrefix.Length > 0 && (!HttpApiPrefix.StartsWith('/') || HttpApiPrefix.EndsWith('/')))
        {
            validation.Error("http_api_prefix", $"'{HttpApiPrefix}' must start with '/' and not end with '/'");
        }

        Server.Validate("server", validation);
        Receivers.Validate("distributor.receivers", validation);
        Distributor.Validate("distributor", validation);
        Ingester.Validate("ingester", validation);
        Storage.Validate("storage", validation);
        Overrides.Validate("overrides", validation);
        QueryFrontend.Validate("query_frontend", validation);
        BackendScheduler.Validate("backend_scheduler", validation);
        BackendScheduler.ValidateWithStorage(Storage.Trace.BlocklistPoll, QueryFrontend.Search.QueryBackendAfter, validation);
        BackendWorker.Validate("backend_worker", validation);

        // The ingester serves its flushed blocks to searches without start/end for complete_block_timeout; once the
        // worker deletes a compacted block, those searches find nothing for it until the timeout drops it from the list.
        var compactedRetention = BackendWorker.Compaction.CompactedBlockRetention;
        if (compactedRetention > TimeSpan.Zero && Ingester.CompleteBlockTimeout > compactedRetention)
        {
            validation.Warning(
                "ingester.complete_block_timeout",
                $"{Ingester.CompleteBlockTimeout} is longer than backend_worker.compaction.compacted_block_retention ({compactedRetention}): "
                + "a search without start/end can miss the traces of a compacted and deleted block until the timeout passes");
        }
        Cache.Validate("cache", validation);
        MetricsGenerator.Validate("metrics_generator", validation);
    }

    /// <summary>
    /// The configuration used when no file is given: every receiver on Tempo's default port, data under <c>./data</c>.
    /// </summary>
    public static string EmbeddedDefaultYaml => """
        server:
          http_listen_port: 3200
          grpc_listen_port: 9095
        distributor:
          receivers:
            otlp:
              protocols:
                grpc:
                http:
            zipkin:
            jaeger:
              protocols:
                thrift_http:
                thrift_compact:
                thrift_binary:
                grpc:
        storage:
          trace:
            backend: local
            wal:
              path: ./data/wal
            local:
              path: ./data/blocks
        """;
}
