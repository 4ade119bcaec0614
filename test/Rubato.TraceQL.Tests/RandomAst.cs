using Rubato.TraceQL.Ast;

namespace Rubato.TraceQL.Tests;

/// <summary>
/// Random ASTs in the normal form the parser produces: no operation between two constants (those fold), no unary
/// operator directly on a constant, no <c>nil</c> (rewritten to existence tests), and nested pipelines of two or more
/// stages (parentheses alone create no node).
/// </summary>
internal sealed class RandomAst
{
    private static readonly string[] s_names =
    [
        "foo", "http.status_code", "service.name", "a-b", "x/y", "k8s:pod", "foo bar", "quo\"te", "back\\slash", "5xx",
        "ünïcødé", "名前", "span.x", "resource.y", "with", "count", "", "a{b}", "tab\tname", "_", "{", "a,b", "x=y",
    ];

    private static readonly string[] s_strings =
    [
        "", "plain", "a\"b", "c\\d", "line\nbreak", "tab\t", "\u0001ctl", "été", "🙂", "`tick`", "{ } | ( )", "\\d+", "nil",
    ];

    private static readonly string[] s_hintNames = ["sample", "most_recent", "job_size", "debug", "span_sample"];

    private readonly Random _r;

    public RandomAst(int seed)
    {
        _r = new Random(seed);
    }

    public RootExpr Root()
    {
        QueryExpr q = _r.Next(4) switch
        {
            0 => Metrics(2),
            _ => new SpansetQuery(RootPipeline()),
        };
        var hints = new List<Hint>();
        int n = _r.Next(4) == 0 ? _r.Next(1, 4) : 0;
        for (int i = 0; i < n; i++)
        {
            hints.Add(new Hint(Pick(s_hintNames), NonNegativeLiteral()));
        }

        return new RootExpr(q, ValueList<Hint>.From(hints));
    }

    private T Pick<T>(T[] items) => items[_r.Next(items.Length)];

    private Pipeline RootPipeline()
    {
        int n = _r.Next(1, 4);
        var elements = new List<PipelineElement>();
        for (int i = 0; i < n; i++)
        {
            PipelineElement e;
            do
            {
                e = Element(3, first: i == 0);
            }
            while (n == 1 && e is Pipeline);
            elements.Add(e);
        }

        return new Pipeline(ValueList<PipelineElement>.From(elements));
    }

    private Pipeline NestedPipeline(int depth)
    {
        int n = _r.Next(2, 4);
        var elements = new List<PipelineElement>();
        for (int i = 0; i < n; i++)
        {
            elements.Add(Element(depth - 1, first: i == 0));
        }

        return new Pipeline(ValueList<PipelineElement>.From(elements));
    }

    private PipelineElement Element(int depth, bool first)
    {
        switch (_r.Next(first ? 7 : 8))
        {
            case 0:
            case 1:
            case 2:
                return Spanset(depth);
            case 3:
                return ScalarFilter(depth);
            case 4:
                return new GroupOperation(NonConstField(2));
            case 5:
                {
                    var attrs = new List<FieldExpr>();
                    int n = _r.Next(1, 4);
                    for (int i = 0; i < n; i++)
                    {
                        attrs.Add(_r.Next(2) == 0 ? Attribute() : new IntrinsicExpr((Intrinsic)_r.Next(Enum.GetValues<Intrinsic>().Length)));
                    }

                    return new SelectOperation(ValueList<FieldExpr>.From(attrs));
                }

            case 6:
                return depth > 0 ? NestedPipeline(depth) : Spanset(0);
            default:
                return new CoalesceOperation();
        }
    }

    private SpansetExpr Spanset(int depth)
    {
        int choice = depth <= 0 ? 0 : _r.Next(4);
        return choice switch
        {
            0 or 1 => new SpansetFilter(Field(3)),
            2 => new SpansetOperation((SpansetOp)_r.Next(Enum.GetValues<SpansetOp>().Length), Spanset(depth - 1), Spanset(depth - 1)),
            _ => NestedPipeline(depth),
        };
    }

