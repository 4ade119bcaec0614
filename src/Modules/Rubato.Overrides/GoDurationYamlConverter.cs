using Rubato.Common.Configuration;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Rubato.Overrides;

/// <summary>
/// YamlDotNet converter reading and writing <see cref="TimeSpan"/> in <see cref="GoDuration"/> syntax (Go's
/// <c>time.Duration</c> plus Prometheus' d, w, y). Writes the compact form (<c>336h</c>, <c>1h30m</c>).
/// </summary>
public sealed class GoDurationYamlConverter : IYamlTypeConverter
{
    public static readonly GoDurationYamlConverter Instance = new();

    public bool Accepts(Type type) => type == typeof(TimeSpan) || type == typeof(TimeSpan?);

    public object? ReadYaml(IParser parser, Type type, ObjectDeserializer rootDeserializer)
    {
        var scalar = parser.Consume<Scalar>();
        if (type == typeof(TimeSpan?) && scalar.Value is "" or "null" or "~")
        {
            return null;
        }

        if (!GoDuration.TryParse(scalar.Value, out var value, out string? error))
        {
            throw new YamlException(scalar.Start, scalar.End, error!);
        }

        return value;
    }

    public void WriteYaml(IEmitter emitter, object? value, Type type, ObjectSerializer serializer)
    {
        emitter.Emit(new Scalar(value is TimeSpan ts ? GoDuration.FormatCompact(ts) : "null"));
    }
}
