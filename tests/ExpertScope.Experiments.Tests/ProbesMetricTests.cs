using ExpertScope.Experiments.Metrics;
using ExpertScope.Experiments.Probes;
using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Tests;

/// <summary>Probe scoring and statistics on small hand-checkable routing.</summary>
public sealed class ProbesMetricTests
{
    // N = 4 routed experts, k = 2.
    private static readonly TokenRouting A = new([0, 1], [0.6f, 0.4f], [0.6f, 0.4f, 0f, 0f]);
    private static readonly TokenRouting B = new([1, 2], [0.5f, 0.5f], [0f, 0.5f, 0.5f, 0f]);
    private static readonly TokenRouting C = new([2, 3], [0.7f, 0.3f], [0f, 0f, 0.7f, 0.3f]);

    [Fact]
    public void OneTokenWordsGiveTheFiveMetricsByHand()
    {
        var scores = PairScores.Compute([A], [B], SubTokenMode.Mean);
        Assert.Equal(0.5, scores.Overlap, 12);             // {1} shared of k = 2
        Assert.Equal(1.0 / 3.0, scores.Jaccard, 12);       // 1 / |{0,1,2}|
        Assert.Equal(0.0, scores.Kappa, 12);               // (1 − 4/4) / (2 − 4/4): exactly chance
        Assert.Equal(0.4, scores.Weighted, 6);             // min(0.4, 0.5) on expert 1
        double p0 = 0.6, p1 = 0.4, q1 = 0.5, q2 = 0.5;
        double m0 = 0.3, m1 = 0.45, m2 = 0.25;
        var divergence = (0.5 * ((p0 * Math.Log2(p0 / m0)) + (p1 * Math.Log2(p1 / m1)))) + (0.5 * ((q1 * Math.Log2(q1 / m1)) + (q2 * Math.Log2(q2 / m2))));
        Assert.Equal(Math.Sqrt(divergence), scores.JensenShannon, 6);
        Assert.Equal(scores.Kappa, scores.Get(ProbeMetric.Kappa));
        Assert.Equal(scores.JensenShannon, scores.Get(ProbeMetric.JensenShannon));
    }

    [Fact]
    public void IdenticalAndDisjointRoutingReachTheEnds()
    {
        var same = PairScores.Compute([A], [A], SubTokenMode.Mean);
        Assert.Equal(1.0, same.Overlap);
        Assert.Equal(1.0, same.Kappa, 12);
        Assert.Equal(0.0, same.JensenShannon, 6);
        var disjoint = PairScores.Compute([A], [C], SubTokenMode.Mean);
        Assert.Equal(0.0, disjoint.Overlap);
        Assert.Equal(-1.0, disjoint.Kappa, 12);            // −k/(N − k) = −2/2
        Assert.Equal(1.0, disjoint.JensenShannon, 6);     // disjoint supports
    }

    [Fact]
    public void MultiTokenWordsAverageEveryPairingOrTakeFirstOrLast()
    {
        // Word 1 = [A, C], word 2 = [B]: pairings A–B (overlap 0.5) and C–B (overlap 0.5, expert 2).
        Assert.Equal(0.5, PairScores.Compute([A, C], [B], SubTokenMode.Mean).Overlap, 12);
        // Word 1 = [A, C], word 2 = [A]: A–A = 1, C–A = 0 → mean 0.5; first 1; last 0.
        Assert.Equal(0.5, PairScores.Compute([A, C], [A], SubTokenMode.Mean).Overlap, 12);
        Assert.Equal(1.0, PairScores.Compute([A, C], [A], SubTokenMode.First).Overlap, 12);
        Assert.Equal(0.0, PairScores.Compute([A, C], [A], SubTokenMode.Last).Overlap, 12);
        // JS compares the mean distribution of [A, C] = [0.3, 0.2, 0.35, 0.15] with A's.
        var mean = PairScores.Compute([A, C], [A], SubTokenMode.Mean).JensenShannon;
        Assert.Equal(Metrics.RouterDistance.JensenShannon([0.3f, 0.2f, 0.35f, 0.15f], A.Probabilities), mean, 6);
    }

    [Fact]
    public void SharedExpertsChangeOverlapButNeverKappa()
    {
        // One shared expert joins both sets: overlap (1 + 1)/3. It is no chance pick, so κ stays the routed κ (0 here).
        var without = PairScores.Compute([A], [B], SubTokenMode.Mean);
        var scores = PairScores.Compute([A], [B], SubTokenMode.Mean, sharedExperts: 1);
        Assert.Equal(2.0 / 3.0, scores.Overlap, 12);
        Assert.Equal(without.Kappa, scores.Kappa);
        // Weights renormalised with the shared expert's weight 1: A = {0.3, 0.2, 0.5}, B = {0.25, 0.25, 0.5}; min on expert 1 and the shared one.
        Assert.Equal(0.2 + 0.5, scores.Weighted, 6);
    }

    [Fact]
    public void ScoringReadsEveryLayerOfAFakeTrace()
    {
        // Two layers; sentence 0 holds the anchor at position 1, sentence 1 the other word at positions 2–3.
        var routing = new ProbeRouting([3, 5]);
        routing.Set(0, 1, [A, A]);
        routing.Set(1, 2, [B, C]);
        routing.Set(1, 3, [A, C]);
        var pair = new PlannedPair("p1", ProbeConditions.SameSense, "bank", new WordOccurrence(0, [1]), new WordOccurrence(1, [2, 3]), false, null);
        var measurement = Assert.Single(ProbeAnalysis.Score([pair], routing, Settings(), 0));
        // Layer 3: A–B = 0.5, A–A = 1 → 0.75. Layer 5: A–C = 0, A–C = 0 → 0.
        Assert.Equal(0.75, measurement.ByLayer[0].Overlap, 12);
        Assert.Equal(0.0, measurement.ByLayer[1].Overlap, 12);
        Assert.Equal(1, measurement.PositionDifference);
        Assert.Equal((measurement.ByLayer[0].Kappa + measurement.ByLayer[1].Kappa) / 2, measurement.LayerMean(ProbeMetric.Kappa), 12);
    }

