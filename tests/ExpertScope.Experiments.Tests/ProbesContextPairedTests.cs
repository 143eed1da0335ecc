using ExpertScope.Experiments.Probes;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// The substitution probe's per-context analysis: the paired test equals R's, a planted per-context effect is
/// found, and a difference that comes only from one context contributing many substitutes is not.
/// </summary>
public sealed class ProbesContextPairedTests
{
    // Reference values computed once with R 4.x (stats::wilcox.test), from the per-context means of these values:
    //   x <- sapply(similar, mean); y <- sapply(dissimilar, mean); wilcox.test(x, y, paired = TRUE)
    private static readonly double[][] SimilarExact = [[0.9, 0.7, 0.8, 0.6], [0.5, 0.4], [0.3, 0.35, 0.2], [0.8, 0.75], [0.1, 0.15, 0.05, 0.2, 0.12], [0.6]];
    private static readonly double[][] DissimilarExact = [[0.5, 0.55], [0.45, 0.42, 0.41], [0.33], [0.4, 0.3, 0.35], [0.2, 0.18], [0.45, 0.5, 0.4]];
    private static readonly double[][] SimilarTied = [[1, 0.5], [0.5], [0, 0.5], [1], [0.5, 0.5], [1, 0], [0.5]];
    private static readonly double[][] DissimilarTied = [[0.5], [0], [0, 0], [0.5, 0.5], [0.5], [0], [0]];

    public static TheoryData<string, double, double, double, bool> RReference => new()
    {
        // Six contexts, distinct differences: R's exact distribution.
        { "exact", 16, 0.31250000000000011, 0.11844444444444445, true },
        // Tied differences and a zero: R's normal approximation with continuity correction.
        { "tied", 21, 0.030544849976475236, 0.35714285714285715, false },
        // Sixty contexts (n ≥ 50): the normal approximation. R:
        //   similar <- lapply(1:60, function(c) sapply(1:(c %% 5 + 1), function(j) sin(c * j) * 0.3 + 0.5))
        //   dissimilar <- lapply(1:60, function(c) sapply(1:(c %% 3 + 1), function(j) cos(c + j) * 0.3 + 0.45))
        { "sixty", 1127, 0.11947546308406239, 0.059939354020481284, false },
    };

    [Theory]
    [MemberData(nameof(RReference))]
    public void PairedTestOverContextsEqualsR(string set, double v, double p, double difference, bool exact)
    {
        var (similar, dissimilar) = Set(set);
        var results = Analyze(Measurements(similar, dissimilar));
        var comparison = results.ContextPaired[0];
        Assert.Equal((ProbeConditions.Similar, ProbeConditions.Dissimilar), (comparison.First, comparison.Second));
        foreach (var statistics in new[] { comparison.ByLayer[0], comparison.ByLayer[1], comparison.LayerMean })
        {
            Assert.Equal(similar.Length, statistics.Contexts);
            Assert.Equal(v, statistics.SignedRankV, 9);
            Assert.Equal(p, statistics.PValue, 1e-12);
            Assert.Equal(difference, statistics.Difference, 1e-12);
            Assert.Equal(exact, statistics.IsExact);
            Assert.InRange(statistics.Difference, statistics.Lower, statistics.Upper);
        }

        // Holm across two identical layers doubles p (capped at 1).
        Assert.Equal(Math.Min(1, 2 * p), comparison.ByLayer[0].Holm, 1e-12);
        Assert.Equal(similar.Sum(values => values.Length), comparison.LayerMean.PairsFirst);
    }

    [Fact]
    public void PlantedPerContextEffectIsFound()
    {
        // Twelve contexts with their own baselines; in every context similar substitutes score 0.1 higher.
        var random = new Random(20240611);
        var similar = new double[12][];
        var dissimilar = new double[12][];
        for (var c = 0; c < 12; c++)
        {
            var baseline = random.NextDouble() * 0.6;
            similar[c] = [.. Enumerable.Range(0, 3 + (c % 4)).Select(_ => baseline + 0.1 + ((random.NextDouble() - 0.5) * 0.04))];
            dissimilar[c] = [.. Enumerable.Range(0, 2 + (c % 5)).Select(_ => baseline + ((random.NextDouble() - 0.5) * 0.04))];
        }

        var comparison = Analyze(Measurements(similar, dissimilar)).ContextPaired[0];
        Assert.True(comparison.Found);
        Assert.Equal(2, comparison.SignificantLayers);
        Assert.InRange(comparison.LayerMean.Lower, 0.05, 0.1);
        Assert.InRange(comparison.LayerMean.Upper, 0.1, 0.15);
        Assert.Equal(1.0, comparison.LayerMean.RankBiserial);
    }

