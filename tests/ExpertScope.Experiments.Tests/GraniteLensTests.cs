using ExpertScope.Experiments.Lens;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>The logit lens on Granite, whose logits are divided by <c>logit_scale</c>: the lens must divide too.</summary>
public class GraniteLensTests
{
    [Fact]
    public void TheLastBlockReadThroughTheLens_IsTheModelsScaledLogits()
    {
        using var model = MoeModel.Load(GoldenData.RepositoryGoldenPath("granitemoe", "model.gguf"));
        Assert.Equal(6f, model.Definition.LogitScale);
        var tokens = model.Tokenizer.Encode("The bank by the river bank was closed.").ToArray();
        var recorder = new ActivationRecorder([HookKind.LayerOutput]);
        var logits = model.Run(tokens, new RunOptions { Observers = [recorder] });
        int last = model.Blocks.Max(b => b.Layer);

        var lens = new LensProjection(model, threadCount: 1).Project(recorder.Get(new HookSite(HookKind.LayerOutput, last)).Values, tokens.Length);

        Assert.Equal(logits.Values, lens);
    }
}
