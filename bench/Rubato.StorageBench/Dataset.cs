using Rubato.Common.Ids;
using Rubato.Common.Model;
using Rubato.Storage.Backend;
using Rubato.Storage.Encoding;

namespace Rubato.StorageBench;

/// <summary>
/// A synthetic microservice workload written as real <c>vRubato1</c> blocks with the production block builder: each
/// trace is a request entering <c>gateway</c> and fanning out over a service call chain, with HTTP, RPC and database
/// attributes, about 1.5% error spans and a long duration tail. Seeded, so two runs build the same dataset.
/// </summary>
public static class Dataset
{
    public const string Tenant = "bench";

    private static readonly string[] Chain = ["gateway", "auth", "orders", "inventory", "pricing", "payments", "shipping", "notify"];
    private static readonly string[] Routes = ["/api/orders", "/api/cart", "/api/users", "/api/search", "/api/checkout", "/health"];
    private static readonly string[] Zones = ["zone-a", "zone-b", "zone-c"];

    /// <summary>Writes <paramref name="traces"/> traces in blocks of <paramref name="tracesPerBlock"/>; returns the metas and every written trace id.</summary>
    public static async Task<(List<BlockMeta> Blocks, List<TraceId> Ids)> WriteAsync(IObjectStore store, int traces, int spansPerTrace, int tracesPerBlock, CancellationToken ct)
    {
        var blocks = new List<BlockMeta>();
        var ids = new List<TraceId>(traces);
        var rng = new Random(20261121);
        ulong baseNanos = (ulong)DateTimeOffset.UtcNow.AddHours(-3).ToUnixTimeMilliseconds() * 1_000_000UL;
        for (int first = 0; first < traces; first += tracesPerBlock)
        {
            int count = Math.Min(tracesPerBlock, traces - first);

            // The builder takes traces in ascending id order.
            var blockIds = Enumerable.Range(0, count).Select(_ => new TraceId((ulong)rng.NextInt64() | 1UL << 62, (ulong)rng.NextInt64())).Order().ToArray();
            using var builder = Encodings.Default.CreateBlockBuilder(new BlockBuilderOptions { TenantId = Tenant });
            for (int i = 0; i < count; i++)
            {
                builder.AddTrace(blockIds[i], Build(rng, blockIds[i], baseNanos + ((ulong)(first + i) * 50_000_000UL), spansPerTrace));
            }

            blocks.Add(await builder.WriteAsync(store, ct).ConfigureAwait(false));
            ids.AddRange(blockIds);
        }

        return (blocks, ids);
    }

    private static Trace Build(Random rng, TraceId id, ulong start, int spanCount)
    {
        var trace = new Trace();
        var scopes = new Dictionary<string, ScopeSpans>(StringComparer.Ordinal);
        ScopeSpans ScopeOf(string service)
        {
            if (scopes.TryGetValue(service, out var found))
            {
                return found;
            }

            var resource = new ResourceSpans();
            resource.Resource.Attributes.Add(new KeyValue("service.name", AnyValue.String(service)));
            resource.Resource.Attributes.Add(new KeyValue("deployment.environment", AnyValue.String("prod")));
            resource.Resource.Attributes.Add(new KeyValue("cloud.availability_zone", AnyValue.String(Zones[rng.Next(Zones.Length)])));
            resource.Resource.Attributes.Add(new KeyValue("host.name", AnyValue.String($"{service}-{rng.Next(12):D2}")));
            var scope = new ScopeSpans();
            scope.Scope.Name = "bench/" + service;
            resource.ScopeSpans.Add(scope);
            trace.ResourceSpans.Add(resource);
            scopes[service] = scope;
            return scope;
        }

        // Durations: 1 in 400 spans takes 2–8 s, 1 in 20 takes 100–900 ms, the rest 0.2–80 ms.
        int roll = rng.Next(400);
        ulong rootDuration = roll == 0 ? (ulong)rng.NextInt64(2_000_000_000, 8_000_000_000)
            : roll < 20 ? (ulong)rng.Next(100_000_000, 900_000_000)
            : (ulong)rng.Next(200_000, 80_000_000);
        var root = new Span
        {
            TraceId = id,
            SpanId = new SpanId((ulong)rng.NextInt64() | 1),
            Name = "HTTP " + Routes[rng.Next(Routes.Length)],
            Kind = SpanKind.Server,
            StartTimeUnixNano = start,
            EndTimeUnixNano = start + rootDuration,
            StatusCode = rng.Next(60) == 0 ? StatusCode.Error : StatusCode.Unset,
        };
        root.Attributes.Add(new KeyValue("http.request.method", AnyValue.String(rng.Next(4) == 0 ? "POST" : "GET")));
        root.Attributes.Add(new KeyValue("http.response.status_code", AnyValue.Int(root.StatusCode == StatusCode.Error ? 503 : rng.Next(40) == 0 ? 404 : 200)));
        ScopeOf(Chain[0]).Spans.Add(root);

        var parent = root;
        for (int i = 1; i < spanCount; i++)
        {
            // Each hop calls the next service in the chain (a client span, then the callee's server span) or queries
            // its database; the chain wraps so every service sees traffic.
            string service = Chain[i % Chain.Length];
            bool db = rng.Next(5) == 0;
            ulong offset = (ulong)rng.Next(10_000, 400_000);
            ulong length = Math.Max(50_000UL, (parent.EndTimeUnixNano - parent.StartTimeUnixNano) / 2);
            var span = new Span
            {
                TraceId = id,
                SpanId = new SpanId((ulong)rng.NextInt64() | 1),
                ParentSpanId = parent.SpanId,
                Name = db ? "SELECT " + service : service + "/Handle",
                Kind = db ? SpanKind.Client : i % 2 == 0 ? SpanKind.Server : SpanKind.Internal,
                StartTimeUnixNano = parent.StartTimeUnixNano + offset,
                EndTimeUnixNano = parent.StartTimeUnixNano + offset + length,
                StatusCode = rng.Next(70) == 0 ? StatusCode.Error : StatusCode.Ok,
            };
            if (db)
            {
                span.Attributes.Add(new KeyValue("db.system", AnyValue.String("postgresql")));
                span.Attributes.Add(new KeyValue("db.statement", AnyValue.String($"SELECT * FROM {service} WHERE id = ${rng.Next(1, 4)}")));
            }
            else
            {
                span.Attributes.Add(new KeyValue("rpc.method", AnyValue.String("Handle")));
                span.Attributes.Add(new KeyValue("rpc.attempt", AnyValue.Int(1 + (rng.Next(30) == 0 ? 1 : 0))));
            }

            ScopeOf(service).Spans.Add(span);
            if (!db)
            {
                parent = span;
            }
        }

        return trace;
    }
}
