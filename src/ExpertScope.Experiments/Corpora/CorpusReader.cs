using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using ExpertScope.Experiments.Data;

namespace ExpertScope.Experiments.Corpora;

/// <summary>
/// Reads user text corpora as <see cref="CorpusDocument"/>s: plain text (<c>.txt</c> or any other extension),
/// JSON Lines (<c>.jsonl</c>) and JSON (<c>.json</c>: an array of records, or an object whose member values are
/// records, such as PubMedQA keyed by PMID), or a folder of such files.
/// </summary>
/// <remarks>
/// Malformed input throws <see cref="DataFormatException"/> (an <c>ExpertScopeException</c>) naming the file and
/// line: invalid UTF-8, a JSON Lines line that is not JSON, a record without a requested field. With
/// <see cref="LoadOptions.Lenient"/> such records are skipped and listed in <see cref="LoadOptions.Skipped"/>;
/// a <c>.json</c> file that is not valid JSON as a whole always throws. Records whose text is empty or blank are
/// dropped silently: they hold nothing to route.
/// </remarks>
public static class CorpusReader
{
    /// <summary>The file extensions <see cref="ReadFolder"/> picks up.</summary>
    public static IReadOnlyList<string> FolderExtensions { get; } = [".txt", ".jsonl", ".json"];

    /// <summary>Reads a file, or every corpus file below a folder.</summary>
    /// <param name="path">A file or a folder.</param>
    /// <param name="options">Fields, text split and strictness; the defaults when <see langword="null"/>.</param>
    /// <exception cref="FileNotFoundException">Nothing exists at <paramref name="path"/>.</exception>
    /// <exception cref="DataFormatException">Strict mode: a malformed record.</exception>
    public static IReadOnlyList<CorpusDocument> Read(string path, CorpusReadOptions? options = null)
    {
        if (Directory.Exists(path))
        {
            return ReadFolder(path, options);
        }

        return File.Exists(path) ? ReadFile(path, options) : throw new FileNotFoundException($"No corpus file or folder at '{path}'.", path);
    }

    /// <summary>
    /// Reads every <c>.txt</c>, <c>.jsonl</c> and <c>.json</c> file below <paramref name="folder"/>, recursively,
    /// in ordinal order of their paths relative to the folder, so the document order does not depend on the file
    /// system.
    /// </summary>
    /// <exception cref="DataFormatException">Strict mode: a malformed record.</exception>
    public static IReadOnlyList<CorpusDocument> ReadFolder(string folder, CorpusReadOptions? options = null)
    {
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(file => FolderExtensions.Contains(Path.GetExtension(file), StringComparer.OrdinalIgnoreCase))
            .OrderBy(file => Path.GetRelativePath(folder, file).Replace('\\', '/'), StringComparer.Ordinal);
        return [.. files.SelectMany(file => ReadFile(file, options))];
    }

    /// <summary>Reads one file, choosing the format from its extension (<c>.jsonl</c>, <c>.json</c>, else plain text).</summary>
    /// <exception cref="DataFormatException">Strict mode: a malformed record.</exception>
    public static IReadOnlyList<CorpusDocument> ReadFile(string file, CorpusReadOptions? options = null)
    {
        options ??= new CorpusReadOptions();
        var extension = Path.GetExtension(file);
        if (extension.Equals(".jsonl", StringComparison.OrdinalIgnoreCase))
        {
            return ReadJsonLines(file, options);
        }

        return extension.Equals(".json", StringComparison.OrdinalIgnoreCase) ? ReadJson(file, options) : ReadText(file, options);
    }

    /// <summary>Reads a plain UTF-8 text file (a leading byte-order mark is dropped; CRLF and CR become LF), split by <see cref="CorpusReadOptions.Split"/>.</summary>
    /// <exception cref="DataFormatException">Strict mode: a line is not valid UTF-8 (lenient: the line is skipped).</exception>
    public static IReadOnlyList<CorpusDocument> ReadText(string file, CorpusReadOptions? options = null)
    {
        options ??= new CorpusReadOptions();
        if (options.Split == TextSplit.LineBlocks && options.LinesPerBlock < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.LinesPerBlock, "LinesPerBlock must be at least 1.");
        }

        var lines = DecodeLines(File.ReadAllBytes(file), file, options.Load);
        var documents = new List<CorpusDocument>();
        if (options.Split == TextSplit.WholeFile)
        {
            AddDocument(documents, file, lines.Count > 0 ? lines[0].Line : 1, string.Join('\n', lines.Select(line => line.Text)).Trim());
            return documents;
        }

        var block = new List<(int Line, string Text)>();
        foreach (var line in lines)
        {
            var blank = string.IsNullOrWhiteSpace(line.Text);
            switch (options.Split)
            {
                case TextSplit.Lines:
                    AddDocument(documents, file, line.Line, line.Text.Trim());
                    break;
                case TextSplit.Paragraphs when blank:
                    Flush(documents, file, block);
                    break;
                case TextSplit.Paragraphs:
                    block.Add(line);
                    break;
                case TextSplit.LineBlocks when !blank:
                    block.Add(line);
                    if (block.Count == options.LinesPerBlock)
                    {
                        Flush(documents, file, block);
                    }

                    break;
            }
        }

