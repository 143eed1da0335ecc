using System.Globalization;
using System.Text;
using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Steering;

/// <summary>
/// Loads prompt sets: a JSON array (of strings, or of objects whose <c>field</c> holds the text), JSON Lines (one
/// string or object per line), or plain text (one prompt per non-empty line). The format follows the extension
/// (<c>.json</c>, <c>.jsonl</c>; anything else is text).
/// </summary>
public static class PromptSet
{
    /// <summary>The object field read when none is given.</summary>
    public const string DefaultField = "instruction";

    /// <summary>Reads the prompts of <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="field">Object field holding the text (default <see cref="DefaultField"/>).</param>
    /// <param name="limit">Keep at most this many (the first ones); null keeps all.</param>
    /// <exception cref="ExpertScopeException">Malformed JSON, a missing field or an empty set (the message names the file).</exception>
    public static IReadOnlyList<string> Load(string path, string? field = null, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"{path}: prompt file not found.");
        }

        field ??= DefaultField;
        string extension = Path.GetExtension(path).ToLowerInvariant();
        var prompts = new List<string>();
        try
        {
            if (extension == ".json")
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(path));
                if (document.RootElement.ValueKind != JsonValueKind.Array)
                {
                    throw new ExpertScopeException($"{path}: expected a JSON array of prompts.");
                }

                int index = 0;
                foreach (var item in document.RootElement.EnumerateArray())
                {
                    prompts.Add(Text(item, field, $"{path}: item {index++}"));
                }
            }
            else if (extension == ".jsonl")
            {
                int lineNumber = 0;
                foreach (string line in File.ReadLines(path))
                {
                    lineNumber++;
                    if (line.Trim().Length == 0)
                    {
                        continue;
                    }

                    using var document = JsonDocument.Parse(line);
                    prompts.Add(Text(document.RootElement, field, $"{path}:{lineNumber}"));
                }
            }
            else
            {
                prompts.AddRange(File.ReadLines(path).Where(l => l.Trim().Length > 0));
            }
        }
        catch (JsonException e)
        {
            throw new ExpertScopeException($"{path}: not valid JSON ({e.Message}).");
        }

        if (prompts.Count == 0)
        {
            throw new ExpertScopeException($"{path}: no prompts.");
        }

        return limit is { } n ? [.. prompts.Take(n)] : prompts;
    }

    private static string Text(JsonElement item, string field, string where) => item.ValueKind switch
    {
        JsonValueKind.String => item.GetString()!,
        JsonValueKind.Object when item.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.String => value.GetString()!,
        JsonValueKind.Object => throw new ExpertScopeException($"{where}: no string field '{field}' (choose one with --field)."),
        _ => throw new ExpertScopeException($"{where}: expected a string or an object."),
    };
}

/// <summary>
/// A prompt template with slots, expanded to every combination of slot values (fTRI-style contrast sets such as
/// <c>What happened {time} {place}?</c>). Syntax:
/// <list type="bullet">
/// <item><c>{x}</c> — the prompt from the set being expanded (a template without <c>{x}</c> stands alone: it is expanded once);</item>
/// <item><c>{name}</c> — each value of the named slot (given as <c>name=v1|v2|…</c>); the same name used twice takes the same value;</item>
/// <item><c>{v1|v2|…}</c> — inline alternatives, one per expansion;</item>
/// <item><c>{{</c> and <c>}}</c> — literal braces.</item>
/// </list>
/// Expansions are listed in order: the first slot varies slowest.
/// </summary>
public sealed class PromptTemplate
{
    private readonly List<Part> _parts = [];
    private readonly List<(string Key, IReadOnlyList<string> Values)> _slots = [];

    private PromptTemplate(string text) => Text = text;

    /// <summary>The template text.</summary>
    public string Text { get; }

    /// <summary>Number of expansions per input prompt.</summary>
    public int ExpansionCount => _slots.Aggregate(1, (product, slot) => product * slot.Values.Count);

