namespace ExpertScope.Statistics;

/// <summary>One stratum's 2×2 table [[a, b], [c, d]] (rows: group 1, group 2; columns: outcome yes, no).</summary>
/// <param name="A">Group 1, yes.</param>
/// <param name="B">Group 1, no.</param>
/// <param name="C">Group 2, yes.</param>
/// <param name="D">Group 2, no.</param>
public readonly record struct Stratum2x2(double A, double B, double C, double D)
{
    /// <summary>a + b + c + d.</summary>
    public double Total => A + B + C + D;
}

/// <summary>Result of the Cochran–Mantel–Haenszel test on 2×2×K tables.</summary>
/// <param name="Statistic">The Mantel-Haenszel X² (df 1), continuity-corrected when asked; 0 when no stratum is informative.</param>
/// <param name="PValue">Its p-value for the alternative; 1 when no stratum is informative.</param>
/// <param name="CommonOddsRatio">The Mantel-Haenszel common odds ratio Σ(ad/n) / Σ(bc/n) (NaN when both sums are 0).</param>
/// <param name="Difference">Σ a − Σ E[a]: observed minus expected group-1 "yes" count (its sign is the direction).</param>
/// <param name="InformativeStrata">Strata with non-zero variance of a (both groups and both outcomes present).</param>
public sealed record MantelHaenszelResult(double Statistic, double PValue, double CommonOddsRatio, double Difference, int InformativeStrata);

/// <summary>
/// The Cochran–Mantel–Haenszel test of conditional independence in 2×2×K tables, as R's
/// <c>mantelhaen.test(x, correct = TRUE)</c> (classical 2×2×K branch): Δ = Σₖ aₖ − Σₖ r₁ₖ s₁ₖ / nₖ, X² =
/// (|Δ| − ½)² / Σₖ r₁ₖ r₂ₖ s₁ₖ s₂ₖ / (nₖ² (nₖ − 1)) with the ½ only when |Δ| ≥ ½, upper chi-squared tail on one degree
/// of freedom (two-sided), or the normal tail of z = sign(Δ)·√X² for one-sided alternatives.
/// </summary>
/// <remarks>
/// R refuses strata with fewer than two observations. Such a stratum, and any stratum whose variance term is zero
/// (one group or one outcome absent), adds nothing to Δ, to the variance or to the odds-ratio sums, so they are left
/// out here and R on the remaining strata gives the same numbers. With no informative stratum R returns NaN; this
/// returns X² = 0 and p = 1 (nothing to test), so multiple-comparison corrections stay defined.
/// </remarks>
public static class MantelHaenszel
{
    /// <summary>Runs the test over <paramref name="strata"/>.</summary>
    /// <param name="strata">The K tables; counts must be finite and non-negative.</param>
    /// <param name="correct">Continuity correction (R's default, TRUE).</param>
    /// <param name="alternative">Two-sided (chi-squared) or one-sided on the common odds ratio.</param>
    /// <exception cref="ArgumentException">A count is negative or not finite.</exception>
    public static MantelHaenszelResult Test(IEnumerable<Stratum2x2> strata, bool correct = true, Alternative alternative = Alternative.TwoSided)
    {
        ArgumentNullException.ThrowIfNull(strata);
        Guard.Defined(alternative, nameof(alternative));
        double delta = 0, variance = 0, diagonal = 0, offDiagonal = 0;
        int informative = 0;
        foreach (var s in strata)
        {
            if (!IsCount(s.A) || !IsCount(s.B) || !IsCount(s.C) || !IsCount(s.D))
            {
                throw new ArgumentException($"A stratum holds {s}; counts must be finite and non-negative.", nameof(strata));
            }

            double n = s.Total;
            double row1 = s.A + s.B, row2 = s.C + s.D, column1 = s.A + s.C, column2 = s.B + s.D;
            double term = n < 2 ? 0 : row1 * row2 * column1 * column2 / (n * n * (n - 1));
            if (term <= 0)
            {
                continue;
            }

            informative++;
            delta += s.A - row1 * column1 / n;
            variance += term;
            diagonal += s.A * s.D / n;
            offDiagonal += s.B * s.C / n;
        }

        double oddsRatio = diagonal == 0 && offDiagonal == 0 ? double.NaN : diagonal / offDiagonal;
        if (informative == 0)
        {
            return new MantelHaenszelResult(0, 1, oddsRatio, 0, 0);
        }

        double yates = correct && Math.Abs(delta) >= 0.5 ? 0.5 : 0;
        double statistic = Math.Pow(Math.Abs(delta) - yates, 2) / variance;
        double z = Math.Sign(delta) * Math.Sqrt(statistic);
        double p = alternative switch
        {
            Alternative.Greater => Distributions.NormalUpperTail(z),
            Alternative.Less => Distributions.NormalCdf(z),
            _ => Distributions.ChiSquaredUpperTail(statistic, 1),
        };
        return new MantelHaenszelResult(statistic, p, oddsRatio, delta, informative);
    }

    private static bool IsCount(double value) => value >= 0 && double.IsFinite(value);
}
