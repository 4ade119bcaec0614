namespace Rubato.Cli;

public static class Program
{
    public static int Main(string[] args) => CliApp.RunAsync(args, Console.Out, Console.Error, storeFactory: null, CancellationToken.None).GetAwaiter().GetResult();
}
