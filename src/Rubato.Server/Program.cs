using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Rubato.Common.Configuration;
using Rubato.Server.App;
using Rubato.Server.Configuration;

namespace Rubato.Server;

/// <summary>
/// <c>rubato</c>: parses Tempo-style flags, loads and validates the configuration, runs the target's modules until a
/// signal or <c>/shutdown</c>, then stops them in reverse order. Exit code 0 on a clean stop, 1 on bad flags or
/// config, 2 when a module fails.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        CommandLine cl;
        try
        {
            cl = CommandLine.Parse(args);
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}\n\n{CommandLine.Usage}").ConfigureAwait(false);
            return 1;
        }

        if (cl.ShowHelp)
        {
            Console.WriteLine(CommandLine.Usage);
            return 0;
        }

        if (cl.ShowVersion)
        {
            Console.WriteLine($"rubato, version {BuildInfo.Version} (revision: {BuildInfo.Revision}, runtime: {BuildInfo.RuntimeVersion})");
            return 0;
        }

        var warnings = new List<string>();
        RubatoConfig config;
        try
        {
            config = cl.ConfigFile is null
                ? ConfigLoader.Parse(RubatoConfig.EmbeddedDefaultYaml, expandEnv: false, warnings)
                : ConfigLoader.LoadFile(cl.ConfigFile, cl.ExpandEnv, warnings);
            if (cl.Target is not null)
            {
                config.Target = cl.Target;
            }

            var validation = new ConfigValidation();
            config.Validate(string.Empty, validation);
            warnings.AddRange(validation.Warnings);
            if (validation.HasErrors)
            {
                throw new ConfigException("invalid configuration:\n  " + string.Join("\n  ", validation.Errors));
            }
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"error loading config: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        using var loggerFactory = Logging.Create(config.Server);
        await using var app = new RubatoApp(config, loggerFactory, warnings);

        // SIGTERM / SIGINT: stop the modules in order (the ingester flushes) instead of dying mid-write.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; app.RequestShutdown("SIGTERM"); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; app.RequestShutdown("SIGINT"); });

        try
        {
            await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (Exception e)
        {
            loggerFactory.CreateLogger("rubato").LogCritical(e, "failed to start");
            await app.StopAsync().ConfigureAwait(false);
            return 2;
        }

        await app.ShutdownRequested.ConfigureAwait(false);
        await app.StopAsync().ConfigureAwait(false);
        return 0;
    }
}

/// <summary>Tempo-style flags: <c>-flag=value</c>, <c>-flag value</c>, and the same with <c>--</c>.</summary>
public sealed record CommandLine(string? ConfigFile, bool ExpandEnv, string? Target, bool ShowHelp, bool ShowVersion)
{
    public const string Usage = """
        Usage: rubato [flags]
          -config.file=PATH        YAML configuration file (Tempo's layout). Without it Rubato runs on embedded
                                   defaults: every receiver on its default port, data under ./data.
          -config.expand-env       Expand ${VAR} and ${VAR:-default} in the config file.
          -target=NAME             Module to run (default all).
          -version                 Print the version and exit.
          -help                    Print this help and exit.
        """;

    public static CommandLine Parse(string[] args)
    {
        string? configFile = null, target = null;
        bool expand = false, help = false, version = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (!a.StartsWith('-'))
            {
                throw new ConfigException($"unexpected argument '{a}'");
            }

            string body = a.TrimStart('-');
            string name = body, value = string.Empty;
            bool hasValue = false;
            int eq = body.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                name = body[..eq];
                value = body[(eq + 1)..];
                hasValue = true;
            }

            string TakeValue()
            {
                if (hasValue)
                {
                    return value;
                }

                if (i + 1 >= args.Length)
                {
                    throw new ConfigException($"flag -{name} needs a value");
                }

                return args[++i];
            }

            bool TakeBool() => !hasValue || value is "true" or "1" || (value is "false" or "0" ? false : throw new ConfigException($"flag -{name} takes true or false, got '{value}'"));

            switch (name)
            {
                case "config.file":
                    configFile = TakeValue();
                    break;
                case "config.expand-env":
                    expand = TakeBool();
                    break;
                case "target":
                    target = TakeValue();
                    break;
                case "version":
                    version = TakeBool();
                    break;
                case "help" or "h":
                    help = true;
                    break;
                default:
                    throw new ConfigException($"flag provided but not defined: -{name}");
            }
        }

        return new CommandLine(configFile, expand, target, help, version);
    }
}
