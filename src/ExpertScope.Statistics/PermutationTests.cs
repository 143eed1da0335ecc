namespace ExpertScope.Statistics;

/// <summary>Result of a permutation test of the difference in means.</summary>
/// <param name="Observed">x̄ − ȳ for the observed split.</param>
/// <param name="PValueTwoSided">Share of splits with |x̄* − ȳ*| ≥ |observed|.</param>
/// <param name="PValueGreater">Share of splits with x̄* − ȳ* ≥ observed.</param>
/// <param name="PValueLess">Share of splits with x̄* − ȳ* ≤ observed.</param>
/// <param name="Permutations">Splits enumerated (exact) or random resamples drawn (Monte Carlo).</param>
/// <param name="IsExact">True for full enumeration, false for a Monte-Carlo estimate.</param>
public sealed record PermutationTestResult(
    double Observed,
    double PValueTwoSided,
    double PValueGreater,
    double PValueLess,
    long Permutations,
    bool IsExact);

/// <summary>Permutation tests of the difference in means between two samples.</summary>
/// <remarks>
/// "At least as extreme" allows a rounding slack of 1e-10 × the largest |value| in the pooled sample: the same
/// mean difference summed in another order can differ in the last bits, and such splits must count as ties.
/// </remarks>
public static class PermutationTests
{
    /// <summary>Full enumeration is refused above this many splits; use <see cref="MonteCarloMeanDifference"/> instead.</summary>
    public const long DefaultMaxPermutations = 20_000_000;

    /// <summary>
    /// Exact permutation test: enumerates every way of choosing nₓ of the pooled values as "x" (C(nₓ+n_y, nₓ)
    /// splits, the observed one included) and reports the share at least as extreme as the observed x̄ − ȳ.
    /// </summary>
    /// <param name="x">First sample (at least one value).</param>
    /// <param name="y">Second sample (at least one value).</param>
    /// <param name="maxPermutations">Refuse (throw) when the number of splits exceeds this.</param>
    /// <returns>The observed difference, the three p-values and the number of splits.</returns>
    /// <exception cref="ArgumentException">A sample is empty or non-finite, or there are more splits than <paramref name="maxPermutations"/>.</exception>
    public static PermutationTestResult ExactMeanDifference(
        ReadOnlySpan<double> x,
        ReadOnlySpan<double> y,
        long maxPermutations = DefaultMaxPermutations)
    {
        Guard.Sample(x, 1, nameof(x));
        Guard.Sample(y, 1, nameof(y));
        var splits = CountSplits(x.Length + y.Length, x.Length);
        if (splits > maxPermutations)
        {
            throw new ArgumentException(
                $"Exact enumeration needs {splits:G4} splits, more than the limit of {maxPermutations}; use the Monte-Carlo test.",
                nameof(maxPermutations));
        }

        var pooled = Pool(x, y, out var total, out var slack);
        var nx = x.Length;
        var ny = y.Length;
        var observed = Difference(SumOf(x), total, nx, ny);
        var counter = new ExtremeCounter(observed, slack);

        // Depth-first over index combinations, carrying the running sum of the chosen "x" values.
        Enumerate(0, 0, 0.0);
        return counter.ToResult(splits, isExact: true);

        void Enumerate(int depth, int start, double partialSum)
        {
            if (depth == nx)
            {
                counter.Add(Difference(partialSum, total, nx, ny));
                return;
            }

            for (var i = start; i <= pooled.Length - (nx - depth); i++)
            {
                Enumerate(depth + 1, i + 1, partialSum + pooled[i]);
            }
        }
    }

    /// <summary>
    /// Monte-Carlo permutation test: draws <paramref name="resamples"/> random splits with a seeded generator and
    /// reports (count + 1) / (resamples + 1) for each alternative, the usual unbiased estimate that counts the
    /// observed split. The same seed gives the same result.
    /// </summary>
    /// <param name="x">First sample (at least one value).</param>
    /// <param name="y">Second sample (at least one value).</param>
    /// <param name="resamples">Number of random splits (at least 1).</param>
    /// <param name="seed">Seed for <see cref="Random"/>.</param>
    /// <returns>The observed difference, the three p-values and the number of resamples.</returns>
    /// <exception cref="ArgumentException">A sample is empty or non-finite.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="resamples"/> is less than 1.</exception>
    public static PermutationTestResult MonteCarloMeanDifference(
        ReadOnlySpan<double> x,
        ReadOnlySpan<double> y,
        int resamples,
        int seed)
    {
        Guard.Sample(x, 1, nameof(x));
        Guard.Sample(y, 1, nameof(y));
        ArgumentOutOfRangeException.ThrowIfLessThan(resamples, 1);

        var pooled = Pool(x, y, out var total, out var slack);
        var nx = x.Length;
        var ny = y.Length;
        var observed = Difference(SumOf(x), total, nx, ny);
        var counter = new ExtremeCounter(observed, slack);
        var random = new Random(seed);
        for (var r = 0; r < resamples; r++)
        {
            // A partial Fisher–Yates shuffle: the first nₓ slots become the permuted "x".
            var sum = 0.0;
            for (var i = 0; i < nx; i++)
            {
                var j = random.Next(i, pooled.Length);
                (pooled[i], pooled[j]) = (pooled[j], pooled[i]);
                sum += pooled[i];
            }

            counter.Add(Difference(sum, total, nx, ny));
        }

        return counter.ToResult(resamples, isExact: false);
    }

    private static double[] Pool(ReadOnlySpan<double> x, ReadOnlySpan<double> y, out double total, out double slack)
    {
        var pooled = new double[x.Length + y.Length];
        x.CopyTo(pooled);
        y.CopyTo(pooled.AsSpan(x.Length));
        total = SumOf(pooled);
        var largest = 0.0;
        foreach (var v in pooled)
        {
            largest = Math.Max(largest, Math.Abs(v));
        }

        slack = 1e-10 * Math.Max(largest, double.Epsilon);
        return pooled;
    }

    private static double SumOf(ReadOnlySpan<double> values)
    {
        var sum = 0.0;
        foreach (var v in values)
        {
            sum += v;
        }

        return sum;
    }

    private static double Difference(double sumX, double total, int nx, int ny) => (sumX / nx) - ((total - sumX) / ny);

    private static long CountSplits(int n, int k)
    {
        // C(n, k) by the multiplicative formula, saturating instead of overflowing.
        k = Math.Min(k, n - k);
        double count = 1.0;
        for (var i = 1; i <= k; i++)
        {
            count = count * (n - k + i) / i;
        }

        return count >= long.MaxValue ? long.MaxValue : (long)Math.Round(count);
    }

    /// <summary>Counts how many permuted differences are at least as extreme as the observed one, per alternative.</summary>
    private sealed class ExtremeCounter(double observed, double slack)
    {
        private long _twoSided;
        private long _greater;
        private long _less;
        private long _total;

        public void Add(double difference)
        {
            _total++;
            if (Math.Abs(difference) >= Math.Abs(observed) - slack)
            {
                _twoSided++;
            }

            if (difference >= observed - slack)
            {
                _greater++;
            }

            if (difference <= observed + slack)
            {
                _less++;
            }
        }

        public PermutationTestResult ToResult(long permutations, bool isExact)
        {
            // Monte Carlo counts the observed split once more, so no estimate is ever exactly zero.
            var offset = isExact ? 0 : 1;
            double denominator = _total + offset;
            return new PermutationTestResult(
                observed,
                (_twoSided + offset) / denominator,
                (_greater + offset) / denominator,
                (_less + offset) / denominator,
                permutations,
                isExact);
        }
    }
}
