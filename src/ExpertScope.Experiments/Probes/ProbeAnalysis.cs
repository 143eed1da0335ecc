using ExpertScope.Experiments.Metrics;
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

    /// <summary>
    /// Mann-Whitney p-value, Holm-corrected over every Mann-Whitney test of the run (each comparison's layers and its
    /// layer mean): the correction a finding is read from.
    /// </summary>
    public double MannWhitneyHolmRun { get; init; } = double.NaN;

    /// <summary>Mann-Whitney p-value, Benjamini-Hochberg-corrected over every Mann-Whitney test of the run (secondary).</summary>
    public double MannWhitneyBhRun { get; init; } = double.NaN;

    /// <summary>Lower end of the seeded two-sample bootstrap 95% interval of the rank-biserial r (NaN when undefined).</summary>
    public double RankBiserialLower { get; init; } = double.NaN;

    /// <summary>Upper end of the rank-biserial interval.</summary>
    public double RankBiserialUpper { get; init; } = double.NaN;

    /// <summary>Lower end of the seeded two-sample bootstrap 95% interval of Cohen's d (NaN when undefined).</summary>
    public double CohensDLower { get; init; } = double.NaN;

    /// <summary>Upper end of the Cohen's d interval.</summary>
    public double CohensDUpper { get; init; } = double.NaN;
}

/// <summary>One comparison (e.g. same-sense vs different-sense) at every layer and on the layer means.</summary>
/// <param name="First">Condition expected to score higher on a similarity metric.</param>
/// <param name="Second">The other condition.</param>
/// <param name="ByLayer">Per layer, aligned with <see cref="ProbeResults.Layers"/>.</param>
/// <param name="LayerMean">On each pair's mean over layers.</param>
public sealed record ComparisonResult(string First, string Second, IReadOnlyList<ComparisonStatistics> ByLayer, ComparisonStatistics LayerMean)
{
    /// <summary>Layers whose Mann-Whitney p-value, Holm-corrected over every test of the run, is below 0.05.</summary>
    public int SignificantLayers => ByLayer.Count(layer => layer.MannWhitneyHolmRun < 0.05);

    /// <summary>
    /// True when a layer or the layer mean is significant after Holm correction over every Mann-Whitney test of the
    /// run (layers × comparisons, plus each comparison's layer mean): the only ground for "a difference was found".
    /// </summary>
    public bool DifferenceFound => SignificantLayers > 0 || LayerMean.MannWhitneyHolmRun < 0.05;

    /// <summary>
    /// Which pairs of the first condition entered, when not all did: comparisons with the token-identity control
    /// use only same/different-sense pairs whose two targets have identical token ids (<c>same-token-ids</c>).
    /// </summary>
    public string? FirstRestrictedTo { get; init; }
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

    /// <summary>Expert load of each layer measured on the probed tokens (aligned with <see cref="Layers"/>); empty when not measured.</summary>
    public IReadOnlyList<ExpertLoad> Loads { get; init; } = [];

    /// <summary>Mann-Whitney tests in the run-wide correction family (every comparison's layers and layer mean).</summary>
    public int TestsCorrected { get; init; }
    /// <summary>Substitution: the comparisons tested per context (the primary analysis); empty for the word-sense probe.</summary>
    public IReadOnlyList<ContextPairedComparison> ContextPaired { get; init; } = [];
}

/// <summary>Scores planned pairs and computes the statistics.</summary>
public static class ProbeAnalysis
{
    /// <summary>Scores every pair at every layer.</summary>
    /// <param name="pairs">The planned pairs (<see cref="ProbePlan.Pairs"/>).</param>
    /// <param name="routing">The routing of their positions.</param>
    /// <param name="settings">Sub-token mode and shared-expert handling.</param>
    /// <param name="sharedExperts">Shared experts of the model (used only with <see cref="ProbeSettings.IncludeShared"/>).</param>
    /// <param name="loads">Each layer's measured expert load (<see cref="MeasureLoads"/>) for the load-corrected κ, or null to leave it out.</param>
    public static IReadOnlyList<PairMeasurement> Score(
        IReadOnlyList<PlannedPair> pairs, ProbeRouting routing, ProbeSettings settings, int sharedExperts, IReadOnlyList<ExpertLoad>? loads = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(routing);
        ArgumentNullException.ThrowIfNull(settings);
        var shared = settings.IncludeShared ? sharedExperts : 0;
        return [.. pairs.Select(pair => new PairMeasurement(pair, [.. Enumerable.Range(0, routing.Layers.Count).Select(layer =>
            PairScores.Compute(routing.Word(pair.First, layer), routing.Word(pair.Second, layer), settings.SubTokens, shared,
                loads is null ? double.NaN : loads[layer].ChanceOverlap, routing.ExpertCount))]))];
    }

