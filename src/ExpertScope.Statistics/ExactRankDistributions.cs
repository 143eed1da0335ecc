namespace ExpertScope.Statistics;

/// <summary>
/// Exact null distributions of the Wilcoxon statistics, as frequency tables. MathNet has no Wilcoxon distribution,
/// so these are counted here by subset-sum dynamic programming (R's <c>pwilcox</c> / <c>psignrank</c> count the
/// same frequencies). Counts are held as doubles: they only ever add, so rounding stays at the 1e-16 level even
/// when the counts exceed 2⁶³.
/// </summary>
internal static class ExactRankDistributions
{
    /// <summary>Frequencies of the Mann-Whitney U of a sample of <paramref name="m"/> against one of <paramref name="n"/>; index u = 0..m·n.</summary>
    public static double[] RankSumCounts(int m, int n)
    {
        // U of x against y has the same distribution as U of y against x, so count subsets of the smaller size.
        (m, n) = (Math.Min(m, n), Math.Max(m, n));
        var total = m + n;
        var minSum = m * (m + 1) / 2;
        var maxSum = minSum + (m * n);

        // ways[k, s]: subsets of size k drawn from the ranks seen so far whose rank sum is s.
        var ways = new double[m + 1, maxSum + 1];
        ways[0, 0] = 1.0;
        for (var rank = 1; rank <= total; rank++)
        {
            for (var k = Math.Min(rank, m); k >= 1; k--)
            {
                for (var s = maxSum; s >= rank; s--)
                {
                    ways[k, s] += ways[k - 1, s - rank];
                }
            }
        }

        var counts = new double[(m * n) + 1];
        for (var u = 0; u < counts.Length; u++)
        {
            counts[u] = ways[m, u + minSum];
        }

        return counts;
    }

    /// <summary>Rough number of inner-loop steps <see cref="RankSumCounts"/> takes, to refuse hopeless requests.</summary>
    public static double RankSumCost(int m, int n) => (double)(m + n) * Math.Min(m, n) * ((double)m * n);

    /// <summary>Frequencies of the signed-rank statistic V for <paramref name="n"/> non-zero differences; index v = 0..n(n+1)/2.</summary>
    public static double[] SignedRankCounts(int n)
    {
        var maxSum = n * (n + 1) / 2;
        var counts = new double[maxSum + 1];
        counts[0] = 1.0;
        for (var rank = 1; rank <= n; rank++)
        {
            for (var s = maxSum; s >= rank; s--)
            {
                counts[s] += counts[s - rank];
            }
        }

        return counts;
    }

    /// <summary>P(S ≤ q) from a frequency table.</summary>
    public static double LowerTail(double[] counts, int q) => Tail(counts, 0, q);

    /// <summary>P(S ≥ q) from a frequency table.</summary>
    public static double UpperTail(double[] counts, int q) => Tail(counts, q, counts.Length - 1);

    private static double Tail(double[] counts, int from, int to)
    {
        from = Math.Max(from, 0);
        to = Math.Min(to, counts.Length - 1);
        double all = 0.0, part = 0.0;
        for (var i = 0; i < counts.Length; i++)
        {
            all += counts[i];
            if (i >= from && i <= to)
            {
                part += counts[i];
            }
        }

        return part / all;
    }
}
