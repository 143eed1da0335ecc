using ExpertScope.Experiments.Analyses;

namespace ExpertScope.Experiments.Tests;

public class AnalysesUsageTests
{
    // Four tokens routed top-2 in one layer; each token sends `firstWeight` to `first` and the rest to `second`.
    internal static IEnumerable<RoutingRecord> Tokens(int layer, int first, int second, float firstWeight = 0.75f, int tokens = 4, int sequence = 0)
    {
        for (var position = 0; position < tokens; position++)
        {
            yield return new RoutingRecord(sequence, position, 100 + position, layer, 0, first, firstWeight);
            yield return new RoutingRecord(sequence, position, 100 + position, layer, 1, second, 1 - firstWeight);
        }
    }

    [Fact]
    public void ADomainUsingOnlyExpertsOneAndTwo()
    {
        var table = ExpertUsage.Tally("A", Tokens(0, 1, 2), expertCount: 4);

        Assert.Equal([0.0, 4, 4, 0], table.Counts(0));
        Assert.Equal([0.0, 3, 1, 0], table.Weights(0));
        Assert.Equal(4, table.Tokens(0));
        Assert.Equal([0.0, 0.5, 0.5, 0], table.Shares(0, UsageMeasure.Count));

        var count = Assert.Single(ExpertUsage.Summarize(table, UsageMeasure.Count));
        // Shares 1/2, 1/2: one expert covers 50%, two cover 80% and 90%; H = 1 bit of log2 4 = 2 bits.
        Assert.Equal((1, 2, 2), (count.ExpertsFor50, count.ExpertsFor80, count.ExpertsFor90));
        Assert.Equal(1.0, count.EntropyBits, 12);
        Assert.Equal(0.5, count.NormalizedEntropy, 12);
        // Sorted 0,0,4,4: 2(3·4 + 4·4)/(4·8) − 5/4 = 0.5.
        Assert.Equal(0.5, count.Gini, 12);
        Assert.Equal((1, 0.5), (count.TopExpert, count.TopExpertShare));

        var weight = Assert.Single(ExpertUsage.Summarize(table, UsageMeasure.Weight));
        // Shares 3/4, 1/4: H = 0.811278 bits; sorted 0,0,1,3: 2(3·1 + 4·3)/(4·4) − 5/4 = 0.625.
        Assert.Equal((1, 2, 2), (weight.ExpertsFor50, weight.ExpertsFor80, weight.ExpertsFor90));
        Assert.Equal(0.8112781244591328, weight.EntropyBits, 12);
        Assert.Equal(0.625, weight.Gini, 12);
        Assert.Equal((1, 0.75), (weight.TopExpert, weight.TopExpertShare));
    }

