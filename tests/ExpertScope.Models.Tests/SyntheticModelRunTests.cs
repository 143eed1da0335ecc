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
        Assert.Equal(Enumerable.Range(spec.LeadingDenseBlockCount, spec.BlockCount - spec.LeadingDenseBlockCount), trace.Layers);
        foreach (int layer in trace.Layers)
        {
            Assert.Equal(spec.ExpertUsedCount, trace.TopK(layer));
            for (int position = 0; position < tokens.Length; position++)
            {
                Assert.Equal(spec.ExpertUsedCount, trace.ExpertsAt(layer, position).ToArray().Distinct().Count());
            }
        }
    }
}
