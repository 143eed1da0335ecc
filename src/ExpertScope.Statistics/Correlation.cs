namespace ExpertScope.Statistics;

/// <summary>Result of a correlation test.</summary>
/// <param name="Estimate">The correlation coefficient (Pearson r, Spearman ρ or Kendall τ-b).</param>
/// <param name="Statistic">The test statistic: t for Pearson, S = (n³ − n)(1 − ρ)/6 for Spearman, z for Kendall.</param>
/// <param name="PValue">The p-value for the requested alternative.</param>
public sealed record CorrelationResult(double Estimate, double Statistic, double PValue);

/// <summary>Correlation coefficients and their tests, matching R's <c>cor.test(x, y, method, exact = FALSE)</c>.</summary>
public static class Correlation
{
    /// <summary>
    /// Pearson's product-moment correlation with the t test t = r √(n − 2) / √(1 − r²) on n − 2 df.
    /// </summary>
    /// <param name="x">First variable (at least three values).</param>
    /// <param name="y">Second variable, same length.</param>
    /// <param name="alternative">The alternative (<see cref="Alternative.Greater"/>: positive association).</param>
    /// <returns>r, t and the p-value.</returns>
    /// <exception cref="ArgumentException">Lengths differ, fewer than three pairs, non-finite input, or a constant variable.</exception>
    public static CorrelationResult Pearson(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Alternative alternative = Alternative.TwoSided)
    {
        Check(x, y, alternative);
        var r = PearsonCoefficient(x, y);
        var df = x.Length - 2.0;
        var t = Math.Sqrt(df) * r / Math.Sqrt(1.0 - (r * r));
        return new CorrelationResult(r, t, TTests.PValue(t, df, alternative));
    }

    /// <summary>
    /// Spearman's rank correlation ρ (Pearson correlation of average ranks) with R's asymptotic p-value
    /// (<c>exact = FALSE</c>): a t test on n − 2 df of ρ recovered from S.
    /// </summary>
    /// <param name="x">First variable (at least three values).</param>
    /// <param name="y">Second variable, same length.</param>
    /// <param name="alternative">The alternative (<see cref="Alternative.Greater"/>: positive association).</param>
    /// <returns>ρ, S and the p-value.</returns>
    /// <exception cref="ArgumentException">Lengths differ, fewer than three pairs, non-finite input, or a constant variable.</exception>
    public static CorrelationResult Spearman(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Alternative alternative = Alternative.TwoSided)
    {
        Check(x, y, alternative);
        double n = x.Length;
        var rho = PearsonCoefficient(Ranking.AverageRanks(x), Ranking.AverageRanks(y));
        var s = ((n * n * n) - n) * (1.0 - rho) / 6.0;

        // R converts S back to ρ and tests ρ / √((1 − ρ²)/(n − 2)) on n − 2 df; "greater" (positive association)
        // is the lower tail of S.
        var rhoFromS = 1.0 - (s / (n * ((n * n) - 1.0) / 6.0));
        var t = rhoFromS / Math.Sqrt((1.0 - (rhoFromS * rhoFromS)) / (n - 2.0));
        var p = alternative switch
        {
            Alternative.Greater => Distributions.StudentTUpperTail(t, n - 2.0),
            Alternative.Less => Distributions.StudentTCdf(t, n - 2.0),
            _ => Math.Min(1.0, 2.0 * (s > ((n * n * n) - n) / 6.0
                ? Distributions.StudentTCdf(t, n - 2.0)
                : Distributions.StudentTUpperTail(t, n - 2.0))),
        };
        return new CorrelationResult(rho, s, p);
    }

