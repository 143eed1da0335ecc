namespace ExpertScope.Experiments.Metrics;

/// <summary>
/// Overlap between the expert sets two tokens were routed to (e.g. the target word in two contexts) at one layer.
/// </summary>
/// <remarks>
/// Every method first drops shared experts unless <c>includeShared</c> is true, and requires the two remaining
/// sets to be non-empty, of equal size <c>k</c>, and free of repeated experts.
/// </remarks>
public static class RoutingOverlap
{
    /// <summary>The number of experts in both sets, <c>|A ∩ B|</c>.</summary>
    /// <exception cref="ArgumentException">The sets are empty, differ in size, or repeat an expert.</exception>
    public static int SharedCount(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, bool includeShared = false) =>
        Prepare(first, second, includeShared).Shared.Count;

    /// <summary>Effectively computes <c>|A ∩ B| / k</c>, in [0, 1].</summary>
    /// <exception cref="ArgumentException">The sets are empty, differ in size, or repeat an expert.</exception>
    public static double IntersectionOverK(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, bool includeShared = false)
    {
        var (shared, k) = Prepare(first, second, includeShared);
        return (double)shared.Count / k;
    }

    /// <summary>Effectively computes the Jaccard index <c>|A ∩ B| / |A ∪ B| = O / (2k − O)</c>, in [0, 1].</summary>
    /// <exception cref="ArgumentException">The sets are empty, differ in size, or repeat an expert.</exception>
    public static double Jaccard(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, bool includeShared = false)
    {
        var (shared, k) = Prepare(first, second, includeShared);
        return (double)shared.Count / (2 * k - shared.Count);
    }

    /// <summary>
    /// Chance-corrected overlap <c>κ = (O − k²/N) / (k − k²/N)</c> over the <em>routed</em> experts, where
    /// <c>O = |A ∩ B|</c>, k the routed experts per token and <c>k²/N</c> the expected overlap of two independent
    /// uniformly random k-subsets of N experts. 1 for identical sets, 0 at uniform-load chance, negative below it
    /// (down to <c>−k/(N − k)</c> for disjoint sets). Under uneven expert load chance is higher; see
    /// <see cref="LoadCorrected"/>.
    /// </summary>
    /// <remarks>
    /// Always-active shared experts are no chance picks: counting s of them adds s to both the observed and the
    /// expected overlap and to k, which cancels, so κ is the same whether or not shared experts are included.
    /// <paramref name="includeShared"/> is accepted for symmetry with the other metrics and changes nothing.
    /// </remarks>
    /// <param name="first">Experts of the first token.</param>
    /// <param name="second">Experts of the second token.</param>
    /// <param name="expertCount">N: the number of routed experts the router chooses from.</param>
    /// <param name="includeShared">Whether shared experts count (κ does not depend on it).</param>
    /// <exception cref="ArgumentException">The sets are invalid, or k is not below N (κ is undefined when every expert is chosen).</exception>
    public static double ChanceCorrected(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, int expertCount, bool includeShared = false)
    {
        var (shared, k) = Prepare(first, second, includeShared: false);
        if (k >= expertCount)
        {
            throw new ArgumentException($"Chance-corrected overlap needs k < N; got k = {k}, N = {expertCount}.", nameof(expertCount));
        }

        var expected = (double)k * k / expertCount;
        return (shared.Count - expected) / (k - expected);
    }

