namespace ExpertScope.Experiments.Data.WordNet;

/// <summary>
/// Wu-Palmer similarity over WordNet hypernym paths:
/// <c>wup(s1, s2) = max over root paths p1 of s1 and p2 of s2 of 2·L / (|p1| + |p2|)</c>, where a root path lists
/// the synsets from a hierarchy root down to the synset (both ends included, so a root has depth 1) and <c>L</c>
/// is the length of the common prefix of the two paths, i.e. the depth of their deepest shared ancestor.
/// </summary>
/// <remarks>
/// Paths follow hypernym and instance-hypernym pointers. Verbs have many roots; two synsets whose paths share no
/// root score 0. Adjectives have no hypernyms: a satellite's parent is taken to be its cluster head, so two
/// satellites of one head score 2·1/(2+2) = 0.5 and adjectives of different clusters 0. Adverbs have no hierarchy
/// and score 1 only against themselves. For nouns the result equals NLTK's <c>wup_similarity</c> on the usual
/// examples (dog/cat 0.857).
/// </remarks>
public sealed class WuPalmer(WordNetDatabase database)
{
    private readonly Dictionary<(WordNetPos, int), List<int[]>> _paths = [];

    /// <summary>The similarity of two synsets, in [0, 1]; 0 across parts of speech.</summary>
    public double Similarity(Synset first, Synset second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Pos != second.Pos)
        {
            return 0;
        }

        var best = 0.0;
        foreach (var path1 in RootPaths(first))
        {
            foreach (var path2 in RootPaths(second))
            {
                var shared = 0;
                while (shared < path1.Length && shared < path2.Length && path1[shared] == path2[shared])
                {
                    shared++;
                }

                best = Math.Max(best, 2.0 * shared / (path1.Length + path2.Length));
            }
        }

        return best;
    }

    /// <summary>
    /// The similarity of two words: the maximum over their synsets of <paramref name="pos"/> (as NLTK-based word
    /// similarity is usually defined); 0 when either word is not in WordNet.
    /// </summary>
    public double WordSimilarity(string first, string second, WordNetPos pos)
    {
        var synsets1 = database.SynsetsOf(first, pos);
        var synsets2 = database.SynsetsOf(second, pos);
        var best = 0.0;
        foreach (var synset1 in synsets1)
        {
            foreach (var synset2 in synsets2)
            {
                best = Math.Max(best, Similarity(synset1, synset2));
            }
        }

        return best;
    }

    /// <summary>Every path of synset offsets from a root down to <paramref name="synset"/> (memoized).</summary>
    public IReadOnlyList<int[]> RootPaths(Synset synset)
    {
        ArgumentNullException.ThrowIfNull(synset);
        var key = (synset.Pos, synset.Offset);
        if (_paths.TryGetValue(key, out var cached))
        {
            return cached;
        }

        // Mark the synset while its parents are expanded so a (malformed) cycle ends instead of recursing forever.
        _paths[key] = [];
        var paths = new List<int[]>();
        foreach (var parent in synset.Hypernyms)
        {
            foreach (var parentPath in RootPaths(database.GetSynset(synset.Pos, parent)))
            {
                paths.Add([.. parentPath, synset.Offset]);
            }
        }

        if (paths.Count == 0)
        {
            paths.Add([synset.Offset]);
        }

        _paths[key] = paths;
        return paths;
    }
}
