using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Probes;

/// <summary>One scored comparison of two word occurrences at every MoE layer.</summary>
/// <param name="Pair">The planned pair.</param>
/// <param name="ByLayer">Scores per layer, aligned with <see cref="ProbeRouting.Layers"/>.</param>
public sealed record PairMeasurement(PlannedPair Pair, IReadOnlyList<PairScores> ByLayer)
{
    /// <summary>|position difference| of the two words' first tokens.</summary>
    public int PositionDifference => Math.Abs(Pair.First.Position - Pair.Second.Position);

    /// <summary>The layer average of <paramref name="metric"/>.</summary>
    public double LayerMean(ProbeMetric metric) => ByLayer.Average(scores => scores.Get(metric));
}

/// <summary>A condition's metric at one layer: count, mean and a seeded bootstrap 95% interval of the mean.</summary>
/// <param name="Count">Pairs.</param>
/// <param name="Mean">Mean metric.</param>
/// <param name="Lower">Lower end of the 95% percentile interval (NaN under two pairs).</param>
/// <param name="Upper">Upper end.</param>
public sealed record ConditionSummary(int Count, double Mean, double Lower, double Upper);

/// <summary>Two conditions compared at one layer (or on layer means).</summary>
/// <param name="CountFirst">Pairs of the first condition.</param>
/// <param name="CountSecond">Pairs of the second.</param>
/// <param name="MeanFirst">Mean of the first.</param>
/// <param name="MeanSecond">Mean of the second.</param>
/// <param name="Difference">MeanFirst − MeanSecond.</param>
/// <param name="Lower">Lower end of the seeded two-sample bootstrap 95% interval of the difference.</param>
/// <param name="Upper">Upper end.</param>
/// <param name="RankBiserial">Rank-biserial correlation (positive: first tends to be larger).</param>
/// <param name="CohensD">Cohen's d with the pooled standard deviation.</param>
/// <param name="MannWhitneyP">Two-sided Mann-Whitney p-value (R's <c>wilcox.test</c>).</param>
/// <param name="WelchP">Two-sided Welch t-test p-value.</param>
public sealed record ComparisonStatistics(
    int CountFirst, int CountSecond, double MeanFirst, double MeanSecond, double Difference, double Lower, double Upper,
    double RankBiserial, double CohensD, double MannWhitneyP, double WelchP)
{
    /// <summary>Mann-Whitney p-value, Holm-corrected across layers (NaN for the layer mean, which is one test).</summary>
    public double MannWhitneyHolm { get; init; } = double.NaN;

    /// <summary>Mann-Whitney p-value, Benjamini-Hochberg-corrected across layers.</summary>
    public double MannWhitneyBh { get; init; } = double.NaN;

    /// <summary>Welch p-value, Holm-corrected across layers.</summary>
    public double WelchHolm { get; init; } = double.NaN;

    /// <summary>Welch p-value, Benjamini-Hochberg-corrected across layers.</summary>
    public double WelchBh { get; init; } = double.NaN;
}

/// <summary>One comparison (e.g. same-sense vs different-sense) at every layer and on the layer means.</summary>
/// <param name="First">Condition expected to score higher on a similarity metric.</param>
/// <param name="Second">The other condition.</param>
/// <param name="ByLayer">Per layer, aligned with <see cref="ProbeResults.Layers"/>.</param>
/// <param name="LayerMean">On each pair's mean over layers.</param>
public sealed record ComparisonResult(string First, string Second, IReadOnlyList<ComparisonStatistics> ByLayer, ComparisonStatistics LayerMean)
{
    /// <summary>Layers whose Holm-corrected Mann-Whitney p-value is below 0.05.</summary>
    public int SignificantLayers => ByLayer.Count(layer => layer.MannWhitneyHolm < 0.05);
}

