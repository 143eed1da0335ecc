using System.Globalization;

namespace ExpertScope.Experiments.Data.WordNet;

/// <summary>A WordNet part of speech (the syntactic category of a data/index file).</summary>
public enum WordNetPos
{
    /// <summary><c>n</c>: <c>data.noun</c>.</summary>
    Noun,

    /// <summary><c>v</c>: <c>data.verb</c>.</summary>
    Verb,

    /// <summary><c>a</c> and satellites <c>s</c>: <c>data.adj</c>.</summary>
    Adjective,

    /// <summary><c>r</c>: <c>data.adv</c>.</summary>
    Adverb,
}

/// <summary>One synset of a WordNet data file.</summary>
/// <param name="Pos">Part of speech (adjective satellites are adjectives).</param>
/// <param name="Offset">Byte offset in the data file, WordNet's synset id within its part of speech.</param>
/// <param name="Lemmas">Member words in file order, with <c>_</c> for spaces and adjective markers like <c>(p)</c> removed.</param>
/// <param name="Hypernyms">Offsets of the hypernyms (<c>@</c>) and instance hypernyms (<c>@i</c>); for an adjective satellite, its head (<c>&amp;</c>).</param>
/// <param name="Definition">The gloss before the first quoted example.</param>
/// <param name="Examples">The quoted example sentences of the gloss, quotes removed.</param>
/// <param name="Source">Data file and line.</param>
public sealed record Synset(
    WordNetPos Pos, int Offset, IReadOnlyList<string> Lemmas, IReadOnlyList<int> Hypernyms, string Definition, IReadOnlyList<string> Examples, SourceLocation Source)
{
    /// <inheritdoc/>
    public override string ToString() => $"{(Lemmas.Count > 0 ? Lemmas[0] : "?")}.{WordNetDatabase.PosLetter(Pos)}.{Offset:D8}";
}

/// <summary>
/// Princeton WordNet 3.0 read from its database files: <c>data.*</c> (synsets, pointers, glosses),
/// <c>index.*</c> (lemma → synsets in sense-frequency order) and <c>*.exc</c> (irregular inflections).
/// </summary>
public sealed class WordNetDatabase
{
    /// <summary>Where Debian's <c>wordnet-base</c> package installs the database.</summary>
    public const string DefaultFolder = "/usr/share/wordnet";

    private static readonly WordNetPos[] AllPos = [WordNetPos.Noun, WordNetPos.Verb, WordNetPos.Adjective, WordNetPos.Adverb];

