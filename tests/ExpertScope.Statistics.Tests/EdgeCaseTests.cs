namespace ExpertScope.Statistics.Tests;

/// <summary>Bad or degenerate input must fail with a clear ArgumentException, never return NaN.</summary>
public sealed class EdgeCaseTests
{
    [Fact]
    public void MannWhitney_ThrowsForEmptySample()
    {
        var ex = Assert.Throws<ArgumentException>(() => RankTests.MannWhitney([], [1.0, 2.0]));
        Assert.Contains("at least 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MannWhitney_ThrowsWhenEveryValueIsTied()
    {
        var ex = Assert.Throws<ArgumentException>(() => RankTests.MannWhitney([0.5, 0.5, 0.5], [0.5, 0.5]));
        Assert.Contains("tied", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MannWhitney_ThrowsForNaN() =>
        Assert.Throws<ArgumentException>(() => RankTests.MannWhitney([1.0, double.NaN], [2.0]));

    [Fact]
    public void SignedRank_ThrowsWhenEveryDifferenceIsZero()
    {
        var ex = Assert.Throws<ArgumentException>(() => RankTests.WilcoxonSignedRank([1, 2, 3], [1, 2, 3]));
        Assert.Contains("zero", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SignedRank_ThrowsForMismatchedLengths() =>
        Assert.Throws<ArgumentException>(() => RankTests.WilcoxonSignedRank([1, 2, 3], [1, 2]));

    [Fact]
    public void SignedRank_ThrowsForEmptyInput() =>
        Assert.Throws<ArgumentException>(() => RankTests.WilcoxonSignedRankDifferences([]));

    [Fact]
    public void SignedRank_SingleDifferenceIsExact()
    {
        // One positive difference: V = 1, P(V ≥ 1) = 1/2, two-sided min(1, 2 · 1/2) = 1.
        var result = RankTests.WilcoxonSignedRankDifferences([0.3]);
        Assert.Equal(1.0, result.V);
        Assert.Equal(1.0, result.PValue);
    }

    [Fact]
    public void Welch_ThrowsForSingleValueSample() =>
        Assert.Throws<ArgumentException>(() => TTests.Welch([1.0], [1.0, 2.0]));

    [Fact]
    public void Welch_ThrowsWhenBothSamplesAreConstant() =>
        Assert.Throws<ArgumentException>(() => TTests.Welch([1.0, 1.0], [2.0, 2.0, 2.0]));

    [Fact]
    public void Correlation_ThrowsForConstantVariable()
    {
        double[] x = [1, 1, 1, 1];
        double[] y = [1, 2, 3, 4];
        Assert.Throws<ArgumentException>(() => Correlation.Pearson(x, y));
        Assert.Throws<ArgumentException>(() => Correlation.Spearman(x, y));
        Assert.Throws<ArgumentException>(() => Correlation.Kendall(x, y));
    }

    [Fact]
    public void Correlation_ThrowsForTooFewPairs() =>
        Assert.Throws<ArgumentException>(() => Correlation.Pearson([1, 2], [2, 1]));

    [Fact]
    public void PermutationTest_ThrowsForEmptySampleAndForTooManySplits()
    {
        Assert.Throws<ArgumentException>(() => PermutationTests.ExactMeanDifference([], [1.0]));
        var big = Enumerable.Range(0, 40).Select(i => (double)i).ToArray();
        Assert.Throws<ArgumentException>(() => PermutationTests.ExactMeanDifference(big, big));
    }

    [Fact]
    public void PAdjust_RejectsValuesOutsideTheUnitInterval()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MultipleComparisons.Adjust([0.2, 1.5], PAdjustMethod.Holm));
        Assert.Throws<ArgumentOutOfRangeException>(() => MultipleComparisons.Adjust([double.NaN], PAdjustMethod.Holm));
    }

    [Fact]
    public void Contingency_RejectsBadTables()
    {
        Assert.Throws<ArgumentException>(() => ContingencyTests.FisherExact2x2(-1, 2, 3, 4));
        Assert.Throws<ArgumentException>(() => ContingencyTests.FisherExact2x2(0, 0, 0, 0));
        Assert.Throws<ArgumentException>(() => ContingencyTests.ChiSquared(new double[,] { { 0, 0 }, { 3, 4 } }));
        Assert.Throws<ArgumentException>(() => ContingencyTests.ChiSquared(new double[,] { { 1, 2, 3 } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ContingencyTests.Binomial(11, 10, 0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ContingencyTests.Binomial(1, 10, 1.5));
    }

    [Fact]
    public void Distributions_RejectNonPositiveDegreesOfFreedom()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Distributions.StudentTCdf(1.0, 0.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Distributions.ChiSquaredUpperTail(1.0, -1.0));
    }
}
