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

    public static int Udp()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
