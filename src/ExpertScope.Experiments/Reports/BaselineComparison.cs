using System.Globalization;
using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Reports;

/// <summary>One headline number of an analysis next to the same number in a baseline run.</summary>
/// <param name="Metric">What it is (<c>mi_bits</c>, <c>js_divergence_mean_bits</c>, …, as in the analysis' results.json).</param>
/// <param name="Layer">The layer, or null for a whole-model number.</param>
/// <param name="Value">This run's value.</param>
/// <param name="Baseline">The baseline run's value.</param>
public sealed record BaselineRow(string Metric, int? Layer, double Value, double Baseline)
{
    /// <summary>Value − baseline.</summary>
    public double Difference => Value - Baseline;

    /// <summary>Value / baseline (NaN when the baseline is 0).</summary>
    public double Ratio => Baseline != 0 ? Value / Baseline : double.NaN;
}

/// <summary>
/// "Is this structure or chance?" on the page: an <c>analyze</c> run's headline numbers next to the same analysis run
/// on a baseline, typically the same-shape model with random weights (<c>make-model</c>, or the random twin of a
/// trained model). Both runs are read back from their <c>results.json</c>, so any two finished runs of one analysis
/// can be compared; the numbers are those the analysis itself reports (no new statistics).
/// </summary>
/// <remarks>
/// Metrics per analysis: <c>token-id</c>: per layer I(E; T) (plug-in and Miller-Madow), top-1 consistency, context
/// share, H(E). <c>domains</c>: per layer the mean and largest Jensen-Shannon divergence over domain pairs, the mean
/// normalised entropy and top-expert share over domains; the number of listed domain-specific experts used at least
/// twice as often in their domain as elsewhere (log2 ratio ≥ 1). <c>single-expert</c>: per layer the cosine of the
/// MoE output and of the residual stream with only the top expert in that layer; perplexity with all experts, with
/// the top expert only in every layer, and their ratio. <c>lens</c>: per layer the mean KL to the final distribution
/// and top-1 agreement of the residual stream and of the mixture.
/// </remarks>
public static class BaselineComparison
{
    /// <summary>The analyses this comparison knows (the <c>analysis</c> field of their results.json).</summary>
    public static IReadOnlyList<string> Analyses { get; } = ["token-id", "domains", "single-expert", "lens"];

    // Settings that make two runs comparable; a difference is reported, not refused (a baseline on other text is a
    // legitimate question, but the reader must see it).
    private static readonly string[] ComparableSettings = ["tokens", "tokens_per_domain", "seed", "min_occurrences", "input_tokens", "weight", "expert_outputs"];

    /// <summary>Checks that <paramref name="baselineFolder"/> holds a finished run of <paramref name="analysis"/>.</summary>
    /// <exception cref="ExpertScopeException">It does not.</exception>
    public static void Validate(string baselineFolder, string analysis)
    {
        using var baseline = Read(baselineFolder);
        string kind = Kind(baseline, baselineFolder);
        if (kind != analysis)
        {
            throw new ExpertScopeException($"{Path.Combine(baselineFolder, "results.json")}: the baseline is an '{kind}' run, not '{analysis}'.");
        }
    }

    /// <summary>The rows of the comparison and the settings that differ between the runs.</summary>
    /// <exception cref="ExpertScopeException">A results.json is missing or unreadable, or the runs are of different analyses.</exception>
    public static (IReadOnlyList<BaselineRow> Rows, IReadOnlyList<string> SettingDifferences) Compare(string runFolder, string baselineFolder)
    {
        using var run = Read(runFolder);
        using var baseline = Read(baselineFolder);
        string kind = Kind(run, runFolder);
        string baselineKind = Kind(baseline, baselineFolder);
        if (kind != baselineKind)
        {
            throw new ExpertScopeException($"{Path.Combine(baselineFolder, "results.json")}: the baseline is an '{baselineKind}' run, this one '{kind}'.");
        }

        var mine = Metrics(kind, run.RootElement);
        var theirs = Metrics(kind, baseline.RootElement).ToDictionary(m => (m.Metric, m.Layer), m => m.Value);
        var rows = mine.Where(m => theirs.ContainsKey((m.Metric, m.Layer)))
            .Select(m => new BaselineRow(m.Metric, m.Layer, m.Value, theirs[(m.Metric, m.Layer)])).ToList();
        var differences = new List<string>();
        foreach (string setting in ComparableSettings)
        {
            bool inRun = run.RootElement.TryGetProperty(setting, out var a);
            bool inBaseline = baseline.RootElement.TryGetProperty(setting, out var b);
            if (inRun && inBaseline && a.GetRawText() != b.GetRawText())
            {
                differences.Add($"{setting}: {a.GetRawText()} here, {b.GetRawText()} in the baseline");
            }
        }

        return (rows, differences);
    }

