using ExpertScope.Core;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Tests;

/// <summary>Whole-model behaviour beyond parity: interventions, limits, sessions, generation.</summary>
public sealed class ModelBehaviourTests
{
    private static MoeModel LoadMixtral(out int[] tokens)
    {
        var golden = GoldenCase.Load("mixtral");
        tokens = golden.Prompts[0].Tokens;
        return MoeModel.Load(golden.ModelPath, golden.LoadOptions);
    }

    private static (FloatMatrix Logits, RecordingObserver Recorder) RunRecorded(MoeModel model, int[] tokens, params RouterIntervention[] interventions)
    {
        var recorder = new RecordingObserver(site => site.Kind == HookKind.Router);
        var logits = model.Run(tokens, new RunOptions { Observers = [recorder], Interventions = interventions, ThreadCount = 1 });
        return (logits, recorder);
    }

    [Fact]
    public void DisabledExpert_IsNeverSelected_AndChangesTheOutput()
    {
        using var model = LoadMixtral(out var tokens);
        var (baseline, before) = RunRecorded(model, tokens);
        int popular = before.Routing[0].Experts.GroupBy(e => e).OrderByDescending(g => g.Count()).First().Key;
        var (steered, after) = RunRecorded(model, tokens, new DisableExperts(LayerSelector.All, [new ExpertId(popular)]));
        Assert.All(after.Routing.Values, r => Assert.DoesNotContain(popular, r.Experts));
        Assert.NotEqual(baseline.Values, steered.Values);
    }

    [Fact]
    public void ForcedExpert_IsAlwaysSelectedFirst_OnlyInSelectedLayers()
    {
        using var model = LoadMixtral(out var tokens);
        var (_, recorder) = RunRecorded(model, tokens, new ForceExperts(LayerSelector.Only(1), [new ExpertId(5)]));
        var layer1 = recorder.Routing[1];
        Assert.Equal(2, layer1.TopK);
        for (int t = 0; t < tokens.Length; t++)
        {
            Assert.Equal(5, layer1.Experts[t * 2]);
        }

        // Layer 0 is untouched: the baseline decides there, and expert 5 is not always first.
        Assert.Contains(Enumerable.Range(0, tokens.Length), t => recorder.Routing[0].Experts[t * 2] != 5);
    }

    [Fact]
    public void OverrideTopK_ChangesTheNumberOfExperts_AndRenormalises()
    {
        using var model = LoadMixtral(out var tokens);
        var (_, recorder) = RunRecorded(model, tokens, new OverrideTopK(LayerSelector.All, 3));
        foreach (var routing in recorder.Routing.Values)
        {
            Assert.Equal(3, routing.TopK);
            for (int t = 0; t < tokens.Length; t++)
            {
                Assert.Equal(1.0f, routing.Weights.AsSpan(t * 3, 3).ToArray().Sum(), 5);
            }
        }
    }

    [Fact]
    public void KeepOnlyTopExpert_ZeroesTheOtherWeights_AndKeepsTheTopWeight()
    {
        using var model = LoadMixtral(out var tokens);
        var (_, before) = RunRecorded(model, tokens);
        var (_, after) = RunRecorded(model, tokens, new KeepOnlyTopExpert(LayerSelector.Only(0)));
        var baseline = before.Routing[0];
        var kept = after.Routing[0];
        for (int t = 0; t < tokens.Length; t++)
        {
            Assert.Equal(baseline.Experts[t * 2], kept.Experts[t * 2]);
            Assert.Equal(baseline.Weights[t * 2], kept.Weights[t * 2]);
            Assert.Equal(0.0f, kept.Weights[t * 2 + 1]);
        }
    }

    [Fact]
    public void ScaleExpert_MultipliesItsWeight()
    {
        using var model = LoadMixtral(out var tokens);
        var (_, before) = RunRecorded(model, tokens);
        int expert = before.Routing[2].Experts[0];
        var (_, after) = RunRecorded(model, tokens, new ScaleExpert(LayerSelector.Only(2), new ExpertId(expert), 0.25f));
        var baseline = before.Routing[2];
        var scaled = after.Routing[2];
        Assert.Equal(baseline.Experts, scaled.Experts);
        for (int i = 0; i < baseline.Weights.Length; i++)
        {
            float factor = baseline.Experts[i] == expert ? 0.25f : 1.0f;
            Assert.Equal(baseline.Weights[i] * factor, scaled.Weights[i]);
        }
    }

