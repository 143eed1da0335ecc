namespace ExpertScope.Experiments.Metrics;

/// <summary>
/// How often each routed expert of one layer is selected, and the overlap two unrelated tokens have by chance
/// under that load.
/// </summary>
/// <remarks>
/// With qₑ the share of tokens that select expert e (<c>Σₑ qₑ = k</c>), two tokens drawn independently share on
/// average <c>C = Σₑ qₑ²</c> experts. The classic chance level <c>k²/N</c> of the chance-corrected κ is the special
/// case of uniform load (qₑ = k/N) and the smallest possible C; any unevenness raises C (Cauchy-Schwarz), so a
/// positive classic κ can be pure load. Selection rates are measured on the tokens the caller passes (the probes:
/// every probed token of the run).
/// </remarks>
/// <param name="TokenCount">Tokens counted.</param>
/// <param name="TopK">k: routed experts per token.</param>
/// <param name="SelectionRates">qₑ per routed expert (sums to k).</param>
public sealed record ExpertLoad(int TokenCount, int TopK, IReadOnlyList<double> SelectionRates)
{
    /// <summary>N: routed experts.</summary>
    public int ExpertCount => SelectionRates.Count;

    /// <summary>C = Σₑ qₑ²: the expected number of experts two unrelated tokens share.</summary>
    public double ChanceOverlap => SelectionRates.Sum(q => q * q);

    /// <summary>k²/N: the expected shared count under uniform load.</summary>
    public double UniformChanceOverlap => (double)TopK * TopK / ExpertCount;

    /// <summary>The classic κ that two unrelated tokens have on average under this load: <c>(C − k²/N) / (k − k²/N)</c> (0 for uniform load).</summary>
    public double ChanceKappa => (ChanceOverlap - UniformChanceOverlap) / (TopK - UniformChanceOverlap);

    /// <summary>
    /// Counts the routed experts each token selected.
    /// </summary>
    /// <param name="selections">Each token's selected routed experts (k distinct indices below <paramref name="expertCount"/>).</param>
    /// <param name="expertCount">N: routed experts of the layer.</param>
    /// <exception cref="ArgumentException">No tokens, tokens with different k, or an expert index out of range.</exception>
    public static ExpertLoad Measure(IEnumerable<IReadOnlyList<int>> selections, int expertCount)
    {
        ArgumentNullException.ThrowIfNull(selections);
        ArgumentOutOfRangeException.ThrowIfLessThan(expertCount, 1);
        var counts = new long[expertCount];
        var tokens = 0;
        var topK = -1;
        foreach (var experts in selections)
        {
            if (topK < 0)
            {
                topK = experts.Count;
            }
            else if (experts.Count != topK)
            {
                throw new ArgumentException($"Every token must select the same number of experts; found {topK} and {experts.Count}.", nameof(selections));
            }

            foreach (var expert in experts)
            {
                if ((uint)expert >= (uint)expertCount)
                {
                    throw new ArgumentException($"Expert {expert} is outside the layer's {expertCount} routed experts.", nameof(selections));
                }

                counts[expert]++;
            }

            tokens++;
        }

        if (tokens == 0)
        {
            throw new ArgumentException("Expert load needs at least one token.", nameof(selections));
        }

        return new ExpertLoad(tokens, topK, [.. counts.Select(count => (double)count / tokens)]);
    }
}
