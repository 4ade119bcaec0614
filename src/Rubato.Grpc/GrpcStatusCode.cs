namespace Rubato.Grpc;

/// <summary>The 17 gRPC status codes (grpc/doc/statuscodes.md); the numeric values are on the wire in <c>grpc-status</c>.</summary>
public enum GrpcStatusCode
{
    OK = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>Conversions between gRPC status codes and HTTP status codes.</summary>
public static class GrpcStatusCodes
{
    /// <summary>
    /// The gRPC code a client derives from a non-200 HTTP response that carries no <c>grpc-status</c>
    /// (grpc/doc/http-grpc-status-mapping.md).
    /// </summary>
    public static GrpcStatusCode FromHttpStatus(int httpStatus) => httpStatus switch
    {
        200 => GrpcStatusCode.OK,
        400 => GrpcStatusCode.Internal,
        401 => GrpcStatusCode.Unauthenticated,
        403 => GrpcStatusCode.PermissionDenied,
        404 => GrpcStatusCode.Unimplemented,
        429 or 502 or 503 or 504 => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Unknown,
    };

    /// <summary>
    /// The HTTP status a REST facade should answer for a gRPC code (the grpc-gateway / google.rpc.Code mapping;
    /// 499 is "client closed request").
    /// </summary>
    public static int ToHttpStatus(GrpcStatusCode code) => code switch
    {
        GrpcStatusCode.OK => 200,
        GrpcStatusCode.Cancelled => 499,
        GrpcStatusCode.InvalidArgument => 400,
        GrpcStatusCode.DeadlineExceeded => 504,
        GrpcStatusCode.NotFound => 404,
        GrpcStatusCode.AlreadyExists => 409,
        GrpcStatusCode.PermissionDenied => 403,
        GrpcStatusCode.ResourceExhausted => 429,
        GrpcStatusCode.FailedPrecondition => 400,
        GrpcStatusCode.Aborted => 409,
        GrpcStatusCode.OutOfRange => 400,
        GrpcStatusCode.Unimplemented => 501,
        GrpcStatusCode.Unavailable => 503,
        GrpcStatusCode.Unauthenticated => 401,
        _ => 500, // Unknown, Internal, DataLoss and values outside the enum
    };

    /// <summary>Parses a <c>grpc-status</c> value; a value that is not a non-negative integer gives false.
    /// Integers outside 0..16 map to <see cref="GrpcStatusCode.Unknown"/> as the spec asks.</summary>
    public static bool TryParse(ReadOnlySpan<char> value, out GrpcStatusCode code)
    {
        code = GrpcStatusCode.Unknown;
        if (value.IsEmpty || value.Length > 9)
        {
            return false;
        }
        var n = 0;
        foreach (var c in value)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
            n = (n * 10) + (c - '0');
        }
        code = n <= (int)GrpcStatusCode.Unauthenticated ? (GrpcStatusCode)n : GrpcStatusCode.Unknown;
        return true;
    }

    /// <summary>The decimal wire form of a code without allocating for the 17 known codes.</summary>
    public static string ToWire(GrpcStatusCode code)
    {
        var n = (int)code;
        return (uint)n < (uint)WireValues.Length ? WireValues[n] : n.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static readonly string[] WireValues =
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"];
}
