using Rubato.Common.Services;

namespace Rubato.Server.App;

/// <summary>
/// The module graph: each module has a name, an init function that builds it (returning its service, or null for a
/// module that only wires things), and the modules it depends on. Like dskit's module manager, a target is a
/// node of the graph; initialising it initialises its transitive dependencies first, services start after their
/// dependencies are Running, and stop before them.
/// </summary>
/// <remarks>Used from the main thread only, during startup and shutdown.</remarks>
public sealed class ModuleManager
{
    private readonly Dictionary<string, Module> _modules = new(StringComparer.Ordinal);

    /// <param name="name">Module name, e.g. <c>distributor</c>.</param>
    /// <param name="init">Builds the module; runs once, after its dependencies' init functions.</param>
    /// <param name="targetable">Whether <c>-target</c> may name this module.</param>
    public void Register(string name, Func<IService?> init, bool targetable = true)
    {
        if (!_modules.TryAdd(name, new Module(name, init, targetable)))
        {
            throw new InvalidOperationException($"module {name} registered twice");
        }
    }

    public void AddDependencies(string name, params string[] dependencies)
    {
        var m = Get(name);
        foreach (var d in dependencies)
        {
            _ = Get(d);
            m.Dependencies.Add(d);
        }
    }

    public IReadOnlyList<string> TargetableModules =>
        _modules.Values.Where(m => m.Targetable).Select(m => m.Name).Order(StringComparer.Ordinal).ToList();

    public bool IsTargetable(string name) => _modules.TryGetValue(name, out var m) && m.Targetable;

    /// <summary>The modules a target needs, dependencies first (a stable topological order).</summary>
    public IReadOnlyList<string> DependencyOrder(string target)
    {
        var order = new List<string>();
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = visiting, 2 = done
        Visit(target, order, state, []);
        return order;
    }

    /// <summary>Direct dependencies of a module (for <c>/status/services</c> and docs).</summary>
    public IReadOnlyList<string> DependenciesOf(string name) => Get(name).Dependencies;

    /// <summary>Runs the init functions of <paramref name="target"/> and its dependencies, in dependency order.</summary>
    /// <returns>The services created, in start order.</returns>
    public IReadOnlyList<(string Name, IService Service)> InitModules(string target)
    {
        var services = new List<(string, IService)>();
        foreach (var name in DependencyOrder(target))
        {
            var svc = Get(name).Init();
            if (svc is not null)
            {
                services.Add((name, svc));
            }
        }

        return services;
    }

    private void Visit(string name, List<string> order, Dictionary<string, int> state, Stack<string> path)
    {
        var m = Get(name);
        state.TryGetValue(name, out int s);
        if (s == 2)
        {
            return;
        }

        if (s == 1)
        {
            throw new InvalidOperationException($"module dependency cycle: {string.Join(" -> ", path.Reverse().Append(name))}");
        }

        state[name] = 1;
        path.Push(name);
        foreach (var d in m.Dependencies)
        {
            Visit(d, order, state, path);
        }

        path.Pop();
        state[name] = 2;
        order.Add(name);
    }

    private Module Get(string name) =>
        _modules.TryGetValue(name, out var m) ? m : throw new InvalidOperationException($"unknown module {name}");

    private sealed record Module(string Name, Func<IService?> Init, bool Targetable)
    {
        public List<string> Dependencies { get; } = [];
    }
}
