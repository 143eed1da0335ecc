using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Probes;

/// <summary>A run's main comparison at one layer (or on layer means), as <c>compare</c> recomputes it from <c>pairs.csv</c>.</summary>
/// <param name="Layer">The MoE layer (null for the layer mean).</param>
/// <param name="RelativeDepth">layer / (blocks − 1) (null for the layer mean).</param>
/// <param name="First">The first condition's mean with its seeded bootstrap 95% CI (over pairs).</param>
/// <param name="Second">The second condition's.</param>
/// <param name="CountFirst">First-condition pairs.</param>
/// <param name="CountSecond">Second-condition pairs.</param>
/// <param name="Contexts">Contexts with both conditions, the test's n (substitution); null for word-sense, whose n is the pairs.</param>
/// <param name="Difference">The tested difference: mean of per-context differences (substitution) or of pair means (word-sense).</param>
/// <param name="Lower">Lower end of its 95% CI (cluster bootstrap by context, or two-sample bootstrap).</param>
/// <param name="Upper">Upper end.</param>
/// <param name="EffectSize">Rank-biserial r (matched-pairs over contexts for substitution).</param>
/// <param name="CohensD">Cohen's d (d_z over contexts for substitution).</param>
/// <param name="PValue">Wilcoxon signed-rank over contexts (substitution) or Mann-Whitney over pairs (word-sense), two-sided, as R's <c>wilcox.test</c>.</param>
/// <param name="Corrected">Holm-corrected p: across the run's layers for a layer, across the compared runs for the layer mean.</param>
public sealed record ComparedLayer(
    int? Layer, double? RelativeDepth, ConditionSummary First, ConditionSummary Second, int CountFirst, int CountSecond, int? Contexts, double Difference, double Lower, double Upper,
    double EffectSize, double CohensD, double PValue, double Corrected)
{
    /// <summary>The test's n in words.</summary>
    public string Units => Contexts is { } contexts ? $"{contexts} contexts" : $"{CountFirst}/{CountSecond} pairs";
}

/// <summary>One run in a comparison.</summary>
/// <param name="Run">The run as read.</param>
/// <param name="Label">Its label in the figure and table (the model, with the folder name where two runs share a model).</param>
/// <param name="ByLayer">Per probed layer.</param>
/// <param name="LayerMean">On each pair's mean over layers.</param>
public sealed record ComparedRun(ProbeRunData Run, string Label, IReadOnlyList<ComparedLayer> ByLayer, ComparedLayer LayerMean);

/// <summary>Several probe runs (different models) compared on one probe's main comparison.</summary>
/// <param name="Kind">The probe all runs share.</param>
/// <param name="Metric">The compared <c>pairs.csv</c> column.</param>
/// <param name="First">The main comparison's first condition.</param>
/// <param name="Second">Its second condition.</param>
/// <param name="Runs">The runs, in the order given.</param>
public sealed record ProbeComparisonResult(ProbeKind Kind, string Metric, string First, string Second, IReadOnlyList<ComparedRun> Runs)
{
    /// <summary>True when any compared run is from a random-weight model.</summary>
    public bool AnyRandomWeights => Runs.Any(run => run.Run.RandomWeights);
}

/// <summary>
/// <c>expertscope compare</c>: the per-layer main comparison of several probe runs on relative depth 0–1, the way the
/// semantic-routing papers set models of different sizes side by side (arXiv 2502.10928, Fig. per-layer κ). Every
/// number is recomputed from each run's <c>pairs.csv</c> with the run's own seed and definitions (the probes README).
/// </summary>
public static class ProbeComparison
{
    /// <summary>The figure file.</summary>
    public const string FigureFileName = "compare.svg";

    /// <summary>The table file.</summary>
    public const string TableFileName = "compare.csv";

    /// <summary>The report file.</summary>
    public const string ReportFileName = "report.html";

    /// <summary>The random-weights banner of the comparison's summary and report.</summary>
    public const string RandomWeightsBanner =
        "At least one compared run is from a model with random weights (a generated test model): its routing carries no meaning, so its curve says nothing about language.";

