using System.CommandLine;
using ExpertScope.Experiments.Probes;

namespace ExpertScope.Cli;

/// <summary>
/// <c>compare RUN_DIR… --out DIR</c>: the per-layer main comparison of several probe runs (different models) on
/// relative depth 0–1, with CIs and Holm significance marks: <c>compare.svg</c>, <c>compare.csv</c>, <c>report.html</c>.
/// </summary>
public static class CompareCommand
{
    /// <summary>Builds the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var runs = new Argument<string[]>("runs") { Description = "Folders written by 'expertscope probe' (one probe kind).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "Output folder for compare.svg, compare.csv and report.html.", Required = true };
        var metric = new Option<string>("--metric") { Description = "The pairs.csv column compared (kappa, overlap, jaccard, weighted, js, …).", DefaultValueFactory = _ => "kappa" };
        var command = new Command("compare", "Compare probe runs of several models per layer on relative depth (figure, table, report).")
        {
            runs, output, metric,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var result = ProbeComparison.Compare(parse.GetRequiredValue(runs), parse.GetValue(metric)!);
            var folder = parse.GetRequiredValue(output);
            ProbeComparison.WriteAll(result, folder);
            foreach (var line in ProbeComparison.Summarize(result))
            {
                context.Output.WriteLine(line);
            }

            context.Output.WriteLine($"wrote {Path.Combine(folder, ProbeComparison.FigureFileName)}, {ProbeComparison.TableFileName}, {ProbeComparison.ReportFileName}");
            return 0;
        }));
        return command;
    }
}
