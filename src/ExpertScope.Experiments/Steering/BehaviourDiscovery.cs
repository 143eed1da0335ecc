using System.Globalization;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Core;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Steering;

/// <summary>
/// One routed expert's contrast between a positive and a negative prompt set. Frequencies count tokens (in the
/// chosen <see cref="TokenScope"/>) whose top-k includes the expert; mean weights average the expert's final mixing
/// weight over those tokens, 0 where it was not selected.
/// </summary>
/// <param name="Rank">1 = strongest evidence (smallest adjusted p, then largest |log odds ratio|).</param>
/// <param name="Layer">GGUF block index.</param>
/// <param name="Expert">Expert index.</param>
/// <param name="PositiveSelections">Positive-set tokens that selected the expert.</param>
/// <param name="PositiveTokens">Positive-set tokens counted.</param>
/// <param name="NegativeSelections">Negative-set tokens that selected the expert.</param>
/// <param name="NegativeTokens">Negative-set tokens counted.</param>
/// <param name="PositiveMeanWeight">Mean mixing weight on the positive set (NaN: not available, the routing source gave expert ids only).</param>
/// <param name="NegativeMeanWeight">Mean mixing weight on the negative set (NaN likewise).</param>
/// <param name="PValue">Two-sided Fisher exact test of the 2×2 table (selected / not, positive / negative).</param>
/// <param name="AdjustedPValue">Benjamini–Hochberg adjusted over every (layer, expert).</param>
public sealed record ExpertContrast(
    int Rank,
    int Layer,
    int Expert,
    long PositiveSelections,
    long PositiveTokens,
    long NegativeSelections,
    long NegativeTokens,
    double PositiveMeanWeight,
    double NegativeMeanWeight,
    double PValue,
    double AdjustedPValue)
{
    /// <summary>Selection frequency on the positive set.</summary>
    public double PositiveFrequency => PositiveTokens == 0 ? 0 : (double)PositiveSelections / PositiveTokens;

    /// <summary>Selection frequency on the negative set.</summary>
    public double NegativeFrequency => NegativeTokens == 0 ? 0 : (double)NegativeSelections / NegativeTokens;

    /// <summary>Positive minus negative frequency.</summary>
    public double FrequencyDifference => PositiveFrequency - NegativeFrequency;

    /// <summary>ln of the odds ratio (positive vs negative) with 0.5 added to every cell (Haldane–Anscombe), finite even for empty cells.</summary>
    public double LogOddsRatio =>
        Math.Log((PositiveSelections + 0.5) * (NegativeTokens - NegativeSelections + 0.5)
            / ((PositiveTokens - PositiveSelections + 0.5) * (NegativeSelections + 0.5)));

    /// <summary><c>positive</c> if the expert is used more on the positive set, <c>negative</c> if less, <c>none</c> if equally.</summary>
    public string Direction => FrequencyDifference > 0 ? "positive" : FrequencyDifference < 0 ? "negative" : "none";
}

/// <summary>Behaviour-expert discovery: which experts the router prefers on one prompt set over another.</summary>
public static class BehaviourDiscovery
{
    /// <summary>The line every output of an ids-only discovery carries.</summary>
    public static string WeightsUnavailable(string routingSource) =>
        $"Routing source '{routingSource}' gives expert ids only: the mean weights (positive_mean_weight, negative_mean_weight) are not available (NaN in ranked.csv); frequencies, odds ratios, p-values and the ranking use counts only and are computed.";

    /// <summary>CSV columns of <c>ranked.csv</c>, also read back by <see cref="SteeringEvaluation.ReadRanked"/>.</summary>
    public static readonly IReadOnlyList<string> Columns =
    [
        "rank", "layer", "expert", "direction", "positive_frequency", "negative_frequency", "frequency_difference",
        "log_odds_ratio", "positive_mean_weight", "negative_mean_weight", "p_value", "p_adjusted_bh",
        "positive_selections", "positive_tokens", "negative_selections", "negative_tokens",
    ];

    /// <summary>Runs every prompt (tokenized with the model's tokenizer, cut to its context) and records expert activity.</summary>
    public static ExpertActivityRecorder Profile(MoeModel model, IEnumerable<string> prompts, TokenScope scope, int? threads = null, IProgressTask? progress = null) =>
        Profile(model, [.. prompts], scope, UnitJournal.None, "prompt", threads, progress);

