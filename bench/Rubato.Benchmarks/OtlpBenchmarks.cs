using System.Buffers;
using BenchmarkDotNet.Attributes;
using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Common.Otlp;

namespace Rubato.Bench;

/// <summary>
/// The OTLP ingest path on a realistic request: 1 resource (10 attributes), 1 scope, 500 spans of about 400 bytes
/// (8 attributes each) spread over 50 traces. Spans/s = 500 / mean time.
/// </summary>
[MemoryDiagnoser]
public class OtlpBenchmarks
{
    public const int Spans = 500;
    public const int Traces = 50;

    private byte[] _request = [];
    private Trace _model = new();
    private ArrayBufferWriter<byte> _output = new();

    [GlobalSetup]
    public void Setup()
    {
        _model = BuildRequest();
        _request = OtlpProto.EncodeTrace(_model);
        _output = new ArrayBufferWriter<byte>(_request.Length * 2);
    }

    public static Trace BuildRequest()
    {
        var rnd = new Random(42);
        var trace = new Trace();
        var rs = new ResourceSpans();
        rs.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String("checkout-service")));
        rs.Resource.Attributes.Add(new KeyValue("service.namespace", AnyValue.String("shop")));
        rs.Resource.Attributes.Add(new KeyValue("service.version", AnyValue.String("1.42.0")));
        rs.Resource.Attributes.Add(new KeyValue("deployment.environment", AnyValue.String("production")));
        rs.Resource.Attributes.Add(new KeyValue("host.name", AnyValue.String("ip-10-0-12-34.ec2.internal")));
        rs.Resource.Attributes.Add(new KeyValue("k8s.pod.name", AnyValue.String("checkout-7d9f8b6c5-x2x9q")));
        rs.Resource.Attributes.Add(new KeyValue("k8s.namespace.name", AnyValue.String("shop")));
        rs.Resource.Attributes.Add(new KeyValue("telemetry.sdk.name", AnyValue.String("opentelemetry")));
        rs.Resource.Attributes.Add(new KeyValue("telemetry.sdk.language", AnyValue.String("dotnet")));
        rs.Resource.Attributes.Add(new KeyValue("process.pid", AnyValue.Int(4242)));
        var ss = new ScopeSpans();
        ss.Scope.Name = "OpenTelemetry.Instrumentation.AspNetCore";
        ss.Scope.Version = "1.9.0";
        var ids = Enumerable.Range(0, Traces).Select(_ => new TraceId((ulong)rnd.NextInt64(1, long.MaxValue), (ulong)rnd.NextInt64())).ToArray();
        ulong t0 = 1_700_000_000_000_000_000;
        for (int i = 0; i < Spans; i++)
        {
            var s = new Span
            {
                TraceId = ids[i % Traces],
                SpanId = new SpanId((ulong)rnd.NextInt64(1, long.MaxValue)),
                ParentSpanId = new SpanId((ulong)rnd.NextInt64(1, long.MaxValue)),
                Name = "GET /api/cart/{cartId}/items",
                Kind = SpanKind.Server,
                StartTimeUnixNano = t0 + (ulong)(i * 1000),
                EndTimeUnixNano = t0 + (ulong)(i * 1000) + 250_000,
                StatusCode = StatusCode.Ok,
            };
            s.Attributes.Add(new KeyValue("http.request.method", AnyValue.String("GET")));
            s.Attributes.Add(new KeyValue("http.route", AnyValue.String("/api/cart/{cartId}/items")));
            s.Attributes.Add(new KeyValue("url.path", AnyValue.String("/api/cart/8f14e45fceea167a/items")));
            s.Attributes.Add(new KeyValue("http.response.status_code", AnyValue.Int(200)));
            s.Attributes.Add(new KeyValue("server.address", AnyValue.String("checkout.shop.svc")));
            s.Attributes.Add(new KeyValue("user_agent.original", AnyValue.String("Mozilla/5.0 (X11; Linux x86_64)")));
            s.Attributes.Add(new KeyValue("network.protocol.version", AnyValue.String("1.1")));
            s.Attributes.Add(new KeyValue("client.address", AnyValue.String("10.0.3.17")));
            ss.Spans.Add(s);
        }

        rs.ScopeSpans.Add(ss);
        trace.ResourceSpans.Add(rs);
        return trace;
    }

    [Benchmark(Description = "OtlpSplit 500 spans/50 traces")]
    public int Split()
    {
        using var result = OtlpTraceSplitter.Split(_request, default);
        return result.Count;
    }

    [Benchmark(Description = "OtlpSplit with max_attribute_bytes=2048")]
    public int SplitWithLimit()
    {
        using var result = OtlpTraceSplitter.Split(_request, new OtlpSplitOptions(2048));
        return result.Count;
    }

    [Benchmark(Description = "OtlpDecodeTrace 500 spans")]
    public int Decode() => OtlpProto.DecodeTrace(_request).SpanCount();

    [Benchmark(Description = "OtlpEncodeTrace 500 spans")]
    public int Encode()
    {
        _output.ResetWrittenCount();
        OtlpProto.EncodeTrace(_model, _output);
        return _output.WrittenCount;
    }
}
