using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Rubato.BackendScheduler;
using Rubato.BackendWorker;
using Rubato.Cache;
using Rubato.Common.Services;
using Rubato.Common.Contracts;
using Rubato.Ingester;
using Rubato.Overrides;
using Rubato.Querier;
using Rubato.QueryFrontend;
using Rubato.Receivers;
using Rubato.RemoteWrite;
using Rubato.Storage.Backend;
using Rubato.Storage.Blocklist;
using Rubato.Storage.Encoding;
using Rubato.Storage.Encoding.V1;
using Rubato.Storage.Encoding.V1.Search;
using Rubato.Storage.Wal;
using SchedulerCore = Rubato.BackendScheduler.BackendScheduler;
using GeneratorCore = Rubato.MetricsGenerator.MetricsGenerator;
using WorkerCore = Rubato.BackendWorker.BackendWorker;

namespace Rubato.Server.App;

/// <summary>
/// The module graph (Tempo's <c>cmd/tempo/app/modules.go</c>): names, init functions and dependencies.
/// Init functions run in dependency order on the main thread; each builds its module and registers its routes,
/// publishing what later modules need in the fields below.
/// </summary>
public sealed partial class RubatoApp
{
    public static class ModuleNames
    {
        public const string Server = "server";
        public const string Overrides = "overrides";
        public const string Store = "store";
        public const string Ingester = "ingester";
        public const string Distributor = "distributor";
        public const string Querier = "querier";
        public const string QueryFrontend = "query-frontend";
        public const string BackendScheduler = "backend-scheduler";
        public const string BackendWorker = "backend-worker";
        public const string MetricsGenerator = "metrics-generator";
        public const string MetricsGeneratorStorage = "metrics-generator-storage";
        public const string All = "all";
    }

    // Published by init functions, read by the init functions of the modules that depend on them.
    private RuntimeOverrides? _overrides;
    private IObjectStore? _store;
    private BackendTraceReader? _backendReader;
    private BlockCaches? _blockCaches;
    private Rubato.Cache.ICache? _searchCache;
    private Ingester.Ingester? _ingester;
    private Distributor.Distributor? _distributor;
    private ReceiversService? _receivers;
    private SchedulerCore? _backendScheduler;
    private GeneratorCore? _metricsGenerator;
    private RemoteWriteStorage? _metricsGeneratorStorage;

    /// <summary>The receivers' bound addresses (keys as in <see cref="ReceiversService.BoundEndpoints"/>).</summary>
    public IReadOnlyDictionary<string, System.Net.IPEndPoint> ReceiverEndpoints =>
        _receivers?.BoundEndpoints ?? new Dictionary<string, System.Net.IPEndPoint>();

    private void RegisterModules()
    {
        _modules.Register(ModuleNames.Server, InitServer, targetable: false);
        _modules.Register(ModuleNames.Overrides, InitOverrides, targetable: false);
        _modules.Register(ModuleNames.Store, InitStore, targetable: false);
        _modules.Register(ModuleNames.Ingester, InitIngester, targetable: false);
        _modules.Register(ModuleNames.Distributor, InitDistributor, targetable: false);
        _modules.Register(ModuleNames.Querier, InitQuerier, targetable: false);
        _modules.Register(ModuleNames.QueryFrontend, InitQueryFrontend, targetable: false);
        _modules.Register(ModuleNames.BackendScheduler, InitBackendScheduler, targetable: false);
        _modules.Register(ModuleNames.BackendWorker, InitBackendWorker, targetable: false);
        _modules.Register(ModuleNames.MetricsGeneratorStorage, InitMetricsGeneratorStorage, targetable: false);
        _modules.Register(ModuleNames.MetricsGenerator, InitMetricsGenerator, targetable: false);
        _modules.Register(ModuleNames.All, () => null);

        _modules.AddDependencies(ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.Store, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.Ingester, ModuleNames.Store, ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.MetricsGeneratorStorage, ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.MetricsGenerator, ModuleNames.MetricsGeneratorStorage, ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.Distributor, ModuleNames.Ingester, ModuleNames.MetricsGenerator, ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.Querier, ModuleNames.Ingester, ModuleNames.Store, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.BackendScheduler, ModuleNames.Store, ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.BackendWorker, ModuleNames.BackendScheduler, ModuleNames.Store, ModuleNames.Overrides);
        _modules.AddDependencies(ModuleNames.QueryFrontend, ModuleNames.Ingester, ModuleNames.Store, ModuleNames.Overrides, ModuleNames.Server);
        _modules.AddDependencies(ModuleNames.All, ModuleNames.Distributor, ModuleNames.Querier, ModuleNames.QueryFrontend, ModuleNames.BackendWorker, ModuleNames.MetricsGenerator);
    }

