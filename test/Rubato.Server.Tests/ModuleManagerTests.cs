using Rubato.Common.Services;
using Rubato.Server.App;
using Xunit;

namespace Rubato.Server.Tests;

public sealed class ModuleManagerTests
{
    [Fact]
    public void DependencyOrder_Diamond_DependenciesFirstEachOnce()
    {
        var mm = new ModuleManager();
        foreach (var n in new[] { "server", "overrides", "store", "ingester", "distributor", "all" })
        {
            mm.Register(n, () => null);
        }

        mm.AddDependencies("ingester", "store", "overrides", "server");
        mm.AddDependencies("distributor", "ingester", "overrides", "server");
        mm.AddDependencies("all", "distributor", "ingester");

        var order = mm.DependencyOrder("all").ToList();

        Assert.Equal(6, order.Count);
        Assert.Equal(order.Count, order.Distinct().Count());
        Assert.True(order.IndexOf("store") < order.IndexOf("ingester"));
        Assert.True(order.IndexOf("ingester") < order.IndexOf("distributor"));
        Assert.True(order.IndexOf("server") < order.IndexOf("distributor"));
        Assert.Equal("all", order[^1]);
    }

    [Fact]
    public void DependencyOrder_Cycle_ThrowsNamingTheCycle()
    {
        var mm = new ModuleManager();
        mm.Register("a", () => null);
        mm.Register("b", () => null);
        mm.AddDependencies("a", "b");
        mm.AddDependencies("b", "a");

        var e = Assert.Throws<InvalidOperationException>(() => mm.DependencyOrder("a"));
        Assert.Contains("a -> b -> a", e.Message);
    }

    [Fact]
    public void InitModules_RunsInitFunctionsInOrderAndReturnsServices()
    {
        var mm = new ModuleManager();
        var calls = new List<string>();
        mm.Register("store", () => { calls.Add("store"); return new BasicService("store"); });
        mm.Register("querier", () => { calls.Add("querier"); return null; });
        mm.Register("all", () => { calls.Add("all"); return null; });
        mm.AddDependencies("querier", "store");
        mm.AddDependencies("all", "querier");

        var services = mm.InitModules("all");

        Assert.Equal(["store", "querier", "all"], calls);
        Assert.Single(services);
        Assert.Equal("store", services[0].Name);
    }

    [Fact]
    public void TargetableModules_ExcludesInternalModules()
    {
        var mm = new ModuleManager();
        mm.Register("server", () => null, targetable: false);
        mm.Register("all", () => null);

        Assert.Equal(["all"], mm.TargetableModules);
        Assert.False(mm.IsTargetable("server"));
        Assert.False(mm.IsTargetable("nope"));
    }
}
