using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Rubato.Receivers.Wire;

namespace Rubato.Receivers;

/// <summary>
/// One Jaeger agent UDP socket. A single receive loop copies each datagram into a pooled buffer and queues it on a
/// bounded channel (full → dropped and counted, so a slow distributor never blocks the socket); <c>workers</c>
/// tasks decode and push. Stop cancels the loop, closes the socket, and lets the workers drain the queue.
/// </summary>
internal sealed class UdpReceiver
{
    private readonly Socket _socket;
    private readonly Channel<(byte[] Buffer, int Length)> _queue;
    private readonly ReceiverHandlers _handlers;
    private readonly ReceiverMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ThriftProtocol _protocol;
    private readonly string _transport;
    private readonly int _maxPacket;
    private readonly int _workerCount;
    private readonly CancellationTokenSource _cts = new();
    private Task? _receiveLoop;
    private Task[] _workers = [];

    public UdpReceiver(IPEndPoint bindTo, UdpEndpointConfig config, ThriftProtocol protocol, string transport,
        ReceiverHandlers handlers, ReceiverMetrics metrics, ILogger logger)
    {
        _protocol = protocol;
        _transport = transport;
        _handlers = handlers;
        _metrics = metrics;
        _logger = logger;
        _maxPacket = config.EffectiveMaxPacketSize();
        _workerCount = config.EffectiveWorkers();
        _queue = Channel.CreateBounded<(byte[], int)>(new BoundedChannelOptions(config.EffectiveQueueSize())
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = true,
        });
        _socket = new Socket(bindTo.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _socket.Bind(bindTo);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }

        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    public void Start()
    {
        _workers = new Task[_workerCount];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = Task.Run(WorkerAsync);
        }

        _receiveLoop = Task.Run(ReceiveLoopAsync);
    }

    private async Task ReceiveLoopAsync()
    {
        // 64 KiB holds any UDP payload, so the kernel never truncates; larger-than-configured datagrams are dropped.
        var buffer = GC.AllocateUninitializedArray<byte>(65536);
        EndPoint any = new IPEndPoint(LocalEndPoint.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        var ct = _cts.Token;
        while (!ct.IsCancellationRequested)
        {
            int n;
            try
            {
                var res = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, ct);
                n = res.ReceivedBytes;
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue;
            }
            catch (SocketException e) when (!ct.IsCancellationRequested)
            {
                // Keep the agent port alive through transient errors; back off so a persistent one cannot spin.
                _logger.LogWarning(e, "jaeger {Transport}: receive failed on {Endpoint}", _transport, LocalEndPoint);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                continue;
            }

            if (n > _maxPacket)
            {
                _metrics.FailedRequests.WithLabels("jaeger", _transport, "too_large").Inc();
                continue;
            }

            var copy = ArrayPool<byte>.Shared.Rent(Math.Max(n, 1));
            buffer.AsSpan(0, n).CopyTo(copy);
            if (!_queue.Writer.TryWrite((copy, n)))
            {
                ArrayPool<byte>.Shared.Return(copy);
                _metrics.FailedRequests.WithLabels("jaeger", _transport, "queue_full").Inc();
            }
        }
    }

    private async Task WorkerAsync()
    {
        await foreach (var (buf, len) in _queue.Reader.ReadAllAsync())
        {
            try
            {
                await _handlers.DatagramAsync(buf.AsMemory(0, len), _protocol, _transport, CancellationToken.None);
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "jaeger {Transport}: pushing a datagram failed", _transport);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buf);
            }
        }
    }

    public async Task StopAsync()
    {
        await _cts.CancelAsync();
        _socket.Dispose();
        if (_receiveLoop is not null)
        {
            await _receiveLoop;
        }

        _queue.Writer.TryComplete();
        await Task.WhenAll(_workers);
        _cts.Dispose();
    }
}
