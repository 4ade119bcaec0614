using System.Runtime.CompilerServices;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

public sealed class VanishingDataFetcherTests
{
    [Fact]
    public async Task FetchAsync_DataVanishesMidway_EndsWithWhatWasRead()
    {
        var all = TestData.Small();
        var fetcher = new VanishingDataFetcher(new FailingAfter(all, 2, new FileNotFoundException("gone")), e => e is FileNotFoundException);
        var got = new List<Spanset>();
        await foreach (var s in fetcher.FetchAsync(new FetchSpansRequest(), CancellationToken.None))
        {
            got.Add(s);
        }

        Assert.Equal(2, got.Count);
    }

    [Fact]
    public async Task FetchAsync_OtherFailure_Propagates()
    {
        var fetcher = new VanishingDataFetcher(new FailingAfter(TestData.Small(), 1, new InvalidDataException("corrupt")), e => e is FileNotFoundException);
        await Assert.ThrowsAsync<InvalidDataException>(async () =>
        {
            await foreach (var _ in fetcher.FetchAsync(new FetchSpansRequest(), CancellationToken.None))
            {
            }
        });
    }

    /// <summary>Yields the first <c>count</c> traces of an in-memory fetcher, then fails with <c>error</c>.</summary>
    private sealed class FailingAfter(IReadOnlyList<Rubato.Common.Model.Trace> traces, int count, Exception error) : ISpansetFetcher
    {
        public async IAsyncEnumerable<Spanset> FetchAsync(FetchSpansRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            int n = 0;
            await foreach (var s in new TraceModelFetcher(traces).FetchAsync(request, cancellationToken))
            {
                if (n++ == count)
                {
                    throw error;
                }

                yield return s;
            }
        }
    }
}
