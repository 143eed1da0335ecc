using System.Text;
using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Tracing;

/// <summary>One input text and the sequence id its rows carry in a trace.</summary>
/// <param name="Sequence">0-based line index in the input file.</param>
/// <param name="LineNumber">1-based line number, for messages.</param>
/// <param name="Text">The text.</param>
public sealed record Prompt(int Sequence, int LineNumber, string Text);

/// <summary>
/// Reads the inputs of a trace run: a <c>.jsonl</c> file holds one JSON object per line and names its text with a field;
/// any other file holds one text per line. The 0-based line index is the sequence id, so ids stay stable when lines
/// are skipped: empty (or whitespace-only) lines, and <c>.jsonl</c> lines whose field is empty, give no sequence but
/// keep their index.
/// </summary>
public static class PromptFile
{
    /// <summary>True when <paramref name="path"/> is read as JSON Lines (its extension is <c>.jsonl</c>).</summary>
    public static bool IsJsonLines(string path) =>
        string.Equals(Path.GetExtension(path), ".jsonl", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads every non-empty input of <paramref name="path"/>.</summary>
    /// <param name="path">The input file (UTF-8; a byte-order mark is dropped; lines end with LF or CRLF).</param>
    /// <param name="field">The text field of a <c>.jsonl</c> file.</param>
    /// <exception cref="ExpertScopeException">The file is missing, a line is not valid UTF-8, or a <c>.jsonl</c> line is not an object with a string field <paramref name="field"/>.</exception>
    public static IReadOnlyList<Prompt> Read(string path, string field = "text")
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(field);
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"The input file '{path}' does not exist.");
        }

        // A reader would replace invalid bytes with U+FFFD without a word, and the trace would hold other text.
        if (Data.Utf8Lines.FirstInvalidLine(File.ReadAllBytes(path)) is { } invalid)
        {
            throw new ExpertScopeException($"{path}:{invalid.Line}: {invalid.Problem}.");
        }

        bool json = IsJsonLines(path);
        var prompts = new List<Prompt>();
        int index = 0;
        using var reader = new StreamReader(path, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
        while (reader.ReadLine() is { } line)
        {
            int lineNumber = index + 1;
            if (!string.IsNullOrWhiteSpace(line))
            {
                string text = json ? ReadField(line, field, path, lineNumber) : line;
                if (text.Length > 0)
                {
                    prompts.Add(new Prompt(index, lineNumber, text));
                }
            }

            index++;
        }

        return prompts;
    }

    private static string ReadField(string line, string field, string path, int lineNumber)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new ExpertScopeException($"{path}:{lineNumber}: not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ExpertScopeException($"{path}:{lineNumber}: expected a JSON object, found {root.ValueKind}.");
            }

            if (!root.TryGetProperty(field, out var value))
            {
                throw new ExpertScopeException($"{path}:{lineNumber}: the object has no field '{field}' (choose the text field with --field).");
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                throw new ExpertScopeException($"{path}:{lineNumber}: field '{field}' is {value.ValueKind}, not a string.");
            }

            if (!Data.JsonEntries.HasValidStrings(value))
            {
                throw new ExpertScopeException($"{path}:{lineNumber}: field '{field}' is not valid Unicode (an unpaired surrogate escape such as \\ud800).");
            }

            return value.GetString()!;
        }
    }
}