    /// <summary>
    /// Kendall's τ-b with R's normal approximation (<c>exact = FALSE</c>, no continuity correction):
    /// z = S / √Var(S), using the tie-corrected variance of S.
    /// </summary>
    /// <param name="x">First variable (at least three values).</param>
    /// <param name="y">Second variable, same length.</param>
    /// <param name="alternative">The alternative (<see cref="Alternative.Greater"/>: positive association).</param>
    /// <returns>τ-b, z and the p-value.</returns>
    /// <exception cref="ArgumentException">Lengths differ, fewer than three pairs, non-finite input, or a constant variable.</exception>
    public static CorrelationResult Kendall(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Alternative alternative = Alternative.TwoSided)
    {
        Check(x, y, alternative);
        var n = x.Length;
        long concordanceSum = 0, pairsUntiedX = 0, pairsUntiedY = 0;
        for (var i = 1; i < n; i++)
        {
            for (var j = 0; j < i; j++)
            {
                var sx = Math.Sign(x[i] - x[j]);
                var sy = Math.Sign(y[i] - y[j]);
                concordanceSum += sx * sy;
                pairsUntiedX += sx * sx;
                pairsUntiedY += sy * sy;
            }
        }

        if (pairsUntiedX == 0 || pairsUntiedY == 0)
        {
            throw new ArgumentException("A variable is constant, so Kendall's tau is undefined.", nameof(x));
        }

        var tau = concordanceSum / (Math.Sqrt(pairsUntiedX) * Math.Sqrt(pairsUntiedY));

        Ranking.AverageRanks(x, out var xTies);
        Ranking.AverageRanks(y, out var yTies);
        double nd = n;
        var t0 = nd * (nd - 1.0) / 2.0;
        var t1 = TieSum(xTies, t => t * (t - 1.0)) / 2.0;
        var t2 = TieSum(yTies, t => t * (t - 1.0)) / 2.0;

        // As R: S is recovered from τ-b, then divided by the square root of the tie-corrected variance.
        var s = tau * Math.Sqrt((t0 - t1) * (t0 - t2));
        var v0 = nd * (nd - 1.0) * ((2.0 * nd) + 5.0);
        var vt = TieSum(xTies, t => t * (t - 1.0) * ((2.0 * t) + 5.0));
        var vu = TieSum(yTies, t => t * (t - 1.0) * ((2.0 * t) + 5.0));
        var v1 = TieSum(xTies, t => t * (t - 1.0)) * TieSum(yTies, t => t * (t - 1.0));
        var v2 = TieSum(xTies, t => t * (t - 1.0) * (t - 2.0)) * TieSum(yTies, t => t * (t - 1.0) * (t - 2.0));
        var varianceS = ((v0 - vt - vu) / 18.0)
            + (v1 / (2.0 * nd * (nd - 1.0)))
            + (v2 / (9.0 * nd * (nd - 1.0) * (nd - 2.0)));
        var z = s / Math.Sqrt(varianceS);
        return new CorrelationResult(tau, z, RankTests.NormalPValue(z, alternative));
    }

    /// <summary>Pearson's r, from centred cross-products (two passes, as R's cor), clamped to [−1, 1].</summary>
    /// <param name="x">First variable.</param>
    /// <param name="y">Second variable, same length.</param>
    /// <returns>r.</returns>
    /// <exception cref="ArgumentException">Lengths differ, fewer than two pairs, non-finite input, or a constant variable.</exception>
    public static double PearsonCoefficient(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        Guard.SameLength(x, y, nameof(y));
        Guard.Sample(x, 2, nameof(x));
        Guard.Sample(y, 2, nameof(y));
        var meanX = Descriptive.Mean(x);
        var meanY = Descriptive.Mean(y);
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            var dx = x[i] - meanX;
            var dy = y[i] - meanY;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }

        if (sxx == 0.0 || syy == 0.0)
        {
            throw new ArgumentException("A variable is constant, so the correlation is undefined.", nameof(x));
        }

        return Math.Clamp(sxy / (Math.Sqrt(sxx) * Math.Sqrt(syy)), -1.0, 1.0);
    }

    private static void Check(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Alternative alternative)
    {
        Guard.SameLength(x, y, nameof(y));
        Guard.Sample(x, 3, nameof(x));
        Guard.Sample(y, 3, nameof(y));
        Guard.Defined(alternative, nameof(alternative));
    }

    /// <summary>Σ f(t) over tie groups of size t ≥ 2 (groups of one contribute zero to every term R uses).</summary>
    private static double TieSum(int[] tieGroupSizes, Func<double, double> term)
    {
        var sum = 0.0;
        foreach (var size in tieGroupSizes)
        {
            if (size > 1)
            {
                sum += term(size);
            }
        }

        return sum;
    }
}
