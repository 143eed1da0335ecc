using System.CommandLine;
using ExpertScope.Core;
using ExpertScope.Experiments.Runs;

namespace ExpertScope.Cli;

/// <summary>
/// <c>merge</c>: joins runs that split one data set across machines (<c>--shard i/n</c>): run folders into one folder
/// (then resumed as finished by the same command), or trace files into one Parquet trace. Refuses differing settings or models.
/// </summary>
public static class MergeCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var inputs = new Argument<string[]>("runs") { Description = "Run folders (probe --shard) or trace files (trace --shard).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "The merged run folder, or the merged .parquet trace.", Required = true };
        var command = new Command("merge", "Merge the traces and journals of runs that split one data set (--shard i/n); refuses differing settings or models.") { inputs, output };
        command.SetAction(parse => context.Guard(() =>
        {
            var paths = parse.GetValue(inputs)!;
            var outPath = parse.GetRequiredValue(output);
            MergeSummary summary;
            if (paths.All(Directory.Exists))
            {
                summary = RunMerge.MergeFoldersAsync(paths, outPath, "expertscope merge").GetAwaiter().GetResult();
            }
            else if (paths.All(File.Exists))
            {
                if (outPath.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
                {
                    throw new ExpertScopeException($"--out {outPath}: merged traces are written as Parquet");
                }

                summary = RunMerge.MergeTracesAsync(paths, outPath).GetAwaiter().GetResult();
            }
            else
            {
                throw new ExpertScopeException($"merge takes run folders or trace files that exist; not found or mixed: {string.Join(", ", paths.Where(p => !Directory.Exists(p) && !File.Exists(p)).DefaultIfEmpty("folders and files mixed"))}");
            }

            context.Output.WriteLine($"merged {summary.Runs} runs into {outPath}: {summary.Sequences} sequences, {summary.Rows} trace rows, {summary.JournalRecords} journal records");
            return 0;
        }));
        return command;
    }
}