    private ScalarFilter ScalarFilter(int depth) =>
        new((ComparisonOp)_r.Next(6), Scalar(depth, allowLiteral: _r.Next(4) == 0), Scalar(depth, allowLiteral: true));

    private ScalarExpr Scalar(int depth, bool allowLiteral)
    {
        int choice = _r.Next(depth > 0 ? 5 : 2);
        if (choice == 1 && !allowLiteral)
        {
            choice = 0;
        }

        return choice switch
        {
            0 => Aggregate(),
            1 => new ScalarLiteral(NumericLiteral()),
            2 or 3 => new ScalarOperation((ArithmeticOp)_r.Next(6), Scalar(depth - 1, true), Scalar(depth - 1, true)),
            _ => new ScalarPipeline(NestedPipelineForScalar(depth), Aggregate()),
        };
    }

    private Pipeline NestedPipelineForScalar(int depth)
    {
        int n = _r.Next(1, 3);
        var elements = new List<PipelineElement>();
        for (int i = 0; i < n; i++)
        {
            PipelineElement e;
            do
            {
                e = Element(depth - 1, first: i == 0);
            }
            while (i == 0 && e is Pipeline);
            elements.Add(e);
        }

        return new Pipeline(ValueList<PipelineElement>.From(elements));
    }

    private AggregateExpr Aggregate()
    {
        var op = (AggregateOp)_r.Next(5);
        return new AggregateExpr(op, op == AggregateOp.Count ? null : NonConstField(2));
    }

    private MetricsExpr Metrics(int depth)
    {
        if (depth > 0 && _r.Next(3) == 0)
        {
            var ops = new[] { ArithmeticOp.Add, ArithmeticOp.Sub, ArithmeticOp.Mul, ArithmeticOp.Div };
            return new MetricsMath(Pick(ops), Metrics(depth - 1), Metrics(depth - 1), SecondStages());
        }

        MetricsFirstStage first;
        if (_r.Next(6) == 0)
        {
            first = new MetricsCompare(new SpansetFilter(Field(2)), _r.Next(1, 100),
                _r.Next(2) == 0 ? 0 : _r.NextInt64(1, long.MaxValue / 2), _r.Next(2) == 0 ? 0 : _r.NextInt64(1, long.MaxValue / 2));
        }
        else
        {
            var fn = (MetricsFunction)_r.Next(Enum.GetValues<MetricsFunction>().Length);
            FieldExpr? attr = fn is MetricsFunction.Rate or MetricsFunction.CountOverTime ? null : Attribute();
            var qs = new List<double>();
            if (fn == MetricsFunction.QuantileOverTime)
            {
                int n = _r.Next(1, 4);
                for (int i = 0; i < n; i++)
                {
                    qs.Add(_r.Next(3) == 0 ? _r.Next(0, 3) : Math.Round(_r.NextDouble(), _r.Next(1, 6)));
                }
            }

            var by = new List<FieldExpr>();
            int nb = _r.Next(3);
            for (int i = 0; i < nb; i++)
            {
                by.Add(Attribute());
            }

            first = new MetricsAggregate(fn, attr, ValueList<double>.From(qs), ValueList<FieldExpr>.From(by));
        }

        return new MetricsQuery(RootPipeline(), first, SecondStages());
    }

    private ValueList<SecondStageElement> SecondStages()
    {
        var list = new List<SecondStageElement>();
        int n = _r.Next(3);
        for (int i = 0; i < n; i++)
        {
            list.Add(_r.Next(2) == 0
                ? new TopKBottomK((TopKFunction)_r.Next(2), _r.Next(1, 1000))
                : new MetricsFilter((ComparisonOp)_r.Next(6), _r.Next(3) switch
                {
                    0 => _r.Next(-100, 100),
                    1 => (_r.NextDouble() - 0.5) * 1e6,
                    _ => _r.NextDouble() * 1e-7,
                }));
        }

        return ValueList<SecondStageElement>.From(list);
    }

