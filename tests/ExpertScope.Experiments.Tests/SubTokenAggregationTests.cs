using ExpertScope.Experiments.Metrics;

namespace ExpertScope.Experiments.Tests;

public class SubTokenAggregationTests
{
    // Word 1 has tokens routed to {0,1}, {2,3}; word 2 has tokens {0,2}, {1,3}, {0,1} (k = 2).
    private static readonly ExpertChoice[][] Word1 = [[new(0, 0.5f), new(1, 0.5f)], [new(2, 0.5f), new(3, 0.5f)]];
    private static readonly ExpertChoice[][] Word2 = [[new(0, 0.5f), new(2, 0.5f)], [new(1, 0.5f), new(3, 0.5f)], [new(0, 0.5f), new(1, 0.5f)]];

    private static double Overlap(ExpertChoice[] a, ExpertChoice[] b) => RoutingOverlap.IntersectionOverK(a, b);

    [Fact]
    public void FirstAndLastUseOneTokenEach()
    {
        // First: {0,1} vs {0,2} → 1/2. Last: {2,3} vs {0,1} → 0.
        Assert.Equal(0.5, SubTokenAggregation.Aggregate(Word1, Word2, SubTokenMode.First, Overlap), 12);
        Assert.Equal(0.0, SubTokenAggregation.Aggregate(Word1, Word2, SubTokenMode.Last, Overlap), 12);
    }

    [Fact]
    public void MeanAveragesEveryTokenPairing()
    {
        // {0,1} vs {0,2}, {1,3}, {0,1}: 1/2, 1/2, 1.  {2,3} vs the same: 1/2, 1/2, 0.  Sum 3, over 6 pairings = 0.5.
        Assert.Equal(0.5, SubTokenAggregation.Aggregate(Word1, Word2, SubTokenMode.Mean, Overlap), 12);
    }

    [Fact]
    public void MeanDistributionAveragesElementWise()
    {
        // ((1, 0, 0) + (0, 0.5, 0.5)) / 2 = (0.5, 0.25, 0.25).
        Assert.Equal([0.5f, 0.25f, 0.25f], SubTokenAggregation.MeanDistribution([[1f, 0f, 0f], [0f, 0.5f, 0.5f]]));
    }

    [Fact]
    public void WordsWithoutTokensAreRejected()
    {
        Assert.Throws<ArgumentException>(() => SubTokenAggregation.Aggregate([], Word2, SubTokenMode.First, Overlap));
        Assert.Throws<ArgumentException>(() => SubTokenAggregation.MeanDistribution([[1f], [0.5f, 0.5f]]));
    }
}