    /// <summary>
    /// Runs every prompt and records expert activity, one journal unit per prompt (<c>PREFIX/INDEX</c>, holding that
    /// prompt's activity): prompts finished by an earlier attempt are not run again. Each prompt is recorded on its own and
    /// the prompts are added in order, so a resumed profile equals an uninterrupted one bit for bit.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="prompts">The prompts.</param>
    /// <param name="scope">Which tokens count.</param>
    /// <param name="journal">Finished prompts (<see cref="UnitJournal.None"/> to keep nothing).</param>
    /// <param name="unitPrefix">Prefix of the unit ids (e.g. <c>positive</c>), unique within the run.</param>
    /// <param name="threads">Threads (null = processor count).</param>
    /// <param name="progress">Advanced once per prompt.</param>
    /// <param name="cancellationToken">Stops before the next unfinished prompt.</param>
    public static ExpertActivityRecorder Profile(
        MoeModel model, IReadOnlyList<string> prompts, TokenScope scope, UnitJournal journal, string unitPrefix,
        int? threads = null, IProgressTask? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(journal);
        var total = new ExpertActivityRecorder(model, scope);
        var single = new ExpertActivityRecorder(model, scope);
        var options = new RunOptions { Observers = [single], ThreadCount = threads, Logits = LogitsSelection.None };
        for (int i = 0; i < prompts.Count; i++)
        {
            string prompt = prompts[i];
            total.Add(journal.GetOrCompute(UnitId(unitPrefix, i), () =>
            {
                single.Clear();
                var tokens = Tokenize(model, prompt);
                if (tokens.Length > 0)
                {
                    model.Run(tokens, options);
                }

                return single.Serialize();
            }, cancellationToken));
            progress?.Advance();
        }

        return total;
    }

    /// <summary>
    /// As the engine overload, but the routing comes from <paramref name="source"/> (a vLLM or SGLang server, sent the
    /// local tokenizer's ids), <see cref="IRoutingSource.BatchSize"/> prompts per request batch. <paramref name="model"/>
    /// supplies the tokenizer, the context length and the shape of the profile. An ids-only source counts every selected
    /// id (the engine leaves out selections whose weight is exactly 0, which an ids-only source cannot see) and adds no
    /// weight: the mean weights of <see cref="Compare"/> are then not available.
    /// </summary>
    public static ExpertActivityRecorder Profile(
        MoeModel model, IRoutingSource source, IReadOnlyList<string> prompts, TokenScope scope, UnitJournal journal, string unitPrefix,
        IProgressTask? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(journal);
        var total = new ExpertActivityRecorder(model, scope);
        var single = new ExpertActivityRecorder(model, scope);
        int batch = Math.Max(1, source.BatchSize);
        for (int first = 0; first < prompts.Count; first += batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var indices = Enumerable.Range(first, Math.Min(batch, prompts.Count - first)).ToList();
            var wanted = new List<(int Index, RoutingPrompt Prompt)>();
            foreach (int i in indices.Where(i => !journal.IsFinished(UnitId(unitPrefix, i))))
            {
                var tokens = Tokenize(model, prompts[i]);
                if (tokens.Length > 0)
                {
                    wanted.Add((i, new RoutingPrompt(UnitId(unitPrefix, i), null, tokens, tokens.Length)));
                }
            }

            var routed = new Dictionary<int, SequenceRouting>();
            if (wanted.Count > 0)
            {
                var results = source.RouteAsync([.. wanted.Select(w => w.Prompt)], cancellationToken).GetAwaiter().GetResult();
                for (int j = 0; j < wanted.Count; j++)
                {
                    routed[wanted[j].Index] = results[j];
                }
            }

            foreach (int i in indices)
            {
                total.Add(journal.GetOrCompute(UnitId(unitPrefix, i), () =>
                {
                    single.Clear();
                    if (routed.TryGetValue(i, out var routing))
                    {
                        Accumulate(single, routing, scope, UnitId(unitPrefix, i));
                    }

                    return single.Serialize();
                }, cancellationToken));
                progress?.Advance();
            }
        }

        return total;
    }

