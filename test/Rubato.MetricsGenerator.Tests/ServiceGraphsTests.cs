using Rubato.Common.Ids;
using Rubato.Common.Model;
using Xunit;

namespace Rubato.MetricsGenerator.Tests;

public sealed class ServiceGraphsTests
{
    private const string Total = "traces_service_graph_request_total";

    [Fact]
    public void Process_ClientThenServer_OneRequestWithBothLatencies()
    {
        using var f = new GeneratorFixture(["service-graphs"]);
        var (client, server) = Pair(f, "frontend", "cart", clientMs: 300, serverMs: 250);
        f.Push("t1", client);
        f.Push("t1", server);

        var samples = f.Collect("t1");

        var edge = Edge("frontend", "cart");
        Assert.Equal(1, GeneratorFixture.Value(samples, Total, edge));
        Assert.Null(GeneratorFixture.Value(samples, "traces_service_graph_request_failed_total", edge));
        Assert.Equal(0.25, GeneratorFixture.Value(samples, "traces_service_graph_request_server_seconds_sum", edge));
        Assert.Equal(0.3, GeneratorFixture.Value(samples, "traces_service_graph_request_client_seconds_sum", edge));
        Assert.Equal(0, GeneratorFixture.Value(samples, "traces_service_graph_request_server_seconds_bucket", [.. edge, ("le", "0.2")]));
        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_service_graph_request_server_seconds_bucket", [.. edge, ("le", "0.4")]));
        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_service_graph_request_client_seconds_bucket", [.. edge, ("le", "+Inf")]));
        Assert.Equal(0, f.Generator.Tenant("t1").ServiceGraphs!.PendingEdges);
    }

    [Fact]
    public void Process_ServerBeforeClientAcrossPushes_PairsOutOfOrder()
    {
        using var f = new GeneratorFixture(["service-graphs"]);
        var pairs = Enumerable.Range(0, 20).Select(i => Pair(f, "frontend", i % 2 == 0 ? "cart" : "auth", 10, 5)).ToList();
        foreach (var (_, server) in pairs)
        {
            f.Push("t1", server);
        }

        f.Clock.Advance(TimeSpan.FromSeconds(5)); // within wait (10s)
        f.Push("t1", [.. pairs.Select(p => p.Client)]);

        var samples = f.Collect("t1");

        Assert.Equal(10, GeneratorFixture.Value(samples, Total, Edge("frontend", "cart")));
        Assert.Equal(10, GeneratorFixture.Value(samples, Total, Edge("frontend", "auth")));
        Assert.Equal(0, f.Generator.Tenant("t1").ServiceGraphs!.PendingEdges);
    }

    [Fact]
    public void Process_ErrorOnEitherSide_CountsFailedRequest()
    {
        using var f = new GeneratorFixture(["service-graphs"]);
        var (c1, s1) = Pair(f, "a", "b", 10, 5);
        var (c2, s2) = Pair(f, "a", "b", 10, 5);
        var (c3, s3) = Pair(f, "a", "b", 10, 5);
        f.Push("t1", c1 with { Status = StatusCode.Error }, s1, c2, s2 with { Status = StatusCode.Error }, c3, s3);

        var samples = f.Collect("t1");

        Assert.Equal(3, GeneratorFixture.Value(samples, Total, Edge("a", "b")));
        Assert.Equal(2, GeneratorFixture.Value(samples, "traces_service_graph_request_failed_total", Edge("a", "b")));
    }

    [Fact]
    public void Expire_ClientWithoutServerOrPeer_CountsUnpaired()
    {
        using var f = new GeneratorFixture(["service-graphs"]);
        var (client, _) = Pair(f, "frontend", "cart", 10, 5);
        f.Push("t1", client);

        f.Clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Null(GeneratorFixture.Value(f.Collect("t1"), "traces_service_graph_unpaired_spans_total", ("client", "frontend")));
        f.Clock.Advance(TimeSpan.FromSeconds(1));
        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_service_graph_unpaired_spans_total", ("client", "frontend")));
        Assert.DoesNotContain(samples, s => s.Labels.Any(l => l.Value == Total));
        Assert.Equal(1, f.Metrics.Counter("tempo_metrics_generator_processor_service_graphs_expired_edges", "", "tenant").Value("t1"));
    }

