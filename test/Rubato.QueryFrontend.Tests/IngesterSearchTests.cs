using System.Text.Json;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Common.Tenancy;
using Rubato.Ingester;
using Rubato.Overrides;
using Rubato.Storage.Backend;
using Rubato.Storage.Wal;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

/// <summary>The ingester's search entry (<c>CreateFetcher</c>) with a real WAL and local store in a temp folder.</summary>
public sealed class IngesterSearchTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rubato-qf-" + Guid.NewGuid().ToString("N"));
    // The frontend runs without multitenancy here, so searches read the single tenant.
    private const string Tenant = TenantIds.SingleTenant;
    private readonly MetricsRegistry _metrics = new();
    private readonly RuntimeOverrides _overrides;

    public IngesterSearchTests()
    {
        Directory.CreateDirectory(_dir);
        _overrides = new RuntimeOverrides(new OverridesConfig(), _metrics);
    }

    public void Dispose()
    {
        _overrides.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task CreateFetcher_AfterAcknowledgedPush_TracesSearchableAndSplitPushesCombined()
    {
        var ingester = new Rubato.Ingester.Ingester(
            new IngesterConfig { FlushCheckPeriod = TimeSpan.FromHours(1) },
            new IngesterOptions
            {
                InstanceId = "ingester-1",
                Wal = new WalOptions { Path = Path.Combine(_dir, "wal") },
                Store = new LocalObjectStore(Path.Combine(_dir, "blocks")),
            },
            _overrides,
            _metrics);
        await ingester.Service.StartAsync(CancellationToken.None);
        try
        {
            var traces = TestData.Small();
            // Trace 1 arrives in two pushes (root, then the db child) and must come back as one trace.
            var rootOnly = new Trace();
            rootOnly.ResourceSpans.Add(traces[0].ResourceSpans[0]);
            var childOnly = new Trace();
            childOnly.ResourceSpans.Add(traces[0].ResourceSpans[1]);
            await PushAsync(ingester, Tenant, rootOnly, traces[1], traces[2]);
            await PushAsync(ingester, Tenant, childOnly);

            var all = new List<Spanset>();
            await foreach (var s in ingester.CreateFetcher(Tenant, 0, 0).FetchAsync(new FetchSpansRequest(), CancellationToken.None))
            {
                all.Add(s);
            }

            Assert.Equal(3, all.Count);
            Assert.Equal(4, all.Sum(s => s.Spans.Count));
            var source = DelegateSearchSource.Recent("ingester", ingester.CreateFetcher);
            await using var host = await FrontendHost.StartAsync([source]);
            using var doc = JsonDocument.Parse(await host.Http.GetStringAsync("/api/search?q=" + Uri.EscapeDataString("{ resource.service.name = \"db\" }")));
            var found = doc.RootElement.GetProperty("traces").EnumerateArray().Single();
            Assert.Equal("1", found.GetProperty("traceID").GetString());
            Assert.Equal("GET /", found.GetProperty("rootTraceName").GetString());
            Assert.Equal(2, found.GetProperty("serviceStats").EnumerateObject().Count());

            Assert.Empty(await Collect(ingester.CreateFetcher("other", 0, 0)));
            // A range before every trace finds nothing.
            Assert.Empty(await Collect(ingester.CreateFetcher(Tenant, 1_000_000_000, 2_000_000_000)));
        }
        finally
        {
            await ingester.Service.StopAsync();
        }
    }

    private static async Task<List<Spanset>> Collect(ISpansetFetcher fetcher)
    {
        var list = new List<Spanset>();
        await foreach (var s in fetcher.FetchAsync(new FetchSpansRequest(), CancellationToken.None))
        {
            list.Add(s);
        }

        return list;
    }

    private static async Task PushAsync(Rubato.Ingester.Ingester ingester, string tenant, params Trace[] traces)
    {
        var all = new Trace();
        foreach (var t in traces)
        {
            all.ResourceSpans.AddRange(t.ResourceSpans);
        }

        using var split = OtlpTraceSplitter.Split(OtlpProto.EncodeTrace(all), OtlpSplitOptions.None);
        var r = await ingester.PushSegmentsAsync(tenant, split.Segments, CancellationToken.None);
        Assert.Null(r.Refusals);
    }
}