    // WordNet's detachment rules (morphy): a suffix to strip and what to put back, tried in this order.
    private static readonly Dictionary<WordNetPos, (string Suffix, string Ending)[]> Detachments = new()
    {
        [WordNetPos.Noun] = [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")],
        [WordNetPos.Verb] = [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
        [WordNetPos.Adjective] = [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        [WordNetPos.Adverb] = [],
    };

    private readonly Dictionary<WordNetPos, Dictionary<int, Synset>> _synsets = [];
    private readonly Dictionary<WordNetPos, Dictionary<string, IndexEntry>> _index = [];
    private readonly Dictionary<WordNetPos, Dictionary<string, List<string>>> _exceptions = [];

    private WordNetDatabase()
    {
    }

    /// <summary>The folder the database was read from.</summary>
    public string Folder { get; private init; } = DefaultFolder;

    /// <summary>Reads the database. Malformed lines throw (strict) or are skipped and counted (lenient).</summary>
    /// <param name="folder">The folder holding <c>data.noun</c> etc.; <see cref="DefaultFolder"/> when omitted.</param>
    /// <param name="options">Strict (default) or lenient handling of malformed lines.</param>
    /// <exception cref="DataFormatException">Strict mode: a malformed line.</exception>
    /// <exception cref="FileNotFoundException">A database file is missing.</exception>
    public static WordNetDatabase Load(string folder = DefaultFolder, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var database = new WordNetDatabase { Folder = folder };
        foreach (var pos in AllPos)
        {
            var name = FileName(pos);
            var synsets = ReadData(Path.Combine(folder, "data." + name), pos, options);
            database._synsets[pos] = synsets;
            database._index[pos] = ReadIndex(Path.Combine(folder, "index." + name), synsets, options);
            database._exceptions[pos] = ReadExceptions(Path.Combine(folder, name + ".exc"), options);
        }

        return database;
    }

    /// <summary>Every synset of one part of speech, in file order.</summary>
    public IEnumerable<Synset> Synsets(WordNetPos pos) => _synsets[pos].Values;

    /// <summary>The synset at <paramref name="offset"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such synset.</exception>
    public Synset GetSynset(WordNetPos pos, int offset) =>
        _synsets[pos].TryGetValue(offset, out var synset) ? synset : throw new KeyNotFoundException($"No {pos} synset at offset {offset:D8}.");

    /// <summary>The lemmas listed in <c>index.*</c> for one part of speech (lower case, <c>_</c> for spaces), in file order.</summary>
    public IEnumerable<string> Lemmas(WordNetPos pos) => _index[pos].Keys;

    /// <summary>The synsets of <paramref name="lemma"/> in WordNet's sense order (most frequent first); empty if unknown.</summary>
    public IReadOnlyList<Synset> SynsetsOf(string lemma, WordNetPos pos) =>
        _index[pos].TryGetValue(NormalizeLemma(lemma), out var entry) ? [.. entry.Offsets.Select(offset => GetSynset(pos, offset))] : [];

    /// <summary>How many of the lemma's senses were seen in the semantic concordances (<c>tagsense_cnt</c>): a rough commonness signal.</summary>
    public int TaggedSenseCount(string lemma, WordNetPos pos) =>
        _index[pos].TryGetValue(NormalizeLemma(lemma), out var entry) ? entry.TaggedSenseCount : 0;

    /// <summary>
    /// The lemmas that <paramref name="word"/> may be an inflection of, as WordNet's morphy finds them: the word
    /// itself if it is a lemma, its entries in the exception list (<c>went</c> → <c>go</c>), and the detachment
    /// rules (<c>boxes</c> → <c>box</c>); only forms that are lemmas of <paramref name="pos"/> are returned, without repeats.
    /// </summary>
    public IReadOnlyList<string> BaseForms(string word, WordNetPos pos)
    {
        var form = NormalizeLemma(word);
        var index = _index[pos];
        var result = new List<string>();
        void Add(string candidate)
        {
            if (index.ContainsKey(candidate) && !result.Contains(candidate))
            {
                result.Add(candidate);
            }
        }

        Add(form);
        if (_exceptions[pos].TryGetValue(form, out var bases))
        {
            bases.ForEach(Add);
        }

        foreach (var (suffix, ending) in Detachments[pos])
        {
            if (form.Length > suffix.Length && form.EndsWith(suffix, StringComparison.Ordinal))
            {
                Add(form[..^suffix.Length] + ending);
            }
        }

        return result;
    }

    /// <summary>
    /// The irregular inflected forms that WordNet's exception list (<c>noun.exc</c>, <c>verb.exc</c>, …) maps to
    /// <paramref name="lemma"/> (<c>go</c> → <c>gone</c>, <c>went</c>), sorted; empty for regular words.
    /// </summary>
    public IReadOnlyList<string> IrregularForms(string lemma, WordNetPos pos)
    {
        var form = NormalizeLemma(lemma);
        return [.. _exceptions[pos].Where(entry => entry.Value.Contains(form)).Select(entry => entry.Key).Order(StringComparer.Ordinal)];
    }

    /// <summary>Whether <paramref name="word"/> is listed in the exception list of <paramref name="pos"/> as an irregular inflected form.</summary>
    public bool IsIrregularForm(string word, WordNetPos pos) => _exceptions[pos].ContainsKey(NormalizeLemma(word));

    /// <summary>The one-letter code of a part of speech (<c>n v a r</c>).</summary>
    public static char PosLetter(WordNetPos pos) => pos switch
    {
        WordNetPos.Noun => 'n',
        WordNetPos.Verb => 'v',
        WordNetPos.Adjective => 'a',
        _ => 'r',
    };

    /// <summary>Maps a part-of-speech tag (<c>N</c>, <c>NOUN</c>, <c>v</c>, <c>ADJ</c>, <c>s</c>, <c>ADV</c>, …) to WordNet's; <see langword="null"/> for others.</summary>
    public static WordNetPos? ParsePos(string tag) => tag.ToUpperInvariant() switch
    {
        "N" or "NOUN" => WordNetPos.Noun,
        "V" or "VERB" => WordNetPos.Verb,
        "A" or "S" or "ADJ" or "ADJECTIVE" => WordNetPos.Adjective,
        "R" or "ADV" or "ADVERB" => WordNetPos.Adverb,
        _ => null,
    };

    private static string NormalizeLemma(string word) => word.Trim().ToLowerInvariant().Replace(' ', '_');

    private static string FileName(WordNetPos pos) => pos switch
    {
        WordNetPos.Noun => "noun",
        WordNetPos.Verb => "verb",
        WordNetPos.Adjective => "adj",
        _ => "adv",
    };

    private static Dictionary<int, Synset> ReadData(string path, WordNetPos pos, LoadOptions options)
    {
        var synsets = new Dictionary<int, Synset>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            // The license header lines start with two spaces.
            if (line.StartsWith("  ", StringComparison.Ordinal) || line.Length == 0)
            {
                continue;
            }

            if (ParseSynset(line, pos, new SourceLocation(path, lineNumber), out var problem) is { } synset)
            {
                synsets[synset.Offset] = synset;
            }
            else
            {
                options.Reject(path, lineNumber, problem!);
            }
        }

        // A hypernym pointer must name a synset of the same file; a lenient load drops the dangling pointer.
        foreach (var synset in synsets.Values.ToList())
        {
            var dangling = synset.Hypernyms.Where(offset => !synsets.ContainsKey(offset)).ToList();
            if (dangling.Count > 0)
            {
                options.Reject(path, synset.Source.Line, $"hypernym pointer to {dangling[0]:D8}, which is not a synset in this file");
                synsets[synset.Offset] = synset with { Hypernyms = [.. synset.Hypernyms.Except(dangling)] };
            }
        }

        return synsets;
    }

    // synset_offset lex_filenum ss_type w_cnt(hex) [word lex_id(hex)]... p_cnt [ptr_symbol offset pos source/target]... [frames] | gloss
    private static Synset? ParseSynset(string line, WordNetPos pos, SourceLocation source, out string? problem)
    {
        var bar = line.IndexOf(" | ", StringComparison.Ordinal);
        var head = (bar < 0 ? line : line[..bar]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var gloss = bar < 0 ? "" : line[(bar + 3)..].TrimEnd();
        problem = null;

        if (head.Length < 4 || !int.TryParse(head[0], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            problem = "a synset line starts with an 8-digit offset, lexicographer file number, synset type and word count";
            return null;
        }

        if (!int.TryParse(head[3], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var wordCount) || head.Length < 5 + 2 * wordCount)
        {
            problem = $"word count '{head[3]}' is not a hexadecimal number matching the words on the line";
            return null;
        }

        var lemmas = new string[wordCount];
        for (var index = 0; index < wordCount; index++)
        {
            var word = head[4 + 2 * index];
            var marker = word.IndexOf('(', StringComparison.Ordinal);
            lemmas[index] = marker > 0 ? word[..marker] : word;
        }

        var pointerStart = 4 + 2 * wordCount;
        if (!int.TryParse(head[pointerStart], NumberStyles.None, CultureInfo.InvariantCulture, out var pointerCount)
            || head.Length < pointerStart + 1 + 4 * pointerCount)
        {
            problem = $"pointer count '{head[pointerStart]}' does not match the pointers on the line";
            return null;
        }

        var hypernyms = new List<int>();
        var isSatellite = head[2] == "s";
        for (var index = 0; index < pointerCount; index++)
        {
            var at = pointerStart + 1 + 4 * index;
            var symbol = head[at];
            var isParent = symbol is "@" or "@i" || (isSatellite && symbol == "&");
            if (!isParent)
            {
                continue;
            }

            if (!int.TryParse(head[at + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var target))
            {
                problem = $"pointer target '{head[at + 1]}' is not a synset offset";
                return null;
            }

            hypernyms.Add(target);
        }

        var (definition, examples) = SplitGloss(gloss);
        return new Synset(pos, offset, lemmas, hypernyms, definition, examples, source);
    }

    /// <summary>
    /// Splits a gloss into its definition and quoted examples. Glosses read
    /// <c>definition; "example one"; "example two" - Author</c>; a few of WordNet's 117,659 glosses have a stray
    /// or missing quote (e.g. <c>drop names"</c>), so a segment counts as an example when it starts with a quote,
    /// and its closing quote and any attribution after it are dropped. This is content repair, not a format error.
    /// </summary>
    internal static (string Definition, IReadOnlyList<string> Examples) SplitGloss(string gloss)
    {
        var firstQuote = gloss.IndexOf('"', StringComparison.Ordinal);
        if (firstQuote < 0)
        {
            return (gloss.Trim(), []);
        }

        var definition = gloss[..firstQuote].Trim().TrimEnd(';').TrimEnd();
        var examples = new List<string>();
        foreach (var segment in gloss[firstQuote..].Split("; ", StringSplitOptions.TrimEntries))
        {
            if (!segment.StartsWith('"'))
            {
                continue;
            }

            var close = segment.IndexOf('"', 1);
            var text = (close < 0 ? segment[1..] : segment[1..close]).Trim();
            if (text.Length > 0)
            {
                examples.Add(text);
            }
        }

        return (definition, examples);
    }

    private static Dictionary<string, IndexEntry> ReadIndex(string path, Dictionary<int, Synset> synsets, LoadOptions options)
    {
        var index = new Dictionary<string, IndexEntry>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.StartsWith("  ", StringComparison.Ordinal) || line.Length == 0)
            {
                continue;
            }

            // lemma pos synset_cnt p_cnt [ptr_symbol]... sense_cnt tagsense_cnt synset_offset...
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6
                || !int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var synsetCount)
                || !int.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var pointerCount)
                || fields.Length != 6 + pointerCount + synsetCount
                || !int.TryParse(fields[5 + pointerCount], NumberStyles.None, CultureInfo.InvariantCulture, out var tagged))
            {
                options.Reject(path, lineNumber, "an index line is 'lemma pos synset_cnt p_cnt [pointers] sense_cnt tagsense_cnt offsets' with matching counts");
                continue;
            }

            var offsets = new int[synsetCount];
            var valid = true;
            for (var index2 = 0; index2 < synsetCount; index2++)
            {
                valid &= int.TryParse(fields[6 + pointerCount + index2], NumberStyles.None, CultureInfo.InvariantCulture, out offsets[index2]);
            }

            if (!valid)
            {
                options.Reject(path, lineNumber, "a synset offset is not a number");
                continue;
            }

            var missing = Array.FindIndex(offsets, offset => !synsets.ContainsKey(offset));
            if (missing >= 0)
            {
                options.Reject(path, lineNumber, $"synset offset {offsets[missing]:D8} of '{fields[0]}' is not in the data file");
                continue;
            }

            index[fields[0]] = new IndexEntry(offsets, tagged);
        }

        return index;
    }

    private static Dictionary<string, List<string>> ReadExceptions(string path, LoadOptions options)
    {
        var exceptions = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
            {
                continue;
            }

            if (fields.Length < 2)
            {
                options.Reject(path, lineNumber, "an exception line is 'inflected_form base_form...'");
                continue;
            }

            if (!exceptions.TryGetValue(fields[0], out var bases))
            {
                exceptions[fields[0]] = bases = [];
            }

            bases.AddRange(fields.Skip(1));
        }

        return exceptions;
    }

    private sealed record IndexEntry(int[] Offsets, int TaggedSenseCount);
}
