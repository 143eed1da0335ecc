using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Probes;

/// <summary>
/// One comparison at one layer (or on layer means) with the context as the unit of replication: every context
/// contributes one difference, the mean of its first-condition pairs minus the mean of its second-condition pairs.
/// </summary>
/// <param name="Contexts">Contexts that have pairs of both conditions (the test's n).</param>
/// <param name="PairsFirst">First-condition pairs in those contexts.</param>
/// <param name="PairsSecond">Second-condition pairs in those contexts.</param>
/// <param name="MeanFirst">Mean over contexts of the context's first-condition mean.</param>
/// <param name="MeanSecond">Mean over contexts of the context's second-condition mean.</param>
/// <param name="Difference">Mean over contexts of (first mean − second mean).</param>
/// <param name="Lower">Lower end of the seeded cluster-bootstrap 95% interval of <paramref name="Difference"/> (contexts resampled).</param>
/// <param name="Upper">Upper end.</param>
/// <param name="PooledDifference">Mean of all first-condition pairs − mean of all second-condition pairs (the same contexts).</param>
/// <param name="PooledLower">Lower end of its cluster-bootstrap 95% interval (contexts resampled with all their pairs).</param>
/// <param name="PooledUpper">Upper end.</param>
/// <param name="RankBiserial">Matched-pairs rank-biserial correlation (T⁺ − T⁻)/(T⁺ + T⁻) of the context differences (Kerby 2014).</param>
/// <param name="CohensDz">Cohen's d_z: mean / standard deviation of the context differences.</param>
/// <param name="SignedRankV">R's V: rank sum of the positive context differences.</param>
/// <param name="PValue">Two-sided Wilcoxon signed-rank p over contexts, as R's <c>wilcox.test(x, y, paired = TRUE)</c>.</param>
/// <param name="IsExact">Whether R's rule chose the exact distribution (fewer than 50 non-zero differences, no ties, no zeros).</param>
public sealed record PairedComparisonStatistics(
    int Contexts, int PairsFirst, int PairsSecond, double MeanFirst, double MeanSecond, double Difference, double Lower, double Upper,
    double PooledDifference, double PooledLower, double PooledUpper, double RankBiserial, double CohensDz, double SignedRankV, double PValue, bool IsExact)
{
    /// <summary>Holm-corrected <see cref="PValue"/>: across layers for a layer, across the run's comparisons for the layer mean.</summary>
    public double Holm { get; init; } = double.NaN;

    /// <summary>Benjamini-Hochberg-corrected <see cref="PValue"/>, with the same family as <see cref="Holm"/>.</summary>
    public double Bh { get; init; } = double.NaN;
}

/// <summary>One comparison of a substitution probe, tested per context, at every layer and on the layer means.</summary>
/// <param name="First">Condition expected to score higher on a similarity metric.</param>
/// <param name="Second">The other condition.</param>
/// <param name="ByLayer">Per layer, aligned with <see cref="ProbeResults.Layers"/>.</param>
/// <param name="LayerMean">On each pair's mean over layers.</param>
/// <param name="UnpairedContexts">Contexts left out because they have pairs of only one of the two conditions.</param>
public sealed record ContextPairedComparison(
    string First, string Second, IReadOnlyList<PairedComparisonStatistics> ByLayer, PairedComparisonStatistics LayerMean, int UnpairedContexts)
{
    /// <summary>Layers whose Holm-corrected (across layers) signed-rank p-value is below 0.05.</summary>
    public int SignificantLayers => ByLayer.Count(layer => layer.Holm < 0.05);

    /// <summary>
    /// True when the layer-mean test, Holm-corrected across the run's per-context comparisons, is below 0.05: the
    /// only basis on which a substitution run says "a difference was found".
    /// </summary>
    public bool Found => LayerMean.Holm < 0.05;
}

