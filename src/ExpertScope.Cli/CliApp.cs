using System.CommandLine;
using ExpertScope.Core;
using Spectre.Console;

namespace ExpertScope.Cli;

/// <summary>Builds the command tree; kept apart from <see cref="Program"/> so tests can run verbs in-process.</summary>
public static class CliApp
{
    /// <summary>Runs the command line <paramref name="args"/> writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var context = new CliContext(output, error);
        var root = new RootCommand("ExpertScope: look inside Mixture-of-Experts language models and steer them.");
        foreach (var command in CreateCommands(context))
        {
            root.Subcommands.Add(command);
        }

        var parse = root.Parse(args);
        context.NamedFiles = [.. parse.Tokens.Select(t => t.Value).Where(File.Exists).Distinct(StringComparer.Ordinal)];
        if (UsageErrors.Report(parse, error))
        {
            return UsageErrors.ExitCode;
        }

        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>Every verb, one class each under <c>Commands/</c>.</summary>
    private static IEnumerable<Command> CreateCommands(CliContext context)
    {
        yield return InspectCommand.Create(context);
        yield return MakeModelCommand.Create(context);
        yield return TokenizeCommand.Create(context);
        yield return TraceCommand.Create(context);
        yield return GenerateCommand.Create(context);
        yield return PerplexityCommand.Create(context);
        yield return ProbeCommand.Create(context);
        yield return CompareCommand.Create(context);
        yield return SteerCommand.Create(context);
        yield return SuperExpertsCommand.Create(context);
        yield return PruneCommand.Create(context);
        yield return QuantizeCommand.Create(context);
        yield return AnalyzeCommand.Create(context);
        yield return BenchCommand.Create(context);
        yield return DataCommand.Create(context);
        yield return ServeCommand.Create(context);
        yield return MergeCommand.Create(context);
        yield return QueryCommand.Create(context);
    }
}

/// <summary>What every verb shares: the output streams and a Spectre console bound to them.</summary>
public sealed class CliContext
{
    /// <summary>Creates the context over the given streams.</summary>
    public CliContext(TextWriter output, TextWriter error)
    {
        Output = output;
        Error = error;
        bool interactive = ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
    }

    /// <summary>Standard output (results, JSON).</summary>
    public TextWriter Output { get; }

    /// <summary>Standard error (messages, progress when output is machine-readable).</summary>
    public TextWriter Error { get; }

    /// <summary>Tables and progress, rendered plainly when output is not a terminal.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>The existing files the command line names, so that even an unexpected failure says what was being read.</summary>
    public IReadOnlyList<string> NamedFiles { get; set; } = [];

    /// <summary>
    /// Runs a verb body and turns every expected failure (bad input, missing file, I/O) into one line on
    /// stderr and exit code 1, never a stack trace. Unexpected exceptions are reported the same way, marked as bugs.
    /// Usage errors (the command line cannot be parsed) never get here: they exit 2 (<see cref="UsageErrors"/>).
    /// </summary>
    public int Guard(Func<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return body();
        }
        catch (ExpertScopeException e)
        {
            Error.WriteLine("error: " + e.Message);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidDataException)
        {
            Error.WriteLine("error: " + e.Message);
            return 1;
        }
        catch (OperationCanceledException)
        {
            Error.WriteLine("error: cancelled");
            return 130;
        }
#pragma warning disable CA1031 // The CLI's last line of defence: a bug still gets a one-line message, not a stack trace.
        catch (Exception e)
#pragma warning restore CA1031
        {
            string reading = NamedFiles.Count > 0 ? $" while reading {string.Join(", ", NamedFiles)}" : string.Empty;
            Error.WriteLine($"error: internal error ({e.GetType().Name}){reading}: {e.Message}");
            return 1;
        }
    }
}
