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
/// <param name="ByPosition">Consistency per layer and position bucket (OpenMoE's drop towards the end).</param>
/// <param name="ExcludedTokenIds">Token ids left out (BOS and other special tokens unless included).</param>
public sealed record TokenIdResult(
    IReadOnlyList<TokenRoutingLayerSummary> Layers, IReadOnlyList<TokenRoutingProfile> Profiles, long Tokens, int MinimumOccurrences,
    IReadOnlyList<PositionConsistency> ByPosition, IReadOnlySet<int> ExcludedTokenIds);

/// <summary>
/// OpenMoE's context-independent specialisation: is the top-1 expert decided by the token id? The routing of every
/// input sequence is collected through the engine (resumable), then <see cref="TokenRouting"/> gives, per layer,
/// the consistency of each frequent token's routing and the split of H(E) into I(E; T) and H(E | T).
/// </summary>
public static class TokenIdAnalysis
{
    /// <summary>Positions per bucket of the consistency-by-position table unless asked otherwise.</summary>
    public const int DefaultPositionBucket = 64;

    /// <summary>Collects the routing of <paramref name="groups"/> and analyses it.</summary>
    /// <param name="model">The model.</param>
    /// <param name="folder">The run folder (resumable routing parts).</param>
    /// <param name="groups">The token sequences.</param>
    /// <param name="minimumOccurrences">M: token ids seen fewer times are left out.</param>
    /// <param name="progress">Progress display.</param>
    /// <param name="threadCount">Threads of the forward pass.</param>
    /// <param name="cancellationToken">Stops between sequences.</param>
    /// <param name="includeSpecialTokens">Count BOS, EOS and control tokens too (default false, see <see cref="SpecialTokens"/>).</param>
    /// <param name="positionBucket">Positions per bucket of <see cref="TokenIdResult.ByPosition"/>.</param>
    /// <param name="source">Routing from a server (ids only) instead of the engine; null for the engine.</param>
    /// <exception cref="ExpertScopeException">No token id occurs <paramref name="minimumOccurrences"/> times.</exception>
    public static TokenIdResult Run(
        MoeModel model, RunFolder folder, IReadOnlyList<RoutingGroup> groups, int minimumOccurrences, IProgressSink progress, int? threadCount,
        CancellationToken cancellationToken = default, bool includeSpecialTokens = false, int positionBucket = DefaultPositionBucket,
        RoutingSources.IRoutingSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumOccurrences, 1);
        // The analysis needs expert ids and ranks only, so a server's ids-only routing gives the same numbers.
        var collected = source is null
            ? RoutingCollector.Collect(model, folder, groups, progress, threadCount, cancellationToken)
            : RoutingCollector.Collect(source, folder, groups, progress, cancellationToken);

        // Sequence ids restart in every group; make them distinct so occurrences stay apart.
        var excluded = includeSpecialTokens ? new HashSet<int>() : SpecialTokens.Ids(model);
        var records = new List<RoutingRecord>();
        int offset = 0;
        for (int g = 0; g < collected.Count; g++)
        {
            int shift = offset;
            records.AddRange(collected[g].Records.Where(r => !excluded.Contains(r.TokenId)).Select(r => r with { Sequence = r.Sequence + shift }));
            offset += groups[g].Sequences.Count;
        }

        var layers = TokenRouting.Summarize(records, minimumOccurrences);
        if (layers.Count == 0)
        {
            throw new ExpertScopeException(
                string.Create(CultureInfo.InvariantCulture, $"No token id occurs at least {minimumOccurrences} times in the input; give more text or a smaller --min-occurrences."));
        }

