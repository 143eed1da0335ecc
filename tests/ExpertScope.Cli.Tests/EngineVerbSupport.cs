using System.Text.Json;
using ExpertScope.Cli;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>Runs verbs in-process and reads the golden llama.cpp cases.</summary>
internal static class EngineVerbs
{
    public static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    public static string ModelPath(string model) => GoldenData.GoldenPath("models", model, "model.gguf");

    /// <summary>Every golden case (those with an override run with it).</summary>
    public static TheoryData<string> GoldenCases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.EnumerateDirectories(GoldenData.GoldenPath("models")).Order(StringComparer.Ordinal))
        {
            // A case whose model lives elsewhere (olmoe-trained: llama.cpp's SIMD build, not bit-exact) is checked by
            // GoldenParityTests at its own tolerances, not by these bit-exact verb tests.
            if (File.Exists(Path.Combine(dir, "case.json")) && File.Exists(Path.Combine(dir, "model.gguf")))
            {
                data.Add(Path.GetFileName(dir));
            }
        }

        return data;
    }

    public static void AssertOneErrorLine(string error, params string[] expected)
    {
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got: {error}");
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", lines[0], StringComparison.Ordinal);
        foreach (string part in expected)
        {
            Assert.Contains(part, lines[0], StringComparison.Ordinal);
        }
    }
}

/// <summary>One golden case: prompts, llama.cpp's token ids, and its dumped tensors.</summary>
internal sealed class GoldenCase
{
    private GoldenCase(string name, IReadOnlyList<GoldenPrompt> prompts, IReadOnlyList<string> overrideArgs)
    {
        Name = name;
        Prompts = prompts;
        OverrideArgs = overrideArgs;
    }

    public string Name { get; }

    public string Directory => GoldenData.GoldenPath("models", Name);

    public string ModelPath => Path.Combine(Directory, "model.gguf");

    public IReadOnlyList<GoldenPrompt> Prompts { get; }

    /// <summary><c>--override-kv</c> arguments reproducing the case's <c>kv_override</c>.</summary>
    public IReadOnlyList<string> OverrideArgs { get; }

    public static GoldenCase Load(string name)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(GoldenData.GoldenPath("models", name, "case.json")));
        var root = json.RootElement;
        var prompts = root.GetProperty("prompts").EnumerateArray()
            .Select(p => new GoldenPrompt(p.GetProperty("text").GetString()!, [.. p.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32())]))
            .ToList();
        var overrides = new List<string>();
        if (root.TryGetProperty("kv_override", out var kv))
        {
            foreach (var property in kv.EnumerateObject())
            {
                string value = property.Value.ValueKind switch
                {
                    JsonValueKind.Number when property.Value.TryGetInt64(out long l) => "int:" + l.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    JsonValueKind.Number => "float:" + property.Value.GetRawText(),
                    JsonValueKind.True => "bool:true",
                    JsonValueKind.False => "bool:false",
                    _ => "str:" + property.Value.GetString(),
                };
                overrides.Add("--override-kv");
                overrides.Add($"{property.Name}={value}");
            }
        }

        return new GoldenCase(name, prompts, overrides);
    }

    public bool HasTensor(int prompt, string name) => File.Exists(TensorPath(prompt, name));

    public int[] ReadInts(int prompt, string name)
    {
        var bytes = File.ReadAllBytes(TensorPath(prompt, name));
        var values = new int[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public float[] ReadFloats(int prompt, string name)
    {
        var bytes = File.ReadAllBytes(TensorPath(prompt, name));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    private string TensorPath(int prompt, string name) => Path.Combine(Directory, $"p{prompt}.{name}.bin");
}

internal sealed record GoldenPrompt(string Text, int[] Tokens);
