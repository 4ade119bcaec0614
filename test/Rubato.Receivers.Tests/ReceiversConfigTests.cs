using Rubato.Common.Configuration;
using Rubato.Common.Tenancy;
using Xunit;

namespace Rubato.Receivers.Tests;

public class ReceiversConfigTests
{
    [Fact]
    public void Enabled_NothingConfigured_NoReceivers()
    {
        Assert.Empty(new ReceiversConfig().Enabled());
    }

    [Fact]
    public void Enabled_EmptySections_UseTempoDefaultEndpoints()
    {
        var config = new ReceiversConfig
        {
            Otlp = new OtlpReceiverConfig { Protocols = new OtlpProtocolsConfig { Grpc = new(), Http = new() } },
            Zipkin = new ZipkinReceiverConfig(),
            Jaeger = new JaegerReceiverConfig
            {
                Protocols = new JaegerProtocolsConfig { Grpc = new(), ThriftHttp = new(), ThriftCompact = new(), ThriftBinary = new() },
            },
        };
        var endpoints = config.Enabled().ToDictionary(r => r.Key, r => r.Endpoint);
        Assert.Equal(new Dictionary<string, string>
        {
            ["otlp_grpc"] = "localhost:4317",
            ["otlp_http"] = "localhost:4318",
            ["zipkin"] = "localhost:9411",
            ["jaeger_grpc"] = "localhost:14250",
            ["jaeger_thrift_http"] = "localhost:14268",
            ["jaeger_thrift_compact"] = "localhost:6831",
            ["jaeger_thrift_binary"] = "localhost:6832",
        }, endpoints);
        var validation = new ConfigValidation();
        config.Validate("distributor.receivers", validation);
        Assert.Empty(validation.Errors);
    }

    [Fact]
    public void Enabled_NullSubsection_DisablesOnlyThatProtocol()
    {
        var config = new ReceiversConfig
        {
            Otlp = new OtlpReceiverConfig { Protocols = new OtlpProtocolsConfig { Http = new HttpEndpointConfig { Endpoint = "0.0.0.0:5318" } } },
        };
        var r = Assert.Single(config.Enabled());
        Assert.Equal(("otlp_http", "0.0.0.0:5318"), (r.Key, r.Endpoint));
    }

    [Theory]
    [InlineData("localhost", "missing port")]
    [InlineData("localhost:99999", "invalid port '99999'")]
    [InlineData("localhost:http", "invalid port 'http'")]
    [InlineData("::1:4317", "without brackets")]
    [InlineData("[zz]:4317", "invalid IPv6 address")]
    [InlineData("bad host:4317", "invalid host")]
    public void Validate_BadEndpoint_ErrorNamesKey(string endpoint, string problem)
    {
        var config = new ReceiversConfig
        {
            Jaeger = new JaegerReceiverConfig { Protocols = new JaegerProtocolsConfig { ThriftHttp = new HttpEndpointConfig { Endpoint = endpoint } } },
        };
        var validation = new ConfigValidation();
        config.Validate("distributor.receivers", validation);
        var error = Assert.Single(validation.Errors);
        Assert.StartsWith("distributor.receivers.jaeger.protocols.thrift_http.endpoint: ", error);
        Assert.Contains(problem, error);
    }

    [Theory]
    [InlineData(":4317")]
    [InlineData("0.0.0.0:0")]
    [InlineData("[::1]:4317")]
    [InlineData("127.0.0.1:4317")]
    [InlineData("tempo-distributor.svc:4317")]
    public void Validate_GoodEndpoint_NoErrors(string endpoint)
    {
        var config = new ReceiversConfig { Zipkin = new ZipkinReceiverConfig { Endpoint = endpoint } };
        var validation = new ConfigValidation();
        config.Validate("r", validation);
        Assert.Empty(validation.Errors);
    }

    [Fact]
    public void Validate_TwoTcpReceiversOnOnePort_Error()
    {
        var config = new ReceiversConfig
        {
            Zipkin = new ZipkinReceiverConfig { Endpoint = ":9000" },
            Otlp = new OtlpReceiverConfig { Protocols = new OtlpProtocolsConfig { Http = new HttpEndpointConfig { Endpoint = "localhost:9000" } } },
        };
        var validation = new ConfigValidation();
        config.Validate("r", validation);
        var error = Assert.Single(validation.Errors);
        Assert.Contains("port 9000 is already used by r.otlp.protocols.http", error);
    }

    [Fact]
    public void Validate_ProtocolsMissingAndBadLimits_Errors()
    {
        var config = new ReceiversConfig
        {
            Otlp = new OtlpReceiverConfig(),
            Jaeger = new JaegerReceiverConfig
            {
                Protocols = new JaegerProtocolsConfig
                {
                    Grpc = new GrpcEndpointConfig { MaxRecvMsgSizeMib = -1 },
                    ThriftCompact = new UdpEndpointConfig { MaxPacketSize = 70000 },
                },
            },
        };
        var validation = new ConfigValidation();
        config.Validate("r", validation);
        Assert.Contains(validation.Errors, e => e.StartsWith("r.otlp: protocols", StringComparison.Ordinal));
        Assert.Contains(validation.Errors, e => e.StartsWith("r.jaeger.protocols.grpc.max_recv_msg_size_mib:", StringComparison.Ordinal));
        Assert.Contains(validation.Errors, e => e.StartsWith("r.jaeger.protocols.thrift_compact.max_packet_size:", StringComparison.Ordinal));
    }

    [Fact]
    public void Limits_Defaults_MatchCollector()
    {
        Assert.Equal(4 * 1024 * 1024, new GrpcEndpointConfig().EffectiveMaxRecvMsgSizeBytes());
        Assert.Equal(16 * 1024 * 1024, new GrpcEndpointConfig { MaxRecvMsgSizeMib = 16 }.EffectiveMaxRecvMsgSizeBytes());
        Assert.Equal(20L * 1024 * 1024, new HttpEndpointConfig().EffectiveMaxRequestBodyBytes());
        var udp = new UdpEndpointConfig();
        Assert.Equal((1000, 65000, 10), (udp.EffectiveQueueSize(), udp.EffectiveMaxPacketSize(), udp.EffectiveWorkers()));
    }
}

public class TenantResolverTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("anything|at all")]
    public void Resolve_MultitenancyOff_AlwaysSingleTenant(string? header)
    {
        var r = new TenantResolver(false).Resolve(header);
        Assert.True(r.Ok);
        Assert.Equal(TenantIds.SingleTenant, r.TenantId);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Resolve_MultitenancyOnMissing_NoOrgId401(string? header)
    {
        var r = new TenantResolver(true).Resolve(header);
        Assert.Equal((TenantError.Missing, "no org id", 401), (r.Error, r.Message, r.HttpStatus));
    }

    [Theory]
    [InlineData("a|b")]
    [InlineData("..")]
    [InlineData("has space")]
    public void Resolve_MultitenancyOnInvalid_400WithReason(string header)
    {
        var r = new TenantResolver(true).Resolve(header);
        Assert.Equal((TenantError.Invalid, 400), (r.Error, r.HttpStatus));
        Assert.Contains("tenant ID", r.Message);
    }

    [Fact]
    public void Resolve_MultitenancyOnValid_ReturnsTenant()
    {
        var r = new TenantResolver(true).Resolve("team-a");
        Assert.True(r.Ok);
        Assert.Equal("team-a", r.TenantId);
    }
}
