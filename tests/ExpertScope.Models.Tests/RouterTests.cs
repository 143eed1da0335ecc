using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Tests;

/// <summary>The router on hand-computed cases, and on the DeepSeek golden router dumps (logits in, every stage out).</summary>
public sealed class RouterTests
{
    // Softmax of ln(1..4) is exactly (1, 2, 3, 4) / 10.
    private static readonly float[] Logits = [0.0f, MathF.Log(2), MathF.Log(3), MathF.Log(4)];

    private static RoutingResult Route(RouterConfig config, float[] logits, params RouterIntervention[] interventions)
    {
        var router = new Router(layer: 0, config);
        var result = new RoutingResult();
        router.Route(logits, logits.Length / config.ExpertCount, interventions, result);
        return result;
    }

    private static RouterConfig Normalized(int k = 2) => new(4, k, GatingFunction.Softmax, NormalizeWeights: true);

    private static void AssertWeights(float[] expected, RoutingResult result)
    {
        Assert.Equal(expected.Length, result.TopK);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], result.Weights[i], 6);
        }
    }

    [Fact]
    public void Softmax_TopK_Renormalised()
    {
        var result = Route(Normalized(), Logits);
        Assert.Equal(new[] { 0.1f, 0.2f, 0.3f, 0.4f }, result.Probabilities.Take(4).Select(p => MathF.Round(p, 6)));
        Assert.Equal([3, 2], result.Experts.Take(2));
        Assert.Equal(0.4f, result.RawWeights[0], 6);
        AssertWeights([4 / 7f, 3 / 7f], result);
    }

    [Fact]
    public void Softmax_TopK_WithoutRenormalisation_KeepsTheProbabilities()
    {
        var result = Route(new RouterConfig(4, 2, GatingFunction.Softmax, NormalizeWeights: false), Logits);
        AssertWeights([0.4f, 0.3f], result);
    }

    [Fact]
    public void DisabledExpert_IsSkipped()
    {
        var result = Route(Normalized(), Logits, new DisableExperts(LayerSelector.All, [new ExpertId(3)]));
        Assert.Equal([2, 1], result.Experts.Take(2));
        AssertWeights([3 / 5f, 2 / 5f], result);
    }

    [Fact]
    public void ForcedExpert_TakesTheFirstSlot()
    {
        var result = Route(Normalized(), Logits, new ForceExperts(LayerSelector.All, [new ExpertId(0)]));
        Assert.Equal([0, 3], result.Experts.Take(2));
        AssertWeights([0.2f, 0.8f], result);
    }

    [Fact]
    public void ForcingMoreExpertsThanK_GrowsK()
    {
        var result = Route(Normalized(1), Logits, new ForceExperts(LayerSelector.All, [new ExpertId(0), new ExpertId(1)]));
        Assert.Equal([1, 0], result.Experts.Take(2));
        AssertWeights([2 / 3f, 1 / 3f], result);
    }

    [Fact]
    public void OverrideTopK_SelectsMoreExperts()
    {
        var result = Route(Normalized(), Logits, new OverrideTopK(LayerSelector.All, 3));
        Assert.Equal([3, 2, 1], result.Experts.Take(3));
        AssertWeights([4 / 9f, 3 / 9f, 2 / 9f], result);
    }

    [Fact]
    public void KeepOnlyTopExpert_KeepsItsNormalisedWeight()
    {
        var result = Route(Normalized(), Logits, new KeepOnlyTopExpert(LayerSelector.All));
        Assert.Equal([3, 2], result.Experts.Take(2));
        AssertWeights([4 / 7f, 0], result);
    }

    [Theory]
    [InlineData(TopExpertWeight.Own, 0.4f)]
    [InlineData(TopExpertWeight.One, 1f)]
    [InlineData(TopExpertWeight.Mass, 0.7f)]
    public void KeepOnlyTopExpert_OnARouterThatDoesNotNormalise_WeighsAsAsked(TopExpertWeight weight, float expected)
    {
        var config = new RouterConfig(4, 2, GatingFunction.Softmax, NormalizeWeights: false);
        var result = Route(config, Logits, new KeepOnlyTopExpert(LayerSelector.All) { Weight = weight });
        Assert.Equal([3, 2], result.Experts.Take(2));
        AssertWeights([expected, 0], result);
    }

    [Fact]
    public void DisableTopRankedExperts_RoutesToTheNextBest()
    {
        // Scores 0.1..0.4: the top two are 3 and 2; disabling the top one per token leaves 2 and 1, renormalised.
        var result = Route(Normalized(), Logits, new DisableTopRankedExperts(LayerSelector.All, 1));
        Assert.Equal([2, 1], result.Experts.Take(2));
        AssertWeights([3 / 5f, 2 / 5f], result);

        var none = Route(Normalized(), Logits, new DisableTopRankedExperts(LayerSelector.All, 0));
        Assert.Equal([3, 2], none.Experts.Take(2));
        Assert.Throws<ExpertScopeException>(() => Route(Normalized(), Logits, new DisableTopRankedExperts(LayerSelector.All, 4)));
    }

    [Fact]
    public void KeepOnlyTopExpertAtWeightOne_IgnoresTheRoutedScalingFactor()
    {
        var config = new RouterConfig(4, 2, GatingFunction.Softmax, NormalizeWeights: true, WeightScale: 2.5f);
        AssertWeights([1f, 0], Route(config, Logits, new KeepOnlyTopExpert(LayerSelector.All) { Weight = TopExpertWeight.One }));
        AssertWeights([2.5f, 0], Route(config, Logits, new KeepOnlyTopExpert(LayerSelector.All) { Weight = TopExpertWeight.Mass }));
    }

    [Fact]
    public void ScaleExpert_MultipliesOnlyThatExpertsWeight()
    {
        var result = Route(Normalized(), Logits, new ScaleExpert(LayerSelector.All, new ExpertId(2), 0.5f));
        AssertWeights([4 / 7f, 1.5f / 7f], result);
    }

    [Fact]
    public void InterventionsForOtherLayers_AreIgnored()
    {
        var result = Route(Normalized(), Logits, new DisableExperts(LayerSelector.Only(1, 2), [new ExpertId(3)]));
        Assert.Equal([3, 2], result.Experts.Take(2));
    }

    [Fact]
    public void ForcingADisabledExpert_IsRefused()
    {
        var error = Assert.Throws<ExpertScopeException>(() => Route(
            Normalized(),
            Logits,
            new DisableExperts(LayerSelector.All, [new ExpertId(1)]),
            new ForceExperts(LayerSelector.All, [new ExpertId(1)])));
        Assert.Contains("both forced and disabled", error.Message);
    }

    [Fact]
    public void TopKOutOfRange_IsRefused()
    {
        Assert.Throws<ExpertScopeException>(() => Route(Normalized(), Logits, new OverrideTopK(LayerSelector.All, 5)));
        Assert.Throws<ExpertScopeException>(() => new Router(0, new RouterConfig(4, 5, GatingFunction.Softmax, true)));
    }

    [Fact]
    public void Ties_GoToTheLowerExpertIndex()
    {
        var result = Route(new RouterConfig(4, 2, GatingFunction.Softmax, true), [1.0f, 2.0f, 2.0f, 2.0f]);
        Assert.Equal([1, 2], result.Experts.Take(2));
    }

    [Fact]
    public void GroupLimitedSigmoid_ChoosesByBiasedScores_WithinTheBestGroups_AndWeighsByUnbiasedProbabilities()
    {
        // 8 experts in 4 groups of 2; keep 2 groups; pick 3. Every logit is 0 (probability 0.5) except expert 7 (logit 1).
        float[] logits = [0, 0, 0, 0, 0, 0, 0, 1];
        float[] bias = [0.25f, 0.0f, 0.3f, 0.2f, 0.0f, 0.0f, 0.05f, 0.0f];
        var config = new RouterConfig(8, 3, GatingFunction.Sigmoid, NormalizeWeights: true, WeightScale: 2.5f, GroupCount: 4, GroupsKept: 2);
        var router = new Router(0, config, bias);
        var result = new RoutingResult();
        router.Route(logits, 1, [], result);

        float p7 = 1 / (1 + MathF.Exp(-1));

        // Group scores (sum of the two best biased scores): g0 = 0.75 + 0.5, g1 = 0.8 + 0.7, g2 = 1.0, g3 = 0.55 + p7.
        // g1 (1.5) and g3 (1.281) win, so expert 0 (score 0.75, the second best overall) is masked out.
        Assert.Equal([1, 3], result.Groups.Take(2).Order());
        Assert.Equal(float.NegativeInfinity, result.Scores[0]);
        Assert.Equal([2, 7, 3], result.Experts.Take(3));
        float sum = p7 + 0.5f + 0.5f;
        Assert.Equal(p7, result.RawWeights[1], 6);
        AssertWeights([0.5f / sum * 2.5f, p7 / sum * 2.5f, 0.5f / sum * 2.5f], result);
    }

    [Theory]
    [InlineData("deepseek3")]
    [InlineData("deepseek2-lite")]
    public void DeepSeekRouters_ReproduceEveryGoldenStage_FromTheGoldenLogits(string name)
    {
        var golden = GoldenCase.Load(name);
        using var file = GgufFile.Open(golden.ModelPath);
        var source = new ModelSource(file);
        int experts = source.Integer("expert_count");
        var gating = source.OptionalInteger("expert_gating_func") == 2 ? GatingFunction.Sigmoid : GatingFunction.Softmax;
        var config = new RouterConfig(
            experts,
            source.Integer("expert_used_count"),
            gating,
            source.OptionalBool("expert_weights_norm") ?? false,
            (float)(source.OptionalNumber("expert_weights_scale") ?? 1.0),
            (int)(source.OptionalInteger("expert_group_count") ?? 1),
            (int)(source.OptionalInteger("expert_group_used_count") ?? 1));

        foreach (var prompt in golden.Prompts)
        {
            foreach (var logitsTensor in prompt.Tensors.Where(t => t.Site == "ffn_moe_logits"))
            {
                int layer = logitsTensor.Layer;
                var biasTensor = file.FindTensor($"blk.{layer}.exp_probs_b.bias");
                var router = new Router(layer, config, biasTensor is null ? default : file.GetFloat32(biasTensor));
                var result = new RoutingResult();
                var logits = logitsTensor.ReadFloats();
                int tokens = logits.Length / experts;
                router.Route(logits, tokens, [], result);

                void Same(string site, float[] actual)
                {
                    if (prompt.Find($"{site}-{layer}") is not { } tensor)
                    {
                        return;
                    }

                    var expected = tensor.ReadFloats();
                    for (int i = 0; i < expected.Length; i++)
                    {
                        Assert.True(
                            expected[i] == actual[i] || MathF.Abs(expected[i] - actual[i]) <= 1e-6f,
                            $"{name} {site}-{layer}[{i}]: expected {expected[i]}, got {actual[i]}");
                    }
                }

                Same("ffn_moe_probs", result.Probabilities);
                Same("ffn_moe_probs_biased", result.BiasedScores);
                Same("ffn_moe_probs_masked", result.Scores);
                Same("ffn_moe_weights", result.RawWeights);
                Same("ffn_moe_weights_norm", result.NormalizedWeights);
                Same("ffn_moe_weights_scaled", result.ScaledWeights);
                Assert.Equal(prompt.Find($"ffn_moe_topk-{layer}")!.ReadInts(), result.Experts.Take(tokens * result.TopK));
                if (prompt.Find($"ffn_moe_group_topk-{layer}") is { } groups)
                {
                    var expected = groups.ReadInts();
                    int kept = groups.Columns;
                    for (int t = 0; t < tokens; t++)
                    {
                        Assert.Equal(expected.AsSpan(t * kept, kept).ToArray().Order(), result.Groups.AsSpan(t * kept, kept).ToArray().Order());
                    }
                }
            }
        }
    }
}
