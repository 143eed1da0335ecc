namespace ExpertScope.Statistics.Tests;

public sealed class BootstrapTests
{
    private static readonly double[] Sample = [2.1, 3.4, 1.9, 5.6, 4.2, 3.3, 2.8, 6.1, 3.9, 4.4, 2.5, 7.3];

    [Fact]
    public void Percentile_SameSeedGivesIdenticalInterval()
    {
        var first = Bootstrap.Percentile(Sample, Bootstrap.Mean, 2000, seed: 7);
        var second = Bootstrap.Percentile(Sample, Bootstrap.Mean, 2000, seed: 7);
        Assert.Equal(first, second);
    }

    [Fact]
    public void BiasCorrectedAccelerated_SameSeedGivesIdenticalInterval()
    {
        var first = Bootstrap.BiasCorrectedAccelerated(Sample, Bootstrap.Mean, 2000, seed: 7);
        var second = Bootstrap.BiasCorrectedAccelerated(Sample, Bootstrap.Mean, 2000, seed: 7);
        Assert.Equal(first, second);
    }

    [Fact]
    public void DifferentSeedsGiveDifferentResamples()
    {
        var first = Bootstrap.Percentile(Sample, Bootstrap.Mean, 2000, seed: 7);
        var second = Bootstrap.Percentile(Sample, Bootstrap.Mean, 2000, seed: 8);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Intervals_BracketTheMeanAndAreNearTheNormalInterval()
    {
        var mean = Sample.Average();
        var standardError = Descriptive.StandardDeviation(Sample) / Math.Sqrt(Sample.Length);
        foreach (var interval in new[]
        {
            Bootstrap.Percentile(Sample, Bootstrap.Mean, 4000, seed: 1),
            Bootstrap.BiasCorrectedAccelerated(Sample, Bootstrap.Mean, 4000, seed: 1),
        })
        {
            Assert.Equal(mean, interval.Estimate, 12);
            Assert.True(interval.Lower < mean && mean < interval.Upper, interval.ToString());

            // The bootstrap SE of the mean is √((n − 1)/n) times the textbook SE; the bounds sit about 1.96 SE out.
            Assert.InRange(interval.StandardError, 0.9 * standardError, 1.05 * standardError);
            Assert.InRange(mean - interval.Lower, 1.4 * standardError, 2.6 * standardError);
            Assert.InRange(interval.Upper - mean, 1.4 * standardError, 2.6 * standardError);
        }
    }

    [Fact]
    public void BiasCorrectedAccelerated_AccelerationShiftsTowardsTheLongTail()
    {
        // Right-skewed data: the BCa interval for the mean reaches further right than the percentile one.
        double[] skewed = [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.1, 1.7, 2.9, 6.5];
        var percentile = Bootstrap.Percentile(skewed, Bootstrap.Mean, 4000, seed: 3);
        var bca = Bootstrap.BiasCorrectedAccelerated(skewed, Bootstrap.Mean, 4000, seed: 3);
        Assert.True(bca.Upper > percentile.Upper, $"BCa {bca} vs percentile {percentile}");
    }

    [Fact]
    public void AnyStatisticDelegateCanBeBootstrapped()
    {
        SampleStatistic median = values =>
        {
            var sorted = values.ToArray();
            Array.Sort(sorted);
            return Bootstrap.Quantile(sorted, 0.5);
        };
        var interval = Bootstrap.Percentile(Sample, median, 1000, seed: 11);
        Assert.Equal(3.65, interval.Estimate, 12); // middle of 3.4 and 3.9
        Assert.True(interval.Lower <= interval.Estimate && interval.Estimate <= interval.Upper);
    }

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.25, 1.75)] // h = 3 · 0.25 = 0.75 → 1 + 0.75 · (2 − 1)
    [InlineData(0.5, 2.5)]
    [InlineData(1.0, 4.0)]
    public void Quantile_IsRType7(double probability, double expected) =>
        Assert.Equal(expected, Bootstrap.Quantile([1, 2, 3, 4], probability), 15);

    [Fact]
    public void BiasCorrectedAccelerated_ThrowsForADegenerateStatistic() =>
        Assert.Throws<ArgumentException>(() => Bootstrap.BiasCorrectedAccelerated(Sample, _ => 1.0, 500, seed: 1));

    [Fact]
    public void Bootstrap_ThrowsWhenTheStatisticIsNotFinite() =>
        Assert.Throws<ArgumentException>(() => Bootstrap.Percentile(Sample, _ => double.NaN, 500, seed: 1));

    [Fact]
    public void Bootstrap_RejectsTinySamplesAndBadSettings()
    {
        Assert.Throws<ArgumentException>(() => Bootstrap.Percentile([1.0], Bootstrap.Mean, 500, seed: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Bootstrap.Percentile(Sample, Bootstrap.Mean, 10, seed: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Bootstrap.Percentile(Sample, Bootstrap.Mean, 500, seed: 1, confidenceLevel: 1.0));
    }
}
