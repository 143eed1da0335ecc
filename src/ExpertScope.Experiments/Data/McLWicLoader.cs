using System.Globalization;
using System.IO.Compression;
using System.Text.Json;

namespace ExpertScope.Experiments.Data;

/// <summary>
/// Reads MCL-WiC (SemEval-2021 Task 2, Martelli et al.): JSON arrays of
/// <c>{id, lemma, pos, sentence1, sentence2, start1, end1, start2, end2}</c> (<c>*.data</c>) and
/// <c>{id, tag: "T"|"F"}</c> (<c>*.gold</c>), from plain files or from the zip archives the task distributes.
/// </summary>
/// <remarks>
/// Offsets are end-exclusive and count Unicode code points (the task's tooling is Python), so they are converted
/// to UTF-16 indices for sentences with characters outside the Basic Multilingual Plane. The cross-lingual test
/// files give <c>ranges1</c>/<c>ranges2</c> instead, <c>"116-122"</c> or, for discontinuous targets,
/// <c>"0-5,57-64"</c>; these become <see cref="SentenceTarget.Parts"/>. The language pair comes from the id
/// (<c>test.en-zh.17</c>).
/// </remarks>
public static class McLWicLoader
{
    /// <summary>Reads every <c>*.data</c> file below <paramref name="folder"/> (recursively, in path order) with its sibling <c>*.gold</c>.</summary>
    /// <param name="folder">A folder such as <c>mcl-wic/</c>, <c>mcl-wic/dev</c> or <c>mcl-wic/test</c>.</param>
    /// <param name="options">Strict (default) or lenient handling of malformed records.</param>
    public static IEnumerable<WordPair> ReadFolder(string folder, LoadOptions? options = null) =>
        Directory.EnumerateFiles(folder, "*.data", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .SelectMany(dataFile => ReadFile(dataFile, Path.ChangeExtension(dataFile, ".gold"), options));

    /// <summary>Reads one data file and its gold file.</summary>
    /// <exception cref="DataFormatException">Strict mode: a malformed record, or a pair without a gold tag.</exception>
    public static IEnumerable<WordPair> ReadFile(string dataFile, string goldFile, LoadOptions? options = null) =>
        Parse(File.ReadAllBytes(dataFile), dataFile, File.ReadAllBytes(goldFile), goldFile, options ?? LoadOptions.Strict);

    /// <summary>
    /// Reads every <c>*.data</c> entry of the zip <paramref name="dataArchive"/>, taking gold tags from the entry of
    /// the same file name with extension <c>.gold</c> in <paramref name="goldArchive"/> (or in the same archive
    /// when that is <see langword="null"/>). Entries are visited in name order; files are named
    /// <c>archive!entry</c> in locations and errors.
    /// </summary>
    /// <exception cref="DataFormatException">A data entry has no gold entry, or (strict mode) a record is malformed.</exception>
    public static IEnumerable<WordPair> ReadArchive(string dataArchive, string? goldArchive = null, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var golds = new Dictionary<string, (string Name, byte[] Bytes)>(StringComparer.Ordinal);
        foreach (var archivePath in new[] { dataArchive, goldArchive ?? dataArchive }.Distinct())
        {
            using var archive = ZipFile.OpenRead(archivePath);
            foreach (var entry in archive.Entries.Where(e => e.Name.EndsWith(".gold", StringComparison.Ordinal)))
            {
                golds[entry.Name] = ($"{archivePath}!{entry.FullName}", ReadEntry(entry));
            }
        }

        List<(string Name, byte[] Bytes)> datas;
        using (var archive = ZipFile.OpenRead(dataArchive))
        {
            datas = [.. archive.Entries
                .Where(e => e.Name.EndsWith(".data", StringComparison.Ordinal))
                .OrderBy(e => e.FullName, StringComparer.Ordinal)
                .Select(e => ($"{dataArchive}!{e.FullName}", ReadEntry(e)))];
        }

        foreach (var (name, bytes) in datas)
        {
            var goldName = Path.ChangeExtension(name[(name.LastIndexOf('/') + 1)..], ".gold");
            if (!golds.TryGetValue(goldName, out var gold))
            {
                throw new DataFormatException(name, 1, $"no gold entry '{goldName}' in {goldArchive ?? dataArchive}");
            }

            foreach (var pair in Parse(bytes, name, gold.Bytes, gold.Name, options))
            {
                yield return pair;
            }
        }
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    private static IEnumerable<WordPair> Parse(byte[] data, string dataFile, byte[] gold, string goldFile, LoadOptions options)
    {
        var tags = new Dictionary<string, (PairLabel Label, int Line)>(StringComparer.Ordinal);
        foreach (var entry in JsonEntries.Read(gold, goldFile))
        {
            var id = JsonEntries.GetString(entry.Value, "id");
            var tag = JsonEntries.GetString(entry.Value, "tag");
            if (id is null || tag is not ("T" or "F"))
            {
                options.Reject(goldFile, entry.Line, "a gold record needs a string 'id' and a 'tag' of \"T\" or \"F\"");
                continue;
            }

            if (!tags.TryAdd(id, (tag == "T" ? PairLabel.Same : PairLabel.Different, entry.Line)))
            {
                options.Reject(goldFile, entry.Line, $"duplicate gold id '{id}'");
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in JsonEntries.Read(data, dataFile))
        {
            var pair = ParsePair(entry, dataFile, goldFile, tags, seen, options);
            if (pair is not null)
            {
                yield return pair;
            }
        }
    }

    private static WordPair? ParsePair(
        JsonEntry entry, string dataFile, string goldFile, Dictionary<string, (PairLabel Label, int Line)> tags, HashSet<string> seen, LoadOptions options)
    {
        var element = entry.Value;
        string? Field(string name) => JsonEntries.GetString(element, name);

        var id = Field("id");
        var lemma = Field("lemma");
        var pos = Field("pos");
        var sentence1 = Field("sentence1");
        var sentence2 = Field("sentence2");
        if (id is null || lemma is null || pos is null || sentence1 is null || sentence2 is null)
        {
            options.Reject(dataFile, entry.Line, "a record needs string fields id, lemma, pos, sentence1 and sentence2");
            return null;
        }

        if (!seen.Add(id))
        {
            options.Reject(dataFile, entry.Line, $"duplicate id '{id}'");
            return null;
        }

        var (language1, language2) = Languages(id);
        if (language1 is null)
        {
            options.Reject(dataFile, entry.Line, $"id '{id}' does not name a language pair like 'dev.en-fr.0'");
            return null;
        }

        var parts1 = Ranges(element, 1, sentence1, out var problem1);
        var parts2 = Ranges(element, 2, sentence2, out var problem2);
        if (parts1 is null || parts2 is null)
        {
            options.Reject(dataFile, entry.Line, $"record '{id}': {problem1 ?? problem2}");
            return null;
        }

        if (!tags.TryGetValue(id, out var tag))
        {
            options.Reject(goldFile, 1, $"no gold tag for id '{id}' ({dataFile}, line {entry.Line})");
            return null;
        }

        var source = new SourceLocation(dataFile, entry.Line, id);
        return new WordPair(
            id,
            lemma,
            pos,
            new SentenceTarget(sentence1, new TextSpan(parts1[0].Start, parts1[^1].End), source) { Language = language1, Parts = parts1 },
            new SentenceTarget(sentence2, new TextSpan(parts2[0].Start, parts2[^1].End), source) { Language = language2!, Parts = parts2 },
            tag.Label);
    }

    private static (string? First, string? Second) Languages(string id)
    {
        var fields = id.Split('.');
        var pair = fields.Length >= 3 ? fields[^2].Split('-') : [];
        return pair.Length == 2 && pair[0].Length > 0 && pair[1].Length > 0 ? (pair[0], pair[1]) : (null, null);
    }

    // Reads start{n}/end{n} or ranges{n} (code-point offsets, end exclusive) and converts them to UTF-16 spans.
    private static TextSpan[]? Ranges(JsonElement element, int side, string sentence, out string? problem)
    {
        var pieces = new List<(string Start, string End)>();
        if (JsonEntries.GetString(element, $"ranges{side}") is { } ranges)
        {
            foreach (var range in ranges.Split(','))
            {
                var bounds = range.Split('-');
                if (bounds.Length != 2)
                {
                    problem = $"ranges{side} '{ranges}' is not a list of 'start-end' pairs";
                    return null;
                }

                pieces.Add((bounds[0].Trim(), bounds[1].Trim()));
            }
        }
        else if (OffsetText(element, $"start{side}") is { } start && OffsetText(element, $"end{side}") is { } end)
        {
            pieces.Add((start, end));
        }
        else
        {
            problem = $"missing start{side}/end{side} (or ranges{side})";
            return null;
        }

        var codePoints = CodePointIndex.Create(sentence);
        var spans = new TextSpan[pieces.Count];
        for (var index = 0; index < pieces.Count; index++)
        {
            var (startText, endText) = pieces[index];
            if (!int.TryParse(startText, NumberStyles.None, CultureInfo.InvariantCulture, out var start)
                || !int.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var end))
            {
                problem = $"offsets '{startText}'-'{endText}' of sentence{side} are not non-negative integers";
                return null;
            }

            if (start >= end || end > codePoints.Count || (index > 0 && start < spans[index - 1].End))
            {
                problem = $"span [{start}, {end}) does not fit sentence{side} ({codePoints.Count} characters) or overlaps the previous range";
                return null;
            }

            spans[index] = new TextSpan(codePoints.ToUtf16(start), codePoints.ToUtf16(end));
        }

        problem = null;
        return spans;
    }

    // Offsets are strings in the data ("78"); plain numbers are accepted too.
    private static string? OffsetText(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value)
            ? value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Number => value.GetRawText(),
                _ => null,
            }
            : null;

    // Maps code-point indices to UTF-16 indices; the identity unless the text holds surrogate pairs.
    private readonly struct CodePointIndex
    {
        private readonly int[]? _utf16;

        private CodePointIndex(int count, int[]? utf16)
        {
            Count = count;
            _utf16 = utf16;
        }

        public int Count { get; }

        public static CodePointIndex Create(string text)
        {
            if (!text.Any(char.IsSurrogate))
            {
                return new CodePointIndex(text.Length, null);
            }

            var map = new List<int>();
            for (var index = 0; index < text.Length; index += char.IsSurrogatePair(text, index) ? 2 : 1)
            {
                map.Add(index);
            }

            map.Add(text.Length);
            return new CodePointIndex(map.Count - 1, [.. map]);
        }

        public int ToUtf16(int codePoint) => _utf16 is null ? codePoint : _utf16[codePoint];
    }
}
