namespace Rubato.Integration.Tests.Harness;

/// <summary>Waiting on conditions (never on fixed sleeps): poll until true or fail with what was awaited.</summary>
public static class Conditions
{
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, Func<string>? diagnostics = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out after {timeout} waiting for {what}" + (diagnostics is null ? string.Empty : ": " + diagnostics()));
            }

            await Task.Delay(100);
        }
    }
}
