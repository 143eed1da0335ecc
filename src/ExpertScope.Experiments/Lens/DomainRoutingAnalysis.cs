using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;

namespace ExpertScope.Experiments.Lens;

/// <summary>Settings of a domain routing study.</summary>
public sealed record DomainRoutingSettings
{
    /// <summary>Tokens drawn per domain (the model's tokens, BOS not counted).</summary>
    public long TokensPerDomain { get; init; } = 20_000;

    /// <summary>Seed of the document shuffle.</summary>
    public int Seed { get; init; }

    /// <summary>Longest chunk in tokens (null = the model's context minus the BOS).</summary>
    public int? MaxChunkTokens { get; init; }

    /// <summary>Rows of the top domain-specific experts table per domain.</summary>
    public int TopSpecificExperts { get; init; } = 10;

    /// <summary>Threads of the forward pass.</summary>
    public int? ThreadCount { get; init; }

    /// <summary>Count BOS, EOS and control tokens too (default false: they are left out of every statistic, see <see cref="SpecialTokens"/>).</summary>
    public bool IncludeSpecialTokens { get; init; }
}

/// <summary>What <see cref="DomainRoutingAnalysis.Run"/> found.</summary>
/// <param name="Samples">The sample drawn per domain (check <see cref="CorpusSample.BudgetReached"/>).</param>
/// <param name="Tables">Expert usage per domain.</param>
/// <param name="Summaries">Concentration per domain and layer, on all k selections, top-1 selections and routing weight.</param>
/// <param name="Divergences">Jensen-Shannon divergence between domains per layer (count-based).</param>
/// <param name="Specificity">Every (domain, layer, expert) test, unstratified (chi-squared), ranked within each domain.</param>
/// <param name="StratifiedSpecificity">The same tests stratified by token id (Cochran–Mantel–Haenszel), ranked within each domain.</param>
/// <param name="TokenTables">Routing per domain, layer and token id (the strata, and what <c>token_*.csv</c> hold).</param>
/// <param name="ExcludedTokenIds">Token ids left out of every statistic (special tokens unless included).</param>
/// <param name="RoutingSource">Where the routing came from (<c>engine</c>, <c>vllm</c>, <c>sglang</c>).</param>
/// <param name="HasWeights">False for an ids-only source: the weight and top-1 measures are skipped (no rows), the weight columns say NaN.</param>
public sealed record DomainRoutingResult(
    IReadOnlyList<CorpusSample> Samples,
    IReadOnlyList<ExpertUsageTable> Tables,
    IReadOnlyList<ExpertUsageSummary> Summaries,
    IReadOnlyList<DomainDivergenceMatrix> Divergences,
    IReadOnlyList<ExpertSpecificity> Specificity,
    IReadOnlyList<StratifiedSpecificity> StratifiedSpecificity,
    IReadOnlyList<TokenUsageTable> TokenTables,
    IReadOnlySet<int> ExcludedTokenIds,
    string RoutingSource = "engine",
    bool HasWeights = true);

