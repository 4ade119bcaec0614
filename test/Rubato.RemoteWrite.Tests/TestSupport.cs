using Rubato.Common.Contracts;
using Rubato.Common.Otlp;

namespace Rubato.RemoteWrite.Tests;

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rubato-rw-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a still-open handle on a slow machine; the OS temp cleaner removes it.
        }
    }
}

/// <summary>A clock the tests move by hand.</summary>
internal sealed class ManualTime : TimeProvider
{
    private DateTimeOffset _now = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

internal static class Samples
{
    public static SeriesSample Counter(string series, long ts, double value) =>
        new([new("__name__", "test_total"), new("series", series)], ts, value);

    /// <summary>One WAL record holding <paramref name="count"/> samples of series s0..sN at <paramref name="ts"/>.</summary>
    public static (ReadOnlyMemory<byte>, int) Record(int count, long ts, double value = 1)
    {
        using var w = new ProtoWriter(256);
        for (int i = 0; i < count; i++)
        {
            var s = Counter("s" + i, ts, value);
            PromWire.WriteTimeSeries(w, s.Labels, [], s.TimestampMs, s.Value);
        }

        return (w.ToArray(), count);
    }

    /// <summary>Decodes a WAL batch body into (series, timestamp) pairs.</summary>
    public static List<(string Series, long Ts, double Value)> Decode(ReadOnlySpan<byte> body) =>
        PromWire.DecodeWriteRequest(body)
            .SelectMany(s => s.Samples.Select(x => (s.Labels.First(l => l.Name == "series").Value, x.TimestampMs, x.Value)))
            .ToList();
}
