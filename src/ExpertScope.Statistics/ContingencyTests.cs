namespace ExpertScope.Statistics;

/// <summary>Result of Fisher's exact test on a 2×2 table.</summary>
/// <param name="PValue">The p-value for the requested alternative.</param>
/// <param name="OddsRatio">
/// The conditional maximum-likelihood odds ratio (0 or +∞ at the edges of the support), found by R's
/// <c>uniroot</c> steps so that it reproduces R's reported value (accurate to about 1e-4 relative, as R's is).
/// </param>
public sealed record FisherExactResult(double PValue, double OddsRatio);

/// <summary>Result of a chi-squared test.</summary>
/// <param name="Statistic">The X² statistic.</param>
/// <param name="DegreesOfFreedom">(rows − 1)(columns − 1).</param>
/// <param name="PValue">The upper-tail chi-squared p-value.</param>
public sealed record ChiSquaredResult(double Statistic, int DegreesOfFreedom, double PValue);

/// <summary>Tests on counts: Fisher's exact test, chi-squared tests and the exact binomial test, matching R.</summary>
public static class ContingencyTests
{
    /// <summary>R's relative slack when comparing probabilities for "as or less likely than observed".</summary>
    private const double RelativeError = 1 + 1e-7;

    /// <summary>
    /// Fisher's exact test of independence on the 2×2 table [[a, b], [c, d]], as R's <c>fisher.test</c>.
    /// The two-sided p-value sums the probabilities of all tables (same margins) no more likely than the observed
    /// one; the one-sided ones are hypergeometric tails of a. <see cref="Alternative.Greater"/> means odds ratio &gt; 1.
    /// </summary>
    /// <param name="a">Row 1, column 1.</param>
    /// <param name="b">Row 1, column 2.</param>
    /// <param name="c">Row 2, column 1.</param>
    /// <param name="d">Row 2, column 2.</param>
    /// <param name="alternative">The alternative hypothesis about the odds ratio.</param>
    /// <returns>The p-value and the conditional MLE of the odds ratio.</returns>
    /// <exception cref="ArgumentException">A count is negative or the table is empty.</exception>
    public static FisherExactResult FisherExact2x2(int a, int b, int c, int d, Alternative alternative = Alternative.TwoSided)
    {
        CheckCounts([a, b, c, d]);
        Guard.Defined(alternative, nameof(alternative));
        if (a + b + c + d == 0)
        {
            throw new ArgumentException("The table is empty.", nameof(a));
        }

        var hypergeometric = new NoncentralHypergeometric(column1: a + c, column2: b + d, row1: a + b);
        var density = hypergeometric.Density(1.0);
        var observedIndex = a - hypergeometric.Low;
        double p;
        switch (alternative)
        {
            case Alternative.Less:
                p = SumRange(density, 0, observedIndex);
                break;
            case Alternative.Greater:
                p = SumRange(density, observedIndex, density.Length - 1);
                break;
            default:
                var threshold = density[observedIndex] * RelativeError;
                p = 0.0;
                foreach (var value in density)
                {
                    if (value <= threshold)
                    {
                        p += value;
                    }
                }

                break;
        }

        return new FisherExactResult(Math.Min(1.0, p), hypergeometric.ConditionalMle(a));
    }

    /// <summary>
    /// Pearson's chi-squared test on a 2×2 table with Yates' continuity correction, as R's
    /// <c>chisq.test(matrix(c(a, c, b, d), 2), correct = TRUE)</c>: X² = Σ (|O − E| − min(0.5, min|O − E|))² / E.
    /// </summary>
    /// <param name="a">Row 1, column 1.</param>
    /// <param name="b">Row 1, column 2.</param>
    /// <param name="c">Row 2, column 1.</param>
    /// <param name="d">Row 2, column 2.</param>
    /// <returns>X², df = 1 and the p-value.</returns>
    /// <exception cref="ArgumentException">A count is negative, or a row or column total is zero.</exception>
    public static ChiSquaredResult ChiSquared2x2Yates(int a, int b, int c, int d) =>
        ChiSquared(new double[,] { { a, b }, { c, d } }, yates: true);

