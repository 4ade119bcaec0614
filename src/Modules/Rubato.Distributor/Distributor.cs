using System.Collections.Concurrent;
using System.Text;
using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Common.Tenancy;

namespace Rubato.Distributor;

/// <summary>
/// The write path's front door: validates a push, applies the tenant's rate limit, splits it per trace and hands the
/// segments to the ingest sink (the in-process ingester in <c>all</c>).
/// </summary>
/// <remarks>
/// <para>Threads: called concurrently on receivers' request threads; holds no lock of its own except the rate
/// limiter's per-tenant bucket lock.</para>
/// <para>Acknowledgement rule: every refusal is decided before anything is stored (format, tenant id, rate), or by
/// the sink per segment before its WAL append. A span counted in <see cref="PushResult.AcceptedSpans"/> is durable;
/// nothing here drops a span after the sink accepted it.</para>
/// </remarks>
public sealed class Distributor : ITracePusher
{
    private readonly DistributorConfig _config;
    private readonly IOverrides _overrides;
    private readonly IIngestSink _sink;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly IngestionRateLimiter _rateLimiter;
    private readonly ConcurrentDictionary<string, TenantSeries> _series = new(StringComparer.Ordinal);
    private readonly Counter _spansReceived;
    private readonly Counter _bytesReceived;
    private readonly Counter _discardedSpans;
    private readonly Counter _attributesTruncated;
    private readonly Histogram.Child _pushDuration;
    private readonly IGeneratorForwarder? _generator;

    /// <param name="healthyDistributors">Distributor count for the <c>global</c> rate strategy; null = 1.</param>
    /// <param name="log">Receives span logs and warnings; null discards them.</param>
    /// <param name="generator">The metrics-generator, which receives a copy of every accepted segment; null = none.</param>
    public Distributor(
        DistributorConfig config,
        IOverrides overrides,
        IIngestSink sink,
        MetricsRegistry metrics,
        TimeProvider? time = null,
        Func<int>? healthyDistributors = null,
        Action<string>? log = null,
        IGeneratorForwarder? generator = null)
    {
        var validation = new ConfigValidation();
        config.Validate("distributor", validation);
        if (validation.HasErrors)
        {
            throw new ArgumentException(string.Join("; ", validation.Errors), nameof(config));
        }

        _config = config;
        _overrides = overrides;
        _sink = sink;
        _time = time ?? TimeProvider.System;
        _log = log ?? (_ => { });
        _generator = generator;
        _rateLimiter = new IngestionRateLimiter(overrides, _time, healthyDistributors);
        _spansReceived = metrics.Counter("rubato_distributor_spans_received_total", "Spans accepted past validation and rate limiting, per tenant.", "tenant");
        _bytesReceived = metrics.Counter("rubato_distributor_bytes_received_total", "Request bytes accepted past validation and rate limiting, per tenant.", "tenant");
        _discardedSpans = metrics.Counter("rubato_discarded_spans_total", "Spans refused, by reason and tenant.", "reason", "tenant");
        _attributesTruncated = metrics.Counter("rubato_distributor_attributes_truncated_total", "Attribute keys or values truncated to max_attribute_bytes, per tenant.", "tenant");
        _pushDuration = metrics.Histogram("rubato_distributor_push_duration_seconds", "Time to handle one push, including the ingester's WAL append.", Histogram.DefaultSecondsBuckets).WithLabels();
    }

    /// <summary>The per-tenant rate limiter (exposed for status pages and tests).</summary>
    public IngestionRateLimiter RateLimiter => _rateLimiter;

    /// <summary>What receivers advertise as Retry-After on 429 / RESOURCE_EXHAUSTED; zero = nothing.</summary>
    public TimeSpan RetryAfterOnResourceExhausted => _config.RetryAfterOnResourceExhausted;

