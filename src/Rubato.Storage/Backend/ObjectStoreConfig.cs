using Rubato.Common.Configuration;
using Rubato.Storage.Backend.Resilience;

namespace Rubato.Storage.Backend;

/// <summary>
/// <c>storage.trace.s3</c>, with Tempo's keys (the YAML loader maps PascalCase to snake_case, so
/// <see cref="Forcepathstyle"/> is <c>forcepathstyle</c> as in Tempo).
/// </summary>
public sealed class S3ObjectStoreConfig : IValidatableConfig
{
    /// <summary>Smallest part S3 accepts in a multipart upload (the last part may be smaller).</summary>
    public const long MinPartSize = 5L * 1024 * 1024;

    /// <summary>Part size used when <see cref="PartSize"/> is 0 (minio-go's minimum part size, which Tempo's client uses).</summary>
    public const long DefaultPartSize = 16L * 1024 * 1024;

    public string Bucket { get; set; } = string.Empty;

    /// <summary>Folder inside the bucket that holds every tenant; empty for the bucket root.</summary>
    public string Prefix { get; set; } = string.Empty;

    /// <summary><c>host[:port]</c> (Tempo style; <c>http(s)://</c> is accepted too). Empty means AWS's endpoint for <see cref="Region"/>.</summary>
    public string Endpoint { get; set; } = string.Empty;

    public string Region { get; set; } = string.Empty;

    /// <summary>Static credentials; when empty the AWS SDK's default chain (environment, profile, instance role) is used.</summary>
    public string AccessKey { get; set; } = string.Empty;

    public string SecretKey { get; set; } = string.Empty;

    public string SessionToken { get; set; } = string.Empty;

    /// <summary>Plain HTTP instead of HTTPS.</summary>
    public bool Insecure { get; set; }

    /// <summary>Path-style addressing (<c>endpoint/bucket/key</c>) instead of virtual-host style; needed by MinIO, s3rver.</summary>
    public bool Forcepathstyle { get; set; }

    /// <summary>Multipart part size in bytes; 0 means <see cref="DefaultPartSize"/>. Objects smaller than a part use one PutObject.</summary>
    public long PartSize { get; set; }

    public TimeSpan HedgeRequestsAt { get; set; }

    public int HedgeRequestsUpTo { get; set; } = 2;

    /// <summary>
    /// Rubato extension for S3-compatible servers whose delimiter listings are incomplete (s3rver 3.7 drops a common
    /// prefix whose objects all sit two or more levels down, and fails to paginate pages of only common prefixes):
    /// list every key under the prefix without a delimiter and derive the child names locally. Correct everywhere,
    /// but costs one request per 1000 nested keys instead of per 1000 children, so leave it off for real S3.
    /// </summary>
    public bool ListRecursive { get; set; }

    public int RetryMaxAttempts { get; set; } = 10;

    public TimeSpan RetryBackoffInitial { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan RetryBackoffMax { get; set; } = TimeSpan.FromSeconds(1);

    public long EffectivePartSize() => PartSize == 0 ? DefaultPartSize : PartSize;

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (string.IsNullOrWhiteSpace(Bucket))
        {
            validation.Error(prefix + ".bucket", "must be set");
        }

        if (string.IsNullOrEmpty(Endpoint) && string.IsNullOrEmpty(Region))
        {
            validation.Error(prefix + ".region", "must be set when endpoint is empty (the AWS endpoint is chosen by region)");
        }

        if (AccessKey.Length > 0 != SecretKey.Length > 0)
        {
            validation.Error(prefix + (AccessKey.Length == 0 ? ".access_key" : ".secret_key"), "access_key and secret_key must be set together");
        }

        if (PartSize != 0 && PartSize < MinPartSize)
        {
            validation.Error(prefix + ".part_size", $"must be 0 (default {DefaultPartSize}) or at least {MinPartSize} bytes, S3's smallest part; got {PartSize}");
        }

        ObjectStoreConfigChecks.Prefix(Prefix, prefix + ".prefix", validation);
        ObjectStoreConfigChecks.Hedge(HedgeRequestsAt, HedgeRequestsUpTo, prefix, validation);
        ObjectStoreConfigChecks.Retry(RetryMaxAttempts, RetryBackoffInitial, RetryBackoffMax, prefix, validation);
    }

    public RetryOptions RetryOptions() => new() { MaxAttempts = RetryMaxAttempts, BackoffInitial = RetryBackoffInitial, BackoffMax = RetryBackoffMax };

    public HedgeOptions HedgeOptions() => new() { At = HedgeRequestsAt, UpTo = HedgeRequestsUpTo };
}

/// <summary><c>storage.trace.azure</c>, with Tempo's keys. Authentication is by account key (SharedKey).</summary>
public sealed class AzureObjectStoreConfig : IValidatableConfig
{
    public const string DefaultEndpointSuffix = "blob.core.windows.net";

    /// <summary>Falls back to the <c>AZURE_STORAGE_ACCOUNT</c> environment variable, as Tempo does.</summary>
    public string StorageAccountName { get; set; } = string.Empty;

