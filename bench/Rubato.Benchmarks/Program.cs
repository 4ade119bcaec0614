using BenchmarkDotNet.Running;

namespace Rubato.Bench;

/// <summary>Runs any benchmark class in this assembly: <c>dotnet run -c Release -- --filter '*Name*'</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
