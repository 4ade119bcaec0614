namespace Rubato.TraceQL;

/// <summary>Base of every error the TraceQL front end raises; <see cref="Offset"/> is a UTF-16 index into the query.</summary>
public abstract class TraceQLException : Exception
{
    protected TraceQLException(string message, int offset)
        : base(message)
    {
        Offset = offset;
    }

    /// <summary>Zero-based UTF-16 offset of the problem in the query text, or -1 when the node has no source position.</summary>
    public int Offset { get; }
}

/// <summary>The query text is not TraceQL: a lexical or syntax error. The message names the problem and its line/column.</summary>
public sealed class TraceQLParseException : TraceQLException
{
    public TraceQLParseException(string message, int offset, int line, int column)
        : base(message, offset)
    {
        Line = line;
        Column = column;
    }

    /// <summary>One-based line of <see cref="TraceQLException.Offset"/>.</summary>
    public int Line { get; }

    /// <summary>One-based column (in UTF-16 chars) of <see cref="TraceQLException.Offset"/>.</summary>
    public int Column { get; }
}

/// <summary>The query parses but is meaningless: a type error or a construct Tempo rejects after parsing.</summary>
public sealed class TraceQLValidationException : TraceQLException
{
    public TraceQLValidationException(string message, int offset)
        : base(message, offset)
    {
    }
}

/// <summary>The query parses and is well-typed, but uses a feature Tempo (and therefore Rubato) does not support yet.</summary>
public sealed class TraceQLUnsupportedException : TraceQLException
{
    public TraceQLUnsupportedException(string message, int offset)
        : base(message, offset)
    {
    }
}

/// <summary>Turns offsets into one-based line/column pairs; only used on the error path.</summary>
public static class SourcePosition
{
    public static (int Line, int Column) LineColumn(ReadOnlySpan<char> text, int offset)
    {
        int line = 1;
        int col = 1;
        int end = Math.Min(Math.Max(offset, 0), text.Length);
        for (int i = 0; i < end; i++)
        {
            if (text[i] == '\n')
            {
                line++;
                col = 1;
            }
            else
            {
                col++;
            }
        }

        return (line, col);
    }
}