    /// <summary>Base64 account key; falls back to <c>AZURE_STORAGE_KEY</c>, as Tempo does.</summary>
    public string StorageAccountKey { get; set; } = string.Empty;

    /// <summary>Accepted for Tempo compatibility; Rubato supports account-key auth only, so true is a config error.</summary>
    public bool UseManagedIdentity { get; set; }

    /// <summary>Accepted for Tempo compatibility; Rubato supports account-key auth only, so true is a config error.</summary>
    public bool UseFederatedToken { get; set; }

    public string UserAssignedId { get; set; } = string.Empty;

    public string ContainerName { get; set; } = string.Empty;

    public string Prefix { get; set; } = string.Empty;

    /// <summary>
    /// <c>blob.core.windows.net</c> gives <c>https://ACCOUNT.blob.core.windows.net</c>. As in Tempo, a suffix that does not
    /// start with <c>blob.</c> is taken as an emulator's <c>host:port</c> (Azurite): <c>http://HOST:PORT/ACCOUNT</c>.
    /// </summary>
    public string EndpointSuffix { get; set; } = DefaultEndpointSuffix;

    /// <summary>Blocks uploaded at once for a large blob.</summary>
    public int MaxBuffers { get; set; } = 4;

    /// <summary>Block size for large blobs; smaller blobs are one Put Blob.</summary>
    public int BufferSize { get; set; } = 3 * 1024 * 1024;

    public TimeSpan HedgeRequestsAt { get; set; }

    public int HedgeRequestsUpTo { get; set; } = 2;

    /// <summary>Rubato extension (Tempo uses the Azure SDK's retry policy): attempts per request including the first.</summary>
    public int RetryMaxAttempts { get; set; } = 5;

    public TimeSpan RetryBackoffInitial { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan RetryBackoffMax { get; set; } = TimeSpan.FromSeconds(5);

    public string EffectiveAccountName() => StorageAccountName.Length > 0 ? StorageAccountName : Environment.GetEnvironmentVariable("AZURE_STORAGE_ACCOUNT") ?? string.Empty;

    public string EffectiveAccountKey() => StorageAccountKey.Length > 0 ? StorageAccountKey : Environment.GetEnvironmentVariable("AZURE_STORAGE_KEY") ?? string.Empty;

    /// <summary>The account's blob service URL (no trailing slash).</summary>
    public Uri ServiceUri()
    {
        string suffix = EndpointSuffix.Trim().TrimEnd('/');
        return suffix.StartsWith("blob.", StringComparison.Ordinal)
            ? new Uri($"https://{EffectiveAccountName()}.{suffix}")
            : new Uri($"http://{suffix}/{EffectiveAccountName()}");
    }

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (string.IsNullOrWhiteSpace(ContainerName))
        {
            validation.Error(prefix + ".container_name", "must be set");
        }

        if (EffectiveAccountName().Length == 0)
        {
            validation.Error(prefix + ".storage_account_name", "must be set (or AZURE_STORAGE_ACCOUNT)");
        }

        if (UseManagedIdentity || UseFederatedToken || UserAssignedId.Length > 0)
        {
            string key = UseFederatedToken ? ".use_federated_token" : UseManagedIdentity ? ".use_managed_identity" : ".user_assigned_id";
            validation.Error(prefix + key, "is not supported: Rubato authenticates to Azure with storage_account_key (SharedKey) only");
        }
        else
        {
            string key = EffectiveAccountKey();
            if (key.Length == 0)
            {
                validation.Error(prefix + ".storage_account_key", "must be set (or AZURE_STORAGE_KEY)");
            }
            else if (!IsBase64(key))
            {
                validation.Error(prefix + ".storage_account_key", "is not valid base64");
            }
        }

        if (string.IsNullOrWhiteSpace(EndpointSuffix))
        {
            validation.Error(prefix + ".endpoint_suffix", "must be set");
        }

        if (MaxBuffers < 1)
        {
            validation.Error(prefix + ".max_buffers", $"must be at least 1, got {MaxBuffers}");
        }

        if (BufferSize < 1024)
        {
            validation.Error(prefix + ".buffer_size", $"must be at least 1024 bytes, got {BufferSize}");
        }

        ObjectStoreConfigChecks.Prefix(Prefix, prefix + ".prefix", validation);
        ObjectStoreConfigChecks.Hedge(HedgeRequestsAt, HedgeRequestsUpTo, prefix, validation);
        ObjectStoreConfigChecks.Retry(RetryMaxAttempts, RetryBackoffInitial, RetryBackoffMax, prefix, validation);
    }

    public RetryOptions RetryOptions() => new() { MaxAttempts = RetryMaxAttempts, BackoffInitial = RetryBackoffInitial, BackoffMax = RetryBackoffMax };

    public HedgeOptions HedgeOptions() => new() { At = HedgeRequestsAt, UpTo = HedgeRequestsUpTo };

