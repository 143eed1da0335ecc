using System.CommandLine;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary><c>prune</c>: keep the most-used experts of every MoE block and write a smaller GGUF without the rest.</summary>
public static class PruneCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new Option<FileInfo>("--model", "-m") { Description = "The source GGUF model.", Required = true };
        var keepPerLayer = new Option<int?>("--keep-per-layer") { Description = "Experts to keep in every MoE block." };
        var keepFraction = new Option<double?>("--keep-fraction") { Description = "Fraction of experts to keep in every MoE block (0..1]." };
        var expertsFile = new Option<FileInfo?>("--experts-file") { Description = "Experts to keep, one line per MoE block: 'LAYER: E, E, …'." };
        var corpus = new Option<FileInfo?>("--corpus") { Description = "Plain text whose routing decides which experts are used most (needed unless --experts-file)." };
        var score = new Option<string>("--score") { Description = "frequency (how often selected) or output-aware (sum of g·‖E(h)‖).", DefaultValueFactory = _ => "frequency" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Corpus tokens to profile at most.", DefaultValueFactory = _ => 8192 };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass.", DefaultValueFactory = _ => 128 };
        var threads = new Option<int?>("--threads", "-t") { Description = "Threads (default: all processors)." };
        var verify = new Option<bool>("--verify") { Description = "Afterwards, check that the pruned model's logits on a short text equal the source's under RemoveExperts, bit for bit." };
        var output = new Option<FileInfo>("--out") { Description = "The pruned GGUF to write.", Required = true };
        var command = new Command("prune", "Write a smaller GGUF keeping the most-used (or listed) experts of every MoE block; router rows and expert-count metadata follow.")
        {
            model, keepPerLayer, keepFraction, expertsFile, corpus, score, maxTokens, chunk, threads, verify, output,
        };
        // The scoring pass and --verify run the model: its attention numbers follow llama.cpp's switches.
        var attention = new AttentionSwitches();
        attention.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            string source = parse.GetValue(model)!.FullName;
            var loadOptions = new ModelLoadOptions { Attention = attention.Parse(parse) };
            int choices = (parse.GetValue(keepPerLayer) is null ? 0 : 1) + (parse.GetValue(keepFraction) is null ? 0 : 1) + (parse.GetValue(expertsFile) is null ? 0 : 1);
            if (choices != 1)
            {
                throw new ExpertScopeException("give exactly one of --keep-per-layer, --keep-fraction and --experts-file.");
            }

            if (!File.Exists(source))
            {
                throw new ExpertScopeException($"The model file '{source}' does not exist.");
            }

            IReadOnlyDictionary<int, IReadOnlyList<int>> keep;
            string? runFolder = null;
            if (parse.GetValue(expertsFile) is { } listFile)
            {
                keep = PruneSelection.ReadKeepFile(listFile.FullName);
            }
            else
            {
                var corpusFile = parse.GetValue(corpus) ?? throw new ExpertScopeException("--corpus is needed to rank experts by usage (or give --experts-file).");
                var scoring = parse.GetValue(score) switch
                {
                    "frequency" => PruneScore.Frequency,
                    "output-aware" => PruneScore.OutputAware,
                    var other => throw new ExpertScopeException($"--score must be 'frequency' or 'output-aware' (got '{other}')."),
                };
                if (!File.Exists(corpusFile.FullName))
                {
                    throw new ExpertScopeException($"--corpus '{corpusFile.FullName}': corpus file not found.");
                }

                if (parse.GetValue(maxTokens) < 1 || parse.GetValue(chunk) < 1)
                {
                    throw new ExpertScopeException("--max-tokens and --chunk must be at least 1.");
                }

                // Every argument is checked against the model's shape before the (long) profiling pass.
                int experts;
                int groups;
                SortedSet<int> layers;
                using (var file = GgufFile.Open(source))
                {
                    string arch = file.Architecture!;
                    experts = (int)file.GetInteger(arch + ".expert_count");
                    groups = (int)(file.TryGetInteger(arch + ".expert_group_count") ?? 1);
                    layers = ExpertPruner.MoeLayers(file);
                }

                int count = parse.GetValue(keepPerLayer) ?? PruneSelection.KeepCountForFraction(parse.GetValue(keepFraction)!.Value, experts, groups);
                PruneSelection.CheckKeepCount(count, experts, groups);
                using var loaded = MoeModel.Load(source, loadOptions);
                var texts = TextCorpus.Chunks(loaded, corpusFile.FullName, parse.GetValue(chunk), parse.GetValue(maxTokens));

                // The scoring pass is journalled in TARGET.run/ (one unit per text) so an interrupted prune resumes it;
                // the folder is removed once the pruned model is written.
                var scoringSettings = PruneSelection.ScoringSettings(scoring, texts);
                foreach (var (key, value) in loadOptions.Attention.NonDefaultSettings())
                {
                    scoringSettings[key] = value;
                }

                runFolder = parse.GetValue(output)!.FullName + ".run";
                double[,] scores;
                using (var run = Experiments.Runs.RunFolder.OpenOrCreate(runFolder, UnitJournal.Manifest("prune-scoring", source, scoringSettings, commandLine: TraceCommand.CommandLineOf(parse))))
                {
                    var journal = new UnitJournal(run);
                    int done = journal.CountFinished(Enumerable.Range(0, texts.Count).Select(PruneSelection.UsageUnit));
                    using var task = new Experiments.Runs.TextProgressSink(context.Error).StartTask("profiling", texts.Count, done, unit: "chunks");
                    scores = PruneSelection.ScoreUsage(loaded, texts, scoring, journal, parse.GetValue(threads), task);
                }

                keep = PruneSelection.TopByScore(scores, layers, experts, count, groups);
            }

            string target = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var summary = ExpertPruner.Write(source, keep, target);
            Experiments.Runs.AtomicFile.WriteAllText(target + ".keep.txt", string.Join("\n",
                ["# experts kept per MoE block (LAYER: E, ...), in the source's numbering; the pruned file renumbers them 0..K-1 in this order",
                 .. keep.OrderBy(p => p.Key).Select(p => p.Key.ToString(CultureInfo.InvariantCulture) + ": " + string.Join(", ", p.Value.Order()))]) + "\n");
            if (runFolder is not null && Directory.Exists(runFolder))
            {
                Directory.Delete(runFolder, recursive: true);
            }

            // Reload through the full loader: the file must validate and build like any checkpoint.
            using (var pruned = MoeModel.Load(target, loadOptions))
            {
                // Usage ranked on a random-weight model is chance: say so before the numbers.
                RandomWeightsLine.Check(context, pruned);
                if (parse.GetValue(verify))
                {
                    Verify(context, source, loadOptions, pruned, keep, parse.GetValue(threads));
                }
            }

            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {target}: {summary.KeptCount} of {summary.ExpertCount} experts per MoE block, k {summary.ExpertUsedCount} -> {summary.NewExpertUsedCount}, {summary.SlicedTensors} tensors sliced, {summary.BytesBefore} -> {summary.BytesAfter} bytes; kept list in {target}.keep.txt"));
            return 0;
        }));
        return command;
    }

    private static void Verify(CliContext context, string source, ModelLoadOptions loadOptions, MoeModel pruned, IReadOnlyDictionary<int, IReadOnlyList<int>> keep, int? threads)
    {
        using var original = MoeModel.Load(source, loadOptions);
        int experts = original.Blocks.Select(b => b.Moe?.Router.Config.ExpertCount ?? 0).Max();
        var removed = PruneSelection.Removed(keep, experts)
            .Where(p => p.Value.Length > 0)
            .Select(p => (Models.Routing.RouterIntervention)new Models.Routing.RemoveExperts(
                Models.Routing.LayerSelector.Only(p.Key), [.. p.Value.Select(e => new ExpertId(e))]))
            .ToList();
        int[] tokens = [.. original.Tokenizer.Encode("The quick brown fox jumps over the lazy dog. 1, 2, 3!").Take(original.Hyperparameters.ContextLength)];
        var expected = original.Run(tokens, new RunOptions { Interventions = removed, ThreadCount = threads });
        var actual = pruned.Run(tokens, new RunOptions { ThreadCount = threads });
        if (!expected.Values.AsSpan().SequenceEqual(actual.Values))
        {
            throw new ExpertScopeException($"{pruned.FilePath}: verification failed: its logits differ from the source's with the pruned experts removed.");
        }

        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"verified: logits on {tokens.Length} tokens equal the source's under RemoveExperts, bit for bit"));
    }
}