    /// <summary>Reads and compares the runs.</summary>
    /// <param name="folders">Run folders (at least one).</param>
    /// <param name="metric">The <c>pairs.csv</c> column (default kappa).</param>
    /// <exception cref="ExpertScopeException">No runs, a folder that is not a probe run, or runs of different probes.</exception>
    public static ProbeComparisonResult Compare(IReadOnlyList<string> folders, string metric = "kappa")
    {
        ArgumentNullException.ThrowIfNull(folders);
        if (folders.Count == 0)
        {
            throw new ExpertScopeException("compare needs at least one probe run folder");
        }

        var runs = folders.Select(folder => ProbeRunReader.Read(folder, metric)).ToArray();
        var other = runs.FirstOrDefault(run => run.Kind != runs[0].Kind);
        if (other is not null)
        {
            throw new ExpertScopeException(
                $"runs differ in probe kind: '{runs[0].Folder}' is {ProbeSettings.KindName(runs[0].Kind)}, '{other.Folder}' is {ProbeSettings.KindName(other.Kind)}; compare runs of one probe");
        }

        var (first, second) = ProbeConditions.Comparisons(runs[0].Kind)[0];
        var compared = runs.Select(run => CompareRun(run, first, second, Label(run, runs))).ToList();
        double[] layerMeanP = [.. compared.Select(run => run.LayerMean.PValue)];
        var holm = HolmWithNaN(layerMeanP);
        compared = [.. compared.Select((run, i) => run with { LayerMean = run.LayerMean with { Corrected = holm[i] } })];
        return new ProbeComparisonResult(runs[0].Kind, metric, first, second, compared);
    }

    /// <summary>Writes <c>compare.svg</c>, <c>compare.csv</c> and <c>report.html</c> into <paramref name="folder"/>.</summary>
    public static void WriteAll(ProbeComparisonResult result, string folder)
    {
        ArgumentNullException.ThrowIfNull(result);
        Directory.CreateDirectory(folder);
        Figure(result).SaveSvg(Path.Combine(folder, FigureFileName));
        AtomicFile.WriteAllText(Path.Combine(folder, TableFileName), Table(result));
        AtomicFile.WriteAllText(Path.Combine(folder, ReportFileName), Report(result).ToHtml());
    }

    /// <summary>Plain-language lines: the banner where needed, then one line per run.</summary>
    public static IReadOnlyList<string> Summarize(ProbeComparisonResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var lines = new List<string>();
        if (result.AnyRandomWeights)
        {
            lines.Add(RandomWeightsBanner + " Random-weight runs: " + string.Join(", ", result.Runs.Where(run => run.Run.RandomWeights).Select(run => run.Label)) + ".");
        }

        var unit = result.Kind == ProbeKind.Substitution ? "per-context Wilcoxon signed-rank" : "Mann-Whitney over pairs";
        foreach (var run in result.Runs)
        {
            var m = run.LayerMean;
            var significant = run.ByLayer.Count(layer => layer.Corrected < 0.05);
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{run.Label}: {result.First} − {result.Second} layer-mean {result.Metric} difference {F(m.Difference)} (95% CI {F(m.Lower)} to {F(m.Upper)}; n = {m.Units}; {unit} p = {P(m.PValue)}, " +
                $"Holm across the {result.Runs.Count} compared runs p = {P(m.Corrected)}); {significant} of {run.ByLayer.Count} layers significant after Holm correction across layers."));
        }

        if (result.Runs.Select(run => run.Run.Dataset).Distinct(StringComparer.Ordinal).Count() > 1)
        {
            lines.Add("The runs used different data sets (" + string.Join(", ", result.Runs.Select(run => $"{run.Label}: {run.Run.Dataset}")) + "): their curves are not directly comparable.");
        }

