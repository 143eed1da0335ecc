using System.CommandLine;
using System.Globalization;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary><c>super-experts</c>: find experts with extreme down-projection outputs, the massive activations they cause, and what pruning them costs.</summary>
public static class SuperExpertsCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new Option<FileInfo>("--model") { Description = "The GGUF model.", Required = true };
        var corpus = new Option<FileInfo>("--corpus") { Description = "Plain text to profile on.", Required = true };
        var percentile = new Option<double>("--percentile") { Description = "Flag maxima above this percentile of all routed experts' maxima.", DefaultValueFactory = _ => 99.5 };
        var fraction = new Option<double>("--fraction") { Description = "... and above this fraction of the largest maximum.", DefaultValueFactory = _ => 0.1 };
        var layersFraction = new Option<double>("--layers-fraction") { Description = "Only blocks in the first this-fraction of the model.", DefaultValueFactory = _ => 0.75 };
        var seeds = new Option<int>("--seeds") { Description = "Random-pruning controls (one per seed).", DefaultValueFactory = _ => 3 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Corpus tokens at most.", DefaultValueFactory = _ => 4096 };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per sequence, BOS included (2048 as the reference code; capped by the context).", DefaultValueFactory = _ => 2048 };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: all processors)." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder.", Required = true };
        var command = new Command("super-experts", "Profile each expert's largest down-projection output, flag super experts, report massive activations, and compare pruning them with pruning random experts.")
        {
            model, corpus, percentile, fraction, layersFraction, seeds, maxTokens, chunk, threads, output,
        };
        var attention = new AttentionSwitches();
        attention.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            string folder = parse.GetValue(output)!.FullName;
            string modelPath = parse.GetValue(model)!.FullName;
            using var loaded = MoeModel.Load(modelPath, new ModelLoadOptions { Attention = attention.Parse(parse) });
            var texts = TextCorpus.Chunks(loaded, parse.GetValue(corpus)!.FullName, parse.GetValue(chunk), parse.GetValue(maxTokens));
            var options = new SuperExpertOptions
            {
                Percentile = parse.GetValue(percentile),
                Fraction = parse.GetValue(fraction),
                LayersFraction = parse.GetValue(layersFraction),
                Seeds = parse.GetValue(seeds),
                Threads = parse.GetValue(threads),
            };
            var runSettings = SuperExperts.RunSettings(texts, options);
            foreach (var (key, value) in loaded.Attention.NonDefaultSettings())
            {
                runSettings[key] = value;
            }

            using var run = RunFolder.OpenOrCreate(folder, UnitJournal.Manifest("super-experts", modelPath, runSettings, commandLine: TraceCommand.CommandLineOf(parse)));
            var profile = SuperExperts.Analyse(loaded, texts, options, new TextProgressSink(context.Error), new UnitJournal(run));
            var settings = new Dictionary<string, string>
            {
                ["model"] = loaded.FilePath,
                ["corpus"] = parse.GetValue(corpus)!.FullName,
                ["sequences"] = texts.Count.ToString(CultureInfo.InvariantCulture),
                ["tokens"] = texts.Sum(t => t.Count).ToString(CultureInfo.InvariantCulture),
                ["percentile"] = options.Percentile.ToString(CultureInfo.InvariantCulture),
                ["fraction"] = options.Fraction.ToString(CultureInfo.InvariantCulture),
                ["layers fraction"] = options.LayersFraction.ToString(CultureInfo.InvariantCulture),
            };
            SuperExperts.WriteOutputs(folder, profile, settings, RandomWeightsLine.Check(context, loaded));
            var flagged = profile.Experts.Where(e => e.Flagged).ToList();
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{flagged.Count} super expert(s): {string.Join(", ", flagged.Select(e => e.IsShared ? $"L{e.Layer}:shared ({e.MaxAbs:G4})" : $"L{e.Layer}:E{e.Expert} ({e.MaxAbs:G4})"))}"));
            foreach (var c in profile.Pruning)
            {
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {c.Name,-14} perplexity {c.Perplexity:F4}"));
            }

            context.Output.WriteLine("wrote " + Path.Combine(folder, "report.html"));
            return 0;
        }));
        return command;
    }
}
