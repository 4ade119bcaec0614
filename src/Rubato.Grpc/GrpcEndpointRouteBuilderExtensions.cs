using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Rubato.Grpc;

/// <summary>Maps gRPC methods onto ASP.NET Core endpoint routing as <c>POST /{service}/{method}</c>.</summary>
public static class GrpcEndpointRouteBuilderExtensions
{
    public static IEndpointConventionBuilder MapGrpcUnary(this IEndpointRouteBuilder endpoints, string service, string method,
        GrpcUnaryHandler handler, GrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Map(endpoints, service, method, options, async (context, request, writer) =>
        {
            var reply = await handler(context, request);
            // Unflushed: the message and the trailers leave together when the response completes.
            await writer.WriteAsync(reply, flush: false);
        });
    }

    public static IEndpointConventionBuilder MapGrpcServerStreaming(this IEndpointRouteBuilder endpoints, string service, string method,
        GrpcServerStreamingHandler handler, GrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Map(endpoints, service, method, options, (context, request, writer) => handler(context, request, writer));
    }

    /// <summary>
    /// Opt-in: answers gRPC requests (by content-type) for methods nobody mapped with UNIMPLEMENTED, as gRPC clients
    /// expect, instead of a bare 404. Other unmatched requests still get 404. It is a routing fallback
    /// (lowest priority), so it claims only what no other endpoint matched.
    /// </summary>
    public static IEndpointConventionBuilder MapGrpcFallback(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapFallback("{**path}", http =>
        {
            if (!HttpMethods.IsPost(http.Request.Method) || !GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            http.Response.ContentType = GrpcProtocol.ContentType;
            GrpcServerCall.WriteTrailersOnly(http.Response, GrpcStatusCode.Unimplemented, $"unknown method {http.Request.Path}", null);
            return Task.CompletedTask;
        });
    }

    private static IEndpointConventionBuilder Map(IEndpointRouteBuilder endpoints, string service, string method, GrpcServerOptions? options,
        Func<GrpcCallContext, ReadOnlyMemory<byte>, GrpcStreamWriter, ValueTask> body)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ValidateName(service, nameof(service));
        ValidateName(method, nameof(method));
        options ??= endpoints.ServiceProvider.GetService<IOptions<GrpcServerOptions>>()?.Value ?? new GrpcServerOptions();
        options.Validate();
        var logger = endpoints.ServiceProvider.GetService<ILoggerFactory>()?.CreateLogger("Rubato.Grpc.Server") ?? NullLogger.Instance;
        var call = new GrpcServerCall(service, method, options, logger, body);
        RequestDelegate run = call.ExecuteAsync;
        return endpoints.MapMethods("/" + service + "/" + method, [HttpMethods.Post], run)
            .WithDisplayName($"gRPC /{service}/{method}");
    }

    private static void ValidateName(string name, string parameter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name, parameter);
        if (name.AsSpan().IndexOfAny("/{}?#* ") >= 0)
        {
            throw new ArgumentException($"gRPC {parameter} name '{name}' must not contain '/', '{{', '}}', '?', '#', '*' or spaces", parameter);
        }
    }
}