        return lines;
    }

    /// <summary>The figure: per-layer difference of each run on relative depth with 95% CIs; marks where the Holm-corrected p is below 0.05.</summary>
    public static LineChart Figure(ProbeComparisonResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new LineChart
        {
            Title = $"{result.First} − {result.Second}: {result.Metric} per layer (95% CI; * ** *** Holm p < .05/.01/.001 across layers)",
            XLabel = "relative depth (layer / (blocks − 1))",
            YLabel = $"{result.Metric} difference",
            IntegerX = false,
            XMinimum = 0,
            XMaximum = 1,
            ReferenceY = 0,
            Series = [.. result.Runs.Select(run => new LineSeries(run.Label + (run.Run.RandomWeights ? " (random weights)" : string.Empty),
                [.. run.ByLayer.Select(layer => layer.RelativeDepth ?? 0)],
                [.. run.ByLayer.Select(layer => layer.Difference)],
                [.. run.ByLayer.Select(layer => layer.Lower)],
                [.. run.ByLayer.Select(layer => layer.Upper)],
                [.. run.ByLayer.Select(layer => layer.Corrected < 0.05 ? BarChart.SignificanceMark(layer.Corrected) : null)]))],
        };
    }

    /// <summary>The table: one row per run and layer plus one layer-mean row per run.</summary>
    public static string Table(ProbeComparisonResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        using var text = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        using (var csv = new CsvWriter(text, leaveOpen: true))
        {
            var isSubstitution = result.Kind == ProbeKind.Substitution;
            csv.WriteRow("model", "run", "architecture", "expert_count", "top_k", "random_weights", "probe", "dataset", "metric", "layer", "relative_depth",
                "first", "second", "n_pairs_first", "n_pairs_second", "n_contexts", "mean_first", "ci_lower_first", "ci_upper_first", "mean_second", "ci_lower_second", "ci_upper_second",
                "difference", "ci_lower", "ci_upper", isSubstitution ? "rank_biserial_paired" : "rank_biserial", isSubstitution ? "cohens_dz" : "cohens_d",
                isSubstitution ? "p_signed_rank_contexts" : "p_mann_whitney", "p_holm", "correction");
            foreach (var run in result.Runs)
            {
                foreach (var layer in run.ByLayer.Append(run.LayerMean))
                {
                    csv.WriteRow(run.Label, Path.GetFileName(Path.TrimEndingDirectorySeparator(run.Run.Folder)), run.Run.Architecture, run.Run.ExpertCount, run.Run.TopK,
                        run.Run.RandomWeights, ProbeSettings.KindName(result.Kind), run.Run.Dataset, result.Metric,
                        layer.Layer is { } l ? l.ToString(CultureInfo.InvariantCulture) : "mean", layer.RelativeDepth,
                        result.First, result.Second, layer.CountFirst, layer.CountSecond, layer.Contexts, Number(layer.First.Mean), Number(layer.First.Lower), Number(layer.First.Upper),
                        Number(layer.Second.Mean), Number(layer.Second.Lower), Number(layer.Second.Upper),
                        Number(layer.Difference), Number(layer.Lower), Number(layer.Upper), Number(layer.EffectSize), Number(layer.CohensD),
                        Number(layer.PValue), Number(layer.Corrected), layer.Layer is null ? "holm across runs" : "holm across layers");
                }
            }
        }

        return text.ToString();
    }

    /// <summary>The HTML report: banner and summary, the figure, condition means per layer, and the table.</summary>
    public static HtmlReport Report(ProbeComparisonResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var report = new HtmlReport($"Probe comparison across models: {ProbeSettings.KindName(result.Kind)}")
        {
            Subtitle = $"{result.Runs.Count} runs; {result.First} vs {result.Second}; metric {result.Metric}; statistics recomputed from each run's pairs.csv",
        };
        report.AddSummary([.. Summarize(result)]);
        var curves = report.AddSection("Per-layer difference by relative depth");
        curves.AddFigure(Figure(result), result.Kind == ProbeKind.Substitution
            ? "Difference = mean over contexts of (context's similar mean − its dissimilar mean); CI: cluster bootstrap by context; test: Wilcoxon signed-rank over contexts."
            : "Difference = mean of same-sense pairs − mean of different-sense pairs; CI: two-sample bootstrap; test: Mann-Whitney over pairs.");
        var means = report.AddSection("Condition means per layer");
        means.AddFigure(new LineChart
        {
            Title = $"Mean {result.Metric} per layer (95% bootstrap CI over pairs)",
            XLabel = "relative depth",
            YLabel = result.Metric,
            IntegerX = false,
            XMinimum = 0,
            XMaximum = 1,
            Series = [.. result.Runs.SelectMany(run => new[]
            {
                new LineSeries($"{run.Label}: {result.First}", [.. run.ByLayer.Select(l => l.RelativeDepth ?? 0)], [.. run.ByLayer.Select(l => l.First.Mean)],
                    [.. run.ByLayer.Select(l => l.First.Lower)], [.. run.ByLayer.Select(l => l.First.Upper)]),
                new LineSeries($"{run.Label}: {result.Second}", [.. run.ByLayer.Select(l => l.RelativeDepth ?? 0)], [.. run.ByLayer.Select(l => l.Second.Mean)],
                    [.. run.ByLayer.Select(l => l.Second.Lower)], [.. run.ByLayer.Select(l => l.Second.Upper)]),
            })],
        });
        var table = report.AddSection("Table");
        string[] columns = ["model", "layer", "depth", "n", $"mean {result.First}", $"mean {result.Second}", "diff", "95% CI", "r", "d", "p", "p Holm", "sig"];
        var rows = result.Runs.SelectMany(run => run.ByLayer.Append(run.LayerMean).Select(layer => (IReadOnlyList<string>)
        [
            run.Label, layer.Layer?.ToString(CultureInfo.InvariantCulture) ?? "mean", layer.RelativeDepth is { } depth ? F(depth) : "–", layer.Units,
            F(layer.First.Mean), F(layer.Second.Mean), F(layer.Difference), $"[{F(layer.Lower)}, {F(layer.Upper)}]", F(layer.EffectSize), F(layer.CohensD),
            P(layer.PValue), P(layer.Corrected), BarChart.SignificanceMark(layer.Corrected) ?? "–",
        ])).ToList();
        table.AddTable(new ReportTable(columns, rows, "p Holm: across layers within a run; for the mean rows, across the compared runs."));
        var runs = report.AddSection("Runs");
        runs.AddKeyValues(result.Runs.Select(run => new KeyValuePair<string, string>(run.Label,
            $"{run.Run.ModelFile} ({run.Run.Architecture}, {run.Run.ExpertCount} experts, top-{run.Run.TopK}, {run.Run.BlockCount?.ToString(CultureInfo.InvariantCulture) ?? "?"} blocks); " +
            $"data {run.Run.Dataset}; seed {run.Run.Seed}{(run.Run.RandomWeights ? "; random weights" : string.Empty)}")));
        return report;
    }

    private static ComparedRun CompareRun(ProbeRunData run, string first, string second, string label)
    {
        var rows = run.Pairs.Where(row => row.Condition == first || row.Condition == second).ToArray();
        if (!rows.Any(row => row.Condition == first) || !rows.Any(row => row.Condition == second))
        {
            throw new ExpertScopeException($"'{run.Folder}': pairs.csv has no {(rows.Any(row => row.Condition == first) ? second : first)} pairs, so {first} vs {second} cannot be compared");
        }

        var layers = run.Layers.Count > 0 ? run.Layers : [.. rows.Select(row => row.Layer).Distinct().Order()];
        var byLayer = layers.Select((layer, index) => Measure(run, rows.Where(row => row.Layer == layer).ToArray(), first, second, layer, index)).ToArray();
        var holm = HolmWithNaN([.. byLayer.Select(layer => layer.PValue)]);
        byLayer = [.. byLayer.Select((layer, i) => layer with { Corrected = holm[i] })];

        // Each pair's mean over layers (as the probe's layer-mean statistics).
        var layerMeans = rows.GroupBy(row => (row.PairId, row.Condition))
            .Select(group => group.First() with { Layer = -1, Value = group.Average(row => row.Value) })
            .ToArray();
        return new ComparedRun(run, label, byLayer, Measure(run, layerMeans, first, second, null, layers.Count));
    }

    private static ComparedLayer Measure(ProbeRunData run, ProbePairRow[] rows, string first, string second, int? layer, int index)
    {
        double[] x = [.. rows.Where(row => row.Condition == first).Select(row => row.Value)];
        double[] y = [.. rows.Where(row => row.Condition == second).Select(row => row.Value)];
        // The probe's own sub-seeds (main comparison = index 0, its conditions 0 and 1), so the intervals equal the run's
        // results.json wherever the same pairs enter.
        var firstSummary = ProbeAnalysis.Summarize(x, ProbeSeed(run.Seed, 1, 0, index), run.Resamples);
        var secondSummary = ProbeAnalysis.Summarize(y, ProbeSeed(run.Seed, 1, 1, index), run.Resamples);
        var depth = layer is { } l ? run.RelativeDepth(l) : (double?)null;
        if (run.Kind == ProbeKind.Substitution)
        {
            var firstByContext = rows.Where(row => row.Condition == first).GroupBy(row => row.ContextId!, StringComparer.Ordinal)
                .ToDictionary(group => group.Key, group => group.Select(row => row.Value).ToArray(), StringComparer.Ordinal);
            var secondByContext = rows.Where(row => row.Condition == second).GroupBy(row => row.ContextId!, StringComparer.Ordinal)
                .ToDictionary(group => group.Key, group => group.Select(row => row.Value).ToArray(), StringComparer.Ordinal);
            var contexts = firstByContext.Keys.Where(secondByContext.ContainsKey).Order(StringComparer.Ordinal).ToArray();
            if (contexts.Length == 0)
            {
                throw new ExpertScopeException($"'{run.Folder}': no context has both {first} and {second} pairs");
            }

            var paired = ContextPairedAnalysis.Compare(new ContextValues([.. contexts.Select(c => firstByContext[c])], [.. contexts.Select(c => secondByContext[c])]),
                ContextPairedAnalysis.SubSeed(run.Seed, 0, index), run.Resamples);
            return new ComparedLayer(layer, depth, firstSummary, secondSummary, x.Length, y.Length, paired.Contexts, paired.Difference, paired.Lower, paired.Upper,
                paired.RankBiserial, paired.CohensDz, paired.PValue, double.NaN);
        }

        var s = ProbeAnalysis.Compare(x, y, ProbeSeed(run.Seed, 2, 0, index), run.Resamples);
        return new ComparedLayer(layer, depth, firstSummary, secondSummary, s.CountFirst, s.CountSecond, null, s.Difference, s.Lower, s.Upper,
            s.RankBiserial, s.CohensD, s.MannWhitneyP, double.NaN);
    }

    // ProbeAnalysis's sub-seed formula.
    private static int ProbeSeed(int seed, int kind, int index, int layer) => unchecked((seed * 1_000_003) + (kind * 100_003) + (index * 1_009) + layer);

    private static string Label(ProbeRunData run, IReadOnlyList<ProbeRunData> all) =>
        all.Count(other => other.Model == run.Model) > 1 ? $"{run.Model} [{Path.GetFileName(Path.TrimEndingDirectorySeparator(run.Folder))}]" : run.Model;

    private static double[] HolmWithNaN(double[] pValues)
    {
        var result = Enumerable.Repeat(double.NaN, pValues.Length).ToArray();
        var finite = Enumerable.Range(0, pValues.Length).Where(i => double.IsFinite(pValues[i])).ToArray();
        if (finite.Length > 0)
        {
            var adjusted = MultipleComparisons.Adjust([.. finite.Select(i => pValues[i])], PAdjustMethod.Holm);
            for (var j = 0; j < finite.Length; j++)
            {
                result[finite[j]] = adjusted[j];
            }
        }

        return result;
    }

    private static double? Number(double value) => double.IsFinite(value) ? value : null;

    private static string F(double value) => double.IsFinite(value) ? value.ToString("0.0000", CultureInfo.InvariantCulture) : "–";

    private static string P(double value) => !double.IsFinite(value) ? "–"
        : value == 0 ? "< 1e-300"
        : value.ToString(value < 0.001 ? "0.00e+0" : "0.0000", CultureInfo.InvariantCulture);
}
