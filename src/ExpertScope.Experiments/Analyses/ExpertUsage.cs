namespace ExpertScope.Experiments.Analyses;

/// <summary>What an expert-usage distribution measures.</summary>
public enum UsageMeasure
{
    /// <summary>Frequency of selection: how many tokens routed to each expert (any rank).</summary>
    Count,

    /// <summary>Mixing mass: the sum of each expert's mixing weights over the tokens.</summary>
    Weight,

    /// <summary>Top-1 selections: how many tokens ranked the expert first (one decision per token, so no k experts "cover" anything by construction).</summary>
    TopOne,
}

/// <summary>
/// Expert usage of one domain (or any set of tokens), per layer: selection counts, summed mixing weights and the
/// number of tokens, built by <see cref="ExpertUsage.Tally"/>.
/// </summary>
public sealed class ExpertUsageTable
{
    private readonly SortedDictionary<int, (double[] Counts, double[] Weights, double[] TopOne, long Tokens)> _layers;

    internal ExpertUsageTable(string domain, int expertCount, SortedDictionary<int, (double[] Counts, double[] Weights, double[] TopOne, long Tokens)> layers, bool hasWeights = true)
    {
        Domain = domain;
        ExpertCount = expertCount;
        _layers = layers;
        HasWeights = hasWeights;
    }

    /// <summary>
    /// False when the records came from an ids-only routing source (vLLM, SGLang): <see cref="Weights"/> and the
    /// <see cref="UsageMeasure.Weight"/> measure are then not available and throw rather than give a number.
    /// </summary>
    public bool HasWeights { get; }

    /// <summary>The domain the records came from.</summary>
    public string Domain { get; }

    /// <summary>Experts per layer (N); every vector has this length.</summary>
    public int ExpertCount { get; }

    /// <summary>The layers that have records, ascending.</summary>
    public IReadOnlyList<int> Layers => [.. _layers.Keys];

    /// <summary>cᵢ: the number of records (token selections) that chose expert i in <paramref name="layer"/>.</summary>
    public double[] Counts(int layer) => [.. Entry(layer).Counts];

    /// <summary>wᵢ: the sum of expert i's mixing weights in <paramref name="layer"/>.</summary>
    /// <exception cref="InvalidOperationException">The table has no weights (<see cref="HasWeights"/>).</exception>
    public double[] Weights(int layer) => HasWeights
        ? [.. Entry(layer).Weights]
        : throw new InvalidOperationException($"Domain '{Domain}': the routing source gave expert ids only, so mixing weights are not available.");

    /// <summary>The number of distinct tokens (sequence, position) routed in <paramref name="layer"/>.</summary>
    public long Tokens(int layer) => Entry(layer).Tokens;

    /// <summary>tᵢ: the number of tokens whose first-ranked expert (rank 0) is i in <paramref name="layer"/>.</summary>
    public double[] TopOne(int layer) => [.. Entry(layer).TopOne];

    /// <summary>The raw vector for a measure: <see cref="Counts"/>, <see cref="Weights"/> or <see cref="TopOne"/>.</summary>
    public double[] Mass(int layer, UsageMeasure measure) => measure switch
    {
        UsageMeasure.Count => Counts(layer),
        UsageMeasure.TopOne => TopOne(layer),
        _ => Weights(layer),
    };

    /// <summary>The usage distribution pᵢ = xᵢ / Σⱼ xⱼ for a measure (all zeros when the layer has no mass).</summary>
    public double[] Shares(int layer, UsageMeasure measure)
    {
        var mass = Mass(layer, measure);
        var total = mass.Sum();
        return total > 0 ? Array.ConvertAll(mass, value => value / total) : mass;
    }

    private (double[] Counts, double[] Weights, double[] TopOne, long Tokens) Entry(int layer) =>
        _layers.TryGetValue(layer, out var entry)
            ? entry
            : throw new ArgumentOutOfRangeException(nameof(layer), layer, $"Domain '{Domain}' has no records for layer {layer}.");
}

/// <summary>Concentration of one domain's expert usage in one layer.</summary>
/// <param name="Domain">The domain.</param>
/// <param name="Layer">The layer.</param>
/// <param name="Measure">Count- or weight-based.</param>
/// <param name="Tokens">Tokens routed in the layer.</param>
/// <param name="ExpertsFor50">Fewest experts covering 50% of the mass (<see cref="DistributionStatistics.ExpertsToCover"/>).</param>
/// <param name="ExpertsFor80">Fewest experts covering 80%.</param>
/// <param name="ExpertsFor90">Fewest experts covering 90%.</param>
/// <param name="EntropyBits">Entropy of the usage shares in bits.</param>
/// <param name="NormalizedEntropy">Entropy / log₂ N.</param>
/// <param name="Gini">Gini coefficient of the usage.</param>
/// <param name="TopExpert">The expert with the largest share (lowest index on ties).</param>
/// <param name="TopExpertShare">Its share.</param>
public sealed record ExpertUsageSummary(
    string Domain, int Layer, UsageMeasure Measure, long Tokens, int ExpertsFor50, int ExpertsFor80, int ExpertsFor90,
    double EntropyBits, double NormalizedEntropy, double Gini, int TopExpert, double TopExpertShare);

