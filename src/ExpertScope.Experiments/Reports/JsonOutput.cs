using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ExpertScope.Experiments.Reports;

/// <summary>
/// JSON output for results files. Rules, the same everywhere ExpertScope writes JSON:
/// <list type="bullet">
/// <item>Numbers are written by System.Text.Json, which never uses the current culture (<c>0.5</c>, never <c>0,5</c>),
/// in the shortest form that reads back to the same value.</item>
/// <item>JSON has no NaN or infinity, so a non-finite <see cref="double"/> or <see cref="float"/> is written as
/// <c>null</c> ("no value"; e.g. the correlation of a constant series). Readers that need the reason must take it
/// from a neighbouring field.</item>
/// <item>Property names are written as given (snake_case for files meant for pandas/DuckDB); text is UTF-8 and only
/// characters JSON requires are escaped, so non-ASCII tokens stay readable.</item>
/// </list>
/// </summary>
public static class JsonOutput
{
    /// <summary>Serializer options implementing the rules above (indented; non-finite numbers as null).</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions(indented: true);

    /// <summary>The same rules, without indentation (one line per value, for JSON Lines).</summary>
    public static JsonSerializerOptions CompactOptions { get; } = CreateOptions(indented: false);

    /// <summary>Writer options for <see cref="Utf8JsonWriter"/> that match <see cref="Options"/>.</summary>
    public static JsonWriterOptions WriterOptions(bool indented) =>
        new() { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes a number, or <c>null</c> if it is NaN or infinite.</summary>
    public static void WriteNumberOrNull(Utf8JsonWriter writer, double value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (double.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteNullValue();
        }
    }

    /// <summary>Writes a number, or <c>null</c> if it is NaN or infinite.</summary>
    public static void WriteNumberOrNull(Utf8JsonWriter writer, float value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (float.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteNullValue();
        }
    }

    /// <summary>Writes a named number, or <c>null</c> if it is NaN or infinite.</summary>
    public static void WriteNumberOrNull(Utf8JsonWriter writer, string name, double value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WritePropertyName(name);
        WriteNumberOrNull(writer, value);
    }

    /// <summary>Serializes <paramref name="value"/> with <see cref="Options"/>, ending with a newline.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options) + "\n";

    /// <summary>Serializes <paramref name="value"/> with <see cref="Options"/> to <paramref name="path"/> (UTF-8, no byte-order mark), atomically.</summary>
    public static void WriteFile<T>(string path, T value) => Runs.AtomicFile.WriteAllText(path, Serialize(value));

    private static JsonSerializerOptions CreateOptions(bool indented)
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = indented,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            NumberHandling = JsonNumberHandling.Strict,
        };
        options.Converters.Add(new FiniteDoubleConverter());
        options.Converters.Add(new FiniteSingleConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    private sealed class FiniteDoubleConverter : JsonConverter<double>
    {
        public override bool HandleNull => true;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => WriteNumberOrNull(writer, value);
    }

    private sealed class FiniteSingleConverter : JsonConverter<float>
    {
        public override bool HandleNull => true;

        public override float Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? float.NaN : reader.GetSingle();

        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options) => WriteNumberOrNull(writer, value);
    }

    internal static string ToText(Action<Utf8JsonWriter> write, bool indented)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions(indented)))
        {
            write(writer);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
