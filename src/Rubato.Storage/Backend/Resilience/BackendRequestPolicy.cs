using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Rubato.Common.Metrics;

namespace Rubato.Storage.Backend.Resilience;

/// <summary>How a backend retries transient failures (Tempo's S3 <c>retry_*</c> keys; minio-go's defaults).</summary>
public sealed class RetryOptions
{
    /// <summary>Attempts per operation including the first; 1 disables retries.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>Backoff before the first retry; doubles per retry up to <see cref="BackoffMax"/>, with jitter.</summary>
    public TimeSpan BackoffInitial { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>Hedged reads (Tempo <c>hedge_requests_at</c>, <c>hedge_requests_up_to</c>).</summary>
public sealed class HedgeOptions
{
    /// <summary>After this long without an answer a read sends another identical request; zero disables hedging.</summary>
    public TimeSpan At { get; set; }

    /// <summary>Most requests of one read in flight at once, the first included (Tempo default 2).</summary>
    public int UpTo { get; set; } = 2;

    public bool Enabled => At > TimeSpan.Zero && UpTo >= 2;
}

/// <summary>A failed backend request with the HTTP status the server answered (or none when no answer came).</summary>
public sealed class BackendRequestException : Exception
{
    public BackendRequestException(string message, HttpStatusCode? status, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
    }

    public HttpStatusCode? Status { get; }
}

/// <summary>
/// Retries with exponential backoff and jitter, hedged reads, and per-request metrics for one backend. Every object
/// store built here runs each of its HTTP requests through <see cref="RunAsync{T}"/>.
/// </summary>
/// <remarks>
/// Thread-safe and stateless per call. A request is retried only when it failed transiently: a 5xx, 408 or 429
/// answer, a connection failure (reset, refused, DNS) or a client-side timeout; a 404 or any other 4xx is final, and
/// the caller's cancellation is never retried. Hedging applies to reads only (the caller asks for it): the first
/// request runs; if it has not answered after <see cref="HedgeOptions.At"/> another identical one starts, up to
/// <see cref="HedgeOptions.UpTo"/> in flight; the first answer wins (a 404 is an answer) and the others are cancelled.
/// A hedged read that fails transiently on every request counts as one failed attempt of the retry loop.
///
/// Metrics: <c>rubato_backend_requests_total{backend,operation,status}</c> and
/// <c>rubato_backend_request_duration_seconds{backend,operation,status}</c> count every HTTP request, hedges and
/// retries included; <c>status</c> is <c>2xx</c> for success, the HTTP status code of a failure, <c>error</c> when no answer came, or <c>cancelled</c> for
/// a hedge that lost (or a caller that gave up). <c>rubato_backend_hedged_requests_total{backend,operation}</c>
/// counts the extra hedge requests sent.
/// </remarks>
public sealed class BackendRequestPolicy
{
    private readonly string _backend;
    private readonly RetryOptions _retry;
    private readonly HedgeOptions _hedge;
    private readonly TimeProvider _time;
    private readonly Func<Exception, HttpStatusCode?> _statusOf;
    private readonly Func<Exception, bool> _alsoTransient;
    private readonly Counter? _requests;
    private readonly Histogram? _duration;
    private readonly Counter? _hedged;

    /// <param name="backend">The <c>backend</c> label: <c>s3</c>, <c>azure</c>, <c>gcs</c>.</param>
    /// <param name="statusOf">Extracts an HTTP status from a backend-specific exception (e.g. the AWS SDK's); may return null.</param>
    /// <param name="alsoTransient">Backend-specific failures without a status that are worth retrying (e.g. a checksum mismatch).</param>
    public BackendRequestPolicy(
        string backend,
        RetryOptions? retry = null,
        HedgeOptions? hedge = null,
        MetricsRegistry? metrics = null,
        TimeProvider? time = null,
        Func<Exception, HttpStatusCode?>? statusOf = null,
        Func<Exception, bool>? alsoTransient = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(backend);
        _backend = backend;
        _retry = retry ?? new RetryOptions();
        _hedge = hedge ?? new HedgeOptions();
        if (_retry.MaxAttempts < 1)
        {
            throw new ArgumentException($"retry max attempts must be at least 1, got {_retry.MaxAttempts}");
        }

        _time = time ?? TimeProvider.System;
        _statusOf = statusOf ?? (_ => null);
        _alsoTransient = alsoTransient ?? (_ => false);
        if (metrics is not null)
        {
            _requests = metrics.Counter("rubato_backend_requests_total", "Requests sent to the object-storage backend, by operation and status.", "backend", "operation", "status");
            _duration = metrics.Histogram("rubato_backend_request_duration_seconds", "Time per object-storage backend request.", Histogram.DefaultSecondsBuckets, "backend", "operation", "status");
            _hedged = metrics.Counter("rubato_backend_hedged_requests_total", "Extra requests sent by hedged reads.", "backend", "operation");
        }
    }

    public string Backend => _backend;

    public RetryOptions Retry => _retry;

    public HedgeOptions Hedge => _hedge;

    /// <summary>
    /// Runs <paramref name="attempt"/> (one HTTP request; it must be safe to repeat) with retries, and hedging when
    /// <paramref name="hedged"/> is set and hedging is configured. The attempt gets a token that is cancelled when
    /// it loses a hedge race or the caller gives up.
    /// </summary>
    /// <param name="operation">The <c>operation</c> label: <c>GET</c>, <c>PUT</c>, <c>LIST</c>, ...</param>
    public async Task<T> RunAsync<T>(string operation, Func<CancellationToken, Task<T>> attempt, CancellationToken ct, bool hedged = false)
    {
        for (int i = 1; ; i++)
        {
            try
            {
                return hedged && _hedge.Enabled
                    ? await HedgedAsync(operation, attempt, ct).ConfigureAwait(false)
                    : await MeasuredAsync(operation, attempt, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (i < _retry.MaxAttempts && !ct.IsCancellationRequested && IsTransient(e, ct))
            {
                await Task.Delay(Backoff(i), _time, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs a read that fills a caller's buffer (a range GET). Without hedging the attempt reads straight into
    /// <paramref name="buffer"/> (a retry overwrites what a failed attempt left). With hedging each request reads into
    /// its own pooled array and only the winner's bytes are copied, because a cancelled loser may still be writing.
    /// </summary>
    public async Task<int> RunReadIntoAsync(string operation, Memory<byte> buffer, Func<Memory<byte>, CancellationToken, Task<int>> attempt, CancellationToken ct)
    {
        if (!_hedge.Enabled)
        {
            return await RunAsync(operation, c => attempt(buffer, c), ct).ConfigureAwait(false);
        }

        int length = buffer.Length;
        var (array, count) = await RunAsync(
            operation,
            async c =>
            {
                byte[] own = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    return (own, await attempt(own.AsMemory(0, length), c).ConfigureAwait(false));
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(own);
                    throw;
                }
            },
            ct,
            hedged: true).ConfigureAwait(false);

        // A loser that succeeded after the race keeps its array; the GC reclaims it.
        array.AsSpan(0, count).CopyTo(buffer.Span);
        ArrayPool<byte>.Shared.Return(array);
        return count;
    }

    /// <summary>The HTTP status a failure carries, if any.</summary>
    public HttpStatusCode? StatusOf(Exception e) => e switch
    {
        BackendRequestException b => b.Status,
        HttpRequestException h when h.StatusCode is not null => h.StatusCode,
        _ => _statusOf(e),
    };

    /// <summary>True when a failure is worth retrying: 5xx/408/429, a broken connection, or a timeout (not the caller's cancellation).</summary>
    public bool IsTransient(Exception e, CancellationToken callerToken)
    {
        if (e is ObjectNotFoundException or ArgumentException)
        {
            return false;
        }

        if (StatusOf(e) is { } status)
        {
            int code = (int)status;
            return code >= 500 || code == 408 || code == 429;
        }

        if (e is OperationCanceledException)
        {
            return !callerToken.IsCancellationRequested; // HttpClient's own timeout surfaces as a cancellation.
        }

        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is HttpRequestException or IOException or SocketException or TimeoutException || _alsoTransient(x))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Exponential backoff with "equal jitter": half the step fixed, half random, so retries spread out.</summary>
    private TimeSpan Backoff(int retry)
    {
        double step = Math.Min(_retry.BackoffMax.TotalMilliseconds, _retry.BackoffInitial.TotalMilliseconds * Math.Pow(2, retry - 1));
        return TimeSpan.FromMilliseconds((step / 2) + (Random.Shared.NextDouble() * step / 2));
    }

    private async Task<T> MeasuredAsync<T>(string operation, Func<CancellationToken, Task<T>> attempt, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            T result = await attempt(ct).ConfigureAwait(false);
            Record(operation, "2xx", start);
            return result;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Record(operation, "cancelled", start);
            throw;
        }
        catch (Exception e)
        {
            Record(operation, StatusOf(e) is { } s ? ((int)s).ToString(System.Globalization.CultureInfo.InvariantCulture) : "error", start);
            throw;
        }
    }

    private async Task<T> HedgedAsync<T>(string operation, Func<CancellationToken, Task<T>> attempt, CancellationToken ct)
    {
        using var race = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var running = new List<Task<T>>(_hedge.UpTo) { MeasuredAsync(operation, attempt, race.Token) };
        int started = 1;
        Task timer = Task.Delay(_hedge.At, _time, race.Token);
        try
        {
            while (true)
            {
                var waitOn = new List<Task>(running.Count + 1);
                waitOn.AddRange(running);
                if (started < _hedge.UpTo)
                {
                    waitOn.Add(timer);
                }

                Task done = await Task.WhenAny(waitOn).ConfigureAwait(false);
                if (done == timer)
                {
                    ct.ThrowIfCancellationRequested();
                    started++;
                    _hedged?.WithLabels(_backend, operation).Inc();
                    running.Add(MeasuredAsync(operation, attempt, race.Token));
                    timer = Task.Delay(_hedge.At, _time, race.Token);
                    continue;
                }

                var finished = (Task<T>)done;
                running.Remove(finished);
                if (finished.IsCompletedSuccessfully)
                {
                    return finished.Result;
                }

                // A definitive failure (404, 403, the caller's cancellation) is the answer; a transient one is not
                // while another request may still answer.
                Exception error = finished.Exception?.InnerException ?? new OperationCanceledException(ct);
                if (running.Count == 0 || !IsTransient(error, ct))
                {
                    return await finished.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            // Losers are cancelled; observe their outcome so no unobserved exception is reported later.
            await race.CancelAsync().ConfigureAwait(false);
            foreach (var loser in running)
            {
                _ = loser.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
        }
    }

    private void Record(string operation, string status, long startTimestamp)
    {
        _requests?.WithLabels(_backend, operation, status).Inc();
        _duration?.WithLabels(_backend, operation, status).Observe(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
    }
}
