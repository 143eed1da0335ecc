using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>Oracle parity: every golden case of the supported architectures, site by site, against llama.cpp's dumps.</summary>
public sealed class GoldenParityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2moe")]
    [InlineData("qwen3moe")]
    [InlineData("olmoe")]
    [InlineData("qwen3moe-k1")]
    public void Float32Case_MatchesLlamaCppAtEverySite(string name)
    {
        var golden = GoldenCase.Load(name);
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }

    [Theory]
    [InlineData("olmoe-q8_0")]
    [InlineData("olmoe-q4_k")]
    [InlineData("qwen2moe-f16")]
    public void QuantizedCase_MatchesLlamaCppAtEverySite(string name)
    {
        var golden = GoldenCase.Load(name);
        float largest = GoldenParity.Check(golden, Tolerances.Quantized);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }

    [Fact]
    public void KOverrideCase_SelectsOneExpertPerToken()
    {
        var golden = GoldenCase.Load("qwen3moe-k1");
        Assert.Equal(1L, golden.Overrides["qwen3moe.expert_used_count"]);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        Assert.All(model.Blocks, b => Assert.Equal(1, b.Moe!.Router.Config.TopK));
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2moe")]
    [InlineData("olmoe")]
    public void Results_AreBitIdentical_ForOneAndTwoThreads(string name)
    {
        var golden = GoldenCase.Load(name);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        var tokens = golden.Prompts[^1].Tokens;
        var one = model.Run(tokens, new RunOptions { ThreadCount = 1 });
        var two = model.Run(tokens, new RunOptions { ThreadCount = 2 });
        Assert.Equal(one.Values, two.Values);
    }
}
