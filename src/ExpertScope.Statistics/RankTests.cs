namespace ExpertScope.Statistics;

/// <summary>Result of a Wilcoxon rank-sum (Mann-Whitney) test.</summary>
/// <param name="W">R's W: the Mann-Whitney U of the first sample, Σ ranks(x) − nₓ(nₓ+1)/2.</param>
/// <param name="PValue">The p-value for the requested alternative.</param>
/// <param name="IsExact">True when the p-value comes from the exact null distribution.</param>
/// <param name="Z">The (corrected) normal deviate when the normal approximation was used; null when exact.</param>
public sealed record MannWhitneyResult(double W, double PValue, bool IsExact, double? Z);

/// <summary>Result of a Wilcoxon signed-rank test.</summary>
/// <param name="V">R's V: the sum of the ranks of |d| over the positive differences d.</param>
/// <param name="PValue">The p-value for the requested alternative.</param>
/// <param name="IsExact">True when the p-value comes from the exact null distribution.</param>
/// <param name="Z">The (corrected) normal deviate when the normal approximation was used; null when exact.</param>
/// <param name="NonZeroCount">How many differences remained after dropping zeros.</param>
public sealed record SignedRankResult(double V, double PValue, bool IsExact, double? Z, int NonZeroCount);

/// <summary>Wilcoxon rank tests, matching R's <c>wilcox.test</c> (stats 4.2).</summary>
public static class RankTests
{
    /// <summary>Sample sizes below this use the exact distribution by default, as R does.</summary>
    public const int ExactSizeLimit = 50;

    /// <summary>Forcing the exact rank-sum distribution is refused beyond about this many counting steps (seconds of CPU).</summary>
    private const double MaxExactCost = 2e9;

    /// <summary>
    /// Wilcoxon rank-sum / Mann-Whitney U test of x against y, as R's <c>wilcox.test(x, y, alternative, correct)</c>.
    /// </summary>
    /// <remarks>
    /// The exact distribution is used when <paramref name="exact"/> allows it (by default when both samples have
    /// fewer than 50 values) and there are no ties; otherwise the normal approximation with the tie-corrected
    /// variance, and (if <paramref name="continuityCorrection"/>) a 0.5 shift towards the null.
    /// <see cref="Alternative.Greater"/> means x tends to be larger than y.
    /// </remarks>
    /// <param name="x">First sample (at least one value).</param>
    /// <param name="y">Second sample (at least one value).</param>
    /// <param name="alternative">The alternative hypothesis.</param>
    /// <param name="continuityCorrection">Apply the continuity correction in the normal approximation.</param>
    /// <param name="exact">
    /// Force (true) or forbid (false) the exact distribution; null for R's default rule. Ties always fall back to
    /// the normal approximation, as in R.
    /// </param>
    /// <returns>W, the p-value and which method produced it.</returns>
    /// <exception cref="ArgumentException">
    /// A sample is empty or non-finite, every value is tied (the variance is zero), or the exact distribution was
    /// forced for samples too large to count.
    /// </exception>
    public static MannWhitneyResult MannWhitney(
        ReadOnlySpan<double> x,
        ReadOnlySpan<double> y,
        Alternative alternative = Alternative.TwoSided,
        bool continuityCorrection = true,
        bool? exact = null)
    {
        Guard.Sample(x, 1, nameof(x));
        Guard.Sample(y, 1, nameof(y));
        Guard.Defined(alternative, nameof(alternative));

        var nx = x.Length;
        var ny = y.Length;
        var pooled = new double[nx + ny];
        x.CopyTo(pooled);
        y.CopyTo(pooled.AsSpan(nx));
        var ranks = Ranking.AverageRanks(pooled, out var tieGroups);

        var rankSumX = 0.0;
        for (var i = 0; i < nx; i++)
        {
            rankSumX += ranks[i];
        }

        var w = rankSumX - (nx * (nx + 1.0) / 2.0);
        var useExact = (exact ?? (nx < ExactSizeLimit && ny < ExactSizeLimit)) && !Ranking.HasTies(tieGroups);
        if (useExact)
        {
            if (ExactRankDistributions.RankSumCost(nx, ny) > MaxExactCost)
            {
                throw new ArgumentException(
                    $"The exact rank-sum distribution for samples of {nx} and {ny} is too costly to count; use the normal approximation (exact: false or null).",
                    nameof(exact));
            }

            var counts = ExactRankDistributions.RankSumCounts(nx, ny);
            var p = ExactPValue(counts, (int)w, nx * (double)ny / 2.0, alternative);
            return new MannWhitneyResult(w, p, true, null);
        }

        double n = nx + ny;
        var variance = (nx * (double)ny / 12.0) * ((n + 1.0) - (Ranking.TieCubeSum(tieGroups) / (n * (n - 1.0))));
        if (!(variance > 0.0))
        {
            throw new ArgumentException("Every value in the pooled sample is tied, so the rank-sum test is undefined.", nameof(x));
        }

        var z = NormalDeviate(w - (nx * (double)ny / 2.0), Math.Sqrt(variance), alternative, continuityCorrection);
        return new MannWhitneyResult(w, NormalPValue(z, alternative), false, z);
    }

