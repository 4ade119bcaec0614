namespace Rubato.Common.Contracts;

/// <summary>The kinds of work the backend scheduler hands to backend workers (Tempo's <c>tempopb.JobType</c>).</summary>
public enum BackendJobType
{
    /// <summary>Merge 2–4 input blocks of one tenant into one output block, then mark the inputs compacted.</summary>
    Compaction,

    /// <summary>Mark a tenant's expired blocks compacted and delete blocks compacted long enough ago.</summary>
    Retention,

    /// <summary>Rebuild and write a tenant's <c>index.json.gz</c> from a listing of its blocks.</summary>
    TenantIndex,
}

/// <summary>A job's state as the scheduler tracks it; workers report <see cref="Running"/> (a heartbeat), <see cref="Succeeded"/> or <see cref="Failed"/>.</summary>
public enum JobStatus
{
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// <summary>
/// One unit of backend work. Immutable: the scheduler hands out a copy per lease, so a worker holding a stale copy
/// cannot change the scheduler's state except through <see cref="IBackendScheduler.UpdateJobAsync"/>.
/// </summary>
public sealed record BackendJob
{
    public required string Id { get; init; }

    public required BackendJobType Type { get; init; }

    public required string TenantId { get; init; }

    /// <summary>Compaction inputs (sorted ascending); empty for other job types.</summary>
    public IReadOnlyList<Guid> InputBlockIds { get; init; } = [];

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the current lease was granted (null while pending).</summary>
    public DateTimeOffset? LeasedAt { get; init; }

    /// <summary>
    /// How long a lease lasts without a heartbeat (<see cref="JobStatus.Running"/> update). Workers heartbeat at a
    /// third of it; after it the scheduler re-issues the job to another worker.
    /// </summary>
    public TimeSpan LeaseDuration { get; init; }

    /// <summary>1 for the first lease, incremented each time the job is re-issued after a failure or expired lease.</summary>
    public int Attempt { get; init; }

    /// <summary>The worker holding the lease (null while pending).</summary>
    public string? WorkerId { get; init; }
}

/// <summary>
/// The scheduler as a worker sees it. In target <c>all</c> the scheduler object is called in process; a later gRPC
/// split only needs a client implementing this interface on the worker side and a server calling the scheduler.
/// </summary>
/// <remarks>Implementations are thread-safe: many workers call concurrently.</remarks>
public interface IBackendScheduler
{
    /// <summary>Leases the next job to <paramref name="workerId"/>, or returns null when there is no work now.</summary>
    ValueTask<BackendJob?> NextAsync(string workerId, CancellationToken cancellationToken);

    /// <summary>
    /// Reports progress: <see cref="JobStatus.Running"/> renews the lease (heartbeat); <see cref="JobStatus.Succeeded"/>
    /// and <see cref="JobStatus.Failed"/> end it (a failed job is retried up to the scheduler's attempt limit).
    /// </summary>
    /// <exception cref="KeyNotFoundException">The scheduler does not know the job (e.g. it was pruned or re-issued and finished elsewhere).</exception>
    ValueTask UpdateJobAsync(string jobId, JobStatus status, string? error, CancellationToken cancellationToken);
}
