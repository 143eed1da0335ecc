using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Lens;

namespace ExpertScope.Cli;

/// <summary>
/// <c>analyze lens</c>: early decoding of each selected expert's output, the routed mixture and the residual stream
/// after every block through the final norm and the unembedding: top tokens, entropy, KL to the final distribution.
/// </summary>
public static class AnalyzeLensCommand
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
        var experts = new Option<string>("--expert-output")
        {
            Description = "Read each expert's weighted contribution to the mixture (weighted, default, as MoE Lens) or its own output (unweighted).",
            DefaultValueFactory = _ => "weighted",
        };
        experts.AcceptOnlyFromAmong("unweighted", "weighted");
        var readout = new Option<string>("--readout")
        {
            Description = "extended (default, MoE Lens: residual stream entering the FFN + the expert's output, or + the mixture) or bare (the output alone).",
            DefaultValueFactory = _ => "extended",
        };
        readout.AcceptOnlyFromAmong("extended", "bare");
        var top = new Option<int>("--top-tokens") { Description = "Top tokens kept per readout (default 5).", DefaultValueFactory = _ => 5 };
        var command = new Command("lens", "Logit lens on experts, the mixture and the residual stream: top tokens, entropy and KL to the final distribution per layer.");
        model.AddTo(command);
        command.Options.Add(input);
        command.Options.Add(output);
        command.Options.Add(baseline);
        command.Options.Add(maxTokens);
        command.Options.Add(experts);
        command.Options.Add(readout);
        command.Options.Add(top);
        command.SetAction(parse => context.Guard(() =>
        {
            AnalyzeCommand.CheckBaseline(parse, baseline, "lens");
            var watch = Stopwatch.StartNew();
            string folder = parse.GetValue(output)!.FullName;
            int topTokens = parse.GetValue(top);
            if (topTokens < 1)
            {
                throw new ExpertScopeException("--top-tokens must be at least 1.");
            }

            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            var tokens = AnalyzeCommand.ReadTokens(moe, parse.GetValue(input)!.FullName, parse.GetValue(maxTokens), "--max-tokens");
            var scale = parse.GetValue(experts) == "weighted" ? ExpertOutputScale.Weighted : ExpertOutputScale.Unweighted;
            using var run = AnalyzeCommand.OpenFolder(context, parse, folder, "analyze-lens", moe, new Dictionary<string, string>
            {
                ["input_tokens"] = string.Join(' ', tokens.Select(t => t.ToString(CultureInfo.InvariantCulture))),
                ["expert_output"] = parse.GetValue(experts)!,
                ["readout"] = parse.GetValue(readout)!,
                ["top_tokens"] = topTokens.ToString(CultureInfo.InvariantCulture),
            });
            return AnalyzeCommand.Interruptible(context, folder, token =>
            {
                var result = ProgressDisplay.Run(context, sink => LogitLensAnalysis.Run(moe, tokens, scale, topTokens, run, sink, threads, token,
                    parse.GetValue(readout) == "bare" ? LensReadoutKind.Bare : LensReadoutKind.Extended));
                LogitLensAnalysis.WriteOutputs(result, folder, Path.GetFileName(moe.FilePath), moe, tokens, RandomWeightsLine.Check(context, moe));
                AnalyzeSummaries.Lens(context, result);
                AnalyzeCommand.CompareWithBaseline(context, parse, baseline, folder);
                AnalyzeCommand.Done(context, folder, watch.Elapsed);
                return 0;
            });
        }));
        return command;
    }
}
