using ExpertScope.Core;
using ExpertScope.Models.Quantization;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>
/// The <c>qwen3-30b-a3b</c> preset (the 30B-class workflow of docs/performance.md): its shapes against the published
/// parameter counts, and the size of its Q4_K_M mix, computed from the tensor plan only (the ~18 GB file is never
/// written in tests).
/// </summary>
public sealed class Qwen3FullPresetTests
{
    private static readonly SyntheticModelSpec Spec = SyntheticPresets.Get("qwen3-30b-a3b");

    private static long Elements(TensorTypeRules.TensorShape tensor) => tensor.Dimensions.Aggregate(1L, (a, b) => a * b);

    [Fact]
    public void Shapes_GiveThePublishedParameterCounts()
    {
        // Qwen3-30B-A3B model card (huggingface.co/Qwen/Qwen3-30B-A3B): 30.5B parameters in total, 29.9B without the
        // embeddings, 3.3B activated (8 of 128 experts per token), to one decimal place, cut off rather than rounded.
        var shapes = SyntheticModelWriter.TensorShapes(Spec);
        long total = shapes.Sum(Elements);
        long embeddings = shapes.Where(t => t.Name is "token_embd.weight" or "output.weight").Sum(Elements);
        long experts = shapes.Where(t => t.Name.EndsWith("_exps.weight", StringComparison.Ordinal)).Sum(Elements);
        long activated = total - experts + experts * Spec.ExpertUsedCount / Spec.ExpertCount;

        static double Billions(long count) => Math.Floor(count / 1e8) / 10;
        Assert.Equal(30.5, Billions(total));
        Assert.Equal(29.9, Billions(total - embeddings));
        Assert.Equal(3.3, Billions(activated));
        Assert.Equal(48 * 3, shapes.Count(t => t.Name.EndsWith("_exps.weight", StringComparison.Ordinal)));
        Assert.Equal([2048L, 768, 128], shapes.Single(t => t.Name == "blk.47.ffn_up_exps.weight").Dimensions);
        Assert.Equal([2048L, 512], shapes.Single(t => t.Name == "blk.0.attn_k.weight").Dimensions);
        Assert.Equal([2048L, 151936], shapes.Single(t => t.Name == "token_embd.weight").Dimensions);
    }

    [Fact]
    public void Q4KMix_IsAbout18GB_WithQ6KDownProjectionsInTheMoreBitsBlocks()
    {
        var target = QuantizationTarget.Parse("q4_K_M");
        var shapes = SyntheticModelWriter.TensorShapes(Spec with { ExpertTensorType = GgmlType.F32, DenseTensorType = GgmlType.F32 });
        var plan = TensorTypeRules.Plan(shapes, target, Spec.ExpertCount, Spec.BlockCount);
        var (floatBytes, mixBytes) = SyntheticMixWriter.TensorBytes(Spec, target);

        Assert.Equal(4 * shapes.Sum(Elements), floatBytes);
        // Q4_K is 4.5 bits a weight and Q6_K 6.5625: the mix must land between the two (published Q4_K_M files of this
        // model are 18.6 GB with their tokenizer; the routers and norms stay F32 and are ~0.1% of it).
        long weights = shapes.Sum(Elements);
        Assert.InRange(mixBytes, weights * 4.5 / 8, weights * 6.5625 / 8);
        Assert.InRange(mixBytes / 1e9, 17.0, 19.0);
        for (int block = 0; block < Spec.BlockCount; block++)
        {
            var expected = TensorTypeRules.UseMoreBits(block, Spec.BlockCount) ? GgmlType.Q6_K : GgmlType.Q4_K;
            Assert.Equal(expected, plan[$"blk.{block}.ffn_down_exps.weight"].Type);
            Assert.Equal(GgmlType.Q4_K, plan[$"blk.{block}.ffn_gate_exps.weight"].Type);
        }

        Assert.Equal(GgmlType.Q6_K, plan["output.weight"].Type);
    }

    [Fact]
    public void MixTooLargeForTheDisk_IsRefusedBeforeWriting()
    {
        // Ten thousand blocks are ~3.8 TB even as q4_K_M: no test machine has that free. Only the result counts (the
        // mix is streamed without a float32 intermediate).
        using var temp = new TempDirectory();
        string path = temp.File("huge.gguf");
        var spec = Spec with { BlockCount = 10_000 };
        var refused = Assert.Throws<ExpertScopeException>(() => SyntheticMixWriter.Write(spec, QuantizationTarget.Parse("q4_K_M"), path));
        var (_, mixBytes) = SyntheticMixWriter.TensorBytes(spec, QuantizationTarget.Parse("q4_K_M"));
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"needs {mixBytes / 1e9:F1} GB,"), refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("float32", refused.Message, StringComparison.Ordinal);
        Assert.Contains("huge.gguf", refused.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }
}