/// <summary>
/// Expert usage by text domain (MoE Lens §3, OpenMoE's domain study): equal token budgets per domain, routing through
/// the engine without the output head, then the usage, concentration, divergence and specificity mathematics of
/// <see cref="Analyses"/>.
/// </summary>
public static class DomainRoutingAnalysis
{
    /// <summary>Samples the domains, collects their routing (resumable in <paramref name="folder"/>) and analyses it.</summary>
    /// <param name="model">The model: its tokenizer, N and special tokens always; its forward pass unless <paramref name="source"/> is given.</param>
    /// <param name="folder">The run folder.</param>
    /// <param name="domains">The domains' documents.</param>
    /// <param name="settings">Budget, seed and table sizes.</param>
    /// <param name="progress">Progress, counted in tokens.</param>
    /// <param name="cancellationToken">Stops between sequences.</param>
    /// <param name="source">Routing from a server (expert ids only) instead of the engine: every statistic on the selected sets is computed, the weight and top-1 measures are skipped.</param>
    /// <exception cref="ExpertScopeException">A domain yields no tokens, or the model has no MoE blocks.</exception>
    public static DomainRoutingResult Run(
        MoeModel model, RunFolder folder, IReadOnlyList<KeyValuePair<string, IReadOnlyList<CorpusDocument>>> domains,
        DomainRoutingSettings settings, IProgressSink progress, CancellationToken cancellationToken = default,
        RoutingSources.IRoutingSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(domains);
        ArgumentNullException.ThrowIfNull(settings);
        int expertCount = model.Blocks.Select(b => b.Moe?.Router.Config.ExpertCount ?? 0).Max();
        if (expertCount == 0)
        {
            throw new ExpertScopeException($"The model '{model.FilePath}' has no MoE blocks.");
        }

        var tokenizer = model.Tokenizer;
        int maxChunk = settings.MaxChunkTokens ?? (model.Hyperparameters.ContextLength - (tokenizer.AddBos ? 1 : 0));
        var samples = TokenBudgetSampler.SampleDomains(domains, settings.TokensPerDomain, text => tokenizer.Encode(text, addSpecial: false).Count, maxChunk, settings.Seed);
        var groups = new List<RoutingGroup>();
        foreach (var sample in samples)
        {
            if (sample.TokenCount == 0)
            {
                throw new ExpertScopeException($"The domain '{sample.Name}' has no text.");
            }

            groups.Add(new RoutingGroup(sample.Name, [.. sample.Chunks.Select(chunk => tokenizer.Encode(chunk.Text))]));
        }

        var excluded = settings.IncludeSpecialTokens ? new HashSet<int>() : SpecialTokens.Ids(model);
        var tables = new List<ExpertUsageTable>();
        var tokenTables = new List<TokenUsageTable>();
        void Tally(string name, IReadOnlyList<RoutingRecord> records)
        {
            var kept = records.Where(r => !excluded.Contains(r.TokenId)).ToList();
            tables.Add(ExpertUsage.Tally(name, kept, expertCount));
            tokenTables.Add(TokenUsageTable.Tally(name, kept, expertCount));
        }

        if (source is null)
        {
            RoutingCollector.Collect(model, folder, groups, progress, settings.ThreadCount, Tally, cancellationToken);
        }
        else
        {
            foreach (var (name, records) in RoutingCollector.Collect(source, folder, groups, progress, cancellationToken))
            {
                Tally(name, records);
            }
        }

        // Ids only (a server): the weight measure has no data and is left out, never estimated. Top-1 is left out too:
        // it needs rank 0 to be the highest-scoring expert, and vLLM/SGLang return ids in their top-k kernel's order,
        // which is not guaranteed to be by score (docs/scale.md).
        bool hasWeights = tables.All(t => t.HasWeights);
        UsageMeasure[] measures = hasWeights ? [UsageMeasure.Count, UsageMeasure.TopOne, UsageMeasure.Weight] : [UsageMeasure.Count];
        var summaries = tables.SelectMany(t => measures.SelectMany(m => ExpertUsage.Summarize(t, m))).ToList();
        var layers = tables.Select(t => (IEnumerable<int>)t.Layers).Aggregate((a, b) => a.Intersect(b)).Order().ToList();
        var divergences = tables.Count >= 2 ? layers.Select(l => ExpertUsage.DomainDivergence(tables, l, UsageMeasure.Count)).ToList() : [];
        var specificity = tables.Count >= 2 ? DomainSpecificity.Rank(tables) : [];
        var stratified = tokenTables.Count >= 2 ? TokenStratifiedSpecificity.Rank(tokenTables) : [];
        return new DomainRoutingResult(samples, tables, summaries, divergences, specificity, stratified, tokenTables, excluded, source?.Kind ?? "engine", hasWeights);
    }

    /// <summary>Writes <c>results.json</c>, the CSV tables, the SVG figures and <c>report.html</c> into <paramref name="folder"/>.</summary>
    public static void WriteOutputs(DomainRoutingResult result, string folder, string modelName, DomainRoutingSettings settings, bool randomWeights = false)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(settings);
        var f = CultureInfo.InvariantCulture;
        var layers = result.Tables.Select(t => (IEnumerable<int>)t.Layers).Aggregate((a, b) => a.Intersect(b)).Order().ToList();
        int experts = result.Tables[0].ExpertCount;

