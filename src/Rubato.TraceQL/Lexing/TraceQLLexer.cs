using System.Globalization;
using System.Text;
using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Lexing;

/// <summary>
/// Hand-written TraceQL lexer over a span of the query text, following Tempo's lexer.go:
/// attribute names run until whitespace or one of <c>{ } ( ) = ~ ! &lt; &gt; &amp; | ^ ,</c> (so <c>.a-b/c:d</c> is one name)
/// and may contain quoted parts (<c>span."foo bar"</c>, escapes <c>\"</c> and <c>\\</c>);
/// a number directly followed by duration units (<c>1h30m</c>, <c>1.5s</c>, <c>5µs</c>, <c>2d</c>) is a duration;
/// strings are Go-quoted (<c>"..."</c> with Go escapes) or raw (<c>`...`</c>).
/// </summary>
/// <remarks>Single pass, no backtracking beyond a bounded peek; allocates only for names and string values.</remarks>
public ref struct TraceQLLexer
{
    private readonly ReadOnlySpan<char> _text;
    private int _pos;

    public TraceQLLexer(ReadOnlySpan<char> text)
    {
        _text = text;
        _pos = 0;
    }

    /// <summary>All tokens of <paramref name="text"/>, ending with one <see cref="TokenKind.EndOfInput"/>.</summary>
    public static List<Token> Tokenize(ReadOnlySpan<char> text)
    {
        var lexer = new TraceQLLexer(text);
        var list = new List<Token>(Math.Max(4, text.Length / 3));
        while (true)
        {
            var t = lexer.Next();
            list.Add(t);
            if (t.Kind == TokenKind.EndOfInput)
            {
                return list;
            }
        }
    }

    /// <summary>The next token; <see cref="TokenKind.EndOfInput"/> at the end (and on every later call).</summary>
    public Token Next()
    {
        SkipWhitespaceAndComments();

        int start = _pos;
        if (_pos >= _text.Length)
        {
            return new Token(TokenKind.EndOfInput, start, 0);
        }

        char c = _text[_pos];
        switch (c)
        {
            case '{': return Simple(TokenKind.OpenBrace, 1);
            case '}': return Simple(TokenKind.CloseBrace, 1);
            case '(': return Simple(TokenKind.OpenParen, 1);
            case ')': return Simple(TokenKind.CloseParen, 1);
            case ',': return Simple(TokenKind.Comma, 1);
            case '+': return Simple(TokenKind.Plus, 1);
            case '-': return Simple(TokenKind.Minus, 1);
            case '*': return Simple(TokenKind.Star, 1);
            case '/': return Simple(TokenKind.Slash, 1);
            case '%': return Simple(TokenKind.Percent, 1);
            case '^': return Simple(TokenKind.Caret, 1);
            case '~': return Simple(TokenKind.Tilde, 1);
            case '|': return Peek(1) == '|' ? Simple(TokenKind.Or, 2) : Simple(TokenKind.Pipe, 1);
            case '=': return Peek(1) == '~' ? Simple(TokenKind.Regex, 2) : Simple(TokenKind.Equal, 1);
            case '>':
                return Peek(1) switch
                {
                    '=' => Simple(TokenKind.GreaterEqual, 2),
                    '>' => Simple(TokenKind.Descendant, 2),
                    _ => Simple(TokenKind.Greater, 1),
                };
            case '<':
                return Peek(1) switch
                {
                    '=' => Simple(TokenKind.LessEqual, 2),
                    '<' => Simple(TokenKind.Ancestor, 2),
                    _ => Simple(TokenKind.Less, 1),
                };
            case '!':
                return Peek(1) switch
                {
                    '=' => Simple(TokenKind.NotEqual, 2),
                    '~' => Simple(TokenKind.NotRegex, 2),
                    '>' => Peek(2) == '>' ? Simple(TokenKind.NotDescendant, 3) : Simple(TokenKind.NotChild, 2),
                    '<' => Peek(2) == '<' ? Simple(TokenKind.NotAncestor, 3) : Simple(TokenKind.NotParent, 2),
                    _ => Simple(TokenKind.Not, 1),
                };
            case '&':
                return Peek(1) switch
                {
                    '&' => Simple(TokenKind.And, 2),
                    '~' => Simple(TokenKind.UnionSibling, 2),
                    '>' => Peek(2) == '>' ? Simple(TokenKind.UnionDescendant, 3) : Simple(TokenKind.UnionChild, 2),
                    '<' => Peek(2) == '<' ? Simple(TokenKind.UnionAncestor, 3) : Simple(TokenKind.UnionParent, 2),
                    _ => throw Error(start, "unexpected '&'", "did you mean '&&'?"),
                };
            case '"':
                return LexString();
            case '`':
                return LexRawString();
            case '.':
                if (char.IsAsciiDigit(Peek(1)))
                {
                    return LexNumber();
                }

                _pos++;
                return LexAttribute(start, AttributeScope.None, parent: false, ".");
            default:
                if (char.IsAsciiDigit(c))
                {
                    return LexNumber();
                }

                if (char.IsLetter(c) || c == '_')
                {
                    return LexWord();
                }

                throw Error(start, $"unexpected character {Describe(c)}", null);
        }
    }

    /// <summary>Whitespace, and Go-style <c>// line</c> and <c>/* block */</c> comments, which Tempo's Go scanner skips.</summary>
    private void SkipWhitespaceAndComments()
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (char.IsWhiteSpace(c))
            {
                _pos++;
            }
            else if (c == '/' && Peek(1) == '/')
            {
                int nl = _text[_pos..].IndexOf('\n');
                _pos = nl < 0 ? _text.Length : _pos + nl + 1;
            }
            else if (c == '/' && Peek(1) == '*')
            {
                int close = _text[(_pos + 2)..].IndexOf("*/");
                if (close < 0)
                {
                    throw Error(_pos, "unterminated comment", "expected '*/'");
                }

                _pos += close + 4;
            }
            else
            {
                return;
            }
        }
    }

    /// <summary>Characters that end an unquoted attribute name (Tempo's isAttributeRune, negated).</summary>
    public static bool IsAttributeChar(char c) =>
        !char.IsWhiteSpace(c) && c is not ('{' or '}' or '(' or ')' or '=' or '~' or '!' or '<' or '>' or '&' or '|' or '^' or ',');

    private readonly char Peek(int ahead) => _pos + ahead < _text.Length ? _text[_pos + ahead] : '\0';

    private Token Simple(TokenKind kind, int length)
    {
        var t = new Token(kind, _pos, length);
        _pos += length;
        return t;
    }

    private Token LexWord()
    {
        int start = _pos;
        while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] == '_'))
        {
            _pos++;
        }

        var word = _text[start.._pos];
        char next = _pos < _text.Length ? _text[_pos] : '\0';

        if (next == '.')
        {
            AttributeScope scope;
            bool isScope = true;
            switch (word)
            {
                case "span": scope = AttributeScope.Span; break;
                case "resource": scope = AttributeScope.Resource; break;
                case "event": scope = AttributeScope.Event; break;
                case "link": scope = AttributeScope.Link; break;
                case "instrumentation": scope = AttributeScope.Instrumentation; break;
                case "parent": scope = AttributeScope.None; break;
                default: scope = default; isScope = false; break;
            }

            if (isScope)
            {
                _pos++;
                bool parent = word.SequenceEqual("parent");
                if (parent)
                {
                    // parent. may be followed by span. or resource. (Tempo's tryScopeAttribute)
                    var rest = _text[_pos..];
                    if (rest.StartsWith("span."))
                    {
                        scope = AttributeScope.Span;
                        _pos += 5;
                    }
                    else if (rest.StartsWith("resource."))
                    {
                        scope = AttributeScope.Resource;
                        _pos += 9;
                    }
                }

                return LexAttribute(start, scope, parent, _text[start.._pos].ToString());
            }
        }

        if (next == ':' && word is "span" or "trace" or "event" or "link" or "instrumentation")
        {
            int nameStart = _pos + 1;
            int p = nameStart;
            while (p < _text.Length && (char.IsLetterOrDigit(_text[p]) || _text[p] == '_'))
            {
                p++;
            }

            var name = _text[nameStart..p];
            if (name.IsEmpty)
            {
                throw Error(nameStart, $"expected an intrinsic name after '{word}:'", $"{word}: offers {Intrinsics.NamesOf(word)}");
            }

            if (!Intrinsics.TryScoped(word, name, out var scoped))
            {
                throw Error(start, $"unknown intrinsic '{word}:{name}'", $"{word}: offers {Intrinsics.NamesOf(word)}");
            }

            _pos = p;
            return new Token(TokenKind.Intrinsic, start, p - start) { Intrinsic = scoped };
        }

        // minInt / maxInt (Tempo 2.10): the 64-bit integer limits, usable wherever an integer is.
        if (word is "minInt" or "maxInt")
        {
            return new Token(TokenKind.Integer, start, _pos - start) { Int = word[1] == 'i' ? long.MinValue : long.MaxValue };
        }

        var kind = Keyword(word);
        if (kind == TokenKind.Identifier)
        {
            if (Intrinsics.TryLegacy(word, out var legacy))
            {
                return new Token(TokenKind.Intrinsic, start, _pos - start) { Intrinsic = legacy };
            }

            return new Token(TokenKind.Identifier, start, _pos - start) { Text = word.ToString() };
        }

        return new Token(kind, start, _pos - start);
    }

    private static TokenKind Keyword(ReadOnlySpan<char> w) => w switch
    {
        "true" => TokenKind.True,
        "false" => TokenKind.False,
        "nil" => TokenKind.Nil,
        "ok" => TokenKind.StatusOk,
        "error" => TokenKind.StatusError,
        "unset" => TokenKind.StatusUnset,
        "unspecified" => TokenKind.KindUnspecified,
        "internal" => TokenKind.KindInternal,
        "server" => TokenKind.KindServer,
        "client" => TokenKind.KindClient,
        "producer" => TokenKind.KindProducer,
        "consumer" => TokenKind.KindConsumer,
        "count" => TokenKind.Count,
        "avg" => TokenKind.Avg,
        "min" => TokenKind.Min,
        "max" => TokenKind.Max,
        "sum" => TokenKind.Sum,
        "by" => TokenKind.By,
        "coalesce" => TokenKind.Coalesce,
        "select" => TokenKind.Select,
        "with" => TokenKind.With,
        "rate" => TokenKind.Rate,
        "count_over_time" => TokenKind.CountOverTime,
        "min_over_time" => TokenKind.MinOverTime,
        "max_over_time" => TokenKind.MaxOverTime,
        "sum_over_time" => TokenKind.SumOverTime,
        "avg_over_time" => TokenKind.AvgOverTime,
        "quantile_over_time" => TokenKind.QuantileOverTime,
        "histogram_over_time" => TokenKind.HistogramOverTime,
        "compare" => TokenKind.Compare,
        "topk" => TokenKind.TopK,
        "bottomk" => TokenKind.BottomK,
        _ => TokenKind.Identifier,
    };

    /// <summary>Reads an attribute name after its scope prefix (already consumed); <paramref name="start"/> is the prefix start.</summary>
    private Token LexAttribute(int start, AttributeScope scope, bool parent, string prefix)
    {
        int nameStart = _pos;
        StringBuilder? sb = null;
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c == '"')
            {
                sb ??= new StringBuilder().Append(_text[nameStart.._pos]);
                int quoteStart = _pos;
                _pos++;
                bool closed = false;
                while (_pos < _text.Length)
                {
                    char q = _text[_pos];
                    if (q == '"')
                    {
                        _pos++;
                        closed = true;
                        break;
                    }

                    if (q == '\\')
                    {
                        char e = Peek(1);
                        if (e is not ('"' or '\\'))
                        {
                            throw Error(_pos, "invalid escape sequence in quoted attribute name", "only \\\" and \\\\ are allowed");
                        }

                        sb.Append(e);
                        _pos += 2;
                        continue;
                    }

                    sb.Append(q);
                    _pos++;
                }

                if (!closed)
                {
                    throw Error(quoteStart, "unterminated quoted attribute name", "expected a closing '\"'");
                }
            }
            else if (IsAttributeChar(c))
            {
                sb?.Append(c);
                _pos++;
            }
            else
            {
                break;
            }
        }

        if (_pos == nameStart)
        {
            throw Error(_pos, $"expected an attribute name after '{prefix}'", null);
        }

        string name = sb is null ? _text[nameStart.._pos].ToString() : sb.ToString();
        return new Token(TokenKind.Attribute, start, _pos - start) { Scope = scope, Parent = parent, Text = name };
    }

    private Token LexNumber()
    {
        int start = _pos;
        bool isFloat = false;
        while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
        {
            _pos++;
        }

        if (Peek(0) == '.' && char.IsAsciiDigit(Peek(1)))
        {
            isFloat = true;
            _pos++;
            while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
            {
                _pos++;
            }
        }

        if (Peek(0) is 'e' or 'E' && (char.IsAsciiDigit(Peek(1)) || (Peek(1) is '+' or '-' && char.IsAsciiDigit(Peek(2)))))
        {
            isFloat = true;
            _pos += 2;
            while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
            {
                _pos++;
            }
        }

        int numberEnd = _pos;

        // Like Tempo's tryScanDuration: gather digits, '.', and unit letters up to the next other character,
        // and if number+suffix is a valid duration, the whole thing is one duration token.
        int p = numberEnd;
        while (p < _text.Length && (char.IsAsciiDigit(_text[p]) || _text[p] == '.' || IsDurationChar(_text[p])))
        {
            p++;
        }

        if (p > numberEnd)
        {
            if (DurationParser.TryParse(_text[start..p], out long nanos, out bool overflow))
            {
                _pos = p;
                return new Token(TokenKind.Duration, start, p - start) { Int = nanos };
            }

            if (overflow)
            {
                throw Error(start, $"duration '{_text[start..p]}' is out of range", "the largest duration is about 292 years");
            }
        }

        var text = _text[start..numberEnd];
        if (isFloat)
        {
            double d = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
            if (double.IsInfinity(d))
            {
                throw Error(start, $"number '{text}' is out of range", null);
            }

            return new Token(TokenKind.Float, start, numberEnd - start) { Float = d };
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
        {
            throw Error(start, $"integer '{text}' is out of range", "integers are 64-bit");
        }

        return new Token(TokenKind.Integer, start, numberEnd - start) { Int = value };
    }

    private static bool IsDurationChar(char c) => c is 'n' or 's' or 'u' or 'm' or 'h' or 'µ' or 'μ' or 'd' or 'w' or 'y';

    private Token LexString()
    {
        int start = _pos;
        _pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _text.Length || _text[_pos] == '\n')
            {
                throw Error(start, "unterminated string", "expected a closing '\"'");
            }

            char c = _text[_pos];
            if (c == '"')
            {
                _pos++;
                return new Token(TokenKind.String, start, _pos - start) { Text = sb.ToString() };
            }

            if (c != '\\')
            {
                sb.Append(c);
                _pos++;
                continue;
            }

            int escStart = _pos;
            char e = Peek(1);
            _pos += 2;
            switch (e)
            {
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case '\\': sb.Append('\\'); break;
                case '"': sb.Append('"'); break;
                case 'x': AppendCodePoint(sb, ReadHex(escStart, 2), escStart); break;
                case 'u': AppendCodePoint(sb, ReadHex(escStart, 4), escStart); break;
                case 'U': AppendCodePoint(sb, ReadHex(escStart, 8), escStart); break;
                case >= '0' and <= '7':
                    {
                        int v = e - '0';
                        for (int i = 0; i < 2; i++)
                        {
                            char o = Peek(0);
                            if (o is < '0' or > '7')
                            {
                                throw Error(escStart, "invalid octal escape in string", "octal escapes have three digits, e.g. \\101");
                            }

                            v = (v * 8) + (o - '0');
                            _pos++;
                        }

                        if (v > 255)
                        {
                            throw Error(escStart, "octal escape value > 255 in string", null);
                        }

                        sb.Append((char)v);
                        break;
                    }

                default:
                    throw Error(escStart, $"invalid escape sequence '\\{(e == '\0' ? string.Empty : e.ToString())}' in string",
                        "valid escapes are \\\" \\\\ \\n \\t \\r \\a \\b \\f \\v \\xHH \\uHHHH \\UHHHHHHHH; use a `raw string` for regexes");
            }
        }
    }

    private int ReadHex(int escStart, int digits)
    {
        int v = 0;
        for (int i = 0; i < digits; i++)
        {
            char h = Peek(0);
            int d = h switch
            {
                >= '0' and <= '9' => h - '0',
                >= 'a' and <= 'f' => h - 'a' + 10,
                >= 'A' and <= 'F' => h - 'A' + 10,
                _ => -1,
            };
            if (d < 0)
            {
                throw Error(escStart, "invalid hex escape in string", $"expected {digits} hex digits");
            }

            v = (v * 16) + d;
            _pos++;
        }

        return v;
    }

    private readonly void AppendCodePoint(StringBuilder sb, int cp, int escStart)
    {
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        {
            throw Error(escStart, "escape sequence is not a valid Unicode code point", null);
        }

        sb.Append(char.ConvertFromUtf32(cp));
    }

    private Token LexRawString()
    {
        int start = _pos;
        int close = _text[(_pos + 1)..].IndexOf('`');
        if (close < 0)
        {
            throw Error(start, "unterminated raw string", "expected a closing '`'");
        }

        var body = _text.Slice(_pos + 1, close);
        _pos += close + 2;

        // Go drops carriage returns from raw strings.
        string value = body.Contains('\r') ? body.ToString().Replace("\r", string.Empty, StringComparison.Ordinal) : body.ToString();
        return new Token(TokenKind.String, start, _pos - start) { Text = value };
    }

    private static string Describe(char c) =>
        char.IsControl(c) ? $"U+{(int)c:X4}" : $"'{c}'";

    private readonly TraceQLParseException Error(int offset, string problem, string? hint) =>
        ParseErrors.Create(_text, offset, problem, hint);
}

