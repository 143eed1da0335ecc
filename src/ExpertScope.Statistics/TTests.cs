namespace ExpertScope.Statistics;

/// <summary>Result of a t-test.</summary>
/// <param name="T">The t statistic.</param>
/// <param name="DegreesOfFreedom">Degrees of freedom (Welch–Satterthwaite for the Welch test, so usually fractional).</param>
/// <param name="PValue">The p-value for the requested alternative.</param>
/// <param name="MeanDifference">x̄ − ȳ.</param>
public sealed record TTestResult(double T, double DegreesOfFreedom, double PValue, double MeanDifference);

/// <summary>t-tests, matching R's <c>t.test</c>.</summary>
public static class TTests
{
    /// <summary>
    /// Welch's unequal-variance two-sample t-test, as R's <c>t.test(x, y, var.equal = FALSE)</c>:
    /// t = (x̄ − ȳ) / √(sₓ²/nₓ + s_y²/n_y), df by Welch–Satterthwaite.
    /// </summary>
    /// <param name="x">First sample (at least two values).</param>
    /// <param name="y">Second sample (at least two values).</param>
    /// <param name="alternative">The alternative (<see cref="Alternative.Greater"/>: mean of x is larger).</param>
    /// <returns>t, df and the p-value.</returns>
    /// <exception cref="ArgumentException">A sample has fewer than two values, a non-finite value, or both samples are constant.</exception>
    public static TTestResult Welch(ReadOnlySpan<double> x, ReadOnlySpan<double> y, Alternative alternative = Alternative.TwoSided)
    {
        Guard.Sample(x, 2, nameof(x));
        Guard.Sample(y, 2, nameof(y));
        Guard.Defined(alternative, nameof(alternative));

        var meanX = Descriptive.Mean(x);
        var meanY = Descriptive.Mean(y);
        var squaredErrorX = Descriptive.Variance(x) / x.Length;
        var squaredErrorY = Descriptive.Variance(y) / y.Length;
        var standardError = Math.Sqrt(squaredErrorX + squaredErrorY);
        if (!(standardError > 0.0))
        {
            throw new ArgumentException("Both samples are constant, so the t statistic is undefined.", nameof(x));
        }

        var df = Math.Pow(standardError, 4)
            / ((squaredErrorX * squaredErrorX / (x.Length - 1)) + (squaredErrorY * squaredErrorY / (y.Length - 1)));
        var t = (meanX - meanY) / standardError;
        return new TTestResult(t, df, PValue(t, df, alternative), meanX - meanY);
    }

    /// <summary>The t-distribution p-value of a statistic, as R's t.test and cor.test compute it.</summary>
    internal static double PValue(double t, double df, Alternative alternative) => alternative switch
    {
        Alternative.Greater => Distributions.StudentTUpperTail(t, df),
        Alternative.Less => Distributions.StudentTCdf(t, df),
        _ => 2.0 * Distributions.StudentTCdf(-Math.Abs(t), df),
    };
}
