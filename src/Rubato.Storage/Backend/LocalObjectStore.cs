namespace Rubato.Storage.Backend;

/// <summary>
/// Tempo's <c>local</c> backend (<c>storage.trace.local.path</c>): one file per object under a root folder.
/// </summary>
/// <remarks>
/// A Put writes <c>&lt;key&gt;.tmp-&lt;random&gt;</c> next to the destination, flushes it and renames it over the
/// destination, so a crash leaves either the previous object or the new one (plus possibly a stray temp file, which
/// listings skip). Keys with <c>..</c>, <c>.</c> or empty segments are rejected so no key escapes the root.
/// Thread-safe: the file system arbitrates concurrent writers (last rename wins).
/// </remarks>
public sealed class LocalObjectStore : IObjectStore
{
    private const string TempMarker = ".tmp-";
    private readonly string _root;

    public LocalObjectStore(string rootPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rootPath);
        _root = Path.GetFullPath(rootPath);
        Directory.CreateDirectory(_root);
    }

    public string RootPath => _root;

    public Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => PutAsync(key, data, ct, retried: false);

    private async Task PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct, bool retried)
    {
        string path = PathFor(key);
        string tmp = TempPath(path);
        try
        {
            await using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                await fs.WriteAsync(data, ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
        }
        catch (DirectoryNotFoundException) when (!retried)
        {
            // A concurrent DeleteAsync pruned the (then empty) folder between CreateDirectory and the write: once more.
            TryDelete(tmp);
            await PutAsync(key, data, ct, retried: true).ConfigureAwait(false);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public async Task PutAsync(string key, Stream data, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(data);
        string path = PathFor(key);
        string tmp = TempPath(path);
        try
        {
            await using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.Asynchronous))
            {
                await data.CopyToAsync(fs, ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken ct)
    {
        string path = PathFor(key, create: false);
        try
        {
            return await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public IRangeReader OpenRangeReader(string key) => new LocalRangeReader(key, PathFor(key, create: false));

    /// <summary>
    /// One open file handle for a run of range reads: the file is opened on the first read (a missing object fails
    /// there, as <see cref="ReadRangeAsync"/> does) and each range is one synchronous positional read, which for the
    /// page-cache-resident bytes a scan reads costs a few microseconds, against an open, an asynchronous read handed to
    /// the thread pool and a close per request otherwise. Runs on the caller's thread.
    /// </summary>
    private sealed class LocalRangeReader(string key, string path) : IRangeReader
    {
        private Microsoft.Win32.SafeHandles.SafeFileHandle? _handle;

        public ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(offset);
            ct.ThrowIfCancellationRequested();
            if (_handle is null)
            {
                try
                {
                    _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                }
                catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
                {
                    throw new ObjectNotFoundException(key, e);
                }
            }

            int total = 0;
            while (total < buffer.Length)
            {
                int n = RandomAccess.Read(_handle, buffer.Span[total..], offset + total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return new ValueTask<int>(total);
        }

        public void Dispose() => _handle?.Dispose();
    }

    public async Task<int> ReadRangeAsync(string key, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        string path = PathFor(key, create: false);
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ObjectNotFoundException(key, e);
        }

        using (handle)
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = await RandomAccess.ReadAsync(handle, buffer[total..], offset + total, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }
    }

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken ct)
    {
        ObjectKeys.Validate(prefix.TrimEnd('/'), allowEmpty: true);
        string dir = prefix.Trim('/').Length == 0 ? _root : Path.Combine(_root, prefix.Trim('/'));
        if (!Directory.Exists(dir))
        {
            return Task.FromResult<IReadOnlyList<string>>([]);
        }

        var names = new List<string>();
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
        {
            string name = Path.GetFileName(entry);
            if (!name.Contains(TempMarker, StringComparison.Ordinal))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return Task.FromResult<IReadOnlyList<string>>(names);
    }

    public Task<bool> ExistsAsync(string key, CancellationToken ct) => Task.FromResult(File.Exists(PathFor(key, create: false)));

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        string path = PathFor(key, create: false);
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing to delete.
        }

        // Remove now-empty parent folders (e.g. a deleted block's folder) but never the root.
        string? dir = Path.GetDirectoryName(path);
        while (dir is not null && dir.Length > _root.Length && Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
        {
            try
            {
                Directory.Delete(dir);
            }
            catch (IOException)
            {
                break; // Someone wrote into it concurrently.
            }

            dir = Path.GetDirectoryName(dir);
        }

        return Task.CompletedTask;
    }

    private string PathFor(string key, bool create = true)
    {
        ObjectKeys.Validate(key);
        string path = Path.Combine(_root, key.Replace('/', Path.DirectorySeparatorChar));
        if (create)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        }

        return path;
    }

    private static string TempPath(string path) => path + TempMarker + Guid.NewGuid().ToString("N");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a stray temp file is skipped by listings.
        }
    }
}
