using System.Security.Cryptography;
using System.Text;
using Rubato.Common.Configuration;
using Rubato.Common.Contracts;
using Rubato.Common.Metrics;
using Rubato.Common.Services;

namespace Rubato.Overrides;

/// <summary>
/// The overrides module: <c>overrides.defaults</c> plus the runtime file, re-read every
/// <c>per_tenant_override_period</c> and whenever the file system reports a change in its folder.
/// </summary>
/// <remarks>
/// <para>Threads: <see cref="ForTenant"/> runs on request threads and reads one immutable snapshot (a volatile
/// reference), so it never blocks. Reloads run on the service's run loop (and in <see cref="ReloadNow"/>'s caller),
/// serialised by a lock; file-watcher callbacks only signal the loop.</para>
/// <para>A file that fails to read, parse or validate is logged and counted
/// (<c>rubato_overrides_reloads_total{result="failure"}</c>) and the previous good limits stay in force. At start the
/// file must be valid, as in Tempo: a broken file stops the process instead of running with limits nobody chose.</para>
/// </remarks>
public sealed class RuntimeOverrides : IOverrides, IDisposable
{
    /// <summary>Editors write files in several steps; changes closer together than this are read once.</summary>
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(100);

    private readonly OverridesConfig _config;
    private readonly Action<string> _log;
    private readonly object _reloadGate = new();
    private readonly SemaphoreSlim _changeSignal = new(0, 1);
    private readonly Counter.Child _reloadSuccess;
    private readonly Counter.Child _reloadFailure;
    private readonly Gauge.Child _lastReloadOk;
    private FileSystemWatcher? _watcher;
    private volatile Snapshot _snapshot;
    private string? _lastHash;

    /// <param name="log">Receives warnings (bad files); null discards them.</param>
    public RuntimeOverrides(OverridesConfig config, MetricsRegistry metrics, Action<string>? log = null)
    {
        var validation = new ConfigValidation();
        config.Validate("overrides", validation);
        if (validation.HasErrors)
        {
            throw new ArgumentException(string.Join("; ", validation.Errors), nameof(config));
        }

        _config = config;
        _log = log ?? (_ => { });
        _snapshot = new Snapshot(new Dictionary<string, TenantLimits>(StringComparer.Ordinal), 1);
        var reloads = metrics.Counter("rubato_overrides_reloads_total", "Reloads of the runtime overrides file, by result.", "result");
        _reloadSuccess = reloads.WithLabels("success");
        _reloadFailure = reloads.WithLabels("failure");
        _lastReloadOk = metrics.Gauge("rubato_overrides_last_reload_successful", "1 when the last read of the runtime overrides file succeeded.").WithLabels();
        _lastReloadOk.Set(1);
        Service = new BasicService("overrides", StartingAsync, RunningAsync, StoppingAsync);
    }

    /// <summary>The lifecycle the module manager drives.</summary>
    public BasicService Service { get; }

    /// <summary><c>overrides.defaults</c>.</summary>
    public TenantLimits Defaults => _config.Defaults;

    /// <summary>The entries of the runtime file currently in force (tenant id or <c>"*"</c> → limits).</summary>
    public IReadOnlyDictionary<string, TenantLimits> RuntimeEntries => _snapshot.Entries;

    public long Version => _snapshot.Version;

    /// <summary>The last reload error, or null when the last reload succeeded.</summary>
    public string? LastError { get; private set; }

    public event Action? Changed;

    public TenantLimits ForTenant(string tenantId)
    {
        var entries = _snapshot.Entries;
        if (entries.TryGetValue(tenantId, out var own))
        {
            return own;
        }

        return entries.TryGetValue("*", out var wildcard) ? wildcard : _config.Defaults;
    }

    /// <summary>
    /// Effective limits of every tenant named in the runtime file plus <paramref name="extraTenants"/> (e.g. tenants
    /// seen recently): the data behind <c>/status/overrides</c>.
    /// </summary>
    public IReadOnlyDictionary<string, TenantLimits> EffectiveLimits(IEnumerable<string>? extraTenants = null)
    {
        var result = new SortedDictionary<string, TenantLimits>(StringComparer.Ordinal);
        foreach (string t in _snapshot.Entries.Keys.Concat(extraTenants ?? []))
        {
            result[t] = ForTenant(t);
        }

        return result;
    }

