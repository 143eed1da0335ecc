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
    /// (the trace's <c>sequence</c>), so the statistics can be recomputed elsewhere.
    /// </summary>
    public static string PairsCsv(ProbeResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        using var text = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        using (var csv = new CsvWriter(text, leaveOpen: true))
        {
            csv.WriteRow("pair_id", "condition", "word", "layer", "overlap", "jaccard", "kappa", "weighted", "js",
                "sentence_1", "sentence_2", "position_1", "position_2", "position_diff", "tokens_1", "tokens_2", "splits_token", "same_token_ids", "data_score");
            foreach (var measurement in results.Measurements)
            {
                var pair = measurement.Pair;
                for (var layer = 0; layer < results.Layers.Count; layer++)
                {
                    var s = measurement.ByLayer[layer];
                    csv.WriteRow(pair.PairId, pair.Condition, pair.Word, results.Layers[layer], s.Overlap, s.Jaccard, s.Kappa, s.Weighted, s.JensenShannon,
                        pair.First.Sentence, pair.Second.Sentence, pair.First.Position, pair.Second.Position, measurement.PositionDifference,
                        pair.First.Tokens.Count, pair.Second.Tokens.Count, pair.SplitsToken, pair.SameTokenIds, pair.DataScore);
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

            w.WriteEndObject();
            WriteStrings(w, "skipped_records", outcome.Data.Skipped);
            WriteStrings(w, "dropped_pairs", outcome.Plan.Dropped);

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
                w.WriteNumber("significant_layers_holm", comparison.SignificantLayers);
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
        lines.Add($"Metric: {direction}, over {results.Layers.Count} MoE layers; {outcome.Data.Pairs.Count} of {outcome.Data.Available} pairs sampled, {outcome.Plan.Dropped.Count} pairs or controls dropped.");
        foreach (var comparison in results.Comparisons)
        {
            var mean = comparison.LayerMean;
            var found = mean.Lower > 0 || mean.Upper < 0;
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{comparison.First} vs {comparison.Second}: layer-mean difference {F(mean.Difference)} (95% CI {F(mean.Lower)} to {F(mean.Upper)}; n = {mean.CountFirst}/{mean.CountSecond}; Mann-Whitney p = {P(mean.MannWhitneyP)}); " +
                $"{comparison.SignificantLayers} of {results.Layers.Count} layers significant after Holm correction. ")
                + (found ? "The bootstrap interval excludes 0: a difference was found." : "The bootstrap interval includes 0: no difference was found.")
                + (Math.Min(mean.CountFirst, mean.CountSecond) < 20 ? " Fewer than 20 pairs in a condition: too few to conclude anything." : string.Empty));
        }

        foreach (var correlation in results.PositionCorrelations.Where(c => double.IsFinite(c.Spearman)))
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Position control, {correlation.Condition}: Spearman rho of the layer-mean {metric} with |position difference| = {F(correlation.Spearman)} (p = {P(correlation.PValue)}, n = {correlation.Count})."));
        }

        if (results.PositionMatched is { } matched && results.Comparisons.Count > 0)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Position-matched (|position difference| ≤ {outcome.Settings.PositionMatchTolerance}) {results.Comparisons[0].First} vs {results.Comparisons[0].Second}: difference {F(matched.Difference)} (95% CI {F(matched.Lower)} to {F(matched.Upper)}; n = {matched.CountFirst}/{matched.CountSecond})."));
        }

        if (results.TokenMatched is { } tokens && results.Comparisons.Count > 0)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Token-matched (both words the same token ids) {results.Comparisons[0].First} vs {results.Comparisons[0].Second}: difference {F(tokens.Difference)} (95% CI {F(tokens.Lower)} to {F(tokens.Upper)}; n = {tokens.CountFirst}/{tokens.CountSecond}; Mann-Whitney p = {P(tokens.MannWhitneyP)}): the part of the effect that token identity cannot explain."));
        }

        return lines;
    }

    /// <summary>The HTML report with per-layer means and 95% intervals, effect sizes with significance marks, and distributions.</summary>
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
        double[] x = [.. results.Layers.Select(layer => (double)layer)];

        var perLayer = report.AddSection("Routing similarity per layer");
        perLayer.AddFigure(new LineChart
        {
            Title = $"Mean {metric} per layer (95% bootstrap CI)",
            XLabel = "layer",
            YLabel = metric,
            ReferenceY = outcome.Settings.Metric == ProbeMetric.Kappa ? 0 : null,
            Series = [.. results.Conditions.Select(condition => new LineSeries(condition, x,
                [.. results.ByCondition[condition].Select(s => s.Mean)],
                [.. results.ByCondition[condition].Select(s => s.Lower)],
                [.. results.ByCondition[condition].Select(s => s.Upper)]))],
        }, outcome.Settings.Metric == ProbeMetric.Kappa ? "The dashed line is chance (κ = 0)." : null);

        var effects = report.AddSection("Effect sizes per layer");
        string[] categories = [.. results.Layers.Select(layer => layer.ToString(CultureInfo.InvariantCulture))];
        effects.AddFigure(new BarChart
        {
            Title = "Rank-biserial correlation per layer (marks: Holm-corrected Mann-Whitney p)",
            Categories = categories,
            XLabel = "layer",
            YLabel = "rank-biserial r",
            ReferenceY = 0,
            Series = [.. results.Comparisons.Select(c => new BarSeries($"{c.First} vs {c.Second}",
                [.. c.ByLayer.Select(s => s.RankBiserial)], Marks: [.. c.ByLayer.Select(s => BarChart.SignificanceMark(s.MannWhitneyHolm))]))],
        });
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

        var distributions = report.AddSection("Distributions");
        distributions.AddFigure(new BoxPlot
        {
            Title = $"Layer-mean {metric} per pair",
            XLabel = "condition",
            YLabel = metric,
            Distributions = [.. results.Conditions.Select(condition => new Distribution(condition,
                [.. results.Measurements.Where(m => m.Pair.Condition == condition).Select(m => m.LayerMean(outcome.Settings.Metric))]))],
        });

        var settings = report.AddSection("Settings");
        settings.AddKeyValues([.. outcome.Settings.ToDictionary(), new("seed", outcome.Settings.Seed.ToString(CultureInfo.InvariantCulture)),
            new("model sha256", outcome.Model.Sha256), new("sentences", outcome.Plan.Sentences.Count.ToString(CultureInfo.InvariantCulture))]);
        if (outcome.Plan.Dropped.Count > 0)
        {
            settings.AddParagraph($"Dropped ({outcome.Plan.Dropped.Count}): " + string.Join("; ", outcome.Plan.Dropped.Take(20)) + (outcome.Plan.Dropped.Count > 20 ? "; …" : string.Empty));
        }

        return report;
    }

    /// <summary>Column headings of the per-layer comparison tables (console and report).</summary>
    public static IReadOnlyList<string> ComparisonColumns { get; } =
        ["layer", "n1", "n2", "mean1", "mean2", "diff", "95% CI", "r_rb", "d", "p (MW)", "p Holm", "p BH", "p (Welch)", "sig"];

    /// <summary>One row of a comparison table.</summary>
    public static IReadOnlyList<string> ComparisonRow(string layer, ComparisonStatistics s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var p = double.IsFinite(s.MannWhitneyHolm) ? s.MannWhitneyHolm : s.MannWhitneyP;
        return [layer, s.CountFirst.ToString(CultureInfo.InvariantCulture), s.CountSecond.ToString(CultureInfo.InvariantCulture), F(s.MeanFirst), F(s.MeanSecond),
            F(s.Difference), $"[{F(s.Lower)}, {F(s.Upper)}]", F(s.RankBiserial), F(s.CohensD), P(s.MannWhitneyP), P(s.MannWhitneyHolm), P(s.MannWhitneyBh),
            P(s.WelchP), BarChart.SignificanceMark(p) ?? "–"];
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
        w.WriteEndObject();
    }
}
