using System.Runtime.InteropServices;
using System.Text.Json;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>One DeepSeek golden case: the model file and the tensors llama.cpp dumped per prompt.</summary>
internal sealed class DeepSeekGoldenCase : IDisposable
{
    private readonly string _folder;
    private readonly List<Dictionary<string, string>> _files = [];

    public DeepSeekGoldenCase(string name)
    {
        _folder = GoldenData.GoldenPath("models", name);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, "case.json")));
        var root = json.RootElement;
        foreach (var prompt in root.GetProperty("prompts").EnumerateArray())
        {
            Tokens.Add(prompt.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray());
            var files = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var tensor in prompt.GetProperty("tensors").EnumerateArray())
            {
                files[tensor.GetProperty("name").GetString()!] = tensor.GetProperty("file").GetString()!;
            }

            files["logits"] = prompt.GetProperty("logits").GetProperty("file").GetString()!;
            _files.Add(files);
        }

        ModelPath = Path.Combine(_folder, root.GetProperty("model").GetString()!);
        Model = GgufFile.Open(ModelPath);
    }

    public string ModelPath { get; }

    public GgufFile Model { get; }

    public List<int[]> Tokens { get; } = [];

    public int PromptCount => Tokens.Count;

    public int BlockCount => (int)Model.GetInteger("deepseek2.block_count");

    public bool Has(int prompt, string name) => _files[prompt].ContainsKey(name);

    public float[] Floats(int prompt, string name) =>
        MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(_folder, _files[prompt][name]))).ToArray();

    public int[] Ints(int prompt, string name) =>
        MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(Path.Combine(_folder, _files[prompt][name]))).ToArray();

    public void Dispose() => Model.Dispose();

    /// <summary>Largest |a - b| and where it is.</summary>
    public static (float Difference, int Index) MaxDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        var worst = 0f;
        var at = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            // Equal values (masked −∞ entries included) differ by nothing.
            var d = expected[i] == actual[i] ? 0f : MathF.Abs(expected[i] - actual[i]);
            if (!(d <= worst))
            {
                worst = d;
                at = i;
            }
        }

        return (worst, at);
    }
}