    /// <summary>Adds one prompt's routing to a profile the way the engine's observer counts it.</summary>
    private static void Accumulate(ExpertActivityRecorder recorder, SequenceRouting routing, TokenScope scope, string name)
    {
        int first = scope == TokenScope.LastToken ? routing.PositionCount - 1 : 0;
        for (int l = 0; l < routing.Layers.Count; l++)
        {
            int layer = routing.Layers[l];
            if (layer >= recorder.LayerCount || !recorder.IsMoeLayer[layer])
            {
                throw new ExpertScopeException($"{name}: the routing source gave MoE block {layer}, which has no router in the model (check --first-moe-block)");
            }

            recorder.Tokens[layer] += routing.PositionCount - first;
            for (int t = first; t < routing.PositionCount; t++)
            {
                var experts = routing.ExpertsAt(l, t);
                var weights = routing.WeightsAt(l, t);
                for (int slot = 0; slot < experts.Length; slot++)
                {
                    if ((uint)experts[slot] >= (uint)recorder.ExpertCount)
                    {
                        throw new ExpertScopeException($"{name}: expert id {experts[slot]} in block {layer} is not below the model's {recorder.ExpertCount} experts");
                    }

                    if (weights.IsEmpty || weights[slot] != 0.0f)
                    {
                        recorder.Selections[layer, experts[slot]]++;
                        recorder.WeightSums[layer, experts[slot]] += weights.IsEmpty ? 0.0 : weights[slot];
                    }
                }
            }
        }
    }