    /// <summary>
    /// Pearson's chi-squared test of independence on an r×c table, as R's <c>chisq.test(table, correct)</c>.
    /// </summary>
    /// <param name="table">Counts indexed [row, column]; at least 2×2, non-negative, no empty row or column.</param>
    /// <param name="yates">Apply Yates' continuity correction; R does this only for 2×2 tables, and so do we.</param>
    /// <returns>X², (r − 1)(c − 1) and the p-value.</returns>
    /// <exception cref="ArgumentException">The table is smaller than 2×2, has a negative count, or a zero margin.</exception>
    public static ChiSquaredResult ChiSquared(double[,] table, bool yates = false)
    {
        ArgumentNullException.ThrowIfNull(table);
        var rows = table.GetLength(0);
        var columns = table.GetLength(1);
        if (rows < 2 || columns < 2)
        {
            throw new ArgumentException($"A chi-squared test needs at least a 2×2 table, not {rows}×{columns}.", nameof(table));
        }

        var rowTotals = new double[rows];
        var columnTotals = new double[columns];
        var total = 0.0;
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < columns; j++)
            {
                var count = table[i, j];
                if (!(count >= 0.0) || double.IsInfinity(count))
                {
                    throw new ArgumentException($"Cell [{i}, {j}] holds {count}; counts must be finite and non-negative.", nameof(table));
                }

                rowTotals[i] += count;
                columnTotals[j] += count;
                total += count;
            }
        }

        if (rowTotals.Contains(0.0) || columnTotals.Contains(0.0))
        {
            throw new ArgumentException("A row or column total is zero, so some expected counts are zero.", nameof(table));
        }

        var expected = new double[rows, columns];
        var correction = 0.0;
        var useYates = yates && rows == 2 && columns == 2;
        if (useYates)
        {
            correction = 0.5;
        }

        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < columns; j++)
            {
                expected[i, j] = rowTotals[i] * columnTotals[j] / total;
                if (useYates)
                {
                    correction = Math.Min(correction, Math.Abs(table[i, j] - expected[i, j]));
                }
            }
        }

        var statistic = 0.0;
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < columns; j++)
            {
                var deviation = Math.Abs(table[i, j] - expected[i, j]) - correction;
                statistic += deviation * deviation / expected[i, j];
            }
        }

        var df = (rows - 1) * (columns - 1);
        return new ChiSquaredResult(statistic, df, Distributions.ChiSquaredUpperTail(statistic, df));
    }

    /// <summary>
    /// Exact binomial test of H₀: success probability = <paramref name="nullProbability"/>, as R's
    /// <c>binom.test(successes, trials, p)</c>. The two-sided p-value adds the opposite tail's outcomes that are
    /// no more likely than the observed one.
    /// </summary>
    /// <param name="successes">Observed successes, 0..trials.</param>
    /// <param name="trials">Number of trials, at least 1.</param>
    /// <param name="nullProbability">The success probability under H₀, in [0, 1].</param>
    /// <param name="alternative">The alternative (<see cref="Alternative.Greater"/>: true probability is larger).</param>
    /// <returns>The p-value.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Counts or probability are out of range.</exception>
    public static double Binomial(int successes, int trials, double nullProbability, Alternative alternative = Alternative.TwoSided)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(trials, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(successes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(successes, trials);
        Guard.Probability(nullProbability, nameof(nullProbability));
        Guard.Defined(alternative, nameof(alternative));

        var x = successes;
        var n = trials;
        var p = nullProbability;
        if (alternative == Alternative.Less)
        {
            return Distributions.BinomialRange(0, x, n, p);
        }

        if (alternative == Alternative.Greater)
        {
            return Distributions.BinomialRange(x, n, n, p);
        }

        if (p == 0.0)
        {
            return x == 0 ? 1.0 : 0.0;
        }

        if (p == 1.0)
        {
            return x == n ? 1.0 : 0.0;
        }

        var threshold = Distributions.BinomialPmf(x, n, p) * RelativeError;
        var mean = n * p;
        if (x == mean)
        {
            return 1.0;
        }

        double pValue;
        if (x < mean)
        {
            // Count the outcomes above the mean that are no more likely than x; they form the far upper tail.
            var count = 0;
            for (var i = (int)Math.Ceiling(mean); i <= n; i++)
            {
                if (Distributions.BinomialPmf(i, n, p) <= threshold)
                {
                    count++;
                }
            }

            pValue = Distributions.BinomialRange(0, x, n, p) + Distributions.BinomialRange(n - count + 1, n, n, p);
        }
        else
        {
            var count = 0;
            for (var i = 0; i <= (int)Math.Floor(mean); i++)
            {
                if (Distributions.BinomialPmf(i, n, p) <= threshold)
                {
                    count++;
                }
            }

            pValue = Distributions.BinomialRange(0, count - 1, n, p) + Distributions.BinomialRange(x, n, n, p);
        }

        return Math.Min(1.0, pValue);
    }

    private static void CheckCounts(ReadOnlySpan<int> counts)
    {
        foreach (var count in counts)
        {
            if (count < 0)
            {
                throw new ArgumentException($"Counts must be non-negative, got {count}.", nameof(counts));
            }
        }
    }

    private static double SumRange(double[] values, int from, int to)
    {
        var sum = 0.0;
        for (var i = from; i <= to; i++)
        {
            sum += values[i];
        }

        return sum;
    }
}
