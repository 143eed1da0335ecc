using System.CommandLine;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Steering;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary>
/// <c>steer discover</c>: which experts the router prefers on one prompt set over another;
/// <c>steer evaluate</c>: generate with those experts disabled or forced vs random controls and a baseline.
/// </summary>
public static class SteerCommand
{
    /// <summary>Creates the verb with its two subcommands.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var command = new Command("steer", "Find behaviour experts (discover) and steer generation with them (evaluate).");
        command.Subcommands.Add(Discover(context));
        command.Subcommands.Add(Evaluate(context));
        return command;
    }

    private static Command Discover(CliContext context)
    {
        var model = new Option<FileInfo>("--model") { Description = "The GGUF model.", Required = true };
        var positive = new Option<FileInfo?>("--positive") { Description = "Positive prompt set (.json array, .jsonl, or text lines)." };
        var negative = new Option<FileInfo?>("--negative") { Description = "Negative prompt set." };
        var field = new Option<string>("--field") { Description = "Object field holding the prompt in JSON / JSONL.", DefaultValueFactory = _ => PromptSet.DefaultField };
        var template = new Option<string?>("--template") { Description = "Template applied to both sets: {x} = the prompt, {name} = a --slot, {a|b} = inline alternatives, {{ }} = braces." };
        var positiveTemplate = new Option<string?>("--positive-template") { Description = "Template for the positive set only (without {x} it stands alone, replacing --positive)." };
        var negativeTemplate = new Option<string?>("--negative-template") { Description = "Template for the negative set only (without {x} it stands alone, replacing --negative)." };
        var slots = new Option<string[]>("--slot") { Description = "Slot values: name=v1|v2|… (repeatable).", AllowMultipleArgumentsPerToken = false, DefaultValueFactory = _ => [] };
        var limit = new Option<int?>("--limit") { Description = "Use at most this many prompts from each file." };
        var scope = new Option<string>("--tokens") { Description = "Tokens counted: all (every prompt token) or last (each prompt's last token).", DefaultValueFactory = _ => "all" };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: all processors)." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder (ranked.csv, ranked.json, report.html).", Required = true };
        var command = new Command("discover", "Rank (layer, expert) pairs by how differently the router selects them on two prompt sets (Fisher exact test, BH correction).")
        {
            model, positive, negative, field, template, positiveTemplate, negativeTemplate, slots, limit, scope, threads, output,
        };
        var attention = new AttentionSwitches();
        attention.AddTo(command);
        var chat = new ChatOptions();
        chat.AddTo(command);
        var server = new RoutingServerOptions();
        server.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            var serverSettings = server.Parse(parse);
            var slotValues = PromptTemplate.ParseSlots(parse.GetValue(slots) ?? []);
            var shared = parse.GetValue(template) is { } t ? PromptTemplate.Parse(t, slotValues) : null;
            var positivePrompts = Prompts(parse.GetValue(positive), parse.GetValue(positiveTemplate), shared, slotValues, parse.GetValue(field)!, parse.GetValue(limit), "--positive");
            var negativePrompts = Prompts(parse.GetValue(negative), parse.GetValue(negativeTemplate), shared, slotValues, parse.GetValue(field)!, parse.GetValue(limit), "--negative");
            var chatTemplate = chat.Resolve(parse, parse.GetValue(model)!.FullName);
            positivePrompts = [.. positivePrompts.Select(p => chat.Apply(parse, chatTemplate, p))];
            negativePrompts = [.. negativePrompts.Select(p => chat.Apply(parse, chatTemplate, p))];
            var tokenScope = parse.GetValue(scope) switch
            {
                "all" => TokenScope.AllTokens,
                "last" => TokenScope.LastToken,
                var other => throw new ExpertScopeException($"--tokens must be 'all' or 'last' (got '{other}')."),
            };
            string folder = parse.GetValue(output)!.FullName;
            string modelPath = parse.GetValue(model)!.FullName;

            // Everything that decides the ranking; prompt files are compared by content, not by path.
            var runSettings = new Dictionary<string, string>
            {
                ["positive prompts sha256"] = UnitJournal.HashOf(positivePrompts),
                ["negative prompts sha256"] = UnitJournal.HashOf(negativePrompts),
                ["positive prompts"] = positivePrompts.Count.ToString(CultureInfo.InvariantCulture),
                ["negative prompts"] = negativePrompts.Count.ToString(CultureInfo.InvariantCulture),
                ["tokens"] = parse.GetValue(scope)!,
            };
            var attentionSettings = attention.Parse(parse);
            if (attentionSettings != AttentionSettings.Default)
            {
                runSettings["attention"] = attentionSettings.ToString();
            }

            if (chat.Describe(parse, chatTemplate) is { } chatSetting)
            {
                runSettings["chat template"] = chatSetting;
            }

            if (serverSettings is not null)
            {
                // Only a server is recorded, so runs made before the option existed still resume.
                runSettings["routing source"] = serverSettings.Kind == Experiments.RoutingSources.ServerKind.Vllm ? "vllm" : "sglang";
            }

            using var run = RunFolder.OpenOrCreate(folder, UnitJournal.Manifest("steer-discover", modelPath, runSettings, commandLine: TraceCommand.CommandLineOf(parse)));
            var journal = new UnitJournal(run);
            using var loaded = MoeModel.Load(modelPath, new ModelLoadOptions { Attention = attentionSettings });
            using var serverSource = serverSettings?.CreateSource(loaded.File, Formats.ModelInfo.FromGguf(loaded.File));
            var progress = new TextProgressSink(context.Error);
            ExpertActivityRecorder Profile(IReadOnlyList<string> prompts, string name, string prefix)
            {
                int done = journal.CountFinished(Enumerable.Range(0, prompts.Count).Select(i => BehaviourDiscovery.UnitId(prefix, i)));
                using var task = progress.StartTask(name, prompts.Count, done, unit: "prompts");
                return serverSource is null
                    ? BehaviourDiscovery.Profile(loaded, prompts, tokenScope, journal, prefix, parse.GetValue(threads), task)
                    : BehaviourDiscovery.Profile(loaded, serverSource, prompts, tokenScope, journal, prefix, task);
            }

            var ranked = BehaviourDiscovery.Compare(Profile(positivePrompts, "positive set", "positive"), Profile(negativePrompts, "negative set", "negative"), weightsAvailable: serverSource is null);
            var settings = new Dictionary<string, string>
            {
                ["model"] = loaded.FilePath,
                ["positive"] = parse.GetValue(positive)?.FullName ?? parse.GetValue(positiveTemplate) ?? string.Empty,
                ["negative"] = parse.GetValue(negative)?.FullName ?? parse.GetValue(negativeTemplate) ?? string.Empty,
                ["template"] = parse.GetValue(template) ?? string.Empty,
                ["positive prompts"] = positivePrompts.Count.ToString(CultureInfo.InvariantCulture),
                ["negative prompts"] = negativePrompts.Count.ToString(CultureInfo.InvariantCulture),
                ["tokens"] = parse.GetValue(scope)!,
                ["routing source"] = serverSource?.Kind ?? "engine",
            };
            if (serverSource is not null)
            {
                context.Output.WriteLine(BehaviourDiscovery.WeightsUnavailable(serverSource.Kind));
            }

            BehaviourDiscovery.WriteOutputs(folder, ranked, settings, randomWeights: RandomWeightsLine.Check(context, loaded), idsOnlySource: serverSource?.Kind);
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{ranked.Count(r => r.AdjustedPValue < 0.05)} of {ranked.Count} (layer, expert) pairs differ at BH p < 0.05; wrote {Path.Combine(folder, "ranked.csv")}"));
            foreach (var r in ranked.Take(10))
            {
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  #{r.Rank} L{r.Layer}:E{r.Expert} {r.Direction} freq {r.PositiveFrequency:F3} vs {r.NegativeFrequency:F3}, log OR {r.LogOddsRatio:F2}, p(BH) {r.AdjustedPValue:G3}"));
            }

            return 0;
        }));
        return command;
    }

    private static Command Evaluate(CliContext context)
    {
        var model = new Option<FileInfo>("--model") { Description = "The GGUF model.", Required = true };
        var experts = new Option<string>("--experts") { Description = "A ranked.csv from 'steer discover', or a list L:E,L:E,….", Required = true };
        var top = new Option<int>("--top") { Description = "Steer the first N experts of the list.", DefaultValueFactory = _ => 5 };
        var direction = new Option<string>("--direction") { Description = "From a ranked.csv, keep experts more active on the positive set (positive), less (negative), or any.", DefaultValueFactory = _ => "positive" };
        var mode = new Option<string>("--mode") { Description = "disable or force.", DefaultValueFactory = _ => "disable" };
        var prompts = new Option<FileInfo>("--prompts") { Description = "Behaviour prompts whose replies are classified.", Required = true };
        var field = new Option<string>("--field") { Description = "Object field holding the prompt in JSON / JSONL.", DefaultValueFactory = _ => PromptSet.DefaultField };
        var limit = new Option<int?>("--limit") { Description = "Use at most this many behaviour prompts." };
        var neutral = new Option<FileInfo>("--neutral") { Description = "Neutral text, one passage per line: perplexity and greedy-agreement side effects.", Required = true };
        var neutralLimit = new Option<int>("--neutral-limit") { Description = "Use at most this many neutral lines.", DefaultValueFactory = _ => 32 };
        var seeds = new Option<int>("--seeds") { Description = "Random-expert controls (one per seed).", DefaultValueFactory = _ => 3 };
        var classifier = new Option<string>("--classifier") { Description = "refusal (built-in phrase list) or a regular expression.", DefaultValueFactory = _ => "refusal" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Greedy tokens per reply.", DefaultValueFactory = _ => 32 };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: all processors)." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder.", Required = true };
        var command = new Command("evaluate", "Generate with the top-N experts disabled or forced, vs random experts (per seed) and the baseline; measure behaviour and side effects.")
        {
            model, experts, top, direction, mode, prompts, field, limit, neutral, neutralLimit, seeds, classifier, maxNew, threads, output,
        };
        var attention = new AttentionSwitches();
        attention.AddTo(command);
        var chat = new ChatOptions();
        chat.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            string expertsText = parse.GetValue(experts)!;
            var list = File.Exists(expertsText)
                ? SteeringEvaluation.ReadRanked(expertsText, parse.GetValue(direction)!)
                : SteeringEvaluation.ParseList(expertsText);
            int n = parse.GetValue(top);
            if (n < 1)
            {
                throw new ExpertScopeException("--top must be at least 1.");
            }

            var chosen = list.Take(n).ToList();
            var steeringMode = parse.GetValue(mode) switch
            {
                "disable" => SteeringMode.Disable,
                "force" => SteeringMode.Force,
                var other => throw new ExpertScopeException($"--mode must be 'disable' or 'force' (got '{other}')."),
            };
            var chatTemplate = chat.Resolve(parse, parse.GetValue(model)!.FullName);
            IReadOnlyList<string> behaviour = [.. PromptSet.Load(parse.GetValue(prompts)!.FullName, parse.GetValue(field), parse.GetValue(limit)).Select(p => chat.Apply(parse, chatTemplate, p))];
            var neutralLines = PromptSet.Load(parse.GetValue(neutral)!.FullName, limit: parse.GetValue(neutralLimit));
            var rule = BehaviourClassifier.FromOption(parse.GetValue(classifier)!);
            string folder = parse.GetValue(output)!.FullName;
            string modelPath = parse.GetValue(model)!.FullName;
            var options = new SteeringOptions { Mode = steeringMode, Seeds = parse.GetValue(seeds), MaxNewTokens = parse.GetValue(maxNew), Threads = parse.GetValue(threads) };
            var runSettings = new Dictionary<string, string>
            {
                ["experts"] = string.Join(" ", chosen),
                ["mode"] = parse.GetValue(mode)!,
                ["prompts sha256"] = UnitJournal.HashOf(behaviour),
                ["neutral sha256"] = UnitJournal.HashOf(neutralLines),
                ["seeds"] = options.Seeds.ToString(CultureInfo.InvariantCulture),
                ["max new tokens"] = options.MaxNewTokens.ToString(CultureInfo.InvariantCulture),
            };
            var attentionSettings = attention.Parse(parse);
            if (attentionSettings != AttentionSettings.Default)
            {
                runSettings["attention"] = attentionSettings.ToString();
            }

            if (chat.Describe(parse, chatTemplate) is { } chatSetting)
            {
                runSettings["chat template"] = chatSetting;
            }

            using var run = RunFolder.OpenOrCreate(folder, UnitJournal.Manifest("steer-evaluate", modelPath, runSettings, commandLine: TraceCommand.CommandLineOf(parse)));
            using var loaded = MoeModel.Load(modelPath, new ModelLoadOptions { Attention = attentionSettings });
            var results = SteeringEvaluation.Run(loaded, chosen, behaviour, neutralLines, rule, options, new TextProgressSink(context.Error), new UnitJournal(run));
            var settings = new Dictionary<string, string>
            {
                ["model"] = loaded.FilePath,
                ["experts"] = string.Join(" ", chosen),
                ["mode"] = parse.GetValue(mode)!,
                ["prompts"] = parse.GetValue(prompts)!.FullName,
                ["neutral"] = parse.GetValue(neutral)!.FullName,
                ["seeds"] = options.Seeds.ToString(CultureInfo.InvariantCulture),
                ["classifier"] = rule.Name,
                ["max new tokens"] = options.MaxNewTokens.ToString(CultureInfo.InvariantCulture),
            };
            SteeringEvaluation.WriteOutputs(folder, results, behaviour, rule, settings, RandomWeightsLine.Check(context, loaded));
            foreach (var r in results)
            {
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name,-10} behaviour {r.BehaviourRate:F3} ({r.Flagged}/{r.Prompts})  neutral ppl {r.NeutralPerplexity:F3}  agreement exact {r.ExactAgreement:F3} prefix {r.PrefixAgreement:F3}"));
            }

            return 0;
        }));
        return command;
    }

    private static IReadOnlyList<string> Prompts(FileInfo? file, string? ownTemplate, PromptTemplate? shared, IReadOnlyDictionary<string, IReadOnlyList<string>> slots, string field, int? limit, string name)
    {
        var template = ownTemplate is not null ? PromptTemplate.Parse(ownTemplate, slots) : shared;
        if (file is null)
        {
            if (template is null || template.HasInput)
            {
                throw new ExpertScopeException($"{name}: give a prompt file, or a standalone template (one without {{x}}).");
            }

            return template.ExpandAll([]);
        }

        var prompts = PromptSet.Load(file.FullName, field, limit);
        return template is null ? prompts : template.ExpandAll(prompts);
    }
}
