using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>Oracle parity: every golden case of the supported architectures, site by site, against llama.cpp's dumps.</summary>
public sealed class GoldenParityTests(ITestOutputHelper output)
{
    /// <summary>The golden cases whose weights are all float32.</summary>
    public static TheoryData<string> Float32Cases => ["mixtral", "qwen2moe", "qwen3moe", "olmoe", "qwen3moe-k1"];

    [Theory]
    [MemberData(nameof(Float32Cases))]
    public void Float32Case_MatchesLlamaCppAtEverySite(string name)
    {
        var golden = GoldenCase.Load(name);
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }

    /// <summary>
    /// The trained model (learned routing): its dump comes from llama.cpp's x86 SIMD build, whose float sums are
    /// rounded as <see cref="FloatArithmetic.Fused"/> rounds them, so both arithmetics are held to it.
    /// </summary>
    [Theory]
    [InlineData(FloatArithmetic.Reference)]
    [InlineData(FloatArithmetic.Fused)]
    public void TrainedCase_MatchesLlamaCppAtEverySite(FloatArithmetic arithmetic)
    {
        var golden = GoldenCase.Load("olmoe-trained");
        var options = golden.LoadOptions with { FloatArithmetic = arithmetic };
        float largest = GoldenParity.Check(golden, Tolerances.SimdBuild, options: options);
        output.WriteLine($"olmoe-trained ({arithmetic}): largest logit difference {largest:E3}");
    }

    [Fact]
    public void TrainedCase_TokenizerGivesLlamaCppsIds() =>
        ArchitectureTestRuns.AssertTokenizerGivesCaseIds(GoldenCase.Load("olmoe-trained"));

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

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2moe")]
    [InlineData("qwen3moe")]
    [InlineData("olmoe")]
    [InlineData("olmoe-q4_k")]
    public void TextToLogits_ThroughTheModelsOwnTokenizer_MatchesLlamaCpp(string name)
    {
        var golden = GoldenCase.Load(name);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        foreach (var prompt in golden.Prompts)
        {
            var tokens = model.Tokenizer.Encode(prompt.Text).ToArray();
            Assert.Equal(prompt.Tokens, tokens);
            var logits = model.Run(tokens, new RunOptions { Logits = LogitsSelection.Last });
            var expected = prompt.Logits.ReadFloats().AsSpan((tokens.Length - 1) * logits.Columns, logits.Columns);
            Assert.True(expected.SequenceEqual(logits.Row(0)), $"{name} '{prompt.Text}': last-position logits differ.");
        }
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
    [InlineData("olmoe-q4_k")]
    public void Results_AreBitIdentical_ForOneAndTwoThreads(string name) =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.Load(name));
}
