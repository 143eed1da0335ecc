using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary><see cref="RandomTwinWriter"/>: same file layout and tokenizer, weights as initialised before training.</summary>
public sealed class RandomTwinWriterTests
{
    [Fact]
    public void Twin_KeepsMetadataShapesAndTypes_AndDrawsTheInitialisation()
    {
        var source = GoldenCase.Load("olmoe-trained").ModelPath;
        using var temp = new TempDirectory();
        RandomTwinWriter.Write(source, temp.File("a.gguf"), seed: 1);
        RandomTwinWriter.Write(source, temp.File("b.gguf"), seed: 1);
        RandomTwinWriter.Write(source, temp.File("c.gguf"), seed: 2);

        using var original = GgufFile.Open(source);
        using var twin = GgufFile.Open(temp.File("a.gguf"));
        Assert.Equal(original.Metadata.Keys, twin.Metadata.Keys);
        // Named as random weights, so every report on the twin carries the random-weights banner.
        Assert.Contains("random", twin.TryGetString("general.name"), StringComparison.Ordinal);
        Assert.Equal(original.Tensors.Select(t => (t.Name, t.Type, string.Join(',', t.Dimensions))), twin.Tensors.Select(t => (t.Name, t.Type, string.Join(',', t.Dimensions))));
        Assert.True(File.ReadAllBytes(temp.File("a.gguf")).AsSpan().SequenceEqual(File.ReadAllBytes(temp.File("b.gguf"))));
        Assert.False(File.ReadAllBytes(temp.File("a.gguf")).AsSpan().SequenceEqual(File.ReadAllBytes(temp.File("c.gguf"))));

        Assert.All(twin.GetFloat32(twin.GetTensor("blk.0.attn_norm.weight")).ToArray(), v => Assert.Equal(1f, v));
        // 4 blocks: residual-writing projections get 0.02/√8. 262,144 values pin a standard deviation to about ±0.3 %.
        Assert.InRange(StandardDeviation(twin.GetFloat32(twin.GetTensor("blk.0.ffn_up_exps.weight"))), 0.02 * 0.99, 0.02 * 1.01);
        Assert.InRange(StandardDeviation(twin.GetFloat32(twin.GetTensor("blk.1.ffn_down_exps.weight"))), 0.02 / Math.Sqrt(8) * 0.99, 0.02 / Math.Sqrt(8) * 1.01);
        Assert.InRange(twin.GetFloat32(twin.GetTensor("blk.0.attn_q.weight")).ToArray().Average(), -0.001, 0.001);
        using var twinModel = MoeModel.Load(temp.File("a.gguf"));
        using var trainedModel = MoeModel.Load(source);
        Assert.Equal(trainedModel.Tokenizer.Encode("The bank by the river.").ToArray(), twinModel.Tokenizer.Encode("The bank by the river.").ToArray());
    }

    [Fact]
    public void Twin_RefusesToOverwriteItsSource()
    {
        var source = GoldenCase.Load("olmoe-trained").ModelPath;
        Assert.Throws<ExpertScopeException>(() => RandomTwinWriter.Write(source, source, seed: 1));
    }

    private static double StandardDeviation(ReadOnlySpan<float> values)
    {
        double mean = 0;
        foreach (float v in values)
        {
            mean += v;
        }

        mean /= values.Length;
        double squares = 0;
        foreach (float v in values)
        {
            squares += (v - mean) * (v - mean);
        }

        return Math.Sqrt(squares / values.Length);
    }
}
