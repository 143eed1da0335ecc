using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Quantization;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <see cref="SyntheticMixWriter"/> (<c>make-model --type q4_K_M|q5_K_M|q6_K</c>): the model streamed tensor by tensor is,
/// byte for byte, what <c>quantize</c> makes of the same float32 model written first (the two-step path it replaced),
/// carries llama.cpp's mix, runs, never replaces a file it did not write, and leaves nothing behind when cancelled.
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

    [Theory]
    [InlineData("q4_K_M", "k-quant-rows")]
    [InlineData("q5_K_M", "k-quant-rows")]
    [InlineData("q6_K", "k-quant-rows")]
    [InlineData("q8_0", "k-quant-rows")]
    [InlineData("q4_K_M", "tiny-olmoe")]
    [InlineData("q6_K", "tiny-olmoe")]
    [InlineData("q8_0", "tiny-olmoe")]
    public void Streamed_IsByteIdenticalToFloat32ModelThenQuantize_ForAnyThreadCount(string targetName, string preset)
    {
        // tiny-olmoe has 8 experts (the attn_k/attn_v bumps) and rows of 64 (every K-quant falls back), the other spec
        // rows of 256 (real K-quant blocks); one thread and three give the same bytes.
        var spec = preset == "k-quant-rows" ? Spec : SyntheticPresets.Get(preset);
        var target = QuantizationTarget.Parse(targetName);
        using var temp = new TempDirectory();
        string floats = temp.File("f32.gguf"), twoStep = temp.File("two-step.gguf");
        SyntheticModelWriter.Write(spec, floats);
        ModelQuantizer.Write(floats, target, twoStep);
        byte[] expected = File.ReadAllBytes(twoStep);
        foreach (int threads in new[] { 1, 3 })
        {
            string streamed = temp.File($"streamed-{threads}.gguf");
            var summary = SyntheticMixWriter.Write(spec, target, streamed, new SyntheticMixOptions { ThreadCount = threads });
            Assert.Equal(expected, File.ReadAllBytes(streamed));
            Assert.Equal(expected.Length, summary.Bytes);
        }
    }

    [Fact]
    public void ExistingFile_IsReplacedOnlyWhenAWriterOfOursMadeIt_OrWithOverwrite()
    {
        using var temp = new TempDirectory();
        var target = QuantizationTarget.Parse("q8_0");
        string path = temp.File("model.gguf");
        File.WriteAllText(path, "a user's notes");
        var refused = Assert.Throws<ExpertScopeException>(() => SyntheticMixWriter.Write(Spec, target, path));
        Assert.Contains("model.gguf", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--overwrite", refused.Message, StringComparison.Ordinal);
        Assert.Equal("a user's notes", File.ReadAllText(path));

        SyntheticMixWriter.Write(Spec, target, path, new SyntheticMixOptions { Overwrite = true });
        byte[] first = File.ReadAllBytes(path);

        // Its own output carries the quantize writer key, so a second run replaces it without --overwrite.
        SyntheticMixWriter.Write(Spec with { Seed = Spec.Seed + 1 }, target, path);
        Assert.NotEqual(first, File.ReadAllBytes(path));
        Assert.Equal(new[] { "model.gguf" }, Directory.GetFiles(temp.Path).Select(p => Path.GetFileName(p)));
    }

    [Fact]
    public void Cancelled_LeavesNeitherTargetNorTemporary_AndKeepsAnOlderTarget()
    {
        using var temp = new TempDirectory();
        var target = QuantizationTarget.Parse("q4_K_M");
        string path = temp.File("model.gguf");
        SyntheticMixWriter.Write(Spec, target, path);
        byte[] before = File.ReadAllBytes(path);

        // Cancelled after the first batch of rows, as Ctrl+C does through make-model's stop signal.
        using var stop = new CancellationTokenSource();
        long reported = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => SyntheticMixWriter.Write(Spec with { Seed = 7 }, target, path,
            new SyntheticMixOptions { Cancellation = stop.Token }, (done, _) => { reported = done; stop.Cancel(); }));
        Assert.True(reported > 0);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { "model.gguf" }, Directory.GetFiles(temp.Path).Select(p => Path.GetFileName(p)));

        File.Delete(path);
        using var again = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => SyntheticMixWriter.Write(Spec, target, path,
            new SyntheticMixOptions { Cancellation = again.Token }, (_, _) => again.Cancel()));
        Assert.Empty(Directory.GetFiles(temp.Path));
    }
}