/// <summary>
/// The substitution probe's primary analysis. A SWORDS context contributes many substitutes that share one anchor
/// (the original target's routing), so its pairs are not independent; the context is the unit of replication
/// (Lee et al. 2021 judge substitutes per context). Per context and layer: mean(first) − mean(second) of the metric;
/// across contexts: a two-sided Wilcoxon signed-rank test exactly as R's <c>wilcox.test(x, y, paired = TRUE)</c>
/// (exact distribution or normal approximation with continuity correction, as R chooses), Holm and BH across layers,
/// and seeded cluster-bootstrap 95% intervals that resample contexts.
/// </summary>
public static class ContextPairedAnalysis
{
    /// <summary>The per-context comparisons of a run (empty for the word-sense probe or when pairs carry no context).</summary>
    /// <param name="kind">The probe.</param>
    /// <param name="layerCount">MoE layers scored.</param>
    /// <param name="measurements">Every scored pair.</param>
    /// <param name="metric">The metric tested.</param>
    /// <param name="seed">Seed of the cluster bootstrap.</param>
    /// <param name="resamples">Bootstrap resamples.</param>
    public static IReadOnlyList<ContextPairedComparison> Compute(
        ProbeKind kind, int layerCount, IReadOnlyList<PairMeasurement> measurements, ProbeMetric metric, int seed, int resamples)
    {
        ArgumentNullException.ThrowIfNull(measurements);
        if (kind != ProbeKind.Substitution)
        {
            return [];
        }

        var byCondition = measurements.Where(m => m.Pair.ContextId is not null)
            .GroupBy(m => m.Pair.Condition, StringComparer.Ordinal)
            .ToDictionary(group => group.Key, group => group.ToArray(), StringComparer.Ordinal);
        var comparisons = new List<ContextPairedComparison>();
        var conditionPairs = ProbeConditions.Comparisons(kind);
        for (var c = 0; c < conditionPairs.Count; c++)
        {
            var (first, second) = conditionPairs[c];
            if (!byCondition.TryGetValue(first, out var firstItems) || !byCondition.TryGetValue(second, out var secondItems))
            {
                continue;
            }

            var firstByContext = Group(firstItems);
            var secondByContext = Group(secondItems);
            var contexts = firstByContext.Keys.Where(secondByContext.ContainsKey).Order(StringComparer.Ordinal).ToArray();
            var unpaired = firstByContext.Keys.Union(secondByContext.Keys, StringComparer.Ordinal).Count() - contexts.Length;
            if (contexts.Length == 0)
            {
                continue;
            }

            ContextValues Values(Func<PairMeasurement, double> value) => new(
                [.. contexts.Select(context => firstByContext[context].Select(value).ToArray())],
                [.. contexts.Select(context => secondByContext[context].Select(value).ToArray())]);

            var perLayer = Enumerable.Range(0, layerCount)
                .Select(layer => Compare(Values(m => m.ByLayer[layer].Get(metric)), SubSeed(seed, c, layer), resamples))
                .ToArray();
            double[] p = [.. perLayer.Select(s => s.PValue)];
            var (holm, bh) = ProbeAnalysis.Correct(p);
            for (var layer = 0; layer < perLayer.Length; layer++)
            {
                perLayer[layer] = perLayer[layer] with { Holm = holm[layer], Bh = bh[layer] };
            }

            var layerMean = Compare(Values(m => m.LayerMean(metric)), SubSeed(seed, c, layerCount), resamples);
            comparisons.Add(new ContextPairedComparison(first, second, perLayer, layerMean, unpaired));
        }

        // The layer-mean tests are the run's family of comparisons: Holm (and BH) across them.
        var (familyHolm, familyBh) = ProbeAnalysis.Correct([.. comparisons.Select(comparison => comparison.LayerMean.PValue)]);
        return [.. comparisons.Select((comparison, i) => comparison with
        {
            LayerMean = comparison.LayerMean with { Holm = familyHolm[i], Bh = familyBh[i] },
        })];
    }