    /// <summary>Parses a template.</summary>
    /// <param name="text">The template.</param>
    /// <param name="slots">Values of named slots.</param>
    /// <exception cref="ExpertScopeException">Unbalanced braces, an empty alternative list, or a named slot without values.</exception>
    public static PromptTemplate Parse(string text, IReadOnlyDictionary<string, IReadOnlyList<string>>? slots = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        slots ??= new Dictionary<string, IReadOnlyList<string>>();
        var template = new PromptTemplate(text);
        var literal = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if ((c == '{' || c == '}') && i + 1 < text.Length && text[i + 1] == c)
            {
                literal.Append(c);
                i++;
                continue;
            }

            if (c == '}')
            {
                throw new ExpertScopeException($"template \"{text}\": unmatched '}}' at {i} (write '}}}}' for a literal brace).");
            }

            if (c != '{')
            {
                literal.Append(c);
                continue;
            }

            int close = text.IndexOf('}', i + 1);
            if (close < 0)
            {
                throw new ExpertScopeException($"template \"{text}\": '{{' at {i} is never closed.");
            }

            template._parts.Add(new Part(literal.ToString(), null));
            literal.Clear();
            string inner = text[(i + 1)..close];
            i = close;
            if (inner == "x")
            {
                template._parts.Add(new Part(null, "x"));
                continue;
            }

            string key;
            IReadOnlyList<string> values;
            if (inner.Contains('|', StringComparison.Ordinal))
            {
                key = "#" + template._slots.Count.ToString(CultureInfo.InvariantCulture);
                values = inner.Split('|');
            }
            else if (slots.TryGetValue(inner, out var named) && named.Count > 0)
            {
                key = inner;
                values = named;
            }
            else
            {
                throw new ExpertScopeException($"template \"{text}\": slot {{{inner}}} has no values (give --slot {inner}=a|b|…, or write {{a|b}} inline).");
            }

            if (!template._slots.Any(s => s.Key == key))
            {
                template._slots.Add((key, values));
            }

            template._parts.Add(new Part(null, key));
        }

        template._parts.Add(new Part(literal.ToString(), null));
        return template;
    }

    /// <summary>Parses <c>name=v1|v2|…</c> slot definitions.</summary>
    /// <exception cref="ExpertScopeException">A definition without '=' or values.</exception>
    public static Dictionary<string, IReadOnlyList<string>> ParseSlots(IEnumerable<string> definitions)
    {
        ArgumentNullException.ThrowIfNull(definitions);
        var slots = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (string definition in definitions)
        {
            int equals = definition.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || equals == definition.Length - 1)
            {
                throw new ExpertScopeException($"slot '{definition}': write name=value1|value2|….");
            }

            slots[definition[..equals]] = definition[(equals + 1)..].Split('|');
        }

        return slots;
    }

    /// <summary>Every expansion of the template for one input prompt.</summary>
    public IEnumerable<string> Expand(string x)
    {
        int total = ExpansionCount;
        var builder = new StringBuilder();
        for (int n = 0; n < total; n++)
        {
            // Mixed-radix digits with the first slot most significant.
            var chosen = new Dictionary<string, string>(StringComparer.Ordinal);
            int rest = n;
            for (int s = _slots.Count - 1; s >= 0; s--)
            {
                var (key, values) = _slots[s];
                chosen[key] = values[rest % values.Count];
                rest /= values.Count;
            }

            builder.Clear();
            foreach (var part in _parts)
            {
                builder.Append(part.Literal ?? (part.Slot == "x" ? x : chosen[part.Slot!]));
            }

            yield return builder.ToString();
        }
    }

    /// <summary>True if the template has an <c>{x}</c> slot (it expands a prompt set rather than standing alone).</summary>
    public bool HasInput => _parts.Any(p => p.Slot == "x");

    /// <summary>Expands every prompt of a set (in order); a template without <c>{x}</c> is expanded once, ignoring the set.</summary>
    public IReadOnlyList<string> ExpandAll(IEnumerable<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        return HasInput ? [.. prompts.SelectMany(Expand)] : [.. Expand(string.Empty)];
    }

    private sealed record Part(string? Literal, string? Slot);
}