    [Fact]
    public void ZeroScaleOnEveryExpert_LeavesOnlyTheResidualStream()
    {
        using var model = LoadMixtral(out var tokens);
        var interventions = Enumerable.Range(0, 8).Select(e => (RouterIntervention)new ScaleExpert(LayerSelector.All, new ExpertId(e), 0)).ToArray();
        var recorder = new RecordingObserver(site => site.Kind is HookKind.ExpertOutput);
        model.Run(tokens, new RunOptions { Observers = [recorder], Interventions = interventions });
        Assert.All(recorder.Activations.Values, values => Assert.All(values, v => Assert.Equal(0.0f, v)));
    }

    [Fact]
    public void PromptLongerThanTheContext_IsRefused_NamingModelAndLengths()
    {
        using var model = LoadMixtral(out _);
        var tokens = Enumerable.Repeat(1, model.Hyperparameters.ContextLength + 1).ToArray();
        var error = Assert.Throws<ExpertScopeException>(() => model.Run(tokens));
        Assert.Contains(model.FilePath, error.Message);
        Assert.Contains("129", error.Message);
        Assert.Contains("128", error.Message);
    }

    [Fact]
    public void TokenOutsideTheVocabulary_IsRefused()
    {
        using var model = LoadMixtral(out _);
        var error = Assert.Throws<ExpertScopeException>(() => model.Run([1, 508]));
        Assert.Contains("508", error.Message);
    }

    [Fact]
    public void InterventionOnAMissingExpert_IsRefused()
    {
        using var model = LoadMixtral(out var tokens);
        var error = Assert.Throws<ExpertScopeException>(() =>
            model.Run(tokens, new RunOptions { Interventions = [new DisableExperts(LayerSelector.All, [new ExpertId(8)])] }));
        Assert.Contains("expert 8", error.Message);
    }