    /// <summary>The journal unit id of prompt <paramref name="index"/> of a set.</summary>
    public static string UnitId(string prefix, int index) => prefix + "/" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The model's tokenization of <paramref name="text"/> (with its special prefix), cut to the context length.</summary>
    public static int[] Tokenize(MoeModel model, string text)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tokens = model.Tokenizer.Encode(text);
        return [.. tokens.Take(model.Hyperparameters.ContextLength)];
    }

    /// <summary>Compares two profiles expert by expert and ranks the experts.</summary>
    /// <param name="positive">The positive set's profile.</param>
    /// <param name="negative">The negative set's profile.</param>
    /// <param name="weightsAvailable">False for profiles from an ids-only source: the mean weights are NaN (not available), the ranking is unchanged (it uses counts only).</param>
    public static IReadOnlyList<ExpertContrast> Compare(ExpertActivityRecorder positive, ExpertActivityRecorder negative, bool weightsAvailable = true)
    {
        ArgumentNullException.ThrowIfNull(positive);
        ArgumentNullException.ThrowIfNull(negative);
        var cells = new List<(int Layer, int Expert, long A, long N1, long C, long N2, double W1, double W2, double P)>();
        for (int layer = 0; layer < positive.LayerCount; layer++)
        {
            if (!positive.IsMoeLayer[layer] || positive.Tokens[layer] == 0 || negative.Tokens[layer] == 0)
            {
                continue;
            }

            for (int e = 0; e < positive.ExpertCount; e++)
            {
                long a = positive.Selections[layer, e];
                long n1 = positive.Tokens[layer];
                long c = negative.Selections[layer, e];
                long n2 = negative.Tokens[layer];
                double p = ContingencyTests.FisherExact2x2(checked((int)a), checked((int)(n1 - a)), checked((int)c), checked((int)(n2 - c))).PValue;
                cells.Add((layer, e, a, n1, c, n2,
                    weightsAvailable ? positive.WeightSums[layer, e] / n1 : double.NaN, weightsAvailable ? negative.WeightSums[layer, e] / n2 : double.NaN, p));
            }
        }

        if (cells.Count == 0)
        {
            return [];
        }

        double[] adjusted = MultipleComparisons.Adjust([.. cells.Select(c => c.P)], PAdjustMethod.BenjaminiHochberg);
        var contrasts = cells.Select((c, i) => new ExpertContrast(0, c.Layer, c.Expert, c.A, c.N1, c.C, c.N2, c.W1, c.W2, c.P, adjusted[i])).ToList();
        return [.. contrasts
            .OrderBy(c => c.AdjustedPValue)
            .ThenByDescending(c => Math.Abs(c.LogOddsRatio))
            .ThenBy(c => c.Layer)
            .ThenBy(c => c.Expert)
            .Select((c, i) => c with { Rank = i + 1 })];
    }

    /// <summary>Writes <c>ranked.csv</c>, <c>ranked.json</c> and <c>report.html</c> into <paramref name="folder"/>.</summary>
    /// <param name="folder">The output folder.</param>
    /// <param name="ranked">The ranking.</param>
    /// <param name="settings">Settings shown in the report and ranked.json.</param>
    /// <param name="alpha">The significance level of the summary.</param>
    /// <param name="randomWeights">The model has random weights (every report carries the banner).</param>
    /// <param name="idsOnlySource">The routing source when it gave expert ids only (the report says the mean weights are not available); null for the engine.</param>
    public static void WriteOutputs(string folder, IReadOnlyList<ExpertContrast> ranked, IReadOnlyDictionary<string, string> settings, double alpha = 0.05, bool randomWeights = false, string? idsOnlySource = null)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        ArgumentNullException.ThrowIfNull(settings);
        Directory.CreateDirectory(folder);
        using (var csv = CsvWriter.Create(Path.Combine(folder, "ranked.csv")))
        {
            csv.WriteRow(Columns);
            foreach (var c in ranked)
            {
                csv.WriteRow(c.Rank, c.Layer, c.Expert, c.Direction, c.PositiveFrequency, c.NegativeFrequency, c.FrequencyDifference,
                    c.LogOddsRatio, c.PositiveMeanWeight, c.NegativeMeanWeight, c.PValue, c.AdjustedPValue,
                    c.PositiveSelections, c.PositiveTokens, c.NegativeSelections, c.NegativeTokens);
            }
        }

        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "ranked.json"), new
        {
            settings,
            unavailable = idsOnlySource is null ? Array.Empty<string>() : new[] { "positive_mean_weight", "negative_mean_weight" },
            experts = ranked.Select(c => new
            {
                rank = c.Rank, layer = c.Layer, expert = c.Expert, direction = c.Direction,
                positive_frequency = c.PositiveFrequency, negative_frequency = c.NegativeFrequency,
                frequency_difference = c.FrequencyDifference, log_odds_ratio = c.LogOddsRatio,
                positive_mean_weight = c.PositiveMeanWeight, negative_mean_weight = c.NegativeMeanWeight,
                p_value = c.PValue, p_adjusted_bh = c.AdjustedPValue,
                positive_selections = c.PositiveSelections, positive_tokens = c.PositiveTokens,
                negative_selections = c.NegativeSelections, negative_tokens = c.NegativeTokens,
            }),
        }, randomWeights);

        int significant = ranked.Count(c => c.AdjustedPValue < alpha);
        var report = new HtmlReport("Behaviour-expert discovery") { Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(CultureInfo.InvariantCulture, $"{ranked.Count} (layer, expert) pairs compared; {significant} differ between the sets at BH-adjusted p < {alpha} ({ranked.Count(c => c.AdjustedPValue < alpha && c.FrequencyDifference > 0)} more active on the positive set)."),
            "Frequency = share of counted tokens whose top-k contains the expert. Test: two-sided Fisher exact test of selected / not selected × positive / negative, Benjamini–Hochberg over all pairs. Log odds ratio with 0.5 added to each cell.",
            idsOnlySource is null ? "Routing source: engine." : WeightsUnavailable(idsOnlySource));
        report.AddSection("Settings").AddKeyValues(settings);
        var top = ranked.Take(Math.Min(12, ranked.Count)).ToList();
        if (top.Count > 0)
        {
            report.AddSection("Top experts").AddFigure(new BarChart
            {
                Title = "Selection frequency of the top-ranked experts",
                Categories = [.. top.Select(c => $"L{c.Layer}:E{c.Expert}")],
                Series =
                [
                    new BarSeries("positive", [.. top.Select(c => c.PositiveFrequency)], Marks: [.. top.Select(c => BarChart.SignificanceMark(c.AdjustedPValue))]),
                    new BarSeries("negative", [.. top.Select(c => c.NegativeFrequency)]),
                ],
                XLabel = "layer:expert",
                YLabel = "frequency",
            });
        }

        report.AddSection("Ranked experts (top 50)").AddTable(new ReportTable(
            ["rank", "layer", "expert", "direction", "freq +", "freq −", "Δfreq", "log OR", "weight +", "weight −", "p", "p (BH)"],
            [.. ranked.Take(50).Select(c => (IReadOnlyList<string>)
            [
                c.Rank.ToString(CultureInfo.InvariantCulture), c.Layer.ToString(CultureInfo.InvariantCulture), c.Expert.ToString(CultureInfo.InvariantCulture), c.Direction,
                ReportTable.Number(c.PositiveFrequency), ReportTable.Number(c.NegativeFrequency), ReportTable.Number(c.FrequencyDifference),
                ReportTable.Number(c.LogOddsRatio), ReportTable.Number(c.PositiveMeanWeight), ReportTable.Number(c.NegativeMeanWeight),
                ReportTable.Number(c.PValue), ReportTable.Number(c.AdjustedPValue),
            ])],
            "Full table: ranked.csv / ranked.json"));
        report.Save(Path.Combine(folder, "report.html"));
    }
}
