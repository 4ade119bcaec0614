using System.Collections;

namespace Rubato.TraceQL.Ast;

/// <summary>
/// An immutable list with structural equality, so AST records compare by content
/// (<see cref="System.Collections.Immutable.ImmutableArray{T}"/> compares by reference).
/// </summary>
public sealed class ValueList<T> : IReadOnlyList<T>, IEquatable<ValueList<T>>
{
    public static readonly ValueList<T> Empty = new([]);

    private readonly T[] _items;

    public ValueList(T[] items)
    {
        _items = items;
    }

    public int Count => _items.Length;

    public T this[int index] => _items[index];

    public static ValueList<T> Of(params T[] items) => items.Length == 0 ? Empty : new(items);

    public static ValueList<T> From(List<T> items) => items.Count == 0 ? Empty : new(items.ToArray());

    public ValueList<T> Append(T item)
    {
        var copy = new T[_items.Length + 1];
        Array.Copy(_items, copy, _items.Length);
        copy[^1] = item;
        return new(copy);
    }

    public ValueList<T> Concat(ValueList<T> other)
    {
        if (other.Count == 0)
        {
            return this;
        }

        if (Count == 0)
        {
            return other;
        }

        var copy = new T[_items.Length + other._items.Length];
        Array.Copy(_items, copy, _items.Length);
        Array.Copy(other._items, 0, copy, _items.Length, other._items.Length);
        return new(copy);
    }

    public bool Equals(ValueList<T>? other)
    {
        if (other is null)
        {
            return false;
        }

        if (ReferenceEquals(this, other))
        {
            return true;
        }

        if (_items.Length != other._items.Length)
        {
            return false;
        }

        var cmp = EqualityComparer<T>.Default;
        for (int i = 0; i < _items.Length; i++)
        {
            if (!cmp.Equals(_items[i], other._items[i]))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is ValueList<T> other && Equals(other);

    public override int GetHashCode()
    {
        var hc = new HashCode();
        foreach (var item in _items)
        {
            hc.Add(item);
        }

        return hc.ToHashCode();
    }

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)_items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    public override string ToString() => "[" + string.Join(", ", _items) + "]";
}
