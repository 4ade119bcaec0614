using System.Text;
using F = Rubato.Common.Otlp.OtlpFieldNumbers;

namespace Rubato.MetricsGenerator;

/// <summary>What a tenant's span-metrics processor does, resolved from config + overrides.</summary>
internal sealed record SpanMetricsSettings(
    bool Count,
    bool Latency,
    bool Size,
    double[] Buckets,
    IntrinsicDimensionsConfig Intrinsics,
    string[] Dimensions,
    bool EnableTargetInfo,
    string[] TargetInfoExcluded,
    bool EnableInstanceLabel)
{
    public bool Equivalent(SpanMetricsSettings o) =>
        Count == o.Count && Latency == o.Latency && Size == o.Size && Buckets.AsSpan().SequenceEqual(o.Buckets)
        && Intrinsics.Service == o.Intrinsics.Service && Intrinsics.SpanName == o.Intrinsics.SpanName
        && Intrinsics.SpanKind == o.Intrinsics.SpanKind && Intrinsics.StatusCode == o.Intrinsics.StatusCode
        && Intrinsics.StatusMessage == o.Intrinsics.StatusMessage && Dimensions.AsSpan().SequenceEqual(o.Dimensions)
        && EnableTargetInfo == o.EnableTargetInfo && TargetInfoExcluded.AsSpan().SequenceEqual(o.TargetInfoExcluded)
        && EnableInstanceLabel == o.EnableInstanceLabel;
}

/// <summary>
/// Tempo's span-metrics processor: <c>traces_spanmetrics_calls_total</c>, <c>traces_spanmetrics_latency</c>,
/// <c>traces_spanmetrics_size_total</c> and optionally <c>traces_target_info</c>, labelled by the intrinsic
/// dimensions and the configured attribute dimensions.
/// </summary>
/// <remarks>Runs under the tenant's lock on a generator worker; builds each span's series key in place.</remarks>
internal sealed class SpanMetricsProcessor
{
    public const string CallsTotal = "traces_spanmetrics_calls_total";
    public const string Latency = "traces_spanmetrics_latency";
    public const string SizeTotal = "traces_spanmetrics_size_total";
    public const string TargetInfo = "traces_target_info";

    private static readonly string[] Intrinsic = ["service", "span_name", "span_kind", "status_code", "status_message"];
    private static readonly string[] TargetInfoIntrinsic = ["job", "instance"];

    private static readonly byte[][] KindNames =
    [
        "SPAN_KIND_UNSPECIFIED"u8.ToArray(), "SPAN_KIND_INTERNAL"u8.ToArray(), "SPAN_KIND_SERVER"u8.ToArray(),
        "SPAN_KIND_CLIENT"u8.ToArray(), "SPAN_KIND_PRODUCER"u8.ToArray(), "SPAN_KIND_CONSUMER"u8.ToArray(),
    ];

    private static readonly byte[][] StatusNames =
    [
        "STATUS_CODE_UNSET"u8.ToArray(), "STATUS_CODE_OK"u8.ToArray(), "STATUS_CODE_ERROR"u8.ToArray(),
    ];

    private readonly SpanMetricsSettings _s;
    private readonly byte[][] _dimensionKeys;
    private readonly RegistryCounter? _calls;
    private readonly RegistryHistogram? _latency;
    private readonly RegistryCounter? _size;
    private readonly RegistryInfoGauge? _targetInfo;
    private readonly SeriesKeyBuilder _key;
    private readonly SeriesKeyBuilder _targetKey;
    private readonly HashSet<string> _targetInfoExcluded;
    private readonly Dictionary<string, string> _sanitizedResourceKeys = new(StringComparer.Ordinal);

    // Per-resource state, set by BeginResource: each dimension's resource value (stringified), looked up once per
    // ResourceSpans instead of once per span.
    private readonly byte[]?[] _resourceDimension;
    private readonly SeriesKeyBuilder _scratch = new(int.MaxValue);
    private byte[] _job = [];
    private byte[] _instance = [];
    private bool _targetInfoDue;

    public SpanMetricsProcessor(SpanMetricsSettings settings, TenantRegistry registry, int maxLabelValueLength)
    {
        _s = settings;
        _key = new SeriesKeyBuilder(maxLabelValueLength);
        _targetKey = new SeriesKeyBuilder(maxLabelValueLength);
        _dimensionKeys = [.. settings.Dimensions.Select(d => Encoding.UTF8.GetBytes(d))];
        _targetInfoExcluded = [.. settings.TargetInfoExcluded];
        _resourceDimension = new byte[]?[_dimensionKeys.Length];

        var names = new List<string>();
        var intrinsicsOn = new[] { settings.Intrinsics.Service, settings.Intrinsics.SpanName, settings.Intrinsics.SpanKind, settings.Intrinsics.StatusCode, settings.Intrinsics.StatusMessage };
        for (int i = 0; i < Intrinsic.Length; i++)
        {
            if (intrinsicsOn[i])
            {
                names.Add(Intrinsic[i]);
            }
        }

        foreach (var d in settings.Dimensions)
        {
            names.Add(Labels.SanitizeWithCollisions(d, Intrinsic));
        }

        if (settings.EnableTargetInfo)
        {
            names.Add("job");
            names.Add("instance");
        }

        string[] labelNames = [.. names];
        if (settings.Count)
        {
            _calls = registry.Counter(CallsTotal, labelNames);
        }
        else
        {
            registry.Remove(CallsTotal);
        }

        if (settings.Latency)
        {
            _latency = registry.Histogram(Latency, labelNames, settings.Buckets);
        }
        else
        {
            registry.Remove(Latency);
        }

        if (settings.Size)
        {
            _size = registry.Counter(SizeTotal, labelNames);
        }
        else
        {
            registry.Remove(SizeTotal);
        }

        if (settings.EnableTargetInfo)
        {
            _targetInfo = registry.InfoGauge(TargetInfo);
        }
        else
        {
            registry.Remove(TargetInfo);
        }
    }