    public async ValueTask<PushResult> PushOtlpAsync(string tenantId, ReadOnlyMemory<byte> exportTraceServiceRequest, CancellationToken cancellationToken)
    {
        long started = _time.GetTimestamp();
        try
        {
            return await PushCoreAsync(tenantId, exportTraceServiceRequest, started, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _pushDuration.Observe(_time.GetElapsedTime(started).TotalSeconds);
        }
    }

    public ValueTask<PushResult> PushTraceAsync(string tenantId, Trace spans, CancellationToken cancellationToken)
    {
        // Receivers that translate (Zipkin, Jaeger, OTLP JSON) meet the OTLP path here: one code path for limits.
        byte[] encoded = OtlpProto.EncodeTrace(spans);
        return PushOtlpAsync(tenantId, encoded, cancellationToken);
    }

    private async ValueTask<PushResult> PushCoreAsync(string tenantId, ReadOnlyMemory<byte> request, long started, CancellationToken ct)
    {
        string? tenantProblem = TenantIds.Validate(tenantId);
        if (tenantProblem is not null)
        {
            return PushResult.Refused(0, RefusalReason.InvalidInput, tenantProblem);
        }

        var limits = _overrides.ForTenant(tenantId);
        int maxAttributeBytes = limits.Ingestion.MaxAttributeBytes > 0 ? limits.Ingestion.MaxAttributeBytes : _config.MaxAttributeBytes;
        OtlpSplitResult split;
        try
        {
            split = OtlpTraceSplitter.Split(request.Span, new OtlpSplitOptions { MaxAttributeBytes = maxAttributeBytes });
        }
        catch (OtlpFormatException e)
        {
            return PushResult.Refused(0, RefusalReason.InvalidInput, e.Message);
        }
        catch (OtlpValidationException e)
        {
            return PushResult.Refused(0, RefusalReason.InvalidInput, e.Message);
        }

        using (split)
        {
            int spanCount = split.SpanCount;
            if (spanCount == 0)
            {
                return PushResult.Ok(0);
            }

            var series = Series(tenantId);
            var decision = _rateLimiter.TryAcquire(tenantId, request.Length);
            if (!decision.Allowed)
            {
                series.Discarded(RefusalReason.RateLimited).Inc(spanCount);
                LogDiscarded(tenantId, split.Segments, RefusalReason.RateLimited);
                return PushResult.Refused(spanCount, RefusalReason.RateLimited, RateLimitedMessage(tenantId, request.Length, decision));
            }

            series.Bytes.Inc(request.Length);
            series.Spans.Inc(spanCount);
            if (split.TruncatedAttributes > 0)
            {
                series.Truncated.Inc(split.TruncatedAttributes);
            }

            if (_config.LogReceivedSpans.Enabled)
            {
                LogSpans("received", tenantId, split.Segments, _config.LogReceivedSpans);
            }

            IngestResult ingest;
            try
            {
                ingest = await _sink.PushSegmentsAsync(tenantId, split.Segments, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                // The sink decides per push whether its WAL append happened; an exception means it did not
                // acknowledge, so the client must retry (a retry may only duplicate spans, which reads collapse).
                series.Discarded(RefusalReason.Unavailable).Inc(spanCount);
                return PushResult.Refused(spanCount, RefusalReason.Unavailable, $"failed to push spans to the ingester: {e.Message}");
            }

            ForwardToGenerator(tenantId, split.Segments, ingest);
            var result = BuildResult(tenantId, limits, split.Segments, ingest, series);
            await PadWithArtificialDelayAsync(limits, started, ct).ConfigureAwait(false);
            return result;
        }
    }

    /// <summary>
    /// Copies the segments the sink accepted to the metrics-generator (Tempo forwards after the ingester write).
    /// Runs while the split's pooled buffer is still alive; the generator copies what it keeps and never blocks.
    /// </summary>
    private void ForwardToGenerator(string tenantId, IReadOnlyList<TraceSegment> segments, IngestResult ingest)
    {
        if (_generator is null)
        {
            return;
        }

        IReadOnlyList<TraceSegment> accepted = segments;
        if (ingest.Refusals is { } refusals)
        {
            var list = new List<TraceSegment>(segments.Count);
            for (int i = 0; i < segments.Count && i < refusals.Length; i++)
            {
                if (refusals[i] == RefusalReason.None)
                {
                    list.Add(segments[i]);
                }
            }

            accepted = list;
        }

        if (accepted.Count == 0)
        {
            return;
        }

        try
        {
            _generator.Forward(tenantId, accepted);
        }
        catch (Exception e)
        {
            // The spans are durable and acknowledged; metrics generation is best effort.
            _log($"forwarding {accepted.Count} segments of tenant {tenantId} to the metrics-generator failed: {e.Message}");
        }
    }

    private PushResult BuildResult(string tenantId, TenantLimits limits, IReadOnlyList<TraceSegment> segments, IngestResult ingest, TenantSeries series)
    {
        if (ingest.Refusals is null)
        {
            int all = 0;
            foreach (var s in segments)
            {
                all += s.SpanCount;
            }

            return PushResult.Ok(all);
        }

        if (ingest.Refusals.Length != segments.Count)
        {
            throw new InvalidOperationException($"ingest sink returned {ingest.Refusals.Length} refusals for {segments.Count} segments");
        }

        int accepted = 0, refused = 0, firstRefused = -1;
        for (int i = 0; i < segments.Count; i++)
        {
            var reason = ingest.Refusals[i];
            if (reason == RefusalReason.None)
            {
                accepted += segments[i].SpanCount;
                continue;
            }

            refused += segments[i].SpanCount;
            series.Discarded(reason).Inc(segments[i].SpanCount);
            if (firstRefused < 0)
            {
                firstRefused = i;
            }
        }

        if (firstRefused < 0)
        {
            return PushResult.Ok(accepted);
        }

        var first = segments[firstRefused];
        var firstReason = ingest.Refusals[firstRefused];
        if (_config.LogDiscardedSpans.Enabled)
        {
            var discarded = new List<TraceSegment>();
            for (int i = 0; i < segments.Count; i++)
            {
                if (ingest.Refusals[i] != RefusalReason.None)
                {
                    discarded.Add(segments[i]);
                }
            }

            LogSpans("discarded", tenantId, discarded, _config.LogDiscardedSpans);
        }

        string message = firstReason switch
        {
            RefusalReason.TraceTooLarge =>
                $"{firstReason.Label()}: max size of trace ({limits.Global.MaxBytesPerTrace}) exceeded while adding {first.Payload.Length} bytes to trace {first.TraceId.ToHex()} for tenant {tenantId}",
            RefusalReason.LiveTracesExceeded =>
                $"{firstReason.Label()}: max live traces exceeded for tenant {tenantId}: per-user traces limit (local: {limits.Ingestion.MaxTracesPerUser} global: {limits.Ingestion.MaxGlobalTracesPerUser} actual local: {limits.Ingestion.MaxTracesPerUser}) exceeded",
            RefusalReason.Unavailable => $"{firstReason.Label()}: the ingester is not accepting writes (starting, stopping, or more than ingester.max_unflushed_bytes waiting to be flushed); retry",
            _ => $"{firstReason.Label()}: spans refused by the ingester",
        };
        return new PushResult(accepted, refused, firstReason, message);
    }

    /// <summary>Tempo's RATE_LIMITED text: one form for a batch larger than the burst, one for an empty bucket.</summary>
    private static string RateLimitedMessage(string tenantId, long bytes, RateLimitDecision d)
    {
        string prefix = RefusalReason.RateLimited.Label();
        if (bytes > d.LocalLimit && bytes > d.Burst)
        {
            return $"{prefix}: batch size ({bytes} bytes) exceeds ingestion limit (local: {d.LocalLimit} bytes/s, global: {d.GlobalLimit} bytes/s, burst: {d.Burst} bytes) while adding {bytes} bytes for user {tenantId}. consider reducing batch size or increasing rate limit.";
        }

        return $"{prefix}: ingestion rate limit (local: {d.LocalLimit} bytes/s, global: {d.GlobalLimit} bytes/s, burst: {d.Burst} bytes) exceeded while adding {bytes} bytes for user {tenantId}. consider increasing the limit or reducing ingestion rate.";
    }

    private async ValueTask PadWithArtificialDelayAsync(TenantLimits limits, long started, CancellationToken ct)
    {
        // Tempo's ingestion.artificial_delay: a push that took less than the delay is held until it has passed.
        var remaining = limits.Ingestion.ArtificialDelay - _time.GetElapsedTime(started);
        if (remaining <= TimeSpan.Zero)
        {
            return;
        }

        try
        {
            await Task.Delay(remaining, _time, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The spans are already durable: a cancelled pad must not turn an accepted push into an error.
        }
    }

    private void LogDiscarded(string tenantId, IReadOnlyList<TraceSegment> segments, RefusalReason reason)
    {
        if (_config.LogDiscardedSpans.Enabled)
        {
            LogSpans("discarded (" + reason.Label() + ")", tenantId, segments, _config.LogDiscardedSpans);
        }
    }

    private void LogSpans(string what, string tenantId, IReadOnlyList<TraceSegment> segments, SpanLoggingConfig cfg)
    {
        // Debugging aid: decodes every payload, so it costs a full decode per push when enabled.
        var sb = new StringBuilder(256);
        foreach (var segment in segments)
        {
            Trace trace;
            try
            {
                trace = OtlpProto.DecodeTrace(segment.Payload.Span);
            }
            catch (OtlpFormatException)
            {
                continue;
            }

            foreach (var (rs, _, span) in trace.AllSpans())
            {
                if (cfg.FilterByStatusError && span.StatusCode != StatusCode.Error)
                {
                    continue;
                }

                sb.Clear();
                sb.Append("msg=\"").Append(what).Append(" span\" tenant=").Append(tenantId)
                    .Append(" traceid=").Append(span.TraceId.ToHex())
                    .Append(" spanid=").Append(span.SpanId.ToString())
                    .Append(" span_name=\"").Append(span.Name).Append('"')
                    .Append(" span_status=").Append(span.StatusCode)
                    .Append(" span_kind=").Append(span.Kind)
                    .Append(" span_service_name=\"").Append(rs.Resource.ServiceName()).Append('"')
                    .Append(" span_duration_seconds=").Append(span.DurationNanos / 1e9);
                if (cfg.IncludeAllAttributes)
                {
                    foreach (var kv in span.Attributes)
                    {
                        sb.Append(" span_").Append(kv.Key).Append("=\"").Append(kv.Value).Append('"');
                    }
                }

                _log(sb.ToString());
            }
        }
    }

    private TenantSeries Series(string tenantId) => _series.GetOrAdd(tenantId, static (t, self) => new TenantSeries(self, t), this);

    /// <summary>A tenant's metric children, looked up once per tenant instead of per push.</summary>
    private sealed class TenantSeries
    {
        private readonly Distributor _owner;
        private readonly string _tenant;
        private readonly Counter.Child?[] _discarded = new Counter.Child?[Enum.GetValues<RefusalReason>().Length];

        public TenantSeries(Distributor owner, string tenant)
        {
            _owner = owner;
            _tenant = tenant;
            Spans = owner._spansReceived.WithLabels(tenant);
            Bytes = owner._bytesReceived.WithLabels(tenant);
            Truncated = owner._attributesTruncated.WithLabels(tenant);
        }

        public Counter.Child Spans { get; }

        public Counter.Child Bytes { get; }

        public Counter.Child Truncated { get; }

        public Counter.Child Discarded(RefusalReason reason) =>
            _discarded[(int)reason] ??= _owner._discardedSpans.WithLabels(reason.Label(), _tenant);
    }
}
