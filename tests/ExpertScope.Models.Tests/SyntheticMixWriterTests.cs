using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Quantization;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <see cref="SyntheticMixWriter"/> (<c>make-model --type q4_K_M|q5_K_M|q6_K</c>): the made model is, tensor for tensor
/// and byte for byte, what <c>quantize</c> makes of the same float32 model, carries llama.cpp's mix, and runs.
/// </summary>
public sealed class SyntheticMixWriterTests
{
    // Rows of 256 so K-quant blocks fit (no fallback hides the mix), 8 blocks so use_more_bits picks some, 4 experts so
    // the 8-expert bumps do not apply.
    private static readonly SyntheticModelSpec Spec = SyntheticPresets.Get("tiny-qwen3moe") with
    {
        EmbeddingLength = 256, BlockCount = 8, HeadDimension = 64, ExpertCount = 4, ExpertUsedCount = 2, ExpertFeedForwardLength = 256,
    };

    [Theory]
    [InlineData("q4_K_M", GgmlType.Q4_K)]
    [InlineData("q5_K_M", GgmlType.Q5_K)]
    [InlineData("q6_K", GgmlType.Q6_K)]
    public void MadeMix_EqualsQuantizeOfTheFloat32Model_AndRuns(string mix, GgmlType baseType)
    {
        using var temp = new TempDirectory();
        var target = QuantizationTarget.Parse(mix);
        string made = temp.File("made.gguf");
        SyntheticMixWriter.Write(Spec, target, made);
        Assert.Equal(new[] { "made.gguf" }, Directory.GetFiles(temp.Path).Select(p => Path.GetFileName(p)));

        string floats = temp.File("f32.gguf");
        string quantized = temp.File("quantized.gguf");
        SyntheticModelWriter.Write(Spec, floats);
        ModelQuantizer.Write(floats, target, quantized);
        using (var madeFile = GgufFile.Open(made))
        using (var quantizedFile = GgufFile.Open(quantized))
        {
            Assert.Equal(quantizedFile.Tensors.Select(t => (t.Name, t.Type)), madeFile.Tensors.Select(t => (t.Name, t.Type)));
            Assert.Equal((long)target.FileType, madeFile.GetInteger("general.file_type"));
            var types = madeFile.Tensors.ToDictionary(t => t.Name, t => t.Type);

            // llama_tensor_get_type: output Q6_K; *_K_M gives ffn_down Q6_K where use_more_bits(layer, 8): 0, 3, 6, 7.
            Assert.Equal(GgmlType.Q6_K, types["output.weight"]);
            Assert.Equal(GgmlType.F32, types["blk.0.ffn_gate_inp.weight"]);
            Assert.Equal(baseType, types["blk.0.ffn_up_exps.weight"]);
            Assert.Equal(baseType, types["blk.0.attn_q.weight"]);
            for (int layer = 0; layer < Spec.BlockCount; layer++)
            {
                bool moreBits = layer is 0 or 3 or 6 or 7;
                Assert.Equal(moreBits || baseType == GgmlType.Q6_K ? GgmlType.Q6_K : baseType, types[$"blk.{layer}.ffn_down_exps.weight"]);
            }
        }

        Assert.Equal(File.ReadAllBytes(quantized), File.ReadAllBytes(made));
        using var model = MoeModel.Load(made);
        var logits = model.Run([1, 5, 9, 200, 17, 3], new RunOptions());
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(64)]
    public void Q6K_IsQ6KEverywhere_ButAttentionKeysAndValuesOfEightExpertModels(int experts)
    {
        // llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q6_K: default Q6_K, output Q6_K (rows are whole blocks), and only
        // the n_expert == 8 bump of attn_k and attn_v to Q8_0.
        string[] names = ["output.weight", "token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_down_exps.weight"];
        var plan = TensorTypeRules.Plan(names.Select(n => new TensorTypeRules.TensorShape(n, [256, 256], GgmlType.F32)), QuantizationTarget.Parse("q6_K"), experts, blockCount: 1);
        foreach (string name in names)
        {
            bool bumped = experts == 8 && (name.Contains("attn_k", StringComparison.Ordinal) || name.Contains("attn_v", StringComparison.Ordinal));
            Assert.Equal(bumped ? GgmlType.Q8_0 : GgmlType.Q6_K, plan[name].Type);
        }

        Assert.Equal(18u, QuantizationTarget.Parse("q6_K").FileType);
        Assert.Single(QuantizationTarget.Names, n => n == "q6_K");
    }

    [Fact]
    public void SingleType_IsRefused()
    {
        using var temp = new TempDirectory();
        var refused = Assert.Throws<ExpertScopeException>(() => SyntheticMixWriter.Write(Spec, QuantizationTarget.Parse("q4_K"), temp.File("m.gguf")));
        Assert.Contains("q4_K", refused.Message, StringComparison.Ordinal);
    }
}
