using ExpertScope.Experiments.Metrics;

namespace ExpertScope.Experiments.Probes;

/// <summary>The routing of one token at one MoE layer, as the probes keep it.</summary>
/// <param name="Experts">Selected routed experts, best first.</param>
/// <param name="Weights">Their final mixing weights (empty when the routing came from a server, which gives ids only).</param>
/// <param name="Probabilities">The full router distribution over the routed experts (empty likewise).</param>
public sealed record TokenRouting(int[] Experts, float[] Weights, float[] Probabilities);

/// <summary>The five routing similarities of one pair of words at one layer.</summary>
/// <param name="Overlap">|A ∩ B| / k.</param>
/// <param name="Jaccard">|A ∩ B| / |A ∪ B|.</param>
/// <param name="Kappa">Chance-corrected overlap over routed experts (uniform-load chance k²/N; the same with or without shared experts).</param>
/// <param name="Weighted">Σ min renormalised weight over shared experts, in [0, 1].</param>
/// <param name="JensenShannon">Jensen-Shannon distance between router distributions.</param>
public readonly record struct PairScores(double Overlap, double Jaccard, double Kappa, double Weighted, double JensenShannon)
{
    /// <summary>
    /// κ against the measured load's chance: <c>(O − C) / (k − C)</c> with O the routed experts shared and
    /// <c>C = Σₑ qₑ²</c> (<see cref="ExpertLoad.ChanceOverlap"/>); NaN when no load was given.
    /// </summary>
    public double LoadCorrectedKappa { get; init; } = double.NaN;

    /// <summary>The value of <paramref name="metric"/>.</summary>
    public double Get(ProbeMetric metric) => metric switch
    {
        ProbeMetric.Kappa => Kappa,
        ProbeMetric.LoadCorrectedKappa => LoadCorrectedKappa,
        ProbeMetric.Overlap => Overlap,
        ProbeMetric.Jaccard => Jaccard,
        ProbeMetric.Weighted => Weighted,
        _ => JensenShannon,
    };

    /// <summary>
    /// Scores two words from their sub-tokens' routing at one layer. Overlap metrics are averaged over sub-token
    /// pairings (or use the first/last sub-token) through <see cref="SubTokenAggregation.Aggregate"/>; the
    /// Jensen-Shannon distance compares the words' mean router distributions (first/last: that token's).
    /// </summary>
    /// <param name="first">Sub-tokens of the first word, in order.</param>
    /// <param name="second">Sub-tokens of the second word.</param>
    /// <param name="mode">Which sub-tokens stand for the word.</param>
    /// <param name="routedExperts">N, the routed experts per layer (0: the probabilities' length). Ids-only routing has no
    /// weights or probabilities: <c>weighted</c> and <c>js</c> are then NaN (not available), never estimated.</param>
    /// <param name="sharedExperts">
    /// Always-active shared experts to count as selected by both tokens (0 to leave them out, the default of the
    /// probes). They get indices after the routed ones and weight 1 (they are applied unscaled). They change overlap,
    /// Jaccard and the weighted overlap, never κ (shared experts are no chance picks).
    /// </param>
    /// <param name="chanceOverlap">C = Σₑ qₑ² of this layer for <see cref="LoadCorrectedKappa"/>, or NaN to leave it out.</param>
    public static PairScores Compute(
        IReadOnlyList<TokenRouting> first, IReadOnlyList<TokenRouting> second, SubTokenMode mode, int sharedExperts = 0, double chanceOverlap = double.NaN,
        int routedExperts = 0)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Count == 0 || second.Count == 0)
        {
            throw new ArgumentException("Both words need at least one token.");
        }

        var routed = routedExperts > 0 ? routedExperts : first[0].Probabilities.Length;
        var idsOnly = first.Concat(second).Any(token => token.Weights.Length == 0);
        var include = sharedExperts > 0;
        var a = first.Select(token => Choices(token, routed, sharedExperts)).ToList();
        var b = second.Select(token => Choices(token, routed, sharedExperts)).ToList();
        var overlap = SubTokenAggregation.Aggregate(a, b, mode, (x, y) => RoutingOverlap.IntersectionOverK(x, y, include));
        var jaccard = SubTokenAggregation.Aggregate(a, b, mode, (x, y) => RoutingOverlap.Jaccard(x, y, include));
        var kappa = SubTokenAggregation.Aggregate(a, b, mode, (x, y) => RoutingOverlap.ChanceCorrected(x, y, routed));
        var weighted = idsOnly ? double.NaN : SubTokenAggregation.Aggregate(a, b, mode, (x, y) => RoutingOverlap.WeightedOverlap(x, y, include));
        var js = first.Concat(second).Any(token => token.Probabilities.Length == 0)
            ? double.NaN
            : RouterDistance.JensenShannon(Distribution(first, mode), Distribution(second, mode));
        var loadKappa = double.NaN;
        if (double.IsFinite(chanceOverlap))
        {
            // κ_load is affine in the routed overlap, so the sub-token average of the overlap gives the average κ_load.
            var routedOverlap = include ? SubTokenAggregation.Aggregate(a, b, mode, (x, y) => RoutingOverlap.IntersectionOverK(x, y)) : overlap;
            loadKappa = RoutingOverlap.LoadCorrected(routedOverlap, first[0].Experts.Length, chanceOverlap);
        }

        return new PairScores(overlap, jaccard, kappa, weighted, js) { LoadCorrectedKappa = loadKappa };
    }

    private static float[] Distribution(IReadOnlyList<TokenRouting> tokens, SubTokenMode mode) => mode switch
    {
        SubTokenMode.First => tokens[0].Probabilities,
        SubTokenMode.Last => tokens[^1].Probabilities,
        _ => tokens.Count == 1 ? tokens[0].Probabilities : SubTokenAggregation.MeanDistribution([.. tokens.Select(token => token.Probabilities)]),
    };

    private static ExpertChoice[] Choices(TokenRouting token, int routed, int sharedExperts)
    {
        var choices = new ExpertChoice[token.Experts.Length + sharedExperts];
        for (var i = 0; i < token.Experts.Length; i++)
        {
            choices[i] = new ExpertChoice(token.Experts[i], token.Weights.Length == 0 ? float.NaN : token.Weights[i]);
        }

        for (var s = 0; s < sharedExperts; s++)
        {
            choices[token.Experts.Length + s] = new ExpertChoice(routed + s, 1f, IsShared: true);
        }

        return choices;
    }
}
