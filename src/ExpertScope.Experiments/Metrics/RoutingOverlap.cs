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
    /// Chance-corrected overlap <c>κ = (O − k²/N) / (k − k²/N)</c>, where <c>O = |A ∩ B|</c> and <c>k²/N</c> is the
    /// expected overlap of two independent uniformly random k-subsets of N experts. 1 for identical sets, 0 at
    /// chance, negative below chance (down to <c>−k/(N − k)</c> for disjoint sets).
    /// </summary>
    /// <param name="first">Experts of the first token.</param>
    /// <param name="second">Experts of the second token.</param>
    /// <param name="expertCount">N: the number of experts the router chooses from (routed experts only, unless shared ones are included).</param>
    /// <param name="includeShared">Whether shared experts count.</param>
    /// <exception cref="ArgumentException">The sets are invalid, or k is not below N (κ is undefined when every expert is chosen).</exception>
    public static double ChanceCorrected(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, int expertCount, bool includeShared = false)
    {
        var (shared, k) = Prepare(first, second, includeShared);
        if (k >= expertCount)
        {
            throw new ArgumentException($"Chance-corrected overlap needs k < N; got k = {k}, N = {expertCount}.", nameof(expertCount));
        }

        var expected = (double)k * k / expertCount;
        return (shared.Count - expected) / (k - expected);
    }

    /// <summary>
    /// Weighted overlap: the sum over experts in both sets of the smaller of their two mixing weights,
    /// <c>Σ_{e ∈ A∩B} min(w_A(e), w_B(e))</c>. With weights normalised to sum 1 it lies in [0, 1] and is the
    /// shared probability mass of the two top-k weight distributions.
    /// </summary>
    /// <exception cref="ArgumentException">The sets are empty, differ in size, or repeat an expert.</exception>
    public static double WeightedOverlap(IReadOnlyList<ExpertChoice> first, IReadOnlyList<ExpertChoice> second, bool includeShared = false)
    {
        var (shared, _) = Prepare(first, second, includeShared);
        return shared.Sum(pair => (double)Math.Min(pair.First, pair.Second));
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
