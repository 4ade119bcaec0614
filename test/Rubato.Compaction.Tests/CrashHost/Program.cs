using Rubato.BackendWorker;
using Rubato.Common.Metrics;
using Rubato.Overrides;
using Rubato.Storage.Backend;

// Usage: crashhost <store-root> <tenant> <step|none> <input-block-id>...
// Runs one compaction of the inputs. When the compactor reports <step> (ProvenanceWritten, OutputWritten or
// InputMarked), prints "AT <step>" and blocks forever so the parent can kill -9 the process at exactly that point.
// With "none" it prints "STARTED" before compacting and runs to the end (the parent kills it whenever it likes).
if (args.Length < 4)
{
    Console.Error.WriteLine("usage: crashhost <store-root> <tenant> <step|none> <input-block-id>...");
    return 2;
}

var store = new LocalObjectStore(args[0]);
string tenant = args[1];
string stop = args[2];
Guid[] inputs = [.. args[3..].Select(Guid.Parse)];
using var overrides = new RuntimeOverrides(new OverridesConfig(), new MetricsRegistry());
var compactor = new BlockCompactor(store, overrides, new BlockCompactorOptions
{
    RowGroupSizeBytes = 4096,
    StepCompleted = async (step, _, ct) =>
    {
        if (step.ToString() == stop)
        {
            Console.Out.WriteLine("AT " + step);
            Console.Out.Flush();
            await Task.Delay(Timeout.Infinite, ct);
        }
    },
});
Console.Out.WriteLine("STARTED");
Console.Out.Flush();
await compactor.CompactAsync(tenant, inputs, CancellationToken.None);
Console.Out.WriteLine("DONE");
return 0;
