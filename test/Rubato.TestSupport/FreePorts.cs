using System.Net;
using System.Net.Sockets;

namespace Rubato.TestSupport;

/// <summary>
/// Picks free loopback ports by binding port 0 and releasing it. Another process can grab a port between release and
/// the server's bind: callers that start servers on these ports retry with fresh ones or fail with the server's output.
/// </summary>
public static class FreePorts
{
    public static int Tcp()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// <paramref name="count"/> distinct free TCP ports: every listener stays bound until all are picked, so the kernel
    /// cannot hand the same port out twice (one at a time, a port released by the first pick may come back on the
    /// next, and a server given it for two listeners refuses to start).
    /// </summary>
    public static int[] Tcp(int count)
    {
        var listeners = new List<TcpListener>(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var l = new TcpListener(IPAddress.Loopback, 0);
                listeners.Add(l);
                l.Start();
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var l in listeners)
            {
                l.Stop();
            }
        }
    }

    /// <summary><paramref name="count"/> distinct free UDP ports (all bound until every one is picked, as <see cref="Tcp(int)"/>).</summary>
    public static int[] Udp(int count)
    {
        var sockets = new List<Socket>(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                sockets.Add(s);
                s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            }

            return [.. sockets.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port)];
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }

    public static int Udp()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
