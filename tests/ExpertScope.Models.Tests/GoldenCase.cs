using System.Runtime.InteropServices;
using System.Text.Json;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>One golden case (shared <c>golden/models/&lt;name&gt;</c> or the repository's <c>tests/golden/&lt;name&gt;</c>): the model, overrides, prompts and dumped tensors.</summary>
internal sealed class GoldenCase
{
    private GoldenCase(string name, string directory, string modelPath, Dictionary<string, object> overrides, List<GoldenPrompt> prompts)
    {
        Name = name;
        Directory = directory;
        ModelPath = modelPath;
        Overrides = overrides;
        Prompts = prompts;
    }

    public string Name { get; }

    public string Directory { get; }

    public string ModelPath { get; }

    /// <summary>The case's <c>kv_override</c> (metadata overrides llama.cpp ran with).</summary>
    public Dictionary<string, object> Overrides { get; }

    public IReadOnlyList<GoldenPrompt> Prompts { get; }

    public ModelLoadOptions LoadOptions => new() { MetadataOverrides = Overrides };

    /// <summary>A case of the shared set (<c>shared/golden/models/&lt;name&gt;</c>).</summary>
    public static GoldenCase Load(string name) => LoadFrom(name, GoldenData.GoldenPath("models", name));

    /// <summary>A case kept in the repository (<c>tests/golden/&lt;name&gt;</c>), same layout as the shared set.</summary>
    public static GoldenCase LoadRepository(string name) => LoadFrom(name, GoldenData.RepositoryGoldenPath(name));

    private static GoldenCase LoadFrom(string name, string directory)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "case.json")));
        var root = json.RootElement;
        var overrides = new Dictionary<string, object>();
        if (root.TryGetProperty("kv_override", out var kv))
        {
            foreach (var property in kv.EnumerateObject())
            {
                overrides[property.Name] = property.Value.ValueKind switch
                {
                    JsonValueKind.Number when property.Value.TryGetInt64(out long l) => l,
                    JsonValueKind.Number => property.Value.GetDouble(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => property.Value.GetString()!,
                };
            }
        }

        var prompts = new List<GoldenPrompt>();
        foreach (var prompt in root.GetProperty("prompts").EnumerateArray())
        {
            var tensors = new List<GoldenTensor>();
            foreach (var tensor in prompt.GetProperty("tensors").EnumerateArray())
            {
                tensors.Add(ReadTensor(directory, tensor));
            }

            prompts.Add(new GoldenPrompt(
                prompt.GetProperty("text").GetString()!,
                [.. prompt.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32())],
                ReadTensor(directory, prompt.GetProperty("logits"), "logits"),
                tensors));
        }

        return new GoldenCase(name, directory, Path.Combine(directory, root.GetProperty("model").GetString()!), overrides, prompts);
    }

    private static GoldenTensor ReadTensor(string directory, JsonElement element, string? name = null) => new(
        name ?? element.GetProperty("name").GetString()!,
        element.GetProperty("dtype").GetString()!,
        [.. element.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32())],
        Path.Combine(directory, element.GetProperty("file").GetString()!),
        element.TryGetProperty("first_row", out var firstRow) ? firstRow.GetInt32() : 0);
}

internal sealed record GoldenPrompt(string Text, int[] Tokens, GoldenTensor Logits, IReadOnlyList<GoldenTensor> Tensors)
{
    public GoldenTensor? Find(string name) => Tensors.FirstOrDefault(t => t.Name == name);
}

/// <summary>
/// A dumped tensor: little-endian float32 or int32, row-major, shape as C# indexes it. <paramref name="FirstRow"/> is
/// the token of its first row where a long prompt's dump was cut to its last rows (<c>first_row</c> in case.json).
/// </summary>
internal sealed record GoldenTensor(string Name, string DataType, int[] Shape, string FilePath, int FirstRow = 0)
{
    /// <summary>The site name without the layer suffix (<c>ffn_moe_probs</c>).</summary>
    public string Site => Layer >= 0 ? Name[..Name.LastIndexOf('-')] : Name;

    /// <summary>The block index in the name, or -1.</summary>
    public int Layer
    {
        get
        {
            int dash = Name.LastIndexOf('-');
            return dash > 0 && int.TryParse(Name.AsSpan(dash + 1), out int layer) ? layer : -1;
        }
    }

    /// <summary>Rows = the first dimension (tokens); columns = the product of the rest.</summary>
    public int Columns => Shape.Skip(1).Aggregate(1, (a, b) => a * b);

    public float[] ReadFloats()
    {
        if (DataType != "float32")
        {
            throw new InvalidOperationException($"{Name} is {DataType}");
        }

        return MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(FilePath)).ToArray();
    }

    public int[] ReadInts()
    {
        if (DataType != "int32")
        {
            throw new InvalidOperationException($"{Name} is {DataType}");
        }

        return MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(FilePath)).ToArray();
    }
}
