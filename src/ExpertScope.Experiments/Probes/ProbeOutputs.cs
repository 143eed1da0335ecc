using System.Globalization;
using System.Text;
using System.Text.Json;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;

namespace ExpertScope.Experiments.Probes;

/// <summary>
/// Writes a probe's <c>results.json</c>, <c>pairs.csv</c> and <c>report.html</c>. The first two hold no time or
/// path, so the same inputs and seed give the same bytes.
/// </summary>
public static class ProbeOutputs
{
    /// <summary>The results file name.</summary>
    public const string ResultsFileName = "results.json";

    /// <summary>The per-pair, per-layer table.</summary>
    public const string PairsFileName = "pairs.csv";

    /// <summary>The HTML report.</summary>
    public const string ReportFileName = "report.html";

    /// <summary>Writes every output file into <paramref name="folder"/>.</summary>
    public static void WriteAll(ProbeOutcome outcome, string folder)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        AtomicFile.WriteAllText(Path.Combine(folder, ResultsFileName), ResultsJson(outcome));
        AtomicFile.WriteAllText(Path.Combine(folder, PairsFileName), PairsCsv(outcome.Results));
        AtomicFile.WriteAllText(Path.Combine(folder, ReportFileName), Report(outcome).ToHtml());
    }

    /// <summary>
    /// <c>pairs.csv</c>: one row per pair and layer with every metric, the words' positions and sentence numbers
    /// (the trace's <c>sequence</c>), the load-corrected κ and the layer's chance overlap Σₑ qₑ², so the statistics
    /// can be recomputed elsewhere.
    /// </summary>
    public static string PairsCsv(ProbeResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        using var text = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        using (var csv = new CsvWriter(text, leaveOpen: true))
        {
            csv.WriteRow("pair_id", "condition", "word", "layer", "overlap", "jaccard", "kappa", "weighted", "js",
                "sentence_1", "sentence_2", "position_1", "position_2", "position_diff", "tokens_1", "tokens_2", "splits_token", "same_token_ids", "data_score",
                "kappa_load", "chance_overlap", "context_id");
            foreach (var measurement in results.Measurements)
            {
                var pair = measurement.Pair;
                for (var layer = 0; layer < results.Layers.Count; layer++)
                {
                    var s = measurement.ByLayer[layer];
                    csv.WriteRow(pair.PairId, pair.Condition, pair.Word, results.Layers[layer], s.Overlap, s.Jaccard, s.Kappa, s.Weighted, s.JensenShannon,
                        pair.First.Sentence, pair.Second.Sentence, pair.First.Position, pair.Second.Position, measurement.PositionDifference,
                        pair.First.Tokens.Count, pair.Second.Tokens.Count, pair.SplitsToken, pair.SameTokenIds, pair.DataScore,
                        s.LoadCorrectedKappa, results.Loads.Count > layer ? results.Loads[layer].ChanceOverlap : double.NaN, pair.ContextId);
                }
            }
        }

        return text.ToString();
    }

    /// <summary><c>results.json</c>: settings, model, counts, per-condition and per-comparison statistics, controls and the summary.</summary>
    public static string ResultsJson(ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var results = outcome.Results;
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOutput.WriterOptions(indented: true)))
        {
            w.WriteStartObject();
            w.WriteString("probe", ProbeSettings.KindName(outcome.Settings.Kind));
            w.WriteStartObject("settings");
            foreach (var (key, value) in outcome.Settings.ToDictionary())
            {
                w.WriteString(key, value);
            }

            w.WriteNumber("seed", outcome.Settings.Seed);
            w.WriteEndObject();

            var model = outcome.Model;
            w.WriteStartObject("model");
            w.WriteString("file", model.FileName);
            w.WriteString("sha256", model.Sha256);
            w.WriteString("name", model.Name);
            w.WriteString("architecture", model.Architecture);
            w.WriteNumber("expert_count", model.ExpertCount);
            w.WriteNumber("top_k", model.TopK);
            w.WriteNumber("shared_experts", model.SharedExperts);
            w.WriteBoolean("random_weights", model.HasRandomWeights);
            if (model.BlockCount is { } blockCount)
            {
                w.WriteNumber("block_count", blockCount);
            }

            w.WriteEndObject();

            w.WriteStartObject("counts");
            w.WriteNumber("pairs_available", outcome.Data.Available);
            w.WriteNumber("pairs_sampled", outcome.Data.Pairs.Count);
            w.WriteNumber("sentences", outcome.Plan.Sentences.Count);
            w.WriteNumber("tokens", outcome.Plan.TokenIds.Sum(t => t.Count));
            foreach (var condition in results.Conditions)
            {
                w.WriteNumber("pairs_" + condition.Replace('-', '_'), results.ByConditionLayerMean[condition].Count);
            }

            w.WriteNumber("pairs_kept", DataPairsKept(outcome));
            w.WriteEndObject();
            WriteStrings(w, "skipped_records", outcome.Data.Skipped);
            w.WriteStartArray("dropped_pairs");
            foreach (var drop in outcome.Plan.DroppedPairs)
            {
                w.WriteStartObject();
                w.WriteString("pair_id", drop.PairId);
                w.WriteString("condition", drop.Condition);
                w.WriteString("reason", drop.Reason);
                w.WriteString("detail", drop.Detail);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("dropped_counts");
            foreach (var byReason in outcome.Plan.DroppedPairs.GroupBy(drop => drop.Reason).OrderBy(group => group.Key, StringComparer.Ordinal))
            {
                w.WriteStartObject(byReason.Key);
                foreach (var byCondition in byReason.GroupBy(drop => drop.Condition).OrderBy(group => group.Key, StringComparer.Ordinal))
                {
                    w.WriteNumber(byCondition.Key, byCondition.Count());
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteStartObject("token_identity_controls");
            w.WriteNumber("anchors", outcome.Plan.Anchors);
            w.WriteNumber("formed", outcome.Plan.Pairs.Count(pair => pair.Condition == ProbeConditions.TokenIdentity));
            w.WriteStartObject("not_formed");
            foreach (var group in outcome.Plan.DroppedPairs.Where(drop => drop.Condition == ProbeConditions.TokenIdentity)
                         .GroupBy(drop => drop.Reason).OrderBy(group => group.Key, StringComparer.Ordinal))
            {
                w.WriteNumber(group.Key, group.Count());
            }

            w.WriteEndObject();
            w.WriteString("rule", "the target's own token ids, as a whole word (no letter or digit adjoins the match), in a sentence of the data set that shares no pair with the anchor and no token prefix up to the match");
            w.WriteEndObject();

            w.WriteStartObject("chance");
            w.WriteString("definition", "expected |A∩B| of two unrelated tokens: Σ_e q_e² with q_e the share of probed tokens selecting routed expert e (Σ q_e = k); k²/N holds only for uniform load");
            w.WriteStartArray("by_layer");
            for (var layer = 0; layer < results.Loads.Count; layer++)
            {
                var load = results.Loads[layer];
                w.WriteStartObject();
                w.WriteNumber("layer", results.Layers[layer]);
                w.WriteNumber("tokens", load.TokenCount);
                w.WriteNumber("uniform_overlap", load.UniformChanceOverlap);
                w.WriteNumber("load_overlap", load.ChanceOverlap);
                w.WriteNumber("kappa_at_chance", load.ChanceKappa);
                w.WriteNumber("max_selection_rate", load.SelectionRates.Max());
                w.WriteNumber("min_selection_rate", load.SelectionRates.Min());
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteStartObject("correction");
            w.WriteString("primary", "holm");
            w.WriteString("family", "every Mann-Whitney test of the run: each comparison at each layer and on layer means");
            w.WriteNumber("tests", results.TestsCorrected);
            w.WriteString("secondary", "benjamini-hochberg over the same family; holm and benjamini-hochberg across layers within each comparison");
            w.WriteString("finding", "a comparison shows a difference when a layer or its layer mean has a run-wide Holm p below 0.05");
            w.WriteEndObject();
            ContextPairedOutputs.WriteSubstituteForms(w, outcome);

            w.WriteStartArray("layers");
            foreach (var layer in results.Layers)
            {
                w.WriteNumberValue(layer);
            }

            w.WriteEndArray();

            w.WriteStartObject("conditions");
            foreach (var condition in results.Conditions)
            {
                w.WriteStartObject(condition);
                w.WriteStartArray("by_layer");
                for (var layer = 0; layer < results.Layers.Count; layer++)
                {
                    WriteSummary(w, results.Layers[layer], results.ByCondition[condition][layer]);
                }

                w.WriteEndArray();
                w.WritePropertyName("layer_mean");
                WriteSummary(w, null, results.ByConditionLayerMean[condition]);
                w.WriteEndObject();
            }

            w.WriteEndObject();

            w.WriteStartArray("comparisons");
            foreach (var comparison in results.Comparisons)
            {
                w.WriteStartObject();
                w.WriteString("first", comparison.First);
                w.WriteString("second", comparison.Second);
                if (outcome.Settings.Kind == ProbeKind.Substitution)
                {
                    w.WriteString("role", ContextPairedOutputs.SecondaryRole);
                }

                w.WriteNumber("significant_layers_holm", comparison.SignificantLayers);
                // Substitution: pair-level tests are secondary (substitutes of one context are not independent), never a finding.
                w.WriteBoolean("difference_found", outcome.Settings.Kind != ProbeKind.Substitution && comparison.DifferenceFound);
                w.WriteString("restricted_to", comparison.FirstRestrictedTo is null ? "all pairs" : $"{comparison.First} pairs whose two targets have identical token ids");
                w.WriteStartArray("by_layer");
                for (var layer = 0; layer < results.Layers.Count; layer++)
                {
                    WriteComparison(w, results.Layers[layer], comparison.ByLayer[layer]);
                }

                w.WriteEndArray();
                w.WritePropertyName("layer_mean");
                WriteComparison(w, null, comparison.LayerMean);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            ContextPairedOutputs.WriteJson(w, results);

            w.WriteStartObject("position_control");
            w.WriteNumber("match_tolerance", outcome.Settings.PositionMatchTolerance);
            w.WriteStartArray("spearman_with_position_difference");
            foreach (var correlation in results.PositionCorrelations)
            {
                w.WriteStartObject();
                w.WriteString("condition", correlation.Condition);
                w.WriteNumber("n", correlation.Count);
                JsonOutput.WriteNumberOrNull(w, "rho", correlation.Spearman);
                JsonOutput.WriteNumberOrNull(w, "p", correlation.PValue);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WritePropertyName("position_matched_main_comparison");
            if (results.PositionMatched is { } matched)
            {
                WriteComparison(w, null, matched);
            }
            else
            {
                w.WriteNullValue();
            }

            w.WriteEndObject();
            w.WritePropertyName("token_matched_main_comparison");
            if (results.TokenMatched is { } tokenMatched)
            {
                WriteComparison(w, null, tokenMatched);
            }
            else
            {
                w.WriteNullValue();
            }

            WriteStrings(w, "summary", outcome.Summary);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>The plain-language findings.</summary>
    public static IReadOnlyList<string> Summarize(ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var results = outcome.Results;
        var metric = ProbeSettings.MetricName(outcome.Settings.Metric);
        var lines = new List<string>();
        if (outcome.Model.HasRandomWeights)
        {
            lines.Add($"The model '{outcome.Model.Name}' has random weights (a generated test model): its routing carries no meaning, so none of these numbers says anything about language. " +
                "(A random router still depends on the token's embedding, so token-identity pairs overlap more than different words: that is not a semantic effect.)");
        }

        var direction = outcome.Settings.Metric == ProbeMetric.JensenShannon ? "JS distance (lower = more similar routing)" : $"{metric} (higher = more similar routing)";
        var readout = outcome.Settings.Position == ProbeReadout.SentenceEnd ? "the last token of each sentence" : "the target's sub-tokens";
        lines.Add($"Metric: {direction}, read at {readout}, over {results.Layers.Count} MoE layers; {outcome.Data.Pairs.Count} of {outcome.Data.Available} pairs sampled. {PairsKeptSentence(outcome)}");

        if (results.Loads.Count > 0)
        {
            var load = results.Loads.Select(l => l.ChanceOverlap).ToArray();
            var chanceKappa = results.Loads.Select(l => l.ChanceKappa).ToArray();
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Chance: under this model's measured expert load two unrelated tokens share Σq² = {F(load.Min())}–{F(load.Max())} experts per layer, against k²/N = {F(results.Loads[0].UniformChanceOverlap)} for uniform load, " +
                $"so the classic κ of unrelated tokens is {F(chanceKappa.Min())}–{F(chanceKappa.Max())}, not 0; kappa_load (in pairs.csv) is 0 at the measured chance. The different-word control is the empirical null."));
        }

        lines.AddRange(ContextPairedOutputs.SubstituteFormLines(outcome));
        lines.AddRange(ContextPairedOutputs.SummaryLines(results, metric));
        foreach (var comparison in results.Comparisons)
        {
            var mean = comparison.LayerMean;
            if (outcome.Settings.Kind == ProbeKind.Substitution)
            {
                // Pair-level tests treat substitutes of one context as independent: secondary, never a finding.
                lines.Add(ContextPairedOutputs.SecondaryLine(comparison));
                continue;
            }

            var restriction = comparison.FirstRestrictedTo is null ? string.Empty : $" ({comparison.First}: only pairs whose two targets have identical token ids)";
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{comparison.First} vs {comparison.Second}{restriction}: layer-mean difference {F(mean.Difference)} (95% CI {F(mean.Lower)} to {F(mean.Upper)}; n = {mean.CountFirst}/{mean.CountSecond}; " +
                $"r_rb = {F(mean.RankBiserial)} [{F(mean.RankBiserialLower)}, {F(mean.RankBiserialUpper)}]; d = {F(mean.CohensD)} [{F(mean.CohensDLower)}, {F(mean.CohensDUpper)}]; " +
                $"Mann-Whitney p = {P(mean.MannWhitneyP)}, Holm over the run's {results.TestsCorrected} tests {P(mean.MannWhitneyHolmRun)}); " +
                $"{comparison.SignificantLayers} of {results.Layers.Count} layers significant after Holm correction over all layer × comparison tests. ")
                + (comparison.DifferenceFound ? "A difference was found." : "No difference was found.")
                + (Math.Min(mean.CountFirst, mean.CountSecond) < 20 ? " Fewer than 20 pairs in a condition: too few to conclude anything." : string.Empty));
        }

        foreach (var correlation in results.PositionCorrelations.Where(c => double.IsFinite(c.Spearman)))
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Position control, {correlation.Condition}: Spearman rho of the layer-mean {metric} with |position difference| = {F(correlation.Spearman)} (p = {P(correlation.PValue)}, uncorrected, n = {correlation.Count})."));
        }

        if (results.PositionMatched is { } matched && results.Comparisons.Count > 0)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Position-matched (|position difference| ≤ {outcome.Settings.PositionMatchTolerance}) {results.Comparisons[0].First} vs {results.Comparisons[0].Second}: difference {F(matched.Difference)} (95% CI {F(matched.Lower)} to {F(matched.Upper)}; n = {matched.CountFirst}/{matched.CountSecond}; Mann-Whitney p = {P(matched.MannWhitneyP)}, uncorrected: a control, not a finding)."));
        }

        if (results.TokenMatched is { } tokens && results.Comparisons.Count > 0)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Token-matched (both words the same token ids) {results.Comparisons[0].First} vs {results.Comparisons[0].Second}: difference {F(tokens.Difference)} (95% CI {F(tokens.Lower)} to {F(tokens.Upper)}; n = {tokens.CountFirst}/{tokens.CountSecond}; Mann-Whitney p = {P(tokens.MannWhitneyP)}, uncorrected): the part of the effect that token identity cannot explain."));
        }

        if (TokenIdentityShares(results) is { } shares && Math.Abs(shares.First - shares.Second) >= 0.05)
        {
            // Identical tokens route alike (token-identity vs different-word), so an uneven share of them between the
            // conditions can produce the main difference by itself, as identical prefixes did.
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Caution: {shares.First:P0} of {results.Comparisons[0].First} and {shares.Second:P0} of {results.Comparisons[0].Second} pairs have targets with identical token ids; identical tokens route alike, so part of the main difference can be token identity rather than sense. The token-matched line is the comparison free of it (uncorrected: a control, not a finding)."));
        }

        return lines;
    }

    /// <summary>The share of pairs whose two targets have identical token ids in each condition of the main comparison.</summary>
    private static (double First, double Second)? TokenIdentityShares(ProbeResults results)
    {
        if (results.Comparisons.Count == 0)
        {
            return null;
        }

        var (first, second) = (results.Comparisons[0].First, results.Comparisons[0].Second);
        var a = results.Measurements.Where(m => m.Pair.Condition == first).ToList();
        var b = results.Measurements.Where(m => m.Pair.Condition == second).ToList();
        return a.Count == 0 || b.Count == 0
            ? null
            : (a.Count(m => m.Pair.SameTokenIds) / (double)a.Count, b.Count(m => m.Pair.SameTokenIds) / (double)b.Count);
    }

    /// <summary>
    /// "319/319 pairs kept; 417 token-identity controls could not be formed (…)": what was kept and, by reason, what
    /// was left out.
    /// </summary>
    public static string PairsKeptSentence(ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var plan = outcome.Plan;
        var dataDrops = plan.DroppedPairs.Where(drop => drop.Condition is not (ProbeConditions.TokenIdentity or ProbeConditions.DifferentWord)).ToList();
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"{DataPairsKept(outcome)}/{outcome.Data.Pairs.Count} pairs kept"));
        if (dataDrops.Count > 0)
        {
            text.Append(" (left out: ").Append(string.Join("; ", dataDrops.GroupBy(drop => drop.Reason).OrderBy(group => group.Key, StringComparer.Ordinal)
                .Select(group => $"{group.Count()} {ReasonText(group.Key)} [" + string.Join(", ", group.GroupBy(drop => drop.Condition).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => $"{g.Key} {g.Count()}")) + "]"))).Append(')');
        }

        text.Append(string.Create(CultureInfo.InvariantCulture, $"; {plan.Pairs.Count(pair => pair.Condition == ProbeConditions.TokenIdentity)}/{plan.Anchors} token-identity controls formed"));
        foreach (var condition in new[] { ProbeConditions.TokenIdentity, ProbeConditions.DifferentWord })
        {
            var controlDrops = plan.DroppedPairs.Where(drop => drop.Condition == condition).ToList();
            if (controlDrops.Count > 0)
            {
                text.Append(string.Create(CultureInfo.InvariantCulture, $"; {controlDrops.Count} {condition} controls could not be formed ("))
                    .Append(string.Join("; ", controlDrops.GroupBy(drop => drop.Reason).OrderBy(group => group.Key, StringComparer.Ordinal)
                        .Select(group => $"{group.Count()} {ReasonText(group.Key)}"))).Append(')');
            }
        }

        return text.Append('.').ToString();
    }

    private static int DataPairsKept(ProbeOutcome outcome) =>
        outcome.Plan.Pairs.Count(pair => pair.Condition is not (ProbeConditions.TokenIdentity or ProbeConditions.DifferentWord));

    private static string ReasonText(string reason) => reason switch
    {
        DropReasons.IdenticalPrefix => "with the same tokens up to and including the target, which a causal model routes identically",
        DropReasons.NoToken => "with a target no token covers",
        DropReasons.BeyondContext => "beyond the model's context",
        DropReasons.NoOccurrence => "whose target's token ids occur in no unrelated sentence",
        DropReasons.InsideLongerWord => "whose target's token ids occur in unrelated sentences only inside longer words",
        DropReasons.TargetSplitsToken => "whose target shares a token with neighbouring characters",
        DropReasons.NoOtherWord => "without another word in an unrelated sentence",
        _ => reason,
    };

    /// <summary>Width of the report's figures: the page's text width (the report's body is at most 980 px wide).</summary>
    public const double FigureWidth = 940;

    /// <summary>
    /// The HTML report: summary, glossary, per-layer means with 95% CIs and the chance levels, rank-biserial per layer
    /// with its bootstrap CI and run-wide Holm marks (one chart per comparison, so marks never share a slot), tables,
    /// distributions, what was kept and left out, settings.
    /// </summary>
    public static HtmlReport Report(ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var results = outcome.Results;
        var metric = ProbeSettings.MetricName(outcome.Settings.Metric);
        var report = new HtmlReport($"Semantic routing probe: {ProbeSettings.KindName(outcome.Settings.Kind)} on {outcome.Settings.Dataset}")
        {
            Subtitle = $"Model {outcome.Model.FileName} ({outcome.Model.Architecture}, {outcome.Model.ExpertCount} experts, top-{outcome.Model.TopK}); metric {metric}; seed {outcome.Settings.Seed}",
            RandomWeights = outcome.Model.HasRandomWeights,
        };
        report.AddSummary([.. outcome.Summary]);
        var glossary = report.AddSection("Glossary");
        glossary.AddTable(new ReportTable(["term", "meaning"], [.. Glossary(outcome.Settings.Kind).Select(entry => (IReadOnlyList<string>)[entry.Term, entry.Meaning])]));
        double[] x = [.. results.Layers.Select(layer => (double)layer)];

        var perLayer = report.AddSection("Routing similarity per layer");
        var series = results.Conditions.Select(condition => new LineSeries(condition, x,
            [.. results.ByCondition[condition].Select(s => s.Mean)],
            [.. results.ByCondition[condition].Select(s => s.Lower)],
            [.. results.ByCondition[condition].Select(s => s.Upper)])).ToList();
        var (chance, chanceCaption) = ChanceSeries(outcome, x);
        if (chance is not null)
        {
            series.Add(chance);
        }

        var uniformKappa = outcome.Settings.Metric is ProbeMetric.Kappa or ProbeMetric.LoadCorrectedKappa;
        // The κ = 0 line must not vanish into the x axis: the axis starts a step below the lowest value or 0.
        double[] plotted = [.. series.SelectMany(line => line.Y.Concat(line.Lower ?? []).Concat(line.Upper ?? [])).Where(double.IsFinite), .. (uniformKappa ? new[] { 0.0 } : [])];
        var span = plotted.Length == 0 ? 1 : Math.Max(plotted.Max() - plotted.Min(), 1e-6);
        perLayer.AddFigure(new LineChart
        {
            Title = $"Mean {metric} per layer (95% bootstrap CI)",
            Width = FigureWidth,
            XLabel = "layer",
            YLabel = metric,
            ReferenceY = uniformKappa ? 0 : null,
            YMinimum = uniformKappa && plotted.Length > 0 ? plotted.Min() - (0.08 * span) : null,
            Series = series,
        }, chanceCaption);

        var effects = report.AddSection("Effect sizes per layer");
        effects.AddParagraph($"Rank-biserial r of each comparison per layer with its two-sample bootstrap 95% CI. * marks a layer whose Mann-Whitney p stays below 0.05 after Holm correction over all {results.TestsCorrected} tests of this run (every comparison at every layer and on layer means); unmarked layers are not significant.");
        string[] categories = [.. results.Layers.Select(layer => layer.ToString(CultureInfo.InvariantCulture))];
        for (var c = 0; c < results.Comparisons.Count; c++)
        {
            var comparison = results.Comparisons[c];
            effects.AddFigure(new BarChart
            {
                Title = $"{comparison.First} vs {comparison.Second}: rank-biserial r per layer",
                Width = FigureWidth,
                Height = 300,
                Categories = categories,
                XLabel = "layer",
                YLabel = "rank-biserial r",
                ReferenceY = 0,
                Series = [new BarSeries(string.Empty, [.. comparison.ByLayer.Select(s => s.RankBiserial)],
                    [.. comparison.ByLayer.Select(s => s.RankBiserialLower)], [.. comparison.ByLayer.Select(s => s.RankBiserialUpper)],
                    [.. comparison.ByLayer.Select(s => s.MannWhitneyHolmRun < 0.05 ? "*" : null)])],
            }, comparison.FirstRestrictedTo is null ? null : $"{comparison.First}: only pairs whose two targets have identical token ids, as the token-identity control's.");
        }

        foreach (var comparison in results.Comparisons)
        {
            var rows = new List<IReadOnlyList<string>>();
            for (var layer = 0; layer < results.Layers.Count; layer++)
            {
                rows.Add(ComparisonRow(results.Layers[layer].ToString(CultureInfo.InvariantCulture), comparison.ByLayer[layer]));
            }

            rows.Add(ComparisonRow("mean", comparison.LayerMean));
            effects.AddTable(new ReportTable(ComparisonColumns, rows, $"{comparison.First} vs {comparison.Second}"));
        }

        ContextPairedOutputs.AddToReport(report, results);
        var distributions = report.AddSection("Distributions");
        distributions.AddFigure(new BoxPlot
        {
            Title = $"Layer-mean {metric} per pair",
            Width = FigureWidth,
            XLabel = "condition",
            YLabel = metric,
            Distributions = [.. results.Conditions.Select(condition => new Distribution(condition,
                [.. results.Measurements.Where(m => m.Pair.Condition == condition).Select(m => m.LayerMean(outcome.Settings.Metric))]))],
        });

        var kept = report.AddSection("Pairs kept and left out");
        kept.AddParagraph(PairsKeptSentence(outcome));
        if (outcome.Plan.DroppedPairs.Count > 0)
        {
            kept.AddParagraph("Examples: " + string.Join("; ", outcome.Plan.Dropped.Take(20)) + (outcome.Plan.Dropped.Count > 20 ? "; … (all are listed in results.json, dropped_pairs)" : string.Empty));
        }

        var settings = report.AddSection("Settings");
        settings.AddKeyValues([.. outcome.Settings.ToDictionary(), new("seed", outcome.Settings.Seed.ToString(CultureInfo.InvariantCulture)),
            new("model sha256", outcome.Model.Sha256), new("sentences", outcome.Plan.Sentences.Count.ToString(CultureInfo.InvariantCulture))]);
        return report;
    }

    /// <summary>The report's glossary: each condition and each table column in one line.</summary>
    public static IReadOnlyList<(string Term, string Meaning)> Glossary(ProbeKind kind)
    {
        var conditions = kind == ProbeKind.WordSense
            ? new List<(string, string)>
            {
                (ProbeConditions.SameSense, "the target word in two sentences where annotators judged it to have the same meaning (WiC label T)"),
                (ProbeConditions.DifferentSense, "the target word in two sentences where it has different meanings (WiC label F)"),
            }
            : new List<(string, string)>
            {
                (ProbeConditions.Similar, "the target against a substitute annotators judged apt in this context (SWORDS score at or above the threshold)"),
                (ProbeConditions.Dissimilar, "the target against a substitute judged wrong in this context (SWORDS score 0)"),
                (ProbeConditions.WordNetDissimilar, "the target against a same-part-of-speech word unrelated to it in WordNet"),
            };
        conditions.AddRange(
        [
            (ProbeConditions.TokenIdentity, "control: the target against the same token ids, as a whole word, in an unrelated sentence of the data set — what identical tokens alone give"),
            (ProbeConditions.DifferentWord, "control: the target against another word in an unrelated sentence — the empirical null"),
            ("κ (kappa)", "overlap of the two selected expert sets corrected for uniform-load chance: (O − k²/N)/(k − k²/N); 1 = identical, 0 = chance under uniform load"),
            ("kappa_load", "the same with the chance of this model's measured expert load, (O − Σq²)/(k − Σq²); 0 = two unrelated tokens"),
            ("n1, n2", "pairs in the first and second condition"),
            ("mean1, mean2, diff", "the conditions' mean metric and their difference (first − second)"),
            ("95% CI", "two-sample percentile bootstrap interval of the difference (each condition resampled on its own, seeded)"),
            ("r_rb", "rank-biserial correlation: P(first > second) − P(first < second) over all cross pairs, in [−1, 1]; bracket: bootstrap 95% CI"),
            ("d", "Cohen's d: the difference in pooled standard deviations; bracket: bootstrap 95% CI"),
            ("p (MW)", "two-sided Mann-Whitney (Wilcoxon rank-sum) p-value, uncorrected"),
            ("p Holm", "Mann-Whitney p after Holm correction over every test of the run (all comparisons × layers, plus layer means): findings are read from this"),
            ("p BH", "Benjamini-Hochberg (false discovery rate) over the same family, secondary"),
            ("p Holm (layers)", "Holm correction across the layers of this comparison only"),
            ("p (Welch)", "two-sided Welch t-test p-value, uncorrected"),
            ("sig", "*** p Holm < 0.001, ** < 0.01, * < 0.05, n.s. not significant"),
        ]);
        return conditions;
    }

    // The chance level on the chart's scale: where two unrelated tokens fall under the measured expert load.
    private static (LineSeries? Series, string? Caption) ChanceSeries(ProbeOutcome outcome, double[] x)
    {
        var loads = outcome.Results.Loads;
        if (loads.Count == 0)
        {
            return (null, null);
        }

        switch (outcome.Settings.Metric)
        {
            case ProbeMetric.Kappa:
                return (new LineSeries("chance (measured load)", x, [.. loads.Select(load => load.ChanceKappa)]),
                    "Dashed line: κ = 0, chance only if every expert were selected equally often. The 'chance (measured load)' line is where two unrelated tokens fall under this model's measured expert load (Σq² in place of k²/N); the different-word control is the empirical null.");
            case ProbeMetric.LoadCorrectedKappa:
                return (null, "Dashed line: kappa_load = 0, the overlap two unrelated tokens have under this model's measured expert load; the different-word control is the empirical null.");
            case ProbeMetric.Overlap when !outcome.Settings.IncludeShared:
                return (new LineSeries("chance (measured load)", x, [.. loads.Select(load => load.ChanceOverlap / load.TopK)]),
                    "The 'chance (measured load)' line is the overlap two unrelated tokens have under this model's measured expert load, Σq²/k; the different-word control is the empirical null.");
            default:
                return (null, "The different-word control is the empirical null.");
        }
    }

    /// <summary>Column headings of the per-layer comparison tables (console and report).</summary>
    public static IReadOnlyList<string> ComparisonColumns { get; } =
        ["layer", "n1", "n2", "mean1", "mean2", "diff", "95% CI", "r_rb [95% CI]", "d [95% CI]", "p (MW)", "p Holm", "p BH", "p Holm (layers)", "p (Welch)", "sig"];

    /// <summary>One row of a comparison table; <c>sig</c> is read from the run-wide Holm p.</summary>
    public static IReadOnlyList<string> ComparisonRow(string layer, ComparisonStatistics s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return [layer, s.CountFirst.ToString(CultureInfo.InvariantCulture), s.CountSecond.ToString(CultureInfo.InvariantCulture), F(s.MeanFirst), F(s.MeanSecond),
            F(s.Difference), $"[{F(s.Lower)}, {F(s.Upper)}]", $"{F(s.RankBiserial)} [{F(s.RankBiserialLower)}, {F(s.RankBiserialUpper)}]",
            $"{F(s.CohensD)} [{F(s.CohensDLower)}, {F(s.CohensDUpper)}]", P(s.MannWhitneyP), P(s.MannWhitneyHolmRun), P(s.MannWhitneyBhRun), P(s.MannWhitneyHolm),
            P(s.WelchP), BarChart.SignificanceMark(s.MannWhitneyHolmRun) ?? "–"];
    }

    private static string F(double value) => double.IsFinite(value) ? value.ToString("0.0000", CultureInfo.InvariantCulture) : "–";

    private static string P(double value) => !double.IsFinite(value) ? "–"
        : value == 0 ? "< 1e-300" // below double's range; results.json keeps the exact 0
        : value.ToString(value < 0.001 ? "0.00e+0" : "0.0000", CultureInfo.InvariantCulture);

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }

        w.WriteEndArray();
    }

    private static void WriteSummary(Utf8JsonWriter w, int? layer, ConditionSummary s)
    {
        w.WriteStartObject();
        if (layer is { } l)
        {
            w.WriteNumber("layer", l);
        }

        w.WriteNumber("n", s.Count);
        JsonOutput.WriteNumberOrNull(w, "mean", s.Mean);
        JsonOutput.WriteNumberOrNull(w, "ci_lower", s.Lower);
        JsonOutput.WriteNumberOrNull(w, "ci_upper", s.Upper);
        w.WriteEndObject();
    }

    private static void WriteComparison(Utf8JsonWriter w, int? layer, ComparisonStatistics s)
    {
        w.WriteStartObject();
        if (layer is { } l)
        {
            w.WriteNumber("layer", l);
        }

        w.WriteNumber("n_first", s.CountFirst);
        w.WriteNumber("n_second", s.CountSecond);
        JsonOutput.WriteNumberOrNull(w, "mean_first", s.MeanFirst);
        JsonOutput.WriteNumberOrNull(w, "mean_second", s.MeanSecond);
        JsonOutput.WriteNumberOrNull(w, "difference", s.Difference);
        JsonOutput.WriteNumberOrNull(w, "ci_lower", s.Lower);
        JsonOutput.WriteNumberOrNull(w, "ci_upper", s.Upper);
        JsonOutput.WriteNumberOrNull(w, "rank_biserial", s.RankBiserial);
        JsonOutput.WriteNumberOrNull(w, "cohens_d", s.CohensD);
        JsonOutput.WriteNumberOrNull(w, "p_mann_whitney", s.MannWhitneyP);
        JsonOutput.WriteNumberOrNull(w, "p_mann_whitney_holm", s.MannWhitneyHolm);
        JsonOutput.WriteNumberOrNull(w, "p_mann_whitney_bh", s.MannWhitneyBh);
        JsonOutput.WriteNumberOrNull(w, "p_welch", s.WelchP);
        JsonOutput.WriteNumberOrNull(w, "p_welch_holm", s.WelchHolm);
        JsonOutput.WriteNumberOrNull(w, "p_welch_bh", s.WelchBh);
        JsonOutput.WriteNumberOrNull(w, "p_mann_whitney_holm_run", s.MannWhitneyHolmRun);
        JsonOutput.WriteNumberOrNull(w, "p_mann_whitney_bh_run", s.MannWhitneyBhRun);
        JsonOutput.WriteNumberOrNull(w, "rank_biserial_ci_lower", s.RankBiserialLower);
        JsonOutput.WriteNumberOrNull(w, "rank_biserial_ci_upper", s.RankBiserialUpper);
        JsonOutput.WriteNumberOrNull(w, "cohens_d_ci_lower", s.CohensDLower);
        JsonOutput.WriteNumberOrNull(w, "cohens_d_ci_upper", s.CohensDUpper);
        w.WriteEndObject();
    }
}
