using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Analyses;

/// <summary>How specific one expert of one layer is to one domain once the token id is held fixed.</summary>
/// <param name="Domain">The domain.</param>
/// <param name="Layer">The layer.</param>
/// <param name="Expert">The expert.</param>
/// <param name="DomainSelected">Tokens of the domain routed to the expert (any of the k slots).</param>
/// <param name="DomainTokens">Tokens of the domain in the layer.</param>
/// <param name="OtherSelected">Tokens of the other domains routed to the expert.</param>
/// <param name="OtherTokens">Tokens of the other domains in the layer.</param>
/// <param name="InformativeStrata">Token ids that carry information (seen in this domain and another, and both selecting and not selecting the expert).</param>
/// <param name="ObservedMinusExpected">Σ_t a_t − Σ_t E[a_t]: the domain's selections beyond what its token ids predict (positive = over-used).</param>
/// <param name="CommonOddsRatio">The Mantel-Haenszel common odds ratio over token strata (NaN when undefined).</param>
/// <param name="ChiSquared">The Cochran–Mantel–Haenszel X² (continuity-corrected as R's default).</param>
/// <param name="PValue">Its two-sided p-value (df 1); 1 when no stratum is informative.</param>
/// <param name="QValue">Benjamini-Hochberg adjusted p-value over every test of the analysis.</param>
/// <param name="Rank">1-based rank within the domain (over-used first, then by q, then by the odds ratio).</param>
public sealed record StratifiedSpecificity(
    string Domain, int Layer, int Expert, long DomainSelected, long DomainTokens, long OtherSelected, long OtherTokens,
    int InformativeStrata, double ObservedMinusExpected, double CommonOddsRatio, double ChiSquared, double PValue, double QValue, int Rank);

/// <summary>
/// Domain-specific experts tested within token ids, so that token frequency alone cannot make an expert look
/// domain-specific: for every (layer, expert, domain) one 2×2 table per token id t, <c>[[a_t, n_dt − a_t], [c_t,
/// n_ot − c_t]]</c> (rows: this domain, the other domains; columns: the token's top-k holds the expert, does not),
/// the Cochran–Mantel–Haenszel test over those strata (R's <c>mantelhaen.test</c>, continuity-corrected), and
/// Benjamini-Hochberg over every test. A router that depends only on the token id gives every token id the same
/// selection probability in every domain, which is exactly this test's null hypothesis; the unstratified
/// <see cref="DomainSpecificity"/> would flag such a router's experts whenever the domains' word frequencies differ.
/// </summary>
/// <remarks>
/// Reproduce in R from <c>token_counts.csv</c> and <c>token_selections.csv</c> (written by <c>analyze domains</c>):
/// for one (layer, expert, domain), build <c>array(c(a, c, n_d − a, n_o − c), dim = c(2, 2, K))</c> over the token ids
/// seen in at least two tokens and call <c>mantelhaen.test</c>; strata of a single token (which R refuses) and strata
/// with zero variance change nothing (see <see cref="MantelHaenszel"/>).
/// </remarks>
public static class TokenStratifiedSpecificity
{
    /// <summary>
    /// Tests every expert of every layer present in all domains, for every domain against the others, stratified by
    /// token id. This is the public entry point for the stratified test (the unstratified one is
    /// <see cref="DomainSpecificity.Rank"/>).
    /// </summary>
    /// <param name="domains">Each domain's routing records (at least two domains; k records per token and layer).</param>
    /// <param name="expertCount">Experts per layer.</param>
    /// <param name="excludedTokenIds">Token ids left out (BOS and other special tokens), or null for none.</param>
    /// <param name="continuityCorrection">R's <c>correct</c> (default TRUE).</param>
    /// <returns>Rows grouped by domain in input order, each group ranked (see <see cref="StratifiedSpecificity.Rank"/>).</returns>
    /// <exception cref="ArgumentException">Fewer than two domains, or an expert index outside [0, expertCount).</exception>
    public static IReadOnlyList<StratifiedSpecificity> Rank(
        IReadOnlyList<(string Domain, IReadOnlyList<RoutingRecord> Records)> domains, int expertCount,
        IReadOnlySet<int>? excludedTokenIds = null, bool continuityCorrection = true)
    {
        ArgumentNullException.ThrowIfNull(domains);
        return Rank([.. domains.Select(d => TokenUsageTable.Tally(d.Domain, d.Records, expertCount, excludedTokenIds))], continuityCorrection);
    }