    [Fact]
    public void ComparisonMatchesTheStatisticsLibrary()
    {
        double[] x = [0.9, 0.7, 0.8, 0.6, 0.75, 0.85];
        double[] y = [0.2, 0.4, 0.1, 0.35, 0.3];
        var result = ProbeAnalysis.Compare(x, y, seed: 7, resamples: 500);
        Assert.Equal(6, result.CountFirst);
        Assert.Equal(5, result.CountSecond);
        Assert.Equal(x.Average() - y.Average(), result.Difference, 12);
        Assert.InRange(result.Difference, result.Lower, result.Upper);
        Assert.True(result.Lower > 0);
        Assert.Equal(RankTests.MannWhitney(x, y).PValue, result.MannWhitneyP);
        Assert.Equal(TTests.Welch(x, y).PValue, result.WelchP);
        Assert.Equal(1.0, result.RankBiserial, 12);
        Assert.Equal(EffectSizes.CohensD(x, y), result.CohensD);
        // Same seed, same interval; another seed moves it.
        Assert.Equal(result, ProbeAnalysis.Compare(x, y, 7, 500));
        Assert.NotEqual(result.Lower, ProbeAnalysis.Compare(x, y, 8, 500).Lower);
    }

    [Fact]
    public void DegenerateSamplesGiveNaNNotExceptions()
    {
        var tied = ProbeAnalysis.Compare([0.5, 0.5, 0.5], [0.5, 0.5], 1, 200);
        Assert.Equal(0.0, tied.Difference);
        Assert.True(double.IsNaN(tied.MannWhitneyP));
        var single = ProbeAnalysis.Compare([0.5], [0.1, 0.2], 1, 200);
        Assert.True(double.IsNaN(single.Lower));
        Assert.True(double.IsNaN(single.WelchP));
    }

    [Fact]
    public void AnalysisCorrectsAcrossLayersAndAveragesLayers()
    {
        var measurements = new List<PairMeasurement>();
        for (var i = 0; i < 8; i++)
        {
            // Same-sense pairs overlap more in layer 0 only.
            measurements.Add(Measurement($"s{i}", ProbeConditions.SameSense, 0.8 + (0.01 * i), 0.3 + (0.02 * i), i));
            measurements.Add(Measurement($"d{i}", ProbeConditions.DifferentSense, 0.2 + (0.01 * i), 0.31 + (0.02 * i), i % 3));
        }

        var results = ProbeAnalysis.Analyze(ProbeKind.WordSense, [0, 1], measurements, Settings());
        Assert.Equal([ProbeConditions.SameSense, ProbeConditions.DifferentSense], results.Conditions);
        var main = Assert.Single(results.Comparisons);
        Assert.Equal(ProbeConditions.SameSense, main.First);
        double[] raw = [main.ByLayer[0].MannWhitneyP, main.ByLayer[1].MannWhitneyP];
        Assert.Equal(MultipleComparisons.Adjust(raw, PAdjustMethod.Holm), new[] { main.ByLayer[0].MannWhitneyHolm, main.ByLayer[1].MannWhitneyHolm });
        Assert.Equal(MultipleComparisons.Adjust(raw, PAdjustMethod.BenjaminiHochberg), new[] { main.ByLayer[0].MannWhitneyBh, main.ByLayer[1].MannWhitneyBh });
        Assert.True(main.ByLayer[0].MannWhitneyHolm < 0.05);
        Assert.True(main.ByLayer[1].MannWhitneyHolm > 0.05);
        Assert.Equal(1, main.SignificantLayers);
        var sameMean = measurements.Where(m => m.Pair.Condition == ProbeConditions.SameSense).Average(m => m.LayerMean(ProbeMetric.Overlap));
        Assert.Equal(sameMean, results.ByConditionLayerMean[ProbeConditions.SameSense].Mean, 12);
        Assert.Equal(8, results.ByCondition[ProbeConditions.DifferentSense][1].Count);
        Assert.Equal(2, results.PositionCorrelations.Count);
        Assert.NotNull(results.PositionMatched);
        // Token control: only pairs with identical token ids (here those at distance 0: one same-sense, three different-sense).
        var tokenMatched = Assert.IsType<ComparisonStatistics>(results.TokenMatched);
        Assert.Equal((1, 3), (tokenMatched.CountFirst, tokenMatched.CountSecond));
    }

    private static ProbeSettings Settings() => new()
    {
        Kind = ProbeKind.WordSense, Dataset = "wic:dev", DataFolder = ".", Metric = ProbeMetric.Overlap, BootstrapResamples = 200,
    };

    // Overlap is the value under test; the other metrics mirror it so every field is finite.
    private static PairMeasurement Measurement(string id, string condition, double layer0, double layer1, int positionDifference) =>
        new(new PlannedPair(id, condition, "w", new WordOccurrence(0, [0]), new WordOccurrence(1, [positionDifference]), false, null) { SameTokenIds = positionDifference == 0 },
            [new PairScores(layer0, layer0, layer0, layer0, 1 - layer0), new PairScores(layer1, layer1, layer1, layer1, 1 - layer1)]);
}