    public SpanMetricsSettings Settings => _s;

    public void BeginResource(ReadOnlySpan<byte> resource)
    {
        for (int i = 0; i < _dimensionKeys.Length; i++)
        {
            _resourceDimension[i] = null;
            if (SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, _dimensionKeys[i], out var v))
            {
                _scratch.Reset();
                _scratch.Add(ref v);
                _resourceDimension[i] = SeriesKeyBuilder.DecodeFirstBytes(_scratch.Key).ToArray();
            }
        }

        if (!_s.EnableTargetInfo)
        {
            return;
        }

        // job = service.namespace/service.name (or service.name), instance = service.instance.id, as Tempo.
        SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, "service.name"u8, out var svc);
        bool hasNs = SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, "service.namespace"u8, out var ns);
        if (hasNs && ns.Bytes.Length > 0)
        {
            _job = [.. ns.Bytes, (byte)'/', .. svc.Bytes];
        }
        else
        {
            _job = svc.Bytes.ToArray();
        }

        _instance = _s.EnableInstanceLabel && SpanWalker.TryFindAttribute(resource, F.Resource.Attributes, "service.instance.id"u8, out var inst)
            ? inst.Bytes.ToArray()
            : [];
        _targetInfoDue = true;
    }

    public void Span(ref SpanFields span, ReadOnlySpan<byte> resource, ReadOnlySpan<byte> serviceName, long nowMs)
    {
        var key = _key;
        key.Reset();
        var intr = _s.Intrinsics;
        if (intr.Service)
        {
            key.Add(serviceName);
        }

        if (intr.SpanName)
        {
            key.Add(span.Name);
        }

        if (intr.SpanKind)
        {
            AddEnum(key, span.Kind, KindNames);
        }

        if (intr.StatusCode)
        {
            AddEnum(key, span.StatusCode, StatusNames);
        }

        if (intr.StatusMessage)
        {
            key.Add(span.StatusMessage);
        }

        for (int i = 0; i < _dimensionKeys.Length; i++)
        {
            // Resource attributes first, then the span's, as Tempo's FindAttributeValue(d, resource, span).
            if (_resourceDimension[i] is { } fromResource)
            {
                key.Add(fromResource);
            }
            else if (SpanWalker.TryFindAttribute(span.Message, F.Span.Attributes, _dimensionKeys[i], out var v))
            {
                key.Add(ref v);
            }
            else
            {
                key.Add(ReadOnlySpan<byte>.Empty);
            }
        }

        if (_s.EnableTargetInfo)
        {
            key.Add(_job);
            key.Add(_instance);
        }

        var hashed = new HashedKey(key.Key);
        _calls?.Inc(hashed, 1, nowMs);
        _latency?.Observe(hashed, span.DurationSeconds, nowMs);
        _size?.Inc(hashed, span.Message.Length, nowMs);

        if (_targetInfoDue)
        {
            _targetInfoDue = false;
            SetTargetInfo(resource, nowMs);
        }
    }

    private void SetTargetInfo(ReadOnlySpan<byte> resource, long nowMs)
    {
        // Tempo: resource attributes except service.name/namespace/instance.id and excluded ones, plus job and
        // instance; registered only when there is at least one such attribute and job or instance is known.
        var k = _targetKey;
        k.Reset();
        int attributes = 0;
        var e = new AttributeEnumerator(resource, F.Resource.Attributes);
        while (e.MoveNext(out var name, out var value))
        {
            if (name.Length == 0 || char.IsAsciiDigit((char)name[0])
                || name.SequenceEqual("service.name"u8) || name.SequenceEqual("service.namespace"u8) || name.SequenceEqual("service.instance.id"u8))
            {
                continue;
            }

            string label = SanitizedResourceKey(name, out bool excluded);
            if (excluded)
            {
                continue;
            }

            k.Add(label);
            k.Add(ref value);
            attributes++;
        }

        bool hasIdentity = false;
        if (_job.Length > 0)
        {
            k.Add("job");
            k.Add(_job);
            hasIdentity = true;
        }

        if (_instance.Length > 0)
        {
            k.Add("instance");
            k.Add(_instance);
            hasIdentity = true;
        }

        if (attributes > 0 && hasIdentity)
        {
            _targetInfo!.Set(k.Key, 1, nowMs);
        }
    }

    private string SanitizedResourceKey(ReadOnlySpan<byte> name, out bool excluded)
    {
        // Resource attribute names repeat across pushes: cache the decoded, sanitized form.
        string raw = Encoding.UTF8.GetString(name);
        excluded = _targetInfoExcluded.Contains(raw);
        if (!_sanitizedResourceKeys.TryGetValue(raw, out var label))
        {
            label = Labels.SanitizeWithCollisions(raw, TargetInfoIntrinsic);
            if (_sanitizedResourceKeys.Count < 10_000)
            {
                _sanitizedResourceKeys[raw] = label;
            }
        }

        return label;
    }

    private static void AddEnum(SeriesKeyBuilder key, int value, byte[][] names)
    {
        if ((uint)value < (uint)names.Length)
        {
            key.Add(names[value]);
            return;
        }

        // Unknown enum values print as their number, as Go's protobuf String() does.
        Span<byte> tmp = stackalloc byte[16];
        key.Add(tmp[..Labels.FormatInt(value, tmp)]);
    }
}
