using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Evaluation;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Lens;

/// <summary>Settings of <see cref="DomainPerplexityTable.Run"/>.</summary>
public sealed record DomainPerplexitySettings
{
    /// <summary>Window length of the strided perplexity (null = the model's context).</summary>
    public int? Context { get; init; }

    /// <summary>Window step (null = half the window).</summary>
    public int? Stride { get; init; }

    /// <summary>How the single kept expert is weighted (default weight 1, MoE Lens).</summary>
    public SingleExpertWeight Weight { get; init; } = SingleExpertWeight.Renormalized;

    /// <summary>Threads of the forward pass.</summary>
    public int? ThreadCount { get; init; }
}

/// <summary>One domain's corpus-level perplexity under one routing setting.</summary>
/// <param name="Domain">The domain.</param>
/// <param name="Setting"><c>all-experts</c>, <c>single-expert-all-layers</c>, <c>single-expert-one-layer</c> or <c>disable-top-r</c>.</param>
/// <param name="Layer">For <c>single-expert-one-layer</c>, the block; otherwise null.</param>
/// <param name="DisabledTop">For <c>disable-top-r</c>, r; otherwise null.</param>
/// <param name="Perplexity">exp(NLL / scored tokens).</param>
/// <param name="NegativeLogLikelihood">Σ −ln p over the scored tokens (nats).</param>
/// <param name="ScoredTokens">Tokens scored.</param>
/// <param name="RelativeToFull">Perplexity / the all-experts perplexity − 1 (the paper's "+5%").</param>
public sealed record DomainPerplexityRow(
    string Domain, string Setting, int? Layer, int? DisabledTop, double Perplexity, double NegativeLogLikelihood, long ScoredTokens, double RelativeToFull)
{
    /// <summary>Mean loss (NLL per scored token, nats).</summary>
    public double Loss => NegativeLogLikelihood / ScoredTokens;
}

/// <summary>
/// MoE Lens's perplexity table (arXiv 2603.05806, §4: "perplexity increasing by only 5% when using a single expert"):
/// each domain's whole corpus (its documents joined, BOS once) scored by strided perplexity
/// (<see cref="Perplexity.Evaluate"/>) with all experts, with the single top expert in every layer, and with the single
/// top expert in one layer at a time; and DeepSeekMoE's redundancy curve (Dai et al. 2024, arXiv 2401.06066: the Pile
/// loss as the top routed experts are disabled): the loss with the r top-ranked experts of every token masked
/// (<see cref="DisableTopRankedExperts"/>, the next best take their slots), r = 0…k.
/// </summary>
/// <remarks>Each (domain, setting) is a unit of the run folder's journal (its NLL and token count), so a run resumes where it stopped.</remarks>
public static class DomainPerplexityTable
{
    /// <summary>Scores every domain under every setting.</summary>
    /// <exception cref="ExpertScopeException">The model has no MoE blocks, or a corpus is too short.</exception>
    public static IReadOnlyList<DomainPerplexityRow> Run(
        MoeModel model, IReadOnlyList<(string Domain, IReadOnlyList<int> Tokens)> corpora, DomainPerplexitySettings settings,
        RunFolder folder, IProgressSink progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(corpora);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(progress);
        var moeLayers = model.Blocks.Where(b => b.Moe is not null).Select(b => b.Layer).Order().ToArray();
        if (moeLayers.Length == 0)
        {
            throw new ExpertScopeException($"The model '{model.FilePath}' has no MoE blocks.");
        }

        int topK = model.Blocks.First(b => b.Moe is not null).Moe!.Router.Config.TopK;
        int context = settings.Context ?? model.Hyperparameters.ContextLength;
        int stride = settings.Stride ?? Math.Max(1, context / 2);
        var weight = SingleExpertAnalysis.TopExpertWeightOf(settings.Weight);
        var plan = new List<(string Setting, int? Layer, int? R, RouterIntervention[] Interventions)>
        {
            ("all-experts", null, null, []),
            ("single-expert-all-layers", null, null, [new KeepOnlyTopExpert(LayerSelector.All) { Weight = weight }]),
        };
        plan.AddRange(moeLayers.Select(l => ("single-expert-one-layer", (int?)l, (int?)null, new RouterIntervention[] { new KeepOnlyTopExpert(LayerSelector.Only(l)) { Weight = weight } })));
        plan.AddRange(Enumerable.Range(1, topK).Select(r => ("disable-top-r", (int?)null, (int?)r, new RouterIntervention[] { new DisableTopRankedExperts(LayerSelector.All, r) })));

        var rows = new List<DomainPerplexityRow>();
        string Unit(string domain, string setting, int? layer, int? r) =>
            string.Create(CultureInfo.InvariantCulture, $"ppl/{domain}/{setting}/{layer?.ToString(CultureInfo.InvariantCulture) ?? "-"}/{r?.ToString(CultureInfo.InvariantCulture) ?? "-"}");
        int total = corpora.Count * plan.Count;
        int already = corpora.Sum(c => plan.Count(p => folder.IsFinished(Unit(c.Domain, p.Setting, p.Layer, p.R))));
        using var task = progress.StartTask("perplexity table", total, already, "runs");
        foreach (var (domain, tokens) in corpora)
        {
            double full = double.NaN;
            foreach (var (setting, layer, r, interventions) in plan)
            {
                string unit = Unit(domain, setting, layer, r);
                var saved = folder.Journal.Records.LastOrDefault(x => x.Unit == unit);
                double nll;
                long scored;
                if (saved.Unit is not null && saved.Data is not null)
                {
                    var parts = saved.Data.Split(' ');
                    nll = double.Parse(parts[0], CultureInfo.InvariantCulture);
                    scored = long.Parse(parts[1], CultureInfo.InvariantCulture);
                }
                else
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var run = new RunOptions { Interventions = interventions, ThreadCount = settings.ThreadCount };
                    int window = Math.Min(context, Math.Max(2, tokens.Count));
                    var result = Perplexity.Evaluate(model, tokens, window, tokens.Count > window ? Math.Min(stride, window) : null, run, "domain " + domain, cancellationToken);
                    (nll, scored) = (result.NegativeLogLikelihood, result.ScoredTokens);
                    folder.MarkFinished(unit, string.Create(CultureInfo.InvariantCulture, $"{nll:R} {scored}"));
                    task.Advance();
                }

                double perplexity = Math.Exp(nll / scored);
                if (setting == "all-experts")
                {
                    full = perplexity;
                }

                rows.Add(new DomainPerplexityRow(domain, setting, layer, r ?? (setting == "all-experts" ? 0 : null), perplexity, nll, scored, perplexity / full - 1));
            }
        }