    /// <summary>
    /// Writes <c>baseline.csv</c> and <c>baseline.json</c> into <paramref name="runFolder"/> and adds an "Against the
    /// baseline" section to its <c>report.html</c>; returns the one-line headline.
    /// </summary>
    public static string Write(string runFolder, string baselineFolder)
    {
        var (rows, differences) = Compare(runFolder, baselineFolder);
        using var run = Read(runFolder);
        using var baseline = Read(baselineFolder);
        string kind = Kind(run, runFolder);
        string baselineModel = baseline.RootElement.TryGetProperty("model", out var m) ? m.GetString() ?? "?" : "?";
        using (var csv = CsvWriter.Create(Path.Combine(runFolder, "baseline.csv")))
        {
            csv.WriteRow("metric", "layer", "value", "baseline", "difference", "ratio");
            foreach (var row in rows)
            {
                csv.WriteRow(row.Metric, row.Layer, row.Value, row.Baseline, row.Difference, row.Ratio);
            }
        }

        JsonOutput.WriteFile(Path.Combine(runFolder, "baseline.json"), new
        {
            analysis = kind,
            baseline_folder = Path.GetFullPath(baselineFolder),
            baseline_model = baselineModel,
            setting_differences = differences,
            rows = rows.Select(r => new { metric = r.Metric, layer = r.Layer, value = r.Value, baseline = r.Baseline, difference = r.Difference, ratio = r.Ratio }),
        });

        string headline = Headline(kind, rows);
        HtmlReport.AppendSection(Path.Combine(runFolder, "report.html"), "Against the baseline", "baseline", section =>
        {
            section.AddParagraph($"Baseline: {baselineModel} ({Path.GetFullPath(baselineFolder)}), the same analysis. Structure this model shows and the baseline (e.g. the same shape with random weights) does not is learned; numbers the baseline matches are what untrained routing gives as well.");
            section.AddParagraph(headline);
            foreach (string difference in differences)
            {
                section.AddParagraph("Settings differ, so the runs are not on equal terms: " + difference + ".");
            }

            var headlineMetric = HeadlineMetric(kind);
            var layered = rows.Where(r => r.Metric == headlineMetric && r.Layer is not null).ToList();
            if (layered.Count > 1)
            {
                double[] x = [.. layered.Select(r => (double)r.Layer!.Value)];
                section.AddFigure(new LineChart
                {
                    Title = headlineMetric + " per layer", XLabel = "layer", YLabel = headlineMetric,
                    Series = [new LineSeries("this model", x, [.. layered.Select(r => r.Value)]), new LineSeries("baseline", x, [.. layered.Select(r => r.Baseline)])],
                });
            }

            section.AddTable(new ReportTable(
                ["metric", "layer", "this model", "baseline", "difference", "ratio"],
                [.. rows.Select(r => (IReadOnlyList<string>)[r.Metric, r.Layer?.ToString(CultureInfo.InvariantCulture) ?? "all", ReportTable.Number(r.Value), ReportTable.Number(r.Baseline), ReportTable.Number(r.Difference), ReportTable.Number(r.Ratio)])],
                "Every row is in baseline.csv."));
        });
        return headline;
    }

    private static string HeadlineMetric(string kind) => kind switch
    {
        "token-id" => "mi_miller_madow_bits",
        "domains" => "js_divergence_mean_bits",
        "single-expert" => "cosine_ffn_moe_out",
        _ => "kl_to_final_nats_l_out",
    };

    private static string Headline(string kind, IReadOnlyList<BaselineRow> rows)
    {
        string metric = HeadlineMetric(kind);
        var selected = rows.Where(r => r.Metric == metric).ToList();
        if (selected.Count == 0)
        {
            return "The runs share no headline metric.";
        }

        double value = selected.Average(r => r.Value);
        double baseline = selected.Average(r => r.Baseline);
        return string.Create(CultureInfo.InvariantCulture,
            $"Layer mean of {metric}: {value:G4} here, {baseline:G4} in the baseline ({(baseline != 0 ? value / baseline : double.NaN):G3}×).");
    }

