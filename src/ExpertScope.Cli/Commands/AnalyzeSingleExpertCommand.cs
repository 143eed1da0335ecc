using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Lens;

namespace ExpertScope.Cli;

/// <summary>
/// <c>analyze single-expert</c>: per MoE layer, the cosine similarity between the single top expert's output and the
/// k-expert mixture (and of the residual stream after the block), with perplexities for one expert in every layer,
/// in one layer at a time, and the top-m curve; with the shared experts on and/or off.
/// </summary>
public static class AnalyzeSingleExpertCommand
{
    /// <summary>Creates the sub-verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var output = AnalyzeCommand.OutOption();
        var baseline = AnalyzeCommand.BaselineOption();
        var input = new Option<FileInfo>("--input", "-i") { Description = "Text file (the whole file, verbatim, as one text; at most the model's context).", Required = true };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Use only the first N tokens of the text (BOS included)." };
        var weight = new Option<string>("--weight")
        {
            Description = "The single expert's weight: renormalized (1 for every router, MoE Lens), raw (its own weight in the full top-k routing) or mass (the top-k's total weight). Default renormalized.",
            DefaultValueFactory = _ => "renormalized",
        };
        weight.AcceptOnlyFromAmong("renormalized", "raw", "mass");
        var shared = new Option<string>("--shared")
        {
            Description = "Shared experts on (as the model is), off (skipped in every block), or both. Default: both when the model has shared experts, else on.",
        };
        shared.AcceptOnlyFromAmong("on", "off", "both");
        var command = new Command("single-expert", "One expert vs the mixture: per-layer cosine similarity and perplexity with the top expert only, and the top-m perplexity curve.");
        model.AddTo(command);
        command.Options.Add(input);
        command.Options.Add(output);
        command.Options.Add(baseline);
        command.Options.Add(maxTokens);
        command.Options.Add(weight);
        command.Options.Add(shared);
        command.SetAction(parse => context.Guard(() =>
        {
            AnalyzeCommand.CheckBaseline(parse, baseline, "single-expert");
            var watch = Stopwatch.StartNew();
            string folder = parse.GetValue(output)!.FullName;
            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            var tokens = AnalyzeCommand.ReadTokens(moe, parse.GetValue(input)!.FullName, parse.GetValue(maxTokens), "--max-tokens");
            bool hasShared = moe.Blocks.Any(b => b.Moe?.Shared is not null);
            string sharedMode = parse.GetValue(shared) ?? (hasShared ? "both" : "on");
            if (sharedMode != "on" && !hasShared)
            {
                throw new ExpertScopeException($"--shared {sharedMode}: the model '{moe.FilePath}' has no shared experts.");
            }

            var settings = new SingleExpertSettings
            {
                Weight = parse.GetValue(weight) switch { "raw" => SingleExpertWeight.Raw, "mass" => SingleExpertWeight.Mass, _ => SingleExpertWeight.Renormalized },
                SharedOn = sharedMode is "on" or "both",
                SharedOff = sharedMode is "off" or "both",
                ThreadCount = threads,
            };
            using var run = AnalyzeCommand.OpenFolder(context, parse, folder, "analyze-single-expert", moe, new Dictionary<string, string>
            {
                ["input_tokens"] = string.Join(' ', tokens.Select(t => t.ToString(CultureInfo.InvariantCulture))),
                // "renormalized" once meant OverrideTopK(1); the new name keeps old run folders from resuming into weight 1.
                ["weight"] = parse.GetValue(weight) == "renormalized" ? "weight-1" : parse.GetValue(weight)!,
            });
            return AnalyzeCommand.Interruptible(context, folder, token =>
            {
                var result = ProgressDisplay.Run(context, sink => SingleExpertAnalysis.Run(moe, tokens, settings, run, sink, token));
                SingleExpertAnalysis.WriteOutputs(result, folder, Path.GetFileName(moe.FilePath), settings, tokens.Count, RandomWeightsLine.Check(context, moe));
                AnalyzeSummaries.SingleExpert(context, result);
                AnalyzeCommand.CompareWithBaseline(context, parse, baseline, folder);
                AnalyzeCommand.Done(context, folder, watch.Elapsed);
                return 0;
            });
        }));
        return command;
    }
}
