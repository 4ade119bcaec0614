using System.Buffers;
using System.IO.Compression;
using System.IO.Pipelines;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace Rubato.Grpc.Tests;

public sealed class GrpcWireFormatTests
{
    private const int Max = 1 << 20;

    /// <summary>A list of messages, a way to cut their concatenated frames into chunks, and gzip or not.</summary>
    private static Arbitrary<(byte[][] Messages, int[] Cuts, bool Gzip)> Cases() =>
        (from messages in Gen.ArrayOf(Gen.ArrayOf(Gen.Choose(0, 255).Select(i => (byte)i)))
         from cuts in Gen.ArrayOf(Gen.Choose(1, 64))
         from gzip in Gen.Elements(false, true)
         select (messages.Take(20).ToArray(), cuts, gzip)).ToArbitrary();

    private static byte[] Encode(byte[][] messages, bool gzip)
    {
        var output = new MemoryStream();
        foreach (var m in messages)
        {
            if (gzip)
            {
                using var frame = GrpcCompression.CompressFrame(m, CompressionLevel.Fastest);
                output.Write(frame.Buffer, 0, (int)frame.Length);
            }
            else
            {
                var header = new byte[GrpcFraming.HeaderSize];
                GrpcFraming.WriteHeader(header, false, m.Length);
                output.Write(header);
                output.Write(m);
            }
        }
        return output.ToArray();
    }

    private static List<byte[]> Split(byte[] bytes, int[] cuts)
    {
        var chunks = new List<byte[]>();
        var pos = 0;
        var i = 0;
        while (pos < bytes.Length)
        {
            var size = cuts.Length == 0 ? bytes.Length : Math.Min(cuts[i++ % cuts.Length], bytes.Length - pos);
            chunks.Add(bytes[pos..(pos + size)]);
            pos += size;
        }
        return chunks;
    }