    /// <summary>
    /// Each layer's expert load on every probed token of the run (each distinct sentence position once), from which
    /// the chance overlap <c>Σₑ qₑ²</c> follows.
    /// </summary>
    public static IReadOnlyList<ExpertLoad> MeasureLoads(ProbeRouting routing)
    {
        ArgumentNullException.ThrowIfNull(routing);
        return [.. Enumerable.Range(0, routing.Layers.Count).Select(layer =>
        {
            var tokens = routing.TokensAt(layer).ToList();
            // N from the routing (ids-only sources carry no probabilities to count it from).
            var expertCount = routing.ExpertCount > 0 ? routing.ExpertCount : tokens[0].Probabilities.Length;
            return ExpertLoad.Measure(tokens.Select(token => (IReadOnlyList<int>)token.Experts), expertCount);
        })];
    }

    /// <summary>
    /// Statistics of the measurements on <see cref="ProbeSettings.Metric"/>. Every Mann-Whitney test of the run (each
    /// comparison at each layer and on layer means) is Holm-corrected as one family (BH as a secondary column); the
    /// per-comparison corrections across layers stay as further columns.
    /// </summary>
    /// <param name="kind">The probe.</param>
    /// <param name="layers">MoE layers.</param>
    /// <param name="measurements">Scored pairs.</param>
    /// <param name="settings">Metric, seed, resamples.</param>
    /// <param name="loads">Measured expert load per layer, kept in the results (optional).</param>
    public static ProbeResults Analyze(
        ProbeKind kind, IReadOnlyList<int> layers, IReadOnlyList<PairMeasurement> measurements, ProbeSettings settings, IReadOnlyList<ExpertLoad>? loads = null)
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

        // Against the token-identity control (whose two words are the same token ids by construction), a sense pair
        // counts only when its two targets are the same token ids too; otherwise token identity alone could differ.
        bool RestrictToSameIds(string condition, string other) =>
            kind == ProbeKind.WordSense && other == ProbeConditions.TokenIdentity
            && condition is ProbeConditions.SameSense or ProbeConditions.DifferentSense;
        PairMeasurement[] Items(string condition, string other) =>
            RestrictToSameIds(condition, other) ? [.. groups[condition].Where(m => m.Pair.SameTokenIds)] : groups[condition];

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

            var firstItems = Items(first, second);
            var secondItems = Items(second, first);
            if (firstItems.Length == 0 || secondItems.Length == 0)
            {
                continue;
            }