    private IService InitServer()
    {
        _web = BuildWebHost();
        MapOperationalEndpoints(_web);
        return CreateServerService(_web);
    }

    private IService InitOverrides()
    {
        var log = Logger("overrides");
        _overrides = new RuntimeOverrides(_config.Overrides, Metrics, m => log.LogWarning("{Message}", m));
        return _overrides.Service;
    }

    private IService InitStore()
    {
        var trace = _config.Storage.Trace;
        var store = ObjectStores.Create(trace.Backend, trace.ObjectStores(), new ObjectStoreOptions { Metrics = Metrics });
        _store = store;

        // One provider for the process (connection pools are per configured cache); no `cache:` entries means no
        // provider caches and every block read goes to the object store, as without caching.
        var caches = new CacheProvider(_config.Cache, Metrics);
        _blockCaches = BlockCaches.From(caches);
        _searchCache = caches.For(CacheRole.FrontendSearch);
        // Queriers read the tenant index the backend worker writes, falling back to listing until the first one exists.
        _backendReader = new BackendTraceReader(
            store,
            new BackendTraceReaderOptions { PollInterval = trace.BlocklistPoll },
            TimeProvider.System,
            new BlocklistPoller(store, BlocklistPollMode.TenantIndex),
            _blockCaches);
        var reader = _backendReader;
        return new BasicService(
            ModuleNames.Store,
            starting: ct => reader.RefreshAsync(ct),
            running: ct => reader.PollAsync(ct),
            stopping: async _ =>
            {
                (store as IDisposable)?.Dispose();
                await caches.DisposeAsync();
            });
    }

    private IService InitIngester()
    {
        var trace = _config.Storage.Trace;
        var log = Logger("ingester");
        var reader = _backendReader!;
        var options = new IngesterOptions
        {
            InstanceId = "rubato",
            Wal = new WalOptions
            {
                Path = trace.Wal.Path,
                SyncPolicy = trace.Wal.Sync == "fsync" ? SyncPolicy.Fsync : SyncPolicy.Write,
            },
            Store = _store!,
            Block = new BlockBuilderOptions
            {
                BloomFalsePositive = trace.Block.BloomFilterFalsePositive,
                BloomShardSizeBytes = trace.Block.BloomFilterShardSizeBytes,
                RowGroupSizeBytes = trace.Block.ParquetRowGroupSizeBytes,
            },
            Encoding = trace.Block.Version.Length == 0 ? Encodings.Default : Encodings.FromVersion(trace.Block.Version),
            BlockFlushed = reader.AddBlock,
            Log = m => log.LogWarning("{Message}", m),
        };
        _ingester = new Ingester.Ingester(_config.Ingester, options, _overrides!, Metrics);
        _flushables.Add(_ingester);
        return _ingester.Service;
    }

    private IService InitDistributor()
    {
        var log = Logger("distributor");
        _distributor = new Distributor.Distributor(
            _config.Distributor, _overrides!, _ingester!, Metrics, log: m => log.LogInformation("{Message}", m), generator: _metricsGenerator);
        _receivers = new ReceiversService(
            _config.Receivers,
            _distributor,
            new TenantResolver(_config.MultitenancyEnabled),
            Metrics,
            _loggerFactory,
            _config.Distributor.RetryAfterOnResourceExhausted);
        return _receivers;
    }

    /// <summary>
    /// The metrics-generator's storage (<c>metrics_generator.storage</c>): a per-tenant sample WAL and one sender per
    /// remote-write endpoint. It starts before the generator and stops after it, so the generator's last collection
    /// is in the WAL and gets <c>remote_write_flush_deadline</c> to be sent. Not built without endpoints.
    /// </summary>
    private IService? InitMetricsGeneratorStorage()
    {
        if (_config.MetricsGenerator.Storage.RemoteWrite.Count == 0)
        {
            return null;
        }

        var log = Logger("metrics-generator-storage");
        var overrides = _overrides!;
        _metricsGeneratorStorage = new RemoteWriteStorage(
            _config.MetricsGenerator.Storage,
            Metrics,
            tenantHeaders: tenant => overrides.ForTenant(tenant).MetricsGenerator.RemoteWriteHeaders is { Count: > 0 } headers ? headers : null,
            log: m => log.LogWarning("{Message}", m));
        return _metricsGeneratorStorage;
    }