    /// <summary>
    /// Load-corrected κ: <c>(O − C) / (k − C)</c> with <c>O = k · overlap</c> the routed experts two tokens share and
    /// <c>C = Σₑ qₑ²</c> the overlap two unrelated tokens have on average when expert e is selected at rate qₑ
    /// (<c>Σₑ qₑ = k</c>; see <see cref="ExpertLoad"/>). Equals the classic κ when load is uniform (qₑ = k/N).
    /// Affine in the overlap, so it may be averaged over sub-tokens like the overlap itself.
    /// </summary>
    /// <param name="overlap">|A ∩ B| / k over routed experts (possibly a sub-token average).</param>
    /// <param name="topK">k, the routed experts per token.</param>
    /// <param name="chanceOverlap">C, the expected |A ∩ B| of two unrelated tokens (below k).</param>
    /// <exception cref="ArgumentException">C is not in [0, k).</exception>
    public static double LoadCorrected(double overlap, int topK, double chanceOverlap)
    {
        if (!(chanceOverlap >= 0 && chanceOverlap < topK))
        {
            throw new ArgumentException($"The chance overlap must lie in [0, k = {topK}); got {chanceOverlap}.", nameof(chanceOverlap));
        }

        return ((topK * overlap) - chanceOverlap) / (topK - chanceOverlap);
    }

    /// <summary>
    /// Weighted overlap: each token's selected weights are first renormalised to sum 1, then the smaller of the
    /// two weights is summed over the experts both selected, <c>Σ_{e ∈ A∩B} min(w̃_A(e), w̃_B(e))</c> with
    /// <c>w̃(e) = w(e) / Σ w</c>. It is the shared probability mass of the two top-k weight distributions and lies in
    /// [0, 1] for every router (Mixtral and OLMoE without top-k normalisation, DeepSeek-V2/V3 with a routed scaling
    /// factor, sigmoid gates): 1 for identical selections with identical weights, 0 for disjoint ones. Included
    /// shared experts join the set with their weight before the renormalisation.
    /// </summary>
    /// <exception cref="ArgumentException">The sets are empty, differ in size, repeat an expert, or a set's weights are negative or sum to zero.</exception>
    public static double WeightedOverlap(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, bool includeShared = false)
    {
        var (shared, _) = Prepare(first, second, includeShared);
        var totalFirst = WeightSum(first, includeShared, nameof(first));
        var totalSecond = WeightSum(second, includeShared, nameof(second));
        return shared.Sum(pair => Math.Min(pair.First / totalFirst, pair.Second / totalSecond));
    }

    private static double WeightSum(IReadOnlyList<ExpertChoice> choices, bool includeShared, string name)
    {
        var sum = 0.0;
        foreach (var choice in choices)
        {
            if (choice.IsShared && !includeShared)
            {
                continue;
            }

            if (!(choice.Weight >= 0) || !float.IsFinite(choice.Weight))
            {
                throw new ArgumentException($"Expert {choice.Expert} has weight {choice.Weight}; weights must be finite and non-negative.", name);
            }

            sum += choice.Weight;
        }

        return sum > 0 ? sum : throw new ArgumentException("The selected weights sum to zero, so they cannot be renormalised.", name);
    }

    private static (List<(float First, float Second)> Shared, int K) Prepare(
        IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, bool includeShared)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        var a = ToMap(first, includeShared, nameof(first));
        var b = ToMap(second, includeShared, nameof(second));
        if (a.Count == 0 || a.Count != b.Count)
        {
            throw new ArgumentException($"Expert sets must be non-empty and of equal size; got {a.Count} and {b.Count} experts.", nameof(second));
        }

        var shared = new List<(float, float)>();
        foreach (var (expert, weight) in a)
        {
            if (b.TryGetValue(expert, out var other))
            {
                shared.Add((weight, other));
            }
        }

        return (shared, a.Count);
    }

    private static Dictionary<int, float> ToMap(IReadOnlyList<ExpertChoice> choices, bool includeShared, string name)
    {
        var map = new Dictionary<int, float>(choices.Count);
        foreach (var choice in choices)
        {
            if (choice.IsShared && !includeShared)
            {
                continue;
            }

            if (!map.TryAdd(choice.Expert, choice.Weight))
            {
                throw new ArgumentException($"Expert {choice.Expert} appears twice in one set.", name);
            }
        }

        return map;
    }
}
