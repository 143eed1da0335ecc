namespace ExpertScope.Experiments.Analyses;

/// <summary>How consistently one token id is routed across its occurrences in one layer.</summary>
/// <param name="Layer">The layer.</param>
/// <param name="TokenId">The token id.</param>
/// <param name="Occurrences">n_t: its occurrences (distinct sequence, position) in the layer.</param>
/// <param name="ModalTop1">The most frequent top-1 expert (lowest index on ties).</param>
/// <param name="Top1Consistency">Share of occurrences whose top-1 expert is <paramref name="ModalTop1"/>.</param>
/// <param name="ModalTopK">The k experts selected most often over the occurrences (k = the largest top-k size seen; ties: lower index), by frequency.</param>
/// <param name="TopKOverlap">Mean over occurrences of |Sₒ ∩ modal| / |Sₒ|, Sₒ the occurrence's selected experts.</param>
public sealed record TokenRoutingProfile(
    int Layer, int TokenId, int Occurrences, int ModalTop1, double Top1Consistency, IReadOnlyList<int> ModalTopK, double TopKOverlap);

/// <summary>Token-id versus context in one layer, over the tokens with at least the minimum number of occurrences.</summary>
/// <param name="Layer">The layer.</param>
/// <param name="TokenTypes">Token ids that qualified.</param>
/// <param name="Occurrences">N: their occurrences in all.</param>
/// <param name="Top1Consistency">Mean over token ids of <see cref="TokenRoutingProfile.Top1Consistency"/> (each id counts once).</param>
/// <param name="PooledTop1Consistency">Occurrences whose top-1 is their token's modal top-1, over N (frequent ids weigh more).</param>
/// <param name="TopKOverlap">Mean over token ids of <see cref="TokenRoutingProfile.TopKOverlap"/>.</param>
/// <param name="ExpertEntropy">H(E): plug-in entropy of the top-1 expert over the N occurrences, bits.</param>
/// <param name="ConditionalEntropy">H(E | T) = Σₜ (n_t / N) H(E | T = t), bits: what the token id leaves to context.</param>
/// <param name="MutualInformation">I(E; T) = H(E) − H(E | T), bits: what the token id alone determines.</param>
/// <param name="ExpertEntropyMillerMadow">H(E) + (K_E − 1) / (2N ln 2), K_E the number of experts seen.</param>
/// <param name="ConditionalEntropyMillerMadow">Σₜ (n_t / N)[H(E | t) + (K_t − 1) / (2 n_t ln 2)], K_t the experts seen for t.</param>
/// <param name="MutualInformationMillerMadow">The difference of the two corrected entropies (may fall slightly below 0; not clipped).</param>
public sealed record TokenRoutingLayerSummary(
    int Layer, int TokenTypes, long Occurrences, double Top1Consistency, double PooledTop1Consistency, double TopKOverlap,
    double ExpertEntropy, double ConditionalEntropy, double MutualInformation,
    double ExpertEntropyMillerMadow, double ConditionalEntropyMillerMadow, double MutualInformationMillerMadow)
{
    /// <summary>H(E | T) / H(E): the context-dependent share of the routing uncertainty (0 when H(E) = 0).</summary>
    public double ContextShare => ExpertEntropy > 0 ? ConditionalEntropy / ExpertEntropy : 0;
}

/// <summary>Routing consistency with the token id's modal expert in one layer and one range of positions.</summary>
/// <param name="Layer">The layer.</param>
/// <param name="PositionStart">First position of the bucket (0-based, as in the sequence, BOS included if present).</param>
/// <param name="PositionEnd">One past its last position.</param>
/// <param name="Occurrences">Occurrences of qualifying token ids in the bucket.</param>
/// <param name="Top1Consistency">Share of them whose top-1 expert is their id's modal top-1 (pooled over ids).</param>
public sealed record PositionConsistency(int Layer, int PositionStart, int PositionEnd, long Occurrences, double Top1Consistency);