    /// <summary>The same test on per-token tallies (<see cref="TokenUsageTable.Tally"/>), which need far less memory than the records.</summary>
    /// <exception cref="ArgumentException">Fewer than two domains, or different expert counts.</exception>
    public static IReadOnlyList<StratifiedSpecificity> Rank(IReadOnlyList<TokenUsageTable> tables, bool continuityCorrection = true)
    {
        ArgumentNullException.ThrowIfNull(tables);
        if (tables.Count < 2)
        {
            throw new ArgumentException("Domain specificity compares at least two domains.", nameof(tables));
        }

        int expertCount = tables[0].ExpertCount;
        if (tables.Any(t => t.ExpertCount != expertCount))
        {
            throw new ArgumentException("The domains' tables have different expert counts.", nameof(tables));
        }

        var counts = tables.Select(t => t.Layers).ToArray();
        var layers = counts.Select(c => (IEnumerable<int>)c.Keys).Aggregate((x, y) => x.Intersect(y)).Order().ToList();
        var raw = new List<StratifiedSpecificity>();
        foreach (int layer in layers)
        {
            var perDomain = counts.Select(c => c[layer]).ToArray();
            var tokenIds = perDomain.SelectMany(c => c.Keys).Distinct().Order().ToArray();

            // Totals over all domains per token id: tokens and selections of each expert.
            var totalTokens = new long[tokenIds.Length];
            var totalSelected = new long[tokenIds.Length, expertCount];
            for (int t = 0; t < tokenIds.Length; t++)
            {
                foreach (var domain in perDomain)
                {
                    if (domain.TryGetValue(tokenIds[t], out var entry))
                    {
                        totalTokens[t] += entry.Tokens;
                        for (int e = 0; e < expertCount; e++)
                        {
                            totalSelected[t, e] += entry.Selected[e];
                        }
                    }
                }
            }

            for (int e = 0; e < expertCount; e++)
            {
                for (int d = 0; d < tables.Count; d++)
                {
                    var strata = new List<Stratum2x2>(tokenIds.Length);
                    long a = 0, nd = 0, allSelected = 0, allTokens = 0;
                    for (int t = 0; t < tokenIds.Length; t++)
                    {
                        allSelected += totalSelected[t, e];
                        allTokens += totalTokens[t];
                        long domainTokens = 0, domainSelected = 0;
                        if (perDomain[d].TryGetValue(tokenIds[t], out var entry))
                        {
                            domainTokens = entry.Tokens;
                            domainSelected = entry.Selected[e];
                        }

                        a += domainSelected;
                        nd += domainTokens;
                        long otherTokens = totalTokens[t] - domainTokens;
                        long otherSelected = totalSelected[t, e] - domainSelected;
                        if (domainTokens > 0 && otherTokens > 0)
                        {
                            strata.Add(new Stratum2x2(domainSelected, domainTokens - domainSelected, otherSelected, otherTokens - otherSelected));
                        }
                    }

                    var test = MantelHaenszel.Test(strata, continuityCorrection);
                    raw.Add(new StratifiedSpecificity(
                        tables[d].Domain, layer, e, a, nd, allSelected - a, allTokens - nd,
                        test.InformativeStrata, test.Difference, test.CommonOddsRatio, test.Statistic, test.PValue, double.NaN, 0));
                }
            }
        }

        var q = MultipleComparisons.Adjust([.. raw.Select(row => row.PValue)], PAdjustMethod.BenjaminiHochberg);
        var adjusted = raw.Select((row, index) => row with { QValue = q[index] }).ToList();
        var ranked = new List<StratifiedSpecificity>(adjusted.Count);
        foreach (var table in tables)
        {
            var group = adjusted.Where(row => row.Domain == table.Domain)
                .OrderByDescending(row => row.ObservedMinusExpected > 0)
                .ThenBy(row => row.QValue)
                .ThenByDescending(row => double.IsNaN(row.CommonOddsRatio) ? 1 : row.CommonOddsRatio)
                .ThenBy(row => row.Layer)
                .ThenBy(row => row.Expert);
            ranked.AddRange(group.Select((row, index) => row with { Rank = index + 1 }));
        }

        return ranked;
    }

    /// <summary>The over-used experts of one domain with q below <paramref name="alpha"/>, best first, at most <paramref name="count"/>.</summary>
    public static IReadOnlyList<StratifiedSpecificity> TopForDomain(IReadOnlyList<StratifiedSpecificity> ranked, string domain, int count, double alpha = 0.05)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        return [.. ranked.Where(row => row.Domain == domain && row.ObservedMinusExpected > 0 && row.QValue < alpha).OrderBy(row => row.Rank).Take(count)];
    }
}

/// <summary>One domain's routing per layer and token id: how many tokens carry the id, and how many of them selected each expert.</summary>
public sealed class TokenUsageTable
{
    private TokenUsageTable(string domain, int expertCount, SortedDictionary<int, Dictionary<int, (long Tokens, long[] Selected)>> layers)
    {
        Domain = domain;
        ExpertCount = expertCount;
        Layers = layers;
    }

    /// <summary>The domain.</summary>
    public string Domain { get; }

    /// <summary>Experts per layer.</summary>
    public int ExpertCount { get; }

    /// <summary>Layer → token id → (tokens, selections per expert).</summary>
    public SortedDictionary<int, Dictionary<int, (long Tokens, long[] Selected)>> Layers { get; }

    /// <summary>
    /// Tallies routing records per layer and token id. A token (sequence, position) is counted once per layer; it
    /// selected an expert when any of its k records names it. Records of <paramref name="excludedTokenIds"/> are skipped.
    /// </summary>
    /// <exception cref="ArgumentException">An expert index is outside [0, expertCount).</exception>
    public static TokenUsageTable Tally(string domain, IEnumerable<RoutingRecord> records, int expertCount, IReadOnlySet<int>? excludedTokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentOutOfRangeException.ThrowIfLessThan(expertCount, 1);
        var layers = new SortedDictionary<int, Dictionary<int, (long Tokens, long[] Selected)>>();
        var seen = new HashSet<(int Layer, int Sequence, int Position)>();
        foreach (var record in records)
        {
            if ((uint)record.Expert >= (uint)expertCount)
            {
                throw new ArgumentException($"Expert index {record.Expert} outside [0, {expertCount}) in layer {record.Layer}.", nameof(records));
            }

            if (excludedTokenIds is not null && excludedTokenIds.Contains(record.TokenId))
            {
                continue;
            }

            if (!layers.TryGetValue(record.Layer, out var byToken))
            {
                byToken = [];
                layers[record.Layer] = byToken;
            }

            if (!byToken.TryGetValue(record.TokenId, out var entry))
            {
                entry = (0, new long[expertCount]);
            }

            if (seen.Add((record.Layer, record.Sequence, record.Position)))
            {
                entry.Tokens++;
            }

            entry.Selected[record.Expert]++;
            byToken[record.TokenId] = entry;
        }

        return new TokenUsageTable(domain, expertCount, layers);
    }
}
