using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;

namespace ExpertScope.Experiments.Lens;

/// <summary>Results of <see cref="TokenIdAnalysis.Run"/>.</summary>
/// <param name="Layers">The per-layer comparison (consistency, H(E), H(E | T), I(E; T)).</param>
/// <param name="Profiles">Per (layer, token id) with at least the minimum occurrences.</param>
/// <param name="Tokens">Tokens routed.</param>
/// <param name="MinimumOccurrences">M.</param>
public sealed record TokenIdResult(IReadOnlyList<TokenRoutingLayerSummary> Layers, IReadOnlyList<TokenRoutingProfile> Profiles, long Tokens, int MinimumOccurrences);

/// <summary>
/// OpenMoE's context-independent specialisation: is the top-1 expert decided by the token id? The routing of every
/// input sequence is collected through the engine (resumable), then <see cref="TokenRouting"/> gives, per layer,
/// the consistency of each frequent token's routing and the split of H(E) into I(E; T) and H(E | T).
/// </summary>
public static class TokenIdAnalysis
{
    /// <summary>Collects the routing of <paramref name="groups"/> (from the engine, or from <c>source</c> when given) and analyses it.</summary>
    /// <exception cref="ExpertScopeException">No token id occurs <paramref name="minimumOccurrences"/> times.</exception>
    public static TokenIdResult Run(
        MoeModel model, RunFolder folder, IReadOnlyList<RoutingGroup> groups, int minimumOccurrences, IProgressSink progress, int? threadCount,
        CancellationToken cancellationToken = default, RoutingSources.IRoutingSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumOccurrences, 1);
        // The analysis needs expert ids and ranks only, so a server's ids-only routing gives the same numbers.
        var collected = source is null
            ? RoutingCollector.Collect(model, folder, groups, progress, threadCount, cancellationToken)
            : RoutingCollector.Collect(source, folder, groups, progress, cancellationToken);

        // Sequence ids restart in every group; make them distinct so occurrences stay apart.
        var records = new List<RoutingRecord>();
        int offset = 0;
        for (int g = 0; g < collected.Count; g++)
        {
            int shift = offset;
            records.AddRange(collected[g].Records.Select(r => r with { Sequence = r.Sequence + shift }));
            offset += groups[g].Sequences.Count;
        }

        var layers = TokenRouting.Summarize(records, minimumOccurrences);
        if (layers.Count == 0)
        {
            throw new ExpertScopeException(
                string.Create(CultureInfo.InvariantCulture, $"No token id occurs at least {minimumOccurrences} times in the input; give more text or a smaller --min-occurrences."));
        }

