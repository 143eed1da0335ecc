using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Lens;
using ExpertScope.Experiments.Tracing;

namespace ExpertScope.Cli;

/// <summary>
/// <c>analyze token-id</c>: per layer, how consistently frequent token ids go to their modal experts, and how much
/// of the top-1 expert's entropy the token id explains (I(E; T)) versus the context (H(E | T)).
/// </summary>
public static class AnalyzeTokenIdCommand
{
    /// <summary>Creates the sub-verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var output = AnalyzeCommand.OutOption();
        var baseline = AnalyzeCommand.BaselineOption();
        var input = new Option<FileInfo?>("--input", "-i") { Description = "Input texts: one per line (.txt) or one JSON object per line (.jsonl, field 'text'). Longer texts are cut to the context." };
        var dataDir = new Option<DirectoryInfo?>("--data-dir") { Description = "Use the built-in domains of this evaluation data folder instead (--tokens-per-domain from each)." };
        var tokensPerDomain = new Option<long>("--tokens-per-domain") { Description = "With --data-dir: tokens drawn from each domain (default 5000).", DefaultValueFactory = _ => 5000 };
        var seed = new Option<int>("--seed") { Description = "With --data-dir: seed of the document shuffle (default 0).", DefaultValueFactory = _ => 0 };
        var minimum = new Option<int>("--min-occurrences") { Description = "Analyse token ids seen at least this often (default 10).", DefaultValueFactory = _ => 10 };
        var includeSpecial = new Option<bool>("--include-special") { Description = "Count BOS, EOS and control tokens too (default: left out)." };
        var positionBucket = new Option<int>("--position-bucket")
        {
            Description = $"Positions per bucket of the consistency-by-position table (default {TokenIdAnalysis.DefaultPositionBucket}).",
            DefaultValueFactory = _ => TokenIdAnalysis.DefaultPositionBucket,
        };
        var command = new Command("token-id", "Is routing decided by the token id or its context? Per-layer consistency and I(E; T) vs H(E).");
        model.AddTo(command);
        command.Options.Add(input);
        command.Options.Add(dataDir);
        command.Options.Add(tokensPerDomain);
        command.Options.Add(seed);
        command.Options.Add(minimum);
        command.Options.Add(includeSpecial);
        command.Options.Add(positionBucket);
        command.Options.Add(output);
        command.Options.Add(baseline);
        var server = new RoutingServerOptions();
        server.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            AnalyzeCommand.CheckBaseline(parse, baseline, "token-id");
            var watch = Stopwatch.StartNew();
            string folder = parse.GetValue(output)!.FullName;
            var inputFile = parse.GetValue(input);
            var data = parse.GetValue(dataDir);
            if ((inputFile is null) == (data is null))
            {
                throw new ExpertScopeException("Give exactly one of --input and --data-dir.");
            }

            int minimumOccurrences = parse.GetValue(minimum);
            if (minimumOccurrences < 1)
            {
                throw new ExpertScopeException("--min-occurrences must be at least 1.");
            }

            int bucket = parse.GetValue(positionBucket);
            if (bucket < 1)
            {
                throw new ExpertScopeException("--position-bucket must be at least 1.");
            }

            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            int contextLength = moe.Hyperparameters.ContextLength;
            var groups = new List<RoutingGroup>();
            string source;
            if (inputFile is not null)
            {
                var prompts = PromptFile.Read(inputFile.FullName);
                var sequences = new List<IReadOnlyList<int>>();
                foreach (var prompt in prompts)
                {
                    var ids = moe.Tokenizer.Encode(prompt.Text);
                    if (ids.Count > contextLength)
                    {
                        context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"warning: {inputFile.FullName}:{prompt.LineNumber}: cut from {ids.Count} to {contextLength} tokens (the model's context)."));
                        ids = [.. ids.Take(contextLength)];
                    }

                    sequences.Add(ids);
                }

                groups.Add(new RoutingGroup("input", sequences));
                source = inputFile.FullName;
            }
            else
            {
                var catalog = new DomainCorpusCatalog(data!.FullName);
                var tokenizer = moe.Tokenizer;
                int maxChunk = contextLength - (tokenizer.AddBos ? 1 : 0);
                var samples = TokenBudgetSampler.SampleDomains(
                    catalog.Names.Select(n => new KeyValuePair<string, IReadOnlyList<CorpusDocument>>(n, catalog.Load(n))),
                    parse.GetValue(tokensPerDomain), text => tokenizer.Encode(text, addSpecial: false).Count, maxChunk, parse.GetValue(seed));
                groups.AddRange(samples.Select(s => new RoutingGroup(s.Name, [.. s.Chunks.Select(c => tokenizer.Encode(c.Text))])));
                source = data.FullName + string.Create(CultureInfo.InvariantCulture, $" ({parse.GetValue(tokensPerDomain)} tokens per domain)");
            }

            var serverSettings = server.Parse(parse);
            using var serverSource = serverSettings?.CreateSource(moe.File, Formats.ModelInfo.FromGguf(moe.File));
            var settings = new Dictionary<string, string> { ["source"] = source };
            if (serverSource is not null)
            {
                // Only a server is recorded, so runs made before the option existed still resume.
                settings["routing_source"] = serverSource.Kind;
            }

            using var run = AnalyzeCommand.OpenFolder(context, parse, folder, "analyze-token-id", moe, settings, data is null ? null : parse.GetValue(seed));
            return AnalyzeCommand.Interruptible(context, folder, token =>
            {
                var result = ProgressDisplay.Run(context, sink => TokenIdAnalysis.Run(moe, run, groups, minimumOccurrences, sink, threads, token, parse.GetValue(includeSpecial), bucket, serverSource));
                TokenIdAnalysis.WriteOutputs(result, folder, Path.GetFileName(moe.FilePath), moe, RandomWeightsLine.Check(context, moe));
                AnalyzeSummaries.TokenId(context, result);
                AnalyzeCommand.CompareWithBaseline(context, parse, baseline, folder);
                AnalyzeCommand.Done(context, folder, watch.Elapsed);
                return 0;
            });
        }));
        return command;
    }
}
