using System.Text;
using System.Text.RegularExpressions;
using Rubato.Common.Configuration;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Rubato.Server.Configuration;

/// <summary>Raised when the configuration cannot be used; the message names every problem found.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// Reads Tempo-layout YAML into <see cref="RubatoConfig"/>: optional <c>${VAR}</c> / <c>${VAR:-default}</c>
/// expansion (<c>-config.expand-env</c>), every unknown key reported by path and line, Go durations, and
/// Tempo's "present but empty" receiver sections (<c>grpc:</c> with no value enables the receiver on its defaults).
/// </summary>
public static partial class ConfigLoader
{
    /// <summary>Top-level Tempo sections Rubato accepts but does not use yet; they produce a warning, not an error.</summary>
    public static readonly IReadOnlySet<string> AcceptedButUnused = new HashSet<string>(StringComparer.Ordinal)
    {
        "compactor", "querier", "memberlist", "usage_report", "live_store",
        "block_builder", "ingest", "partition_ring_live_store",
        "internal_server", "tracing",
    };

    public static RubatoConfig LoadFile(string path, bool expandEnv, List<string> warnings)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException($"config file {path} does not exist");
        }

        return Parse(File.ReadAllText(path), expandEnv, warnings);
    }

    public static RubatoConfig Parse(string yaml, bool expandEnv, List<string> warnings)
    {
        if (expandEnv)
        {
            yaml = ExpandEnv(yaml);
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ConfigException($"config is not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}");
        }

        var config = new RubatoConfig();
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return config;
        }

        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new ConfigException("config must be a YAML mapping at the top level");
        }

        foreach (var key in root.Children.Keys.Cast<YamlScalarNode>().Select(k => k.Value!).ToList())
        {
            if (AcceptedButUnused.Contains(key))
            {
                warnings.Add($"{key}: section is accepted for Tempo compatibility but not used by this version of Rubato");
                root.Children.Remove(new YamlScalarNode(key));
            }
        }

        // distributor.receivers binds to the receivers module's config class; the rest of distributor to the distributor's.
        YamlNode? receivers = null;
        if (root.Children.TryGetValue(new YamlScalarNode("distributor"), out var dist) && dist is YamlMappingNode distMap
            && distMap.Children.TryGetValue(new YamlScalarNode("receivers"), out receivers))
        {
            distMap.Children.Remove(new YamlScalarNode("receivers"));
            EnablePresentSections(receivers);
        }

        var errors = new List<string>();
        YamlKeyChecker.Check(root, typeof(RubatoConfig), string.Empty, errors);
        if (receivers is not null)
        {
            YamlKeyChecker.Check(receivers, typeof(Rubato.Receivers.ReceiversConfig), "distributor.receivers", errors);
        }

        if (errors.Count > 0)
        {
            throw new ConfigException(string.Join(Environment.NewLine, errors));
        }

        try
        {
            config = Bind<RubatoConfig>(root) ?? new RubatoConfig();
            if (receivers is not null)
            {
                config.Receivers = Bind<Rubato.Receivers.ReceiversConfig>(receivers) ?? new Rubato.Receivers.ReceiversConfig();
            }
        }
        catch (YamlException e)
        {
            throw new ConfigException($"config value error near line {e.Start.Line}: {e.InnerException?.Message ?? e.Message}");
        }

        return config;
    }

    /// <summary>
    /// Serialises a config back to Tempo-layout YAML (for <c>/status/config</c>), with <c>distributor.receivers</c>
    /// put back where the file had it.
    /// </summary>
    public static string ToYaml(RubatoConfig config)
    {
        string root = MaskSecrets(Serializer.Serialize(config));
        string receivers = Serializer.Serialize(config.Receivers);
        var indented = string.Join('\n', receivers.TrimEnd('\n').Split('\n').Select(l => "    " + l));
        int at = root.IndexOf("\ndistributor:\n", StringComparison.Ordinal);
        return at < 0 ? root : root.Insert(at + "\ndistributor:\n".Length, "  receivers:\n" + indented + "\n");
    }

    /// <summary>Keys whose values never leave the process (<c>/status/config</c> shows them as <c>********</c>).</summary>
    public static readonly IReadOnlySet<string> SecretKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "secret_key", "session_token", "storage_account_key",
    };

    private static string MaskSecrets(string yaml) =>
        string.Join('\n', yaml.Split('\n').Select(line =>
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !SecretKeys.Contains(line[..colon].Trim()))
            {
                return line;
            }

            string value = line[(colon + 1)..].Trim();
            return value is "" or "''" ? line : line[..(colon + 1)] + " '********'";
        }));

    private static readonly IDeserializer Deserializer = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .WithTypeConverter(new DurationConverter())
        .Build();

    private static readonly ISerializer Serializer = new SerializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .WithTypeConverter(new DurationConverter())
        .DisableAliases()
        .WithTypeInspector(inner => new SettableOnly(inner))

        // A null section means "disabled" (receivers); writing it as an empty key would read back as enabled.
        .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull)
        .Build();

    private static T? Bind<T>(YamlNode node)
    {
        var sb = new StringBuilder();
        new YamlStream(new YamlDocument(node)).Save(new StringWriter(sb), assignAnchors: false);
        return Deserializer.Deserialize<T>(sb.ToString());
    }

    /// <summary>Replaces <c>key:</c> with no value by <c>key: {}</c> in a receivers tree, so the section is enabled.</summary>
    private static void EnablePresentSections(YamlNode node)
    {
        if (node is not YamlMappingNode map)
        {
            return;
        }

        foreach (var key in map.Children.Keys.ToList())
        {
            var value = map.Children[key];
            if (value is YamlScalarNode s && YamlKeyChecker.IsNull(s) && ((YamlScalarNode)key).Value != "endpoint")
            {
                map.Children[key] = new YamlMappingNode();
            }
            else
            {
                EnablePresentSections(value);
            }
        }
    }

    /// <summary>Expands <c>${VAR}</c> and <c>${VAR:-default}</c>; an unset variable without a default becomes empty.</summary>
    public static string ExpandEnv(string text) =>
        EnvPattern().Replace(text, m =>
        {
            var value = Environment.GetEnvironmentVariable(m.Groups["name"].Value);
            if (string.IsNullOrEmpty(value) && m.Groups["default"].Success)
            {
                return m.Groups["default"].Value;
            }

            return value ?? string.Empty;
        });

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?<default>[^}]*))?\}")]
    private static partial Regex EnvPattern();

    /// <summary>Writes only settable properties: computed ones (e.g. effective values) are not configuration.</summary>
    private sealed class SettableOnly(ITypeInspector inner) : YamlDotNet.Serialization.TypeInspectors.TypeInspectorSkeleton
    {
        public override string GetEnumName(Type enumType, string name) => inner.GetEnumName(enumType, name);

        public override string GetEnumValue(object enumValue) => inner.GetEnumValue(enumValue);

        public override IEnumerable<IPropertyDescriptor> GetProperties(Type type, object? container) =>
            inner.GetProperties(type, container).Where(p => p.CanWrite);
    }

    /// <summary>Binds <see cref="TimeSpan"/> from Go duration strings and writes them back the same way.</summary>
    private sealed class DurationConverter : IYamlTypeConverter
    {
        public bool Accepts(Type type) => type == typeof(TimeSpan) || type == typeof(TimeSpan?);

        public object? ReadYaml(IParser parser, Type type, ObjectDeserializer rootDeserializer)
        {
            var scalar = parser.Consume<Scalar>();
            if (GoDuration.TryParse(scalar.Value, out var t))
            {
                return t;
            }

            throw new YamlException(scalar.Start, scalar.End, $"'{scalar.Value}' is not a duration (use e.g. 500ms, 10s, 5m, 1h)");
        }

        public void WriteYaml(IEmitter emitter, object? value, Type type, ObjectSerializer serializer) =>
            emitter.Emit(new Scalar(GoDuration.Format((TimeSpan)(value ?? TimeSpan.Zero))));
    }
}