    /// <summary>YAML of defaults plus runtime entries (<c>/status/runtime_config</c>).</summary>
    public string RenderRuntimeConfig() => RuntimeOverridesFile.Render(_config.Defaults, _snapshot.Entries);

    /// <summary>Reads the runtime file now. Returns false (and keeps the previous limits) when it is unusable.</summary>
    public bool ReloadNow()
    {
        try
        {
            LoadOrThrow();
            return true;
        }
        catch (Exception e) when (e is OverridesFileException or IOException or UnauthorizedAccessException)
        {
            _reloadFailure.Inc();
            _lastReloadOk.Set(0);
            LastError = e.Message;
            _log($"overrides: keeping the previous limits, runtime file {_config.PerTenantOverrideConfig} is unusable: {e.Message}");
            return false;
        }
    }

    private void LoadOrThrow()
    {
        string path = _config.PerTenantOverrideConfig;
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        lock (_reloadGate)
        {
            string text;
            try
            {
                text = File.ReadAllText(path);
            }
            catch (FileNotFoundException)
            {
                throw new OverridesFileException($"runtime overrides file {path} does not exist");
            }
            catch (DirectoryNotFoundException)
            {
                throw new OverridesFileException($"runtime overrides file {path} does not exist");
            }

            string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
            if (hash == _lastHash)
            {
                MarkSuccess();
                return;
            }

            var entries = RuntimeOverridesFile.Parse(text, _config.Defaults);
            _lastHash = hash;
            _snapshot = new Snapshot(entries, _snapshot.Version + 1);
            MarkSuccess();
        }

        Changed?.Invoke();
    }

    private void MarkSuccess()
    {
        _reloadSuccess.Inc();
        _lastReloadOk.Set(1);
        LastError = null;
    }

    private Task StartingAsync(CancellationToken cancellationToken)
    {
        string path = _config.PerTenantOverrideConfig;
        if (string.IsNullOrEmpty(path))
        {
            return Task.CompletedTask;
        }

        LoadOrThrow();
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        try
        {
            // Watch the folder, not the file: editors and Kubernetes config maps replace files by rename/symlink swap.
            _watcher = new FileSystemWatcher(dir)
            {
                NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime | NotifyFilters.DirectoryName,
                IncludeSubdirectories = false,
            };
            _watcher.Changed += OnFileEvent;
            _watcher.Created += OnFileEvent;
            _watcher.Renamed += OnFileEvent;
            _watcher.Deleted += OnFileEvent;
            _watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
        {
            // Out of inotify watches, for instance: the periodic reload still works.
            _log($"overrides: cannot watch {dir} for changes ({e.Message}); reloading every {GoDuration.FormatCompact(_config.PerTenantOverridePeriod)} only");
            _watcher?.Dispose();
            _watcher = null;
        }

        return Task.CompletedTask;
    }

    private void OnFileEvent(object sender, FileSystemEventArgs e)
    {
        // Runs on a watcher thread: only signal the run loop. CurrentCount caps the semaphore at 1 pending signal.
        if (_changeSignal.CurrentCount == 0)
        {
            try
            {
                _changeSignal.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another event signalled first; one pending reload is enough.
            }
        }
    }

    private async Task RunningAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(_config.PerTenantOverrideConfig))
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            return;
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            bool signalled = await _changeSignal.WaitAsync(_config.PerTenantOverridePeriod, cancellationToken).ConfigureAwait(false);
            if (signalled)
            {
                await Task.Delay(Debounce, cancellationToken).ConfigureAwait(false);
                _changeSignal.Wait(0);
            }

            ReloadNow();
        }
    }

    private Task StoppingAsync(Exception? failure)
    {
        _watcher?.Dispose();
        _watcher = null;
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _changeSignal.Dispose();
    }

    private sealed record Snapshot(IReadOnlyDictionary<string, TenantLimits> Entries, long Version);
}
