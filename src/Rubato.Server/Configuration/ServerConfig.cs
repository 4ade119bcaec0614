using System.Net;
using Rubato.Common.Configuration;

namespace Rubato.Server.Configuration;

/// <summary>The <c>server:</c> section: listen addresses and ports (Tempo: HTTP 3200, gRPC 9095).</summary>
public sealed class ServerConfig : IValidatableConfig
{
    public string HttpListenNetwork { get; set; } = "tcp";

    /// <summary>Empty means every interface, as in Tempo.</summary>
    public string HttpListenAddress { get; set; } = string.Empty;

    public int HttpListenPort { get; set; } = 3200;

    public string GrpcListenNetwork { get; set; } = "tcp";

    public string GrpcListenAddress { get; set; } = string.Empty;

    public int GrpcListenPort { get; set; } = 9095;

    public TimeSpan GracefulShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan HttpServerReadTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan HttpServerWriteTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan HttpServerIdleTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>Largest gRPC message accepted (Tempo's example configs raise it to 16 MiB; dskit's default is 4 MiB).</summary>
    public int GrpcServerMaxRecvMsgSize { get; set; } = 4 * 1024 * 1024;

    public int GrpcServerMaxSendMsgSize { get; set; } = 4 * 1024 * 1024;

    public int GrpcServerMaxConcurrentStreams { get; set; } = 100;

    /// <summary>debug, info, warn or error.</summary>
    public string LogLevel { get; set; } = "info";

    /// <summary>logfmt or json.</summary>
    public string LogFormat { get; set; } = "logfmt";

    public bool RegisterInstrumentation { get; set; } = true;

    public void Validate(string prefix, ConfigValidation validation)
    {
        CheckPort(prefix + ".http_listen_port", HttpListenPort, validation);
        CheckPort(prefix + ".grpc_listen_port", GrpcListenPort, validation);
        CheckAddress(prefix + ".http_listen_address", HttpListenAddress, validation);
        CheckAddress(prefix + ".grpc_listen_address", GrpcListenAddress, validation);
        if (HttpListenPort == GrpcListenPort && HttpListenPort != 0)
        {
            validation.Error(prefix + ".grpc_listen_port", $"must differ from http_listen_port ({HttpListenPort})");
        }

        if (LogLevel is not ("debug" or "info" or "warn" or "error"))
        {
            validation.Error(prefix + ".log_level", $"'{LogLevel}' is not one of debug, info, warn, error");
        }

        if (LogFormat is not ("logfmt" or "json"))
        {
            validation.Error(prefix + ".log_format", $"'{LogFormat}' is not one of logfmt, json");
        }

        if (GrpcServerMaxRecvMsgSize <= 0)
        {
            validation.Error(prefix + ".grpc_server_max_recv_msg_size", "must be positive");
        }

        if (HttpListenNetwork != "tcp" || GrpcListenNetwork != "tcp")
        {
            validation.Warning(prefix + ".http_listen_network", "only tcp is supported; the value is ignored");
        }
    }

    private static void CheckPort(string key, int port, ConfigValidation v)
    {
        if (port is < 0 or > 65535)
        {
            v.Error(key, $"{port} is not a TCP port (0-65535)");
        }
    }

    private static void CheckAddress(string key, string address, ConfigValidation v)
    {
        if (address.Length > 0 && address != "localhost" && !IPAddress.TryParse(address, out _))
        {
            v.Error(key, $"'{address}' is not an IP address");
        }
    }

    /// <summary>The address to bind: any interface when empty.</summary>
    public static IPAddress ResolveListenAddress(string address) =>
        address.Length == 0 ? IPAddress.Any : address == "localhost" ? IPAddress.Loopback : IPAddress.Parse(address);
}
