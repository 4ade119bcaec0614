namespace Rubato.Common.Model;

/// <summary>The type of an OTLP <c>AnyValue</c>; the numbers are the OTLP field numbers of each case.</summary>
public enum AnyValueKind : byte
{
    Empty = 0,
    String = 1,
    Bool = 2,
    Int = 3,
    Double = 4,
    Array = 5,
    KvList = 6,
    Bytes = 7,
}

/// <summary>
/// An attribute value: one of string, bool, int64, double, array, key/value list or bytes (OTLP <c>AnyValue</c>).
/// </summary>
/// <remarks>
/// Immutable. Used on the non-hot paths (translation from Zipkin/Jaeger/JSON, block building, query output);
/// the OTLP protobuf ingest path never materialises these.
/// </remarks>
public sealed class AnyValue : IEquatable<AnyValue>
{
    public static readonly AnyValue EmptyValue = new(AnyValueKind.Empty, null, 0, 0, null, null, null);

    private AnyValue(AnyValueKind kind, string? s, long i, double d, IReadOnlyList<AnyValue>? array, IReadOnlyList<KeyValue>? kvList, byte[]? bytes)
    {
        Kind = kind;
        StringValue = s;
        IntValue = i;
        DoubleValue = d;
        ArrayValue = array;
        KvListValue = kvList;
        BytesValue = bytes;
    }

    public AnyValueKind Kind { get; }

    public string? StringValue { get; }

    /// <summary>The int64 value, or 0/1 for a bool.</summary>
    public long IntValue { get; }

    public double DoubleValue { get; }

    public bool BoolValue => Kind == AnyValueKind.Bool && IntValue != 0;

    public IReadOnlyList<AnyValue>? ArrayValue { get; }

    public IReadOnlyList<KeyValue>? KvListValue { get; }

    public byte[]? BytesValue { get; }

    public static AnyValue String(string value) => new(AnyValueKind.String, value, 0, 0, null, null, null);

    public static AnyValue Bool(bool value) => new(AnyValueKind.Bool, null, value ? 1 : 0, 0, null, null, null);

    public static AnyValue Int(long value) => new(AnyValueKind.Int, null, value, 0, null, null, null);

    public static AnyValue Double(double value) => new(AnyValueKind.Double, null, 0, value, null, null, null);

    public static AnyValue Array(IReadOnlyList<AnyValue> values) => new(AnyValueKind.Array, null, 0, 0, values, null, null);

    public static AnyValue KvList(IReadOnlyList<KeyValue> values) => new(AnyValueKind.KvList, null, 0, 0, null, values, null);

    public static AnyValue Bytes(byte[] value) => new(AnyValueKind.Bytes, null, 0, 0, null, null, value);

    public bool Equals(AnyValue? other)
    {
        if (other is null || other.Kind != Kind)
        {
            return false;
        }

        return Kind switch
        {
            AnyValueKind.Empty => true,
            AnyValueKind.String => StringValue == other.StringValue,
            AnyValueKind.Bool or AnyValueKind.Int => IntValue == other.IntValue,
            AnyValueKind.Double => DoubleValue.Equals(other.DoubleValue),
            AnyValueKind.Array => ArrayValue!.SequenceEqual(other.ArrayValue!),
            AnyValueKind.KvList => KvListValue!.SequenceEqual(other.KvListValue!),
            AnyValueKind.Bytes => BytesValue.AsSpan().SequenceEqual(other.BytesValue),
            _ => false,
        };
    }

    public override bool Equals(object? obj) => Equals(obj as AnyValue);

    public override int GetHashCode() => HashCode.Combine(Kind, StringValue, IntValue, DoubleValue);

    public override string ToString() => Kind switch
    {
        AnyValueKind.String => StringValue!,
        AnyValueKind.Bool => BoolValue ? "true" : "false",
        AnyValueKind.Int => IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValueKind.Double => DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValueKind.Array => "[" + string.Join(",", ArrayValue!) + "]",
        AnyValueKind.KvList => "{" + string.Join(",", KvListValue!) + "}",
        AnyValueKind.Bytes => Convert.ToBase64String(BytesValue!),
        _ => string.Empty,
    };
}

/// <summary>An attribute: key and value (OTLP <c>KeyValue</c>).</summary>
public sealed record KeyValue(string Key, AnyValue Value)
{
    public override string ToString() => $"{Key}={Value}";
}
