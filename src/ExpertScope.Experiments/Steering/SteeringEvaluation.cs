using System.Collections.Immutable;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Steering;

/// <summary>How the chosen experts are steered.</summary>
public enum SteeringMode
{
    /// <summary>The experts can never be selected (<see cref="DisableExperts"/>).</summary>
    Disable,

    /// <summary>The experts are always selected (<see cref="ForceExperts"/>).</summary>
    Force,
}

/// <summary>A routed expert of a block.</summary>
/// <param name="Layer">GGUF block index.</param>
/// <param name="Expert">Expert index.</param>
public readonly record struct LayerExpert(int Layer, int Expert)
{
    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Layer}:{Expert}");
}

/// <summary>Settings of a steering evaluation.</summary>
public sealed record SteeringOptions
{
    /// <summary>Disable or force.</summary>
    public SteeringMode Mode { get; init; } = SteeringMode.Disable;

    /// <summary>Control conditions: one set of random experts per seed (seeds 1..Seeds).</summary>
    public int Seeds { get; init; } = 3;

    /// <summary>Greedy tokens generated per prompt.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Threads (null = processor count).</summary>
    public int? Threads { get; init; }
}

/// <summary>One condition's outcome.</summary>
/// <param name="Name">baseline, steered, or control-SEED.</param>
/// <param name="Experts">Experts steered (empty for the baseline).</param>
/// <param name="Flagged">Behaviour prompts whose reply the classifier flagged.</param>
/// <param name="Prompts">Behaviour prompts.</param>
/// <param name="NeutralPerplexity">Perplexity on the neutral corpus.</param>
/// <param name="ExactAgreement">Share of neutral prompts whose greedy continuation equals the baseline's.</param>
/// <param name="PrefixAgreement">Mean share of the baseline continuation reproduced before the first differing token.</param>
/// <param name="Replies">The behaviour prompts' replies.</param>
public sealed record SteeringConditionResult(
    string Name,
    IReadOnlyList<LayerExpert> Experts,
    int Flagged,
    int Prompts,
    double NeutralPerplexity,
    double ExactAgreement,
    double PrefixAgreement,
    IReadOnlyList<string> Replies)
{
    /// <summary>Flagged / prompts.</summary>
    public double BehaviourRate => Prompts == 0 ? double.NaN : (double)Flagged / Prompts;
}

