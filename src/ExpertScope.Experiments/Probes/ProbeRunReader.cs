using System.Globalization;
using System.Text;
using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Probes;

/// <summary>One row of a run's <c>pairs.csv</c>, as <c>compare</c> needs it.</summary>
/// <param name="PairId">The pair.</param>
/// <param name="Condition">Its condition.</param>
/// <param name="Layer">The MoE layer.</param>
/// <param name="Value">The compared metric at that layer.</param>
/// <param name="ContextId">The context (substitution), or null.</param>
public sealed record ProbePairRow(string PairId, string Condition, int Layer, double Value, string? ContextId);

/// <summary>A finished probe run as read back from its folder: what <c>results.json</c> says about it, and its <c>pairs.csv</c>.</summary>
/// <param name="Folder">The run folder.</param>
/// <param name="Kind">The probe.</param>
/// <param name="Dataset">The data set spec.</param>
/// <param name="Seed">The run's seed (reused for the comparison's bootstrap).</param>
/// <param name="Resamples">The run's bootstrap resamples.</param>
/// <param name="ModelName"><c>general.name</c>, or null.</param>
/// <param name="ModelFile">The model's file name.</param>
/// <param name="Architecture">The architecture.</param>
/// <param name="ExpertCount">Routed experts.</param>
/// <param name="TopK">Experts per token.</param>
/// <param name="RandomWeights">Whether the probe reported random weights.</param>
/// <param name="BlockCount">Transformer blocks, or null for runs written before <c>block_count</c> was recorded.</param>
/// <param name="Layers">The probed MoE layers, ascending.</param>
/// <param name="Pairs">The rows of <c>pairs.csv</c>.</param>
public sealed record ProbeRunData(
    string Folder, ProbeKind Kind, string Dataset, int Seed, int Resamples, string? ModelName, string ModelFile, string Architecture,
    int ExpertCount, int TopK, bool RandomWeights, int? BlockCount, IReadOnlyList<int> Layers, IReadOnlyList<ProbePairRow> Pairs)
{
    /// <summary>The model as a label: its name, else its file name.</summary>
    public string Model => string.IsNullOrEmpty(ModelName) ? ModelFile : ModelName;

    /// <summary>
    /// A layer's relative depth in [0, 1]: layer / (blocks − 1), so the first block is 0 and the last is 1 whatever
    /// the model's size. Without <see cref="BlockCount"/> the last probed layer is taken as the last block.
    /// </summary>
    public double RelativeDepth(int layer)
    {
        var blocks = BlockCount ?? (Layers.Count > 0 ? Layers[^1] + 1 : 1);
        return blocks <= 1 ? 0 : (double)layer / (blocks - 1);
    }
}

/// <summary>
/// Reads probe runs back for <c>compare</c>. Statistics are recomputed from <c>pairs.csv</c> (the deterministic
/// per-pair source); <c>results.json</c> supplies only the probe kind, model, seed and layers.
/// </summary>
public static class ProbeRunReader
{
    /// <summary>Reads a run folder.</summary>
    /// <param name="folder">A folder written by <c>expertscope probe</c>.</param>
    /// <param name="metric">The <c>pairs.csv</c> column to compare (kappa by default).</param>
    /// <exception cref="ExpertScopeException">The folder is not a probe run, or a file in it is malformed (file, line and problem named).</exception>
    public static ProbeRunData Read(string folder, string metric = "kappa")
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentException.ThrowIfNullOrEmpty(metric);
        var resultsPath = Path.Combine(folder, ProbeOutputs.ResultsFileName);
        var pairsPath = Path.Combine(folder, ProbeOutputs.PairsFileName);
        if (!Directory.Exists(folder))
        {
            throw new ExpertScopeException($"'{folder}' does not exist");
        }

