using System.Diagnostics;
using System.Net;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend;
using Rubato.Storage.Backend.Azure;
using Rubato.Storage.Backend.Gcs;
using Rubato.Storage.Backend.Resilience;
using Rubato.Storage.Backend.S3;
using Xunit;

namespace Rubato.Storage.Tests.Backends;

/// <summary>
/// Retries and hedged reads against an in-process flaky HTTP server: failures and slow answers are scripted per
/// request index, and the server counts what the clients really sent.
/// </summary>
public sealed class ResilienceTests
{
    private readonly MetricsRegistry _metrics = new();

    private Counter Requests => _metrics.Counter("rubato_backend_requests_total", string.Empty, "backend", "operation", "status");

    private GcsObjectStore Gcs(RecordingServer server, int attempts = 5, TimeSpan? hedgeAt = null, int hedgeUpTo = 2, TimeSpan? timeout = null) => new(
        new GcsObjectStoreConfig
        {
            BucketName = "bkt",
            Endpoint = server.BaseUrl + "/storage/v1/",
            Insecure = true,
            RetryMaxAttempts = attempts,
            RetryBackoffInitial = TimeSpan.FromMilliseconds(5),
            RetryBackoffMax = TimeSpan.FromMilliseconds(20),
            HedgeRequestsAt = hedgeAt ?? TimeSpan.Zero,
            HedgeRequestsUpTo = hedgeUpTo,
        },
        new ObjectStoreOptions { Metrics = _metrics, RequestTimeout = timeout ?? TimeSpan.FromSeconds(30) });

