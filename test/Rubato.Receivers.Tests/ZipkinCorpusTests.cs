using Rubato.Receivers.Tests.Support;
using Rubato.Receivers.Zipkin;
using Xunit;

namespace Rubato.Receivers.Tests;

/// <summary>
/// Data-driven: every <c>Corpus/zipkin/NAME.json</c> is translated and compared with <c>NAME.expected.txt</c>
/// (files starting <c>v1-</c> are Zipkin v1 JSON); every <c>Corpus/zipkin-malformed/NAME.json</c> must fail with a
/// <see cref="TraceFormatException"/> whose message contains <c>NAME.error.txt</c>.
/// </summary>
public class ZipkinCorpusTests
{
    private static string CorpusDir(string name) => Path.Combine(AppContext.BaseDirectory, "Corpus", name);

    public static TheoryData<string> ValidCases()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(CorpusDir("zipkin"), "*.json").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileNameWithoutExtension(f));
        }

        return data;
    }

    public static TheoryData<string> MalformedCases()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(CorpusDir("zipkin-malformed"), "*.json").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileNameWithoutExtension(f));
        }

        return data;
    }

    [Fact]
    public void Corpus_HasCases()
    {
        Assert.True(ValidCases().Count >= 4);
        Assert.True(MalformedCases().Count >= 10);
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void ToTrace_CorpusCase_MatchesExpected(string name)
    {
        byte[] json = File.ReadAllBytes(Path.Combine(CorpusDir("zipkin"), name + ".json"));
        string expected = File.ReadAllText(Path.Combine(CorpusDir("zipkin"), name + ".expected.txt")).Replace("\r\n", "\n", StringComparison.Ordinal);
        var spans = name.StartsWith("v1-", StringComparison.Ordinal) ? ZipkinJsonDecoder.DecodeV1(json) : ZipkinJsonDecoder.DecodeV2(json);
        Assert.Equal(expected, TraceDump.Dump(ZipkinTranslator.ToTrace(spans)));
    }

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void ToTrace_MalformedCase_FailsWithClearError(string name)
    {
        byte[] json = File.ReadAllBytes(Path.Combine(CorpusDir("zipkin-malformed"), name + ".json"));
        string expected = File.ReadAllText(Path.Combine(CorpusDir("zipkin-malformed"), name + ".error.txt")).Trim();
        var ex = Assert.Throws<TraceFormatException>(() =>
        {
            var spans = name.StartsWith("v1-", StringComparison.Ordinal) ? ZipkinJsonDecoder.DecodeV1(json) : ZipkinJsonDecoder.DecodeV2(json);
            ZipkinTranslator.ToTrace(spans);
        });
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DecodeV2_EmptyArray_NoSpans()
    {
        Assert.Empty(ZipkinJsonDecoder.DecodeV2("[]"u8));
        Assert.Empty(ZipkinTranslator.ToTrace([]).ResourceSpans);
    }

    [Fact]
    public void DecodeV2_EveryTruncation_ThrowsTraceFormatException()
    {
        byte[] json = File.ReadAllBytes(Path.Combine(CorpusDir("zipkin"), "basic-v2.json"));
        for (int len = 0; len < json.Length - 1; len++)
        {
            var prefix = json[..len];
            if (prefix.AsSpan().Trim(" \n\r"u8).Length == json.AsSpan().Trim(" \n\r"u8).Length)
            {
                continue;
            }

            var ex = Record.Exception(() => ZipkinTranslator.ToTrace(ZipkinJsonDecoder.DecodeV2(prefix)));
            Assert.True(ex is TraceFormatException, $"prefix of {len} bytes gave {ex?.GetType().Name ?? "no error"}");
        }
    }
}
