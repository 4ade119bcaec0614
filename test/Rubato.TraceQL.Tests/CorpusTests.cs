using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Parsing;
using Xunit;
using YamlDotNet.Serialization;

namespace Rubato.TraceQL.Tests;

/// <summary>Drives Corpus/queries.yaml: one theory per outcome group.</summary>
public sealed class CorpusTests
{
    private static readonly Lazy<Dictionary<string, List<(string Query, string? Canonical)>>> s_corpus = new(Load);

    public static TheoryData<string, string?> Valid() => Rows("valid");

    public static TheoryData<string, string?> ParseFails() => Rows("parse_fails");

    public static TheoryData<string, string?> ValidateFails() => Rows("validate_fails");

    public static TheoryData<string, string?> Unsupported() => Rows("unsupported");

    [Fact]
    public void Corpus_AllGroups_HaveEnoughQueries()
    {
        var c = s_corpus.Value;
        Assert.True(c["valid"].Count >= 250, $"valid: {c["valid"].Count}");
        Assert.True(c["parse_fails"].Count >= 80, $"parse_fails: {c["parse_fails"].Count}");
        Assert.True(c["validate_fails"].Count >= 60, $"validate_fails: {c["validate_fails"].Count}");
        Assert.True(c["unsupported"].Count >= 22, $"unsupported: {c["unsupported"].Count}");
        Assert.True(c.Values.Sum(v => v.Count) >= 400);
    }

    [Fact]
    public void Corpus_Queries_AreUniqueAcrossGroups()
    {
        var all = s_corpus.Value.Values.SelectMany(v => v).Select(e => e.Query).ToList();
        var dupes = all.GroupBy(q => q).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(dupes);
    }

    [Theory]
    [MemberData(nameof(Valid))]
    public void Parse_ValidCorpusQuery_ValidatesAndRoundTrips(string query, string? canonical)
    {
        var root = TraceQLParser.Parse(query);
        root.Validate();

        string printed = AstPrinter.Print(root);
        if (canonical is not null)
        {
            Assert.Equal(canonical, printed);
        }

        var reparsed = TraceQLParser.Parse(printed);
        Assert.Equal(root, reparsed);
        Assert.Equal(printed, AstPrinter.Print(reparsed));
        reparsed.Validate();
    }

    [Theory]
    [MemberData(nameof(ParseFails))]
    public void Parse_ParseFailsCorpusQuery_ThrowsParseExceptionWithPosition(string query, string? canonical)
    {
        Assert.Null(canonical);
        var ex = Assert.Throws<TraceQLParseException>(() => TraceQLParser.Parse(query));
        Assert.Contains($"at line {ex.Line} col {ex.Column}", ex.Message, StringComparison.Ordinal);
        Assert.InRange(ex.Offset, 0, query.Length);
    }

    [Theory]
    [MemberData(nameof(ValidateFails))]
    public void Validate_ValidateFailsCorpusQuery_ThrowsValidationException(string query, string? canonical)
    {
        Assert.Null(canonical);
        var root = TraceQLParser.Parse(query);
        var ex = Assert.Throws<TraceQLValidationException>(root.Validate);
        Assert.InRange(ex.Offset, 0, query.Length);

        // The printed form must fail the same way.
        var reparsed = TraceQLParser.Parse(AstPrinter.Print(root));
        Assert.Equal(root, reparsed);
        Assert.Throws<TraceQLValidationException>(reparsed.Validate);
    }

    [Theory]
    [MemberData(nameof(Unsupported))]
    public void Validate_UnsupportedCorpusQuery_ThrowsUnsupportedException(string query, string? canonical)
    {
        Assert.Null(canonical);
        var root = TraceQLParser.Parse(query);
        var ex = Assert.Throws<TraceQLUnsupportedException>(root.Validate);
        Assert.Contains("not yet supported", ex.Message, StringComparison.Ordinal);
        Assert.InRange(ex.Offset, 0, query.Length);
        Assert.Equal(root, TraceQLParser.Parse(AstPrinter.Print(root)));
    }

    private static TheoryData<string, string?> Rows(string group)
    {
        var data = new TheoryData<string, string?>();
        foreach (var (q, c) in s_corpus.Value[group])
        {
            data.Add(q, c);
        }

        return data;
    }

    private static Dictionary<string, List<(string, string?)>> Load()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Corpus", "queries.yaml");
        var raw = new DeserializerBuilder().Build().Deserialize<Dictionary<string, List<object>>>(File.ReadAllText(path));
        var result = new Dictionary<string, List<(string, string?)>>();
        foreach (var (group, items) in raw)
        {
            var list = new List<(string, string?)>();
            foreach (var item in items ?? [])
            {
                switch (item)
                {
                    case string s:
                        list.Add((s, null));
                        break;
                    case Dictionary<object, object> map:
                        list.Add(((string)map["q"], map.TryGetValue("canonical", out var c) ? (string)c : null));
                        break;
                    case null:
                        list.Add((string.Empty, null));
                        break;
                    default:
                        throw new InvalidDataException($"corpus group {group}: unexpected entry {item}");
                }
            }

            result[group] = list;
        }

        return result;
    }
}