    /// <summary>
    /// The metrics-generator: span metrics and service graphs for tenants whose overrides enable processors. The
    /// distributor forwards accepted segments to it; shutdown stops it after the distributor, so it drains its queue
    /// and collects one last time.
    /// </summary>
    private IService InitMetricsGenerator()
    {
        var log = Logger("metrics-generator");

        // Where collected samples go: the remote-write WAL when metrics_generator.storage.remote_write is set;
        // null = collect only (the tempo_metrics_generator_* gauges on /metrics still update).
        IMetricsSampleAppender? appender = _metricsGeneratorStorage;

        _metricsGenerator = new GeneratorCore(
            _config.MetricsGenerator, _overrides!, Metrics, appender, TimeProvider.System, m => log.LogWarning("{Message}", m));
        return _metricsGenerator.Service;
    }

    private IService? InitQuerier()
    {
        var querier = new TraceByIdQuerier([_ingester!, _backendReader!]);
        TraceByIdApi.Map(_web!, querier, new QueryTenants(_config.MultitenancyEnabled), Metrics, _config.HttpApiPrefix);
        return null;
    }

    private IService InitBackendScheduler()
    {
        var log = Logger("backend-scheduler");
        _backendScheduler = new SchedulerCore(_config.BackendScheduler, _store!, _overrides!, new BlocklistPollerOptions(), TimeProvider.System, Metrics);
        var service = new BackendSchedulerService(_backendScheduler, _config.Storage.Trace.BlocklistPoll, TimeProvider.System, m => log.LogWarning("{Message}", m));
        _web!.MapGet("/status/backendscheduler", () => Results.Text(service.StatusText()));
        return service;
    }

    private IService InitBackendWorker()
    {
        var trace = _config.Storage.Trace;
        var log = Logger("backend-worker");
        var compactor = new BlockCompactor(
            _store!,
            _overrides!,
            new BlockCompactorOptions
            {
                BloomFalsePositive = trace.Block.BloomFilterFalsePositive,
                BloomShardSizeBytes = trace.Block.BloomFilterShardSizeBytes,
                RowGroupSizeBytes = trace.Block.ParquetRowGroupSizeBytes,
            },
            TimeProvider.System,
            Metrics);
        var worker = new WorkerCore(
            "rubato",
            _backendScheduler!,
            compactor,
            new RetentionRunner(_store!, _overrides!, _config.BackendWorker.Compaction),
            new BlocklistPoller(_store!, BlocklistPollMode.Listing),
            TimeProvider.System,
            m => log.LogInformation("{Message}", m));
        return new BackendWorkerService(worker, _config.BackendWorker, TimeProvider.System, m => log.LogWarning("{Message}", m));
    }

