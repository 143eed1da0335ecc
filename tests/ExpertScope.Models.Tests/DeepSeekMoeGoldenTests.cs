using ExpertScope.Core;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <c>deepseek</c> (DeepSeekMoE) against llama.cpp: the repository golden cases <c>deepseek</c> (F32, run with
/// <c>expert_weights_scale</c> overridden to 1.5 so the scaling step is exercised) and <c>deepseek-q8_0</c> (the same
/// model with Q8_0 experts, scale 1 as in the released models).
/// </summary>
public sealed class DeepSeekMoeGoldenTests(ITestOutputHelper output)
{
    [Fact]
    public void Float32Case_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository("deepseek");
        Assert.Equal(1.5, golden.Overrides["deepseek.expert_weights_scale"]);
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"deepseek: largest logit difference {largest:E3}");
    }

    [Fact]
    public void QuantizedCase_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository("deepseek-q8_0");
        float largest = GoldenParity.Check(golden, Tolerances.Quantized);
        output.WriteLine($"deepseek-q8_0: largest logit difference {largest:E3}");
    }

    [Fact]
    public void Results_AreBitIdentical_ForOneAndTwoThreads()
    {
        var golden = GoldenCase.LoadRepository("deepseek");
        ArchitectureTestRuns.AssertThreadCountInvariant(golden);
    }

    [Fact]
    public void Tokenizer_GivesLlamaCppsIds() =>
        ArchitectureTestRuns.AssertTokenizerGivesCaseIds(GoldenCase.LoadRepository("deepseek"));

    [Theory]
    [InlineData("deepseek", GgmlType.F32)]
    [InlineData("deepseek-q8_0", GgmlType.Q8_0)]
    public void CommittedModel_IsWhatMakeModelWrites(string caseName, GgmlType expertType) =>
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get("tiny-deepseek") with { ExpertTensorType = expertType }, caseName);

    [Fact]
    public void Layout_LeadingDenseBlock_SharedExperts_SoftmaxWithoutRenormalisation()
    {
        var golden = GoldenCase.LoadRepository("deepseek");
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        Assert.Null(model.Blocks[0].Moe);
        foreach (var block in model.Blocks.Skip(1))
        {
            var moe = block.Moe!;
            Assert.Equal(new RouterConfig(16, 4, GatingFunction.Softmax, NormalizeWeights: false, WeightScale: 1.5f), moe.Router.Config);
            Assert.Equal(2 * 32, moe.Shared!.Ffn.Up.Outputs);
            Assert.Null(moe.Shared.Gate);
        }
    }

    [Fact]
    public void WeightNormalisationKey_IsIgnoredAsLlamaCppDoes()
    {
        // llama.cpp's deepseek graph never renormalises, whatever expert_weights_norm says.
        var golden = GoldenCase.LoadRepository("deepseek");
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["deepseek.expert_weights_norm"] = true } };
        using var model = MoeModel.Load(golden.ModelPath, options);
        Assert.All(model.Blocks.Skip(1), b => Assert.False(b.Moe!.Router.Config.NormalizeWeights));
    }
}
