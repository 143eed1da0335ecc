using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <c>phimoe</c> (Phi-3.5-MoE) against llama.cpp: the float32 case runs with the long LongRoPE factors (context 256
/// above the original 128), the F16-expert case with the short ones (original context overridden to 256).
/// </summary>
public sealed class PhiMoeGoldenTests(ITestOutputHelper output)
{
    /// <summary>The seed the cases' models were written with (<c>make-model --preset tiny-phimoe --seed 2</c>).</summary>
    private const ulong CaseSeed = 2;

    [Fact]
    public void Float32Case_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository("phimoe");
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"phimoe: largest logit difference {largest:E3}");
    }

    [Fact]
    public void F16ExpertCase_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository("phimoe-f16");
        float largest = GoldenParity.Check(golden, Tolerances.Quantized);
        output.WriteLine($"phimoe-f16: largest logit difference {largest:E3}");
    }

    [Theory]
    [InlineData("phimoe")]
    [InlineData("phimoe-f16")]
    public void Prompts_TokenizeToLlamaCppsIds(string name) =>
        ArchitectureTestRuns.AssertTokenizerGivesCaseIds(GoldenCase.LoadRepository(name));

    [Fact]
    public void Results_AreBitIdentical_ForOneAndTwoThreads() =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.LoadRepository("phimoe"));

    [Theory]
    [InlineData("phimoe", "rope_factors_long.weight")]
    [InlineData("phimoe-f16", "rope_factors_short.weight")]
    public void RopeFactors_AreTheOnesLlamaCppChoseForTheCase(string name, string expectedTensor)
    {
        var golden = GoldenCase.LoadRepository(name);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        using var file = GgufFile.Open(golden.ModelPath);
        var expected = file.GetFloat32(file.GetTensor(expectedTensor)).ToArray();
        Assert.All(model.Blocks, block =>
        {
            var rope = Assert.IsType<Attention>(block.Attention).Options.Rope;
            Assert.Equal(expected, rope.FrequencyFactors!.ToArray());
        });
    }

    [Fact]
    public void Float32Case_DivergesWhenRunWithTheOtherRopeFactors()
    {
        // The case tells the two factor sets apart: forcing the short ones (original context 256) breaks parity.
        var golden = GoldenCase.LoadRepository("phimoe");
        var shortFactors = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["phimoe.rope.scaling.original_context_length"] = 256 } };
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => GoldenParity.Check(golden, Tolerances.Float32, options: shortFactors));
    }

    [Theory]
    [InlineData(128, 128, "rope_factors_long.weight")] // llama.cpp pads a 128 context to 256, above 128
    [InlineData(256, 256, "rope_factors_short.weight")]
    [InlineData(4096, 4096, "rope_factors_short.weight")] // Phi-3.5 run at its original context
    [InlineData(131072, 4096, "rope_factors_long.weight")] // Phi-3.5 run at its full context (llama.cpp's -c 0)
    [InlineData(257, 256, "rope_factors_long.weight")]
    public void FactorChoice_FollowsLlamaCppsPaddedContextRule(int context, int original, string expected) =>
        Assert.Equal(expected, PhiMoe.FactorTensorName(context, original));

    [Theory]
    [InlineData("phimoe", GgmlType.F32)]
    [InlineData("phimoe-f16", GgmlType.F16)]
    public void CaseModel_IsWhatMakeModelWrites(string name, GgmlType expertType) =>
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get("tiny-phimoe") with { Seed = CaseSeed, ExpertTensorType = expertType }, name);

    [Fact]
    public void RandomTwin_KeepsTheRopeFactorsAndGivesNormsUnitWeightAndZeroBias()
    {
        using var temp = new TempDirectory();
        string source = GoldenCase.LoadRepository("phimoe").ModelPath;
        RandomTwinWriter.Write(source, temp.File("twin.gguf"), seed: 3);
        using var original = GgufFile.Open(source);
        using var twin = GgufFile.Open(temp.File("twin.gguf"));
        float[] Values(GgufFile file, string name) => file.GetFloat32(file.GetTensor(name)).ToArray();
        Assert.Equal(Values(original, "rope_factors_long.weight"), Values(twin, "rope_factors_long.weight"));
        Assert.Equal(Values(original, "rope_factors_short.weight"), Values(twin, "rope_factors_short.weight"));
        Assert.All(Values(twin, "blk.0.attn_norm.weight"), v => Assert.Equal(1f, v));
        Assert.All(Values(twin, "blk.0.attn_norm.bias"), v => Assert.Equal(0f, v));
        Assert.All(Values(twin, "output_norm.bias"), v => Assert.Equal(0f, v));

        using var model = MoeModel.Load(temp.File("twin.gguf"));
        Assert.All(model.Run(GoldenCase.LoadRepository("phimoe").Prompts[0].Tokens).Values, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Routing_IsSoftmaxTopTwoRenormalised()
    {
        using var model = MoeModel.Load(GoldenCase.LoadRepository("phimoe").ModelPath);
        Assert.All(model.Blocks, block =>
        {
            var config = block.Moe!.Router.Config;
            Assert.Equal(Routing.GatingFunction.Softmax, config.Gating);
            Assert.Equal(2, config.TopK);
            Assert.True(config.NormalizeWeights);
            Assert.False(config.ScalesWeights);
            Assert.True(block.AttentionNorm.HasBias && block.FeedForwardNorm.HasBias);
        });
        Assert.True(model.Definition.OutputNorm.HasBias);
        Assert.NotNull(model.Definition.OutputBias);
    }

    [Fact]
    public void FusedQkvProjection_IsRefusedWithOneLineNamingTheTensor()
    {
        using var temp = new TempDirectory();
        string path = temp.File("fused.gguf");
        new TinyGguf()
            .Set("general.architecture", "phimoe")
            .Set("phimoe.embedding_length", 8)
            .Set("phimoe.block_count", 1)
            .Set("phimoe.feed_forward_length", 4)
            .Set("phimoe.attention.head_count", 2)
            .Set("phimoe.attention.head_count_kv", 2)
            .Set("phimoe.attention.layer_norm_rms_epsilon", 1e-6f)
            .Set("phimoe.context_length", 16)
            .Set("phimoe.vocab_size", 10)
            .Set("phimoe.expert_count", 4)
            .Set("phimoe.expert_used_count", 2)
            .Tensor("token_embd.weight", 8, 10)
            .Tensor("blk.0.attn_qkv.weight", 8, 24)
            .Write(path);
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("blk.0.attn_qkv.weight", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void YarnScaling_IsRefusedWithOneLineNamingTheKey()
    {
        var path = GoldenCase.LoadRepository("phimoe").ModelPath;
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["phimoe.rope.scaling.type"] = "yarn" } };
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path, options));
        Assert.Contains("rope.scaling.type 'yarn'", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }
}
