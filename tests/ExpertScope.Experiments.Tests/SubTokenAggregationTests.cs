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
    public void MeanComparesSubTokensPositionByPosition()
    {
        // Word 2 is longer (3 tokens): its token i meets word 1's token ⌊2i/3⌋ = 0, 0, 1.
        // {0,2} vs {0,1} = 1/2, {1,3} vs {0,1} = 1/2, {0,1} vs {2,3} = 0: mean 1/3 (in either argument order).
        Assert.Equal(1.0 / 3.0, SubTokenAggregation.Aggregate(Word1, Word2, SubTokenMode.Mean, Overlap), 12);
        Assert.Equal(1.0 / 3.0, SubTokenAggregation.Aggregate(Word2, Word1, SubTokenMode.Mean, Overlap), 12);
        // Equal lengths: token i with token i only, so a word against itself scores 1 (every pairing would give 1/2).
        Assert.Equal(1.0, SubTokenAggregation.Aggregate(Word1, Word1, SubTokenMode.Mean, Overlap), 12);
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
