using System.Globalization;
using System.Net;
using Rubato.Common.Configuration;

namespace Rubato.Receivers;

/// <summary>
/// <c>distributor.receivers</c>, shaped like Tempo's (which embeds the OpenTelemetry Collector receivers):
/// <code>
/// receivers:
///   otlp:
///     protocols:
///       grpc:            # localhost:4317
///       http:            # localhost:4318
///   zipkin:              # localhost:9411
///   jaeger:
///     protocols:
///       grpc:            # localhost:14250
///       thrift_http:     # localhost:14268
///       thrift_compact:  # localhost:6831/udp
///       thrift_binary:   # localhost:6832/udp
/// </code>
/// A null section is disabled; an empty section is enabled on its default endpoint.
/// </summary>
public sealed class ReceiversConfig : IValidatableConfig
{
    public OtlpReceiverConfig? Otlp { get; set; }

    public ZipkinReceiverConfig? Zipkin { get; set; }

    public JaegerReceiverConfig? Jaeger { get; set; }

    /// <summary>Every enabled receiver endpoint: (key used in <see cref="ReceiversService.BoundEndpoints"/>, YAML key, section).</summary>
    public IReadOnlyList<EnabledReceiver> Enabled()
    {
        var list = new List<EnabledReceiver>();
        void Add(string key, string yamlKey, EndpointConfig? section, string defaultEndpoint)
        {
            if (section is not null)
            {
                list.Add(new EnabledReceiver(key, yamlKey, section, string.IsNullOrWhiteSpace(section.Endpoint) ? defaultEndpoint : section.Endpoint.Trim()));
            }
        }

        Add(ReceiverKeys.OtlpGrpc, "otlp.protocols.grpc", Otlp?.Protocols?.Grpc, "localhost:4317");
        Add(ReceiverKeys.OtlpHttp, "otlp.protocols.http", Otlp?.Protocols?.Http, "localhost:4318");
        Add(ReceiverKeys.Zipkin, "zipkin", Zipkin, "localhost:9411");
        Add(ReceiverKeys.JaegerGrpc, "jaeger.protocols.grpc", Jaeger?.Protocols?.Grpc, "localhost:14250");
        Add(ReceiverKeys.JaegerThriftHttp, "jaeger.protocols.thrift_http", Jaeger?.Protocols?.ThriftHttp, "localhost:14268");
        Add(ReceiverKeys.JaegerThriftCompact, "jaeger.protocols.thrift_compact", Jaeger?.Protocols?.ThriftCompact, "localhost:6831");
        Add(ReceiverKeys.JaegerThriftBinary, "jaeger.protocols.thrift_binary", Jaeger?.Protocols?.ThriftBinary, "localhost:6832");
        return list;
    }

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (Otlp is not null && Otlp.Protocols is null)
        {
            validation.Error($"{prefix}.otlp", "protocols must enable at least one of grpc, http");
        }

        if (Jaeger is not null && Jaeger.Protocols is null)
        {
            validation.Error($"{prefix}.jaeger", "protocols must enable at least one of grpc, thrift_http, thrift_compact, thrift_binary");
        }

        var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var r in Enabled())
        {
            string key = $"{prefix}.{r.YamlKey}";
            if (!EndpointParser.TryParse(r.Endpoint, out _, out _, out string? error))
            {
                validation.Error($"{key}.endpoint", error!);
                continue;
            }

            // Two TCP receivers (or two UDP ones) cannot share a fixed port.
            EndpointParser.TryParse(r.Endpoint, out _, out int port, out _);
            string slot = (r.Section is UdpEndpointConfig ? "udp:" : "tcp:") + port.ToString(CultureInfo.InvariantCulture);
            if (port != 0 && !seen.TryAdd(slot, key))
            {
                validation.Error($"{key}.endpoint", $"port {port} is already used by {seen[slot]}");
            }

            switch (r.Section)
            {
                case GrpcEndpointConfig { MaxRecvMsgSizeMib: < 0 or > 2047 } g:
                    validation.Error($"{key}.max_recv_msg_size_mib", $"must be between 0 (default 4) and 2047, got {g.MaxRecvMsgSizeMib}");
                    break;
                case HttpEndpointConfig { MaxRequestBodySize: < 0 } h:
                    validation.Error($"{key}.max_request_body_size", $"must not be negative, got {h.MaxRequestBodySize}");
                    break;
                case UdpEndpointConfig u:
                    if (u.QueueSize is < 0)
                    {
                        validation.Error($"{key}.queue_size", $"must not be negative, got {u.QueueSize}");
                    }

                    if (u.MaxPacketSize is < 0 or > 65535)
                    {
                        validation.Error($"{key}.max_packet_size", $"must be between 0 (default 65000) and 65535, got {u.MaxPacketSize}");
                    }

                    if (u.Workers is < 0)
                    {
                        validation.Error($"{key}.workers", $"must not be negative, got {u.Workers}");
                    }

                    break;
            }
        }
    }
}

/// <summary>One enabled receiver after defaults were applied.</summary>
public sealed record EnabledReceiver(string Key, string YamlKey, EndpointConfig Section, string Endpoint);

/// <summary>The keys of <see cref="ReceiversService.BoundEndpoints"/>.</summary>
public static class ReceiverKeys
{
    public const string OtlpGrpc = "otlp_grpc";
    public const string OtlpHttp = "otlp_http";
    public const string Zipkin = "zipkin";
    public const string JaegerGrpc = "jaeger_grpc";
    public const string JaegerThriftHttp = "jaeger_thrift_http";
    public const string JaegerThriftCompact = "jaeger_thrift_compact";
    public const string JaegerThriftBinary = "jaeger_thrift_binary";
}

