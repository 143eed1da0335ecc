namespace ExpertScope.Statistics.Tests;

/// <summary>Effect sizes have no R oracle here, so each expected value is worked out by hand in a comment.</summary>
public sealed class EffectSizeTests
{
    [Theory]
    [InlineData(new double[] { 3, 4, 5 }, new double[] { 1, 2 }, 1.0)] // every x beats every y
    [InlineData(new double[] { 1, 2 }, new double[] { 3, 4, 5 }, -1.0)] // every y beats every x
    [InlineData(new double[] { 1, 3 }, new double[] { 2, 4 }, -0.5)] // x wins 1 of 4 pairs, loses 3: 1/4 − 3/4
    [InlineData(new double[] { 1, 2 }, new double[] { 2, 3 }, -0.75)] // wins 0, ties 1, loses 3: 0 − 3/4
    [InlineData(new double[] { 5, 5 }, new double[] { 5, 5, 5 }, 0.0)] // all tied
    public void RankBiserial_HandComputedCases(double[] x, double[] y, double expected) =>
        Assert.Equal(expected, EffectSizes.RankBiserial(x, y), 15);

    [Fact]
    public void RankBiserial_EqualsPairwiseDominance()
    {
        var random = new Random(20261124);
        var x = Enumerable.Range(0, 23).Select(_ => (double)random.Next(10)).ToArray();
        var y = Enumerable.Range(0, 17).Select(_ => (double)random.Next(10)).ToArray();
        var wins = x.Sum(a => y.Count(b => a > b));
        var losses = x.Sum(a => y.Count(b => a < b));
        var expected = (wins - losses) / (double)(x.Length * y.Length);
        Assert.Equal(expected, EffectSizes.RankBiserial(x, y), 12);
    }

    [Fact]
    public void CohensD_EqualVariances()
    {
        // Means 2 and 5, both variances 1, so the pooled SD is 1 and d = (2 − 5) / 1.
        Assert.Equal(-3.0, EffectSizes.CohensD([1, 2, 3], [4, 5, 6]), 14);
    }

    [Fact]
    public void CohensD_UnequalSizes()
    {
        // x: mean 5, variance 20/3 (n 4); y: mean 2, variance 2 (n 2).
        // Pooled variance = (3·20/3 + 1·2) / (4 + 2 − 2) = 22/4 = 5.5, so d = 3 / √5.5.
        Assert.Equal(3.0 / Math.Sqrt(5.5), EffectSizes.CohensD([2, 4, 6, 8], [1, 3]), 14);
    }

    [Fact]
    public void CohensD_ThrowsWhenBothSamplesAreConstant() =>
        Assert.Throws<ArgumentException>(() => EffectSizes.CohensD([1, 1], [2, 2, 2]));

    [Fact]
    public void CohensD_ThrowsForSingleValueSample() =>
        Assert.Throws<ArgumentException>(() => EffectSizes.CohensD([1], [2, 3]));

    [Fact]
    public void RankBiserial_ThrowsForEmptySample() =>
        Assert.Throws<ArgumentException>(() => EffectSizes.RankBiserial([], [2, 3]));
}
