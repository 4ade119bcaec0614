using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;
using Rubato.Storage.Wal;

namespace Rubato.Ingester;

/// <summary>What the server wires into an <see cref="Ingester"/> besides <see cref="IngesterConfig"/>.</summary>
public sealed class IngesterOptions
{
    /// <summary>
    /// This ingester's stable id (Tempo's <c>ingester.lifecycler.id</c>, the hostname by default). It is part of every
    /// block id, so it must not change across restarts of the same WAL directory.
    /// </summary>
    public string InstanceId { get; set; } = Environment.MachineName;

    /// <summary>The WAL (<c>storage.trace.wal.path</c> and its sync policy).</summary>
    public required WalOptions Wal { get; set; }

    /// <summary>Where flushed blocks go (the <c>storage.trace</c> backend).</summary>
    public required IObjectStore Store { get; set; }

    /// <summary>
    /// Block settings from <c>storage.trace.block</c> (bloom, row group size, compression). TenantId and BlockId are
    /// set per block; the rest is copied.
    /// </summary>
    public BlockBuilderOptions Block { get; set; } = new();

    /// <summary>The encoding new blocks are written with.</summary>
    public IVersionedEncoding Encoding { get; set; } = Encodings.Default;

    /// <summary>
    /// Called after a block is completely written (meta.json last) and before its WAL generation is deleted,
    /// e.g. <c>BackendTraceReader.AddBlock</c>, so flushed traces stay findable without waiting for a blocklist poll.
    /// Runs on the flushing thread; must not throw.
    /// </summary>
    public Action<BlockMeta>? BlockFlushed { get; set; }

    /// <summary>Receives warnings (failed flushes, replay statistics); null discards them.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>
    /// Healthy ingesters in the ring, used to turn <c>max_global_traces_per_user</c> into a local limit
    /// (global / ingesters × replication factor, as Tempo's limiter does); null means 1 (single process).
    /// </summary>
    public Func<int>? HealthyIngesters { get; set; }

    /// <summary>The write replication factor (Tempo's <c>ingester.lifecycler.ring.replication_factor</c>).</summary>
    public int ReplicationFactor { get; set; } = 1;

    /// <summary>Clock for trace idleness and block age; tests inject a fake one.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}
