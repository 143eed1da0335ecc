namespace ExpertScope.Cli;

/// <summary>The <c>expertscope</c> command line.</summary>
public static class Program
{
    /// <summary>Entry point: parses the verb and runs it; returns the process exit code.</summary>
    public static int Main(string[] args) => CliApp.Run(args, Console.Out, Console.Error);
}
