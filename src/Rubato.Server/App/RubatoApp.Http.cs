using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rubato.Common.Services;
using Rubato.Server.Configuration;
using Rubato.Server.Http;

namespace Rubato.Server.App;

/// <summary>The operational endpoints every Rubato process serves, whatever its target.</summary>
public sealed partial class RubatoApp
{
    private void MapOperationalEndpoints(WebApplication web)
    {
        string p = _config.HttpApiPrefix;
        var processMetrics = new ProcessMetrics(Metrics);

        web.MapGet("/ready", (HttpContext ctx) =>
        {
            if (IsReady)
            {
                return Results.Text("ready\n");
            }

            var sb = new StringBuilder("Some services are not Running:\n");
            foreach (var (name, svc) in _services.Where(s => s.Service.State != ServiceState.Running))
            {
                sb.Append(svc.State).Append(": ").Append(name).Append('\n');
            }

            return Results.Text(sb.ToString(), statusCode: StatusCodes.Status503ServiceUnavailable);
        });

        web.MapGet("/metrics", () =>
        {
            processMetrics.Refresh();
            return Results.Text(Metrics.Render(), "text/plain; version=0.0.4; charset=utf-8");
        });

        web.MapGet(p + "/api/echo", () => Results.Text("echo", "text/plain"));
        web.MapGet(p + "/api/status/buildinfo", () => Results.Json(BuildInfo.ToJsonObject()));

        web.MapGet("/status", () => Results.Text(
            string.Join('\n', ["/status/version", "/status/services", "/status/endpoints", "/status/config", "/status/overrides"]) + "\n"));
        web.MapGet("/status/version", () => Results.Text(
            $"Rubato, version {BuildInfo.Version} (revision: {BuildInfo.Revision})\n  runtime: {BuildInfo.RuntimeVersion}\n"));

        web.MapGet("/status/services", () =>
        {
            var sb = new StringBuilder();
            foreach (var (name, svc) in _services)
            {
                sb.Append(name).Append(' ').Append(svc.State).Append('\n');
            }

            return Results.Text(sb.ToString());
        });

        web.MapGet("/status/endpoints", (HttpContext ctx) =>
        {
            var sources = ctx.RequestServices.GetRequiredService<EndpointDataSource>();
            var sb = new StringBuilder();
            foreach (var e in sources.Endpoints.OfType<RouteEndpoint>().OrderBy(e => e.RoutePattern.RawText, StringComparer.Ordinal))
            {
                var methods = e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["*"];
                sb.Append(string.Join(',', methods)).Append(' ').Append(e.RoutePattern.RawText).Append('\n');
            }

            return Results.Text(sb.ToString());
        });

        web.MapGet("/status/config", (HttpContext ctx) =>
        {
            string mode = ctx.Request.Query["mode"].ToString();
            return mode switch
            {
                "" => Results.Text(ConfigLoader.ToYaml(_config), "text/yaml"),
                "defaults" => Results.Text(ConfigLoader.ToYaml(new RubatoConfig()), "text/yaml"),
                "diff" => Results.Text(ConfigDiff(), "text/yaml"),
                _ => Results.Text($"unknown mode '{mode}'; use defaults or diff", statusCode: 400),
            };
        });

        web.MapMethods("/flush", ["GET", "POST"], async (HttpContext ctx) =>
        {
            foreach (var f in _flushables)
            {
                await f.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
            }

            return Results.NoContent();
        });

        web.MapMethods("/shutdown", ["GET", "POST"], () =>
        {
            // Answer first, then stop: stopping flushes every module and stops this server last.
            _ = Task.Run(() => RequestShutdown("/shutdown endpoint"));
            return Results.NoContent();
        });
    }

    /// <summary>The lines of the effective config that differ from the defaults.</summary>
    private string ConfigDiff()
    {
        var current = ConfigLoader.ToYaml(_config).Split('\n');
        var defaults = new HashSet<string>(ConfigLoader.ToYaml(new RubatoConfig()).Split('\n'), StringComparer.Ordinal);
        return string.Join('\n', current.Where(l => !defaults.Contains(l))) + "\n";
    }

    private ILogger Logger(string module) => _loggerFactory.CreateLogger(module);
}
