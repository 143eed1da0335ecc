using System.Globalization;

namespace ExpertScope.Experiments.Data;

/// <summary>
/// Reads WiC (Pilehvar and Camacho-Collados, 2019): <c>*.data.txt</c> lines
/// <c>word \t PoS \t idx1-idx2 \t sentence1 \t sentence2</c> with the matching <c>*.gold.txt</c> line
/// (<c>T</c> = same sense, <c>F</c> = different sense).
/// </summary>
/// <remarks>
/// The sentences are tokenized with single spaces and each index is the 0-based token of the target in its
/// sentence. That token is the form used in the sentence, which may be inflected or irregular
/// (<c>board</c> → <c>boards</c>, <c>go</c> → <c>went</c>, <c>have</c> → <c>'ve</c>), so the span covers the whole
/// token, never just the lemma's letters.
/// </remarks>
public static class WicLoader
{
    /// <summary>Reads one split from a WiC folder laid out as <c>{split}/{split}.data.txt</c> and <c>{split}/{split}.gold.txt</c>.</summary>
    /// <param name="wicFolder">The folder holding <c>train/</c>, <c>dev/</c> and <c>test/</c>.</param>
    /// <param name="split"><c>train</c>, <c>dev</c> or <c>test</c>.</param>
    /// <param name="options">Strict (default) or lenient handling of malformed lines.</param>
    public static IEnumerable<WordPair> ReadSplit(string wicFolder, string split, LoadOptions? options = null) =>
        Read(
            Path.Combine(wicFolder, split, split + ".data.txt"),
            Path.Combine(wicFolder, split, split + ".gold.txt"),
            options);

    /// <summary>Streams the pairs of one data file and its gold file, line by line.</summary>
    /// <param name="dataFile">The <c>*.data.txt</c> file.</param>
    /// <param name="goldFile">The <c>*.gold.txt</c> file with one <c>T</c>/<c>F</c> per data line.</param>
    /// <param name="options">Strict (default) or lenient handling of malformed lines.</param>
    /// <returns>Pairs with ids <c>wic.{file stem}.{0-based row}</c>.</returns>
    /// <exception cref="DataFormatException">Strict mode: a malformed line, or data and gold of different lengths.</exception>
    public static IEnumerable<WordPair> Read(string dataFile, string goldFile, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var stem = Path.GetFileName(dataFile);
        stem = stem.EndsWith(".data.txt", StringComparison.Ordinal) ? stem[..^".data.txt".Length] : Path.GetFileNameWithoutExtension(stem);

        using var data = new StreamReader(dataFile);
        using var gold = new StreamReader(goldFile);
        var lineNumber = 0;
        while (data.ReadLine() is { } line)
        {
            lineNumber++;
            var goldLine = gold.ReadLine();
            if (goldLine is null)
            {
                options.Reject(goldFile, lineNumber, $"no gold label for line {lineNumber} of {dataFile} (the gold file is shorter)");
                continue;
            }

            var pair = Parse(line, goldLine.Trim(), stem, dataFile, goldFile, lineNumber, options);
            if (pair is not null)
            {
                yield return pair;
            }
        }

        if (gold.ReadLine() is { } extra && extra.Length > 0)
        {
            options.Reject(goldFile, lineNumber + 1, $"gold label without a data line (the data file {dataFile} has {lineNumber} lines)");
        }
    }

    private static WordPair? Parse(string line, string goldTag, string stem, string dataFile, string goldFile, int lineNumber, LoadOptions options)
    {
        var fields = line.TrimEnd('\r').Split('\t');
        if (fields.Length != 5)
        {
            options.Reject(dataFile, lineNumber, $"expected 5 tab-separated fields (word, PoS, idx1-idx2, sentence1, sentence2), found {fields.Length}");
            return null;
        }

        var indices = fields[2].Split('-');
        if (indices.Length != 2
            || !int.TryParse(indices[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index1)
            || !int.TryParse(indices[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index2))
        {
            options.Reject(dataFile, lineNumber, $"the index field '{fields[2]}' is not two non-negative integers 'idx1-idx2'");
            return null;
        }

        var span1 = SpaceTokenized.TokenSpan(fields[3], index1);
        var span2 = SpaceTokenized.TokenSpan(fields[4], index2);
        if (span1 is null || span2 is null)
        {
            var (which, index) = span1 is null ? ("sentence1", index1) : ("sentence2", index2);
            options.Reject(dataFile, lineNumber, $"token index {index} is past the end of {which}");
            return null;
        }

        PairLabel label;
        switch (goldTag)
        {
            case "T":
                label = PairLabel.Same;
                break;
            case "F":
                label = PairLabel.Different;
                break;
            default:
                options.Reject(goldFile, lineNumber, $"gold label '{goldTag}' is neither T nor F");
                return null;
        }

        var source = new SourceLocation(dataFile, lineNumber);
        return new WordPair(
            $"wic.{stem}.{lineNumber - 1}",
            fields[0],
            fields[1],
            new SentenceTarget(fields[3], span1.Value, source),
            new SentenceTarget(fields[4], span2.Value, source),
            label);
    }
}
