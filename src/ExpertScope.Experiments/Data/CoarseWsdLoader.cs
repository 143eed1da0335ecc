using System.Globalization;
using System.Text.Json;

namespace ExpertScope.Experiments.Data;

/// <summary>One CoarseWSD-20 sentence with its target occurrence and coarse sense.</summary>
/// <param name="Id">Stable id <c>cwsd.{word}.{split}.{0-based row}</c>.</param>
/// <param name="Word">The ambiguous noun (the folder name, e.g. <c>bank</c>).</param>
/// <param name="Target">The lower-cased, space-tokenized sentence with the target's span and source line.</param>
/// <param name="SenseClass">The class number from the gold file.</param>
/// <param name="SenseLabel">The class name from <c>classes_map.txt</c> (e.g. <c>bank_bank_(geography)</c>).</param>
public sealed record SenseSentence(string Id, string Word, SentenceTarget Target, int SenseClass, string SenseLabel);

/// <summary>
/// Reads CoarseWSD-20 (Loureiro et al., 2021): per word a folder with <c>{split}.data.txt</c>
/// (<c>target token index \t sentence</c>), <c>{split}.gold.txt</c> (class number) and <c>classes_map.txt</c>
/// (JSON <c>{"0": "bank_bank", ...}</c>); and builds same-sense / different-sense pairs from the labels.
/// </summary>
public static class CoarseWsdLoader
{
    /// <summary>The word folders under <paramref name="root"/> (those holding a <c>classes_map.txt</c>), sorted by name.</summary>
    public static IReadOnlyList<string> Words(string root) =>
        [.. Directory.EnumerateDirectories(root)
            .Where(folder => File.Exists(Path.Combine(folder, "classes_map.txt")))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal)];

    /// <summary>Streams the sentences of every word for one split, words in name order.</summary>
    /// <param name="root">The CoarseWSD-20 folder.</param>
    /// <param name="split"><c>train</c> or <c>test</c>.</param>
    /// <param name="options">Strict (default) or lenient handling of malformed lines.</param>
    public static IEnumerable<SenseSentence> ReadAll(string root, string split, LoadOptions? options = null) =>
        Words(root).SelectMany(word => ReadWord(Path.Combine(root, word), split, options));

    /// <summary>Streams the sentences of one word folder for one split.</summary>
    /// <param name="wordFolder">The folder of one word (its name is the word).</param>
    /// <param name="split"><c>train</c> or <c>test</c>.</param>
    /// <param name="options">Strict (default) or lenient handling of malformed lines.</param>
    /// <exception cref="DataFormatException">Strict mode: a malformed line, an unknown class, or data and gold of different lengths.</exception>
    public static IEnumerable<SenseSentence> ReadWord(string wordFolder, string split, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var word = Path.GetFileName(Path.TrimEndingDirectorySeparator(wordFolder));
        var classes = ReadClassesMap(Path.Combine(wordFolder, "classes_map.txt"));
        var dataFile = Path.Combine(wordFolder, split + ".data.txt");
        var goldFile = Path.Combine(wordFolder, split + ".gold.txt");

        using var data = new StreamReader(dataFile);
        using var gold = new StreamReader(goldFile);
        var lineNumber = 0;
        while (data.ReadLine() is { } line)
        {
            lineNumber++;
            var goldLine = gold.ReadLine();
            if (goldLine is null)
            {
                options.Reject(goldFile, lineNumber, $"no gold class for line {lineNumber} of {dataFile} (the gold file is shorter)");
                continue;
            }

            var sentence = Parse(line, goldLine.Trim(), word, split, classes, dataFile, goldFile, lineNumber, options);
            if (sentence is not null)
            {
                yield return sentence;
            }
        }

        if (gold.ReadLine() is { } extra && extra.Length > 0)
        {
            options.Reject(goldFile, lineNumber + 1, $"gold class without a data line (the data file {dataFile} has {lineNumber} lines)");
        }
    }

    /// <summary>
    /// Streams <c>CoarseWSD-20.outofdomain.tsv</c> (<c>word \t sense label \t target token index \t sentence</c>;
    /// 339 sentences not from Wikipedia, original casing), giving each sentence the class its label has in the
    /// word's <c>classes_map.txt</c>.
    /// </summary>
    /// <param name="root">The CoarseWSD-20 folder (holding the word folders and the out-of-domain file).</param>
    /// <param name="options">Strict (default) or lenient handling of malformed lines.</param>
    /// <exception cref="DataFormatException">Strict mode: a malformed line, an unknown word or an unknown sense label.</exception>
    public static IEnumerable<SenseSentence> ReadOutOfDomain(string root, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var path = Path.Combine(root, "CoarseWSD-20.outofdomain.tsv");
        var classMaps = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            var fields = line.TrimEnd('\r').Split('\t');
            if (fields.Length != 4)
            {
                options.Reject(path, lineNumber, $"expected 4 tab-separated fields (word, sense, target index, sentence), found {fields.Length}");
                continue;
            }

            var word = fields[0];
            if (!classMaps.TryGetValue(word, out var classes))
            {
                var mapFile = Path.Combine(root, word, "classes_map.txt");
                if (!File.Exists(mapFile))
                {
                    options.Reject(path, lineNumber, $"word '{word}' has no folder with a classes_map.txt");
                    continue;
                }

                classes = ReadClassesMap(mapFile).ToDictionary(pair => pair.Value, pair => pair.Key, StringComparer.Ordinal);
                classMaps[word] = classes;
            }

            if (!classes.TryGetValue(fields[1], out var senseClass))
            {
                options.Reject(path, lineNumber, $"sense '{fields[1]}' is not in {word}/classes_map.txt");
                continue;
            }

            if (!int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var tokenIndex)
                || SpaceTokenized.TokenSpan(fields[3], tokenIndex) is not { } span)
            {
                options.Reject(path, lineNumber, $"target index '{fields[2]}' is not a token of the sentence");
                continue;
            }

            yield return new SenseSentence(
                $"cwsd.{word}.outofdomain.{lineNumber - 1}",
                word,
                new SentenceTarget(fields[3], span, new SourceLocation(path, lineNumber)),
                senseClass,
                fields[1]);
        }
    }

    /// <summary>Reads <c>classes_map.txt</c>: a JSON object from class number (as a string) to sense label.</summary>
    /// <exception cref="DataFormatException">The file is not such an object.</exception>
    public static IReadOnlyDictionary<int, string> ReadClassesMap(string path)
    {
        var classes = new Dictionary<int, string>();
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!int.TryParse(property.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                    || property.Value.ValueKind != JsonValueKind.String)
                {
                    throw new DataFormatException(path, 1, $"class entry '{property.Name}' is not a class number mapped to a sense label");
                }

                classes[number] = property.Value.GetString()!;
            }
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException)
        {
            throw new DataFormatException(path, 1, "not a JSON object of class number to sense label: " + error.Message);
        }

        return classes;
    }

    /// <summary>
    /// Builds balanced same-sense and different-sense pairs per word: for each word, <c>n</c> pairs of two
    /// sentences with the same class and <c>n</c> pairs with different classes, where
    /// <c>n = min(pairsPerLabel, distinct pairs available for either label)</c>.
    /// </summary>
    /// <remarks>
    /// Sampling gives every sense equal weight, not every sentence, so a dominant sense does not fill the
    /// same-sense side: a same pair picks a class uniformly among those with two or more sentences, then two
    /// distinct sentences; a different pair picks two distinct classes uniformly, then one sentence of each.
    /// Pairs are unordered and never repeated. The result depends only on the input order and <paramref name="seed"/>.
    /// A pair's id joins its sentences' ids: <c>cwsd.bank.test.3|cwsd.bank.test.41</c>.
    /// </remarks>
    /// <param name="sentences">Sentences of one split (any number of words).</param>
    /// <param name="pairsPerLabel">Pairs wanted per label and word.</param>
    /// <param name="seed">Seed of the sampler.</param>
    public static IEnumerable<WordPair> BuildPairs(IEnumerable<SenseSentence> sentences, int pairsPerLabel, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pairsPerLabel);
        var random = new Random(seed);
        foreach (var group in sentences.GroupBy(sentence => sentence.Word))
        {
            var byClass = group.GroupBy(sentence => sentence.SenseClass).OrderBy(g => g.Key).Select(g => g.ToArray()).ToArray();
            var sameAvailable = byClass.Sum(c => (long)c.Length * (c.Length - 1) / 2);
            var total = byClass.Sum(c => (long)c.Length);
            var differentAvailable = (total * total - byClass.Sum(c => (long)c.Length * c.Length)) / 2;
            var count = (int)Math.Min(pairsPerLabel, Math.Min(sameAvailable, differentAvailable));

            var eligible = byClass.Where(c => c.Length >= 2).ToArray();
            var same = SampleDistinct(count, random, () =>
            {
                var sense = eligible[random.Next(eligible.Length)];
                var first = random.Next(sense.Length);
                var second = random.Next(sense.Length - 1);
                return (sense[first], sense[second >= first ? second + 1 : second]);
            }, () => AllSamePairs(byClass));
            var different = SampleDistinct(count, random, () =>
            {
                var firstClass = random.Next(byClass.Length);
                var secondClass = random.Next(byClass.Length - 1);
                if (secondClass >= firstClass)
                {
                    secondClass++;
                }

                var a = byClass[firstClass];
                var b = byClass[secondClass];
                return (a[random.Next(a.Length)], b[random.Next(b.Length)]);
            }, () => AllDifferentPairs(byClass));

            foreach (var (label, pairs) in new[] { (PairLabel.Same, same), (PairLabel.Different, different) })
            {
                foreach (var (first, second) in pairs)
                {
                    yield return new WordPair($"{first.Id}|{second.Id}", group.Key, "N", first.Target, second.Target, label);
                }
            }
        }
    }

    // Draws until `count` distinct unordered pairs are found; the caller guarantees that many exist. When the
    // wanted count is close to the number available, rejection sampling would crawl, so past a fixed number
    // of draws per pair the rest are taken from a seeded shuffle of every pair not drawn yet.
    private static List<(SenseSentence First, SenseSentence Second)> SampleDistinct(
        int count, Random random, Func<(SenseSentence, SenseSentence)> draw, Func<IEnumerable<(SenseSentence, SenseSentence)>> all)
    {
        var seen = new HashSet<(string, string)>();
        var result = new List<(SenseSentence, SenseSentence)>(count);
        var budget = 20L * count + 100;
        while (result.Count < count && budget-- > 0)
        {
            var pair = draw();
            if (seen.Add(Key(pair)))
            {
                result.Add(pair);
            }
        }

        if (result.Count < count)
        {
            var rest = all().Where(pair => !seen.Contains(Key(pair))).ToArray();
            random.Shuffle(rest);
            result.AddRange(rest.Take(count - result.Count));
        }

        return result;

        static (string, string) Key((SenseSentence First, SenseSentence Second) pair) =>
            string.CompareOrdinal(pair.First.Id, pair.Second.Id) < 0 ? (pair.First.Id, pair.Second.Id) : (pair.Second.Id, pair.First.Id);
    }

    private static IEnumerable<(SenseSentence, SenseSentence)> AllSamePairs(SenseSentence[][] byClass) =>
        from sense in byClass
        from i in Enumerable.Range(0, sense.Length)
        from j in Enumerable.Range(i + 1, sense.Length - i - 1)
        select (sense[i], sense[j]);

    private static IEnumerable<(SenseSentence, SenseSentence)> AllDifferentPairs(SenseSentence[][] byClass) =>
        from a in Enumerable.Range(0, byClass.Length)
        from b in Enumerable.Range(a + 1, byClass.Length - a - 1)
        from first in byClass[a]
        from second in byClass[b]
        select (first, second);

    private static SenseSentence? Parse(
        string line, string goldTag, string word, string split, IReadOnlyDictionary<int, string> classes,
        string dataFile, string goldFile, int lineNumber, LoadOptions options)
    {
        var tab = line.IndexOf('\t', StringComparison.Ordinal);
        if (tab < 0)
        {
            options.Reject(dataFile, lineNumber, "expected 'target index <tab> sentence', found no tab");
            return null;
        }

        if (!int.TryParse(line.AsSpan(0, tab), NumberStyles.None, CultureInfo.InvariantCulture, out var tokenIndex))
        {
            options.Reject(dataFile, lineNumber, $"target index '{line[..tab]}' is not a non-negative integer");
            return null;
        }

        var sentence = line[(tab + 1)..].TrimEnd('\r');
        if (SpaceTokenized.TokenSpan(sentence, tokenIndex) is not { } span)
        {
            options.Reject(dataFile, lineNumber, $"target index {tokenIndex} is past the end of the sentence");
            return null;
        }

        if (!int.TryParse(goldTag, NumberStyles.None, CultureInfo.InvariantCulture, out var senseClass) || !classes.TryGetValue(senseClass, out var label))
        {
            options.Reject(goldFile, lineNumber, $"gold class '{goldTag}' is not one of the classes in classes_map.txt ({string.Join(", ", classes.Keys)})");
            return null;
        }

        return new SenseSentence(
            $"cwsd.{word}.{split}.{lineNumber - 1}",
            word,
            new SentenceTarget(sentence, span, new SourceLocation(dataFile, lineNumber)),
            senseClass,
            label);
    }
}
