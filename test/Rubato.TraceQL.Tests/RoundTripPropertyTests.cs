using FsCheck;
using FsCheck.Fluent;
using Rubato.TraceQL.Ast;
using Rubato.TraceQL.Parsing;
using Xunit;

namespace Rubato.TraceQL.Tests;

public sealed class RoundTripPropertyTests
{
    private static Arbitrary<RootExpr> Asts() =>
        Arb.From(Gen.Choose(0, int.MaxValue).Select(seed => new RandomAst(seed).Root()));

    [Fact]
    public void Print_RandomAst_ParsesBackToTheSameTree()
    {
        Prop.ForAll(Asts(), ast =>
        {
            string printed = AstPrinter.Print(ast);
            RootExpr reparsed;
            try
            {
                reparsed = TraceQLParser.Parse(printed);
            }
            catch (TraceQLParseException ex)
            {
                return Prop.Label(false, $"{printed}\n{ex.Message}");
            }

            bool equal = ast.Equals(reparsed);
            return Prop.Label(equal, equal ? string.Empty : $"printed:  {printed}\nreprinted: {AstPrinter.Print(reparsed)}");
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Print_RandomAst_IsAFixpointOfParseThenPrint()
    {
        Prop.ForAll(Asts(), ast =>
        {
            string printed = AstPrinter.Print(ast);
            string again = AstPrinter.Print(TraceQLParser.Parse(printed));
            return Prop.Label(printed == again, $"{printed}\n{again}");
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Validate_RandomAst_ThrowsOnlyTraceQLExceptions()
    {
        Prop.ForAll(Asts(), ast =>
        {
            try
            {
                TraceQLParser.Parse(AstPrinter.Print(ast)).Validate();
            }
            catch (TraceQLValidationException)
            {
            }
            catch (TraceQLUnsupportedException)
            {
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Parse_RandomText_ThrowsOnlyParseExceptions()
    {
        var alphabet = "{}()|&!=<>~.,:+-*/%^\"`\\ abcdefghijklmnopqrstuvwxyz0123456789_µé\n".ToCharArray();
        var texts = Arb.From(Gen.Choose(0, int.MaxValue).Select(seed =>
        {
            var r = new Random(seed);
            var chars = new char[r.Next(0, 40)];
            for (int i = 0; i < chars.Length; i++)
            {
                chars[i] = alphabet[r.Next(alphabet.Length)];
            }

            return new string(chars);
        }));
        Prop.ForAll(texts, text =>
        {
            try
            {
                var root = TraceQLParser.Parse(text);
                Assert.Equal(root, TraceQLParser.Parse(AstPrinter.Print(root)));
            }
            catch (TraceQLParseException ex)
            {
                Assert.InRange(ex.Offset, 0, text.Length);
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Parse_MutatedCorpusLikeQueries_ThrowOnlyParseExceptions()
    {
        string[] seeds =
        [
            "{ span.http.status_code >= 500 && resource.service.name = \"api\" } | count() > 2",
            "({ .a } | rate() by (span.x)) / ({ } | rate()) | topk(5) with(sample=true)",
            "{ .a } >> { .b } &~ { .c } | select(span:duration, .d)",
        ];
        var mutants = Arb.From(Gen.Choose(0, int.MaxValue).Select(seed =>
        {
            var r = new Random(seed);
            var s = seeds[r.Next(seeds.Length)].ToCharArray().ToList();
            int edits = r.Next(1, 4);
            for (int i = 0; i < edits && s.Count > 0; i++)
            {
                int at = r.Next(s.Count);
                switch (r.Next(3))
                {
                    case 0: s.RemoveAt(at); break;
                    case 1: s.Insert(at, "{}()|&!=<>~.\"`"[r.Next(14)]); break;
                    default: s[at] = s[r.Next(s.Count)]; break;
                }
            }

            return new string(s.ToArray());
        }));
        Prop.ForAll(mutants, text =>
        {
            try
            {
                var root = TraceQLParser.Parse(text);
                Assert.Equal(root, TraceQLParser.Parse(AstPrinter.Print(root)));
                try
                {
                    root.Validate();
                }
                catch (TraceQLValidationException)
                {
                }
                catch (TraceQLUnsupportedException)
                {
                }
            }
            catch (TraceQLParseException)
            {
            }
        }).QuickCheckThrowOnFailure();
    }
}
