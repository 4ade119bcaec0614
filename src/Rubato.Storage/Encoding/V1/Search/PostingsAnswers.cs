using System.Buffers;
using Rubato.TraceQL.Engine;

namespace Rubato.Storage.Encoding.V1.Search;

/// <summary>
/// The conditions of a plan that one row group's postings answer, with their owner masks and the owners' values.
/// </summary>
/// <remarks>
/// A scoped attribute condition at resource, scope or span level whose nil result is false is answered when its key
/// is indexed in the row group and every directory value the condition accepts (<see cref="Condition.CouldMatch(in TraceQLValue)"/>,
/// the evaluator's own test, applied to the value the column path would build: string, int or bool) has a posting:
/// an owner then matches exactly when it is in one of those postings (owners without the key are nil, which does not
/// match; the directory lists owners by their FIRST attribute with the key, as the evaluator reads them). Such a
/// condition's key, type and value columns are not read for the filter. Because every owner is in at most one posting
/// of a key, the postings read also give each listed owner's value of the key (<see cref="TryGetValue"/>): with
/// <see cref="FetchSpansRequest.AllConditions"/> every candidate's owner is listed, so the fill can build those
/// attribute bags without the level's attribute columns (<see cref="KnownLevel"/>).
/// Cost: one directory read per row group, one coalesced read of the accepted values' postings; the owner arrays are
/// rented and returned on <see cref="Dispose"/>.
/// </remarks>
internal sealed class PostingsAnswers : IDisposable
{
    private readonly PostingsDirectory _dir;
    private readonly PostingsKey?[] _keys;
    private readonly bool[]?[] _masks;
    private readonly Dictionary<(AttrLevel Level, string Key), int[]> _values = [];
    private readonly List<bool[]> _rentedBools = [];
    private readonly List<int[]> _rentedInts = [];

    private PostingsAnswers(PostingsDirectory dir, int conds)
    {
        _dir = dir;
        _keys = new PostingsKey?[conds];
        _masks = new bool[]?[conds];
    }

    /// <summary>Whether condition <paramref name="i"/> of the plan is answered by postings in this row group.</summary>
    public bool Answered(int i) => _masks[i] is not null;

    public bool Any => _masks.Any(m => m is not null);

    /// <summary>Whether a condition may be answered by postings at all (scoped resource/scope/span attribute, nil never matches).</summary>
    public static bool Eligible(CondPlan c) =>
        c.Kind == CondKind.Attr && !c.Unscoped && !c.NilMatches && c.Level is AttrLevel.Resource or AttrLevel.Scope or AttrLevel.Span;

    /// <summary>
    /// Reads the row group's directory and the postings of the values the eligible conditions accept; null when the
    /// plan has no eligible condition (nothing is read then).
    /// </summary>
    public static async Task<PostingsAnswers?> ReadAsync(BackendBlockV1 block, SearchPlan plan, int rowGroup, PostingsReadStats stats, CancellationToken ct)
    {
        if (!plan.Conds.Any(Eligible))
        {
            return null;
        }

        var dir = await block.ReadPostingsDirectoryAsync(rowGroup, stats, ct).ConfigureAwait(false);
        var answers = new PostingsAnswers(dir, plan.Conds.Length);
        var wanted = new List<(PostingsValue Value, int Owners, string What)>();
        var wantedOwner = new List<(AttrLevel Level, PostingsKey Key, int ValueIndex)>();
        var seen = new HashSet<long>();
        var accepted = new List<int>[plan.Conds.Length];
        for (int i = 0; i < plan.Conds.Length; i++)
        {
            var c = plan.Conds[i];
            if (!Eligible(c) || dir.Find(c.Level, c.Condition.Field.Name) is not { } key)
            {
                continue;
            }

            var list = new List<int>();
            bool ok = true;
            for (int v = 0; v < key.Values.Length && ok; v++)
            {
                if (c.Condition.CouldMatch(key.Values[v].Value))
                {
                    ok = key.Values[v].HasPosting;
                    list.Add(v);
                }
            }

            if (!ok)
            {
                continue; // accepts a value too common to have a posting: the columns are cheaper
            }

            answers._keys[i] = key;
            accepted[i] = list;
            int owners = dir.Level(c.Level).Owners;
            foreach (int v in list)
            {
                if (seen.Add(key.Values[v].Offset))
                {
                    wanted.Add((key.Values[v], owners, $"{c.Level.ToString().ToLowerInvariant()} {key.Key}={key.Values[v].Value}"));
                    wantedOwner.Add((c.Level, key, v));
                }
            }
        }

        var rows = await block.ReadPostingsAsync(wanted, stats, ct).ConfigureAwait(false);
        var byOffset = new Dictionary<long, int[]>();
        for (int w = 0; w < wanted.Count; w++)
        {
            byOffset[wanted[w].Value.Offset] = rows[w];
            var (level, key, v) = wantedOwner[w];
            if (!answers._values.TryGetValue((level, key.Key), out var values))
            {
                int owners = dir.Level(level).Owners;
                values = answers.RentInts(owners);
                Array.Fill(values, -1, 0, owners);
                answers._values[(level, key.Key)] = values;
            }

            foreach (int row in rows[w])
            {
                values[row] = v;
            }
        }

        for (int i = 0; i < plan.Conds.Length; i++)
        {
            if (accepted[i] is not { } list)
            {
                continue;
            }

            var key = answers._keys[i]!;
            int owners = dir.Level(plan.Conds[i].Level).Owners;
            bool[] mask = ArrayPool<bool>.Shared.Rent(Math.Max(1, owners));
            answers._rentedBools.Add(mask);
            Array.Fill(mask, false, 0, owners);
            foreach (int v in list)
            {
                foreach (int row in byOffset[key.Values[v].Offset])
                {
                    mask[row] = true;
                }
            }

            answers._masks[i] = mask;
        }

        return answers;
    }