    private static bool IsBase64(string s)
    {
        Span<byte> buffer = stackalloc byte[256];
        return s.Length <= 340 && Convert.TryFromBase64String(s, buffer, out _);
    }
}

/// <summary>
/// <c>storage.trace.gcs</c>, with Tempo's keys. Rubato talks to the GCS JSON API without credentials, so
/// <see cref="Insecure"/> must be true (an emulator such as fake-gcs-server, or a proxy that adds credentials).
/// </summary>
public sealed class GcsObjectStoreConfig : IValidatableConfig
{
    public const string DefaultEndpoint = "https://storage.googleapis.com/storage/v1/";

    /// <summary>Resumable upload chunks must be multiples of this (GCS's rule).</summary>
    public const int ChunkGranularity = 256 * 1024;

    public string BucketName { get; set; } = string.Empty;

    public string Prefix { get; set; } = string.Empty;

    /// <summary>Objects larger than this are uploaded resumably in chunks of this size (a multiple of 256 KiB).</summary>
    public int ChunkBufferSize { get; set; } = 10 * 1024 * 1024;

    /// <summary>The JSON API base, e.g. <c>http://127.0.0.1:4443/storage/v1/</c>; uploads go to the matching <c>/upload/storage/v1/</c>.</summary>
    public string Endpoint { get; set; } = string.Empty;

    public TimeSpan HedgeRequestsAt { get; set; }

    public int HedgeRequestsUpTo { get; set; } = 2;

    /// <summary>As in Tempo: send no credentials (and skip TLS verification).</summary>
    public bool Insecure { get; set; }

    /// <summary>Rubato extension (Tempo uses the GCS client's retries): attempts per request including the first.</summary>
    public int RetryMaxAttempts { get; set; } = 5;

    public TimeSpan RetryBackoffInitial { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan RetryBackoffMax { get; set; } = TimeSpan.FromSeconds(5);

    public void Validate(string prefix, ConfigValidation validation)
    {
        if (string.IsNullOrWhiteSpace(BucketName))
        {
            validation.Error(prefix + ".bucket_name", "must be set");
        }

        if (!Insecure)
        {
            validation.Error(prefix + ".insecure", "must be true: Rubato does not implement Google service-account authentication; point endpoint at an emulator or a credential-adding proxy");
        }

        if (Endpoint.Length > 0 && !Uri.TryCreate(Endpoint, UriKind.Absolute, out _))
        {
            validation.Error(prefix + ".endpoint", $"'{Endpoint}' is not an absolute URL such as http://127.0.0.1:4443/storage/v1/");
        }

        if (ChunkBufferSize < ChunkGranularity || ChunkBufferSize % ChunkGranularity != 0)
        {
            validation.Error(prefix + ".chunk_buffer_size", $"must be a positive multiple of {ChunkGranularity} bytes, got {ChunkBufferSize}");
        }

        ObjectStoreConfigChecks.Prefix(Prefix, prefix + ".prefix", validation);
        ObjectStoreConfigChecks.Hedge(HedgeRequestsAt, HedgeRequestsUpTo, prefix, validation);
        ObjectStoreConfigChecks.Retry(RetryMaxAttempts, RetryBackoffInitial, RetryBackoffMax, prefix, validation);
    }

    public RetryOptions RetryOptions() => new() { MaxAttempts = RetryMaxAttempts, BackoffInitial = RetryBackoffInitial, BackoffMax = RetryBackoffMax };

    public HedgeOptions HedgeOptions() => new() { At = HedgeRequestsAt, UpTo = HedgeRequestsUpTo };
}

internal static class ObjectStoreConfigChecks
{
    public static void Prefix(string value, string key, ConfigValidation validation)
    {
        string trimmed = value.Trim('/');
        if (trimmed.Length == 0)
        {
            return;
        }

        try
        {
            ObjectKeys.Validate(trimmed);
        }
        catch (ArgumentException e)
        {
            validation.Error(key, e.Message);
        }
    }

    public static void Hedge(TimeSpan at, int upTo, string prefix, ConfigValidation validation)
    {
        if (at < TimeSpan.Zero)
        {
            validation.Error(prefix + ".hedge_requests_at", "must not be negative");
        }

        if (upTo < 1)
        {
            validation.Error(prefix + ".hedge_requests_up_to", $"must be at least 1, got {upTo}");
        }
        else if (at > TimeSpan.Zero && upTo < 2)
        {
            validation.Warning(prefix + ".hedge_requests_up_to", "is below 2, so hedge_requests_at has no effect");
        }
    }

    public static void Retry(int maxAttempts, TimeSpan initial, TimeSpan max, string prefix, ConfigValidation validation)
    {
        if (maxAttempts < 1)
        {
            validation.Error(prefix + ".retry_max_attempts", $"must be at least 1, got {maxAttempts}");
        }

        if (initial < TimeSpan.Zero)
        {
            validation.Error(prefix + ".retry_backoff_initial", "must not be negative");
        }

        if (max < initial)
        {
            validation.Error(prefix + ".retry_backoff_max", "must not be less than retry_backoff_initial");
        }
    }
}
