using System.Text;
using Rubato.Common.Otlp;

namespace Rubato.Common.Tests.Otlp;

/// <summary>
/// Data-driven malformed inputs under Corpus/. Protobuf cases are hex files whose header lines say what
/// <see cref="OtlpTraceSplitter.Split"/> (<c># split:</c>) and <see cref="OtlpProto.DecodeTrace"/> (<c># decode:</c>)
/// must do: <c>ok</c>, or <c>ExceptionType: message substring</c>. JSON cases start with <c>// expect: substring</c>
/// (the decoder skips comments) and must fail with <see cref="OtlpFormatException"/>.
/// </summary>
public class OtlpCorpusTests
{
    private static string CorpusDir(string kind) => Path.Combine(AppContext.BaseDirectory, "Corpus", kind);

    public static TheoryData<string> ProtoCases()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(CorpusDir("proto"), "*.hex").OrderBy(x => x, StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(f));
        }

        return data;
    }

    public static TheoryData<string> JsonCases()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(CorpusDir("json"), "*.json").OrderBy(x => x, StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(f));
        }

        return data;
    }

    [Fact]
    public void Corpus_Present_HasCasesOfBothKinds()
    {
        Assert.True(ProtoCases().Count >= 10);
        Assert.True(JsonCases().Count >= 10);
    }

    [Theory]
    [MemberData(nameof(ProtoCases))]
    public void ProtoCorpus_Case_FailsAsExpected(string file)
    {
        string[] lines = File.ReadAllLines(Path.Combine(CorpusDir("proto"), file));
        string split = Header(lines, "# split:");
        string decode = Header(lines, "# decode:");
        byte[] bytes = Convert.FromHexString(string.Concat(lines.Where(l => !l.StartsWith('#')).SelectMany(l => l.Where(char.IsAsciiHexDigit))));
        Check(split, () => OtlpTraceSplitter.Split(bytes, new OtlpSplitOptions(16)).Dispose());
        Check(decode, () => OtlpProto.DecodeTrace(bytes));
    }

    [Theory]
    [MemberData(nameof(JsonCases))]
    public void JsonCorpus_Case_FailsWithNamedProblem(string file)
    {
        string text = File.ReadAllText(Path.Combine(CorpusDir("json"), file));
        string expected = Header(text.Split('\n'), "// expect:");
        var ex = Assert.Throws<OtlpFormatException>(() => OtlpJson.DecodeExportRequest(Encoding.UTF8.GetBytes(text)));
        Assert.Contains(expected, ex.Message);
    }

    private static string Header(string[] lines, string prefix) =>
        lines.Single(l => l.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..].Trim();

    private static void Check(string expectation, Action action)
    {
        if (expectation == "ok")
        {
            action();
            return;
        }

        int colon = expectation.IndexOf(':', StringComparison.Ordinal);
        string type = expectation[..colon];
        string message = expectation[(colon + 1)..].Trim();
        var ex = Record.Exception(action);
        Assert.NotNull(ex);
        Assert.Equal(type, ex.GetType().Name);
        Assert.Contains(message, ex.Message);
    }
}
