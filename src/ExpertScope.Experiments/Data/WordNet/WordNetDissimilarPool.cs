namespace ExpertScope.Experiments.Data.WordNet;

/// <summary>
/// Draws words of the same part of speech that are unrelated to a target, as the substitution probe's
/// <c>wordnet-dissimilar</c> condition: word-level Wu-Palmer similarity below a threshold (0.3), no shared synset,
/// and no synset of one within <see cref="MinimumPathDistance"/> − 1 hypernym edges of a synset of the other.
/// </summary>
/// <param name="database">The WordNet database.</param>
/// <param name="minTaggedSenses">
/// Only lemmas with at least this many senses seen in the semantic concordances (<c>tagsense_cnt</c>) are
/// candidates, which keeps rare and technical words out (1 by default).
/// </param>
/// <param name="minPathDistance">The fewest hypernym edges between any two synsets of a target and a pick (<see cref="MinimumPathDistance"/> by default; 0 turns the check off).</param>
public sealed class WordNetDissimilarPool(WordNetDatabase database, int minTaggedSenses = 1, int minPathDistance = WordNetDissimilarPool.MinimumPathDistance)
{
    private readonly WuPalmer _wuPalmer = new(database);
    private readonly Dictionary<WordNetPos, string[]> _candidates = [];

    /// <summary>
    /// Two words count as unrelated only if every pair of their synsets is at least this many hypernym edges apart
    /// (up to the deepest shared ancestor and down again): 5, so siblings, cousins and near hypernyms are excluded.
    /// </summary>
    public const int MinimumPathDistance = 5;

    /// <summary>The Wu-Palmer calculator the pool uses.</summary>
    public WuPalmer WuPalmer => _wuPalmer;

    /// <summary>
    /// Up to <paramref name="count"/> distinct lower-case single words of <paramref name="pos"/> whose Wu-Palmer
    /// similarity to <paramref name="lemma"/> is below <paramref name="maxSimilarity"/>, in a seeded random order.
    /// Fewer are returned only when the candidate list runs out.
    /// </summary>
    public IReadOnlyList<(string Word, double Similarity)> Sample(string lemma, WordNetPos pos, int count, int seed, double maxSimilarity = 0.3)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var candidates = Candidates(pos);
        var random = new Random(seed);
        var order = Enumerable.Range(0, candidates.Length).ToArray();
        var result = new List<(string, double)>(count);
        var target = lemma.ToLowerInvariant();
        // A partial Fisher-Yates shuffle: only as many candidates are drawn and scored as needed.
        for (var index = 0; index < order.Length && result.Count < count; index++)
        {
            var pick = random.Next(index, order.Length);
            (order[index], order[pick]) = (order[pick], order[index]);
            var word = candidates[order[index]];
            if (word == target)
            {
                continue;
            }

            var similarity = _wuPalmer.WordSimilarity(target, word, pos);
            if (similarity < maxSimilarity && (minPathDistance <= 0 || PathDistance(target, word, pos) >= minPathDistance))
            {
                result.Add((word, similarity));
            }
        }

        return result;
    }

    /// <summary>
    /// The fewest hypernym edges between any synset of <paramref name="first"/> and any of <paramref name="second"/>
    /// through a shared ancestor: 0 for a shared synset; <see cref="int.MaxValue"/> when no hypernym path connects them
    /// (or a word is not in WordNet).
    /// </summary>
    public int PathDistance(string first, string second, WordNetPos pos)
    {
        var best = int.MaxValue;
        foreach (var a in database.SynsetsOf(first, pos))
        {
            foreach (var b in database.SynsetsOf(second, pos))
            {
                if (a.Offset == b.Offset)
                {
                    return 0;
                }

                foreach (var pathA in _wuPalmer.RootPaths(a))
                {
                    foreach (var pathB in _wuPalmer.RootPaths(b))
                    {
                        var shared = 0;
                        while (shared < pathA.Length && shared < pathB.Length && pathA[shared] == pathB[shared])
                        {
                            shared++;
                        }

                        if (shared > 0)
                        {
                            best = Math.Min(best, pathA.Length - shared + pathB.Length - shared);
                        }
                    }
                }
            }
        }

        return best;
    }

    private string[] Candidates(WordNetPos pos)
    {
        if (!_candidates.TryGetValue(pos, out var words))
        {
            words = [.. database.Lemmas(pos).Where(word => word.All(char.IsAsciiLetterLower) && database.TaggedSenseCount(word, pos) >= minTaggedSenses)];
            _candidates[pos] = words;
        }

        return words;
    }
}