/// <summary>Correlation of a condition's layer-mean metric with the words' |position difference|.</summary>
/// <param name="Condition">The condition.</param>
/// <param name="Count">Pairs.</param>
/// <param name="Spearman">Spearman's rho (NaN when undefined, e.g. constant positions).</param>
/// <param name="PValue">Its two-sided p-value.</param>
public sealed record PositionCorrelation(string Condition, int Count, double Spearman, double PValue);

/// <summary>Everything a probe found.</summary>
public sealed class ProbeResults
{
    /// <summary>MoE layers, ascending.</summary>
    public required IReadOnlyList<int> Layers { get; init; }

    /// <summary>Every scored pair (data-set pairs and controls).</summary>
    public required IReadOnlyList<PairMeasurement> Measurements { get; init; }

    /// <summary>Conditions present, in display order.</summary>
    public required IReadOnlyList<string> Conditions { get; init; }

    /// <summary>Per condition, its summary at each layer.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<ConditionSummary>> ByCondition { get; init; }

    /// <summary>Per condition, its summary on pairs' layer means.</summary>
    public required IReadOnlyDictionary<string, ConditionSummary> ByConditionLayerMean { get; init; }

    /// <summary>The comparisons, the main one first.</summary>
    public required IReadOnlyList<ComparisonResult> Comparisons { get; init; }

    /// <summary>Position control: correlation with |position difference| per condition.</summary>
    public required IReadOnlyList<PositionCorrelation> PositionCorrelations { get; init; }

    /// <summary>Position control: the main comparison on pairs whose words sit within the tolerance of each other (layer means); null when too few.</summary>
    public ComparisonStatistics? PositionMatched { get; init; }

    /// <summary>Token control: the main comparison on pairs whose two words have the same token ids (layer means); null when too few.</summary>
    public ComparisonStatistics? TokenMatched { get; init; }
}