        if (!File.Exists(resultsPath) || !File.Exists(pairsPath))
        {
            throw new ExpertScopeException($"'{folder}' is not a finished probe run: it has no {(File.Exists(resultsPath) ? ProbeOutputs.PairsFileName : ProbeOutputs.ResultsFileName)}");
        }

        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(File.ReadAllText(resultsPath));
        }
        catch (JsonException error)
        {
            throw new ExpertScopeException($"'{resultsPath}' is not valid JSON (line {error.LineNumber + 1}): {error.Message}");
        }

        using (json)
        {
            var root = json.RootElement;
            var probe = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("probe", out var probeElement) && probeElement.ValueKind == JsonValueKind.String
                ? probeElement.GetString()
                : null;
            var kind = probe switch
            {
                "word-sense" => ProbeKind.WordSense,
                "substitution" => ProbeKind.Substitution,
                _ => throw new ExpertScopeException($"'{resultsPath}' is not a probe run's results: no 'probe' field naming word-sense or substitution"),
            };
            var settings = Object(root, "settings", resultsPath);
            var model = Object(root, "model", resultsPath);
            var layers = root.TryGetProperty("layers", out var layerArray) && layerArray.ValueKind == JsonValueKind.Array
                ? layerArray.EnumerateArray().Select(layer => layer.GetInt32()).ToArray()
                : throw new ExpertScopeException($"'{resultsPath}' has no 'layers' array");
            var resamples = settings.TryGetProperty("bootstrap_resamples", out var r) && int.TryParse(r.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 2000;
            return new ProbeRunData(
                folder, kind, String(settings, "dataset") ?? "?", settings.TryGetProperty("seed", out var seed) && seed.TryGetInt32(out var s) ? s : 0, resamples,
                String(model, "name"), String(model, "file") ?? "?", String(model, "architecture") ?? "?",
                Int(model, "expert_count") ?? 0, Int(model, "top_k") ?? 0,
                model.TryGetProperty("random_weights", out var random) && random.ValueKind == JsonValueKind.True,
                Int(model, "block_count"), layers, ReadPairs(pairsPath, metric, kind));
        }
    }

    /// <summary>Reads the rows of <c>pairs.csv</c> with the <paramref name="metric"/> column.</summary>
    /// <exception cref="ExpertScopeException">A missing column or a malformed row (file and line named).</exception>
    public static IReadOnlyList<ProbePairRow> ReadPairs(string path, string metric, ProbeKind kind)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0)
        {
            throw new ExpertScopeException($"'{path}' is empty");
        }

        var header = SplitCsvLine(lines[0], path, 1);
        int Column(string name) => Array.IndexOf(header, name) is var index && index >= 0
            ? index
            : throw new ExpertScopeException($"'{path}' has no '{name}' column" + (name == "context_id" ? " (written by probes since per-context tests were added; rerun the probe)" : string.Empty));
        var (pairId, condition, layer, value) = (Column("pair_id"), Column("condition"), Column("layer"), Column(metric));
        var context = kind == ProbeKind.Substitution ? Column("context_id") : Array.IndexOf(header, "context_id");
        var rows = new List<ProbePairRow>(lines.Length - 1);
        for (var i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
            {
                continue;
            }

            var fields = SplitCsvLine(lines[i], path, i + 1);
            if (fields.Length != header.Length)
            {
                throw new ExpertScopeException($"'{path}' line {i + 1}: {fields.Length} fields, the header has {header.Length}");
            }

            if (!int.TryParse(fields[layer], NumberStyles.Integer, CultureInfo.InvariantCulture, out var layerNumber))
            {
                throw new ExpertScopeException($"'{path}' line {i + 1}: layer '{fields[layer]}' is not an integer");
            }

            if (!double.TryParse(fields[value], NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number))
            {
                throw new ExpertScopeException($"'{path}' line {i + 1}: {metric} '{fields[value]}' is not a finite number");
            }

            var contextId = context >= 0 && fields[context].Length > 0 ? fields[context] : null;
            if (kind == ProbeKind.Substitution && contextId is null)
            {
                throw new ExpertScopeException($"'{path}' line {i + 1}: empty context_id");
            }

            rows.Add(new ProbePairRow(fields[pairId], fields[condition], layerNumber, number, contextId));
        }

        return rows;
    }

    /// <summary>Splits one RFC 4180 line (quoted fields with doubled quotes; no line breaks inside fields, as the probes write).</summary>
    /// <exception cref="ExpertScopeException">An unterminated quoted field.</exception>
    public static string[] SplitCsvLine(string line, string path, int lineNumber)
    {
        ArgumentNullException.ThrowIfNull(line);
        var fields = new List<string>();
        var field = new StringBuilder();
        var i = 0;
        while (true)
        {
            if (i < line.Length && line[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new ExpertScopeException($"'{path}' line {lineNumber}: unterminated quoted field");
                    }

                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"')
                        {
                            field.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    field.Append(line[i++]);
                }
            }

            while (i < line.Length && line[i] != ',')
            {
                field.Append(line[i++]);
            }

            fields.Add(field.ToString());
            field.Clear();
            if (i >= line.Length)
            {
                return [.. fields];
            }

            i++;
        }
    }

    private static JsonElement Object(JsonElement root, string name, string path) =>
        root.TryGetProperty(name, out var element) && element.ValueKind == JsonValueKind.Object
            ? element
            : throw new ExpertScopeException($"'{path}' has no '{name}' object");

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static int? Int(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.TryGetInt32(out var number) ? number : null;
}