    /// <summary>Whether any owner of an answered condition matches (false rules the condition out for the row group).</summary>
    public bool AnyMatch(int i, CondPlan c)
    {
        var mask = _masks[i]!;
        return mask.AsSpan(0, _dir.Level(c.Level).Owners).Contains(true);
    }

    /// <summary>Checks that the directory's row counts are the row group's (else the postings object is corrupt).</summary>
    public void Validate(ColumnScan scan, string postingsKey)
    {
        foreach (var level in Postings.Levels)
        {
            int expected = level switch
            {
                AttrLevel.Resource => scan.ResourceCount,
                AttrLevel.Scope => scan.ScopeCount,
                _ => scan.SpanCount,
            };
            if (_dir.Level(level).Owners != expected)
            {
                throw new BlockCorruptException(postingsKey, _dir.Offset, $"postings directory of row group {_dir.RowGroup}: {level} level has {_dir.Level(level).Owners} rows, the data has {expected}");
            }
        }
    }

    /// <summary>Per-span result of answered condition <paramref name="i"/>: its owner is in an accepted posting.</summary>
    public void SpanMask(int i, CondPlan c, ColumnScan scan, Span<bool> result)
    {
        var mask = _masks[i]!;
        for (int s = 0; s < result.Length; s++)
        {
            result[s] = c.Level switch
            {
                AttrLevel.Resource => mask[scan.SpanResource(s)],
                AttrLevel.Scope => mask[scan.SpanScope(s)],
                _ => mask[s],
            };
        }
    }

    /// <summary>
    /// Whether the fill can take every wanted attribute of <paramref name="level"/> from the postings: an AND plan whose
    /// fill keys of that level all belong to answered conditions of that level.
    /// </summary>
    public bool KnownLevel(SearchPlan plan, AttrLevel level)
    {
        var keys = plan.AttrKeys[(int)level];
        if (!plan.All || keys.Count == 0 || level is not (AttrLevel.Resource or AttrLevel.Scope or AttrLevel.Span))
        {
            return false;
        }

        foreach (var k in keys)
        {
            bool answered = false;
            for (int i = 0; i < plan.Conds.Length && !answered; i++)
            {
                var c = plan.Conds[i];
                answered = Answered(i) && c.Level == level && string.Equals(c.Condition.Field.Name, k, StringComparison.Ordinal);
            }

            if (!answered)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The value of <paramref name="key"/> of an owner listed in a posting read for this row group.</summary>
    public bool TryGetValue(AttrLevel level, string key, int owner, out TraceQLValue value)
    {
        if (_values.TryGetValue((level, key), out var values) && values[owner] >= 0)
        {
            value = _dir.Find(level, key)!.Values[values[owner]].Value;
            return true;
        }

        value = TraceQLValue.Nil;
        return false;
    }

    public void Dispose()
    {
        foreach (var a in _rentedBools)
        {
            ArrayPool<bool>.Shared.Return(a);
        }

        foreach (var a in _rentedInts)
        {
            ArrayPool<int>.Shared.Return(a);
        }

        _rentedBools.Clear();
        _rentedInts.Clear();
    }

    private int[] RentInts(int n)
    {
        var a = ArrayPool<int>.Shared.Rent(Math.Max(1, n));
        _rentedInts.Add(a);
        return a;
    }
}
