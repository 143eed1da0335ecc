namespace ExpertScope.Statistics;

/// <summary>p-value adjustment methods, as named by R's <c>p.adjust</c>.</summary>
public enum PAdjustMethod
{
    /// <summary>Bonferroni: min(1, m·p). Controls the family-wise error rate.</summary>
    Bonferroni,

    /// <summary>Holm's step-down: controls the family-wise error rate, uniformly more powerful than Bonferroni.</summary>
    Holm,

    /// <summary>Hochberg's step-up: family-wise error rate under independence or positive dependence.</summary>
    Hochberg,

    /// <summary>Benjamini–Hochberg: false discovery rate under independence or positive dependence (R's "BH").</summary>
    BenjaminiHochberg,

    /// <summary>Benjamini–Yekutieli: false discovery rate under arbitrary dependence (R's "BY").</summary>
    BenjaminiYekutieli,
}

/// <summary>Multiple-comparison corrections, matching R's <c>p.adjust</c>.</summary>
public static class MultipleComparisons
{
    /// <summary>Adjusts a family of p-values; the result is in input order, as R's <c>p.adjust(p, method)</c>.</summary>
    /// <param name="pValues">The raw p-values, each in [0, 1]. An empty family gives an empty result.</param>
    /// <param name="method">The adjustment.</param>
    /// <returns>The adjusted p-values, capped at 1.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A p-value is outside [0, 1] or NaN, or the method is unknown.</exception>
    public static double[] Adjust(ReadOnlySpan<double> pValues, PAdjustMethod method)
    {
        foreach (var p in pValues)
        {
            Guard.Probability(p, nameof(pValues));
        }

        var n = pValues.Length;
        var adjusted = new double[n];
        if (n == 0)
        {
            return adjusted;
        }

        switch (method)
        {
            case PAdjustMethod.Bonferroni:
                for (var i = 0; i < n; i++)
                {
                    adjusted[i] = Math.Min(1.0, n * pValues[i]);
                }

                return adjusted;

            case PAdjustMethod.Holm:
                {
                    // Ascending order; running maximum of (n − i + 1)·p₍ᵢ₎.
                    var order = Order(pValues, descending: false);
                    var running = 0.0;
                    for (var i = 0; i < n; i++)
                    {
                        running = Math.Max(running, (n - i) * pValues[order[i]]);
                        adjusted[order[i]] = Math.Min(1.0, running);
                    }

                    return adjusted;
                }

            case PAdjustMethod.Hochberg:
                return StepUp(pValues, rank => n + 1 - rank);

            case PAdjustMethod.BenjaminiHochberg:
                return StepUp(pValues, rank => (double)n / rank);

            case PAdjustMethod.BenjaminiYekutieli:
                {
                    var harmonic = 0.0;
                    for (var i = 1; i <= n; i++)
                    {
                        harmonic += 1.0 / i;
                    }

                    return StepUp(pValues, rank => harmonic * n / rank);
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown p-value adjustment method.");
        }
    }

    /// <summary>
    /// Step-up adjustment: walking from the largest p (rank n) down, the running minimum of factor(rank)·p₍rank₎.
    /// </summary>
    private static double[] StepUp(ReadOnlySpan<double> pValues, Func<int, double> factor)
    {
        var n = pValues.Length;
        var adjusted = new double[n];
        var order = Order(pValues, descending: true);
        var running = double.PositiveInfinity;
        for (var i = 0; i < n; i++)
        {
            var rank = n - i;
            running = Math.Min(running, factor(rank) * pValues[order[i]]);
            adjusted[order[i]] = Math.Min(1.0, running);
        }

        return adjusted;
    }

    /// <summary>Indices that sort the values, stable for ties (as R's order).</summary>
    private static int[] Order(ReadOnlySpan<double> values, bool descending)
    {
        var copy = values.ToArray();
        var order = Enumerable.Range(0, values.Length).ToArray();
        return descending
            ? [.. order.OrderByDescending(i => copy[i])]
            : [.. order.OrderBy(i => copy[i])];
    }
}