    private static JsonDocument Read(string folder)
    {
        string path = Path.Combine(folder, "results.json");
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"{path}: missing; --baseline needs the folder of a finished run of the same analysis.");
        }

        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new ExpertScopeException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }

    private static string Kind(JsonDocument document, string folder) =>
        document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("analysis", out var kind) && kind.ValueKind == JsonValueKind.String
            && Analyses.Contains(kind.GetString()!)
            ? kind.GetString()!
            : throw new ExpertScopeException($"{Path.Combine(folder, "results.json")}: not the results of an analysis --baseline knows ({string.Join(", ", Analyses)}).");

    private static List<(string Metric, int? Layer, double Value)> Metrics(string kind, JsonElement root)
    {
        var metrics = new List<(string, int?, double)>();
        switch (kind)
        {
            case "token-id":
                foreach (var layer in root.GetProperty("layers").EnumerateArray())
                {
                    int l = layer.GetProperty("layer").GetInt32();
                    foreach (string name in new[] { "mi_bits", "mi_miller_madow_bits", "top1_consistency", "context_share", "h_expert_bits" })
                    {
                        Add(metrics, name, l, layer, name);
                    }
                }

                break;
            case "domains":
                foreach (var matrix in root.GetProperty("js_divergence").EnumerateArray())
                {
                    int l = matrix.GetProperty("layer").GetInt32();
                    var rows = matrix.GetProperty("bits").EnumerateArray().Select(r => r.EnumerateArray().Select(NumberOrNaN).ToArray()).ToArray();
                    var pairs = Enumerable.Range(0, rows.Length).SelectMany(i => Enumerable.Range(i + 1, rows.Length - i - 1).Select(j => rows[i][j])).ToList();
                    if (pairs.Count > 0)
                    {
                        metrics.Add(("js_divergence_mean_bits", l, pairs.Average()));
                        metrics.Add(("js_divergence_max_bits", l, pairs.Max()));
                    }
                }

                var concentration = root.GetProperty("concentration").EnumerateArray().ToList();
                foreach (var group in concentration.GroupBy(c => c.GetProperty("layer").GetInt32()).OrderBy(g => g.Key))
                {
                    metrics.Add(("normalized_entropy_mean", group.Key, group.Average(c => NumberOrNaN(c.GetProperty("normalized_entropy")))));
                    metrics.Add(("top_expert_share_mean", group.Key, group.Average(c => NumberOrNaN(c.GetProperty("top_expert_share")))));
                }

                metrics.Add(("specific_experts_at_least_2x", null, root.GetProperty("specific_experts").EnumerateArray().Count(s => NumberOrNaN(s.GetProperty("log2_ratio")) >= 1)));
                break;
            case "single-expert":
                foreach (var cosine in root.GetProperty("cosines").EnumerateArray()
                    .Where(c => c.GetProperty("variant").GetString() == "per-layer" && c.GetProperty("shared").GetString() == "on"))
                {
                    int l = cosine.GetProperty("layer").GetInt32();
                    Add(metrics, "cosine_ffn_moe_out", l, cosine, "ffn_moe_out");
                    Add(metrics, "cosine_l_out", l, cosine, "l_out");
                }

                var perplexities = root.GetProperty("perplexities").EnumerateArray().Where(p => p.GetProperty("shared").GetString() == "on").ToList();
                double full = perplexities.Where(p => p.GetProperty("setting").GetString() == "all-experts").Select(p => NumberOrNaN(p.GetProperty("perplexity"))).FirstOrDefault(double.NaN);
                double single = perplexities.Where(p => p.GetProperty("setting").GetString() == "single-expert-all-layers").Select(p => NumberOrNaN(p.GetProperty("perplexity"))).FirstOrDefault(double.NaN);
                metrics.Add(("perplexity_all_experts", null, full));
                metrics.Add(("perplexity_top1_all_layers", null, single));
                metrics.Add(("perplexity_ratio_top1_to_all", null, single / full));
                break;
            case "lens":
                foreach (var summary in root.GetProperty("summary").EnumerateArray())
                {
                    string source = summary.GetProperty("source").GetString()!;
                    if (source is "l_out" or "ffn_moe_out")
                    {
                        int l = summary.GetProperty("layer").GetInt32();
                        Add(metrics, "kl_to_final_nats_" + source, l, summary, "mean_kl_to_final_nats");
                        Add(metrics, "top1_agreement_" + source, l, summary, "top1_agreement");
                    }
                }

                break;
        }

        return metrics;
    }

    private static void Add(List<(string, int?, double)> metrics, string name, int? layer, JsonElement element, string property)
    {
        if (element.TryGetProperty(property, out var value))
        {
            metrics.Add((name, layer, NumberOrNaN(value)));
        }
    }

    // results.json writes non-finite numbers as null.
    private static double NumberOrNaN(JsonElement value) => value.ValueKind == JsonValueKind.Number ? value.GetDouble() : double.NaN;
}