        long tokens = groups.Sum(g => g.Sequences.Sum(s => (long)s.Count));
        return new TokenIdResult(layers, TokenRouting.Profiles(records, minimumOccurrences), tokens, minimumOccurrences);
    }

    /// <summary>Writes <c>results.json</c>, <c>layers.csv</c>, <c>token_profiles.csv</c>, SVG figures and <c>report.html</c>.</summary>
    public static void WriteOutputs(TokenIdResult result, string folder, string modelName, MoeModel model)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(model);
        var f = CultureInfo.InvariantCulture;
        string Piece(int id) => model.Tokenizer.Decode([id]);
        using (var csv = CsvWriter.Create(Path.Combine(folder, "layers.csv")))
        {
            csv.WriteRow("layer", "token_types", "occurrences", "top1_consistency", "pooled_top1_consistency", "topk_overlap", "h_expert_bits", "h_expert_given_token_bits",
                "mi_bits", "context_share", "h_expert_mm_bits", "h_expert_given_token_mm_bits", "mi_mm_bits");
            foreach (var l in result.Layers)
            {
                csv.WriteRow(l.Layer, l.TokenTypes, l.Occurrences, l.Top1Consistency, l.PooledTop1Consistency, l.TopKOverlap, l.ExpertEntropy, l.ConditionalEntropy,
                    l.MutualInformation, l.ContextShare, l.ExpertEntropyMillerMadow, l.ConditionalEntropyMillerMadow, l.MutualInformationMillerMadow);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "token_profiles.csv")))
        {
            csv.WriteRow("layer", "token_id", "token", "occurrences", "modal_top1", "top1_consistency", "modal_topk", "topk_overlap");
            foreach (var p in result.Profiles)
            {
                csv.WriteRow(p.Layer, p.TokenId, Piece(p.TokenId), p.Occurrences, p.ModalTop1, p.Top1Consistency, string.Join(' ', p.ModalTopK), p.TopKOverlap);
            }
        }

        var report = new HtmlReport("Token id vs context in routing") { Subtitle = modelName, Generated = DateTimeOffset.UtcNow };
        report.AddSummary(
            string.Create(f, $"{result.Tokens} tokens routed; token ids with at least {result.MinimumOccurrences} occurrences are analysed."),
            "I(E; T) is the part of the top-1 expert's entropy the token id explains; H(E | T) is left to the context. Plug-in estimates are biased towards the token id when ids have few occurrences (Miller-Madow columns in layers.csv).");
        double[] x = [.. result.Layers.Select(l => (double)l.Layer)];
        var information = new LineChart
        {
            Title = "Entropy of the top-1 expert and what the token id explains", XLabel = "layer", YLabel = "bits",
            Series =
            [
                new LineSeries("H(E)", x, [.. result.Layers.Select(l => l.ExpertEntropy)]),
                new LineSeries("I(E; T)", x, [.. result.Layers.Select(l => l.MutualInformation)]),
                new LineSeries("H(E | T)", x, [.. result.Layers.Select(l => l.ConditionalEntropy)]),
            ],
        };
        var consistency = new LineChart
        {
            Title = "Routing consistency of frequent tokens", XLabel = "layer", YLabel = "share", YMinimum = 0, YMaximum = 1,
            Series =
            [
                new LineSeries("top-1 = modal top-1 (mean over ids)", x, [.. result.Layers.Select(l => l.Top1Consistency)]),
                new LineSeries("top-k overlap with modal set", x, [.. result.Layers.Select(l => l.TopKOverlap)]),
            ],
        };
        information.SaveSvg(Path.Combine(folder, "token_id_information.svg"));
        consistency.SaveSvg(Path.Combine(folder, "token_id_consistency.svg"));
        var section = report.AddSection("Per layer");
        section.AddFigure(information).AddFigure(consistency);
        section.AddTable(new ReportTable(
            ["layer", "ids", "occurrences", "top-1 consistency", "top-k overlap", "H(E)", "I(E; T)", "H(E | T)", "context share"],
            [.. result.Layers.Select(l => (IReadOnlyList<string>)[
                l.Layer.ToString(f), l.TokenTypes.ToString(f), l.Occurrences.ToString(f), ReportTable.Number(l.Top1Consistency), ReportTable.Number(l.TopKOverlap),
                ReportTable.Number(l.ExpertEntropy), ReportTable.Number(l.MutualInformation), ReportTable.Number(l.ConditionalEntropy), ReportTable.Number(l.ContextShare)])]));
        report.Save(Path.Combine(folder, "report.html"));
        JsonOutput.WriteFile(Path.Combine(folder, "results.json"), new
        {
            analysis = "token-id",
            model = modelName,
            tokens = result.Tokens,
            min_occurrences = result.MinimumOccurrences,
            layers = result.Layers.Select(l => new
            {
                layer = l.Layer, token_types = l.TokenTypes, occurrences = l.Occurrences, top1_consistency = l.Top1Consistency,
                pooled_top1_consistency = l.PooledTop1Consistency, topk_overlap = l.TopKOverlap, h_expert_bits = l.ExpertEntropy,
                h_expert_given_token_bits = l.ConditionalEntropy, mi_bits = l.MutualInformation, context_share = l.ContextShare,
                mi_miller_madow_bits = l.MutualInformationMillerMadow,
            }),
        });
    }
}
