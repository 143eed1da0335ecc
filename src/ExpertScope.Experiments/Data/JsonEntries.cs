using System.Text.Json;

namespace ExpertScope.Experiments.Data;

/// <summary>One value of a JSON array or object together with the 1-based line it starts on.</summary>
/// <param name="Key">The property name for object members; <see langword="null"/> for array items.</param>
/// <param name="Value">The parsed value (owned by a document that lives as long as the value is referenced).</param>
/// <param name="Line">1-based line of the value's first character.</param>
internal readonly record struct JsonEntry(string? Key, JsonElement Value, int Line);

/// <summary>
/// Splits a JSON document into its top-level entries while keeping line numbers, which
/// <see cref="JsonDocument"/> does not expose, so errors can name the line of the bad record.
/// </summary>
internal static class JsonEntries
{
    /// <summary>
    /// The items of a top-level array, or the members of a top-level object; with <paramref name="section"/>, the
    /// members of the object stored under that top-level key instead.
    /// </summary>
    /// <exception cref="DataFormatException">The text is not JSON of that shape.</exception>
    public static List<JsonEntry> Read(byte[] utf8, string file, string? section = null)
    {
        // The JSON reader does not check the bytes of strings; GetString would fail later without a location.
        if (Utf8Lines.FirstInvalidLine(utf8) is { } invalid)
        {
            throw new DataFormatException(file, invalid.Line, invalid.Problem);
        }

        var entries = new List<JsonEntry>();
        var lines = new LineCounter(utf8);
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        try
        {
            if (!reader.Read())
            {
                throw new DataFormatException(file, 1, "the file is empty");
            }

            if (section is not null)
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    throw new DataFormatException(file, lines.LineAt(reader.TokenStartIndex), "expected a JSON object at the top level");
                }

                var found = false;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var name = reader.GetString();
                    reader.Read();
                    if (name == section && reader.TokenType == JsonTokenType.StartObject)
                    {
                        found = true;
                        break;
                    }

                    reader.Skip();
                }

                if (!found)
                {
                    throw new DataFormatException(file, 1, $"no object under the top-level key '{section}'");
                }
            }

            var isArray = reader.TokenType == JsonTokenType.StartArray;
            if (!isArray && reader.TokenType != JsonTokenType.StartObject)
            {
                throw new DataFormatException(file, lines.LineAt(reader.TokenStartIndex), "expected a JSON array or object");
            }

            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.EndArray or JsonTokenType.EndObject)
                {
                    break;
                }

                string? key = null;
                if (!isArray)
                {
                    key = reader.GetString();
                    reader.Read();
                }

                var line = lines.LineAt(reader.TokenStartIndex);
                using var document = JsonDocument.ParseValue(ref reader);
                if (!HasValidStrings(document.RootElement))
                {
                    throw new DataFormatException(file, line, $"entry '{key}' holds a string that is not valid Unicode (an unpaired surrogate escape such as \\ud800)");
                }

                entries.Add(new JsonEntry(key, document.RootElement.Clone(), line));
            }
        }
        catch (JsonException error)
        {
            throw new DataFormatException(file, (int)(error.LineNumber ?? 0) + 1, "invalid JSON: " + error.Message);
        }
        catch (InvalidOperationException error)
        {
            // A property name with an unpaired surrogate escape: the reader cannot turn it into a string.
            throw new DataFormatException(file, lines.LineAt(reader.TokenStartIndex), "a key is not valid Unicode: " + error.Message);
        }

        return entries;
    }

    /// <summary>
    /// True when every string and property name in <paramref name="element"/> decodes to valid UTF-16. JSON escapes can
    /// spell unpaired surrogates (<c>\ud800</c>), which <see cref="JsonElement.GetString"/> refuses with an
    /// <see cref="InvalidOperationException"/>; checking once here lets the loaders read strings without that risk.
    /// </summary>
    public static bool HasValidStrings(JsonElement element)
    {
        try
        {
            return Walk(element);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static bool Walk(JsonElement value)
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.String:
                    _ = value.GetString();
                    return true;
                case JsonValueKind.Array:
                    return value.EnumerateArray().All(Walk);
                case JsonValueKind.Object:
                    foreach (var property in value.EnumerateObject())
                    {
                        _ = property.Name; // decoding the name throws as GetString does
                        if (!Walk(property.Value))
                        {
                            return false;
                        }
                    }

                    return true;
                default:
                    return true;
            }
        }
    }

    /// <summary>Reads a string property, or returns <see langword="null"/> when it is missing or not a string.</summary>
    public static string? GetString(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    // Counts newlines incrementally: entries are visited in order, so the total work is one pass over the bytes.
    private sealed class LineCounter(byte[] utf8)
    {
        private long _position;
        private int _line = 1;

        public int LineAt(long offset)
        {
            if (offset < _position)
            {
                _position = 0;
                _line = 1;
            }

            _line += utf8.AsSpan((int)_position, (int)(offset - _position)).Count((byte)'\n');
            _position = offset;
            return _line;
        }
    }
}
