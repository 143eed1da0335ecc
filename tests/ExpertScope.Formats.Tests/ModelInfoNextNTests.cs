using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests;

/// <summary>GLM's NextN blocks (<c>nextn_predict_layers</c>) are in the file but never run: not MoE blocks, not active.</summary>
public class ModelInfoNextNTests
{
    [Fact]
    public void NextNBlock_IsNeitherARoutedBlockNorActive()
    {
        using var file = GgufFile.Open(GoldenData.RepositoryGoldenPath("glm4moe", "model.gguf"));
        var info = ModelInfo.FromGguf(file);

        // Blocks 1 and 2 are MoE; block 3 is the NextN block with its own router tensor.
        Assert.NotNull(file.FindTensor("blk.3.ffn_gate_inp.weight"));
        Assert.Equal(2, info.Moe!.MoeBlockCount);
        Assert.All(info.Tensors.Where(t => t.Info.Name.StartsWith("blk.3.", StringComparison.Ordinal)), t => Assert.Equal(0, t.ActiveElements));
        long nextN = info.Tensors.Where(t => t.Info.Name.StartsWith("blk.3.", StringComparison.Ordinal)).Sum(t => t.Info.ElementCount);
        long routedInactive = info.Tensors.Where(t => !t.Info.Name.StartsWith("blk.3.", StringComparison.Ordinal)).Sum(t => t.Info.ElementCount - t.ActiveElements);
        Assert.Equal(info.TotalParameters - nextN - routedInactive, info.ActiveParameters);
    }
}
