using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// Files quantized by ggml's own IQ2_XXS / IQ1_S quantizers, typed as llama.cpp's quantize types those file types
/// (tests/golden/olmoe-iq2_xxs, olmoe-iq1_s; written by bench/llamacpp-harness/iq-quantize.cpp), against llama.cpp's
/// outputs on the same files: the i-quant dots, and the Q2_K embedding, Q4_K, Q5_K tensors of the mix, read as llama.cpp reads them.
/// </summary>
public sealed class IQuantGoldenTests(ITestOutputHelper output)
{
    /// <summary>The float32 model both files were quantized from (the cases' READMEs give the commands).</summary>
    internal static SyntheticModelSpec SourceSpec { get; } = SyntheticPresets.Get("tiny-olmoe") with
    {
        EmbeddingLength = 256, HeadDimension = 64, ExpertFeedForwardLength = 256, FeedForwardLength = 256, BlockCount = 2,
    };

    [Theory]
    [InlineData("olmoe-iq2_xxs")]
    [InlineData("olmoe-iq1_s")]
    public void EveryDumpedSite_MatchesLlamaCpp(string name)
    {
        float largest = GoldenParity.Check(GoldenCase.LoadRepository(name), Tolerances.Quantized);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }

    [Theory]
    [InlineData("olmoe-iq2_xxs")]
    [InlineData("olmoe-iq1_s")]
    public void TwoThreads_AreBitIdenticalToOne(string name) =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.LoadRepository(name));

    [Theory]
    [InlineData("olmoe-iq2_xxs", GgmlType.IQ2_XXS)]
    [InlineData("olmoe-iq1_s", GgmlType.IQ1_S)]
    public void CommittedModel_HoldsLlamaCppsMixForItsFileType(string name, GgmlType fileType)
    {
        // llama.cpp's types for these file types with 8 experts: experts and attn_q the file type, attn_k / attn_v
        // Q4_K, attn_output Q5_K, output Q5_K, token embedding Q2_K; norms and routers stay F32.
        using var file = GgufFile.Open(GoldenCase.LoadRepository(name).ModelPath);
        GgmlType TypeOf(string tensor) => file.FindTensor(tensor)!.Type;
        Assert.Equal(GgmlType.Q2_K, TypeOf("token_embd.weight"));
        Assert.Equal(GgmlType.Q5_K, TypeOf("output.weight"));
        foreach (int block in new[] { 0, 1 })
        {
            Assert.Equal(fileType, TypeOf($"blk.{block}.attn_q.weight"));
            Assert.Equal(GgmlType.Q4_K, TypeOf($"blk.{block}.attn_k.weight"));
            Assert.Equal(GgmlType.Q4_K, TypeOf($"blk.{block}.attn_v.weight"));
            Assert.Equal(GgmlType.Q5_K, TypeOf($"blk.{block}.attn_output.weight"));
            Assert.Equal(GgmlType.F32, TypeOf($"blk.{block}.ffn_gate_inp.weight"));
            foreach (var expert in new[] { "gate", "up", "down" })
            {
                Assert.Equal(fileType, TypeOf($"blk.{block}.ffn_{expert}_exps.weight"));
            }
        }
    }

    [Theory]
    [InlineData("olmoe-iq2_xxs")]
    [InlineData("olmoe-iq1_s")]
    public void CommittedModel_WasQuantizedFromTheSourceSpec(string name)
    {
        // The tensors the quantizer copies (norms, routers) are the source's bytes, the tensor list and shapes are the
        // source's, and every metadata key but the two the quantizer sets is unchanged.
        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(SourceSpec, temp.File("f32.gguf"));
        using var source = GgufFile.Open(temp.File("f32.gguf"));
        using var quantized = GgufFile.Open(GoldenCase.LoadRepository(name).ModelPath);
        Assert.Equal(source.Tensors.Select(t => t.Name), quantized.Tensors.Select(t => t.Name));
        foreach (var tensor in source.Tensors)
        {
            var copy = quantized.FindTensor(tensor.Name)!;
            Assert.Equal(tensor.Dimensions, copy.Dimensions);
            if (copy.Type == GgmlType.F32)
            {
                Assert.True(source.GetTensorData(tensor).SequenceEqual(quantized.GetTensorData(copy)), $"{tensor.Name} differs from the source");
            }
        }

        string[] setByQuantizer = ["general.file_type", "general.quantization_version"];
        Assert.Equal(source.Metadata.Keys.Except(setByQuantizer).Order(StringComparer.Ordinal), quantized.Metadata.Keys.Except(setByQuantizer).Order(StringComparer.Ordinal));
    }
}
