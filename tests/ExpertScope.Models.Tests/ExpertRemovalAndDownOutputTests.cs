using System.Collections.Immutable;
using ExpertScope.Core;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>The <c>RemoveExperts</c> intervention and the <c>ffn_moe_down</c> hook site.</summary>
public sealed class ExpertRemovalAndDownOutputTests
{
    private static readonly int[] Tokens = [1, 5, 9, 20, 17, 3];

    [Fact]
    public void DownOutputs_TimesWeights_AreTheWeightedOutputs_AndNotEmittedUnlessAsked()
    {
        using var model = MoeModel.Load(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        var recorder = new RecordingObserver(s => s.Kind is HookKind.ExpertDownOutputs or HookKind.WeightedExpertOutputs or HookKind.Router);
        var logits = model.Run(Tokens, new RunOptions { Observers = [recorder] });
        Assert.Equal(model.Run(Tokens).Values, logits.Values);

        int layer = recorder.Routing.Keys.First();
        var routing = recorder.Routing[layer];
        var down = recorder.Activations["ffn_moe_down-" + layer];
        var weighted = recorder.Activations["ffn_moe_weighted-" + layer];
        int width = model.Hyperparameters.EmbeddingLength;
        Assert.Equal(Tokens.Length * routing.TopK * width, down.Length);
        for (int slot = 0; slot < Tokens.Length * routing.TopK; slot++)
        {
            for (int j = 0; j < width; j++)
            {
                Assert.Equal(weighted[slot * width + j], down[slot * width + j] * routing.Weights[slot]);
            }
        }

        var others = new RecordingObserver(s => s.Kind == HookKind.WeightedExpertOutputs);
        model.Run(Tokens, new RunOptions { Observers = [others] });
        Assert.DoesNotContain(others.Activations.Keys, k => k.StartsWith("ffn_moe_down", StringComparison.Ordinal));
    }

    [Fact]
    public void RemoveExperts_RenormalisesTheSoftmaxOverTheRest_WhileDisableExpertsDoesNot()
    {
        using var model = MoeModel.Load(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        ImmutableArray<ExpertId> gone = [new ExpertId(0), new ExpertId(5)];
        var removed = new RecordingObserver(s => s.Kind == HookKind.Router);
        var disabled = new RecordingObserver(s => s.Kind == HookKind.Router);
        model.Run(Tokens, new RunOptions { Interventions = [new RemoveExperts(LayerSelector.All, gone)], Observers = [removed] });
        model.Run(Tokens, new RunOptions { Interventions = [new DisableExperts(LayerSelector.All, gone)], Observers = [disabled] });
        foreach (var (layer, routing) in removed.Routing)
        {
            int experts = routing.Probabilities.Length / Tokens.Length;
            for (int t = 0; t < Tokens.Length; t++)
            {
                var p = routing.Probabilities.AsSpan(t * experts, experts);
                Assert.Equal(0f, p[0]);
                Assert.Equal(0f, p[5]);
                double sum = 0;
                foreach (float v in p)
                {
                    sum += v;
                }

                Assert.Equal(1.0, sum, 5);
                Assert.DoesNotContain(0, routing.Experts.AsSpan(t * routing.TopK, routing.TopK).ToArray());
                Assert.DoesNotContain(5, routing.Experts.AsSpan(t * routing.TopK, routing.TopK).ToArray());
            }

            if (layer != removed.Routing.Keys.Min())
            {
                continue; // later blocks see different inputs once an earlier block changed
            }

            Assert.True(KeptMass(disabled.Routing[layer].Probabilities, experts) < KeptMass(routing.Probabilities, experts) - 1e-3);

            // Same selection as DisableExperts, larger probabilities for the rest (the removed experts' mass is redistributed).
            Assert.Equal(disabled.Routing[layer].Experts, routing.Experts);
            for (int i = 0; i < routing.Probabilities.Length; i++)
            {
                if (i % experts is not (0 or 5))
                {
                    Assert.True(routing.Probabilities[i] >= disabled.Routing[layer].Probabilities[i]);
                }
            }
        }
    }

    private static double KeptMass(float[] probabilities, int experts) =>
        probabilities.Where((_, i) => i % experts is not (0 or 5)).Sum(v => (double)v);

    [Fact]
    public void ForcingARemovedExpert_IsRefused()
    {
        using var model = MoeModel.Load(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        RouterIntervention[] both = [new RemoveExperts(LayerSelector.All, [new ExpertId(2)]), new ForceExperts(LayerSelector.All, [new ExpertId(2)])];
        Assert.Throws<ExpertScopeException>(() => model.Run(Tokens, new RunOptions { Interventions = both }));
    }
}
