using System.CommandLine;

namespace ExpertScope.Cli;

/// <summary>Builds the command tree; kept separate from <see cref="Program"/> so tests can run verbs in-process.</summary>
public static class CliApp
{
    /// <summary>Runs the command line <paramref name="args"/> and returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("ExpertScope: look inside Mixture-of-Experts language models and steer them.");
        var parse = root.Parse(args);
        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
