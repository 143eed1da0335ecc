using System.Globalization;
using System.Text;
using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Runs;

/// <summary>
/// What a long run was started with, saved as <c>manifest.json</c> in its run folder. A re-run resumes only when
/// the parts that decide the results (<see cref="Kind"/>, <see cref="Settings"/>, <see cref="Seed"/>,
/// <see cref="ModelSha256"/>) are the same; the command line, version and start time are kept for the record.
/// </summary>
public sealed record RunManifest
{
    /// <summary>What kind of run this is (the verb or experiment name, e.g. <c>trace</c>).</summary>
    public required string Kind { get; init; }

    /// <summary>Every setting that affects the results, by name, as invariant-culture text.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>The random seed, or null for a run that draws nothing at random.</summary>
    public long? Seed { get; init; }

    /// <summary>Lower-case hex SHA-256 of the model file, or null when the run reads no model.</summary>
    public string? ModelSha256 { get; init; }

    /// <summary>The command line that started the run (for the record; not compared).</summary>
    public string? CommandLine { get; init; }

    /// <summary>The ExpertScope version that started the run (for the record; not compared).</summary>
    public string? ExpertScopeVersion { get; init; }

    /// <summary>When the run was first started (for the record; not compared).</summary>
    public DateTimeOffset? StartedUtc { get; init; }

    /// <summary>
    /// Lists, in words, how <paramref name="requested"/> differs from this manifest in the parts that decide
    /// the results; empty when a run with <paramref name="requested"/> may resume this one.
    /// </summary>
    public IReadOnlyList<string> DifferencesFrom(RunManifest requested)
    {
        ArgumentNullException.ThrowIfNull(requested);
        var differences = new List<string>();
        if (!string.Equals(Kind, requested.Kind, StringComparison.Ordinal))
        {
            differences.Add($"run kind was '{Kind}', now '{requested.Kind}'");
        }

        if (Seed != requested.Seed)
        {
            differences.Add($"seed was {Describe(Seed)}, now {Describe(requested.Seed)}");
        }

        if (!string.Equals(ModelSha256, requested.ModelSha256, StringComparison.OrdinalIgnoreCase))
        {
            differences.Add($"model file SHA-256 was {ModelSha256 ?? "(none)"}, now {requested.ModelSha256 ?? "(none)"}");
        }

        foreach (var name in Settings.Keys.Union(requested.Settings.Keys).Order(StringComparer.Ordinal))
        {
            var had = Settings.TryGetValue(name, out var before);
            var has = requested.Settings.TryGetValue(name, out var after);
            if (had && has && !string.Equals(before, after, StringComparison.Ordinal))
            {
                differences.Add($"setting '{name}' was '{before}', now '{after}'");
            }
            else if (had && !has)
            {
                differences.Add($"setting '{name}' was '{before}', now not given");
            }
            else if (!had && has)
            {
                differences.Add($"setting '{name}' was not given, now '{after}'");
            }
        }

        return differences;
    }

    /// <summary>Writes the manifest as indented JSON (settings in ordinal name order, so equal manifests give equal bytes).</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Reports.JsonOutput.WriterOptions(indented: true)))
        {
            writer.WriteStartObject();
            writer.WriteString("kind", Kind);
            if (Seed is { } seed)
            {
                writer.WriteNumber("seed", seed);
            }
            else
            {
                writer.WriteNull("seed");
            }

            writer.WriteString("model_sha256", ModelSha256);
            writer.WriteString("command_line", CommandLine);
            writer.WriteString("expertscope_version", ExpertScopeVersion);
            writer.WriteString("started_utc", StartedUtc?.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));
            writer.WriteStartObject("settings");
            foreach (var (name, value) in Settings.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                writer.WriteString(name, value);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Reads a manifest written by <see cref="ToJson"/>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">The file it came from, named in errors.</param>
    /// <exception cref="ExpertScopeException">The text is not a run manifest.</exception>
    public static RunManifest FromJson(string json, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var settings = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("settings", out var s) && s.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in s.EnumerateObject())
                {
                    settings[property.Name] = property.Value.ValueKind == JsonValueKind.String
                        ? property.Value.GetString()!
                        : property.Value.GetRawText();
                }
            }

            var kind = root.GetProperty("kind").GetString()
                ?? throw new ExpertScopeException($"The run manifest '{source}' has no 'kind'.");
            return new RunManifest
            {
                Kind = kind,
                Seed = root.TryGetProperty("seed", out var seed) && seed.ValueKind == JsonValueKind.Number ? seed.GetInt64() : null,
                ModelSha256 = OptionalString(root, "model_sha256"),
                CommandLine = OptionalString(root, "command_line"),
                ExpertScopeVersion = OptionalString(root, "expertscope_version"),
                StartedUtc = OptionalString(root, "started_utc") is { } started
                    ? DateTimeOffset.Parse(started, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)
                    : null,
                Settings = settings,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ExpertScopeException($"The run manifest '{source}' is not valid: {e.Message}", e);
        }
    }

    private static string? OptionalString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Describe(long? seed) => seed?.ToString(CultureInfo.InvariantCulture) ?? "(none)";
}
