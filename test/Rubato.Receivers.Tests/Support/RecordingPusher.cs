using System.Collections.Concurrent;
using System.Threading.Channels;
using Rubato.Common.Contracts;
using Rubato.Common.Otlp;
using Rubato.Common.Model;

namespace Rubato.Receivers.Tests.Support;

/// <summary>
/// Test double of the distributor (the module boundary): records every push and answers with a configurable
/// <see cref="PushResult"/> (default: everything accepted). OTLP protobuf pushes are decoded only to count spans.
/// </summary>
public sealed class RecordingPusher : ITracePusher
{
    private readonly Channel<Push> _pushes = Channel.CreateUnbounded<Push>();

    public sealed record Push(string Tenant, byte[]? OtlpBytes, Trace? Trace);

    public ConcurrentQueue<Push> All { get; } = new();

    /// <summary>Computes the answer from the span count; default accepts everything.</summary>
    public Func<int, PushResult> Respond { get; set; } = PushResult.Ok;

    public ValueTask<PushResult> PushOtlpAsync(string tenantId, ReadOnlyMemory<byte> exportTraceServiceRequest, CancellationToken cancellationToken)
    {
        var bytes = exportTraceServiceRequest.ToArray();
        int spans = OtlpProto.DecodeTrace(bytes).SpanCount();
        Record(new Push(tenantId, bytes, null));
        return ValueTask.FromResult(Respond(spans));
    }

    public ValueTask<PushResult> PushTraceAsync(string tenantId, Trace spans, CancellationToken cancellationToken)
    {
        Record(new Push(tenantId, null, spans));
        return ValueTask.FromResult(Respond(spans.SpanCount()));
    }

    private void Record(Push p)
    {
        All.Enqueue(p);
        _pushes.Writer.TryWrite(p);
    }

    /// <summary>Waits (with a timeout) for the next push.</summary>
    public async Task<Push> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            return await _pushes.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("no push reached the distributor double in time");
        }
    }
}
