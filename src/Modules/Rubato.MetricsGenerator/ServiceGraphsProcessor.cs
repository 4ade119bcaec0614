using System.Text;
using Rubato.Common.Ids;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.MetricsGenerator;

/// <summary>What a tenant's service-graphs processor does, resolved from config + overrides.</summary>
internal sealed record ServiceGraphsSettings(
    TimeSpan Wait,
    int MaxItems,
    double[] Buckets,
    string[] Dimensions,
    string[] PeerAttributes,
    bool EnableClientServerPrefix,
    bool EnableMessagingSystemLatencyHistogram,
    bool EnableVirtualNodeLabel)
{
    public bool Equivalent(ServiceGraphsSettings o) =>
        Wait == o.Wait && MaxItems == o.MaxItems && Buckets.AsSpan().SequenceEqual(o.Buckets)
        && Dimensions.AsSpan().SequenceEqual(o.Dimensions) && PeerAttributes.AsSpan().SequenceEqual(o.PeerAttributes)
        && EnableClientServerPrefix == o.EnableClientServerPrefix
        && EnableMessagingSystemLatencyHistogram == o.EnableMessagingSystemLatencyHistogram
        && EnableVirtualNodeLabel == o.EnableVirtualNodeLabel;
}

/// <summary>Tempo's <c>connection_type</c> values.</summary>
internal static class ConnectionTypes
{
    public const string Unknown = "";
    public const string MessagingSystem = "messaging_system";
    public const string Database = "database";
    public const string VirtualNode = "virtual_node";
}

/// <summary>One request between two services, waiting for its client or server half.</summary>
internal sealed class Edge
{
    public TraceId TraceId;

    /// <summary>The client span's id (= the server span's parent); 0 for a root server span.</summary>
    public ulong SpanId;
    public string ClientService = string.Empty;
    public string ServerService = string.Empty;
    public string ConnectionType = ConnectionTypes.Unknown;
    public double ClientLatencySec;
    public double ServerLatencySec;
    public ulong ClientEndUnixNano;
    public ulong ServerStartUnixNano;
    public bool Failed;
    public string PeerNode = string.Empty;

    /// <summary>Dimension label values by label index (after client, server, connection_type).</summary>
    public string[] Dimensions = [];
    public long ExpiresAtMs;
    public LinkedListNode<Edge>? Node;

    public bool IsComplete => ClientService.Length > 0 && ServerService.Length > 0;
}

/// <summary>
/// Tempo's service-graphs processor. Client/producer spans and server/consumer spans meet in an edge store keyed by
/// (trace id, client span id); a completed edge becomes <c>traces_service_graph_request_total</c>,
/// <c>_request_failed_total</c>, <c>_request_server_seconds</c> and <c>_request_client_seconds</c>. Edges not
/// completed within <c>wait</c> expire: a root server span becomes a request from <c>user</c> (or its peer), a
/// client span with a peer attribute a request to that virtual node; anything else counts as unpaired.
/// </summary>
/// <remarks>
/// Runs under the tenant's lock: spans on a generator worker, <see cref="Expire"/> on the collection thread.
/// Edges are FIFO by creation, so expiry only looks at the head of the list.
/// </remarks>
internal sealed class ServiceGraphsProcessor
{
    public const string RequestTotal = "traces_service_graph_request_total";
    public const string RequestFailedTotal = "traces_service_graph_request_failed_total";
    public const string RequestServerSeconds = "traces_service_graph_request_server_seconds";
    public const string RequestClientSeconds = "traces_service_graph_request_client_seconds";
    public const string RequestMessagingSystemSeconds = "traces_service_graph_request_messaging_system_seconds";
    public const string UnpairedSpansTotal = "traces_service_graph_unpaired_spans_total";
    public const string DroppedSpansTotal = "traces_service_graph_dropped_spans_total";

    private const string VirtualNodeLabel = "virtual_node";
    private static readonly string[] SideLabels = ["client", "server", "connection_type"];

    private readonly ServiceGraphsSettings _s;
    private readonly GeneratorSelfMetrics.TenantChildren _self;
    private readonly Dictionary<(TraceId, ulong), Edge> _edges = [];
    private readonly LinkedList<Edge> _order = new();
    private readonly SeriesKeyBuilder _key;
    private readonly StringInterner _strings = new();