            // Each layer has its own seed, so the layers may run in parallel and still give the same numbers.
            var perLayer = Enumerable.Range(0, layers.Count).AsParallel().AsOrdered()
                .Select(layer => Compare([.. firstItems.Select(m => m.ByLayer[layer].Get(metric))], [.. secondItems.Select(m => m.ByLayer[layer].Get(metric))],
                    SubSeed(settings.Seed, 2, c, layer), settings.BootstrapResamples))
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
                Compare([.. firstItems.Select(m => m.LayerMean(metric))], [.. secondItems.Select(m => m.LayerMean(metric))],
                    SubSeed(settings.Seed, 2, c, layers.Count), settings.BootstrapResamples))
            {
                FirstRestrictedTo = RestrictToSameIds(first, second) ? "same-token-ids" : null,
            });
        }

        // One family for the whole run: every comparison's layers and its layer mean.
        var family = comparisons.SelectMany(comparison => comparison.ByLayer.Append(comparison.LayerMean).Select(statistics => statistics.MannWhitneyP)).ToArray();
        var runWide = Correct(family);
        var offset = 0;
        for (var c = 0; c < comparisons.Count; c++)
        {
            var comparison = comparisons[c];
            var byLayer = comparison.ByLayer.Select((statistics, layer) => statistics with
            {
                MannWhitneyHolmRun = runWide.Holm[offset + layer], MannWhitneyBhRun = runWide.Bh[offset + layer],
            }).ToArray();
            var mean = comparison.LayerMean with
            {
                MannWhitneyHolmRun = runWide.Holm[offset + byLayer.Length], MannWhitneyBhRun = runWide.Bh[offset + byLayer.Length],
            };
            comparisons[c] = comparison with { ByLayer = byLayer, LayerMean = mean };
            offset += byLayer.Length + 1;
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
            Loads = loads ?? [],
            TestsCorrected = family.Count(double.IsFinite),
            ContextPaired = ContextPairedAnalysis.Compute(kind, layers.Count, measurements, metric, settings.Seed, settings.BootstrapResamples),
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
    /// interval (each sample resampled with replacement on its own), rank-biserial r and Cohen's d each with a 95%
    /// interval from the same resamples, and two-sided Mann-Whitney and Welch p-values. A statistic the data cannot
    /// define (too few values, all values tied) is NaN; so is an effect-size interval when more than 5% of its
    /// replicates are undefined (otherwise the undefined ones are left out).
    /// </summary>
    public static ComparisonStatistics Compare(double[] x, double[] y, int seed, int resamples)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        var meanX = x.Length > 0 ? x.Average() : double.NaN;
        var meanY = y.Length > 0 ? y.Average() : double.NaN;
        var (lower, upper) = (double.NaN, double.NaN);
        var (rankLower, rankUpper, dLower, dUpper) = (double.NaN, double.NaN, double.NaN, double.NaN);
        if (x.Length >= 2 && y.Length >= 2)
        {
            var random = new Random(seed);
            var replicates = new double[resamples];
            var rankReplicates = new double[resamples];
            var dReplicates = new double[resamples];
            var bufferX = new double[x.Length];
            var bufferY = new double[y.Length];
            for (var b = 0; b < resamples; b++)
            {
                replicates[b] = Resample(x, bufferX, random) - Resample(y, bufferY, random);
                rankReplicates[b] = Try(() => EffectSizes.RankBiserial(bufferX, bufferY));
                dReplicates[b] = Try(() => EffectSizes.CohensD(bufferX, bufferY));
            }

            Array.Sort(replicates);
            (lower, upper) = (Bootstrap.Quantile(replicates, 0.025), Bootstrap.Quantile(replicates, 0.975));
            (rankLower, rankUpper) = Interval(rankReplicates);
            (dLower, dUpper) = Interval(dReplicates);
        }

        return new ComparisonStatistics(x.Length, y.Length, meanX, meanY, meanX - meanY, lower, upper,
            Try(() => EffectSizes.RankBiserial(x, y)),
            Try(() => EffectSizes.CohensD(x, y)),
            Try(() => RankTests.MannWhitney(x, y).PValue),
            Try(() => TTests.Welch(x, y).PValue))
        {
            RankBiserialLower = rankLower, RankBiserialUpper = rankUpper, CohensDLower = dLower, CohensDUpper = dUpper,
        };
    }

    // The 2.5% and 97.5% type-7 quantiles of the defined replicates; NaN when more than 5% are undefined.
    private static (double Lower, double Upper) Interval(double[] replicates)
    {
        double[] defined = [.. replicates.Where(double.IsFinite)];
        if (defined.Length == 0 || defined.Length < replicates.Length * 0.95)
        {
            return (double.NaN, double.NaN);
        }

        Array.Sort(defined);
        return (Bootstrap.Quantile(defined, 0.025), Bootstrap.Quantile(defined, 0.975));
    }

    // Fills the buffer with a resample of the values (in draw order) and returns its mean, summed in draw order.
    private static double Resample(double[] values, double[] buffer, Random random)
    {
        var sum = 0.0;
        for (var i = 0; i < values.Length; i++)
        {
            buffer[i] = values[random.Next(values.Length)];
            sum += buffer[i];
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

    /// <summary>Holm and BH over the finite p-values (NaN stays NaN and is not counted), as R's <c>p.adjust</c> on the non-missing ones.</summary>
    internal static (double[] Holm, double[] Bh) Correct(double[] pValues)
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