/// <summary>Scores planned pairs and computes the statistics.</summary>
public static class ProbeAnalysis
{
    /// <summary>Scores every pair at every layer.</summary>
    /// <param name="pairs">The planned pairs (<see cref="ProbePlan.Pairs"/>).</param>
    /// <param name="routing">The routing of their positions.</param>
    /// <param name="settings">Sub-token mode and shared-expert handling.</param>
    /// <param name="sharedExperts">Shared experts of the model (used only with <see cref="ProbeSettings.IncludeShared"/>).</param>
    public static IReadOnlyList<PairMeasurement> Score(IReadOnlyList<PlannedPair> pairs, ProbeRouting routing, ProbeSettings settings, int sharedExperts)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(routing);
        ArgumentNullException.ThrowIfNull(settings);
        var shared = settings.IncludeShared ? sharedExperts : 0;
        return [.. pairs.Select(pair => new PairMeasurement(pair, [.. Enumerable.Range(0, routing.Layers.Count).Select(layer =>
            PairScores.Compute(routing.Word(pair.First, layer), routing.Word(pair.Second, layer), settings.SubTokens, shared, routing.ExpertCount))]))];
    }

    /// <summary>Statistics of the measurements on <see cref="ProbeSettings.Metric"/>.</summary>
    public static ProbeResults Analyze(ProbeKind kind, IReadOnlyList<int> layers, IReadOnlyList<PairMeasurement> measurements, ProbeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(measurements);
        ArgumentNullException.ThrowIfNull(settings);
        var metric = settings.Metric;
        var groups = ProbeConditions.All(kind)
            .Select(condition => (condition, items: measurements.Where(m => m.Pair.Condition == condition).ToArray()))
            .Where(group => group.items.Length > 0)
            .ToDictionary(group => group.condition, group => group.items, StringComparer.Ordinal);
        var conditions = ProbeConditions.All(kind).Where(groups.ContainsKey).ToArray();
        double[] Values(string condition, int layer) => [.. groups[condition].Select(m => m.ByLayer[layer].Get(metric))];
        double[] Means(string condition) => [.. groups[condition].Select(m => m.LayerMean(metric))];

        var byCondition = new Dictionary<string, IReadOnlyList<ConditionSummary>>(StringComparer.Ordinal);
        var byConditionMean = new Dictionary<string, ConditionSummary>(StringComparer.Ordinal);
        for (var c = 0; c < conditions.Length; c++)
        {
            var condition = conditions[c];
            byCondition[condition] = [.. Enumerable.Range(0, layers.Count).Select(layer => Summarize(Values(condition, layer), SubSeed(settings.Seed, 1, c, layer), settings.BootstrapResamples))];
            byConditionMean[condition] = Summarize(Means(condition), SubSeed(settings.Seed, 1, c, layers.Count), settings.BootstrapResamples);
        }

        var comparisons = new List<ComparisonResult>();
        var pairsOfConditions = ProbeConditions.Comparisons(kind);
        for (var c = 0; c < pairsOfConditions.Count; c++)
        {
            var (first, second) = pairsOfConditions[c];
            if (!groups.ContainsKey(first) || !groups.ContainsKey(second))
            {
                continue;
            }

            var perLayer = Enumerable.Range(0, layers.Count)
                .Select(layer => Compare(Values(first, layer), Values(second, layer), SubSeed(settings.Seed, 2, c, layer), settings.BootstrapResamples))
                .ToArray();
            var mannWhitney = Correct([.. perLayer.Select(s => s.MannWhitneyP)]);
            var welch = Correct([.. perLayer.Select(s => s.WelchP)]);
            for (var layer = 0; layer < perLayer.Length; layer++)
            {
                perLayer[layer] = perLayer[layer] with
                {
                    MannWhitneyHolm = mannWhitney.Holm[layer], MannWhitneyBh = mannWhitney.Bh[layer],
                    WelchHolm = welch.Holm[layer], WelchBh = welch.Bh[layer],
                };
            }

            comparisons.Add(new ComparisonResult(first, second, perLayer,
                Compare(Means(first), Means(second), SubSeed(settings.Seed, 2, c, layers.Count), settings.BootstrapResamples)));
        }

        var correlations = new List<PositionCorrelation>();
        foreach (var condition in conditions)
        {
            var items = groups[condition];
            double[] x = [.. items.Select(m => (double)m.PositionDifference)];
            double[] y = [.. items.Select(m => m.LayerMean(metric))];
            var (rho, p) = (double.NaN, double.NaN);
            if (items.Length >= 3)
            {
                try
                {
                    var result = Correlation.Spearman(x, y);
                    (rho, p) = (result.Estimate, result.PValue);
                }
                catch (ArgumentException)
                {
                    // Constant positions or values: the correlation is undefined and stays NaN.
                }
            }

            correlations.Add(new PositionCorrelation(condition, items.Length, rho, p));
        }

        // The main comparison restricted by a control's criterion, on layer means.
        ComparisonStatistics? Restricted(Func<PairMeasurement, bool> keep, int index)
        {
            var (mainFirst, mainSecond) = pairsOfConditions[0];
            if (!groups.TryGetValue(mainFirst, out var firstItems) || !groups.TryGetValue(mainSecond, out var secondItems))
            {
                return null;
            }

            double[] x = [.. firstItems.Where(keep).Select(m => m.LayerMean(metric))];
            double[] y = [.. secondItems.Where(keep).Select(m => m.LayerMean(metric))];
            return x.Length > 0 && y.Length > 0 ? Compare(x, y, SubSeed(settings.Seed, 3, index, 0), settings.BootstrapResamples) : null;
        }

        var matched = Restricted(m => m.PositionDifference <= settings.PositionMatchTolerance, 0);
        var tokenMatched = Restricted(m => m.Pair.SameTokenIds, 1);

        return new ProbeResults
        {
            Layers = layers,
            Measurements = measurements,
            Conditions = conditions,
            ByCondition = byCondition,
            ByConditionLayerMean = byConditionMean,
            Comparisons = comparisons,
            PositionCorrelations = correlations,
            PositionMatched = matched,
            TokenMatched = tokenMatched,
        };
    }

    /// <summary>Count, mean and a seeded percentile bootstrap 95% interval of the mean.</summary>
    public static ConditionSummary Summarize(double[] values, int seed, int resamples)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0)
        {
            return new ConditionSummary(0, double.NaN, double.NaN, double.NaN);
        }

        var mean = values.Average();
        if (values.Length < 2)
        {
            return new ConditionSummary(values.Length, mean, double.NaN, double.NaN);
        }

        var interval = Bootstrap.Percentile(values, Bootstrap.Mean, resamples, seed);
        return new ConditionSummary(values.Length, mean, interval.Lower, interval.Upper);
    }

    /// <summary>
    /// Compares two independent samples: means, their difference with a seeded two-sample percentile bootstrap 95%
    /// interval (each sample resampled with replacement on its own), rank-biserial r, Cohen's d, and two-sided
    /// Mann-Whitney and Welch p-values. A statistic the data cannot define (too few values, all values tied) is NaN.
    /// </summary>
    public static ComparisonStatistics Compare(double[] x, double[] y, int seed, int resamples)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        var meanX = x.Length > 0 ? x.Average() : double.NaN;
        var meanY = y.Length > 0 ? y.Average() : double.NaN;
        var (lower, upper) = (double.NaN, double.NaN);
        if (x.Length >= 2 && y.Length >= 2)
        {
            var random = new Random(seed);
            var replicates = new double[resamples];
            for (var b = 0; b < resamples; b++)
            {
                replicates[b] = ResampledMean(x, random) - ResampledMean(y, random);
            }

            Array.Sort(replicates);
            (lower, upper) = (Bootstrap.Quantile(replicates, 0.025), Bootstrap.Quantile(replicates, 0.975));
        }

        return new ComparisonStatistics(x.Length, y.Length, meanX, meanY, meanX - meanY, lower, upper,
            Try(() => EffectSizes.RankBiserial(x, y)),
            Try(() => EffectSizes.CohensD(x, y)),
            Try(() => RankTests.MannWhitney(x, y).PValue),
            Try(() => TTests.Welch(x, y).PValue));
    }

    private static double ResampledMean(double[] values, Random random)
    {
        var sum = 0.0;
        for (var i = 0; i < values.Length; i++)
        {
            sum += values[random.Next(values.Length)];
        }

        return sum / values.Length;
    }

    private static double Try(Func<double> statistic)
    {
        try
        {
            return statistic();
        }
        catch (ArgumentException)
        {
            // Degenerate input (too few values, every value tied): undefined, reported as NaN (null in JSON).
            return double.NaN;
        }
    }

    private static (double[] Holm, double[] Bh) Correct(double[] pValues)
    {
        var holm = Enumerable.Repeat(double.NaN, pValues.Length).ToArray();
        var bh = Enumerable.Repeat(double.NaN, pValues.Length).ToArray();
        var finite = Enumerable.Range(0, pValues.Length).Where(i => double.IsFinite(pValues[i])).ToArray();
        if (finite.Length > 0)
        {
            double[] values = [.. finite.Select(i => pValues[i])];
            var adjustedHolm = MultipleComparisons.Adjust(values, PAdjustMethod.Holm);
            var adjustedBh = MultipleComparisons.Adjust(values, PAdjustMethod.BenjaminiHochberg);
            for (var j = 0; j < finite.Length; j++)
            {
                holm[finite[j]] = adjustedHolm[j];
                bh[finite[j]] = adjustedBh[j];
            }
        }

        return (holm, bh);
    }

    // Arithmetic sub-seeds (HashCode.Combine is randomized per process).
    private static int SubSeed(int seed, int kind, int index, int layer) => unchecked((seed * 1_000_003) + (kind * 100_003) + (index * 1_009) + layer);
}
