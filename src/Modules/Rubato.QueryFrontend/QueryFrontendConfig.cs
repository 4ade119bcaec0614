using Rubato.Common.Configuration;

namespace Rubato.QueryFrontend;

/// <summary><c>query_frontend:</c> (the search part), with Tempo's keys and defaults.</summary>
public sealed class QueryFrontendConfig
{
    /// <summary><c>max_outstanding_per_tenant</c>: requests queued or running per tenant; beyond it, HTTP 429.</summary>
    public int MaxOutstandingPerTenant { get; set; } = 2000;

    public SearchFrontendConfig Search { get; set; } = new();

    /// <summary><c>metrics:</c> TraceQL metrics (<c>/api/metrics/query_range</c>, <c>/api/metrics/query</c>).</summary>
    public MetricsFrontendConfig Metrics { get; set; } = new();

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (MaxOutstandingPerTenant <= 0)
        {
            validation.Error(prefix + ".max_outstanding_per_tenant", $"must be positive, got {MaxOutstandingPerTenant}");
        }

        Search.Validate(prefix + ".search", validation);
        Metrics.Validate(prefix + ".metrics", validation);
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem.</summary>
    public void Validate()
    {
        var v = new ConfigValidation();
        Validate("query_frontend", v);
        if (v.HasErrors)
        {
            throw new ArgumentException(string.Join("; ", v.Errors));
        }
    }
}

/// <summary><c>query_frontend.search:</c></summary>
public sealed class SearchFrontendConfig
{
    /// <summary><c>concurrent_jobs</c>: jobs of one search running at once.</summary>
    public int ConcurrentJobs { get; set; } = 1000;

    /// <summary><c>target_bytes_per_job</c>: block sources size their jobs to about this many bytes.</summary>
    public long TargetBytesPerJob { get; set; } = 100L * 1024 * 1024;

    /// <summary><c>default_result_limit</c>: <c>limit</c> when the request has none.</summary>
    public int DefaultResultLimit { get; set; } = 20;

    /// <summary><c>max_result_limit</c>: larger requested limits are lowered to it; 0 = no maximum.</summary>
    public int MaxResultLimit { get; set; } = 262144;

    /// <summary><c>max_duration</c>: longest start..end range (per-tenant <c>max_search_duration</c> overrides); 0 = unlimited.</summary>
    public TimeSpan MaxDuration { get; set; } = TimeSpan.FromHours(168);

    /// <summary><c>query_backend_after</c>: data newer than now - this is searched only in recent sources.</summary>
    public TimeSpan QueryBackendAfter { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary><c>query_ingesters_until</c>: recent sources are searched when the range ends after now - this.</summary>
    public TimeSpan QueryIngestersUntil { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary><c>max_spans_per_span_set</c>: largest accepted <c>spss</c>; 0 = unlimited.</summary>
    public int MaxSpansPerSpanSet { get; set; } = 100;

    /// <summary>Interval between partial results on streaming gRPC search (Tempo: 500 ms).</summary>
    public TimeSpan StreamingUpdateInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary><c>max_grpc_streaming_packet_size</c> equivalent: largest final-result message (1 MiB).</summary>
    public int MaxStreamingPacketBytes { get; set; } = 1024 * 1024;

    public void Validate(string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (ConcurrentJobs <= 0)
        {
            validation.Error(prefix + ".concurrent_jobs", $"must be positive, got {ConcurrentJobs}");
        }

        if (TargetBytesPerJob <= 0)
        {
            validation.Error(prefix + ".target_bytes_per_job", $"must be positive, got {TargetBytesPerJob}");
        }

        if (DefaultResultLimit <= 0)
        {
            validation.Error(prefix + ".default_result_limit", $"must be positive, got {DefaultResultLimit}");
        }

        if (MaxResultLimit < 0 || (MaxResultLimit > 0 && MaxResultLimit < DefaultResultLimit))
        {
            validation.Error(prefix + ".max_result_limit", $"must be 0 (unlimited) or at least default_result_limit ({DefaultResultLimit}), got {MaxResultLimit}");
        }

        if (MaxDuration < TimeSpan.Zero)
        {
            validation.Error(prefix + ".max_duration", "must not be negative");
        }

        if (QueryBackendAfter < TimeSpan.Zero || QueryIngestersUntil < TimeSpan.Zero)
        {
            validation.Error(prefix + ".query_backend_after", "query_backend_after and query_ingesters_until must not be negative");
        }
        else if (QueryIngestersUntil < QueryBackendAfter)
        {
            validation.Error(prefix + ".query_ingesters_until",
                $"must be at least query_backend_after ({QueryBackendAfter}), or recent data between them is searched nowhere");
        }

        if (MaxSpansPerSpanSet < 0)
        {
            validation.Error(prefix + ".max_spans_per_span_set", $"must not be negative, got {MaxSpansPerSpanSet}");
        }

        if (StreamingUpdateInterval <= TimeSpan.Zero)
        {
            validation.Error(prefix + ".streaming_update_interval", "must be positive");
        }

        if (MaxStreamingPacketBytes < 1024)
        {
            validation.Error(prefix + ".max_grpc_streaming_packet_size", $"must be at least 1024 bytes, got {MaxStreamingPacketBytes}");
        }
    }
}
