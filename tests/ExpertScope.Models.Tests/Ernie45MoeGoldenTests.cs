using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <c>ernie4_5-moe</c> against llama.cpp: the repository golden case <c>ernie4_5-moe</c> (leading dense block, softmax
/// with an <c>exp_probs_b</c> selection bias, top-3 renormalised, ungated shared expert).
/// </summary>
public sealed class Ernie45MoeGoldenTests(ITestOutputHelper output)
{
    [Fact]
    public void Float32Case_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository("ernie4_5-moe");
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"ernie4_5-moe: largest logit difference {largest:E3}");
    }

    [Fact]
    public void Results_AreBitIdentical_ForOneAndTwoThreads() =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.LoadRepository("ernie4_5-moe"));

    [Fact]
    public void CommittedModel_IsWhatMakeModelWrites() =>
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get("tiny-ernie4_5-moe"), "ernie4_5-moe");

    [Fact]
    public void Layout_LeadingDenseBlock_BiasedSoftmax_Renormalised_SharedExpert()
    {
        var golden = GoldenCase.LoadRepository("ernie4_5-moe");
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        Assert.Null(model.Blocks[0].Moe);
        foreach (var block in model.Blocks.Skip(1))
        {
            var moe = block.Moe!;
            Assert.Equal(new RouterConfig(8, 3, GatingFunction.Softmax, NormalizeWeights: true), moe.Router.Config);
            Assert.True(moe.Router.HasSelectionBias);
            Assert.Equal(64, moe.Shared!.Ffn.Up.Outputs);
            Assert.Null(moe.Shared.Gate);
        }
    }

    [Fact]
    public void AttentionOutputBias_IsLoadedButNotAdded_AsLlamaCppDoes()
    {
        // llama.cpp's ernie4_5-moe graph passes no bias to build_attn although its loader reads attn_output.bias; the
        // same file with a large bias in every block must give the same logits (llama.cpp's own logits for it were
        // checked once to be bit-identical to the golden case's).
        var golden = GoldenCase.LoadRepository("ernie4_5-moe");
        using var temp = new TempDirectory();
        string biased = temp.File("biased.gguf");
        CopyWithOutputBias(golden.ModelPath, biased, 0.5f);
        using (var file = GgufFile.Open(biased))
        {
            Assert.NotNull(file.FindTensor("blk.2.attn_output.bias"));
        }

        var tokens = golden.Prompts[0].Tokens;
        using var original = MoeModel.Load(golden.ModelPath);
        using var withBias = MoeModel.Load(biased);
        Assert.Equal(original.Run(tokens).Values, withBias.Run(tokens).Values);
    }

    [Fact]
    public void InterleavedDenseBlocksPastTheLeadingOnes_AreRefusedWithOneLine()
    {
        // llama.cpp loads MoE tensors for every block after the leading dense ones, so a step of 2 leaves block 2
        // ((2 + 1) % 2 != 0) without the dense FFN its graph asks for; such a file cannot run there and is refused here.
        var golden = GoldenCase.LoadRepository("ernie4_5-moe");
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["ernie4_5-moe.interleave_moe_layer_step"] = 2L } };
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(golden.ModelPath, options));
        Assert.Contains(golden.ModelPath, error.Message, StringComparison.Ordinal);
        Assert.Contains("block 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("interleave_moe_layer_step = 2", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    /// <summary>Copies a GGUF and adds <c>blk.{i}.attn_output.bias</c> filled with <paramref name="value"/> to every block.</summary>
    private static void CopyWithOutputBias(string source, string destination, float value)
    {
        using var input = GgufFile.Open(source);
        int width = (int)input.GetInteger(input.Architecture + ".embedding_length");
        int blocks = (int)input.GetInteger(input.Architecture + ".block_count");
        using var writer = GgufWriter.Create(destination);
        foreach (var (key, metadata) in input.Metadata)
        {
            writer.SetMetadata(key, metadata);
        }

        foreach (var tensor in input.Tensors)
        {
            writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
        }

        for (int block = 0; block < blocks; block++)
        {
            writer.AddTensor($"blk.{block}.attn_output.bias", GgmlType.F32, [width]);
        }

        foreach (var tensor in input.Tensors)
        {
            writer.WriteTensorData(input.GetTensorData(tensor));
        }

        var bias = Enumerable.Repeat(value, width).ToArray();
        for (int block = 0; block < blocks; block++)
        {
            writer.WriteTensorData(MemoryMarshal.AsBytes(bias.AsSpan()));
        }

        writer.Finish();
    }
}
