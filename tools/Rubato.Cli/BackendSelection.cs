using System.Text.RegularExpressions;
using Rubato.Storage.Backend;
using YamlDotNet.RepresentationModel;

namespace Rubato.Cli;

/// <summary>
/// Builds an object store from <c>--backend</c> and its flags, optionally starting from <c>storage.trace</c> of a
/// Rubato/Tempo YAML config (<c>--config</c>). Flags override the file. The destination of <c>copy</c> uses the same
/// flags with a <c>to-</c> prefix.
/// </summary>
internal static partial class BackendSelection
{
    public static readonly string[] ValueOptions =
    [
        "backend", "path", "bucket", "endpoint", "region", "access-key", "secret-key", "prefix", "container", "account", "account-key", "config",
    ];

    public static readonly string[] FlagOptions = ["insecure", "forcepathstyle"];

    public static (string Backend, ObjectStoreConfigs Configs) Resolve(ParsedArgs args, string optPrefix)
    {
        string backend = string.Empty;
        var configs = new ObjectStoreConfigs();
        string? configPath = args.Get(optPrefix + "config");
        if (configPath is not null)
        {
            backend = LoadConfig(configPath, optPrefix, configs);
        }

        string? Opt(string n) => args.Get(optPrefix + n);

        backend = Opt("backend") ?? (backend.Length > 0 ? backend : Opt("path") is not null ? "local" : string.Empty);
        if (backend.Length == 0)
        {
            throw new UsageException($"--{optPrefix}backend is required (one of {string.Join(", ", ObjectStores.Backends)}), or give --{optPrefix}config");
        }

        if (!ObjectStores.Backends.Contains(backend))
        {
            throw new UsageException($"--{optPrefix}backend '{backend}' is not one of {string.Join(", ", ObjectStores.Backends)}");
        }

        bool insecure = args.Flag(optPrefix + "insecure");
        switch (backend)
        {
            case "local":
                configs.LocalPath = Opt("path") ?? configs.LocalPath;
                if (configs.LocalPath.Length == 0)
                {
                    throw new UsageException($"--{optPrefix}path is required for the local backend");
                }

                break;
            case "s3":
                var s3 = configs.S3;
                s3.Bucket = Opt("bucket") ?? s3.Bucket;
                s3.Endpoint = Opt("endpoint") ?? s3.Endpoint;
                s3.Region = Opt("region") ?? s3.Region;
                s3.AccessKey = Opt("access-key") ?? s3.AccessKey;
                s3.SecretKey = Opt("secret-key") ?? s3.SecretKey;
                s3.Prefix = Opt("prefix") ?? s3.Prefix;
                s3.Insecure |= insecure;
                s3.Forcepathstyle |= args.Flag(optPrefix + "forcepathstyle");
                break;
            case "azure":
                var az = configs.Azure;
                az.ContainerName = Opt("container") ?? Opt("bucket") ?? az.ContainerName;
                az.StorageAccountName = Opt("account") ?? az.StorageAccountName;
                az.StorageAccountKey = Opt("account-key") ?? az.StorageAccountKey;
                az.EndpointSuffix = Opt("endpoint") ?? az.EndpointSuffix;
                az.Prefix = Opt("prefix") ?? az.Prefix;
                break;
            case "gcs":
                var gcs = configs.Gcs;
                gcs.BucketName = Opt("bucket") ?? gcs.BucketName;
                gcs.Endpoint = Opt("endpoint") ?? gcs.Endpoint;
                gcs.Prefix = Opt("prefix") ?? gcs.Prefix;
                gcs.Insecure |= insecure;
                break;
        }

        return (backend, configs);
    }

    /// <summary>Reads <c>storage.trace</c> (backend, local, s3, azure, gcs) of a YAML config; other sections are ignored.</summary>
    private static string LoadConfig(string path, string optPrefix, ObjectStoreConfigs configs)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"--{optPrefix}config: file '{path}' does not exist");
        }

        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new UsageException($"--{optPrefix}config: '{path}' is not valid YAML: {e.Message}");
        }

        var trace = yaml.Documents.Count == 0 ? null : Map(Map(yaml.Documents[0].RootNode as YamlMappingNode, "storage"), "trace");
        if (trace is null)
        {
            throw new UsageException($"--{optPrefix}config: '{path}' has no storage.trace section");
        }

        string backend = Str(trace, "backend") ?? string.Empty;
        if (Map(trace, "local") is { } local)
        {
            configs.LocalPath = Str(local, "path") ?? configs.LocalPath;
        }

        if (Map(trace, "s3") is { } s3)
        {
            configs.S3.Bucket = Str(s3, "bucket") ?? string.Empty;
            configs.S3.Endpoint = Str(s3, "endpoint") ?? string.Empty;
            configs.S3.Region = Str(s3, "region") ?? string.Empty;
            configs.S3.AccessKey = Str(s3, "access_key") ?? string.Empty;
            configs.S3.SecretKey = Str(s3, "secret_key") ?? string.Empty;
            configs.S3.SessionToken = Str(s3, "session_token") ?? string.Empty;
            configs.S3.Prefix = Str(s3, "prefix") ?? string.Empty;
            configs.S3.Insecure = Bool(s3, "insecure");
            configs.S3.Forcepathstyle = Bool(s3, "forcepathstyle");
        }

        if (Map(trace, "azure") is { } az)
        {
            configs.Azure.ContainerName = Str(az, "container_name") ?? string.Empty;
            configs.Azure.StorageAccountName = Str(az, "storage_account_name") ?? string.Empty;
            configs.Azure.StorageAccountKey = Str(az, "storage_account_key") ?? string.Empty;
            configs.Azure.EndpointSuffix = Str(az, "endpoint_suffix") ?? configs.Azure.EndpointSuffix;
            configs.Azure.Prefix = Str(az, "prefix") ?? string.Empty;
            configs.Azure.UseManagedIdentity = Bool(az, "use_managed_identity");
            configs.Azure.UseFederatedToken = Bool(az, "use_federated_token");
        }

        if (Map(trace, "gcs") is { } gcs)
        {
            configs.Gcs.BucketName = Str(gcs, "bucket_name") ?? string.Empty;
            configs.Gcs.Endpoint = Str(gcs, "endpoint") ?? string.Empty;
            configs.Gcs.Prefix = Str(gcs, "prefix") ?? string.Empty;
            configs.Gcs.Insecure = Bool(gcs, "insecure");
        }

        return backend;
    }

    private static YamlMappingNode? Map(YamlMappingNode? node, string key) =>
        node is not null && node.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v as YamlMappingNode : null;

    private static string? Str(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? ExpandEnv(s.Value ?? string.Empty) : null;

    /// <summary>Tempo's <c>-config.expand-env</c>: <c>${VAR}</c> and <c>${VAR:-default}</c>; unset without default gives "".</summary>
    internal static string ExpandEnv(string value) =>
        value.Contains("${", StringComparison.Ordinal)
            ? EnvRef().Replace(value, m => Environment.GetEnvironmentVariable(m.Groups[1].Value) is { Length: > 0 } v ? v : m.Groups[3].Value)
            : value;

    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")]
    private static partial Regex EnvRef();

    private static bool Bool(YamlMappingNode node, string key) => bool.TryParse(Str(node, key), out bool b) && b;
}
