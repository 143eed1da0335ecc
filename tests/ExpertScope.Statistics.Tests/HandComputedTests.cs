namespace ExpertScope.Statistics.Tests;

/// <summary>Small cases whose answers follow from closed forms or counting, complementing the R oracle.</summary>
public sealed class HandComputedTests
{
    [Theory]
    [InlineData(-3.0)]
    [InlineData(-0.4)]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(12.5)]
    public void StudentTCdf_OneDegreeOfFreedomIsCauchy(double t) =>
        Assert.Equal(0.5 + (Math.Atan(t) / Math.PI), Distributions.StudentTCdf(t, 1.0), 13);

    [Theory]
    [InlineData(-2.0)]
    [InlineData(0.3)]
    [InlineData(4.0)]
    public void StudentTCdf_TwoDegreesOfFreedomClosedForm(double t) =>
        Assert.Equal(0.5 + (t / (2.0 * Math.Sqrt(2.0 + (t * t)))), Distributions.StudentTCdf(t, 2.0), 13);

    [Fact]
    public void StudentTUpperTail_KeepsPrecisionFarOut()
    {
        // Cauchy upper tail 1/2 − atan(t)/π = atan(1/t)/π, about 1/(π t) for large t.
        var t = 1e6;
        var expected = Math.Atan(1.0 / t) / Math.PI;
        Assert.True(Math.Abs(Distributions.StudentTUpperTail(t, 1.0) - expected) <= 1e-12 * expected);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(3.0)]
    [InlineData(40.0)]
    public void ChiSquaredUpperTail_ClosedFormsForTwoAndFourDf(double x)
    {
        Assert.Equal(1.0, Distributions.ChiSquaredUpperTail(x, 2.0) / Math.Exp(-x / 2.0), 12);
        Assert.Equal(1.0, Distributions.ChiSquaredUpperTail(x, 4.0) / (Math.Exp(-x / 2.0) * (1.0 + (x / 2.0))), 12);
    }

    [Fact]
    public void NormalTails_AreSymmetricAndPreciseFarOut()
    {
        Assert.Equal(Distributions.NormalUpperTail(2.7), Distributions.NormalCdf(-2.7));
        Assert.Equal(0.5, Distributions.NormalCdf(0.0));

        // Mills ratio: φ(z)/z · (1 − 1/z² + 3/z⁴ − 15/z⁶ + 105/z⁸) is within 945/z¹⁰ ≈ 1e-10 relative of the tail.
        var z = 20.0;
        var density = Math.Exp(-z * z / 2.0) / Math.Sqrt(2.0 * Math.PI);
        var series = density / z
            * (1.0 - (1.0 / (z * z)) + (3.0 / Math.Pow(z, 4)) - (15.0 / Math.Pow(z, 6)) + (105.0 / Math.Pow(z, 8)));
        Assert.Equal(1.0, Distributions.NormalUpperTail(z) / series, 9);
    }

    [Fact]
    public void Ranks_AverageTies()
    {
        Assert.Equal([3.0, 1.5, 4.0, 1.5, 5.0], Ranking.AverageRanks([3, 1, 4, 1, 5]));
    }

    [Fact]
    public void ExactDistributions_MatchCounting()
    {
        // Signed ranks of n = 3: subsets of {1, 2, 3} by sum 0..6 → 1, 1, 1, 2, 1, 1, 1.
        Assert.Equal([1.0, 1, 1, 2, 1, 1, 1], ExactRankDistributions.SignedRankCounts(3));

        // U for m = n = 2: the 6 ways to place x among 4 ranks give U = 0, 1, 2, 2, 3, 4.
        Assert.Equal([1.0, 1, 2, 1, 1], ExactRankDistributions.RankSumCounts(2, 2));

        // m = 1, n = 3: the single x can have 0..3 values of y below it, one way each.
        Assert.Equal([1.0, 1, 1, 1], ExactRankDistributions.RankSumCounts(1, 3));
        Assert.Equal(ExactRankDistributions.RankSumCounts(3, 5), ExactRankDistributions.RankSumCounts(5, 3));
    }

    [Fact]
    public void MannWhitney_ForcedExactIsSymmetricInTheSamples()
    {
        // 60 against 10 distinct values: beyond R's default exact rule, so exact must be forced.
        var x = Enumerable.Range(0, 60).Select(i => (i * 7.3) % 101).ToArray();
        var y = Enumerable.Range(0, 10).Select(i => 20.05 + (i * 9.1)).ToArray();
        var xy = RankTests.MannWhitney(x, y, Alternative.Greater, exact: true);
        var yx = RankTests.MannWhitney(y, x, Alternative.Less, exact: true);
        Assert.True(xy.IsExact && yx.IsExact);
        Assert.Equal(60.0 * 10.0, xy.W + yx.W);
        Assert.Equal(xy.PValue, yx.PValue, 14);
        Assert.False(RankTests.MannWhitney(x, y).IsExact);
    }

    [Fact]
    public void MannWhitney_RefusesToCountHugeExactDistributions()
    {
        var x = Enumerable.Range(0, 400).Select(i => (double)i).ToArray();
        var y = Enumerable.Range(0, 400).Select(i => i + 0.5).ToArray();
        Assert.Throws<ArgumentException>(() => RankTests.MannWhitney(x, y, exact: true));
    }

    [Fact]
    public void MannWhitney_SingleValues()
    {
        // One x below one y: U = 0, P(U ≤ 0) = 1/2, doubled to 1.
        var result = RankTests.MannWhitney([1.0], [2.0]);
        Assert.Equal(0.0, result.W);
        Assert.True(result.IsExact);
        Assert.Equal(1.0, result.PValue);
        Assert.Equal(0.5, RankTests.MannWhitney([1.0], [2.0], Alternative.Less).PValue, 15);
    }

    [Fact]
    public void MannWhitney_CompleteSeparation()
    {
        // x above y in every pair: U = 3·4 = 12, only 1 of C(7, 3) = 35 arrangements is that extreme.
        var result = RankTests.MannWhitney([5, 6, 7], [1, 2, 3, 4], Alternative.Greater);
        Assert.Equal(12.0, result.W);
        Assert.Equal(1.0 / 35.0, result.PValue, 15);
    }

    [Fact]
    public void WilcoxonSignedRank_AllPositiveDifferences()
    {
        // Four positive, untied differences: V = 1 + 2 + 3 + 4 = 10, P(V ≥ 10) = 1/2⁴.
        var result = RankTests.WilcoxonSignedRank([2, 4, 6, 8], [1, 2, 3, 4], Alternative.Greater);
        Assert.Equal(10.0, result.V);
        Assert.True(result.IsExact);
        Assert.Equal(1.0 / 16.0, result.PValue, 15);
    }

    [Fact]
    public void WilcoxonSignedRank_ZerosAreDroppedAndForceTheNormalApproximation()
    {
        var result = RankTests.WilcoxonSignedRankDifferences([0, 1, 2, -3, 4]);
        Assert.Equal(4, result.NonZeroCount);
        Assert.False(result.IsExact);
        Assert.Equal(7.0, result.V); // ranks of |1|, |2|, |4| = 1 + 2 + 4
    }

    [Fact]
    public void Welch_MatchesTheFormula()
    {
        // x̄ = 2, sₓ² = 1, nₓ = 3; ȳ = 6, s_y² = 2.5, n_y = 5.
        var se2 = (1.0 / 3.0) + (2.5 / 5.0);
        var expectedT = -4.0 / Math.Sqrt(se2);
        var expectedDf = se2 * se2 / ((1.0 / 9.0 / 2.0) + (0.25 / 4.0));
        var result = TTests.Welch([1, 2, 3], [4, 5, 6, 7, 8]);
        Assert.Equal(expectedT, result.T, 13);
        Assert.Equal(expectedDf, result.DegreesOfFreedom, 12);
        Assert.Equal(2.0 * Distributions.StudentTCdf(expectedT, expectedDf), result.PValue, 14);
    }

    [Fact]
    public void ExactPermutation_ThreeSplits()
    {
        // Pool {1, 2, 3}, x takes two: differences −1.5 ({1,2}), 0 ({1,3}), 1.5 ({2,3}); observed −1.5.
        var result = PermutationTests.ExactMeanDifference([1, 2], [3]);
        Assert.Equal(-1.5, result.Observed);
        Assert.Equal(3, result.Permutations);
        Assert.Equal(1.0, result.PValueGreater);
        Assert.Equal(1.0 / 3.0, result.PValueLess, 15);
        Assert.Equal(2.0 / 3.0, result.PValueTwoSided, 15);
    }

    [Fact]
    public void MonteCarloPermutation_IsSeededAndNearTheExactAnswer()
    {
        double[] x = [0.75, 0.5, 0.875, 0.625, 1, 0.75];
        double[] y = [0.5, 0.25, 0.625, 0.375, 0.5];
        var exact = PermutationTests.ExactMeanDifference(x, y);
        var first = PermutationTests.MonteCarloMeanDifference(x, y, 20_000, seed: 5);
        var second = PermutationTests.MonteCarloMeanDifference(x, y, 20_000, seed: 5);
        Assert.Equal(first, second);
        Assert.False(first.IsExact);
        Assert.Equal(exact.Observed, first.Observed, 15);

        // The Monte-Carlo SE at p ≈ 0.02 with 20 000 draws is about 0.001.
        Assert.InRange(first.PValueTwoSided, exact.PValueTwoSided - 0.005, exact.PValueTwoSided + 0.005);
        Assert.InRange(first.PValueGreater, exact.PValueGreater - 0.005, exact.PValueGreater + 0.005);
    }

    [Fact]
    public void PAdjust_SmallHandCases()
    {
        double[] p = [0.01, 0.04, 0.03];

        // Bonferroni ×3; Holm sorted 0.01·3, 0.03·2, 0.04·1 → running max 0.03, 0.06, 0.06.
        Assert.Equal([0.03, 0.12, 0.09], MultipleComparisons.Adjust(p, PAdjustMethod.Bonferroni), new Tolerance(1e-15));
        Assert.Equal([0.03, 0.06, 0.06], MultipleComparisons.Adjust(p, PAdjustMethod.Holm), new Tolerance(1e-15));

        // BH from the top: 0.04·3/3 = 0.04, 0.03·3/2 = 0.045 → 0.04, 0.01·3/1 = 0.03.
        Assert.Equal([0.03, 0.04, 0.04], MultipleComparisons.Adjust(p, PAdjustMethod.BenjaminiHochberg), new Tolerance(1e-15));
        Assert.Empty(MultipleComparisons.Adjust([], PAdjustMethod.Holm));
    }

    [Fact]
    public void Correlations_OneSwappedPair()
    {
        double[] x = [1, 2, 3, 4];
        double[] y = [1, 3, 2, 4];

        // 5 concordant and 1 discordant pair of 6: τ = 4/6. Rank differences 0, 1, −1, 0: ρ = 1 − 6·2/(4·15) = 0.8.
        Assert.Equal(4.0 / 6.0, Correlation.Kendall(x, y).Estimate, 15);
        Assert.Equal(0.8, Correlation.Spearman(x, y).Estimate, 15);
        Assert.Equal(0.8, Correlation.Pearson(x, y).Estimate, 15);
    }

    [Fact]
    public void Fisher_EdgeOfSupportAndSymmetricTable()
    {
        // [[0, 5], [5, 0]]: P(a = 0) = 1/C(10, 5) = 1/252; a = 5 is as unlikely, so the two-sided p is 2/252.
        var edge = ContingencyTests.FisherExact2x2(0, 5, 5, 0);
        Assert.Equal(2.0 / 252.0, edge.PValue, 14);
        Assert.Equal(0.0, edge.OddsRatio);
        Assert.Equal(double.PositiveInfinity, ContingencyTests.FisherExact2x2(5, 0, 0, 5).OddsRatio);

        var symmetric = ContingencyTests.FisherExact2x2(5, 5, 5, 5);
        Assert.Equal(1.0, symmetric.OddsRatio);
        Assert.Equal(1.0, symmetric.PValue, 12);
    }

    [Fact]
    public void Binomial_HandCases()
    {
        Assert.Equal(1.0, ContingencyTests.Binomial(5, 10, 0.5));
        Assert.Equal(1.0, ContingencyTests.Binomial(0, 10, 0.5) / (2.0 / 1024.0), 14);
        Assert.Equal(1.0, ContingencyTests.Binomial(0, 10, 0.5, Alternative.Less) / (1.0 / 1024.0), 14);
        Assert.Equal(1.0, ContingencyTests.Binomial(10, 10, 0.5, Alternative.Greater) / (1.0 / 1024.0), 14);
    }

    [Fact]
    public void ChiSquared_UncorrectedTwoByTwo()
    {
        // [[10, 20], [20, 10]]: every expected count is 15 and every |O − E| = 5 → X² = 4 · 25/15.
        var result = ContingencyTests.ChiSquared(new double[,] { { 10, 20 }, { 20, 10 } });
        Assert.Equal(100.0 / 15.0, result.Statistic, 13);
        Assert.Equal(1, result.DegreesOfFreedom);

        // Yates subtracts 0.5 from each |O − E|: 4 · 4.5²/15.
        Assert.Equal(81.0 / 15.0, ContingencyTests.ChiSquared2x2Yates(10, 20, 20, 10).Statistic, 13);
    }

    [Fact]
    public void Brent_FindsARoot()
    {
        var root = RootFinding.Brent(v => (v * v) - 2.0, 0.0, 2.0, 1e-12);
        Assert.Equal(Math.Sqrt(2.0), root, 11);
    }

    private sealed class Tolerance(double epsilon) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= epsilon;

        public int GetHashCode(double obj) => 0;
    }
}