/// <summary>A listening endpoint, <c>host:port</c>; empty host or <c>0.0.0.0</c> is every interface, port 0 picks a free port.</summary>
public class EndpointConfig
{
    public string? Endpoint { get; set; }
}

/// <summary>A gRPC endpoint (collector <c>configgrpc</c>).</summary>
public sealed class GrpcEndpointConfig : EndpointConfig
{
    /// <summary>Largest request message in MiB; null or 0 means gRPC's default of 4 MiB.</summary>
    public int? MaxRecvMsgSizeMib { get; set; }

    public int EffectiveMaxRecvMsgSizeBytes() => (MaxRecvMsgSizeMib is > 0 ? MaxRecvMsgSizeMib.Value : 4) * 1024 * 1024;
}

/// <summary>An HTTP endpoint (collector <c>confighttp</c>).</summary>
public class HttpEndpointConfig : EndpointConfig
{
    /// <summary>Largest request body in bytes, before and after decompression; null or 0 means the collector's 20 MiB.</summary>
    public long? MaxRequestBodySize { get; set; }

    public long EffectiveMaxRequestBodyBytes() => MaxRequestBodySize is > 0 ? MaxRequestBodySize.Value : 20L * 1024 * 1024;
}

/// <summary>A UDP endpoint (Jaeger agent protocols).</summary>
public sealed class UdpEndpointConfig : EndpointConfig
{
    /// <summary>Datagrams queued between the socket and the workers; beyond it they are dropped and counted. Default 1000.</summary>
    public int? QueueSize { get; set; }

    /// <summary>Largest datagram accepted; default 65000 (Jaeger's).</summary>
    public int? MaxPacketSize { get; set; }

    /// <summary>Tasks decoding and pushing queued datagrams; default 10 (the collector's).</summary>
    public int? Workers { get; set; }

    public int EffectiveQueueSize() => QueueSize is > 0 ? QueueSize.Value : 1000;

    public int EffectiveMaxPacketSize() => MaxPacketSize is > 0 ? MaxPacketSize.Value : 65000;

    public int EffectiveWorkers() => Workers is > 0 ? Workers.Value : 10;
}

public sealed class OtlpReceiverConfig
{
    public OtlpProtocolsConfig? Protocols { get; set; }
}

public sealed class OtlpProtocolsConfig
{
    public GrpcEndpointConfig? Grpc { get; set; }

    public HttpEndpointConfig? Http { get; set; }
}

/// <summary><c>zipkin:</c> is itself the HTTP endpoint section.</summary>
public sealed class ZipkinReceiverConfig : HttpEndpointConfig
{
}

public sealed class JaegerReceiverConfig
{
    public JaegerProtocolsConfig? Protocols { get; set; }
}

public sealed class JaegerProtocolsConfig
{
    public GrpcEndpointConfig? Grpc { get; set; }

    public HttpEndpointConfig? ThriftHttp { get; set; }

    public UdpEndpointConfig? ThriftCompact { get; set; }

    public UdpEndpointConfig? ThriftBinary { get; set; }
}

/// <summary>Parses <c>host:port</c> endpoints the way Go's <c>net.Listen</c> accepts them.</summary>
public static class EndpointParser
{
    /// <param name="host">Null for every interface, else a host name or IP literal (brackets removed).</param>
    public static bool TryParse(string endpoint, out string? host, out int port, out string? error)
    {
        host = null;
        port = 0;
        error = null;
        int colon = endpoint.LastIndexOf(':');
        if (colon < 0)
        {
            error = $"'{endpoint}' is not host:port (missing port)";
            return false;
        }

        string h = endpoint[..colon];
        string p = endpoint[(colon + 1)..];
        if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
        {
            error = $"'{endpoint}' has an invalid port '{p}' (want 0..65535)";
            return false;
        }

        if (h.StartsWith('[') && h.EndsWith(']'))
        {
            h = h[1..^1];
            if (!IPAddress.TryParse(h, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"'{endpoint}' has an invalid IPv6 address '{h}'";
                return false;
            }
        }
        else if (h.Contains(':'))
        {
            error = $"'{endpoint}' has an IPv6 address without brackets (write [addr]:port)";
            return false;
        }

        if (h.Length == 0)
        {
            return true;
        }

        if (!IPAddress.TryParse(h, out _) && Uri.CheckHostName(h) != UriHostNameType.Dns)
        {
            error = $"'{endpoint}' has an invalid host '{h}'";
            return false;
        }

        host = h;
        return true;
    }

    /// <summary>Resolves to the addresses to bind: every interface, loopback for <c>localhost</c>, an IP, or DNS.</summary>
    public static IPAddress[] Resolve(string endpoint, out int port)
    {
        if (!TryParse(endpoint, out string? host, out port, out string? error))
        {
            throw new ArgumentException(error, nameof(endpoint));
        }

        if (host is null)
        {
            return [IPAddress.Any];
        }

        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return [IPAddress.Loopback];
        }

        if (IPAddress.TryParse(host, out var ip))
        {
            return [ip];
        }

        var resolved = Dns.GetHostAddresses(host);
        if (resolved.Length == 0)
        {
            throw new ArgumentException($"endpoint host '{host}' resolves to no address", nameof(endpoint));
        }

        return [resolved[0]];
    }
}
