using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Rubato.Server.Configuration;

namespace Rubato.Server;

/// <summary>Console logging at <c>server.log_level</c>; <c>log_format: json</c> switches to one JSON object per line.</summary>
public static class Logging
{
    public static ILoggerFactory Create(ServerConfig server) => LoggerFactory.Create(b =>
    {
        b.SetMinimumLevel(server.LogLevel switch
        {
            "debug" => LogLevel.Debug,
            "warn" => LogLevel.Warning,
            "error" => LogLevel.Error,
            _ => LogLevel.Information,
        });
        b.AddFilter("Microsoft", LogLevel.Warning);

        // Kestrel warns that a cleartext Http1AndHttp2 endpoint cannot negotiate HTTP/2; Rubato detects the h2c preface
        // itself (Rubato.Grpc.GrpcKestrel), so that warning is wrong here.
        b.AddFilter("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Error);
        if (server.LogFormat == "json")
        {
            b.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ");
        }
        else
        {
            b.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
        }
    });
}