/// <summary>
/// Is routing decided by the token id or by its context? (OpenMoE's "context-independent specialization".) For
/// token ids seen in at least M contexts (occurrences), per layer: how often an occurrence goes to the id's modal
/// expert(s), and how the entropy of the top-1 expert splits into I(E; T), explained by the id, and H(E | T), the
/// context-dependent remainder.
/// </summary>
/// <remarks>
/// Entropies are plug-in (maximum-likelihood) estimates in bits over the occurrences of the qualifying ids only.
/// A plug-in entropy underestimates the true entropy by about (K − 1) / (2n ln 2) bits for K occupied bins and n
/// samples. H(E | T) is estimated from n_t occurrences per id, far fewer than N, so it is biased down much more than
/// H(E), and the plug-in I(E; T) is biased up: with few occurrences per id even context-driven routing looks
/// token-determined. The minimum occurrence count M limits this; the Miller-Madow columns add the first-order
/// correction to each entropy for comparison.
/// </remarks>
public static class TokenRouting
{
    /// <summary>One profile per (layer, token id) with at least <paramref name="minimumOccurrences"/> occurrences, ordered by layer then id.</summary>
    /// <param name="records">Routing records; rank 0 (or the lowest rank present) marks a token's top-1 expert.</param>
    /// <param name="minimumOccurrences">M, at least 1.</param>
    public static IReadOnlyList<TokenRoutingProfile> Profiles(IEnumerable<RoutingRecord> records, int minimumOccurrences)
    {
        var profiles = new List<TokenRoutingProfile>();
        foreach (var (layer, byToken) in GroupOccurrences(records, minimumOccurrences))
        {
            foreach (var (tokenId, occurrences) in byToken)
            {
                profiles.Add(Profile(layer, tokenId, occurrences));
            }
        }

        return profiles;
    }

    /// <summary>The comparison table: one row per layer, ascending (layers with no qualifying id are left out).</summary>
    /// <param name="records">Routing records.</param>
    /// <param name="minimumOccurrences">M, at least 1.</param>
    public static IReadOnlyList<TokenRoutingLayerSummary> Summarize(IEnumerable<RoutingRecord> records, int minimumOccurrences)
    {
        var rows = new List<TokenRoutingLayerSummary>();
        foreach (var (layer, byToken) in GroupOccurrences(records, minimumOccurrences))
        {
            if (byToken.Count == 0)
            {
                continue;
            }

            var profiles = byToken.Select(pair => Profile(layer, pair.Key, pair.Value)).ToList();
            long total = profiles.Sum(profile => (long)profile.Occurrences);
            long matches = profiles.Zip(byToken.Values).Sum(pair => pair.Second.Count(o => o.Top1 == pair.First.ModalTop1));

            var marginal = new Dictionary<int, long>();
            double conditional = 0, conditionalCorrection = 0;
            foreach (var occurrences in byToken.Values)
            {
                var counts = occurrences.GroupBy(o => o.Top1).ToDictionary(group => group.Key, group => (long)group.Count());
                foreach (var (expert, count) in counts)
                {
                    marginal[expert] = marginal.GetValueOrDefault(expert) + count;
                }

                conditional += (double)occurrences.Count / total * InformationMeasures.EntropyBits(counts.Values);
                conditionalCorrection += InformationMeasures.MillerMadowCorrectionBits(counts.Count, total);
            }

            var expertEntropy = InformationMeasures.EntropyBits(marginal.Values);
            var expertCorrected = expertEntropy + InformationMeasures.MillerMadowCorrectionBits(marginal.Count, total);
            var conditionalCorrected = conditional + conditionalCorrection;
            rows.Add(new TokenRoutingLayerSummary(
                layer, profiles.Count, total,
                profiles.Average(profile => profile.Top1Consistency),
                (double)matches / total,
                profiles.Average(profile => profile.TopKOverlap),
                expertEntropy, conditional, Math.Max(0, expertEntropy - conditional),
                expertCorrected, conditionalCorrected, expertCorrected - conditionalCorrected));
        }

        return rows;
    }

    /// <summary>
    /// OpenMoE's "drop towards the end" measurement (Xue et al. 2024, §5): per layer and position bucket
    /// [start, start + width), the share of occurrences whose top-1 expert is their token id's modal top-1 expert,
    /// the mode taken over all of the id's occurrences (ids with at least <paramref name="minimumOccurrences"/>). A
    /// falling share at later positions means routing drifts from the token-id pattern as the context grows.
    /// </summary>
    /// <param name="records">Routing records.</param>
    /// <param name="minimumOccurrences">M, at least 1.</param>
    /// <param name="bucketWidth">Positions per bucket, at least 1.</param>
    public static IReadOnlyList<PositionConsistency> ConsistencyByPosition(IEnumerable<RoutingRecord> records, int minimumOccurrences, int bucketWidth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketWidth, 1);
        var rows = new List<PositionConsistency>();
        foreach (var (layer, byToken) in GroupOccurrences(records, minimumOccurrences))
        {
            var buckets = new SortedDictionary<int, (long Occurrences, long Matches)>();
            foreach (var (tokenId, occurrences) in byToken)
            {
                int modal = Profile(layer, tokenId, occurrences).ModalTop1;
                foreach (var occurrence in occurrences)
                {
                    int bucket = occurrence.Position / bucketWidth;
                    var (n, matches) = buckets.GetValueOrDefault(bucket);
                    buckets[bucket] = (n + 1, matches + (occurrence.Top1 == modal ? 1 : 0));
                }
            }

            rows.AddRange(buckets.Select(pair => new PositionConsistency(
                layer, pair.Key * bucketWidth, (pair.Key + 1) * bucketWidth, pair.Value.Occurrences, (double)pair.Value.Matches / pair.Value.Occurrences)));
        }

