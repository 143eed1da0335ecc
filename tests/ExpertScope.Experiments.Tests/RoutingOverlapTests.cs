using ExpertScope.Experiments.Metrics;

namespace ExpertScope.Experiments.Tests;

public class RoutingOverlapTests
{
    // Token A routed to experts {1, 4, 7, 9}, token B to {4, 9, 2, 5} (k = 4, N = 16); shared {4, 9}, O = 2.
    private static readonly ExpertChoice[] First = [new(1, 0.4f), new(4, 0.3f), new(7, 0.2f), new(9, 0.1f)];
    private static readonly ExpertChoice[] Second = [new(4, 0.1f), new(9, 0.5f), new(2, 0.25f), new(5, 0.15f)];

    [Fact]
    public void IntersectionOverKCountsSharedExperts()
    {
        // O / k = 2 / 4 = 0.5.
        Assert.Equal(2, RoutingOverlap.SharedCount(First, Second));
        Assert.Equal(0.5, RoutingOverlap.IntersectionOverK(First, Second), 12);
    }

    [Fact]
    public void JaccardDividesByTheUnion()
    {
        // |A ∪ B| = {1, 2, 4, 5, 7, 9} = 6, so 2 / 6 = 1/3.
        Assert.Equal(1.0 / 3.0, RoutingOverlap.Jaccard(First, Second), 12);
    }

    [Fact]
    public void ChanceCorrectedOverlapSubtractsTheRandomExpectation()
    {
        // E = k²/N = 16/16 = 1; κ = (2 − 1) / (4 − 1) = 1/3.
        Assert.Equal(1.0 / 3.0, RoutingOverlap.ChanceCorrected(First, Second, expertCount: 16), 12);
        // N = 64: E = 16/64 = 0.25; κ = (2 − 0.25) / (4 − 0.25) = 1.75 / 3.75 = 0.4666…
        Assert.Equal(1.75 / 3.75, RoutingOverlap.ChanceCorrected(First, Second, expertCount: 64), 12);
    }

    [Fact]
    public void ChanceCorrectedOverlapIsOneForIdenticalAndNegativeForDisjointSets()
    {
        ExpertChoice[] other = [new(0, 0.25f), new(2, 0.25f), new(3, 0.25f), new(5, 0.25f)];
        Assert.Equal(1.0, RoutingOverlap.ChanceCorrected(First, First, 16), 12);
        // O = 0, E = 1: κ = (0 − 1) / (4 − 1) = −1/3 = −k/(N − k) = −4/12.
        Assert.Equal(-1.0 / 3.0, RoutingOverlap.ChanceCorrected(First, other, 16), 12);
    }

    [Fact]
    public void ChanceCorrectedOverlapRejectsKEqualToN()
    {
        Assert.Throws<ArgumentException>(() => RoutingOverlap.ChanceCorrected(First, Second, expertCount: 4));
    }

    [Fact]
    public void WeightedOverlapSumsTheSmallerSharedWeights()
    {
        // Expert 4: min(0.3, 0.1) = 0.1; expert 9: min(0.1, 0.5) = 0.1; total 0.2.
        Assert.Equal(0.2, RoutingOverlap.WeightedOverlap(First, Second), 6);
        // Against itself the weights sum to 1.0.
        Assert.Equal(1.0, RoutingOverlap.WeightedOverlap(First, First), 6);
    }

    [Fact]
    public void SharedExpertsAreExcludedUnlessIncluded()
    {
        // Add shared expert 64 to both: excluded, nothing changes; included, k = 5 and O = 3.
        ExpertChoice[] first = [.. First, new(64, 1f, IsShared: true)];
        ExpertChoice[] second = [.. Second, new(64, 1f, IsShared: true)];

        Assert.Equal(0.5, RoutingOverlap.IntersectionOverK(first, second), 12);
        Assert.Equal(0.2, RoutingOverlap.WeightedOverlap(first, second), 6);
        Assert.Equal(3.0 / 5.0, RoutingOverlap.IntersectionOverK(first, second, includeShared: true), 12);
        // Jaccard with the shared expert: 3 / (10 − 3) = 3/7.
        Assert.Equal(3.0 / 7.0, RoutingOverlap.Jaccard(first, second, includeShared: true), 12);
    }

    [Fact]
    public void InvalidSetsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => RoutingOverlap.Jaccard(First, Second[..3]));
        Assert.Throws<ArgumentException>(() => RoutingOverlap.Jaccard([], []));
        Assert.Throws<ArgumentException>(() => RoutingOverlap.Jaccard([new(1, 0.5f), new(1, 0.5f)], [new(1, 0.5f), new(2, 0.5f)]));
    }
}