    [Fact]
    public void TryReadMessage_ArbitraryMessagesAndSegmentSplits_DecodesExactlyTheMessages()
    {
        Prop.ForAll(Cases(), c =>
        {
            if (c.Gzip)
            {
                return true; // the synchronous decoder hands back compressed payloads; covered by the async test
            }
            var chunks = Split(Encode(c.Messages, false), c.Cuts);
            var decoded = new List<byte[]>();
            // Feed the chunks as they would arrive: after each arrival, decode what is complete; the rest waits.
            var pending = new List<byte[]>();
            foreach (var chunk in chunks)
            {
                pending.Add(chunk);
                var buffer = Segments.Build(pending);
                while (GrpcFraming.TryReadMessage(ref buffer, Max, out var compressed, out var payload))
                {
                    Assert.False(compressed);
                    decoded.Add(payload.ToArray());
                }
                pending = buffer.IsEmpty ? [] : [buffer.ToArray()];
            }
            return pending.Count == 0 && decoded.Count == c.Messages.Length && decoded.Zip(c.Messages).All(p => p.First.AsSpan().SequenceEqual(p.Second));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void ReadNextAsync_ArbitraryMessagesChunksAndGzip_YieldsTheMessagesInOrder()
    {
        Prop.ForAll(Cases(), c =>
        {
            var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, minimumSegmentSize: 16));
            var writer = Task.Run(async () =>
            {
                foreach (var chunk in Split(Encode(c.Messages, c.Gzip), c.Cuts))
                {
                    await pipe.Writer.WriteAsync(chunk);
                }
                await pipe.Writer.CompleteAsync();
            });
            using var reader = new GrpcMessageReader(pipe.Reader, Max, c.Gzip ? GrpcEncoding.Gzip : GrpcEncoding.Identity);
            var decoded = new List<byte[]>();
            while (reader.ReadNextAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult())
            {
                decoded.Add(reader.Current.ToArray());
            }
            writer.GetAwaiter().GetResult();
            return decoded.Count == c.Messages.Length && decoded.Zip(c.Messages).All(p => p.First.AsSpan().SequenceEqual(p.Second));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public async Task ReadNextAsync_StreamEndsInsideFrame_InternalError()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0, 0, 0, 0, 10, 1, 2, 3 });
        await pipe.Writer.CompleteAsync();
        using var reader = new GrpcMessageReader(pipe.Reader, Max, GrpcEncoding.Identity);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => reader.ReadNextAsync(CancellationToken.None).AsTask());

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task ReadNextAsync_CompressedFlagWithIdentityEncoding_InternalError()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 1, 0, 0, 0, 1, 9 });
        await pipe.Writer.CompleteAsync();
        using var reader = new GrpcMessageReader(pipe.Reader, Max, GrpcEncoding.Identity);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => reader.ReadNextAsync(CancellationToken.None).AsTask());

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
        Assert.Contains("identity", ex.Message);
    }

    [Fact]
    public void TryReadMessage_InvalidFlag_InternalError()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 2, 0, 0, 0, 0 });

        var ex = Assert.Throws<GrpcException>(() => GrpcFraming.TryReadMessage(ref buffer, Max, out _, out _));

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public void TryReadMessage_OversizeHeader_RejectedBeforePayloadArrives()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0, 0x7F, 0xFF, 0xFF, 0xFF });

        var ex = Assert.Throws<GrpcException>(() => GrpcFraming.TryReadMessage(ref buffer, 4 * 1024 * 1024, out _, out _));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
        Assert.Equal("received message larger than max (2147483647 vs. 4194304)", ex.Message);
    }

    [Fact]
    public void GrpcMessageEncoding_ArbitraryStrings_RoundTripAndStayPrintableAscii()
    {
        Prop.ForAll<string>(s =>
        {
            s ??= string.Empty;
            // Lone surrogates cannot be UTF-8 encoded; the property is about well-formed text.
            var wellFormed = System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(s));
            var encoded = GrpcMessageEncoding.Encode(wellFormed);
            return encoded.All(ch => ch is >= ' ' and <= '~') && GrpcMessageEncoding.Decode(encoded) == wellFormed;
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData("100% done\nok", "100%25 done%0Aok")]
    [InlineData("plain text", "plain text")]
    [InlineData("ü", "%C3%BC")]
    public void GrpcMessageEncoding_Encode_MatchesSpec(string message, string wire)
    {
        Assert.Equal(wire, GrpcMessageEncoding.Encode(message));
        Assert.Equal(message, GrpcMessageEncoding.Decode(wire));
    }

    [Theory]
    [InlineData("%", "%")]
    [InlineData("%G1x", "%G1x")]
    [InlineData("50%", "50%")]
    public void GrpcMessageEncoding_DecodeMalformedEscape_KeptLiterally(string wire, string expected)
    {
        Assert.Equal(expected, GrpcMessageEncoding.Decode(wire));
    }

    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("7u", 70L)]
    [InlineData("100n", 1L)]
    [InlineData("1n", 1L)]
    [InlineData("99999999H", 99_999_999L * 36_000_000_000L)]
    public void GrpcTimeout_TryParse_AllUnits(string value, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(value, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("10")]
    [InlineData("10s")]
    [InlineData("-1S")]
    [InlineData("123456789S")]
    [InlineData("1.5S")]
    public void GrpcTimeout_TryParse_Malformed_False(string value)
    {
        Assert.False(GrpcTimeout.TryParse(value, out _));
    }

    [Fact]
    // Rounding up to the next unit loses at most one unit, and a unit is chosen only when the value needs more
    // than 8 digits in the finer one, so the error is below 1/100,000 of the timeout.
    public void GrpcTimeout_Format_ParsesBackToAtLeastTheTimeoutWithin8Digits()
    {
        Prop.ForAll((from n in Gen.Choose(1, int.MaxValue) from scale in Gen.Elements(1L, 1000L, 1_000_000L) select n * scale).ToArbitrary(), ticks =>
        {
            var t = TimeSpan.FromTicks(ticks);
            var wire = GrpcTimeout.Format(t);
            return wire.Length <= 9 && GrpcTimeout.TryParse(wire, out var back) && back >= t && (back - t) <= TimeSpan.FromTicks((ticks / 100_000) + TimeSpan.TicksPerMicrosecond);
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(200, GrpcStatusCode.OK)]
    [InlineData(400, GrpcStatusCode.Internal)]
    [InlineData(401, GrpcStatusCode.Unauthenticated)]
    [InlineData(403, GrpcStatusCode.PermissionDenied)]
    [InlineData(404, GrpcStatusCode.Unimplemented)]
    [InlineData(429, GrpcStatusCode.Unavailable)]
    [InlineData(502, GrpcStatusCode.Unavailable)]
    [InlineData(503, GrpcStatusCode.Unavailable)]
    [InlineData(504, GrpcStatusCode.Unavailable)]
    [InlineData(500, GrpcStatusCode.Unknown)]
    [InlineData(415, GrpcStatusCode.Unknown)]
    public void GrpcStatusCodes_FromHttpStatus_FollowsGrpcSpec(int http, GrpcStatusCode expected)
    {
        Assert.Equal(expected, GrpcStatusCodes.FromHttpStatus(http));
    }

    [Fact]
    public void GrpcStatusCodes_ToHttpStatus_EveryCodeMapped()
    {
        var all = Enum.GetValues<GrpcStatusCode>();
        Assert.Equal(17, all.Length);
        Assert.All(all, c => Assert.InRange(GrpcStatusCodes.ToHttpStatus(c), 200, 599));
        Assert.Equal(404, GrpcStatusCodes.ToHttpStatus(GrpcStatusCode.NotFound));
        Assert.Equal(429, GrpcStatusCodes.ToHttpStatus(GrpcStatusCode.ResourceExhausted));
        Assert.Equal(504, GrpcStatusCodes.ToHttpStatus(GrpcStatusCode.DeadlineExceeded));
        Assert.All(all, c => Assert.True(GrpcStatusCodes.TryParse(GrpcStatusCodes.ToWire(c), out var back) && back == c));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("Application/GRPC; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void IsGrpcContentType_Variants(string? contentType, bool expected)
    {
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));
    }

    /// <summary>Builds a multi-segment sequence, one segment per chunk.</summary>
    private sealed class Segments : ReadOnlySequenceSegment<byte>
    {
        private Segments(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public static ReadOnlySequence<byte> Build(List<byte[]> chunks)
        {
            if (chunks.Count == 0)
            {
                return ReadOnlySequence<byte>.Empty;
            }
            var first = new Segments(chunks[0], 0);
            var last = first;
            foreach (var chunk in chunks.Skip(1))
            {
                var next = new Segments(chunk, last.RunningIndex + last.Memory.Length);
                last.Next = next;
                last = next;
            }
            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }
}
