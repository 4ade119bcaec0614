using System.Collections;
using System.Reflection;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization.NamingConventions;

namespace Rubato.Server.Configuration;

/// <summary>
/// Walks a parsed YAML tree against the config classes it will bind to and reports every key that no class has,
/// with its full dotted path and line, so that a typo is an error naming the key rather than a silent default.
/// </summary>
/// <remarks>
/// A property named <c>FooBar</c> is the key <c>foo_bar</c> (the same naming convention the binder uses).
/// Dictionaries accept any key and check their values; lists check their items; scalars end the walk.
/// </remarks>
public static class YamlKeyChecker
{
    public static void Check(YamlNode node, Type type, string path, List<string> errors)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsScalar(type))
        {
            if (node is not YamlScalarNode)
            {
                errors.Add($"{path}: expected a single value (line {node.Start.Line})");
            }

            return;
        }

        if (node is YamlScalarNode scalar && IsNull(scalar))
        {
            return;
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            if (node is not YamlMappingNode map)
            {
                errors.Add($"{path}: expected a mapping (line {node.Start.Line})");
                return;
            }

            foreach (var (k, v) in map.Children)
            {
                Check(v, valueType, Join(path, ((YamlScalarNode)k).Value ?? string.Empty), errors);
            }

            return;
        }

        if (ListItemType(type) is { } itemType)
        {
            if (node is not YamlSequenceNode seq)
            {
                errors.Add($"{path}: expected a list (line {node.Start.Line})");
                return;
            }

            int i = 0;
            foreach (var item in seq.Children)
            {
                Check(item, itemType, $"{path}[{i++}]", errors);
            }

            return;
        }

        if (node is not YamlMappingNode mapping)
        {
            errors.Add($"{path}: expected a mapping (line {node.Start.Line})");
            return;
        }

        var props = KeysOf(type);
        foreach (var (k, v) in mapping.Children)
        {
            string key = ((YamlScalarNode)k).Value ?? string.Empty;
            if (!props.TryGetValue(key, out var prop))
            {
                errors.Add($"unknown configuration key '{Join(path, key)}' (line {k.Start.Line})");
                continue;
            }

            Check(v, prop.PropertyType, Join(path, key), errors);
        }
    }

    /// <summary>The YAML keys a config class accepts, mapped to their properties.</summary>
    public static Dictionary<string, PropertyInfo> KeysOf(Type type)
    {
        var result = new Dictionary<string, PropertyInfo>(StringComparer.Ordinal);
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!p.CanWrite || p.GetCustomAttribute<YamlDotNet.Serialization.YamlIgnoreAttribute>() is not null || p.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var alias = p.GetCustomAttribute<YamlDotNet.Serialization.YamlMemberAttribute>()?.Alias;
            result[alias ?? UnderscoredNamingConvention.Instance.Apply(p.Name)] = p;
        }

        return result;
    }

    public static bool IsNull(YamlScalarNode s) =>
        s.Style == YamlDotNet.Core.ScalarStyle.Plain && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private static bool IsScalar(Type t) =>
        t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(Guid) || t == typeof(DateTime);

    private static Type? DictionaryValueType(Type t)
    {
        foreach (var i in t.GetInterfaces().Append(t))
        {
            if (i.IsGenericType && i.GetGenericTypeDefinition() is var g && (g == typeof(IDictionary<,>) || g == typeof(Dictionary<,>) || g == typeof(IReadOnlyDictionary<,>)))
            {
                return i.GetGenericArguments()[1];
            }
        }

        return null;
    }

    private static Type? ListItemType(Type t)
    {
        if (t.IsArray)
        {
            return t.GetElementType();
        }

        if (t == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(t))
        {
            return null;
        }

        foreach (var i in t.GetInterfaces().Append(t))
        {
            if (i.IsGenericType && i.GetGenericTypeDefinition() is var g && (g == typeof(IList<>) || g == typeof(List<>) || g == typeof(IEnumerable<>)))
            {
                return i.GetGenericArguments()[0];
            }
        }

        return null;
    }
}
