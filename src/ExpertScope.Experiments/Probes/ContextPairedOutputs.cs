using System.Globalization;
using System.Text.Json;
using ExpertScope.Experiments.Reports;

namespace ExpertScope.Experiments.Probes;

/// <summary>How the substitution probe's per-context comparisons appear in <c>results.json</c>, the summary and the report.</summary>
public static class ContextPairedOutputs
{
    /// <summary>The label the substitution probe's pair-level comparisons carry in <c>results.json</c>.</summary>
    public const string SecondaryRole =
        "secondary: unpaired tests over pairs treat every substitute as independent, but a context's substitutes share one anchor; the primary test is context_paired_comparisons";

    /// <summary>Column headings of the per-context comparison tables.</summary>
    public static IReadOnlyList<string> Columns { get; } =
        ["layer", "contexts", "pairs", "mean1", "mean2", "diff", "95% CI (contexts)", "r_rb (paired)", "d_z", "V", "p (signed-rank)", "p Holm", "sig"];

    /// <summary>Writes <c>context_paired_comparisons</c> (nothing for a word-sense run).</summary>
    public static void WriteJson(Utf8JsonWriter w, ProbeResults results)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(results);
        if (results.ContextPaired.Count == 0)
        {
            return;
        }

        w.WriteStartArray("context_paired_comparisons");
        foreach (var comparison in results.ContextPaired)
        {
            w.WriteStartObject();
            w.WriteString("first", comparison.First);
            w.WriteString("second", comparison.Second);
            w.WriteString("role", "primary: one difference per context (mean first − mean second), Wilcoxon signed-rank over contexts as R's wilcox.test(x, y, paired = TRUE)");
            w.WriteString("correction", "by_layer p_holm/p_bh: across layers; layer_mean p_holm/p_bh: across this run's context-paired comparisons");
            w.WriteNumber("unpaired_contexts", comparison.UnpairedContexts);
            w.WriteNumber("significant_layers_holm", comparison.SignificantLayers);
            w.WriteBoolean("found", comparison.Found);
            w.WriteStartArray("by_layer");
            for (var layer = 0; layer < results.Layers.Count; layer++)
            {
                Write(w, results.Layers[layer], comparison.ByLayer[layer]);
            }

            w.WriteEndArray();
            w.WritePropertyName("layer_mean");
            Write(w, null, comparison.LayerMean);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary>
    /// Writes <c>substitute_forms</c>: per condition, how many sampled substitutes were used in the target's base
    /// form, inflected, left uninflected, or were multi-word (nothing for a word-sense run or without inflection).
    /// </summary>
    public static void WriteSubstituteForms(Utf8JsonWriter w, ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(outcome);
        var counts = SubstituteFormCounts(outcome);
        if (counts.Count == 0)
        {
            return;
        }

        w.WriteStartObject("substitute_forms");
        foreach (var (condition, forms) in counts)
        {
            w.WriteStartObject(condition);
            foreach (var form in Data.WordNet.SubstituteForm.All)
            {
                w.WriteNumber(form.Replace('-', '_'), forms.GetValueOrDefault(form));
            }

            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    /// <summary>Per condition (display order), the count of each substitute form among the sampled pairs.</summary>
    public static IReadOnlyList<(string Condition, IReadOnlyDictionary<string, int> Forms)> SubstituteFormCounts(ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var kind = outcome.Settings.Kind;
        var withForm = outcome.Data.Pairs.Where(pair => pair.SubstituteForm is not null).ToArray();
        return [.. ProbeConditions.All(kind)
            .Select(condition => (condition, (IReadOnlyDictionary<string, int>)withForm.Where(pair => ProbeConditions.Of(kind, pair) == condition)
                .GroupBy(pair => pair.SubstituteForm!, StringComparer.Ordinal).ToDictionary(group => group.Key, group => group.Count(), StringComparer.Ordinal)))
            .Where(entry => entry.Item2.Count > 0)];
    }

    /// <summary>The summary line on substitute forms (none for a word-sense run or without inflection).</summary>
    public static IEnumerable<string> SubstituteFormLines(ProbeOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var counts = SubstituteFormCounts(outcome);
        if (counts.Count > 0)
        {
            yield return "Substitutes put into the target's form with WordNet's morphology: " + string.Join("; ", counts.Select(entry =>
                $"{entry.Condition}: {entry.Forms.GetValueOrDefault(Data.WordNet.SubstituteForm.Inflected)} inflected, " +
                $"{entry.Forms.GetValueOrDefault(Data.WordNet.SubstituteForm.BaseForm)} in base form, " +
                $"{entry.Forms.GetValueOrDefault(Data.WordNet.SubstituteForm.NotInflected)} left as lemma (not inflectable), " +
                $"{entry.Forms.GetValueOrDefault(Data.WordNet.SubstituteForm.MultiWord)} multi-word (kept, counted apart)")) + ".";
        }
    }

    /// <summary>Plain-language lines of the per-context comparisons (none for a word-sense run).</summary>
    public static IEnumerable<string> SummaryLines(ProbeResults results, string metric)
    {
        ArgumentNullException.ThrowIfNull(results);
        foreach (var comparison in results.ContextPaired)
        {
            var s = comparison.LayerMean;
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{comparison.First} vs {comparison.Second}, per context (the unit of replication: {s.Contexts} contexts, {s.PairsFirst}/{s.PairsSecond} pairs): " +
                $"mean layer-mean {metric} difference {F(s.Difference)} (cluster-bootstrap 95% CI {F(s.Lower)} to {F(s.Upper)}; Wilcoxon signed-rank p = {P(s.PValue)}, " +
                $"Holm-corrected across the run's {results.ContextPaired.Count} per-context comparisons p = {P(s.Holm)}); " +
                $"{comparison.SignificantLayers} of {results.Layers.Count} layers significant after Holm correction across layers. ")
                + (comparison.Found ? "A difference was found." : "No difference was found.")
                + (s.Contexts < 20 ? " Fewer than 20 contexts: too few to conclude anything." : string.Empty);
        }
    }

    /// <summary>The substitution probe's line for a pair-level (secondary) comparison: numbers, no conclusion.</summary>
    public static string SecondaryLine(ComparisonResult comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        var mean = comparison.LayerMean;
        return string.Create(CultureInfo.InvariantCulture,
            $"Secondary (pairs treated as independent, which they are not): {comparison.First} vs {comparison.Second} layer-mean difference {F(mean.Difference)} " +
            $"(95% CI {F(mean.Lower)} to {F(mean.Upper)}; n = {mean.CountFirst}/{mean.CountSecond}; Mann-Whitney p = {P(mean.MannWhitneyP)}).");
    }

    /// <summary>Adds the per-context section (tables with Holm marks) to the report; nothing for a word-sense run.</summary>
    public static void AddToReport(HtmlReport report, ProbeResults results)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(results);
        if (results.ContextPaired.Count == 0)
        {
            return;
        }

        var section = report.AddSection("Per-context tests (primary)");
        section.AddParagraph("Conditions (SWORDS, Lee et al. 2021, on CoInCo contexts, Kremer et al. 2014): similar = at least the --similar-threshold share of " +
            "annotators judged the substitute apt in this context; dissimilar = SWORDS score 0, every annotator judged it wrong in this context. SWORDS " +
            "candidates come partly from a thesaurus, so dissimilar substitutes are mostly synonyms of another sense of the target, not unrelated words; " +
            "wordnet-dissimilar (if requested) are words of the same part of speech unrelated to the target in WordNet (Wu-Palmer < 0.3, no synset within 4 hypernym edges).");
        section.AddParagraph("Each SWORDS context contributes one difference: the mean of its first-condition substitutes minus the mean of its " +
            "second-condition substitutes. The test is R's wilcox.test(x, y, paired = TRUE) over contexts; intervals resample contexts (cluster bootstrap). " +
            "p Holm is across layers per layer, and across this run's per-context comparisons for the layer mean.");
        foreach (var comparison in results.ContextPaired)
        {
            var rows = new List<IReadOnlyList<string>>();
            for (var layer = 0; layer < results.Layers.Count; layer++)
            {
                rows.Add(Row(results.Layers[layer].ToString(CultureInfo.InvariantCulture), comparison.ByLayer[layer]));
            }

            rows.Add(Row("mean", comparison.LayerMean));
            section.AddTable(new ReportTable(Columns, rows,
                $"{comparison.First} vs {comparison.Second} ({comparison.UnpairedContexts} contexts without both conditions left out)"));
        }
    }

    /// <summary>One row of a per-context table.</summary>
    public static IReadOnlyList<string> Row(string layer, PairedComparisonStatistics s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return [layer, s.Contexts.ToString(CultureInfo.InvariantCulture), $"{s.PairsFirst}/{s.PairsSecond}", F(s.MeanFirst), F(s.MeanSecond), F(s.Difference),
            $"[{F(s.Lower)}, {F(s.Upper)}]", F(s.RankBiserial), F(s.CohensDz), F(s.SignedRankV), P(s.PValue), P(s.Holm), BarChart.SignificanceMark(s.Holm) ?? "–"];
    }

    private static void Write(Utf8JsonWriter w, int? layer, PairedComparisonStatistics s)
    {
        w.WriteStartObject();
        if (layer is { } l)
        {
            w.WriteNumber("layer", l);
        }

        w.WriteNumber("n_contexts", s.Contexts);
        w.WriteNumber("n_pairs_first", s.PairsFirst);
        w.WriteNumber("n_pairs_second", s.PairsSecond);
        JsonOutput.WriteNumberOrNull(w, "mean_first", s.MeanFirst);
        JsonOutput.WriteNumberOrNull(w, "mean_second", s.MeanSecond);
        JsonOutput.WriteNumberOrNull(w, "difference", s.Difference);
        JsonOutput.WriteNumberOrNull(w, "ci_lower", s.Lower);
        JsonOutput.WriteNumberOrNull(w, "ci_upper", s.Upper);
        JsonOutput.WriteNumberOrNull(w, "pooled_difference", s.PooledDifference);
        JsonOutput.WriteNumberOrNull(w, "pooled_ci_lower", s.PooledLower);
        JsonOutput.WriteNumberOrNull(w, "pooled_ci_upper", s.PooledUpper);
        JsonOutput.WriteNumberOrNull(w, "rank_biserial_paired", s.RankBiserial);
        JsonOutput.WriteNumberOrNull(w, "cohens_dz", s.CohensDz);
        JsonOutput.WriteNumberOrNull(w, "v", s.SignedRankV);
        JsonOutput.WriteNumberOrNull(w, "p_signed_rank", s.PValue);
        w.WriteBoolean("exact", s.IsExact);
        JsonOutput.WriteNumberOrNull(w, "p_holm", s.Holm);
        JsonOutput.WriteNumberOrNull(w, "p_bh", s.Bh);
        w.WriteEndObject();
    }

    private static string F(double value) => double.IsFinite(value) ? value.ToString("0.0000", CultureInfo.InvariantCulture) : "–";

    private static string P(double value) => !double.IsFinite(value) ? "–"
        : value == 0 ? "< 1e-300"
        : value.ToString(value < 0.001 ? "0.00e+0" : "0.0000", CultureInfo.InvariantCulture);
}
