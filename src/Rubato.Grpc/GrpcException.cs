namespace Rubato.Grpc;

/// <summary>
/// A gRPC call that ended with a non-OK status. Server handlers throw it to answer with that status and message;
/// the client throws it when a call ends with a non-OK status (decoded <c>grpc-message</c> in <see cref="Exception.Message"/>).
/// </summary>
public sealed class GrpcException : Exception
{
    public GrpcException(GrpcStatusCode statusCode, string message)
        : base(message)
    {
        StatusCode = statusCode;
    }

    public GrpcException(GrpcStatusCode statusCode, string message, Exception? innerException)
        : base(message, innerException)
    {
        StatusCode = statusCode;
    }

    public GrpcStatusCode StatusCode { get; }

    /// <summary>The status detail as sent in <c>grpc-message</c> (same as <see cref="Exception.Message"/>).</summary>
    public string StatusMessage => Message;

    public override string ToString() => $"{nameof(GrpcException)}: {StatusCode} ({(int)StatusCode}): {Message}";
}
