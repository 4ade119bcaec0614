using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Rubato.Common.Ids;
using Rubato.Common.Metrics;
using Rubato.Common.Model;
using Rubato.Common.Otlp;
using Rubato.Grpc;

namespace Rubato.Receivers.Tests.Support;

/// <summary>Starts a real <see cref="ReceiversService"/> with every receiver on 127.0.0.1, port 0.</summary>
public sealed class ReceiversHarness : IAsyncDisposable
{
    private ReceiversHarness(ReceiversService service, RecordingPusher pusher, MetricsRegistry metrics)
    {
        Service = service;
        Pusher = pusher;
        Metrics = metrics;
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
    }

    public ReceiversService Service { get; }

    public RecordingPusher Pusher { get; }

    public MetricsRegistry Metrics { get; }

    public HttpClient Http { get; }

    public static ReceiversConfig AllOnPortZero() => new()
    {
        Otlp = new OtlpReceiverConfig
        {
            Protocols = new OtlpProtocolsConfig
            {
                Grpc = new GrpcEndpointConfig { Endpoint = "127.0.0.1:0" },
                Http = new HttpEndpointConfig { Endpoint = "127.0.0.1:0" },
            },
        },
        Zipkin = new ZipkinReceiverConfig { Endpoint = "127.0.0.1:0" },
        Jaeger = new JaegerReceiverConfig
        {
            Protocols = new JaegerProtocolsConfig
            {
                Grpc = new GrpcEndpointConfig { Endpoint = "127.0.0.1:0" },
                ThriftHttp = new HttpEndpointConfig { Endpoint = "127.0.0.1:0" },
                ThriftCompact = new UdpEndpointConfig { Endpoint = "127.0.0.1:0" },
                ThriftBinary = new UdpEndpointConfig { Endpoint = "127.0.0.1:0" },
            },
        },
    };

    public static async Task<ReceiversHarness> StartAsync(bool multitenancy = false, Action<ReceiversConfig>? configure = null)
    {
        var config = AllOnPortZero();
        configure?.Invoke(config);
        var pusher = new RecordingPusher();
        var metrics = new MetricsRegistry();
        var service = new ReceiversService(config, pusher, new TenantResolver(multitenancy), metrics, NullLoggerFactory.Instance);
        await service.StartAsync(CancellationToken.None);
        return new ReceiversHarness(service, pusher, metrics);
    }

    public IPEndPoint Endpoint(string key) => Service.BoundEndpoints[key];

    public Uri Url(string key, string path) => new($"http://{Endpoint(key)}{path}");

    public GrpcClient Grpc(string key) => new(new Uri($"http://{Endpoint(key)}"));

    public double Counter(string name, params string[] labels) => Metrics.Counter(name, string.Empty, []).Value(labels);

    /// <summary>Waits for a condition (metrics updated by a background UDP worker) with a timeout.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>An OTLP ExportTraceServiceRequest with two spans of service "checkout".</summary>
    public static byte[] OtlpRequest() => OtlpProto.EncodeTrace(SampleTrace());

    public static Trace SampleTrace()
    {
        var trace = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("checkout")));
        var ss = new ScopeSpans();
        for (ulong i = 1; i <= 2; i++)
        {
            ss.Spans.Add(new Span
            {
                TraceId = new TraceId(0x1122, 0x3344),
                SpanId = new SpanId(i),
                Name = "op" + i,
                Kind = SpanKind.Server,
                StartTimeUnixNano = 1_700_000_000_000_000_000,
                EndTimeUnixNano = 1_700_000_000_100_000_000,
            });
        }

        rs.ScopeSpans.Add(ss);
        trace.ResourceSpans.Add(rs);
        return trace;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Service.StopAsync();
    }
}
