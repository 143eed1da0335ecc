using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>make-model</c> writes glm4moe and granitemoe files that the engine traces as a user runs it.</summary>
public class MakeModelNewArchitecturesTests
{
    [Theory]
    [InlineData("tiny-glm4moe", "glm4moe", 2)]
    [InlineData("tiny-granitemoe", "granitemoe", 2)]
    [InlineData("tiny-granitemoe-shared", "granitemoe", 2)]
    public void Preset_IsWritten_AndEveryMoeBlockIsTraced(string preset, string architecture, int moeBlocks)
    {
        using var temp = new TempDirectory();
        string model = temp.File(preset + ".gguf");
        string input = temp.File("input.txt");
        string trace = temp.File("trace.jsonl");
        File.WriteAllText(input, "The bank by the river bank was closed.\n");

        var (code, output, error) = EngineVerbs.Run("make-model", "--preset", preset, "--out", model);
        Assert.True(code == 0, error);
        Assert.Contains($": {architecture},", output, StringComparison.Ordinal);
        var traced = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", trace, "--threads", "1");
        Assert.True(traced.Code == 0, traced.Error);

        // One record per (token, MoE block): the NextN block of the GLM file is not run, so it is not traced.
        var layers = File.ReadLines(trace)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(r => r.TryGetProperty("layer", out _))
            .Select(r => r.GetProperty("layer").GetInt32())
            .Distinct()
            .Count();
        Assert.Equal(moeBlocks, layers);
    }
}
