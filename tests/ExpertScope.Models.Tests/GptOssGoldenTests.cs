using ExpertScope.Core;
using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// gpt-oss against llama.cpp (tests/golden/gpt-oss*: sinks, a sliding window of 4 on blocks 0 and 2 with 12-token
/// prompts, biases, softmax over the top-k logits, clamped SwiGLU, YaRN), and its new blocks against plain references.
/// </summary>
public sealed class GptOssGoldenTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("gpt-oss")]
    [InlineData("gpt-oss-mxfp4")]
    public void GoldenCase_MatchesLlamaCppAtEverySite(string name)
    {
        var golden = GoldenCase.LoadRepository(name);
        float largest = GoldenParity.Check(golden, name == "gpt-oss" ? Tolerances.Float32 : Tolerances.Quantized);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }

    [Theory]
    [InlineData("gpt-oss")]
    [InlineData("gpt-oss-mxfp4")]
    public void Results_AreBitIdentical_ForOneAndTwoThreads(string name) =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.LoadRepository(name));

    [Fact]
    public void GoldenCase_SeesTheWindow_FromTheFirstSlidingLayer()
    {
        // The planted effect: with a window wider than the prompts, the first divergence is block 0's attention.
        var golden = GoldenCase.LoadRepository("gpt-oss");
        var wide = golden.LoadOptions with { MetadataOverrides = new Dictionary<string, object> { ["gpt-oss.attention.sliding_window"] = 64L } };
        var failure = Assert.ThrowsAny<Exception>(() => GoldenParity.Check(golden, Tolerances.Float32, options: wide));
        Assert.Contains("layer 0, token 4, site kqv_out-0", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadMetadata_IsOneLineNamingTheFileAndKey()
    {
        var golden = GoldenCase.LoadRepository("gpt-oss");
        ModelLoadOptions With(string key, object value) => new() { MetadataOverrides = new Dictionary<string, object> { [key] = value } };
        var window = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(golden.ModelPath, With("gpt-oss.attention.sliding_window", 0L)));
        Assert.Contains("model.gguf: metadata 'gpt-oss.attention.sliding_window' = 0 is out of range", window.Message, StringComparison.Ordinal);
        var rope = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(golden.ModelPath, With("gpt-oss.rope.scaling.type", "longrope")));
        Assert.Contains("rope.scaling.type 'longrope' is not supported", rope.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ObserversGetADistribution_WhoseRenormalisedTopKAreTheWeights()
    {
        // ffn_moe_probs is the logits under this gating; trace and the probes read a softmax over all experts instead.
        var golden = GoldenCase.LoadRepository("gpt-oss");
        using var model = MoeModel.Load(golden.ModelPath);
        var trace = new RoutingTrace(includeProbabilities: true);
        model.Run(golden.Prompts[0].Tokens, new RunOptions { Observers = [trace] });
        foreach (int layer in trace.Layers)
        {
            for (int position = 0; position < golden.Prompts[0].Tokens.Length; position++)
            {
                var distribution = trace.ProbabilitiesAt(layer, position).ToArray();
                Assert.Equal(1.0, distribution.Sum(p => (double)p), 5);
                var experts = trace.ExpertsAt(layer, position).ToArray();
                var weights = trace.WeightsAt(layer, position).ToArray();
                double chosen = experts.Sum(e => (double)distribution[e]);
                for (int slot = 0; slot < experts.Length; slot++)
                {
                    Assert.Equal(weights[slot], distribution[experts[slot]] / chosen, 5);
                }
            }
        }
    }

    [Fact]
    public void GoldenModel_IsWhatTheSyntheticWriterWrites() =>
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get("tiny-gpt-oss"), "gpt-oss");

    [Fact]
    public void Layers_SlideAsLlamaCppsSwaPattern()
    {
        // set_swa_pattern(2): even layers slide; 3: two of every three; 0 or 1: every layer.
        Assert.Equal([true, false, true, false], Enumerable.Range(0, 4).Select(l => GptOss.IsSlidingLayer(l, 2)));
        Assert.Equal([true, true, false, true], Enumerable.Range(0, 4).Select(l => GptOss.IsSlidingLayer(l, 3)));
        Assert.All(Enumerable.Range(0, 4), l => Assert.True(GptOss.IsSlidingLayer(l, 0)));
        using var model = MoeModel.Load(GoldenCase.LoadRepository("gpt-oss").ModelPath);
        var windows = model.Definition.Blocks.Select(b => ((Attention)b.Attention).Options.KeyWindow).ToArray();
        Assert.Equal(new KeyWindow(KeyWindowKind.Sliding, 4), windows[0]);
        Assert.Null(windows[1]);
        Assert.Equal(new KeyWindow(KeyWindowKind.Sliding, 4), windows[2]);
    }

    [Fact]
    public void ClampedSwiGlu_EqualsTheFormula_AndClamps()
    {
        float[] gate = [-9f, -1f, 0f, 0.5f, 3f, 6.9f, 7f, 12f];
        float[] up = [-12f, -7.5f, -1f, 0f, 2f, 7f, 8f, 30f];
        var result = (float[])gate.Clone();
        ClampedSwiGlu.GptOss.Apply(result, up);
        for (int i = 0; i < gate.Length; i++)
        {
            double x = Math.Min(gate[i], 7.0);
            double y = Math.Clamp(up[i], -7.0, 7.0);
            double expected = x / (1 + Math.Exp(-1.702 * x)) * (y + 1);
            Assert.True(Math.Abs(result[i] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"element {i}: {result[i]} vs {expected}");
        }

        // Beyond the limit neither input changes the output.
        var clamped = new float[] { 12f };
        ClampedSwiGlu.GptOss.Apply(clamped, [30f]);
        var atLimit = new float[] { 7f };
        ClampedSwiGlu.GptOss.Apply(atLimit, [7f]);
        Assert.Equal(atLimit[0], clamped[0]);
    }

    [Fact]
    public void SoftmaxWeightGating_ChoosesByBiasedLogits_AndWeighsBySoftmaxOverTheChosen()
    {
        var router = new Router(0, new RouterConfig(4, 2, GatingFunction.SoftmaxWeight, NormalizeWeights: false), logitBias: [0f, 0f, 3f, 0f]);
        var result = new RoutingResult();
        router.Route([2f, 1f, 0f, -1f], 1, [], result);
        Assert.Equal([2, 0], result.Experts.AsSpan(0, 2).ToArray());
        Assert.Equal([2f, 1f, 3f, -1f], result.BiasedLogits.AsSpan(0, 4).ToArray());
        Assert.Equal([3f, 2f], result.RawWeights.AsSpan(0, 2).ToArray());
        double e = Math.Exp(-1);
        Assert.Equal(1 / (1 + e), result.Weights[0], 6);
        Assert.Equal(e / (1 + e), result.Weights[1], 6);
        Assert.Contains("router bias", Assert.Throws<ExpertScopeException>(() => new Router(0, new RouterConfig(4, 2, GatingFunction.SoftmaxWeight, false), logitBias: [1f])).Message, StringComparison.Ordinal);
    }
}