/// <summary>Jensen-Shannon divergences (bits) between the domains' usage distributions in one layer.</summary>
/// <param name="Domains">Row and column names.</param>
/// <param name="Layer">The layer.</param>
/// <param name="Measure">Count- or weight-based.</param>
/// <param name="Bits">[i, j] = JSD(pᵢ, pⱼ) in bits, in [0, 1].</param>
public sealed record DomainDivergenceMatrix(IReadOnlyList<string> Domains, int Layer, UsageMeasure Measure, double[,] Bits);

/// <summary>Expert-usage distributions per layer and domain, and their concentration and divergence.</summary>
public static class ExpertUsage
{
    /// <summary>
    /// Tallies routing records: per layer, cᵢ = number of records with expert i, wᵢ = Σ weight of those records,
    /// tᵢ = number of rank-0 records with expert i, and the number of distinct (sequence, position) tokens. Count shares pᵢ = cᵢ / Σc are selection
    /// frequencies (with top-k routing Σc = k · tokens); weight shares pᵢ = wᵢ / Σw are the mixing mass.
    /// Records from an ids-only source carry a NaN weight: if every record does, the table has no weights
    /// (<see cref="ExpertUsageTable.HasWeights"/> false); a mix of NaN and real weights is refused.
    /// </summary>
    /// <param name="domain">A name for the records' domain.</param>
    /// <param name="records">Routing records, any order.</param>
    /// <param name="expertCount">Experts per layer, N.</param>
    /// <exception cref="ArgumentOutOfRangeException">An expert index is outside [0, N), a weight is negative or infinite, or NaN weights are mixed with real ones.</exception>
    public static ExpertUsageTable Tally(string domain, IEnumerable<RoutingRecord> records, int expertCount)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentOutOfRangeException.ThrowIfLessThan(expertCount, 1);
        var layers = new SortedDictionary<int, (double[] Counts, double[] Weights, double[] TopOne, long Tokens)>();
        var tokens = new Dictionary<int, HashSet<(int, int)>>();
        bool? idsOnly = null;
        foreach (var record in records)
        {
            if ((uint)record.Expert >= (uint)expertCount)
            {
                throw new ArgumentOutOfRangeException(nameof(records), record.Expert, $"Expert index outside [0, {expertCount}) in layer {record.Layer}.");
            }

            bool missing = float.IsNaN(record.Weight);
            idsOnly ??= missing;
            if (missing != idsOnly)
            {
                throw new ArgumentOutOfRangeException(nameof(records), record.Weight, "Records with a mixing weight and records without one (ids only) are mixed.");
            }

            if (!missing && (!float.IsFinite(record.Weight) || record.Weight < 0))
            {
                throw new ArgumentOutOfRangeException(nameof(records), record.Weight, "Mixing weights must be finite and non-negative.");
            }

            if (!layers.TryGetValue(record.Layer, out var entry))
            {
                entry = (new double[expertCount], new double[expertCount], new double[expertCount], 0);
                layers[record.Layer] = entry;
                tokens[record.Layer] = [];
            }

            entry.Counts[record.Expert]++;
            if (!missing)
            {
                entry.Weights[record.Expert] += record.Weight;
            }

            if (record.Rank == 0)
            {
                entry.TopOne[record.Expert]++;
            }

            tokens[record.Layer].Add((record.Sequence, record.Position));
        }

        foreach (var (layer, set) in tokens)
        {
            layers[layer] = layers[layer] with { Tokens = set.Count };
        }

        return new ExpertUsageTable(domain, expertCount, layers, hasWeights: idsOnly != true);
    }

    /// <summary>The concentration of a domain's usage in each of its layers (layers without mass are left out).</summary>
    public static IReadOnlyList<ExpertUsageSummary> Summarize(ExpertUsageTable table, UsageMeasure measure)
    {
        ArgumentNullException.ThrowIfNull(table);
        var summaries = new List<ExpertUsageSummary>();
        foreach (var layer in table.Layers)
        {
            var mass = table.Mass(layer, measure);
            if (mass.Sum() <= 0)
            {
                continue;
            }

            var shares = table.Shares(layer, measure);
            var top = Array.IndexOf(shares, shares.Max());
            summaries.Add(new ExpertUsageSummary(
                table.Domain, layer, measure, table.Tokens(layer),
                DistributionStatistics.ExpertsToCover(mass, 0.5),
                DistributionStatistics.ExpertsToCover(mass, 0.8),
                DistributionStatistics.ExpertsToCover(mass, 0.9),
                DistributionStatistics.EntropyBits(mass),
                DistributionStatistics.NormalizedEntropy(mass),
                DistributionStatistics.Gini(mass),
                top,
                shares[top]));
        }

        return summaries;
    }

    /// <summary>The Jensen-Shannon divergence matrix between the domains' usage in one layer.</summary>
    /// <exception cref="ArgumentException">Tables differ in expert count, or a domain has no mass in the layer.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A domain has no records for the layer.</exception>
    public static DomainDivergenceMatrix DomainDivergence(IReadOnlyList<ExpertUsageTable> tables, int layer, UsageMeasure measure)
    {
        ArgumentNullException.ThrowIfNull(tables);
        if (tables.Select(table => table.ExpertCount).Distinct().Count() > 1)
        {
            throw new ArgumentException("The domains' tables have different expert counts.", nameof(tables));
        }

        var matrix = DistributionStatistics.JensenShannonMatrix([.. tables.Select(table => table.Mass(layer, measure))]);
        return new DomainDivergenceMatrix([.. tables.Select(table => table.Domain)], layer, measure, matrix);
    }
}