/// <summary>
/// Steering evaluation: generates with the chosen experts disabled or forced, with the same number of random experts
/// per block (one control per seed), and without intervention; measures the behaviour rate with a classifier and the
/// side effects on a neutral corpus (perplexity, agreement of greedy continuations with the baseline).
/// </summary>
public static class SteeringEvaluation
{
    /// <summary>
    /// Reads experts from a <c>ranked.csv</c> written by discovery, in rank order, keeping those whose direction is
    /// <paramref name="direction"/> (<c>positive</c>, <c>negative</c>, or <c>any</c>).
    /// </summary>
    /// <exception cref="ExpertScopeException">The file lacks the layer / expert / direction columns.</exception>
    public static IReadOnlyList<LayerExpert> ReadRanked(string path, string direction = "positive")
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0)
        {
            throw new ExpertScopeException($"{path}: empty.");
        }

        var header = lines[0].Split(',');
        int layer = Array.IndexOf(header, "layer");
        int expert = Array.IndexOf(header, "expert");
        int dir = Array.IndexOf(header, "direction");
        if (layer < 0 || expert < 0)
        {
            throw new ExpertScopeException($"{path}: expected the columns 'layer' and 'expert' (a ranked.csv from 'steer discover').");
        }

        var experts = new List<LayerExpert>();
        for (int i = 1; i < lines.Length; i++)
        {
            var fields = lines[i].Split(',');
            if (fields.Length <= Math.Max(layer, expert))
            {
                continue;
            }

            if (direction != "any" && dir >= 0 && fields[dir] != direction)
            {
                continue;
            }

            experts.Add(new LayerExpert(
                int.Parse(fields[layer], CultureInfo.InvariantCulture),
                int.Parse(fields[expert], CultureInfo.InvariantCulture)));
        }

        return experts;
    }

    /// <summary>Parses <c>L:E,L:E,…</c>.</summary>
    /// <exception cref="ExpertScopeException">A malformed item.</exception>
    public static IReadOnlyList<LayerExpert> ParseList(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var experts = new List<LayerExpert>();
        foreach (string item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split(':');
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int layer)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int expert))
            {
                throw new ExpertScopeException($"'{item}' is not LAYER:EXPERT.");
            }

            experts.Add(new LayerExpert(layer, expert));
        }

        return experts;
    }

    /// <summary>
    /// A control set: in every block of <paramref name="chosen"/>, as many random experts of that block as were chosen
    /// there, none of them chosen (fewer if the block has too few others).
    /// </summary>
    public static IReadOnlyList<LayerExpert> RandomControl(IReadOnlyList<LayerExpert> chosen, int expertCount, int seed)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        var random = new Random(seed);
        var control = new List<LayerExpert>();
        foreach (var group in chosen.GroupBy(c => c.Layer).OrderBy(g => g.Key))
        {
            var taken = group.Select(c => c.Expert).ToHashSet();
            var pool = Enumerable.Range(0, expertCount).Where(e => !taken.Contains(e)).ToArray();
            random.Shuffle(pool);
            control.AddRange(pool.Take(group.Count()).Order().Select(e => new LayerExpert(group.Key, e)));
        }

        return control;
    }

    /// <summary>The router interventions that steer <paramref name="experts"/> (one per block).</summary>
    public static IReadOnlyList<RouterIntervention> Interventions(IEnumerable<LayerExpert> experts, SteeringMode mode)
    {
        ArgumentNullException.ThrowIfNull(experts);
        return [.. experts.GroupBy(e => e.Layer).OrderBy(g => g.Key).Select(g =>
        {
            ImmutableArray<ExpertId> ids = [.. g.Select(e => new ExpertId(e.Expert)).Distinct()];
            return mode == SteeringMode.Disable
                ? (RouterIntervention)new DisableExperts(LayerSelector.Only(g.Key), ids)
                : new ForceExperts(LayerSelector.Only(g.Key), ids);
        })];
    }

    /// <summary>Runs baseline, steered and control conditions.</summary>
    /// <param name="model">The model.</param>
    /// <param name="experts">The experts to steer (already cut to the top N).</param>
    /// <param name="behaviourPrompts">Prompts whose replies are classified.</param>
    /// <param name="neutralTexts">Neutral corpus: perplexity per line, and each line as a prompt for the agreement check.</param>
    /// <param name="classifier">Behaviour classifier.</param>
    /// <param name="options">Settings.</param>
    /// <param name="progress">Progress sink (one unit per generation or perplexity line).</param>
    /// <param name="journal">
    /// Finished work of an earlier attempt: each generation (<c>CONDITION/behaviour/I</c>, <c>CONDITION/neutral/I</c>, its
    /// tokens) and each neutral line's perplexity share (<c>CONDITION/perplexity/I</c>) is a unit; finished units are not
    /// run again. Null keeps nothing.
    /// </param>
    /// <param name="cancellationToken">Stops before the next unfinished unit.</param>
    public static IReadOnlyList<SteeringConditionResult> Run(
        MoeModel model,
        IReadOnlyList<LayerExpert> experts,
        IReadOnlyList<string> behaviourPrompts,
        IReadOnlyList<string> neutralTexts,
        BehaviourClassifier classifier,
        SteeringOptions options,
        IProgressSink? progress = null,
        UnitJournal? journal = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(experts);
        ArgumentNullException.ThrowIfNull(behaviourPrompts);
        ArgumentNullException.ThrowIfNull(neutralTexts);
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= NullProgressSink.Instance;
        journal ??= UnitJournal.None;
        if (experts.Count == 0)
        {
            throw new ExpertScopeException("no experts to steer.");
        }

        int expertCount = model.Blocks.Select(b => b.Moe?.Router.Config.ExpertCount ?? 0).Max();
        foreach (var e in experts)
        {
            if (e.Layer < 0 || e.Layer >= model.Blocks.Count || model.Blocks[e.Layer].Moe is null)
            {
                throw new ExpertScopeException($"expert {e}: block {e.Layer} has no routed experts.");
            }
        }

        var conditions = new List<(string Name, IReadOnlyList<LayerExpert> Experts)> { ("baseline", []), ("steered", experts) };
        for (int seed = 1; seed <= options.Seeds; seed++)
        {
            conditions.Add(("control-" + seed.ToString(CultureInfo.InvariantCulture), RandomControl(experts, expertCount, seed)));
        }

        var behaviourTokens = behaviourPrompts.Select(p => BehaviourDiscovery.Tokenize(model, p)).ToList();
        var neutralTokens = neutralTexts.Select(p => BehaviourDiscovery.Tokenize(model, p)).ToList();
        var stop = model.Tokenizer.EosId is { } eos ? new[] { eos } : [];
        List<IReadOnlyList<int>>? baselineNeutral = null;
        var results = new List<SteeringConditionResult>();
        foreach (var (name, chosen) in conditions)
        {
            var run = new RunOptions { Interventions = Interventions(chosen, options.Mode), ThreadCount = options.Threads };
            var generation = new GenerationOptions { MaxNewTokens = options.MaxNewTokens, StopTokens = stop, Run = run };
            string Unit(string part, int i) => string.Create(CultureInfo.InvariantCulture, $"{name}/{part}/{i}");
            var units = Enumerable.Range(0, behaviourTokens.Count).Select(i => Unit("behaviour", i))
                .Concat(Enumerable.Range(0, neutralTokens.Count).SelectMany(i => new[] { Unit("perplexity", i), Unit("neutral", i) }));
            using var task = progress.StartTask(name, behaviourTokens.Count + 2L * neutralTokens.Count, journal.CountFinished(units), unit: "runs");
            var replies = new List<string>();
            int flagged = 0;
            for (int i = 0; i < behaviourTokens.Count; i++)
            {
                var tokens = behaviourTokens[i];
                var generated = UnitJournal.ParseTokens(journal.GetOrCompute(Unit("behaviour", i), () => UnitJournal.FormatTokens(Generate(model, tokens, generation)), cancellationToken));
                string reply = model.Tokenizer.Decode(generated, removeSpecial: true, unparseSpecial: false);
                replies.Add(reply);
                flagged += classifier.Matches(reply) ? 1 : 0;
                task.Advance();
            }

            // Pooled exactly as Perplexity.Evaluate pools: each line's share, added in order.
            double negativeLogLikelihood = 0;
            long predicted = 0;
            for (int i = 0; i < neutralTokens.Count; i++)
            {
                var tokens = neutralTokens[i];
                var share = UnitJournal.ParsePerplexity(journal.GetOrCompute(Unit("perplexity", i), () => UnitJournal.Format(Perplexity.EvaluateSequence(model, tokens, run)), cancellationToken));
                negativeLogLikelihood += share.NegativeLogLikelihood;
                predicted += share.PredictedTokens;
                task.Advance();
            }

            var perplexity = new PerplexityResult(negativeLogLikelihood, predicted);
            var neutral = new List<IReadOnlyList<int>>();
            for (int i = 0; i < neutralTokens.Count; i++)
            {
                var tokens = neutralTokens[i];
                neutral.Add(UnitJournal.ParseTokens(journal.GetOrCompute(Unit("neutral", i), () => UnitJournal.FormatTokens(Generate(model, tokens, generation)), cancellationToken)));
                task.Advance();
            }

            baselineNeutral ??= neutral;
            var (exact, prefix) = Agreement(baselineNeutral, neutral);
            results.Add(new SteeringConditionResult(name, chosen, flagged, behaviourTokens.Count, perplexity.Perplexity, exact, prefix, replies));
        }

        return results;
    }

    /// <summary>Share of identical sequences, and the mean share of each reference reproduced before the first difference.</summary>
    public static (double Exact, double Prefix) Agreement(IReadOnlyList<IReadOnlyList<int>> reference, IReadOnlyList<IReadOnlyList<int>> other)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(other);
        if (reference.Count == 0)
        {
            return (double.NaN, double.NaN);
        }

        double exact = 0;
        double prefix = 0;
        for (int i = 0; i < reference.Count; i++)
        {
            var a = reference[i];
            var b = other[i];
            exact += a.SequenceEqual(b) ? 1 : 0;
            int same = 0;
            while (same < a.Count && same < b.Count && a[same] == b[same])
            {
                same++;
            }

            prefix += a.Count == 0 ? (b.Count == 0 ? 1 : 0) : (double)same / a.Count;
        }

        return (exact / reference.Count, prefix / reference.Count);
    }

    /// <summary>Writes <c>conditions.csv</c>, <c>summary.json</c>, <c>replies.jsonl</c> and <c>report.html</c>.</summary>
    public static void WriteOutputs(string folder, IReadOnlyList<SteeringConditionResult> results, IReadOnlyList<string> behaviourPrompts, BehaviourClassifier classifier, IReadOnlyDictionary<string, string> settings, bool randomWeights = false)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(behaviourPrompts);
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(settings);
        Directory.CreateDirectory(folder);
        string[] columns = ["condition", "experts", "behaviour_rate", "flagged", "prompts", "neutral_perplexity", "exact_agreement", "prefix_agreement"];
        var table = new ReportTable(columns, [.. results.Select(r => (IReadOnlyList<string>)
        [
            r.Name, string.Join(" ", r.Experts), ReportTable.Number(r.BehaviourRate), r.Flagged.ToString(CultureInfo.InvariantCulture),
            r.Prompts.ToString(CultureInfo.InvariantCulture), ReportTable.Number(r.NeutralPerplexity), ReportTable.Number(r.ExactAgreement), ReportTable.Number(r.PrefixAgreement),
        ])]);
        using (var csv = CsvWriter.Create(Path.Combine(folder, "conditions.csv")))
        {
            csv.WriteRow(columns);
            foreach (var r in results)
            {
                csv.WriteRow(r.Name, string.Join(" ", r.Experts), r.BehaviourRate, r.Flagged, r.Prompts, r.NeutralPerplexity, r.ExactAgreement, r.PrefixAgreement);
            }
        }

        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "summary.json"), new
        {
            settings,
            classifier = classifier.Name,
            conditions = results.Select(r => new
            {
                name = r.Name, experts = r.Experts.Select(e => e.ToString()), behaviour_rate = r.BehaviourRate, flagged = r.Flagged, prompts = r.Prompts,
                neutral_perplexity = r.NeutralPerplexity, exact_agreement = r.ExactAgreement, prefix_agreement = r.PrefixAgreement,
            }),
        }, randomWeights);
        var lines = new List<string>();
        foreach (var r in results)
        {
            for (int i = 0; i < r.Replies.Count; i++)
            {
                lines.Add(System.Text.Json.JsonSerializer.Serialize(new { condition = r.Name, prompt = behaviourPrompts[i], reply = r.Replies[i], flagged = classifier.Matches(r.Replies[i]) }, JsonOutput.CompactOptions));
            }
        }

        AtomicFile.WriteAllText(Path.Combine(folder, "replies.jsonl"), string.Join("\n", lines) + "\n");

        var baseline = results[0];
        var steered = results.FirstOrDefault(r => r.Name == "steered");
        var controls = results.Where(r => r.Name.StartsWith("control", StringComparison.Ordinal)).ToList();
        var report = new HtmlReport("Steering evaluation") { Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(CultureInfo.InvariantCulture,
                $"Behaviour rate ({classifier.Name}): baseline {ReportTable.Number(baseline.BehaviourRate)}, steered {ReportTable.Number(steered?.BehaviourRate ?? double.NaN)}, random controls mean {ReportTable.Number(controls.Count == 0 ? double.NaN : controls.Average(c => c.BehaviourRate))}."),
            "Side effects: perplexity on the neutral corpus and agreement of greedy continuations of the neutral lines with the baseline (exact = identical continuation; prefix = share reproduced before the first differing token).");
        report.AddSection("Settings").AddKeyValues(settings);
        report.AddSection("Conditions").AddFigure(new BarChart
        {
            Title = "Behaviour rate by condition",
            Categories = [.. results.Select(r => r.Name)],
            Series = [new BarSeries("behaviour rate", [.. results.Select(r => r.BehaviourRate)])],
            YLabel = "flagged replies",
        }).AddTable(table);
        if (classifier == BehaviourClassifier.Refusal)
        {
            report.AddSection("Classifier").AddParagraph("A reply counts as a refusal if it contains any of these phrases (case-insensitive): " + string.Join("; ", BehaviourClassifier.RefusalPhrases.Select(p => "\"" + p + "\"")) + ".");
        }

        report.Save(Path.Combine(folder, "report.html"));
    }

    private static List<int> Generate(MoeModel model, int[] prompt, GenerationOptions options)
    {
        int room = model.Hyperparameters.ContextLength - prompt.Length;
        if (room <= 0 || prompt.Length == 0)
        {
            return [];
        }

        return [.. model.Generate(prompt, options with { MaxNewTokens = Math.Min(options.MaxNewTokens, room) })];
    }
}