    /// <summary>Any field expression in normal form.</summary>
    private FieldExpr Field(int depth)
    {
        if (depth <= 0 || _r.Next(4) == 0)
        {
            return _r.Next(3) == 0 ? Literal() : Leaf();
        }

        return NonConstField(depth);
    }

    /// <summary>A field expression that references span data, so constant folding never touches it.</summary>
    private FieldExpr NonConstField(int depth)
    {
        if (depth <= 0)
        {
            return Leaf();
        }

        switch (_r.Next(5))
        {
            case 0:
                return Leaf();
            case 1:
                {
                    var op = (UnaryOp)_r.Next(4);
                    return new UnaryExpr(op, NonConstField(depth - 1));
                }

            default:
                {
                    var op = (BinaryOp)_r.Next(Enum.GetValues<BinaryOp>().Length);
                    var a = NonConstField(depth - 1);
                    var b = Field(depth - 1);
                    return _r.Next(2) == 0 ? new BinaryExpr(op, a, b) : new BinaryExpr(op, b, a);
                }
        }
    }

    private FieldExpr Leaf() => _r.Next(3) == 0
        ? new IntrinsicExpr((Intrinsic)_r.Next(Enum.GetValues<Intrinsic>().Length))
        : Attribute();

    private AttributeExpr Attribute()
    {
        int k = _r.Next(10);
        if (k == 0)
        {
            var scope = Pick(new[] { AttributeScope.None, AttributeScope.Span, AttributeScope.Resource });
            return new AttributeExpr(scope, true, Pick(s_names));
        }

        return new AttributeExpr((AttributeScope)_r.Next(Enum.GetValues<AttributeScope>().Length), false, Pick(s_names));
    }

    private LiteralExpr Literal() => _r.Next(9) switch
    {
        0 or 1 or 2 => NumericLiteral(),
        3 => new StringLiteral(Pick(s_strings)),
        4 => new BoolLiteral(_r.Next(2) == 0),
        5 => new StatusLiteral((SpanStatus)_r.Next(3)),
        6 => new KindLiteral((SpanKind)_r.Next(6)),
        _ => new StringLiteral(RandomString()),
    };

    private LiteralExpr NumericLiteral() => _r.Next(6) switch
    {
        0 => new IntLiteral(_r.NextInt64(-1_000_000_000_000, 1_000_000_000_000)),
        1 => new IntLiteral(_r.Next(3) switch { 0 => long.MaxValue, 1 => -long.MaxValue, _ => long.MinValue }),
        2 => new FloatLiteral((_r.NextDouble() - 0.5) * Math.Pow(10, _r.Next(-10, 20))),
        3 => new FloatLiteral(_r.Next(-5, 5)),
        4 => new DurationLiteral(_r.NextInt64(-1_000_000_000_000_000, 1_000_000_000_000_000)),
        _ => new DurationLiteral(_r.Next(0, 1000) * Pick(new[] { 1L, 1_000L, 1_000_000L, 1_000_000_000L, 60_000_000_000L, 3_600_000_000_000L })),
    };

    private LiteralExpr NonNegativeLiteral() => _r.Next(7) switch
    {
        0 => new IntLiteral(_r.Next(0, 10_000)),
        1 => new FloatLiteral(_r.NextDouble()),
        2 => new DurationLiteral(_r.NextInt64(0, 1_000_000_000_000)),
        3 => new StringLiteral(Pick(s_strings)),
        4 => new BoolLiteral(_r.Next(2) == 0),
        5 => new StatusLiteral((SpanStatus)_r.Next(3)),
        _ => new KindLiteral((SpanKind)_r.Next(6)),
    };

    private string RandomString()
    {
        var chars = new char[_r.Next(0, 12)];
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = _r.Next(4) switch
            {
                0 => (char)_r.Next(0, 0x80),
                1 => (char)_r.Next(0x80, 0xD800),
                _ => (char)_r.Next(0x20, 0x7f),
            };
        }

        return new string(chars);
    }
}
