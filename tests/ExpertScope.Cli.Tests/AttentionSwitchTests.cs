using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>--cache-type-k/-v</c> and <c>--no-flash-attn</c> reach the engine on the model verbs.</summary>
public class AttentionSwitchTests
{
    [Fact]
    public void PerplexityWithAnF32CacheAndNoFlashAttention_EqualsTheEngineRunWithThoseSettings()
    {
        var golden = GoldenCase.Load("olmoe");
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, golden.Prompts[3].Text);

        var (code, output, error) = EngineVerbs.Run("perplexity", "--model", golden.ModelPath, "--input", input, "--json", "-ctk", "f32", "--cache-type-v", "f32", "--no-flash-attn");
        var (_, defaultOutput, _) = EngineVerbs.Run("perplexity", "--model", golden.ModelPath, "--input", input, "--json");

        Assert.True(code == 0, error);
        double switched = JsonDocument.Parse(output).RootElement.GetProperty("perplexity").GetDouble();
        double plain = JsonDocument.Parse(defaultOutput).RootElement.GetProperty("perplexity").GetDouble();
        using var model = MoeModel.Load(golden.ModelPath, new ModelLoadOptions { Attention = new AttentionSettings(GgmlType.F32, GgmlType.F32, FlashAttention: false) });
        var tokens = golden.Prompts[3].Tokens;
        var logits = model.Run(tokens);
        double total = 0;
        for (int i = 1; i < tokens.Length; i++)
        {
            var row = logits.Row(i - 1);
            double max = row.ToArray().Max();
            double sum = row.ToArray().Sum(v => Math.Exp(v - max));
            total -= row[tokens[i]] - max - Math.Log(sum);
        }

        double expected = Math.Exp(total / (tokens.Length - 1));
        Assert.Equal(expected, switched, expected * 1e-12);
        Assert.NotEqual(plain, switched);
    }

    [Fact]
    public void AQuantizedValueCacheWithoutFlashAttention_IsOneErrorLine()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, "Hello there.");

        var (code, _, error) = EngineVerbs.Run("perplexity", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--cache-type-v", "q8_0", "--no-flash-attn");
        Assert.NotEqual(0, code);
        EngineVerbs.AssertOneErrorLine(error, "requires flash attention");

        (code, _, error) = EngineVerbs.Run("perplexity", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--cache-type-k", "q3_K");
        Assert.NotEqual(0, code);
        EngineVerbs.AssertOneErrorLine(error, "q3_K", "f16");
    }
}
