namespace ExpertScope.Experiments.Metrics;

/// <summary>Distances between two full router probability distributions over the routed experts of one layer.</summary>
public static class RouterDistance
{
    /// <summary>
    /// Jensen-Shannon distance with base-2 logarithms: <c>sqrt(JSD(p, q))</c> where
    /// <c>JSD = ½ KL(p ‖ m) + ½ KL(q ‖ m)</c>, <c>m = (p + q) / 2</c>, and <c>0 · log 0 = 0</c>. In [0, 1]:
    /// 0 for identical distributions, 1 for distributions with disjoint support. Both inputs are first scaled to
    /// sum 1, so unnormalised non-negative scores are accepted.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, or an input is empty, has a negative or non-finite entry, or sums to zero.</exception>
    public static double JensenShannon(ReadOnlySpan<float> first, ReadOnlySpan<float> second)
    {
        if (first.Length != second.Length)
        {
            throw new ArgumentException($"Distributions differ in length ({first.Length} and {second.Length}).", nameof(second));
        }

        var sumFirst = CheckedSum(first, nameof(first));
        var sumSecond = CheckedSum(second, nameof(second));
        var divergence = 0.0;
        for (var index = 0; index < first.Length; index++)
        {
            var p = first[index] / sumFirst;
            var q = second[index] / sumSecond;
            var m = (p + q) / 2;
            if (p > 0)
            {
                divergence += 0.5 * p * Math.Log2(p / m);
            }

            if (q > 0)
            {
                divergence += 0.5 * q * Math.Log2(q / m);
            }
        }

        // Rounding can leave a tiny negative value for identical inputs.
        return Math.Sqrt(Math.Max(0, divergence));
    }

    private static double CheckedSum(ReadOnlySpan<float> values, string name)
    {
        if (values.IsEmpty)
        {
            throw new ArgumentException("The distribution is empty.", name);
        }

        var sum = 0.0;
        foreach (var value in values)
        {
            if (!float.IsFinite(value) || value < 0)
            {
                throw new ArgumentException($"Probabilities must be finite and non-negative; found {value}.", name);
            }

            sum += value;
        }

        return sum > 0 ? sum : throw new ArgumentException("The distribution sums to zero.", name);
    }
}
