using System.Diagnostics;
using System.Net;

namespace Rubato.Integration.Tests.Harness;

/// <summary>Trace-by-id queries against a running server, with condition-based waiting for asynchronous ingest.</summary>
public static class TraceQueries
{
    public static async Task<(HttpStatusCode Status, string Body)> GetTraceAsync(this RubatoProcess server, string traceIdHex, string? tenant = null, string path = "/api/traces/")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path + traceIdHex);
        if (tenant is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Scope-OrgID", tenant);
        }

        using var response = await server.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Polls <c>/api/traces/{id}</c> until it returns at least <paramref name="expectedSpans"/> spans, then returns them.
    /// Fails with the last status and body when the timeout passes.
    /// </summary>
    public static async Task<List<SpanView>> WaitForTraceAsync(this RubatoProcess server, string traceIdHex, int expectedSpans, string? tenant = null, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var sw = Stopwatch.StartNew();
        HttpStatusCode last = 0;
        string lastBody = "";
        while (true)
        {
            (last, lastBody) = await server.GetTraceAsync(traceIdHex, tenant);
            if (last == HttpStatusCode.OK)
            {
                var spans = TraceJson.Parse(lastBody);
                if (spans.Count >= expectedSpans)
                {
                    return spans;
                }
            }

            if (sw.Elapsed > limit)
            {
                throw new TimeoutException(
                    $"trace {traceIdHex} did not reach {expectedSpans} spans within {limit.TotalSeconds}s; last answer {(int)last}: {Truncate(lastBody)}\n---- server log tail ----\n{server.LogTail()}");
            }

            await Task.Delay(100);
        }
    }

    private static string Truncate(string s) => s.Length > 2000 ? s[..2000] + "..." : s;
}
