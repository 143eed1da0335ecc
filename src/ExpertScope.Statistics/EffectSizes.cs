namespace ExpertScope.Statistics;

/// <summary>Standardised effect sizes for two independent samples.</summary>
public static class EffectSizes
{
    /// <summary>
    /// The rank-biserial correlation r = 2U / (nₓ n_y) − 1, where U is the Mann-Whitney U of x (ties count one half).
    /// Equals P(X &gt; Y) − P(X &lt; Y) over all cross pairs: +1 when every x exceeds every y, −1 in the reverse case.
    /// </summary>
    /// <param name="x">First sample (at least one value).</param>
    /// <param name="y">Second sample (at least one value).</param>
    /// <returns>r in [−1, 1].</returns>
    /// <exception cref="ArgumentException">A sample is empty or non-finite.</exception>
    public static double RankBiserial(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        Guard.Sample(x, 1, nameof(x));
        Guard.Sample(y, 1, nameof(y));
        var pooled = new double[x.Length + y.Length];
        x.CopyTo(pooled);
        y.CopyTo(pooled.AsSpan(x.Length));
        var ranks = Ranking.AverageRanks(pooled);
        var rankSumX = 0.0;
        for (var i = 0; i < x.Length; i++)
        {
            rankSumX += ranks[i];
        }

        var u = rankSumX - (x.Length * (x.Length + 1.0) / 2.0);
        return (2.0 * u / (x.Length * (double)y.Length)) - 1.0;
    }

    /// <summary>
    /// Cohen's d with the pooled standard deviation: (x̄ − ȳ) / √(((nₓ − 1)sₓ² + (n_y − 1)s_y²) / (nₓ + n_y − 2)).
    /// </summary>
    /// <param name="x">First sample (at least two values).</param>
    /// <param name="y">Second sample (at least two values).</param>
    /// <returns>d; positive when x has the larger mean.</returns>
    /// <exception cref="ArgumentException">A sample has fewer than two values or a non-finite value, or both are constant.</exception>
    public static double CohensD(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        Guard.Sample(x, 2, nameof(x));
        Guard.Sample(y, 2, nameof(y));
        var pooledVariance = (((x.Length - 1) * Descriptive.Variance(x)) + ((y.Length - 1) * Descriptive.Variance(y)))
            / (x.Length + y.Length - 2);
        if (!(pooledVariance > 0.0))
        {
            throw new ArgumentException("Both samples are constant, so the pooled standard deviation is zero.", nameof(x));
        }

        return (Descriptive.Mean(x) - Descriptive.Mean(y)) / Math.Sqrt(pooledVariance);
    }
}
