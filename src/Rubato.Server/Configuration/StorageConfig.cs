using Rubato.Common.Configuration;
using Rubato.Storage.Backend;

namespace Rubato.Server.Configuration;

/// <summary>The <c>storage:</c> section; only <c>trace</c> exists today.</summary>
public sealed class StorageConfig : IValidatableConfig
{
    public TraceStorageConfig Trace { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation) => Trace.Validate(prefix + ".trace", validation);
}

/// <summary><c>storage.trace</c>: backend, WAL and block settings, with Tempo's keys.</summary>
public sealed class TraceStorageConfig : IValidatableConfig
{
    /// <summary><c>local</c>, <c>s3</c>, <c>azure</c> or <c>gcs</c>.</summary>
    public string Backend { get; set; } = "local";

    public WalStorageConfig Wal { get; set; } = new();

    public LocalStorageConfig Local { get; set; } = new();

    public S3ObjectStoreConfig S3 { get; set; } = new();

    public AzureObjectStoreConfig Azure { get; set; } = new();

    public GcsObjectStoreConfig Gcs { get; set; } = new();

    /// <summary>The backend sections in the shape the object-store factory takes.</summary>
    public ObjectStoreConfigs ObjectStores() => new() { LocalPath = Local.Path, S3 = S3, Azure = Azure, Gcs = Gcs };

    public BlockStorageConfig Block { get; set; } = new();

    /// <summary>How often queriers re-list the blocks in the backend.</summary>
    public TimeSpan BlocklistPoll { get; set; } = TimeSpan.FromMinutes(5);

    public void Validate(string prefix, ConfigValidation validation)
    {
        Rubato.Storage.Backend.ObjectStores.Validate(Backend, ObjectStores(), prefix, validation);
        if (string.IsNullOrWhiteSpace(Wal.Path))
        {
            validation.Error(prefix + ".wal.path", "must be set");
        }

        if (Wal.Sync is not ("write" or "fsync"))
        {
            validation.Error(prefix + ".wal.sync", $"'{Wal.Sync}' is not one of write, fsync");
        }

        Block.Validate(prefix + ".block", validation);
        if (BlocklistPoll <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".blocklist_poll", "must be positive");
        }
    }
}

public sealed class WalStorageConfig
{
    /// <summary>Where the write-ahead log lives. Rubato's embedded default keeps all data under <c>./data</c>.</summary>
    public string Path { get; set; } = "./data/wal";

    /// <summary>
    /// Rubato's durability policy for acknowledged writes: <c>write</c> (default) hands each append to the OS before
    /// the client is acknowledged, which survives a crash of the process (<c>kill -9</c>) but not of the machine;
    /// <c>fsync</c> also waits for the disk (group commit), which survives power loss at a throughput cost.
    /// </summary>
    public string Sync { get; set; } = "write";

    /// <summary>Accepted for Tempo compatibility: spans further than this from now still count as recent.</summary>
    public TimeSpan IngestionTimeRangeSlack { get; set; } = TimeSpan.FromMinutes(2);
}

public sealed class LocalStorageConfig
{
    public string Path { get; set; } = "./data/blocks";
}

public sealed class BlockStorageConfig : IValidatableConfig
{
    /// <summary>Block encoding; empty means the default (<c>vRubato1</c>).</summary>
    public string Version { get; set; } = string.Empty;

    public double BloomFilterFalsePositive { get; set; } = 0.01;

    public int BloomFilterShardSizeBytes { get; set; } = 100 * 1024;

    /// <summary>Target bytes per row group. Tempo's 100 MB is for Parquet; the same key sizes Rubato's row groups.</summary>
    public long ParquetRowGroupSizeBytes { get; set; } = 100_000_000;

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (BloomFilterFalsePositive is <= 0 or >= 1)
        {
            validation.Error(prefix + ".bloom_filter_false_positive", "must be between 0 and 1");
        }

        if (BloomFilterShardSizeBytes <= 0)
        {
            validation.Error(prefix + ".bloom_filter_shard_size_bytes", "must be positive");
        }

        if (ParquetRowGroupSizeBytes <= 0)
        {
            validation.Error(prefix + ".parquet_row_group_size_bytes", "must be positive");
        }
    }
}