    /// <summary>
    /// Search, tags and tag values over HTTP and the streaming gRPC API. Sources: the ingester's in-memory data (recent)
    /// and one job per backend block overlapping the searched range.
    /// </summary>
    private IService? InitQueryFrontend()
    {
        var ingester = _ingester!;
        var reader = _backendReader!;
        var store = _store!;
        // Each search job opens its block afresh, so its index and footer come from the shared cache when configured.
        var blockCaches = _blockCaches;
        // The ingester's complete blocks may be compacted and deleted while it still lists them (when
        // compacted_block_retention is shorter than complete_block_timeout): a vanished one contributes nothing
        // instead of failing the search; its spans are in the compacted block.
        static bool Vanished(Exception e) => e is ObjectNotFoundException;
        static async Task Tolerant(Task read, StrongBox<bool> vanished)
        {
            try
            {
                await read;
            }
            catch (ObjectNotFoundException)
            {
                vanished.Value = true;
            }
        }

        List<SearchJob> BlockJobs(IEnumerable<BlockMeta> metas, SearchRange range, bool mayVanish = false)
        {
            var window = new Rubato.Common.Contracts.TimeRange(range.StartUnixNanos / 1_000_000_000, (range.EndUnixNanos + 999_999_999) / 1_000_000_000);
            return metas
                .Where(m => m.Overlaps(window) && m.Version == FormatV1.Version)
                .Select(m => BlockJob(m, mayVanish))
                .ToList();
        }

        SearchJob BlockJob(BlockMeta m, bool mayVanish)
        {
            // Set when a read of this job (one per request) ended early because the block was deleted: that partial
            // result must not be cached under the block id.
            var vanished = new StrongBox<bool>();
            bool VanishedNow(Exception e)
            {
                if (!Vanished(e))
                {
                    return false;
                }

                vanished.Value = true;
                return true;
            }

            return new SearchJob(
                $"block {m.BlockId}",
                _ =>
                {
                    Rubato.TraceQL.Engine.ISpansetFetcher fetcher = new BlockSpansetFetcher(new BackendBlockV1(m, store, blockCaches));
                    return ValueTask.FromResult(mayVanish ? new VanishingDataFetcher(fetcher, VanishedNow) : fetcher);
                },
                isBlock: true,
                bytes: (ulong)Math.Max(0, m.Size))
            {
                Block = new SearchJobBlock(m.BlockId, m.StartTime.ToUnixTimeSeconds(), m.EndTime.ToUnixTimeSeconds()),
                DataVanished = mayVanish ? () => vanished.Value : null,
                CollectTagNames = (c, from, to, ct) =>
                {
                    var read = BlockTagSearch.CollectTagNamesAsync(new BackendBlockV1(m, store, blockCaches), c, from, to, ct);
                    return mayVanish ? Tolerant(read, vanished) : read;
                },
                CollectTagValues = (c, from, to, ct) =>
                {
                    var read = BlockTagSearch.CollectTagValuesAsync(new BackendBlockV1(m, store, blockCaches), c, from, to, ct);
                    return mayVanish ? Tolerant(read, vanished) : read;
                },
            };
        }

        var sources = new List<ISearchSource>
        {
            // Recent data: the ingester's heads plus the blocks it flushed within complete_block_timeout.
            new DelegateSearchSource("ingester", isRecent: true, (tenant, range, ct) =>
            {
                var jobs = new List<SearchJob> { SearchJob.ForFetcher("ingester", ingester.CreateFetcher(tenant, range.StartUnixNanos, range.EndUnixNanos)) };
                jobs.AddRange(BlockJobs(ingester.CompleteBlocks(tenant), range, mayVanish: true));
                return ValueTask.FromResult<IReadOnlyList<SearchJob>>(jobs);
            }),
            new DelegateSearchSource("blocks", isRecent: false, (tenant, range, ct) =>
                ValueTask.FromResult<IReadOnlyList<SearchJob>>(BlockJobs(reader.Blocks(tenant), range))),
        };
        var frontend = new SearchFrontend(_config.QueryFrontend, sources, _overrides,
            jobCache: _searchCache is { } sc ? new SearchJobCache(sc) : null);
        SearchApi.Map(_web!, frontend, _config.MultitenancyEnabled);
        MapMetrics(frontend, sources);

        // One route table serves both ports. Without stream_over_http_enabled the streaming API answers only on the
        // gRPC port, as in Tempo; the filter below turns it away on the HTTP port.
        StreamingQuerier.Map(_web!, frontend, _config.MultitenancyEnabled);
        if (!_config.StreamOverHttpEnabled)
        {
            _web!.Use(async (ctx, next) =>
            {
                if (ctx.Request.Path.StartsWithSegments("/tempopb.StreamingQuerier", StringComparison.Ordinal)
                    && HttpEndpoint is { } http && ctx.Connection.LocalPort == http.Port)
                {
                    ctx.Response.StatusCode = StatusCodes.Status404NotFound;
                    await ctx.Response.WriteAsync("streaming gRPC on the HTTP port needs stream_over_http_enabled: true", ctx.RequestAborted);
                    return;
                }

                await next(ctx);
            });
        }

        return null;
    }

    /// <summary>TraceQL metrics over the same sources: HTTP routes and the two streaming gRPC methods.</summary>
    private void MapMetrics(SearchFrontend search, IEnumerable<ISearchSource> sources)
    {
        var metrics = new MetricsFrontend(search, sources, _config.QueryFrontend.Metrics);
        MetricsApi.MapHttp(_web!, metrics, _config.MultitenancyEnabled);
        MetricsApi.MapGrpc(_web!, metrics, _config.MultitenancyEnabled);
    }
}