    [Fact]
    public async Task GetAsync_First503s_RetriesUntilSuccess()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => r.Index < 2
            ? RecordingServer.Respond(ctx, 503, """{"error":{"code":503,"message":"Backend Error"}}""")
            : RecordingServer.RespondBytes(ctx, 200, [1, 2, 3]));
        using var store = Gcs(server);
        Assert.Equal(new byte[] { 1, 2, 3 }, await store.GetAsync("k", default));
        Assert.Equal(3, server.Count);
        Assert.Equal(2, Requests.Value("gcs", "GET", "503"));
        Assert.Equal(1, Requests.Value("gcs", "GET", "2xx"));
    }

    [Fact]
    public async Task PutAsync_Always500_GivesUpAfterMaxAttempts()
    {
        await using var server = await RecordingServer.StartAsync((ctx, _) => RecordingServer.Respond(ctx, 500, """{"error":{"code":500}}"""));
        using var store = Gcs(server, attempts: 3);
        var e = await Assert.ThrowsAsync<BackendRequestException>(() => store.PutAsync("k", new byte[] { 9 }, default));
        Assert.Equal(HttpStatusCode.InternalServerError, e.Status);
        Assert.Equal(3, server.Count);
        Assert.All(server.Requests, r => Assert.Equal(new byte[] { 9 }, r.Body)); // each retry resends the whole body
    }

    [Theory]
    [InlineData(404)]
    [InlineData(403)]
    [InlineData(400)]
    public async Task GetAsync_ClientError_IsNotRetried(int status)
    {
        await using var server = await RecordingServer.StartAsync((ctx, _) => RecordingServer.Respond(ctx, status, """{"error":{}}"""));
        using var store = Gcs(server);
        if (status == 404)
        {
            Assert.Null(await store.GetAsync("k", default));
        }
        else
        {
            var e = await Assert.ThrowsAsync<BackendRequestException>(() => store.GetAsync("k", default));
            Assert.Equal((HttpStatusCode)status, e.Status);
        }

        Assert.Equal(1, server.Count);
    }

    [Fact]
    public async Task GetAsync_ConnectionReset_IsRetried()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) =>
        {
            if (r.Index == 0)
            {
                ctx.Abort(); // the client sees the connection drop without a response
                return Task.CompletedTask;
            }

            return RecordingServer.RespondBytes(ctx, 200, [4]);
        });
        using var store = Gcs(server);
        Assert.Equal(new byte[] { 4 }, await store.GetAsync("k", default));
        Assert.Equal(2, server.Count);
        Assert.Equal(1, Requests.Value("gcs", "GET", "error"));
    }

    [Fact]
    public async Task ListAsync_RequestTimesOut_IsRetried()
    {
        await using var server = await RecordingServer.StartAsync(async (ctx, r) =>
        {
            if (r.Index == 0)
            {
                await WaitForAbort(ctx); // slower than the client's timeout
                return;
            }

            await RecordingServer.Respond(ctx, 200, """{"items":[{"name":"a"}]}""");
        });
        using var store = Gcs(server, timeout: TimeSpan.FromMilliseconds(300));
        Assert.Equal(["a"], await store.ListAsync("", default));
        Assert.Equal(2, server.Count);
    }

    [Fact]
    public async Task GetAsync_SlowFirstResponse_HedgedRequestWinsAndLoserIsCancelled()
    {
        var loserAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await RecordingServer.StartAsync(async (ctx, r) =>
        {
            if (r.Index == 0)
            {
                await WaitForAbort(ctx); // never answers: only cancellation ends it
                loserAborted.TrySetResult();
                return;
            }

            await RecordingServer.RespondBytes(ctx, 200, [5, 6]);
        });
        using var store = Gcs(server, hedgeAt: TimeSpan.FromMilliseconds(150));
        var sw = Stopwatch.StartNew();
        Assert.Equal(new byte[] { 5, 6 }, await store.GetAsync("k", default));
        sw.Stop();

        // About the hedge delay, not the slow response's time (which is forever here).
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(140), TimeSpan.FromSeconds(5));
        Assert.Equal(2, server.Count);
        Assert.Equal(1, _metrics.Counter("rubato_backend_hedged_requests_total", string.Empty, "backend", "operation").Value("gcs", "GET"));
        await loserAborted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await WaitUntil(() => Requests.Value("gcs", "GET", "cancelled") == 1);
        Assert.Equal(1, Requests.Value("gcs", "GET", "2xx"));
    }

    [Fact]
    public async Task ReadRangeAsync_HedgedRead_CopiesOnlyTheWinnersBytes()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await RecordingServer.StartAsync(async (ctx, r) =>
        {
            if (r.Index == 0)
            {
                // Starts a body of wrong bytes, then stalls until the test ends.
                ctx.Response.StatusCode = 206;
                ctx.Response.ContentLength = 4;
                await ctx.Response.Body.WriteAsync(new byte[] { 0xEE, 0xEE });
                await ctx.Response.Body.FlushAsync();
                await Task.WhenAny(release.Task, WaitForAbort(ctx));
                return;
            }

            await RecordingServer.RespondBytes(ctx, 206, [1, 2, 3, 4], ("Content-Range", "bytes 0-3/4"));
        });
        using var store = Gcs(server, hedgeAt: TimeSpan.FromMilliseconds(100), hedgeUpTo: 3);
        var buf = new byte[4];
        Assert.Equal(4, await store.ReadRangeAsync("k", 0, buf, default));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, buf);
        release.TrySetResult();
        Assert.InRange(server.Count, 2, 3);
        Assert.All(server.Requests, r => Assert.Equal("bytes=0-3", r.Header("Range")));
    }

    [Fact]
    public async Task GetAsync_NoHedgingConfigured_WaitsForTheOnlyRequest()
    {
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await RecordingServer.StartAsync(async (ctx, _) =>
        {
            await answer.Task;
            await RecordingServer.RespondBytes(ctx, 200, [1]);
        });
        using var store = Gcs(server);
        var get = store.GetAsync("k", default);
        await WaitUntil(() => server.Count == 1);
        Assert.False(get.IsCompleted);
        answer.TrySetResult();
        Assert.Equal(new byte[] { 1 }, await get);
        Assert.Equal(1, server.Count);
    }

    [Fact]
    public async Task AzureGetAsync_503ThenOk_RetriesWithFreshSignature()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => r.Index == 0
            ? RecordingServer.Respond(ctx, 503, "<Error><Code>ServerBusy</Code></Error>", "application/xml", ("x-ms-error-code", "ServerBusy"))
            : RecordingServer.RespondBytes(ctx, 200, [3]));
        using var store = new AzureBlobObjectStore(
            new AzureObjectStoreConfig
            {
                StorageAccountName = "acct",
                StorageAccountKey = Convert.ToBase64String(new byte[32]),
                ContainerName = "c",
                EndpointSuffix = $"127.0.0.1:{server.Port}",
                RetryBackoffInitial = TimeSpan.FromMilliseconds(5),
                RetryBackoffMax = TimeSpan.FromMilliseconds(5),
            },
            new ObjectStoreOptions { Metrics = _metrics });
        Assert.Equal(new byte[] { 3 }, await store.GetAsync("t/k", default));
        Assert.Equal(2, server.Count);
        Assert.All(server.Requests, r =>
        {
            Assert.Equal("/acct/c/t/k", r.RawTarget);
            Assert.StartsWith("SharedKey acct:", r.Header("Authorization"));
            Assert.NotNull(r.Header("x-ms-date"));
            Assert.Equal(AzureBlobObjectStore.ApiVersion, r.Header("x-ms-version"));
        });
        Assert.Equal(1, Requests.Value("azure", "GET", "503"));
    }

    [Fact]
    public async Task S3GetAsync_SdkRetriesOff_PolicyRetries503()
    {
        await using var server = await RecordingServer.StartAsync((ctx, r) => r.Index == 0
            ? RecordingServer.Respond(ctx, 503, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>", "application/xml")
            : RecordingServer.RespondBytes(ctx, 200, [8, 9], ("ETag", "\"" + Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(new byte[] { 8, 9 })) + "\""), ("Last-Modified", "Sat, 21 Nov 2026 00:00:00 GMT")));
        using var store = new S3ObjectStore(
            new S3ObjectStoreConfig
            {
                Bucket = "bkt",
                Endpoint = $"127.0.0.1:{server.Port}",
                Insecure = true,
                Forcepathstyle = true,
                Region = "us-east-1",
                AccessKey = "AK",
                SecretKey = "SK",
                RetryBackoffInitial = TimeSpan.FromMilliseconds(5),
                RetryBackoffMax = TimeSpan.FromMilliseconds(5),
            },
            new ObjectStoreOptions { Metrics = _metrics });
        Assert.Equal(new byte[] { 8, 9 }, await store.GetAsync("t/k", default));
        Assert.Equal(2, server.Count); // one SDK attempt per policy attempt
        Assert.All(server.Requests, r => Assert.Equal("GET /bkt/t/k", r.Method + " " + r.RawTarget));
        Assert.Equal(1, Requests.Value("s3", "GET", "503"));
        Assert.Equal(1, Requests.Value("s3", "GET", "2xx"));
    }

    [Fact]
    public async Task S3GetAsync_BodyDoesNotMatchEtag_IsReadAgain()
    {
        // A torn read (s3rver pairs an overwritten body with the old metadata): the SDK's MD5 check fails, we retry.
        string etag = "\"" + Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(new byte[] { 1, 2 })) + "\"";
        await using var server = await RecordingServer.StartAsync((ctx, r) =>
            RecordingServer.RespondBytes(ctx, 200, r.Index == 0 ? [1, 3] : [1, 2], ("ETag", etag)));
        using var store = new S3ObjectStore(
            new S3ObjectStoreConfig
            {
                Bucket = "bkt", Endpoint = $"127.0.0.1:{server.Port}", Insecure = true, Forcepathstyle = true, Region = "us-east-1",
                AccessKey = "AK", SecretKey = "SK", RetryBackoffInitial = TimeSpan.FromMilliseconds(5), RetryBackoffMax = TimeSpan.FromMilliseconds(5),
            },
            new ObjectStoreOptions { Metrics = _metrics });
        Assert.Equal(new byte[] { 1, 2 }, await store.GetAsync("k", default));
        Assert.Equal(2, server.Count);
        Assert.Equal(1, Requests.Value("s3", "GET", "error"));
    }

    [Fact]
    public async Task RunAsync_CallerCancels_StopsWithoutRetrying()
    {
        var policy = new BackendRequestPolicy("test", new RetryOptions { MaxAttempts = 5, BackoffInitial = TimeSpan.FromMilliseconds(1) }, metrics: _metrics);
        using var cts = new CancellationTokenSource();
        int attempts = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => policy.RunAsync<int>("GET", async c =>
        {
            attempts++;
            await cts.CancelAsync();
            c.ThrowIfCancellationRequested();
            return 0;
        }, cts.Token));
        Assert.Equal(1, attempts);
        Assert.Equal(1, Requests.Value("test", "GET", "cancelled"));
    }

    private static async Task WaitForAbort(Microsoft.AspNetCore.Http.HttpContext ctx)
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (ctx.RequestAborted.Register(() => aborted.TrySetResult()))
        {
            await aborted.Task;
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var sw = Stopwatch.StartNew();
        using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), "condition not met within 10 s");
            await tick.WaitForNextTickAsync();
        }
    }
}