    [Fact]
    public void CoverageFollowsTheSortedCumulativeShare()
    {
        double[] mass = [0.1, 0.4, 0.2, 0.3];

        // Sorted 0.4, 0.3, 0.2, 0.1: cumulative 0.4, 0.7, 0.9, 1.0.
        Assert.Equal(2, DistributionStatistics.ExpertsToCover(mass, 0.5));
        Assert.Equal(2, DistributionStatistics.ExpertsToCover(mass, 0.7));
        Assert.Equal(3, DistributionStatistics.ExpertsToCover(mass, 0.8));
        Assert.Equal(3, DistributionStatistics.ExpertsToCover(mass, 0.9));
        Assert.Equal(4, DistributionStatistics.ExpertsToCover(mass, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DistributionStatistics.ExpertsToCover(mass, 0));
        Assert.Throws<ArgumentException>(() => DistributionStatistics.EntropyBits([0.0, 0.0]));
    }

    [Fact]
    public void EntropyAndGiniExtremes()
    {
        Assert.Equal(1.0, DistributionStatistics.NormalizedEntropy([2.0, 2, 2, 2]), 12);
        Assert.Equal(0.0, DistributionStatistics.Gini([2.0, 2, 2, 2]), 12);
        Assert.Equal(0.0, DistributionStatistics.EntropyBits([0.0, 5, 0, 0]), 12);
        Assert.Equal(0.75, DistributionStatistics.Gini([0.0, 5, 0, 0]), 12); // (N − 1) / N
    }

    [Fact]
    public void JensenShannonMatrixBetweenDomains()
    {
        var a = ExpertUsage.Tally("A", Tokens(0, 1, 2), 4);
        var b = ExpertUsage.Tally("B", Tokens(0, 0, 3), 4);
        var c = ExpertUsage.Tally("C", Tokens(0, 1, 3), 4);

        var matrix = ExpertUsage.DomainDivergence([a, b, c], 0, UsageMeasure.Count);

        Assert.Equal(["A", "B", "C"], matrix.Domains);
        // A, B disjoint: 1 bit. A = (0, ½, ½, 0), C = (0, ½, 0, ½), m = (0, ½, ¼, ¼): ½·(½·1) + ½·(½·1) = ½.
        Assert.Equal(0.0, matrix.Bits[0, 0], 12);
        Assert.Equal(1.0, matrix.Bits[0, 1], 6);
        Assert.Equal(0.5, matrix.Bits[0, 2], 6);
        Assert.Equal(0.5, matrix.Bits[2, 0], 6);
        Assert.Equal(0.5, matrix.Bits[1, 2], 6);
    }

    [Fact]
    public void DomainSpecificExpertsByChiSquaredAndBenjaminiHochberg()
    {
        // Layer 0: A uses {1, 2}, B uses {0, 3}. Layer 1: both use {0, 1}, nothing to find.
        var a = ExpertUsage.Tally("A", Tokens(0, 1, 2).Concat(Tokens(1, 0, 1)), 4);
        var b = ExpertUsage.Tally("B", Tokens(0, 0, 3).Concat(Tokens(1, 0, 1)), 4);

        var pearson = DomainSpecificity.Rank([a, b], continuityCorrection: false);

        Assert.Equal(16, pearson.Count); // 2 layers × 4 experts × 2 domains
        var top = pearson[0];
        Assert.Equal(("A", 0, 1, 1), (top.Domain, top.Layer, top.Expert, top.Rank));
        Assert.Equal((4L, 4L, 0L, 4L), (top.DomainSelected, top.DomainTokens, top.OtherSelected, top.OtherTokens));
        // [[4, 0], [0, 4]]: every expected count 2, X² = 4 · 2²/2 = 8, p = erfc(2); 8 of 16 tests, q = 2p.
        Assert.Equal(8.0, top.ChiSquared, 10);
        Assert.Equal(0.004677734981047265, top.PValue, 12);
        Assert.Equal(0.00935546996209453, top.QValue, 12);
        // log2((4.5/5) / (0.5/5)) = log2 9.
        Assert.Equal(3.169925001442312, top.LogRatio, 12);
        Assert.Equal((1.0, 0.0), (top.DomainRate, top.OtherRate));

        Assert.Equal([1, 2], DomainSpecificity.TopForDomain(pearson, "A", 5).Select(row => row.Expert));
        Assert.Equal([0, 3], DomainSpecificity.TopForDomain(pearson, "B", 5).Select(row => row.Expert));
        var shared = pearson.Single(row => row.Domain == "A" && row.Layer == 1 && row.Expert == 0);
        Assert.Equal((0.0, 1.0, 1.0), (shared.ChiSquared, shared.PValue, shared.QValue));
        var underUsed = pearson.Single(row => row.Domain == "A" && row.Layer == 0 && row.Expert == 0);
        Assert.Equal(-3.169925001442312, underUsed.LogRatio, 12);

        // Yates: (|2 ± 2| − ½)... each |O − E| = 2 → 1.5² / 2 · 4 = 4.5, p = erfc(1.5), q = 2p > 0.05.
        var yates = DomainSpecificity.Rank([a, b]);
        Assert.Equal(4.5, yates[0].ChiSquared, 10);
        Assert.Equal(0.033894853524689274, yates[0].PValue, 12);
        Assert.Equal(0.06778970704937855, yates[0].QValue, 12);
        Assert.Empty(DomainSpecificity.TopForDomain(yates, "A", 5));
        Assert.Throws<ArgumentException>(() => DomainSpecificity.Rank([a]));
    }

    [Fact]
    public void TallyRejectsBadExpertsAndWeights()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertUsage.Tally("A", [new RoutingRecord(0, 0, 1, 0, 0, 4, 1)], 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertUsage.Tally("A", [new RoutingRecord(0, 0, 1, 0, 0, 1, float.PositiveInfinity)], 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertUsage.Tally("A", [new RoutingRecord(0, 0, 1, 0, 0, 1, -0.5f)], 4));
        // NaN means "ids only"; a mix of records with and without weights is refused, in either order.
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertUsage.Tally("A", [new RoutingRecord(0, 0, 1, 0, 0, 1, float.NaN), new RoutingRecord(0, 1, 1, 0, 0, 1, 0.5f)], 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertUsage.Tally("A", [new RoutingRecord(0, 0, 1, 0, 0, 1, 0.5f), new RoutingRecord(0, 1, 1, 0, 0, 1, float.NaN)], 4));
    }

    [Fact]
    public void IdsOnlyRecordsGiveTheSameCountsAndNoWeightMeasure()
    {
        // The planted domain of ADomainUsingOnlyExpertsOneAndTwo with its weights dropped, as a server returns it.
        var full = ExpertUsage.Tally("A", Tokens(0, 1, 2), 4);
        var ids = ExpertUsage.Tally("A", Tokens(0, 1, 2).Select(r => r with { Weight = float.NaN }), 4);

        Assert.True(full.HasWeights);
        Assert.False(ids.HasWeights);
        Assert.Equal(full.Counts(0), ids.Counts(0));
        Assert.Equal(full.TopOne(0), ids.TopOne(0));
        Assert.Equal(full.Tokens(0), ids.Tokens(0));
        Assert.Equal(ExpertUsage.Summarize(full, UsageMeasure.Count), ExpertUsage.Summarize(ids, UsageMeasure.Count));
        Assert.Equal(ExpertUsage.Summarize(full, UsageMeasure.TopOne), ExpertUsage.Summarize(ids, UsageMeasure.TopOne));
        // The weight measure is not available: asking for it throws instead of giving zeros or NaN.
        Assert.Throws<InvalidOperationException>(() => ids.Weights(0));
        Assert.Throws<InvalidOperationException>(() => ids.Shares(0, UsageMeasure.Weight));
        Assert.Throws<InvalidOperationException>(() => ExpertUsage.Summarize(ids, UsageMeasure.Weight));
    }
}