    // Dimension layout: each configured dimension (plus virtual_node) maps to one or two label slots.
    private readonly byte[][] _dimensionKeys;
    private readonly int[] _clientSlot;
    private readonly int[] _serverSlot;
    private readonly int _virtualNodeSlot = -1;
    private readonly int _slots;
    private readonly byte[][] _peerKeys;

    private readonly RegistryCounter _total;
    private readonly RegistryCounter _failed;
    private readonly RegistryHistogram _server;
    private readonly RegistryHistogram _client;
    private readonly RegistryHistogram? _messaging;
    private readonly RegistryCounter _unpaired;
    private readonly RegistryCounter _dropped;

    public ServiceGraphsProcessor(ServiceGraphsSettings settings, TenantRegistry registry, int maxLabelValueLength, GeneratorSelfMetrics.TenantChildren self)
    {
        _s = settings;
        _self = self;
        _key = new SeriesKeyBuilder(maxLabelValueLength);
        _dimensionKeys = [.. settings.Dimensions.Select(d => Encoding.UTF8.GetBytes(d))];
        _peerKeys = [.. settings.PeerAttributes.Select(d => Encoding.UTF8.GetBytes(d))];

        var names = new List<string>(SideLabels);
        _clientSlot = new int[settings.Dimensions.Length];
        _serverSlot = new int[settings.Dimensions.Length];
        for (int i = 0; i < settings.Dimensions.Length; i++)
        {
            if (settings.EnableClientServerPrefix)
            {
                _clientSlot[i] = names.Count - 3;
                names.Add(Labels.Sanitize("client_" + settings.Dimensions[i]));
                _serverSlot[i] = names.Count - 3;
                names.Add(Labels.Sanitize("server_" + settings.Dimensions[i]));
            }
            else
            {
                _clientSlot[i] = _serverSlot[i] = names.Count - 3;
                names.Add(Labels.Sanitize(settings.Dimensions[i]));
            }
        }

        if (settings.EnableVirtualNodeLabel)
        {
            _virtualNodeSlot = names.Count - 3;
            names.Add(VirtualNodeLabel);
        }

        _slots = names.Count - 3;
        string[] labelNames = [.. names];
        _total = registry.Counter(RequestTotal, labelNames);
        _failed = registry.Counter(RequestFailedTotal, labelNames);
        _server = registry.Histogram(RequestServerSeconds, labelNames, settings.Buckets);
        _client = registry.Histogram(RequestClientSeconds, labelNames, settings.Buckets);
        if (settings.EnableMessagingSystemLatencyHistogram)
        {
            _messaging = registry.Histogram(RequestMessagingSystemSeconds, labelNames, settings.Buckets);
        }
        else
        {
            registry.Remove(RequestMessagingSystemSeconds);
        }

        _unpaired = registry.Counter(UnpairedSpansTotal, SideLabels);
        _dropped = registry.Counter(DroppedSpansTotal, SideLabels);
    }

    public ServiceGraphsSettings Settings => _s;

    /// <summary>Edges waiting for their other half.</summary>
    public int PendingEdges => _edges.Count;

    public static void RemoveMetrics(TenantRegistry registry)
    {
        foreach (var name in new[] { RequestTotal, RequestFailedTotal, RequestServerSeconds, RequestClientSeconds, RequestMessagingSystemSeconds, UnpairedSpansTotal, DroppedSpansTotal })
        {
            registry.Remove(name);
        }
    }