/// <summary>Builds <see cref="TraceQLParseException"/>s with messages like <c>unexpected '}' at line 1 col 14: expected an expression</c>.</summary>
public static class ParseErrors
{
    public static TraceQLParseException Create(ReadOnlySpan<char> text, int offset, string problem, string? hint)
    {
        var (line, col) = SourcePosition.LineColumn(text, offset);
        string message = hint is null ? $"{problem} at line {line} col {col}" : $"{problem} at line {line} col {col}: {hint}";
        return new TraceQLParseException(message, offset, line, col);
    }
}

/// <summary>
/// Durations as Tempo accepts them (Prometheus units y w d h m s ms, plus Go's ns us µs and fractions):
/// one or more number+unit segments, e.g. <c>1h30m</c>, <c>1.5s</c>, <c>100ms</c>. Result in nanoseconds.
/// </summary>
public static class DurationParser
{
    public static bool TryParse(ReadOnlySpan<char> s, out long nanoseconds, out bool overflow)
    {
        nanoseconds = 0;
        overflow = false;
        if (s.IsEmpty)
        {
            return false;
        }

        decimal total = 0;
        int i = 0;
        while (i < s.Length)
        {
            int numStart = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (i < s.Length && s[i] == '.')
            {
                i++;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    i++;
                }
            }

            var num = s[numStart..i];
            if (num.IsEmpty || num.SequenceEqual(".") || num.Length > 25)
            {
                return false;
            }

            long unit;
            if (s[i..].StartsWith("ns"))
            {
                unit = 1;
                i += 2;
            }
            else if (s[i..].StartsWith("us") || s[i..].StartsWith("µs") || s[i..].StartsWith("μs"))
            {
                unit = 1_000;
                i += 2;
            }
            else if (s[i..].StartsWith("ms"))
            {
                unit = 1_000_000;
                i += 2;
            }
            else if (i < s.Length)
            {
                unit = s[i] switch
                {
                    's' => 1_000_000_000L,
                    'm' => 60L * 1_000_000_000,
                    'h' => 3600L * 1_000_000_000,
                    'd' => 24L * 3600 * 1_000_000_000,
                    'w' => 7L * 24 * 3600 * 1_000_000_000,
                    'y' => 365L * 24 * 3600 * 1_000_000_000,
                    _ => 0,
                };
                if (unit == 0)
                {
                    return false;
                }

                i++;
            }
            else
            {
                return false;
            }

            decimal value = decimal.Parse(num, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            total += value * unit;
            if (total > long.MaxValue)
            {
                overflow = true;
                return false;
            }
        }

        nanoseconds = (long)decimal.Truncate(total);
        return true;
    }
}