    [Fact]
    public void Expire_ClientWithPeerService_BecomesVirtualNodeServer()
    {
        using var f = new GeneratorFixture(["service-graphs"], c => c.Processor.ServiceGraphs.EnableVirtualNodeLabel = true);
        var (client, _) = Pair(f, "checkout", "unused", 10, 5);
        f.Push("t1", client with { Attributes = [("peer.service", AnyValue.String("stripe"))] });

        f.Clock.Advance(TimeSpan.FromSeconds(10));
        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, Total, ("client", "checkout"), ("server", "stripe"), ("connection_type", "virtual_node"), ("virtual_node", "server")));
    }

    [Fact]
    public void Expire_RootServerSpan_ClientIsUser()
    {
        using var f = new GeneratorFixture(["service-graphs"], c => c.Processor.ServiceGraphs.EnableVirtualNodeLabel = true);
        var root = new SpanSpec("frontend", "GET /", SpanKind.Server, Spans.NewTraceId(), 7, 0, f.Clock.NowNanos - 2_000_000, 1_000_000);
        var child = new SpanSpec("frontend", "GET /", SpanKind.Server, Spans.NewTraceId(), 8, 123, f.Clock.NowNanos - 2_000_000, 1_000_000);
        f.Push("t1", root, child);

        f.Clock.Advance(TimeSpan.FromSeconds(11));
        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, Total, ("client", "user"), ("server", "frontend"), ("connection_type", "virtual_node"), ("virtual_node", "client")));
        // The non-root server span's client never came: unpaired, not a user request.
        Assert.Equal(1, GeneratorFixture.Value(samples, "traces_service_graph_unpaired_spans_total", ("server", "frontend")));
    }

    [Fact]
    public void Process_MaxItems_DropsSpansBeyondTheStore()
    {
        using var f = new GeneratorFixture(["service-graphs"], c => c.Processor.ServiceGraphs.MaxItems = 3);
        var clients = Enumerable.Range(0, 5).Select(_ => Pair(f, "a", "b", 10, 5).Client).ToArray();
        f.Push("t1", clients);

        var samples = f.Collect("t1");

        Assert.Equal(3, f.Generator.Tenant("t1").ServiceGraphs!.PendingEdges);
        Assert.Equal(2, GeneratorFixture.Value(samples, "traces_service_graph_dropped_spans_total", ("client", "a")));
        Assert.Equal(2, f.Metrics.Counter("tempo_metrics_generator_processor_service_graphs_dropped_spans", "", "tenant").Value("t1"));
    }

    [Fact]
    public void Process_DatabaseClientSpan_CompleteWithoutServerSpan()
    {
        using var f = new GeneratorFixture(["service-graphs"]);
        var (client, _) = Pair(f, "orders", "unused", 40, 0);
        f.Push("t1", client with { Attributes = [("db.system", AnyValue.String("postgresql")), ("db.name", AnyValue.String("orders_db"))] });
        var (client2, _) = Pair(f, "orders", "unused", 40, 0);
        f.Push("t1", client2 with { Attributes = [("db.system", AnyValue.String("redis")), ("server.address", AnyValue.String("cache-1"))] });

        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, Total, ("client", "orders"), ("server", "orders_db"), ("connection_type", "database")));
        Assert.Equal(1, GeneratorFixture.Value(samples, Total, ("client", "orders"), ("server", "cache-1"), ("connection_type", "database")));
        Assert.Equal(0, f.Generator.Tenant("t1").ServiceGraphs!.PendingEdges);
    }

    [Fact]
    public void Process_ProducerConsumer_MessagingSystemConnection()
    {
        using var f = new GeneratorFixture(["service-graphs"], c =>
        {
            c.Processor.ServiceGraphs.Dimensions = ["messaging.system"];
            c.Processor.ServiceGraphs.EnableMessagingSystemLatencyHistogram = true;
        });
        var trace = Spans.NewTraceId();
        ulong now = f.Clock.NowNanos;
        var producer = new SpanSpec("orders", "publish", SpanKind.Producer, trace, 10, 1, now - 5_000_000, 1_000_000, Attributes: [("messaging.system", AnyValue.String("kafka"))]);
        var consumer = new SpanSpec("billing", "consume", SpanKind.Consumer, trace, 11, 10, now - 2_000_000, 1_000_000);
        f.Push("t1", consumer, producer);

        var samples = f.Collect("t1");

        (string, string)[] edge = [("client", "orders"), ("server", "billing"), ("connection_type", "messaging_system"), ("messaging_system", "kafka")];
        Assert.Equal(1, GeneratorFixture.Value(samples, Total, edge));
        // Producer end (now − 4 ms) → consumer start (now − 2 ms).
        Assert.Equal(0.002, GeneratorFixture.Value(samples, "traces_service_graph_request_messaging_system_seconds_sum", edge)!.Value, 9);
    }

    [Fact]
    public void Process_ClientServerPrefix_DimensionPerSide()
    {
        using var f = new GeneratorFixture(["service-graphs"], c =>
        {
            c.Processor.ServiceGraphs.Dimensions = ["region"];
            c.Processor.ServiceGraphs.EnableClientServerPrefix = true;
        });
        var (client, server) = Pair(f, "a", "b", 10, 5);
        f.Push("t1", client with { ResourceAttributes = [("region", AnyValue.String("eu"))] }, server with { ResourceAttributes = [("region", AnyValue.String("us"))] });

        var samples = f.Collect("t1");

        Assert.Equal(1, GeneratorFixture.Value(samples, Total, [.. Edge("a", "b"), ("client_region", "eu"), ("server_region", "us")]));
    }

    private static (string, string)[] Edge(string client, string server) => [("client", client), ("server", server), ("connection_type", "")];

    /// <summary>A client span of <paramref name="client"/> and the server span of <paramref name="server"/> it called.</summary>
    private static (SpanSpec Client, SpanSpec Server) Pair(GeneratorFixture f, string client, string server, int clientMs, int serverMs)
    {
        TraceId trace = Spans.NewTraceId();
        ulong clientId = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        ulong now = f.Clock.NowNanos;
        var c = new SpanSpec(client, "call", SpanKind.Client, trace, clientId, 1, now - ((ulong)clientMs * 1_000_000) - 1000, (ulong)clientMs * 1_000_000);
        var s = new SpanSpec(server, "handle", SpanKind.Server, trace, clientId + 1, clientId, now - ((ulong)serverMs * 1_000_000) - 1000, (ulong)serverMs * 1_000_000);
        return (c, s);
    }
}
