using Xunit;

// The resilience tests assert wall-clock bounds (a timeout must end an operation within its configured time). Running
// test classes in parallel lets CPU-bound tests (the concurrent LRU test) starve the thread pool that fires those
// timers on a 2-core machine, so classes run one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