        return rows;
    }

    private static TokenRoutingProfile Profile(int layer, int tokenId, List<Occurrence> occurrences)
    {
        var modalTop1 = occurrences.GroupBy(o => o.Top1).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var k = occurrences.Max(o => o.Experts.Count);
        var modalTopK = occurrences.SelectMany(o => o.Experts).GroupBy(e => e)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key).Take(k).Select(g => g.Key).ToArray();
        var modalSet = modalTopK.ToHashSet();
        var consistency = (double)occurrences.Count(o => o.Top1 == modalTop1) / occurrences.Count;
        var overlap = occurrences.Average(o => (double)o.Experts.Count(modalSet.Contains) / o.Experts.Count);
        return new TokenRoutingProfile(layer, tokenId, occurrences.Count, modalTop1, consistency, modalTopK, overlap);
    }

    // layer -> token id -> occurrences, keeping only ids with at least `minimum` occurrences; both levels sorted.
    private static SortedDictionary<int, SortedDictionary<int, List<Occurrence>>> GroupOccurrences(IEnumerable<RoutingRecord> records, int minimum)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimum, 1);
        var tokens = new Dictionary<(int Layer, int Sequence, int Position), Occurrence>();
        foreach (var record in records)
        {
            var key = (record.Layer, record.Sequence, record.Position);
            if (!tokens.TryGetValue(key, out var occurrence))
            {
                occurrence = new Occurrence(record.TokenId, record.Position);
                tokens[key] = occurrence;
            }
            else if (occurrence.TokenId != record.TokenId)
            {
                throw new ArgumentException(
                    $"Records of sequence {record.Sequence}, position {record.Position}, layer {record.Layer} disagree on the token id ({occurrence.TokenId} and {record.TokenId}).",
                    nameof(records));
            }

            occurrence.Add(record.Rank, record.Expert);
        }

        var grouped = new SortedDictionary<int, SortedDictionary<int, List<Occurrence>>>();
        foreach (var ((layer, _, _), occurrence) in tokens)
        {
            if (!grouped.TryGetValue(layer, out var byToken))
            {
                byToken = [];
                grouped[layer] = byToken;
            }

            if (!byToken.TryGetValue(occurrence.TokenId, out var list))
            {
                list = [];
                byToken[occurrence.TokenId] = list;
            }

            list.Add(occurrence);
        }

        foreach (var byToken in grouped.Values)
        {
            foreach (var tokenId in byToken.Where(pair => pair.Value.Count < minimum).Select(pair => pair.Key).ToList())
            {
                byToken.Remove(tokenId);
            }
        }

        return grouped;
    }

    private sealed class Occurrence(int tokenId, int position)
    {
        private int _bestRank = int.MaxValue;

        public int TokenId { get; } = tokenId;

        public int Position { get; } = position;

        public int Top1 { get; private set; } = -1;

        public List<int> Experts { get; } = [];

        public void Add(int rank, int expert)
        {
            if (!Experts.Contains(expert))
            {
                Experts.Add(expert);
            }

            if (rank < _bestRank)
            {
                (_bestRank, Top1) = (rank, expert);
            }
        }
    }
}

/// <summary>Plug-in entropy of a histogram and the Miller-Madow bias correction, in bits.</summary>
public static class InformationMeasures
{
    /// <summary>H = −Σᵢ (nᵢ/n) log₂(nᵢ/n) over the non-zero counts, n = Σ nᵢ; 0 for an empty histogram.</summary>
    /// <exception cref="ArgumentException">A count is negative.</exception>
    public static double EntropyBits(IEnumerable<long> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var list = counts.ToList();
        if (list.Any(count => count < 0))
        {
            throw new ArgumentException("Counts must be non-negative.", nameof(counts));
        }

        double total = list.Sum();
        var entropy = 0.0;
        foreach (var count in list.Where(count => count > 0))
        {
            var p = count / total;
            entropy -= p * Math.Log2(p);
        }

        return Math.Max(0, entropy);
    }

    /// <summary>
    /// Miller-Madow first-order bias of the plug-in entropy, (K − 1) / (2n ln 2) bits for K occupied bins and n
    /// samples; add it to the plug-in estimate. 0 when n is 0 or K ≤ 1.
    /// </summary>
    public static double MillerMadowCorrectionBits(int occupiedBins, long samples) =>
        samples > 0 && occupiedBins > 1 ? (occupiedBins - 1) / (2.0 * samples * Math.Log(2)) : 0;
}