        task.Complete();
        return rows;
    }

    /// <summary>Writes <c>perplexity_table.csv</c>, <c>redundancy.csv</c>, <c>redundancy.svg</c>, <c>results.json</c> and <c>report.html</c>.</summary>
    public static void WriteOutputs(IReadOnlyList<DomainPerplexityRow> rows, string folder, string modelName, DomainPerplexitySettings settings, int context, int stride, bool randomWeights = false)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(settings);
        var f = CultureInfo.InvariantCulture;
        var table = rows.Where(r => r.Setting != "disable-top-r").ToList();
        var curve = rows.Where(r => r.DisabledTop is not null).OrderBy(r => r.Domain, StringComparer.Ordinal).ThenBy(r => r.DisabledTop).ToList();
        using (var csv = CsvWriter.Create(Path.Combine(folder, "perplexity_table.csv")))
        {
            csv.WriteRow("domain", "setting", "layer", "perplexity", "relative_to_full", "negative_log_likelihood", "scored_tokens");
            foreach (var r in table)
            {
                csv.WriteRow(r.Domain, r.Setting, r.Layer, r.Perplexity, r.RelativeToFull, r.NegativeLogLikelihood, r.ScoredTokens);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "redundancy.csv")))
        {
            csv.WriteRow("domain", "disabled_top_r", "loss_nats", "perplexity", "scored_tokens");
            foreach (var r in curve)
            {
                csv.WriteRow(r.Domain, r.DisabledTop, r.Loss, r.Perplexity, r.ScoredTokens);
            }
        }

        var domains = rows.Select(r => r.Domain).Distinct().ToList();
        var chart = new LineChart
        {
            Title = "Loss with the top-r routed experts of every token disabled (DeepSeekMoE)", XLabel = "r (top experts disabled)", YLabel = "loss (nats per token)",
            Series = [.. domains.Select(d =>
            {
                var points = curve.Where(r => r.Domain == d).ToList();
                return new LineSeries(d, [.. points.Select(p => (double)p.DisabledTop!.Value)], [.. points.Select(p => p.Loss)]);
            })],
        };
        chart.SaveSvg(Path.Combine(folder, "redundancy.svg"));
        string weight = SingleExpertAnalysis.WeightName(settings.Weight);
        var report = new HtmlReport("Perplexity by domain: all experts vs one expert") { Subtitle = modelName, Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(f, $"Each domain's whole corpus is scored by strided perplexity (window {context}, stride {stride}); the single expert is the top-ranked one at weight '{weight}'."),
            "Redundancy (DeepSeekMoE): per token, the r top-ranked routed experts are masked and the next best take their slots.");
        report.AddSection("Perplexity table").AddTable(new ReportTable(
            ["domain", "setting", "layer", "perplexity", "vs all experts"],
            [.. table.Select(r => (IReadOnlyList<string>)[r.Domain, r.Setting, r.Layer?.ToString(f) ?? "", ReportTable.Number(r.Perplexity, 6), (r.RelativeToFull * 100).ToString("+0.0;-0.0;0.0", f) + "%"])]));
        report.AddSection("Redundancy curve").AddFigure(chart);
        report.Save(Path.Combine(folder, "report.html"));
        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "results.json"), new
        {
            analysis = "perplexity-table",
            model = modelName,
            context,
            stride,
            weight,
            rows = rows.Select(r => new
            {
                domain = r.Domain, setting = r.Setting, layer = r.Layer, disabled_top_r = r.DisabledTop, perplexity = r.Perplexity, relative_to_full = r.RelativeToFull,
                negative_log_likelihood = r.NegativeLogLikelihood, scored_tokens = r.ScoredTokens,
            }),
        }, randomWeights);
    }
}