    public void Span(ref SpanFields span, ReadOnlySpan<byte> resource, ReadOnlySpan<byte> serviceName, long nowMs)
    {
        bool client;
        string connectionType = ConnectionTypes.Unknown;
        switch (span.Kind)
        {
            case 4: // PRODUCER: a client across a messaging system
                connectionType = ConnectionTypes.MessagingSystem;
                client = true;
                break;
            case 3: // CLIENT
                client = true;
                break;
            case 5: // CONSUMER: a server across a messaging system
                connectionType = ConnectionTypes.MessagingSystem;
                client = false;
                break;
            case 2: // SERVER
                client = false;
                break;
            default:
                return;
        }

        var key = (span.TraceId, client ? span.SpanId : (span.HasParent ? span.ParentSpanId : 0UL));
        bool isNew = !_edges.TryGetValue(key, out var edge);
        if (isNew)
        {
            edge = new Edge { TraceId = span.TraceId, SpanId = key.Item2, ExpiresAtMs = nowMs + (long)_s.Wait.TotalMilliseconds };
            if (_slots > 0)
            {
                edge.Dimensions = new string[_slots];
                Array.Fill(edge.Dimensions, string.Empty);
            }
        }

        string svc = _strings.Get(serviceName);
        edge!.ConnectionType = connectionType;
        edge.Failed |= span.StatusCode == 2;
        if (client)
        {
            edge.ClientService = svc;
            edge.ClientLatencySec = span.DurationSeconds;
            edge.ClientEndUnixNano = span.EndUnixNano;
            UpsertDimensions(edge, resource, span.Message, _clientSlot);
            UpsertPeerNode(edge, span.Message);
            UpsertDatabaseRequest(edge, resource, ref span);
        }
        else
        {
            edge.ServerService = svc;
            edge.ServerLatencySec = span.DurationSeconds;
            edge.ServerStartUnixNano = span.StartUnixNano;
            UpsertDimensions(edge, resource, span.Message, _serverSlot);
            if (!span.HasParent)
            {
                // Only a root server span can become a virtual-node edge from its peer attributes.
                UpsertPeerNode(edge, span.Message);
            }
        }

        if (edge.IsComplete)
        {
            if (!isNew)
            {
                Delete(edge);
            }

            Complete(edge, nowMs);
            return;
        }

        if (!isNew)
        {
            return;
        }

        if (_edges.Count >= _s.MaxItems)
        {
            // Tempo's ErrTooManyItems: the span is dropped and its edge is never emitted.
            _self.ServiceGraphDroppedSpans.Inc();
            _key.Reset();
            _key.Add(edge.ClientService);
            _key.Add(edge.ServerService);
            _key.Add(edge.ConnectionType);
            _dropped.Inc(_key.Key, 1, nowMs);
            return;
        }

        _edges.Add(key, edge);
        edge.Node = _order.AddLast(edge);
        _self.ServiceGraphEdges.Inc();
    }

    /// <summary>Expires edges whose <c>wait</c> has passed at <paramref name="nowMs"/> (Tempo's <c>store.Expire</c>).</summary>
    public void Expire(long nowMs)
    {
        while (_order.First is { } head && head.Value.ExpiresAtMs <= nowMs)
        {
            var edge = head.Value;
            Delete(edge);
            OnExpire(edge, nowMs);
        }
    }

    private void OnExpire(Edge e, long nowMs)
    {
        string originalType = e.ConnectionType;
        e.ConnectionType = ConnectionTypes.VirtualNode;
        if (e.ClientService.Length == 0)
        {
            // A server span without a client: if it is the root span, the request came from outside (a browser,
            // curl, an uninstrumented caller); name the caller by its peer attribute, else "user".
            if (e.SpanId == 0)
            {
                e.ClientService = e.PeerNode.Length > 0 ? e.PeerNode : "user";
                SetVirtualNode(e, "client");
                Complete(e, nowMs);
                return;
            }
        }
        else if (e.ServerService.Length == 0 && e.PeerNode.Length > 0)
        {
            // A client span whose server never reported: an external or uninstrumented service named by its peer attribute.
            e.ServerService = e.PeerNode;
            SetVirtualNode(e, "server");
            Complete(e, nowMs);
            return;
        }

        _self.ServiceGraphExpiredEdges.Inc();
        _key.Reset();
        _key.Add(e.ClientService);
        _key.Add(e.ServerService);
        _key.Add(originalType);
        _unpaired.Inc(_key.Key, 1, nowMs);
    }

    private void SetVirtualNode(Edge e, string side)
    {
        if (_virtualNodeSlot >= 0)
        {
            e.Dimensions[_virtualNodeSlot] = side;
        }
    }

    private void Delete(Edge e)
    {
        _edges.Remove((e.TraceId, e.SpanId));
        if (e.Node is not null)
        {
            _order.Remove(e.Node);
            e.Node = null;
        }
    }

