using System.Diagnostics;
using Rubato.Common.Metrics;

namespace Rubato.Server.Http;

/// <summary>Standard <c>process_*</c> gauges, refreshed on each scrape of <c>/metrics</c>.</summary>
public sealed class ProcessMetrics
{
    private readonly Gauge _rss;
    private readonly Gauge _cpu;
    private readonly Gauge _start;
    private readonly Gauge _heap;
    private readonly Gauge _threads;
    private readonly Gauge _gcCollections;

    public ProcessMetrics(MetricsRegistry registry)
    {
        _rss = registry.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
        _cpu = registry.Gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
        _start = registry.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
        _heap = registry.Gauge("dotnet_gc_heap_size_bytes", "Managed heap size after the last collection.");
        _threads = registry.Gauge("process_threads", "Threads in the process.");
        _gcCollections = registry.Gauge("dotnet_gc_collections", "Garbage collections since start, by generation.", "generation");
        using var p = Process.GetCurrentProcess();
        _start.Set(new DateTimeOffset(p.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0);
    }

    public void Refresh()
    {
        using var p = Process.GetCurrentProcess();
        _rss.Set(p.WorkingSet64);
        _cpu.Set(p.TotalProcessorTime.TotalSeconds);
        _threads.Set(p.Threads.Count);
        _heap.Set(GC.GetGCMemoryInfo().HeapSizeBytes);
        for (int g = 0; g <= GC.MaxGeneration; g++)
        {
            _gcCollections.WithLabels(g.ToString(System.Globalization.CultureInfo.InvariantCulture)).Set(GC.CollectionCount(g));
        }
    }
}
