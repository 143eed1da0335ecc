using ExpertScope.Core;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>The engine loads and runs every tiny synthetic preset (one per supported architecture).</summary>
public sealed class SyntheticModelRunTests
{
    public static TheoryData<string> TinyPresets() =>
        new(SyntheticPresets.All.Select(p => p.Name).Where(n => n.StartsWith("tiny-", StringComparison.Ordinal)));

    [Theory]
    [MemberData(nameof(TinyPresets))]
    public void TinyPreset_RunsWithFiniteLogits_AndRoutesEveryMoeBlock(string preset)
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get(preset);
        SyntheticModelWriter.Write(spec, temp.File("model.gguf"));
        using var model = MoeModel.Load(temp.File("model.gguf"));
        Assert.Equal(spec.Architecture, model.Architecture.Name);

        var trace = new RoutingTrace();
        int[] tokens = [1, 5, 9, 200, 17, 3];
        var logits = model.Run(tokens, new RunOptions { Observers = [trace] });
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
        // NextN blocks (GLM) close the file and are never run; dense blocks (leading, or between Llama 4's MoE blocks) do not route.
        Assert.Equal(Enumerable.Range(0, spec.BlockCount - spec.NextNBlockCount).Where(spec.IsMoeBlock), trace.Layers);
        foreach (int layer in trace.Layers)
        {
            Assert.Equal(spec.ExpertUsedCount, trace.TopK(layer));
            for (int position = 0; position < tokens.Length; position++)
            {
                Assert.Equal(spec.ExpertUsedCount, trace.ExpertsAt(layer, position).ToArray().Distinct().Count());
            }
        }
    }

    /// <summary>
    /// A long batch (experts get many tokens, so some split their rows and the rest run in per-thread groups) gives the
    /// same bits for 1, 2 and 3 threads, and a batch below ggml's 64-token tiled-attention threshold gives the same bits
    /// as feeding its tokens one at a time (above it llama.cpp itself switches attention kernels), in both arithmetics
    /// and with Q8_0 experts.
    /// </summary>
    [Theory]
    [InlineData("tiny-olmoe", FloatArithmetic.Reference)]
    [InlineData("tiny-olmoe", FloatArithmetic.Fused)]
    [InlineData("tiny-qwen3moe", FloatArithmetic.Fused)]
    [InlineData("tiny-deepseek2", FloatArithmetic.Reference)]
    public void LongBatch_IsIdenticalForAnyThreadCount_AndTokenByToken(string preset, FloatArithmetic arithmetic)
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get(preset) with { ExpertTensorType = ExpertScope.Core.GgmlType.Q8_0 };
        SyntheticModelWriter.Write(spec, temp.File("model.gguf"));
        using var model = MoeModel.Load(temp.File("model.gguf"), new ModelLoadOptions { FloatArithmetic = arithmetic });
        var tokens = Enumerable.Range(0, 96).Select(i => (i * 53 + 7) % model.Hyperparameters.VocabularySize).ToArray();
        var one = model.Run(tokens, new RunOptions { ThreadCount = 1 });
        foreach (int threads in new[] { 2, 3 })
        {
            Assert.True(one.Values.AsSpan().SequenceEqual(model.Run(tokens, new RunOptions { ThreadCount = threads }).Values), $"{threads} threads differ from one.");
        }

        var shortBatch = tokens[..48];
        var batch = model.Run(shortBatch, new RunOptions { ThreadCount = 2 });
        var session = model.CreateSession();
        for (int t = 0; t < shortBatch.Length; t++)
        {
            var row = session.Append(shortBatch.AsSpan(t, 1), new RunOptions { ThreadCount = 2 });
            Assert.True(batch.Row(t).SequenceEqual(row.Row(0)), $"position {t} differs between the batch and one token at a time.");
        }
    }

    /// <summary>
    /// Generation runs a token's experts as two parallel jobs: with interventions that zero slots or force experts, every
    /// expert site (unweighted and weighted expert outputs, the MoE output) still equals the batched path's.
    /// </summary>
    [Theory]
    [InlineData("keep-top")]
    [InlineData("force")]
    [InlineData("disable")]
    public void OneTokenExperts_EqualTheBatchedPath_UnderInterventions(string intervention)
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get("tiny-qwen2moe") with { ExpertTensorType = ExpertScope.Core.GgmlType.Q8_0 };
        SyntheticModelWriter.Write(spec, temp.File("model.gguf"));
        using var model = MoeModel.Load(temp.File("model.gguf"));
        RouterIntervention[] interventions = intervention switch
        {
            "keep-top" => [new KeepOnlyTopExpert(LayerSelector.All)],
            "force" => [new ForceExperts(LayerSelector.All, [new ExpertId(2), new ExpertId(5)])],
            _ => [new DisableExperts(LayerSelector.All, [new ExpertId(0), new ExpertId(1)])],
        };
        var tokens = Enumerable.Range(0, 20).Select(i => (i * 29 + 3) % model.Hyperparameters.VocabularySize).ToArray();
        bool Wanted(HookSite site) => site.Kind is HookKind.ExpertDownOutputs or HookKind.WeightedExpertOutputs or HookKind.ExpertOutput;
        var batch = new RecordingObserver(Wanted);
        model.Run(tokens, new RunOptions { Interventions = interventions, Observers = [batch], ThreadCount = 2 });
        var session = model.CreateSession();
        for (int t = 0; t < tokens.Length; t++)
        {
            var step = new RecordingObserver(Wanted);
            session.Append(tokens.AsSpan(t, 1), new RunOptions { Interventions = interventions, Observers = [step], ThreadCount = 2 });
            Assert.NotEmpty(step.Activations);
            foreach (var (site, values) in step.Activations)
            {
                var all = batch.Activations[site];
                int width = values.Length;
                Assert.True(all.AsSpan(t * width, width).SequenceEqual(values), $"{site} differs at position {t} ({intervention}).");
            }
        }
    }
}
