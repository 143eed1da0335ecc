namespace ExpertScope.Experiments.Data.WordNet;

/// <summary>A WordNet example sentence in which a lemma occurs.</summary>
/// <param name="Synset">The synset whose gloss holds the example.</param>
/// <param name="Target">The example with the span of the lemma's occurrence (possibly inflected).</param>
public sealed record LemmaExample(Synset Synset, SentenceTarget Target);

/// <summary>
/// Builds same-sense / different-sense pairs from WordNet's gloss examples: two examples of one synset that both
/// contain the lemma are a same-sense pair; examples of two different synsets of the same lemma are a
/// different-sense pair.
/// </summary>
public static class WordNetExamplePairs
{
    /// <summary>
    /// The examples of each synset of <paramref name="lemma"/> that contain it, per synset in sense order.
    /// A word of the example matches when it equals the lemma ignoring case or, with
    /// <paramref name="allowInflected"/>, when morphy maps it to the lemma (<c>banks</c>, <c>went</c>).
    /// Words are maximal runs of letters; a run joined to a hyphen on either side is part of a compound and
    /// does not match. Only single-word lemmas are searched. The first matching word gives the span.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<LemmaExample>> ExamplesOf(WordNetDatabase database, string lemma, WordNetPos pos, bool allowInflected = true)
    {
        ArgumentNullException.ThrowIfNull(database);
        var result = new List<IReadOnlyList<LemmaExample>>();
        if (!lemma.All(char.IsLetter))
        {
            return result;
        }

        foreach (var synset in database.SynsetsOf(lemma, pos))
        {
            var found = new List<LemmaExample>();
            foreach (var example in synset.Examples.Distinct(StringComparer.Ordinal))
            {
                if (FindWord(database, example, lemma, pos, allowInflected) is { } span)
                {
                    found.Add(new LemmaExample(synset, new SentenceTarget(example, span, synset.Source)));
                }
            }

            result.Add(found);
        }

        return result;
    }

    /// <summary>
    /// Builds pairs for every single-word lemma of the given parts of speech (lemmas in index order). Per lemma,
    /// <c>n = min(maxPairsPerLabel, same pairs available, different pairs available)</c> pairs of each label are
    /// drawn without repeats, so the labels are balanced within every lemma and lemmas lacking either kind
    /// contribute nothing.
    /// </summary>
    /// <param name="database">The WordNet database.</param>
    /// <param name="parts">Parts of speech to use (all four when empty).</param>
    /// <param name="maxPairsPerLabel">Cap on pairs per label and lemma.</param>
    /// <param name="seed">Seed of the sampler.</param>
    /// <param name="allowInflected">Whether inflected forms in the examples count as occurrences.</param>
    public static IEnumerable<WordPair> Build(
        WordNetDatabase database, IReadOnlyCollection<WordNetPos> parts, int maxPairsPerLabel, int seed, bool allowInflected = true)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPairsPerLabel);
        var random = new Random(seed);
        var selected = parts.Count > 0 ? parts : [WordNetPos.Noun, WordNetPos.Verb, WordNetPos.Adjective, WordNetPos.Adverb];
        foreach (var pos in selected)
        {
            foreach (var lemma in database.Lemmas(pos))
            {
                var bySynset = ExamplesOf(database, lemma, pos, allowInflected).Where(list => list.Count > 0).ToArray();
                if (bySynset.Length < 2 || bySynset.All(list => list.Count < 2))
                {
                    continue;
                }

                var same = (from list in bySynset
                            from i in Enumerable.Range(0, list.Count)
                            from j in Enumerable.Range(i + 1, list.Count - i - 1)
                            select (list[i], list[j])).ToArray();
                var different = (from a in Enumerable.Range(0, bySynset.Length)
                                 from b in Enumerable.Range(a + 1, bySynset.Length - a - 1)
                                 from first in bySynset[a]
                                 from second in bySynset[b]
                                 select (first, second)).ToArray();
                var count = Math.Min(maxPairsPerLabel, Math.Min(same.Length, different.Length));
                random.Shuffle(same);
                random.Shuffle(different);

                var number = 0;
                var posLetter = WordNetDatabase.PosLetter(pos).ToString();
                foreach (var (label, pairs) in new[] { (PairLabel.Same, same), (PairLabel.Different, different) })
                {
                    foreach (var (first, second) in pairs.Take(count))
                    {
                        yield return new WordPair($"wn.{posLetter}.{lemma}.{number++}", lemma, posLetter, first.Target, second.Target, label);
                    }
                }
            }
        }
    }

    private static TextSpan? FindWord(WordNetDatabase database, string text, string lemma, WordNetPos pos, bool allowInflected)
    {
        var index = 0;
        while (index < text.Length)
        {
            if (!char.IsLetter(text[index]))
            {
                index++;
                continue;
            }

            var start = index;
            while (index < text.Length && char.IsLetter(text[index]))
            {
                index++;
            }

            var inCompound = (start > 0 && text[start - 1] == '-') || (index < text.Length && text[index] == '-');
            if (inCompound)
            {
                continue;
            }

            var word = text[start..index];
            if (string.Equals(word, lemma, StringComparison.OrdinalIgnoreCase)
                || (allowInflected && database.BaseForms(word, pos).Contains(lemma.ToLowerInvariant())))
            {
                return new TextSpan(start, index);
            }
        }

        return null;
    }
}