    /// <summary>
    /// Paired Wilcoxon signed-rank test on x − y, as R's <c>wilcox.test(x, y, paired = TRUE, correct)</c>.
    /// </summary>
    /// <param name="x">First paired sample.</param>
    /// <param name="y">Second paired sample, same length as <paramref name="x"/>.</param>
    /// <param name="alternative">The alternative hypothesis (<see cref="Alternative.Greater"/>: x − y tends to be positive).</param>
    /// <param name="continuityCorrection">Apply the continuity correction in the normal approximation.</param>
    /// <param name="exact">Force (true) or forbid (false) the exact distribution; null for R's default rule.</param>
    /// <returns>V, the p-value and which method produced it.</returns>
    /// <exception cref="ArgumentException">Lengths differ, input is empty or non-finite, or every difference is zero.</exception>
    public static SignedRankResult WilcoxonSignedRank(
        ReadOnlySpan<double> x,
        ReadOnlySpan<double> y,
        Alternative alternative = Alternative.TwoSided,
        bool continuityCorrection = true,
        bool? exact = null)
    {
        Guard.SameLength(x, y, nameof(y));
        var differences = new double[x.Length];
        for (var i = 0; i < differences.Length; i++)
        {
            differences[i] = x[i] - y[i];
        }

        return WilcoxonSignedRankDifferences(differences, alternative, continuityCorrection, exact);
    }

    /// <summary>
    /// One-sample Wilcoxon signed-rank test that the differences are symmetric about zero, as R's
    /// <c>wilcox.test(d, correct)</c>. Zero differences are dropped; the exact distribution is used when fewer
    /// than 50 remain (or <paramref name="exact"/> is true) and there are neither ties nor zeros; otherwise the
    /// normal approximation with tie-corrected variance.
    /// </summary>
    /// <param name="differences">The paired differences.</param>
    /// <param name="alternative">The alternative hypothesis.</param>
    /// <param name="continuityCorrection">Apply the continuity correction in the normal approximation.</param>
    /// <param name="exact">Force (true) or forbid (false) the exact distribution; null for R's default rule.</param>
    /// <returns>V, the p-value and which method produced it.</returns>
    /// <exception cref="ArgumentException">Input is empty or non-finite, or every difference is zero.</exception>
    public static SignedRankResult WilcoxonSignedRankDifferences(
        ReadOnlySpan<double> differences,
        Alternative alternative = Alternative.TwoSided,
        bool continuityCorrection = true,
        bool? exact = null)
    {
        Guard.Sample(differences, 1, nameof(differences));
        Guard.Defined(alternative, nameof(alternative));

        var nonZero = new List<double>(differences.Length);
        foreach (var d in differences)
        {
            if (d != 0.0)
            {
                nonZero.Add(d);
            }
        }

        var hasZeros = nonZero.Count < differences.Length;
        var n = nonZero.Count;
        if (n == 0)
        {
            throw new ArgumentException("Every difference is zero, so the signed-rank test is undefined.", nameof(differences));
        }

        var magnitudes = new double[n];
        for (var i = 0; i < n; i++)
        {
            magnitudes[i] = Math.Abs(nonZero[i]);
        }

        var ranks = Ranking.AverageRanks(magnitudes, out var tieGroups);
        var v = 0.0;
        for (var i = 0; i < n; i++)
        {
            if (nonZero[i] > 0)
            {
                v += ranks[i];
            }
        }

        var useExact = (exact ?? n < ExactSizeLimit) && !Ranking.HasTies(tieGroups) && !hasZeros;
        if (useExact)
        {
            var counts = ExactRankDistributions.SignedRankCounts(n);
            var p = ExactPValue(counts, (int)v, n * (n + 1.0) / 4.0, alternative);
            return new SignedRankResult(v, p, true, null, n);
        }

        var variance = (n * (n + 1.0) * ((2.0 * n) + 1.0) / 24.0) - (Ranking.TieCubeSum(tieGroups) / 48.0);
        var z = NormalDeviate(v - (n * (n + 1.0) / 4.0), Math.Sqrt(variance), alternative, continuityCorrection);
        return new SignedRankResult(v, NormalPValue(z, alternative), false, z, n);
    }

    /// <summary>R's exact p-value rule: the tail on the observed side, doubled and capped at 1 for two-sided.</summary>
    private static double ExactPValue(double[] counts, int statistic, double nullMean, Alternative alternative)
    {
        var upper = ExactRankDistributions.UpperTail(counts, statistic);
        var lower = ExactRankDistributions.LowerTail(counts, statistic);
        return alternative switch
        {
            Alternative.Greater => upper,
            Alternative.Less => lower,
            _ => Math.Min(1.0, 2.0 * (statistic > nullMean ? upper : lower)),
        };
    }

    /// <summary>(centred − correction) / σ, with R's continuity correction sign(z)·0.5, +0.5 or −0.5.</summary>
    internal static double NormalDeviate(double centred, double sigma, Alternative alternative, bool continuityCorrection)
    {
        var correction = !continuityCorrection ? 0.0 : alternative switch
        {
            Alternative.Greater => 0.5,
            Alternative.Less => -0.5,
            _ => Math.Sign(centred) * 0.5,
        };
        return (centred - correction) / sigma;
    }

    /// <summary>Normal p-value for a deviate; two-sided doubles the smaller tail.</summary>
    internal static double NormalPValue(double z, Alternative alternative) => alternative switch
    {
        Alternative.Greater => Distributions.NormalUpperTail(z),
        Alternative.Less => Distributions.NormalCdf(z),
        _ => 2.0 * Math.Min(Distributions.NormalCdf(z), Distributions.NormalUpperTail(z)),
    };
}