    [Fact]
    public void OneContextWithManySubstitutesGivesNoFindingPerContext()
    {
        // Context 0's anchor routes like everything (baseline 0.8) and it has 120 similar substitutes; the other
        // contexts (baseline 0.2) have mostly dissimilar ones. Within every context the two conditions are alike.
        var random = new Random(77);
        double[] Noise(double baseline, int count) => [.. Enumerable.Range(0, count).Select(_ => baseline + ((random.NextDouble() - 0.5) * 0.1))];
        var similar = new double[10][];
        var dissimilar = new double[10][];
        similar[0] = Noise(0.8, 120);
        dissimilar[0] = Noise(0.8, 3);
        for (var c = 1; c < 10; c++)
        {
            similar[c] = Noise(0.2, 2);
            dissimilar[c] = Noise(0.2, 12);
        }

        var results = Analyze(Measurements(similar, dissimilar));
        // Treating pairs as independent (the secondary test) "finds" a large difference…
        var unpaired = results.Comparisons[0].LayerMean;
        Assert.True(unpaired.MannWhitneyP < 1e-10, $"unpaired p {unpaired.MannWhitneyP}");
        Assert.True(unpaired.Lower > 0.2);
        // …which the per-context test does not, and its cluster interval of the pooled difference is wide.
        var comparison = results.ContextPaired[0];
        Assert.False(comparison.Found);
        Assert.Equal(0, comparison.SignificantLayers);
        Assert.True(comparison.LayerMean.PValue > 0.05);
        Assert.InRange(0, comparison.LayerMean.Lower, comparison.LayerMean.Upper);
        Assert.Equal(unpaired.Difference, comparison.LayerMean.PooledDifference, 1e-12);
        Assert.True(comparison.LayerMean.PooledUpper - comparison.LayerMean.PooledLower > 2 * (unpaired.Upper - unpaired.Lower));
    }

    [Fact]
    public void ContextsWithOneConditionAreCountedAndLeftOut()
    {
        var measurements = Measurements([[0.5], [0.6], [0.7]], [[0.1], [0.2], [0.3]]).ToList();
        measurements.Add(Measurement("lonely", ProbeConditions.Similar, 0.9));
        var comparison = Analyze(measurements).ContextPaired[0];
        Assert.Equal(1, comparison.UnpairedContexts);
        Assert.Equal(3, comparison.LayerMean.Contexts);
    }

    [Fact]
    public void MatchedRankBiserialDropsZerosAndUsesAverageRanks()
    {
        Assert.Equal((1 + 3 - 2) / 6.0, ContextPairedAnalysis.MatchedRankBiserial([1, -2, 3, 0]), 12);
        Assert.Equal(0, ContextPairedAnalysis.MatchedRankBiserial([1, -1]), 12);
        Assert.True(double.IsNaN(ContextPairedAnalysis.MatchedRankBiserial([0, 0])));
    }

    [Fact]
    public void WordSenseRunsHaveNoPerContextComparisons()
    {
        var settings = new ProbeSettings { Kind = ProbeKind.WordSense, Dataset = "wic:dev", DataFolder = ".", BootstrapResamples = 200 };
        Assert.Empty(ProbeAnalysis.Analyze(ProbeKind.WordSense, [0, 1], Measurements([[0.5]], [[0.1]]), settings).ContextPaired);
    }

    private static (double[][] Similar, double[][] Dissimilar) Set(string name) => name switch
    {
        "exact" => (SimilarExact, DissimilarExact),
        "tied" => (SimilarTied, DissimilarTied),
        _ => ([.. Enumerable.Range(1, 60).Select(c => Enumerable.Range(1, (c % 5) + 1).Select(j => (Math.Sin(c * j) * 0.3) + 0.5).ToArray())],
            [.. Enumerable.Range(1, 60).Select(c => Enumerable.Range(1, (c % 3) + 1).Select(j => (Math.Cos(c + j) * 0.3) + 0.45).ToArray())]),
    };

    private static ProbeResults Analyze(IReadOnlyList<PairMeasurement> measurements) =>
        ProbeAnalysis.Analyze(ProbeKind.Substitution, [0, 1], measurements, new ProbeSettings
        {
            Kind = ProbeKind.Substitution, Dataset = "swords:dev", DataFolder = ".", BootstrapResamples = 1000, Seed = 3,
        });

    private static List<PairMeasurement> Measurements(double[][] similar, double[][] dissimilar)
    {
        var list = new List<PairMeasurement>();
        for (var c = 0; c < similar.Length; c++)
        {
            list.AddRange(similar[c].Select(value => Measurement($"c{c}", ProbeConditions.Similar, value)));
            list.AddRange(dissimilar[c].Select(value => Measurement($"c{c}", ProbeConditions.Dissimilar, value)));
        }

        return list;
    }

    // κ is the value under test (the default metric), the same at both layers; the other metrics mirror it.
    private static PairMeasurement Measurement(string context, string condition, double value) =>
        new(new PlannedPair($"{context}.{condition}", condition, "w", new WordOccurrence(0, [1]), new WordOccurrence(1, [1]), false, null) { ContextId = context },
            [new PairScores(value, value, value, value, 1 - value), new PairScores(value, value, value, value, 1 - value)]);
}