    [Fact]
    public void IncrementalSession_MatchesTheBatchedPrompt()
    {
        using var model = LoadMixtral(out var tokens);
        var batched = model.Run(tokens, new RunOptions { ThreadCount = 1 });
        var session = model.CreateSession();
        session.Append(tokens.AsSpan(0, tokens.Length - 1), new RunOptions { ThreadCount = 1 });
        var last = session.Append(tokens.AsSpan(tokens.Length - 1), new RunOptions { ThreadCount = 1 });
        var expected = batched.Row(tokens.Length - 1).ToArray();
        var actual = last.Row(0).ToArray();
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 4);
        }
    }

    [Fact]
    public void GreedyGeneration_FollowsTheArgmax_AndSeededSamplingIsReproducible()
    {
        using var model = LoadMixtral(out var tokens);
        var greedy = model.Generate(tokens, new GenerationOptions { MaxNewTokens = 3 });
        var logits = model.Run(tokens);
        var lastRow = logits.Row(tokens.Length - 1).ToArray();
        Assert.Equal(Array.IndexOf(lastRow, lastRow.Max()), greedy[0]);
        Assert.Equal(3, greedy.Count);

        var sampling = new GenerationOptions { MaxNewTokens = 4, Temperature = 1.0f, Seed = 20260101 };
        Assert.Equal(model.Generate(tokens, sampling), model.Generate(tokens, sampling));
    }

    [Fact]
    public void LongGreedyGeneration_AgreesWithOneBatchedPassOverTheWholeSequence()
    {
        // 19 prompt tokens + 90 generated: the key/value cache grows past its initial size on the way.
        using var model = LoadMixtral(out var tokens);
        var generated = model.Generate(tokens, new GenerationOptions { MaxNewTokens = 90, Run = new RunOptions { ThreadCount = 1 } });
        Assert.Equal(90, generated.Count);
        int[] sequence = [.. tokens, .. generated];
        var batched = model.Run(sequence, new RunOptions { ThreadCount = 1 });
        for (int i = 0; i < generated.Count; i++)
        {
            var row = batched.Row(tokens.Length - 1 + i).ToArray();
            Assert.Equal(Array.IndexOf(row, row.Max()), generated[i]);
        }
    }

    [Fact]
    public void RoutingTrace_KeepsThePromptAndGeneratedTokens_ByPosition()
    {
        var golden = GoldenCase.Load("qwen2moe");
        using var model = MoeModel.Load(golden.ModelPath);
        var prompt = golden.Prompts[1];
        var trace = new RoutingTrace(includeProbabilities: true);
        var options = new RunOptions { Observers = [trace] };
        var session = model.CreateSession();
        session.Append(prompt.Tokens.AsSpan(0, 10), options);
        session.Append(prompt.Tokens.AsSpan(10), options);

        Assert.Equal([0, 1, 2], trace.Layers);
        Assert.Equal(prompt.Tokens.Length, trace.PositionCount);
        foreach (int layer in trace.Layers)
        {
            var experts = prompt.Find($"ffn_moe_topk-{layer}")!.ReadInts();
            var weights = prompt.Find($"ffn_moe_weights-{layer}")!.ReadFloats();
            var probabilities = prompt.Find($"ffn_moe_probs-{layer}")!.ReadFloats();
            int k = trace.TopK(layer);
            for (int position = 0; position < prompt.Tokens.Length; position++)
            {
                Assert.Equal(experts.AsSpan(position * k, k), trace.ExpertsAt(layer, position));
                for (int i = 0; i < k; i++)
                {
                    Assert.Equal(weights[position * k + i], trace.WeightsAt(layer, position)[i], 5);
                    Assert.Equal(trace.ProbabilitiesAt(layer, position)[trace.ExpertsAt(layer, position)[i]], trace.ScoresAt(layer, position)[i]);
                }

                Assert.Equal(probabilities[position * 8], trace.ProbabilitiesAt(layer, position)[0], 5);
            }
        }
    }

    [Fact]
    public void LogitsSelection_ComputesOnlyTheRequestedRows_WithTheSameValues()
    {
        using var model = LoadMixtral(out var tokens);
        var all = model.Run(tokens, new RunOptions { ThreadCount = 1 });
        var last = model.Run(tokens, new RunOptions { ThreadCount = 1, Logits = LogitsSelection.Last });
        var trace = new RoutingTrace();
        var none = model.Run(tokens, new RunOptions { ThreadCount = 1, Logits = LogitsSelection.None, Observers = [trace] });
        Assert.Equal(1, last.Rows);
        Assert.Equal(all.Row(tokens.Length - 1).ToArray(), last.Row(0).ToArray());
        Assert.Equal(0, none.Rows);
        Assert.Equal(tokens.Length, trace.PositionCount);
    }

    [Fact]
    public void WeightedExpertOutputs_SumToTheMoeOutput_InSlotOrder()
    {
        using var model = LoadMixtral(out var tokens);
        var recorder = new RecordingObserver(site => site is { Layer: 1, Kind: HookKind.WeightedExpertOutputs or HookKind.ExpertOutput });
        model.Run(tokens, new RunOptions { Observers = [recorder] });
        var weighted = recorder.Activations["ffn_moe_weighted-1"];
        var sum = recorder.Activations["ffn_moe_out-1"];
        const int Width = 64;
        const int K = 2;
        Assert.Equal(tokens.Length * K * Width, weighted.Length);
        for (int t = 0; t < tokens.Length; t++)
        {
            for (int j = 0; j < Width; j++)
            {
                Assert.Equal(sum[t * Width + j], weighted[(t * K * Width) + j] + weighted[(t * K * Width) + Width + j]);
            }
        }
    }

    [Fact]
    public void ObserversAreAskedFirst_AndReceiveOnlyWhatTheyWant()
    {
        using var model = LoadMixtral(out var tokens);
        var recorder = new RecordingObserver(site => site is { Kind: HookKind.LayerOutput, Layer: 1 });
        model.Run(tokens, new RunOptions { Observers = [recorder] });
        Assert.Equal(["l_out-1"], recorder.Order);
        Assert.Empty(recorder.Routing);
    }
}
