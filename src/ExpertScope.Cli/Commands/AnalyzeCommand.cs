using System.CommandLine;
using System.Globalization;
using System.Text;
using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary>
/// <c>analyze</c>: the MoE Lens and OpenMoE routing studies (<c>domains</c>, <c>single-expert</c>, <c>lens</c>,
/// <c>token-id</c>), each writing <c>results.json</c>, CSV tables, SVG figures and <c>report.html</c> into <c>--out</c>,
/// a run folder that a re-run of the same command resumes.
/// </summary>
public static class AnalyzeCommand
{
    /// <summary>Creates the verb with its sub-verbs.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var command = new Command("analyze", "Routing and expert analyses (MoE Lens, OpenMoE): domains, single-expert, lens, token-id. Each writes results.json, CSV, SVG and report.html, and resumes when re-run.");
        command.Subcommands.Add(AnalyzeDomainsCommand.Create(context));
        command.Subcommands.Add(AnalyzeSingleExpertCommand.Create(context));
        command.Subcommands.Add(AnalyzeLensCommand.Create(context));
        command.Subcommands.Add(AnalyzeTokenIdCommand.Create(context));
        command.Subcommands.Add(AnalyzePerplexityTableCommand.Create(context));
        return command;
    }

    /// <summary>The <c>--out</c> option of every sub-verb.</summary>
    internal static Option<DirectoryInfo> OutOption() =>
        new("--out", "-o") { Description = "Output folder (created; re-running the same command there resumes an interrupted run).", Required = true };

    /// <summary>The <c>--baseline</c> option of every sub-verb.</summary>
    internal static Option<DirectoryInfo?> BaselineOption() =>
        new("--baseline") { Description = "A finished run of the same analysis on a baseline model (e.g. the same shape with random weights): the report shows both, side by side (baseline.csv, baseline.json)." };

    /// <summary>Refuses a baseline that is not a finished run of <paramref name="analysis"/>, before any work starts.</summary>
    internal static void CheckBaseline(ParseResult parse, Option<DirectoryInfo?> option, string analysis)
    {
        if (parse.GetValue(option) is { } baseline)
        {
            Experiments.Reports.BaselineComparison.Validate(baseline.FullName, analysis);
        }
    }

    /// <summary>Adds the baseline comparison to a finished run's folder and report, and prints its headline.</summary>
    internal static void CompareWithBaseline(CliContext context, ParseResult parse, Option<DirectoryInfo?> option, string folder)
    {
        if (parse.GetValue(option) is { } baseline)
        {
            context.Output.WriteLine("against the baseline: " + Experiments.Reports.BaselineComparison.Write(folder, baseline.FullName));
        }
    }

    /// <summary>Opens (or resumes) the run folder, its manifest naming the analysis, the model by SHA-256 and the settings.</summary>
    internal static RunFolder OpenFolder(CliContext context, ParseResult parse, string folder, string kind, MoeModel model, IReadOnlyDictionary<string, string> settings, long? seed = null)
    {
        // Attention switches other than llama.cpp's defaults change the routing, so they are part of the settings.
        var recorded = new Dictionary<string, string>(settings, StringComparer.Ordinal);
        foreach (var (key, value) in model.Attention.NonDefaultSettings())
        {
            recorded[key] = value;
        }

        var manifest = new RunManifest
        {
            Kind = kind,
            Settings = recorded,
            Seed = seed,
            ModelSha256 = FileHash.Sha256Async(model.FilePath).GetAwaiter().GetResult(),
            CommandLine = TraceCommand.CommandLineOf(parse),
            ExpertScopeVersion = TraceMetadata.CurrentVersion,
        };
        var run = RunFolder.OpenOrCreate(folder, manifest);
        if (run.IsResumed && run.FinishedUnits.Count > 0)
        {
            context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resuming {folder}: {run.FinishedUnits.Count} finished units."));
        }

        return run;
    }

    /// <summary>
    /// Runs <paramref name="body"/> so that Ctrl+C or SIGTERM stops it at the next unit boundary: what finished stays
    /// journalled, a line says how to resume, and the exit code is 130.
    /// </summary>
    internal static int Interruptible(CliContext context, string folder, Func<CancellationToken, int> body)
    {
        using var stop = new StopSignal();
        try
        {
            return body(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsStopRequested)
        {
            context.Error.WriteLine($"interrupted: finished work is kept in {folder}; re-run the same command to resume.");
            return 130;
        }
    }

    /// <summary>
    /// The tokens of a whole text file (verbatim, BOS as the vocabulary says), cut to <paramref name="maxTokens"/> when
    /// given; a text longer than the context without it is an error.
    /// </summary>
    internal static IReadOnlyList<int> ReadTokens(MoeModel model, string path, int? maxTokens, string option)
    {
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"The input file '{path}' does not exist.");
        }

        if (maxTokens is < 2)
        {
            throw new ExpertScopeException($"--max-tokens must be at least 2 (got {maxTokens}).");
        }

        var tokens = model.Tokenizer.Encode(File.ReadAllText(path, new UTF8Encoding(false)));
        int context = model.Hyperparameters.ContextLength;
        if (maxTokens is { } n && tokens.Count > n)
        {
            tokens = [.. tokens.Take(n)];
        }

        if (tokens.Count > context)
        {
            throw new ExpertScopeException(
                $"{path}: the text is {tokens.Count} tokens long, longer than the model's context of {context}; give {option} N to use its first N tokens.");
        }

        if (tokens.Count < 2)
        {
            throw new ExpertScopeException($"{path}: {tokens.Count} token(s); the analysis needs at least two.");
        }

        return tokens;
    }

    /// <summary>The one-line summary every sub-verb prints at the end.</summary>
    internal static void Done(CliContext context, string folder, TimeSpan elapsed) =>
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {Path.Combine(folder, "report.html")} (results.json, CSV, SVG) in {elapsed.TotalSeconds:0.0} s"));
}
