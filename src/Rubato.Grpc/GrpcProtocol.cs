using System.Buffers;
using System.Text;

namespace Rubato.Grpc;

/// <summary>Header names and values of the gRPC-over-HTTP/2 protocol (grpc/doc/PROTOCOL-HTTP2.md).</summary>
public static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";
    /// <summary>What this layer can decode, sent in every <c>grpc-accept-encoding</c>.</summary>
    public const string SupportedEncodings = "identity,gzip";

    /// <summary>
    /// True for <c>application/grpc</c> and its <c>+proto</c>/<c>+json</c>/<c>;params</c> forms. gRPC-Web
    /// (<c>application/grpc-web…</c>) is a different framing and is rejected.
    /// </summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (contentType is null || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        return contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';';
    }
}

/// <summary>
/// <c>grpc-message</c> percent-encoding: UTF-8 bytes outside 0x20..0x7E, and '%' itself, become <c>%XX</c>.
/// Decoding is lenient as the spec asks: a malformed escape is kept literally.
/// </summary>
public static class GrpcMessageEncoding
{
    private static readonly SearchValues<char> Plain = SearchValues.Create(
        " !\"#$&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    public static string Encode(string message)
    {
        if (!message.AsSpan().ContainsAnyExcept(Plain))
        {
            return message; // the common case: plain ASCII, no allocation
        }
        var bytes = Encoding.UTF8.GetBytes(message);
        var sb = new StringBuilder(bytes.Length * 2);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('%').Append(HexUpper[b >> 4]).Append(HexUpper[b & 0xF]);
            }
        }
        return sb.ToString();
    }

    public static string Decode(string? encoded)
    {
        if (string.IsNullOrEmpty(encoded))
        {
            return string.Empty;
        }
        if (!encoded.Contains('%'))
        {
            return encoded;
        }
        var bytes = new byte[encoded.Length];
        var n = 0;
        for (var i = 0; i < encoded.Length; i++)
        {
            var c = encoded[i];
            if (c == '%' && i + 2 < encoded.Length && Hex(encoded[i + 1]) is var hi and >= 0 && Hex(encoded[i + 2]) is var lo and >= 0)
            {
                bytes[n++] = (byte)((hi << 4) | lo);
                i += 2;
            }
            else
            {
                // Non-ASCII chars cannot appear in a valid header value; keep them by re-encoding to UTF-8.
                if (c < 0x80)
                {
                    bytes[n++] = (byte)c;
                }
                else
                {
                    var extra = Encoding.UTF8.GetBytes(c.ToString());
                    if (n + extra.Length > bytes.Length)
                    {
                        Array.Resize(ref bytes, bytes.Length + extra.Length);
                    }
                    extra.CopyTo(bytes, n);
                    n += extra.Length;
                }
            }
        }
        return Encoding.UTF8.GetString(bytes, 0, n);
    }

    private const string HexUpper = "0123456789ABCDEF";

    private static int Hex(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'A' and <= 'F' => c - 'A' + 10,
        >= 'a' and <= 'f' => c - 'a' + 10,
        _ => -1,
    };
}

/// <summary><c>grpc-timeout</c>: 1..8 ASCII digits followed by a unit H, M, S, m (ms), u (µs) or n (ns).</summary>
public static class GrpcTimeout
{
    private const long MaxValue = 99_999_999;

    public static bool TryParse(ReadOnlySpan<char> value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length is < 2 or > 9)
        {
            return false;
        }
        long n = 0;
        foreach (var c in value[..^1])
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
            n = (n * 10) + (c - '0');
        }
        // Even 99,999,999 hours (3.6e18 ticks) fits a TimeSpan, so none of these overflow.
        long? ticks = value[^1] switch
        {
            'H' => n * TimeSpan.TicksPerHour,
            'M' => n * TimeSpan.TicksPerMinute,
            'S' => n * TimeSpan.TicksPerSecond,
            'm' => n * TimeSpan.TicksPerMillisecond,
            'u' => n * TimeSpan.TicksPerMicrosecond,
            'n' => (n + 99) / 100, // round up so that a tiny positive timeout stays positive
            _ => null,
        };
        if (ticks is null)
        {
            return false;
        }
        timeout = TimeSpan.FromTicks(ticks.Value);
        return true;
    }

    /// <summary>Formats with the finest unit that fits 8 digits, rounding up; a non-positive timeout is "1n".</summary>
    public static string Format(TimeSpan timeout)
    {
        var ticks = timeout.Ticks;
        if (ticks <= 0)
        {
            return "1n";
        }
        if (ticks <= MaxValue / 100)
        {
            return Render(ticks * 100, 'n');
        }
        ReadOnlySpan<(long TicksPerUnit, char Unit)> units =
        [
            (TimeSpan.TicksPerMicrosecond, 'u'),
            (TimeSpan.TicksPerMillisecond, 'm'),
            (TimeSpan.TicksPerSecond, 'S'),
            (TimeSpan.TicksPerMinute, 'M'),
            (TimeSpan.TicksPerHour, 'H'),
        ];
        foreach (var (perUnit, unit) in units)
        {
            var v = (ticks + perUnit - 1) / perUnit;
            if (v <= MaxValue)
            {
                return Render(v, unit);
            }
        }
        return Render(MaxValue, 'H');
    }

    private static string Render(long value, char unit) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{value}{unit}");
}
