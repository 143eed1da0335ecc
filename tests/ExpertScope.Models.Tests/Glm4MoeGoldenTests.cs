using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <c>glm4moe</c> against llama.cpp (tests/golden/glm4moe): biased sigmoid routing with groups, a shared expert,
/// partial RoPE, q/k/v biases, QK norm, a leading dense block and a NextN block that is loaded but never run.
/// </summary>
public sealed class Glm4MoeGoldenTests(ITestOutputHelper output)
{
    /// <summary>GLM's graph names its feed-forward norm post_attn_norm and its ungated shared expert ffn_shexp_out.</summary>
    internal static readonly Dictionary<string, string> SiteAliases = new()
    {
        ["post_attn_norm"] = "ffn_norm",
        ["ffn_shexp_out"] = "ffn_shexp",
    };

    [Fact]
    public void EveryDumpedSite_MatchesLlamaCpp()
    {
        var golden = GoldenCase.LoadRepository("glm4moe");
        float largest = GoldenParity.Check(golden, Tolerances.Float32, siteAliases: SiteAliases);
        output.WriteLine($"glm4moe: largest logit difference {largest:E3}");
    }

    [Fact]
    public void TwoThreads_AreBitIdenticalToOne()
    {
        var golden = GoldenCase.LoadRepository("glm4moe");
        ArchitectureTestRuns.AssertThreadCountInvariant(golden);
    }

    [Fact]
    public void NextNBlock_IsLoadedButNotRun()
    {
        var golden = GoldenCase.LoadRepository("glm4moe");
        using var model = MoeModel.Load(golden.ModelPath);
        Assert.Equal(4, model.File.GetInteger("glm4moe.block_count"));
        Assert.NotNull(model.File.FindTensor("blk.3.nextn.eh_proj.weight"));
        Assert.Equal(3, model.Blocks.Count);
        Assert.Equal(3, model.Hyperparameters.BlockCount);
        Assert.Null(model.Blocks[0].Moe);
        Assert.All(model.Blocks.Skip(1), b => Assert.NotNull(b.Moe));
    }

    [Fact]
    public void Router_ReadsGlmMetadata()
    {
        var golden = GoldenCase.LoadRepository("glm4moe");
        using var model = MoeModel.Load(golden.ModelPath);
        var router = model.Blocks[1].Moe!.Router.Config;
        Assert.Equal(GatingFunction.Sigmoid, router.Gating);
        Assert.Equal(4, router.GroupCount);
        Assert.Equal(2, router.GroupsKept);
        Assert.True(router.NormalizeWeights);
        Assert.Equal(2.5f, router.WeightScale);
        Assert.Equal(8, model.Blocks[1].Attention is Attention a ? a.Options.Rope.Dimensions : -1);
    }

    [Fact]
    public void CommittedModel_IsWhatTheTinyGlm4MoePresetWrites() =>
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get("tiny-glm4moe"), "glm4moe");

    [Fact]
    public void NextNCountNotBelowBlockCount_IsOneClearError()
    {
        var golden = GoldenCase.LoadRepository("glm4moe");
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["glm4moe.nextn_predict_layers"] = 4L } };
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(golden.ModelPath, options));
        Assert.Contains("glm4moe.nextn_predict_layers = 4", error.Message, StringComparison.Ordinal);
        Assert.Contains(golden.ModelPath, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoSharedExpert_IsOneClearError()
    {
        // llama.cpp's glm4moe graph always adds the shared expert; a file without one cannot be run as it would be.
        var golden = GoldenCase.LoadRepository("glm4moe");
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["glm4moe.expert_shared_count"] = 0L } };
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(golden.ModelPath, options));
        Assert.Contains("'glm4moe.expert_shared_count' = 0 is out of range", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PartialRope_RotatesOnlyTheFirstDimensionsOfEachHead()
    {
        // NEOX pairs (i, i + d/2) within the first d = 8 of 16 values per head; the other 8 pass through.
        var rope = new Rope(8, 10000f, RopeStyle.Neox);
        var values = Enumerable.Range(0, 32).Select(i => 0.1f * (i + 1)).ToArray();
        var expected = (float[])values.Clone();
        const int position = 5;
        for (int h = 0; h < 2; h++)
        {
            for (int i = 0; i < 4; i++)
            {
                double angle = position * Math.Pow(10000.0, -2.0 * i / 8);
                int a = (h * 16) + i;
                int b = a + 4;
                expected[a] = (float)((values[a] * Math.Cos(angle)) - (values[b] * Math.Sin(angle)));
                expected[b] = (float)((values[a] * Math.Sin(angle)) + (values[b] * Math.Cos(angle)));
            }
        }

        rope.Apply(values, headCount: 2, headStride: 16, position);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - values[i]) < 1e-5f, $"value {i}: expected {expected[i]}, got {values[i]}");
        }

        Assert.Equal(expected.AsSpan(8, 8).ToArray(), values.AsSpan(8, 8).ToArray());
    }
}