        long tokens = groups.Sum(g => g.Sequences.Sum(s => (long)s.Count(id => !excluded.Contains(id))));
        return new TokenIdResult(
            layers, TokenRouting.Profiles(records, minimumOccurrences), tokens, minimumOccurrences,
            TokenRouting.ConsistencyByPosition(records, minimumOccurrences, positionBucket), excluded);
    }

    /// <summary>Writes <c>results.json</c>, <c>layers.csv</c>, <c>token_profiles.csv</c>, SVG figures and <c>report.html</c>.</summary>
    public static void WriteOutputs(TokenIdResult result, string folder, string modelName, MoeModel model, bool randomWeights = false)
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

        using (var csv = CsvWriter.Create(Path.Combine(folder, "position_consistency.csv")))
        {
            csv.WriteRow("layer", "position_start", "position_end", "occurrences", "top1_consistency");
            foreach (var p in result.ByPosition)
            {
                csv.WriteRow(p.Layer, p.PositionStart, p.PositionEnd, p.Occurrences, p.Top1Consistency);
            }
        }

        var report = new HtmlReport("Token id vs context in routing") { Subtitle = modelName, Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(f, $"{result.Tokens} tokens routed; token ids with at least {result.MinimumOccurrences} occurrences are analysed."),
            result.ExcludedTokenIds.Count == 0
                ? "Special tokens (BOS, EOS, control) are counted."
                : string.Create(f, $"{result.ExcludedTokenIds.Count} special token ids (BOS, EOS, control tokens) are left out: BOS is one fixed token at position 0 and would count as perfectly consistent."),
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
        var bucketLayers = result.ByPosition.Select(p => p.Layer).Distinct().Order().ToList();
        var byPosition = new LineChart
        {
            Title = "Consistency with the token id's modal expert by position (OpenMoE: drop towards the end)", XLabel = "position (bucket start)", YLabel = "share",
            YMinimum = 0, YMaximum = 1,
            Series = [.. bucketLayers.Select(layer =>
            {
                var rows = result.ByPosition.Where(p => p.Layer == layer).ToList();
                return new LineSeries(string.Create(f, $"layer {layer}"), [.. rows.Select(p => (double)p.PositionStart)], [.. rows.Select(p => p.Top1Consistency)]);
            })],
        };
        byPosition.SaveSvg(Path.Combine(folder, "position_consistency.svg"));
        var section = report.AddSection("Per layer");
        section.AddFigure(information).AddFigure(consistency).AddFigure(byPosition);
        section.AddTable(new ReportTable(
            ["layer", "ids", "occurrences", "top-1 consistency", "top-k overlap", "H(E)", "I(E; T)", "H(E | T)", "context share"],
            [.. result.Layers.Select(l => (IReadOnlyList<string>)[
                l.Layer.ToString(f), l.TokenTypes.ToString(f), l.Occurrences.ToString(f), ReportTable.Number(l.Top1Consistency), ReportTable.Number(l.TopKOverlap),
                ReportTable.Number(l.ExpertEntropy), ReportTable.Number(l.MutualInformation), ReportTable.Number(l.ConditionalEntropy), ReportTable.Number(l.ContextShare)])]));
        report.Save(Path.Combine(folder, "report.html"));
        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "results.json"), new
        {
            analysis = "token-id",
            model = modelName,
            tokens = result.Tokens,
            min_occurrences = result.MinimumOccurrences,
            special_tokens_excluded = result.ExcludedTokenIds.Count > 0,
            by_position = result.ByPosition.Select(p => new { layer = p.Layer, position_start = p.PositionStart, position_end = p.PositionEnd, occurrences = p.Occurrences, top1_consistency = p.Top1Consistency }),
            layers = result.Layers.Select(l => new
            {
                layer = l.Layer, token_types = l.TokenTypes, occurrences = l.Occurrences, top1_consistency = l.Top1Consistency,
                pooled_top1_consistency = l.PooledTop1Consistency, topk_overlap = l.TopKOverlap, h_expert_bits = l.ExpertEntropy,
                h_expert_given_token_bits = l.ConditionalEntropy, mi_bits = l.MutualInformation, context_share = l.ContextShare,
                mi_miller_madow_bits = l.MutualInformationMillerMadow,
            }),
        }, randomWeights);
    }
}