    private void Complete(Edge e, long nowMs)
    {
        var key = _key;
        key.Reset();
        key.Add(e.ClientService);
        key.Add(e.ServerService);
        key.Add(e.ConnectionType);
        foreach (var d in e.Dimensions)
        {
            key.Add(d);
        }

        var hashed = new HashedKey(key.Key);
        _total.Inc(hashed, 1, nowMs);
        if (e.Failed)
        {
            _failed.Inc(hashed, 1, nowMs);
        }

        _server.Observe(hashed, e.ServerLatencySec, nowMs);
        _client.Observe(hashed, e.ClientLatencySec, nowMs);
        if (_messaging is not null && e.ConnectionType == ConnectionTypes.MessagingSystem && e.ServerStartUnixNano > e.ClientEndUnixNano)
        {
            _messaging.Observe(hashed, (e.ServerStartUnixNano - e.ClientEndUnixNano) / 1e9, nowMs);
        }
    }

    private void UpsertDimensions(Edge e, ReadOnlySpan<byte> resource, ReadOnlySpan<byte> spanMessage, int[] slots)
    {
        for (int i = 0; i < _dimensionKeys.Length; i++)
        {
            if (SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, _dimensionKeys[i], out var v)
                || SpanWalker.TryFindAttribute(spanMessage, F.Span.Attributes, _dimensionKeys[i], out v))
            {
                e.Dimensions[slots[i]] = Stringify(ref v);
            }
        }
    }

    private void UpsertPeerNode(Edge e, ReadOnlySpan<byte> spanMessage)
    {
        foreach (var k in _peerKeys)
        {
            if (SpanWalker.TryFindAttribute(spanMessage, F.Span.Attributes, k, out var v))
            {
                e.PeerNode = Stringify(ref v);
                return;
            }
        }
    }

    /// <summary>
    /// Tempo's database edge: a client span with db.namespace, db.name or db.system is a complete request to a
    /// database, named by peer.service, else server.address, else network.peer.address[:network.peer.port], else the
    /// database name (db.namespace, db.name, db.system in that order).
    /// </summary>
    private void UpsertDatabaseRequest(Edge e, ReadOnlySpan<byte> resource, ref SpanFields span)
    {
        string? dbName = null;
        foreach (var attr in DatabaseNameAttributes)
        {
            if (Find(resource, span.Message, attr, out var v))
            {
                dbName = Stringify(ref v);
                break;
            }
        }

        if (dbName is null)
        {
            return;
        }

        e.ConnectionType = ConnectionTypes.Database;
        e.ServerLatencySec = span.DurationSeconds;
        if (Find(resource, span.Message, "peer.service"u8, out var peer))
        {
            e.ServerService = Stringify(ref peer);
        }
        else if (Find(resource, span.Message, "server.address"u8, out var address))
        {
            e.ServerService = Stringify(ref address);
        }
        else if (Find(resource, span.Message, "network.peer.address"u8, out var host))
        {
            string h = Stringify(ref host);
            e.ServerService = Find(resource, span.Message, "network.peer.port"u8, out var port) ? h + ":" + Stringify(ref port) : h;
        }
        else if (dbName.Length > 0)
        {
            e.ServerService = dbName;
        }
    }

    private static readonly byte[][] DatabaseNameAttributes = ["db.namespace"u8.ToArray(), "db.name"u8.ToArray(), "db.system"u8.ToArray()];

    private static bool Find(ReadOnlySpan<byte> resource, ReadOnlySpan<byte> span, ReadOnlySpan<byte> key, out AttributeValue v) =>
        SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, key, out v) || SpanWalker.TryFindAttribute(span, F.Span.Attributes, key, out v);

    private string Stringify(ref AttributeValue v)
    {
        if (v.Field == F.AnyValue.StringValue)
        {
            return _strings.Get(v.Bytes);
        }

        var b = new SeriesKeyBuilder(int.MaxValue);
        b.Add(ref v);
        return SeriesKeyBuilder.Decode(b.Key)[0];
    }
}

/// <summary>
/// Reuses the strings of repeated values (service names, peers, dimension values) so an edge costs no new string
/// when the value was seen before. Bounded: past its capacity it stops remembering.
/// </summary>
internal sealed class StringInterner
{
    private const int Capacity = 50_000;
    private readonly Dictionary<byte[], string> _map = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], string>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

    public StringInterner() => _lookup = _map.GetAlternateLookup<ReadOnlySpan<byte>>();

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return string.Empty;
        }

        if (_lookup.TryGetValue(utf8, out var s))
        {
            return s;
        }

        s = Encoding.UTF8.GetString(utf8);
        if (_map.Count < Capacity)
        {
            _map.Add(utf8.ToArray(), s);
        }

        return s;
    }
}