        using (var csv = CsvWriter.Create(Path.Combine(folder, "usage.csv")))
        {
            csv.WriteRow("domain", "layer", "expert", "tokens", "selected", "weight_sum", "count_share", "weight_share");
            foreach (var table in result.Tables)
            {
                foreach (int layer in table.Layers)
                {
                    var counts = table.Counts(layer);
                    var cs = table.Shares(layer, UsageMeasure.Count);
                    // Ids only: the weight columns say NaN (not available), as results.json and the report state.
                    var weights = table.HasWeights ? table.Weights(layer) : null;
                    var ws = table.HasWeights ? table.Shares(layer, UsageMeasure.Weight) : null;
                    for (int e = 0; e < experts; e++)
                    {
                        csv.WriteRow(table.Domain, layer, e, table.Tokens(layer), counts[e], weights?[e] ?? double.NaN, cs[e], ws?[e] ?? double.NaN);
                    }
                }
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "concentration.csv")))
        {
            csv.WriteRow("domain", "layer", "measure", "tokens", "experts_50", "experts_80", "experts_90", "entropy_bits", "normalized_entropy", "gini", "top_expert", "top_expert_share");
            foreach (var s in result.Summaries)
            {
                csv.WriteRow(s.Domain, s.Layer, MeasureName(s.Measure), s.Tokens, s.ExpertsFor50, s.ExpertsFor80, s.ExpertsFor90, s.EntropyBits, s.NormalizedEntropy, s.Gini, s.TopExpert, s.TopExpertShare);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "js_divergence.csv")))
        {
            csv.WriteRow("layer", "domain_a", "domain_b", "js_bits");
            foreach (var m in result.Divergences)
            {
                for (int i = 0; i < m.Domains.Count; i++)
                {
                    for (int j = 0; j < m.Domains.Count; j++)
                    {
                        csv.WriteRow(m.Layer, m.Domains[i], m.Domains[j], m.Bits[i, j]);
                    }
                }
            }
        }

        var top = result.Tables.SelectMany(t => DomainSpecificity.TopForDomain(result.Specificity, t.Domain, settings.TopSpecificExperts)).ToList();
        using (var csv = CsvWriter.Create(Path.Combine(folder, "specific_experts.csv")))
        {
            csv.WriteRow("domain", "rank", "layer", "expert", "domain_rate", "other_rate", "log2_ratio", "chi_squared", "p_value", "q_value");
            foreach (var s in top)
            {
                csv.WriteRow(s.Domain, s.Rank, s.Layer, s.Expert, s.DomainRate, s.OtherRate, s.LogRatio, s.ChiSquared, s.PValue, s.QValue);
            }
        }

        var stratifiedTop = result.Tables.SelectMany(t => TokenStratifiedSpecificity.TopForDomain(result.StratifiedSpecificity, t.Domain, settings.TopSpecificExperts)).ToList();
        using (var csv = CsvWriter.Create(Path.Combine(folder, "specific_experts_stratified.csv")))
        {
            csv.WriteRow("domain", "rank", "layer", "expert", "domain_rate", "other_rate", "informative_strata", "observed_minus_expected", "mh_odds_ratio", "cmh_chi_squared", "p_value", "q_value");
            foreach (var s in stratifiedTop)
            {
                csv.WriteRow(s.Domain, s.Rank, s.Layer, s.Expert, Rate(s.DomainSelected, s.DomainTokens), Rate(s.OtherSelected, s.OtherTokens), s.InformativeStrata, s.ObservedMinusExpected, s.CommonOddsRatio, s.ChiSquared, s.PValue, s.QValue);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "stratified_tests.csv")))
        {
            csv.WriteRow("domain", "layer", "expert", "domain_selected", "domain_tokens", "other_selected", "other_tokens", "informative_strata", "observed_minus_expected", "mh_odds_ratio", "cmh_chi_squared", "p_value", "q_value");
            foreach (var s in result.StratifiedSpecificity)
            {
                csv.WriteRow(s.Domain, s.Layer, s.Expert, s.DomainSelected, s.DomainTokens, s.OtherSelected, s.OtherTokens, s.InformativeStrata, s.ObservedMinusExpected, s.CommonOddsRatio, s.ChiSquared, s.PValue, s.QValue);
            }
        }

        // The strata, so that R's mantelhaen.test can recompute any stratified row.
        using (var counts = CsvWriter.Create(Path.Combine(folder, "token_counts.csv")))
        using (var selections = CsvWriter.Create(Path.Combine(folder, "token_selections.csv")))
        {
            counts.WriteRow("domain", "layer", "token_id", "tokens");
            selections.WriteRow("domain", "layer", "token_id", "expert", "selected");
            foreach (var table in result.TokenTables)
            {
                foreach (var (layer, byToken) in table.Layers)
                {
                    foreach (var (tokenId, entry) in byToken.OrderBy(p => p.Key))
                    {
                        counts.WriteRow(table.Domain, layer, tokenId, entry.Tokens);
                        for (int e = 0; e < entry.Selected.Length; e++)
                        {
                            if (entry.Selected[e] > 0)
                            {
                                selections.WriteRow(table.Domain, layer, tokenId, e, entry.Selected[e]);
                            }
                        }
                    }
                }
            }
        }

        var report = new HtmlReport("Expert usage by domain") { Subtitle = modelName, Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(f, $"{result.Tables.Count} domains, {settings.TokensPerDomain} tokens each (seed {settings.Seed}), {layers.Count} MoE layers of {experts} experts."),
            "Usage is the share of routing decisions (any of the k ranks) each expert receives; coverage counts the fewest experts taking 50/80/90% of them, on all k selections (where at least ⌈k/2⌉ experts always cover half), on top-1 selections and on routing weight.",
            result.ExcludedTokenIds.Count == 0
                ? "Special tokens (BOS, EOS, control) are counted."
                : string.Create(f, $"{result.ExcludedTokenIds.Count} special token ids (BOS, EOS, control tokens) are left out of every statistic."),
            result.HasWeights
                ? "Routing source: " + result.RoutingSource + "."
                : WeightsUnavailable(result.RoutingSource));
        var figures = report.AddSection("Layer × expert usage per domain");
        // One colour scale for every domain, so the same colour means the same share in each heatmap.
        double sharedMaximum = result.Tables.SelectMany(t => layers.SelectMany(l => t.Shares(l, UsageMeasure.Count))).DefaultIfEmpty(0).Max();
        figures.AddParagraph(string.Create(f, $"All heatmaps share one colour scale, from 0 to {ReportTable.Number(sharedMaximum, 3)} (the largest share in any domain)."));
        foreach (var table in result.Tables)
        {
            var values = new double[layers.Count, experts];
            for (int i = 0; i < layers.Count; i++)
            {
                var shares = table.Shares(layers[i], UsageMeasure.Count);
                for (int e = 0; e < experts; e++)
                {
                    values[i, e] = shares[e];
                }
            }

            var heatmap = new Heatmap
            {
                Title = "Expert usage: " + table.Domain, Values = values, RowLabels = [.. layers.Select(l => l.ToString(f))],
                XLabel = "expert", YLabel = "layer", ValueLabel = "share of decisions", Minimum = 0, Maximum = sharedMaximum > 0 ? sharedMaximum : null,
            };
            heatmap.SaveSvg(Path.Combine(folder, "usage_" + SafeName(table.Domain) + ".svg"));
            figures.AddFigure(heatmap);
        }

        var coverage = report.AddSection("Coverage curves");
        foreach (int layer in new[] { layers[0], layers[layers.Count / 2], layers[^1] }.Distinct())
        {
            var chart = LineChart.Coverage(string.Create(f, $"Coverage, layer {layer}"), result.Tables.Select(t => (t.Domain, (IReadOnlyList<double>)t.Counts(layer))));
            chart.SaveSvg(Path.Combine(folder, string.Create(f, $"coverage_layer{layer}.svg")));
            coverage.AddFigure(chart);
        }

        coverage.AddTable(new ReportTable(
            ["domain", "layer", "measure", "50%", "80%", "90%", "entropy (bits)", "Gini"],
            [.. result.Summaries.Select(s => (IReadOnlyList<string>)[s.Domain, s.Layer.ToString(f), MeasureName(s.Measure), s.ExpertsFor50.ToString(f), s.ExpertsFor80.ToString(f), s.ExpertsFor90.ToString(f), ReportTable.Number(s.EntropyBits), ReportTable.Number(s.Gini)])],
            "Fewest experts covering 50/80/90% of the routing: all k selections, top-1 selections, routing weight"));

        if (result.Divergences.Count > 0)
        {
            var domains = result.Divergences[0].Domains;
            var mean = new double[domains.Count, domains.Count];
            foreach (var m in result.Divergences)
            {
                for (int i = 0; i < domains.Count; i++)
                {
                    for (int j = 0; j < domains.Count; j++)
                    {
                        mean[i, j] += m.Bits[i, j] / result.Divergences.Count;
                    }
                }
            }

            var js = new Heatmap
            {
                Title = "Jensen-Shannon divergence between domains (mean over layers)", Values = mean, RowLabels = domains, ColumnLabels = domains,
                ValueLabel = "bits", Minimum = 0, ShowValues = domains.Count <= 10,
            };
            js.SaveSvg(Path.Combine(folder, "js_divergence.svg"));
            report.AddSection("Divergence between domains").AddFigure(js);
            report.AddSection("Most domain-specific experts").AddTable(new ReportTable(
                ["domain", "rank", "layer", "expert", "domain rate", "other rate", "log₂ ratio", "q (BH)"],
                [.. top.Select(s => (IReadOnlyList<string>)[s.Domain, s.Rank.ToString(f), s.Layer.ToString(f), s.Expert.ToString(f), ReportTable.Number(s.DomainRate), ReportTable.Number(s.OtherRate), ReportTable.Number(s.LogRatio), ReportTable.Number(s.QValue)])],
                "Over-used experts with q < 0.05, unstratified (chi-squared, Benjamini-Hochberg over every test): token frequency alone can produce these"));
            report.AddSection("Domain-specific experts within token ids").AddTable(new ReportTable(
                ["domain", "rank", "layer", "expert", "domain rate", "other rate", "strata", "MH odds ratio", "q (BH)"],
                [.. stratifiedTop.Select(s => (IReadOnlyList<string>)[s.Domain, s.Rank.ToString(f), s.Layer.ToString(f), s.Expert.ToString(f), ReportTable.Number(Rate(s.DomainSelected, s.DomainTokens)), ReportTable.Number(Rate(s.OtherSelected, s.OtherTokens)), s.InformativeStrata.ToString(f), ReportTable.Number(s.CommonOddsRatio), ReportTable.Number(s.QValue)])],
                "Over-used experts with q < 0.05 stratified by token id (Cochran–Mantel–Haenszel, Benjamini-Hochberg): the domain routes to them more than its token ids predict"));
        }

        report.Save(Path.Combine(folder, "report.html"));
        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "results.json"), new
        {
            analysis = "domains",
            model = modelName,
            tokens_per_domain = settings.TokensPerDomain,
            seed = settings.Seed,
            routing_source = result.RoutingSource,
            unavailable = result.HasWeights ? Array.Empty<string>() : new[] { "weight measure (concentration.csv rows, usage.csv weight_sum and weight_share): expert ids only", "top1 measure (concentration.csv rows): the server's id order is not guaranteed to be by score" },
            domains = result.Samples.Select(s => new { name = s.Name, tokens = s.TokenCount, chunks = s.Chunks.Count, budget_reached = s.BudgetReached }),
            concentration = result.Summaries.Select(s => new
            {
                domain = s.Domain, layer = s.Layer, measure = MeasureName(s.Measure), tokens = s.Tokens, experts_50 = s.ExpertsFor50, experts_80 = s.ExpertsFor80, experts_90 = s.ExpertsFor90,
                entropy_bits = s.EntropyBits, normalized_entropy = s.NormalizedEntropy, gini = s.Gini, top_expert = s.TopExpert, top_expert_share = s.TopExpertShare,
            }),
            js_divergence = result.Divergences.Select(m => new
            {
                layer = m.Layer, domains = m.Domains,
                bits = Enumerable.Range(0, m.Domains.Count).Select(i => Enumerable.Range(0, m.Domains.Count).Select(j => m.Bits[i, j]).ToArray()),
            }),
            special_tokens_excluded = result.ExcludedTokenIds.Count > 0,
            specific_experts = top.Select(s => new
            {
                domain = s.Domain, rank = s.Rank, layer = s.Layer, expert = s.Expert, domain_rate = s.DomainRate, other_rate = s.OtherRate,
                log2_ratio = s.LogRatio, chi_squared = s.ChiSquared, p_value = s.PValue, q_value = s.QValue,
            }),
            specific_experts_stratified = stratifiedTop.Select(s => new
            {
                domain = s.Domain, rank = s.Rank, layer = s.Layer, expert = s.Expert, informative_strata = s.InformativeStrata,
                observed_minus_expected = s.ObservedMinusExpected, mh_odds_ratio = s.CommonOddsRatio, cmh_chi_squared = s.ChiSquared, p_value = s.PValue, q_value = s.QValue,
            }),
        }, randomWeights);
    }

    /// <summary>The line every output of an ids-only run carries.</summary>
    public static string WeightsUnavailable(string routingSource) =>
        $"Routing source '{routingSource}' gives expert ids only: the weight measure (weight coverage and entropy, usage.csv weight_sum and weight_share) is not available and is skipped (NaN in usage.csv), and so is the top-1 measure (a server's id order is not guaranteed to be by score); every statistic on the selected sets (all-k usage, coverage, JS divergence, specificity tests) is computed.";

    private static string MeasureName(UsageMeasure measure) => measure switch
    {
        UsageMeasure.Count => "all_k",
        UsageMeasure.TopOne => "top1",
        _ => "weight",
    };

    private static double Rate(long selected, long tokens) => tokens > 0 ? (double)selected / tokens : 0;

    internal static string SafeName(string name) => new([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_')]);
}
