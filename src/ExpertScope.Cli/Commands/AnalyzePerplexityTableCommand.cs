using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Lens;

namespace ExpertScope.Cli;

/// <summary>
/// <c>analyze perplexity-table</c>: MoE Lens's per-domain table (corpus-level strided perplexity with all experts, one
/// expert in every layer, one expert in one layer at a time) and DeepSeekMoE's redundancy curve (loss with the top-r
/// routed experts disabled, r = 0…k).
/// </summary>
public static class AnalyzePerplexityTableCommand
{
    /// <summary>Creates the sub-verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var output = AnalyzeCommand.OutOption();
        var dataDir = new Option<DirectoryInfo?>("--data-dir") { Description = "Evaluation data folder holding domains/ (or the domains folder itself): the built-in domains." };
        var domainNames = new Option<string?>("--domains") { Description = "Comma-separated built-in domains to use (default: all of them)." };
        var corpora = new Option<string[]>("--corpus")
        {
            Description = "A corpus NAME=PATH (a .txt, .jsonl or .json file, or a folder of them). Repeatable; combined with --data-dir domains.",
            Arity = ArgumentArity.OneOrMore,
        };
        var tokens = new Option<long>("--tokens-per-domain") { Description = "Tokens drawn from each domain (default 20000).", DefaultValueFactory = _ => 20_000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the document shuffle (default 0).", DefaultValueFactory = _ => 0 };
        var window = new Option<int?>("--context") { Description = "Window length of the strided perplexity (default: the model's context)." };
        var stride = new Option<int?>("--stride") { Description = "Window step (default: half the window)." };
        var weight = new Option<string>("--weight")
        {
            Description = "The single expert's weight: renormalized (1, MoE Lens; default), raw or mass (see analyze single-expert).",
            DefaultValueFactory = _ => "renormalized",
        };
        weight.AcceptOnlyFromAmong("renormalized", "raw", "mass");
        var command = new Command("perplexity-table", "Per-domain corpus perplexity with all experts vs one expert (every layer, one layer at a time), and the loss with the top-r experts disabled.");
        model.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(dataDir);
        command.Options.Add(domainNames);
        command.Options.Add(corpora);
        command.Options.Add(tokens);
        command.Options.Add(seed);
        command.Options.Add(window);
        command.Options.Add(stride);
        command.Options.Add(weight);
        command.SetAction(parse => context.Guard(() =>
        {
            var watch = Stopwatch.StartNew();
            string folder = parse.GetValue(output)!.FullName;
            var (domains, described) = AnalyzeDomainsCommand.LoadDomains(parse, dataDir, domainNames, corpora);
            if (domains.Count == 0)
            {
                throw new ExpertScopeException("Give at least one domain: --data-dir (built-in domains) and/or --corpus NAME=PATH.");
            }

            long budget = parse.GetValue(tokens);
            if (budget < 2)
            {
                throw new ExpertScopeException("--tokens-per-domain must be at least 2.");
            }

            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            int modelContext = moe.Hyperparameters.ContextLength;
            int contextLength = parse.GetValue(window) ?? modelContext;
            if (contextLength < 2 || contextLength > modelContext)
            {
                throw new ExpertScopeException($"--context {contextLength} must be between 2 and the model's context of {modelContext} tokens.");
            }

            int step = parse.GetValue(stride) ?? Math.Max(1, contextLength / 2);
            if (step < 1 || step > contextLength)
            {
                throw new ExpertScopeException($"--stride {step} must be between 1 and the window length {contextLength}.");
            }

            var tokenizer = moe.Tokenizer;
            var samples = TokenBudgetSampler.SampleDomains(domains, budget, text => tokenizer.Encode(text, addSpecial: false).Count, contextLength, parse.GetValue(seed));
            var texts = samples.Select(s => (s.Name, (IReadOnlyList<int>)tokenizer.Encode(string.Join("\n\n", s.Chunks.Select(c => c.Text))))).ToList();
            var settings = new DomainPerplexitySettings
            {
                Context = contextLength,
                Stride = step,
                Weight = parse.GetValue(weight) switch { "raw" => SingleExpertWeight.Raw, "mass" => SingleExpertWeight.Mass, _ => SingleExpertWeight.Renormalized },
                ThreadCount = threads,
            };
            using var run = AnalyzeCommand.OpenFolder(context, parse, folder, "analyze-perplexity-table", moe, new Dictionary<string, string>
            {
                ["domains"] = string.Join(";", described),
                ["tokens_per_domain"] = budget.ToString(CultureInfo.InvariantCulture),
                ["context"] = contextLength.ToString(CultureInfo.InvariantCulture),
                ["stride"] = step.ToString(CultureInfo.InvariantCulture),
                ["weight"] = parse.GetValue(weight)!,
            }, parse.GetValue(seed));
            return AnalyzeCommand.Interruptible(context, folder, token =>
            {
                var rows = ProgressDisplay.Run(context, sink => DomainPerplexityTable.Run(moe, texts, settings, run, sink, token));
                DomainPerplexityTable.WriteOutputs(rows, folder, Path.GetFileName(moe.FilePath), settings, contextLength, step, RandomWeightsLine.Check(context, moe));
                AnalyzeCommand.Done(context, folder, watch.Elapsed);
                return 0;
            });
        }));
        return command;
    }
}
