using Rubato.Common.Configuration;
using Rubato.Common.Metrics;
using Rubato.Storage.Backend.Azure;
using Rubato.Storage.Backend.Gcs;
using Rubato.Storage.Backend.S3;

namespace Rubato.Storage.Backend;

/// <summary>Runtime (non-YAML) options shared by the remote object stores.</summary>
public sealed class ObjectStoreOptions
{
    /// <summary>Where <c>rubato_backend_*</c> request metrics go; null records none.</summary>
    public MetricsRegistry? Metrics { get; set; }

    /// <summary>Clock for retry backoff and hedge delays.</summary>
    public TimeProvider? Time { get; set; }

    /// <summary>Objects per list request (S3 MaxKeys, Azure maxresults, GCS maxResults); the servers' own cap is 1000.</summary>
    public int ListPageSize { get; set; } = 1000;

    /// <summary>Transport for the HTTP-based stores (Azure, GCS) and the S3 SDK; null uses a pooled <see cref="SocketsHttpHandler"/>.</summary>
    public HttpMessageHandler? Handler { get; set; }

    /// <summary>Timeout of one HTTP request; a request that exceeds it is retried like a 5xx.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(2);

    internal void Validate()
    {
        if (ListPageSize is < 1 or > 1000)
        {
            throw new ArgumentException($"ObjectStoreOptions.ListPageSize must be between 1 and 1000, got {ListPageSize}");
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"ObjectStoreOptions.RequestTimeout must be positive, got {RequestTimeout}");
        }
    }
}

/// <summary>The per-backend config sections of <c>storage.trace</c>; only the one named by <c>backend</c> is used.</summary>
public sealed class ObjectStoreConfigs
{
    /// <summary><c>storage.trace.local.path</c>.</summary>
    public string LocalPath { get; set; } = string.Empty;

    public S3ObjectStoreConfig S3 { get; set; } = new();

    public AzureObjectStoreConfig Azure { get; set; } = new();

    public GcsObjectStoreConfig Gcs { get; set; } = new();
}

/// <summary>Builds the object store named by <c>storage.trace.backend</c>.</summary>
public static class ObjectStores
{
    public static readonly IReadOnlyList<string> Backends = ["local", "s3", "azure", "gcs"];

    /// <summary>Validates the section of the chosen backend; <paramref name="prefix"/> is <c>storage.trace</c>.</summary>
    public static void Validate(string backend, ObjectStoreConfigs configs, string prefix, ConfigValidation validation)
    {
        ArgumentNullException.ThrowIfNull(configs);
        switch (backend)
        {
            case "local":
                if (string.IsNullOrWhiteSpace(configs.LocalPath))
                {
                    validation.Error(prefix + ".local.path", "must be set when backend is local");
                }

                break;
            case "s3":
                configs.S3.Validate(prefix + ".s3", validation);
                break;
            case "azure":
                configs.Azure.Validate(prefix + ".azure", validation);
                break;
            case "gcs":
                configs.Gcs.Validate(prefix + ".gcs", validation);
                break;
            default:
                validation.Error(prefix + ".backend", $"'{backend}' is not one of {string.Join(", ", Backends)}");
                break;
        }
    }

    /// <summary>
    /// Creates the store for <paramref name="backend"/> (<c>local</c>, <c>s3</c>, <c>azure</c>, <c>gcs</c>). The remote
    /// stores are <see cref="IDisposable"/> (they own HTTP clients): dispose the result when it is one.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown backend or an invalid section (the message names the key).</exception>
    public static IObjectStore Create(string backend, ObjectStoreConfigs configs, ObjectStoreOptions? options = null)
    {
        var validation = new ConfigValidation();
        Validate(backend, configs, "storage.trace", validation);
        if (validation.HasErrors)
        {
            throw new ArgumentException("invalid object store config: " + string.Join("; ", validation.Errors));
        }

        return backend switch
        {
            "local" => new LocalObjectStore(configs.LocalPath),
            "s3" => new S3ObjectStore(configs.S3, options),
            "azure" => new AzureBlobObjectStore(configs.Azure, options),
            "gcs" => new GcsObjectStore(configs.Gcs, options),
            _ => throw new ArgumentException($"unknown backend '{backend}'"),
        };
    }
}
