using ExpertScope.Experiments.Metrics;

namespace ExpertScope.Experiments.Analyses;

/// <summary>
/// Concentration measures of one non-negative distribution over experts (counts or mass; scaled to shares
/// internally): coverage, entropy, Gini coefficient; and Jensen-Shannon divergences between several.
/// </summary>
public static class DistributionStatistics
{
    /// <summary>
    /// The smallest number of experts whose shares, largest first, add up to at least <paramref name="level"/>:
    /// with shares sorted descending s₍₁₎ ≥ s₍₂₎ ≥ …, the smallest m with Σᵢ₌₁..ₘ s₍ᵢ₎ ≥ level (e.g. 0.5, 0.8, 0.9).
    /// A tolerance of 1e-12 absorbs rounding, so level 1 is reached by the last non-zero expert.
    /// </summary>
    /// <param name="mass">Non-negative values per expert, not all zero.</param>
    /// <param name="level">The share to cover, in (0, 1].</param>
    /// <exception cref="ArgumentException">Empty, negative or non-finite entries, zero total, or a level outside (0, 1].</exception>
    public static int ExpertsToCover(ReadOnlySpan<double> mass, double level)
    {
        if (!(level > 0 && level <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, "The level must be in (0, 1].");
        }

        var total = CheckedTotal(mass, nameof(mass));
        var sorted = mass.ToArray();
        Array.Sort(sorted, (x, y) => y.CompareTo(x));
        var cumulative = 0.0;
        for (var index = 0; index < sorted.Length; index++)
        {
            cumulative += sorted[index] / total;
            if (cumulative >= level - 1e-12)
            {
                return index + 1;
            }
        }

        return sorted.Length;
    }

    /// <summary>Shannon entropy in bits of the shares pᵢ = xᵢ / Σx: H = −Σ pᵢ log₂ pᵢ, with 0 · log 0 = 0.</summary>
    /// <exception cref="ArgumentException">Empty, negative or non-finite entries, or a zero total.</exception>
    public static double EntropyBits(ReadOnlySpan<double> mass)
    {
        var total = CheckedTotal(mass, nameof(mass));
        var entropy = 0.0;
        foreach (var value in mass)
        {
            if (value > 0)
            {
                var p = value / total;
                entropy -= p * Math.Log2(p);
            }
        }

        return Math.Max(0, entropy);
    }

    /// <summary>
    /// Entropy divided by its maximum: H / log₂ N with N the number of experts (the span length), in [0, 1]:
    /// 1 for uniform use, 0 when one expert takes everything. Defined as 0 for N = 1.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="EntropyBits"/>.</exception>
    public static double NormalizedEntropy(ReadOnlySpan<double> mass)
    {
        var entropy = EntropyBits(mass);
        return mass.Length > 1 ? entropy / Math.Log2(mass.Length) : 0;
    }

    /// <summary>
    /// Gini coefficient G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 N² x̄), computed from the ascending sort x₍₁₎ ≤ … ≤ x₍N₎ as
    /// G = 2 Σᵢ i·x₍ᵢ₎ / (N Σx) − (N + 1) / N. 0 for equal use; (N − 1) / N when one of N experts takes everything.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="EntropyBits"/>.</exception>
    public static double Gini(ReadOnlySpan<double> mass)
    {
        var total = CheckedTotal(mass, nameof(mass));
        var sorted = mass.ToArray();
        Array.Sort(sorted);
        var weighted = 0.0;
        for (var index = 0; index < sorted.Length; index++)
        {
            weighted += (index + 1) * sorted[index];
        }

        var n = sorted.Length;
        return Math.Max(0, (2 * weighted / (n * total)) - ((n + 1.0) / n));
    }

    /// <summary>
    /// Jensen-Shannon divergence in bits between every pair of distributions: JSD(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),
    /// m = (p + q) / 2, in [0, 1]; the square of <see cref="RouterDistance.JensenShannon"/> (which it calls, so
    /// inputs pass through single precision). Symmetric with a zero diagonal.
    /// </summary>
    /// <param name="distributions">Non-negative vectors of one length (scaled to sum 1).</param>
    /// <returns>[i, j] = JSD(distributions[i], distributions[j]).</returns>
    /// <exception cref="ArgumentException">Lengths differ, or a distribution is empty, negative or all zero.</exception>
    public static double[,] JensenShannonMatrix(IReadOnlyList<double[]> distributions)
    {
        ArgumentNullException.ThrowIfNull(distributions);
        var singles = distributions.Select(d => Array.ConvertAll(d, value => (float)value)).ToArray();
        var matrix = new double[singles.Length, singles.Length];
        for (var i = 0; i < singles.Length; i++)
        {
            for (var j = i + 1; j < singles.Length; j++)
            {
                var distance = RouterDistance.JensenShannon(singles[i], singles[j]);
                matrix[i, j] = matrix[j, i] = distance * distance;
            }
        }

        return matrix;
    }

    private static double CheckedTotal(ReadOnlySpan<double> mass, string name)
    {
        if (mass.IsEmpty)
        {
            throw new ArgumentException("The distribution is empty.", name);
        }

        var total = 0.0;
        foreach (var value in mass)
        {
            if (!double.IsFinite(value) || value < 0)
            {
                throw new ArgumentException($"Masses must be finite and non-negative; found {value}.", name);
            }

            total += value;
        }

        return total > 0 ? total : throw new ArgumentException("The distribution sums to zero.", name);
    }
}