        Flush(documents, file, block);
        return documents;
    }

    /// <summary>Reads a JSON Lines file: one JSON object per non-blank line, text taken from <see cref="CorpusReadOptions.Fields"/>.</summary>
    /// <exception cref="DataFormatException">Strict mode: a line is not JSON, or lacks a field.</exception>
    public static IReadOnlyList<CorpusDocument> ReadJsonLines(string file, CorpusReadOptions? options = null)
    {
        options ??= new CorpusReadOptions();
        var documents = new List<CorpusDocument>();
        foreach (var line in DecodeLines(File.ReadAllBytes(file), file, options.Load))
        {
            if (string.IsNullOrWhiteSpace(line.Text))
            {
                continue;
            }

            JsonDocument parsed;
            try
            {
                parsed = JsonDocument.Parse(line.Text);
            }
            catch (JsonException error)
            {
                options.Load.Reject(file, line.Line, "invalid JSON: " + error.Message);
                continue;
            }

            using (parsed)
            {
                if (TryExtract(parsed.RootElement, options, out var text, out var problem))
                {
                    AddDocument(documents, file, line.Line, text);
                }
                else
                {
                    options.Load.Reject(file, line.Line, problem);
                }
            }
        }

        return documents;
    }

    /// <summary>
    /// Reads a JSON file holding an array of records, or an object whose member values are records (such as
    /// PubMedQA keyed by PMID); text taken from <see cref="CorpusReadOptions.Fields"/>.
    /// </summary>
    /// <exception cref="DataFormatException">The file is not valid JSON of that shape; strict mode: a record lacks a field.</exception>
    public static IReadOnlyList<CorpusDocument> ReadJson(string file, CorpusReadOptions? options = null)
    {
        options ??= new CorpusReadOptions();
        var documents = new List<CorpusDocument>();
        foreach (var entry in JsonEntries.Read(File.ReadAllBytes(file), file))
        {
            if (TryExtract(entry.Value, options, out var text, out var problem))
            {
                AddDocument(documents, file, entry.Line, text);
            }
            else
            {
                options.Load.Reject(file, entry.Line, entry.Key is null ? problem : $"record '{entry.Key}': {problem}");
            }
        }

        return documents;
    }

    /// <summary>
    /// The value at a dotted path in a JSON element (<c>a.b</c> steps into objects, <c>a.0</c> into arrays), as
    /// text: a string as is, an array of strings joined with <c>\n</c>, a number or boolean as written.
    /// </summary>
    /// <returns><see langword="null"/> when a step is missing or the value is null, an object, or an array holding non-strings.</returns>
    public static string? SelectText(JsonElement element, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        foreach (var step in path.Split('.'))
        {
            if (element.ValueKind == JsonValueKind.Object && element.TryGetProperty(step, out var child))
            {
                element = child;
            }
            else if (element.ValueKind == JsonValueKind.Array
                && int.TryParse(step, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                && index < element.GetArrayLength())
            {
                element = element[index];
            }
            else
            {
                return null;
            }
        }

        return element.ValueKind switch
        {
            JsonValueKind.String => element.GetString(),
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => element.GetRawText(),
            JsonValueKind.Array when element.EnumerateArray().All(item => item.ValueKind == JsonValueKind.String) =>
                string.Join('\n', element.EnumerateArray().Select(item => item.GetString())),
            _ => null,
        };
    }

    private static bool TryExtract(JsonElement record, CorpusReadOptions options, out string text, out string problem)
    {
        var parts = new List<string>(options.Fields.Count);
        foreach (var field in options.Fields)
        {
            var value = SelectText(record, field);
            if (value is null)
            {
                text = "";
                problem = $"no text field '{field}' (a string, number, boolean or array of strings)";
                return false;
            }

            parts.Add(value);
        }

        text = NormalizeLineEndings(string.Join(options.FieldSeparator, parts)).Trim();
        problem = "";
        return true;
    }

    private static void Flush(List<CorpusDocument> documents, string file, List<(int Line, string Text)> block)
    {
        if (block.Count > 0)
        {
            AddDocument(documents, file, block[0].Line, string.Join('\n', block.Select(line => line.Text)).Trim());
            block.Clear();
        }
    }

    private static void AddDocument(List<CorpusDocument> documents, string file, int line, string text)
    {
        if (!string.IsNullOrWhiteSpace(text))
        {
            documents.Add(new CorpusDocument(file, line, text));
        }
    }

    private static string NormalizeLineEndings(string text) =>
        text.Contains('\r', StringComparison.Ordinal) ? text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n') : text;

    // Splits on LF (dropping a CR before it) and validates each line on its own, so an encoding error names its line.
    private static List<(int Line, string Text)> DecodeLines(byte[] bytes, string file, LoadOptions load)
    {
        var span = bytes.AsSpan();
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            span = span[3..];
        }

        var lines = new List<(int Line, string Text)>();
        var lineNumber = 0;
        while (!span.IsEmpty)
        {
            lineNumber++;
            var end = span.IndexOf((byte)'\n');
            var line = end < 0 ? span : span[..end];
            span = end < 0 ? [] : span[(end + 1)..];
            if (!Utf8.IsValid(line))
            {
                load.Reject(file, lineNumber, "the line is not valid UTF-8 text");
                continue;
            }

            lines.Add((lineNumber, NormalizeLineEndings(Encoding.UTF8.GetString(line)).TrimEnd('\n')));
        }

        return lines;
    }
}