    /// <summary>
    /// Paired statistics of one layer: per-context means, their differences, the signed-rank test and the
    /// cluster-bootstrap intervals. Undefined statistics (one context, every difference zero) are NaN.
    /// </summary>
    /// <param name="values">Per context (same order in both), the metric of its first- and second-condition pairs.</param>
    /// <param name="seed">Seed of the cluster bootstrap.</param>
    /// <param name="resamples">Bootstrap resamples.</param>
    public static PairedComparisonStatistics Compare(ContextValues values, int seed, int resamples)
    {
        ArgumentNullException.ThrowIfNull(values);
        var n = values.First.Count;
        double[] meanFirst = [.. values.First.Select(v => v.Average())];
        double[] meanSecond = [.. values.Second.Select(v => v.Average())];
        double[] differences = [.. meanFirst.Zip(meanSecond, (a, b) => a - b)];
        var pooled = Pooled(values, Enumerable.Range(0, n));
        var (lower, upper, pooledLower, pooledUpper) = (double.NaN, double.NaN, double.NaN, double.NaN);
        if (n >= 2)
        {
            var random = new Random(seed);
            var replicates = new double[resamples];
            var pooledReplicates = new double[resamples];
            var picks = new int[n];
            for (var b = 0; b < resamples; b++)
            {
                var sum = 0.0;
                for (var i = 0; i < n; i++)
                {
                    picks[i] = random.Next(n);
                    sum += differences[picks[i]];
                }

                replicates[b] = sum / n;
                pooledReplicates[b] = Pooled(values, picks);
            }

            Array.Sort(replicates);
            Array.Sort(pooledReplicates);
            (lower, upper) = (Bootstrap.Quantile(replicates, 0.025), Bootstrap.Quantile(replicates, 0.975));
            (pooledLower, pooledUpper) = (Bootstrap.Quantile(pooledReplicates, 0.025), Bootstrap.Quantile(pooledReplicates, 0.975));
        }

        var (v, p, exact) = (double.NaN, double.NaN, false);
        try
        {
            var test = RankTests.WilcoxonSignedRank(meanFirst, meanSecond);
            (v, p, exact) = (test.V, test.PValue, test.IsExact);
        }
        catch (ArgumentException)
        {
            // Every context difference is zero: the test is undefined (null in JSON).
        }

        var sd = n >= 2 ? Descriptive.StandardDeviation(differences) : double.NaN;
        return new PairedComparisonStatistics(n, values.First.Sum(v => v.Length), values.Second.Sum(v => v.Length),
            meanFirst.Average(), meanSecond.Average(), differences.Average(), lower, upper, pooled, pooledLower, pooledUpper,
            MatchedRankBiserial(differences), sd > 0 ? differences.Average() / sd : double.NaN, v, p, exact);
    }

    /// <summary>
    /// Matched-pairs rank-biserial correlation (Kerby 2014): zero differences dropped, |d| ranked with average
    /// ranks, (T⁺ − T⁻)/(T⁺ + T⁻); NaN when every difference is zero.
    /// </summary>
    public static double MatchedRankBiserial(IReadOnlyList<double> differences)
    {
        ArgumentNullException.ThrowIfNull(differences);
        double[] nonZero = [.. differences.Where(d => d != 0)];
        if (nonZero.Length == 0)
        {
            return double.NaN;
        }

        var ranks = Ranking.AverageRanks([.. nonZero.Select(Math.Abs)], out _);
        var (positive, negative) = (0.0, 0.0);
        for (var i = 0; i < nonZero.Length; i++)
        {
            if (nonZero[i] > 0)
            {
                positive += ranks[i];
            }
            else
            {
                negative += ranks[i];
            }
        }

        return (positive - negative) / (positive + negative);
    }

    private static Dictionary<string, PairMeasurement[]> Group(IEnumerable<PairMeasurement> items) =>
        items.GroupBy(m => m.Pair.ContextId!, StringComparer.Ordinal).ToDictionary(group => group.Key, group => group.ToArray(), StringComparer.Ordinal);

    // Mean of every first-condition pair minus mean of every second-condition pair of the chosen contexts.
    private static double Pooled(ContextValues values, IEnumerable<int> contexts)
    {
        var (sumFirst, countFirst, sumSecond, countSecond) = (0.0, 0, 0.0, 0);
        foreach (var context in contexts)
        {
            sumFirst += values.First[context].Sum();
            countFirst += values.First[context].Length;
            sumSecond += values.Second[context].Sum();
            countSecond += values.Second[context].Length;
        }

        return (sumFirst / countFirst) - (sumSecond / countSecond);
    }

    /// <summary>The cluster bootstrap's seed for comparison <paramref name="index"/> at layer index <paramref name="layer"/> (the layer count for layer means).</summary>
    /// <remarks>Arithmetic (HashCode.Combine is randomized per process), apart from ProbeAnalysis's sub-seeds.</remarks>
    public static int SubSeed(int seed, int index, int layer) => unchecked((seed * 1_000_003) + (4 * 100_003) + (index * 1_009) + layer);
}

/// <summary>Per context (the same order in both lists), the metric of its pairs of each condition.</summary>
/// <param name="First">First-condition values per context (each non-empty).</param>
/// <param name="Second">Second-condition values per context (each non-empty).</param>
public sealed record ContextValues(IReadOnlyList<double[]> First, IReadOnlyList<double[]> Second);
