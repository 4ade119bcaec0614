using System.Globalization;

namespace Rubato.Cli;

/// <summary>A usage error: bad or missing argument. Exit code 2; the message names the argument.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Something asked for does not exist (block, trace, tenant). Exit code 1.</summary>
public sealed class NotFoundException(string message) : Exception(message);

/// <summary>
/// Parsed command line: positionals in order, <c>--name value</c> / <c>--name=value</c> options (repeatable ones keep
/// every value) and boolean flags. Options not in the command's allowed set are a usage error.
/// </summary>
internal sealed class ParsedArgs
{
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public List<string> Positionals { get; } = [];

    public static ParsedArgs Parse(IReadOnlyList<string> args, ISet<string> valueOptions, ISet<string> flagOptions)
    {
        var p = new ParsedArgs();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == "--")
            {
                p.Positionals.AddRange(args.Skip(i + 1));
                break;
            }

            if (!a.StartsWith("--", StringComparison.Ordinal) || a.Length == 2)
            {
                p.Positionals.Add(a);
                continue;
            }

            string name = a[2..];
            string? value = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }

            if (flagOptions.Contains(name))
            {
                if (value is not null && !bool.TryParse(value, out _))
                {
                    throw new UsageException($"--{name} is a flag; '{value}' is not true or false");
                }

                if (value is null || bool.Parse(value))
                {
                    p._flags.Add(name);
                }

                continue;
            }

            if (!valueOptions.Contains(name))
            {
                throw new UsageException($"unknown option --{name}");
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    throw new UsageException($"--{name} needs a value");
                }

                value = args[++i];
            }

            if (!p._options.TryGetValue(name, out var list))
            {
                p._options[name] = list = [];
            }

            list.Add(value);
        }

        return p;
    }

    public bool Flag(string name) => _flags.Contains(name);

    public string? Get(string name) => _options.TryGetValue(name, out var l) ? l[^1] : null;

    public IReadOnlyList<string> All(string name) => _options.TryGetValue(name, out var l) ? l : [];

    public int GetInt(string name, int defaultValue, int min)
    {
        string? s = Get(name);
        if (s is null)
        {
            return defaultValue;
        }

        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min)
        {
            throw new UsageException($"--{name} must be an integer >= {min}, got '{s}'");
        }

        return v;
    }

    /// <summary>The positional at <paramref name="index"/>, or a usage error naming <paramref name="what"/>.</summary>
    public string Require(int index, string what)
    {
        if (index >= Positionals.Count)
        {
            throw new UsageException($"missing argument <{what}>");
        }

        return Positionals[index];
    }

    public void NoMoreThan(int count)
    {
        if (Positionals.Count > count)
        {
            throw new UsageException($"unexpected argument '{Positionals[count]}'");
        }
    }
}
