using System.CommandLine;
using System.Globalization;
using System.Text;
using ExpertScope.Experiments.Probes;
using ExpertScope.Experiments.Runs;
using Spectre.Console;

namespace ExpertScope.Cli;

/// <summary>
/// <c>probe word-sense|substitution</c>: the semantic-routing probes of "Probing Semantic Routing in Large
/// Mixture-of-Expert Models" (arXiv 2502.10928) with token-identity, different-word and position controls.
/// </summary>
public static class ProbeCommand
{
    /// <summary>Every file a probe writes into its folder besides the run record (what --overwrite may replace).</summary>
    private static readonly string[] OutputFileNames =
    [
        ProbeOutputs.ResultsFileName, ProbeOutputs.PairsFileName, ProbeOutputs.ReportFileName,
        ProbeRunner.TraceFileName, ProbeRunner.TraceFileName + Experiments.Storage.ParquetTraceWriter.CommitExtension,
    ];

    /// <summary>Builds the verb and its two sub-verbs.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var command = new Command("probe", "Semantic-routing probes: does a word's routing follow its meaning beyond its token identity?");
        command.Subcommands.Add(CreateProbe(context, ProbeKind.WordSense));
        command.Subcommands.Add(CreateProbe(context, ProbeKind.Substitution));
        return command;
    }

    private static Command CreateProbe(CliContext context, ProbeKind kind)
    {
        var model = new Option<FileInfo>("--model", "-m") { Description = "The GGUF model.", Required = true };
        var dataset = new Option<string>("--dataset")
        {
            Description = kind == ProbeKind.WordSense
                ? "wic:dev|wic:train|wic:test, coarsewsd20[:train|test], mcl-wic:LANG (dev) or mcl-wic:SPLIT:L1-L2, wordnet."
                : "swords:dev or swords:test.",
            Required = true,
        };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Evaluation data folder (default: ${ProbeData.EnvironmentVariable}, else ./data)." };
        var wordNetDir = new Option<string?>("--wordnet-dir") { Description = "WordNet 3.0 dict folder (default /usr/share/wordnet)." };
        var limit = new Option<int?>("--limit") { Description = "At most N pairs (seeded sample balanced across labels)." };
        var seed = new Option<int>("--seed") { Description = "Seed of sampling, controls and bootstrap.", DefaultValueFactory = _ => 0 };
        var metric = new Option<string>("--metric") { Description = "Statistic's metric: kappa|kappa-load|overlap|jaccard|weighted|js.", DefaultValueFactory = _ => "kappa" };
        var subTokens = new Option<string>("--subtokens") { Description = "Multi-token words: all (sub-token i with sub-token i, averaged)|first|last.", DefaultValueFactory = _ => "all" };
        var position = new Option<string>("--position") { Description = "Routing read at the target's sub-tokens or at each sentence's last token: target|sentence-end.", DefaultValueFactory = _ => "target" };
        var keepIdenticalPrefixes = new Option<bool>("--keep-identical-prefixes")
        {
            Description = "Keep pairs whose sentences are the same tokens up to the target (a causal model routes them identically; excluded by default).",
        };
        var includeShared = new Option<bool>("--include-shared") { Description = "Count always-active shared experts in the overlaps." };
        var lenient = new Option<bool>("--lenient") { Description = "Skip malformed data records (listed in results.json) instead of stopping." };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Output folder (resumed when it holds an unfinished run with the same settings).", Required = true };
        var threads = new Option<int?>("--threads", "-t") { Description = "Forward-pass threads (results do not depend on it)." };
        var resamples = new Option<int>("--bootstrap") { Description = "Bootstrap resamples.", DefaultValueFactory = _ => 2000 };
        var similarThreshold = new Option<double>("--similar-threshold") { Description = "Lowest SWORDS score counted as similar.", DefaultValueFactory = _ => 0.5 };
        var wordNetDissimilar = new Option<int>("--wordnet-dissimilar") { Description = "WordNet dissimilar substitutes per target (0: none).", DefaultValueFactory = _ => 0 };
        var noInflect = new Option<bool>("--no-inflect") { Description = "Put substitutes in as their SWORDS lemma, not in the target's inflected form." };
        var arithmetic = ArithmeticNames.CreateOption();
        var server = new RoutingServerOptions();
        var shard = new Option<string?>("--shard") { Description = "Route only sentences i, i+n, i+2n, … (i/n) into --out, without analysis; join the shards with expertscope merge, then run the probe on the merged folder." };
        var idsOnly = new Option<bool>("--ids-only") { Description = "Keep expert ids only, as a vLLM/SGLang server gives them (checks a server run against the engine)." };
        var overwrite = new Option<bool>(OutputGuard.OverwriteOption)
        {
            Description = "Start over in an --out folder that holds another run's or a user's results (without it, only an unfinished run with the same settings is resumed).",
        };
        var name = ProbeSettings.KindName(kind);
        var command = new Command(name, kind == ProbeKind.WordSense
            ? "One word in two contexts: is routing more similar for the same sense than for different senses?"
            : "One context, target replaced: is a similar substitute routed more like the original than a dissimilar one?")
        {
            model, dataset, dataDir, wordNetDir, limit, seed, metric, subTokens, position, keepIdenticalPrefixes, includeShared, lenient, output, threads, resamples, arithmetic,
        };
        var attention = new AttentionSwitches();
        attention.AddTo(command);
        server.AddTo(command);
        command.Options.Add(idsOnly);
        command.Options.Add(shard);
        command.Options.Add(overwrite);
        if (kind == ProbeKind.Substitution)
        {
            command.Options.Add(similarThreshold);
            command.Options.Add(wordNetDissimilar);
            command.Options.Add(noInflect);
        }

        command.SetAction(parse => context.Guard(() =>
        {
            var settings = new ProbeSettings
            {
                Kind = kind,
                Dataset = parse.GetRequiredValue(dataset),
                DataFolder = ProbeData.ResolveDataFolder(parse.GetValue(dataDir)),
                WordNetFolder = parse.GetValue(wordNetDir),
                Limit = parse.GetValue(limit),
                Seed = parse.GetValue(seed),
                Metric = ProbeSettings.ParseMetric(parse.GetValue(metric)!),
                SubTokens = ProbeSettings.ParseSubTokens(parse.GetValue(subTokens)!),
                Position = ProbeSettings.ParseReadout(parse.GetValue(position)!),
                KeepIdenticalPrefixes = parse.GetValue(keepIdenticalPrefixes),
                IncludeShared = parse.GetValue(includeShared),
                Lenient = parse.GetValue(lenient),
                ThreadCount = parse.GetValue(threads),
                FloatArithmetic = ArithmeticNames.Parse(parse.GetValue(arithmetic)),
                Attention = attention.Parse(parse),
                BootstrapResamples = parse.GetValue(resamples),
                SimilarThreshold = kind == ProbeKind.Substitution ? parse.GetValue(similarThreshold) : 0.5,
                WordNetDissimilar = kind == ProbeKind.Substitution ? parse.GetValue(wordNetDissimilar) : 0,
                InflectSubstitutes = kind == ProbeKind.Substitution && !parse.GetValue(noInflect),
                Server = server.Parse(parse),
                IdsOnly = parse.GetValue(idsOnly),
            };
            if (settings.Server is not null && settings.Attention.NonDefaultSettings().Count > 0)
            {
                throw new Core.ExpertScopeException("--cache-type-k/-v and --no-flash-attn set the engine's attention; with a routing server its own settings decide (drop them or the server options).");
            }

            var folder = parse.GetRequiredValue(output).FullName;
            OutputGuard.PrepareRunFolder(folder, parse.GetValue(overwrite), OutputFileNames);
            var progress = new TextProgressSink(context.Error);
            // Ctrl+C or SIGTERM: the sentence in flight finishes, what finished is journalled, exit 130 (as trace).
            return AnalyzeCommand.Interruptible(context, folder, stop =>
            {
                var modelPath = parse.GetRequiredValue(model).FullName;
                if (parse.GetValue(shard) is { } shardText)
                {
                    var part = Shard.Parse(shardText);
                    var routed = ProbeExperiment.RouteShardAsync(modelPath, settings, part, folder, progress, TraceCommand.CommandLineOf(parse), stop)
                        .GetAwaiter().GetResult();
                    context.Output.WriteLine($"shard {part}: {routed.SentencesRun} sentences routed, {routed.SentencesResumed} resumed, into {folder}; merge the shards (expertscope merge … --out DIR), then run the probe with --out DIR");
                    return 0;
                }

                var outcome = ProbeExperiment.RunAsync(modelPath, settings, folder, progress, TraceCommand.CommandLineOf(parse), stop)
                    .GetAwaiter().GetResult();
                WriteSummary(context, outcome);
                if (settings.RoutingSourceName != "engine")
                {
                    context.Output.WriteLine($"routing source '{settings.RoutingSourceName}' gives expert ids only: weighted and js are not available (NaN in pairs.csv)");
                }

                context.Output.WriteLine($"wrote {Path.Combine(folder, ProbeOutputs.ResultsFileName)}, {ProbeOutputs.PairsFileName}, {ProbeRunner.TraceFileName}, {ProbeOutputs.ReportFileName}");
                return 0;
            });
        }));
        return command;
    }

    /// <summary>The summary lines and the main comparison per layer: a Spectre table on a terminal, plain columns otherwise.</summary>
    private static void WriteSummary(CliContext context, ProbeOutcome outcome)
    {
        foreach (var line in outcome.Summary)
        {
            context.Output.WriteLine(line);
        }

        var results = outcome.Results;
        foreach (var comparison in results.Comparisons)
        {
            var title = $"{comparison.First} vs {comparison.Second} ({ProbeSettings.MetricName(outcome.Settings.Metric)})";
            var rows = results.Layers.Select((layer, index) => ProbeOutputs.ComparisonRow(layer.ToString(CultureInfo.InvariantCulture), comparison.ByLayer[index]))
                .Append(ProbeOutputs.ComparisonRow("mean", comparison.LayerMean)).ToList();
            if (context.Console.Profile.Capabilities.Ansi)
            {
                var table = new Table { Title = new TableTitle(Markup.Escape(title)) };
                foreach (var column in ProbeOutputs.ComparisonColumns)
                {
                    table.AddColumn(new TableColumn(Markup.Escape(column)));
                }

                foreach (var row in rows)
                {
                    table.AddRow(row.Select(cell => (Spectre.Console.Rendering.IRenderable)new Text(cell)));
                }

                context.Console.Write(table);
            }
            else
            {
                context.Output.WriteLine();
                context.Output.WriteLine(title);
                var all = new List<IReadOnlyList<string>> { ProbeOutputs.ComparisonColumns };
                all.AddRange(rows);
                var widths = Enumerable.Range(0, ProbeOutputs.ComparisonColumns.Count).Select(i => all.Max(row => row[i].Length)).ToArray();
                foreach (var row in all)
                {
                    var text = new StringBuilder("  ");
                    for (var i = 0; i < row.Count; i++)
                    {
                        text.Append(row[i].PadLeft(widths[i])).Append(i < row.Count - 1 ? "  " : string.Empty);
                    }

                    context.Output.WriteLine(text.ToString());
                }
            }
        }
    }
}
