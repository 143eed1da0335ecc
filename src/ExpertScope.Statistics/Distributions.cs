using MathNet.Numerics;

namespace ExpertScope.Statistics;

/// <summary>
/// Cumulative distribution functions used by the tests. Each tail is computed directly (never as 1 - the other
/// tail), so tiny p-values keep their relative precision, as R's <c>lower.tail = FALSE</c> does.
/// </summary>
public static class Distributions
{
    /// <summary>The standard normal CDF Φ(z), R's <c>pnorm(z)</c>.</summary>
    /// <param name="z">The quantile.</param>
    /// <returns>P(Z ≤ z).</returns>
    public static double NormalCdf(double z) => 0.5 * SpecialFunctions.Erfc(-z / Math.Sqrt(2.0));

    /// <summary>The standard normal upper tail, R's <c>pnorm(z, lower.tail = FALSE)</c>.</summary>
    /// <param name="z">The quantile.</param>
    /// <returns>P(Z &gt; z).</returns>
    public static double NormalUpperTail(double z) => 0.5 * SpecialFunctions.Erfc(z / Math.Sqrt(2.0));

    /// <summary>The Student t CDF with <paramref name="degreesOfFreedom"/> (possibly fractional), R's <c>pt(t, df)</c>.</summary>
    /// <param name="t">The quantile.</param>
    /// <param name="degreesOfFreedom">Degrees of freedom, &gt; 0.</param>
    /// <returns>P(T ≤ t).</returns>
    public static double StudentTCdf(double t, double degreesOfFreedom) => StudentTUpperTail(-t, degreesOfFreedom);

    /// <summary>The Student t upper tail, R's <c>pt(t, df, lower.tail = FALSE)</c>.</summary>
    /// <param name="t">The quantile.</param>
    /// <param name="degreesOfFreedom">Degrees of freedom, &gt; 0.</param>
    /// <returns>P(T &gt; t).</returns>
    public static double StudentTUpperTail(double t, double degreesOfFreedom)
    {
        if (!(degreesOfFreedom > 0.0))
        {
            throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "Degrees of freedom must be positive.");
        }

        if (double.IsNaN(t))
        {
            throw new ArgumentException("The quantile is NaN.", nameof(t));
        }

        if (double.IsInfinity(t))
        {
            return t > 0 ? 0.0 : 1.0;
        }

        // P(|T| > |t|) = I_h(df/2, 1/2) with h = df / (df + t²). MathNet's StudentT.CDF forms 1 - I for one side,
        // which loses the relative precision of small upper tails, so both tails are taken from I directly.
        var h = degreesOfFreedom / (degreesOfFreedom + (t * t));
        var twoTail = SpecialFunctions.BetaRegularized(degreesOfFreedom / 2.0, 0.5, h);
        return t > 0 ? 0.5 * twoTail : 1.0 - (0.5 * twoTail);
    }

    /// <summary>The chi-squared upper tail, R's <c>pchisq(x, df, lower.tail = FALSE)</c>.</summary>
    /// <param name="x">The statistic, ≥ 0.</param>
    /// <param name="degreesOfFreedom">Degrees of freedom, &gt; 0.</param>
    /// <returns>P(X &gt; x).</returns>
    public static double ChiSquaredUpperTail(double x, double degreesOfFreedom)
    {
        if (!(degreesOfFreedom > 0.0))
        {
            throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "Degrees of freedom must be positive.");
        }

        if (double.IsNaN(x))
        {
            throw new ArgumentException("The statistic is NaN.", nameof(x));
        }

        return x <= 0.0 ? 1.0 : SpecialFunctions.GammaUpperRegularized(degreesOfFreedom / 2.0, x / 2.0);
    }

    /// <summary>The binomial probability mass P(X = k) for X ~ Binomial(n, p), R's <c>dbinom(k, n, p)</c>.</summary>
    /// <param name="successes">k.</param>
    /// <param name="trials">n.</param>
    /// <param name="probability">p.</param>
    /// <returns>The probability of exactly <paramref name="successes"/> successes.</returns>
    public static double BinomialPmf(int successes, int trials, double probability)
    {
        if (successes < 0 || successes > trials)
        {
            return 0.0;
        }

        if (probability == 0.0)
        {
            return successes == 0 ? 1.0 : 0.0;
        }

        if (probability == 1.0)
        {
            return successes == trials ? 1.0 : 0.0;
        }

        // Log space keeps large n from overflowing the binomial coefficient.
        return Math.Exp(
            SpecialFunctions.BinomialLn(trials, successes)
            + (successes * Math.Log(probability))
            + ((trials - successes) * Math.Log(1.0 - probability)));
    }

    /// <summary>Sums binomial masses for k in [<paramref name="from"/>, <paramref name="to"/>].</summary>
    /// <remarks>
    /// Summing the masses of the requested tail (instead of MathNet's CDF and 1 - CDF) keeps small tails precise.
    /// </remarks>
    internal static double BinomialRange(int from, int to, int trials, double probability)
    {
        from = Math.Max(from, 0);
        to = Math.Min(to, trials);
        var sum = 0.0;
        for (var k = from; k <= to; k++)
        {
            sum += BinomialPmf(k, trials, probability);
        }

        return Math.Min(sum, 1.0);
    }
}
