using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Quantization;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <see cref="ModelQuantizer"/>: llama.cpp's per-tensor type rules, metadata kept, overwrite protection, and the trained
/// model quantized by this engine still routing and predicting like llama.cpp's float32 run.
/// </summary>
public sealed class QuantizeTests(ITestOutputHelper output)
{
    private static string TrainedModel => GoldenCase.Load("olmoe-trained").ModelPath;

    [Fact]
    public void Q4KM_OnTheTrainedModel_ChoosesLlamaCppsTypes()
    {
        using var file = GgufFile.Open(TrainedModel);
        var plan = TensorTypeRules.Plan(file.Tensors.Select(t => new TensorTypeRules.TensorShape(t.Name, t.Dimensions, t.Type)), QuantizationTarget.Parse("q4_K_M"), expertCount: 8, blockCount: 4);

        // Hand-derived from llama_tensor_get_type for 8 experts, 4 blocks, n_embd 128 (not a whole Q4_K block of 256):
        // output: 128 % 256 != 0 -> Q8_0; attn_k/attn_v: the 8-expert bump to Q8_0; attn_output: Q5_K (8 experts) ->
        // fallback Q5_1; ffn_down (rows of 256): use_more_bits(2, 4) and (3, 4) -> Q6_K, else Q4_K; other matrices Q4_K ->
        // fallback Q5_0; norms and the router stay F32.
        Assert.Equal(GgmlType.Q8_0, plan["output.weight"].Type);
        Assert.Equal(GgmlType.Q5_0, plan["token_embd.weight"].Type);
        Assert.Equal(GgmlType.Q4_K, plan["token_embd.weight"].FallbackFrom);
        for (int layer = 0; layer < 4; layer++)
        {
            string block = "blk." + layer.ToString(CultureInfo.InvariantCulture) + ".";
            Assert.Equal(GgmlType.Q8_0, plan[block + "attn_k.weight"].Type);
            Assert.Equal(GgmlType.Q8_0, plan[block + "attn_v.weight"].Type);
            Assert.Equal(GgmlType.Q5_0, plan[block + "attn_q.weight"].Type);
            Assert.Equal(GgmlType.Q5_1, plan[block + "attn_output.weight"].Type);
            Assert.Equal(GgmlType.Q5_0, plan[block + "ffn_up_exps.weight"].Type);
            Assert.Equal(layer >= 2 ? GgmlType.Q6_K : GgmlType.Q4_K, plan[block + "ffn_down_exps.weight"].Type);
            Assert.Equal(GgmlType.F32, plan[block + "ffn_gate_inp.weight"].Type);
            Assert.Equal(GgmlType.F32, plan[block + "attn_norm.weight"].Type);
        }
    }

    [Fact]
    public void Q4KM_CountsAttentionValueTensorsInNameOrder_AsLlamaCppsSortedMapDoes()
    {
        // 12 blocks, 64 experts (no 8-expert bump), rows of 256. llama.cpp walks tensors in std::map (ordinal) order,
        // so i_attention_wv is 0..11 over blk.0, blk.1, blk.10, blk.11, blk.2, …, blk.9, and use_more_bits(i, 12) is
        // true for i = 0, 3, 6, 9, 10, 11: blocks 0, 11, 4, 7, 8, 9.
        var tensors = Enumerable.Range(0, 12).Select(l => new TensorTypeRules.TensorShape($"blk.{l}.attn_v.weight", [256, 256], GgmlType.F32));
        var plan = TensorTypeRules.Plan(tensors, QuantizationTarget.Parse("q4_K_M"), expertCount: 64, blockCount: 12);
        int[] moreBits = [0, 4, 7, 8, 9, 11];
        for (int layer = 0; layer < 12; layer++)
        {
            Assert.Equal(moreBits.Contains(layer) ? GgmlType.Q6_K : GgmlType.Q4_K, plan[$"blk.{layer}.attn_v.weight"].Type);
        }
    }

    [Theory]
    [InlineData(32, new[] { 0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31 })]
    [InlineData(4, new[] { 2, 3 })]
    public void UseMoreBits_MatchesLlamaCpp(int layers, int[] expected) =>
        Assert.Equal(expected, Enumerable.Range(0, layers).Where(l => TensorTypeRules.UseMoreBits(l, layers)));

    [Fact]
    public void ShippedModel_IsThisQuantizersQ8_0OfTheTrainedModel_ByteForByte()
    {
        var repository = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(repository.FullName, "ExpertScope.slnx")))
        {
            repository = repository.Parent!;
        }

        string shipped = Path.Combine(repository.FullName, "models", "olmoe-tiny-trained-q8_0.gguf");
        using var temp = new TempDirectory();
        ModelQuantizer.Write(TrainedModel, QuantizationTarget.Parse("q8_0"), temp.File("q8_0.gguf"));

        Assert.True(new FileInfo(shipped).Length < 5_000_000, "the shipped model must stay under 5 MB");
        Assert.True(File.ReadAllBytes(shipped).AsSpan().SequenceEqual(File.ReadAllBytes(temp.File("q8_0.gguf"))), "models/olmoe-tiny-trained-q8_0.gguf is not what 'quantize --type q8_0' makes of the trained model");
    }

    [Fact]
    public void Write_KeepsMetadata_MarksTheFile_AndRefusesForeignOutputs()
    {
        using var temp = new TempDirectory();
        string quantized = temp.File("q8.gguf");
        var summary = ModelQuantizer.Write(TrainedModel, QuantizationTarget.Parse("q8_0"), quantized);
        using (var source = GgufFile.Open(TrainedModel))
        using (var written = GgufFile.Open(quantized))
        {
            foreach (var (key, value) in source.Metadata.Where(p => p.Key != "general.file_type"))
            {
                Assert.Equal(value.Type, written.Metadata[key].Type);
                Assert.Equal(Items(value), Items(written.Metadata[key]));
            }

            Assert.Equal(7L, written.GetInteger("general.file_type"));
            Assert.Equal("q8_0", written.GetString(ModelQuantizer.WriterKey));
            Assert.Equal(source.Tensors.Select(t => t.Name), written.Tensors.Select(t => t.Name));
            Assert.All(written.Tensors, t => Assert.Equal(t.Dimensions.Length >= 2 && !t.Name.Contains("ffn_gate_inp", StringComparison.Ordinal) ? GgmlType.Q8_0 : GgmlType.F32, t.Type));
        }

        Assert.Empty(summary.Fallbacks);

        // Its own output may be replaced; a file it did not write may not, unless asked.
        ModelQuantizer.Write(TrainedModel, QuantizationTarget.Parse("q8_0"), quantized);
        string foreign = temp.File("notes.gguf");
        File.WriteAllText(foreign, "not a model");
        var refused = Assert.Throws<ExpertScopeException>(() => ModelQuantizer.Write(TrainedModel, QuantizationTarget.Parse("q8_0"), foreign));
        Assert.Contains("--overwrite", refused.Message, StringComparison.Ordinal);
        Assert.Equal("not a model", File.ReadAllText(foreign));
        ModelQuantizer.Write(TrainedModel, QuantizationTarget.Parse("q8_0"), foreign, new QuantizeOptions { Overwrite = true });
        Assert.True(ModelQuantizer.WrittenByQuantize(foreign));

        Assert.Throws<ExpertScopeException>(() => ModelQuantizer.Write(quantized, QuantizationTarget.Parse("q4_0"), temp.File("twice.gguf")));
        Assert.Throws<ExpertScopeException>(() => QuantizationTarget.Parse("q9_9"));
    }

    /// <summary>
    /// Measured once (5 golden prompts, 313 tokens, 1,252 (token, layer) rows): Q8_0 top-k sets 99.4 %, argmax 97.8 %,
    /// logit RMS difference 0.033, largest 0.97; Q4_K (Q4_K down experts, Q5_0 elsewhere by the fallback) 95.5 %,
    /// 93.6 %, 0.134, 2.27. Asserted with margins; a broken quantizer or loader lands far outside them.
    /// </summary>
    [Theory]
    [InlineData("q8_0", 0.97, 0.94, 0.1, 2.0)]
    [InlineData("q4_K", 0.90, 0.85, 0.4, 4.5)]
    public void TrainedModel_QuantizedHere_RoutesAndPredictsLikeLlamaCppsFloat32Run(string type, double minimumRoutingAgreement, double minimumArgmaxAgreement, double maximumRmsDifference, double maximumLogitDifference)
    {
        var golden = GoldenCase.Load("olmoe-trained");
        using var temp = new TempDirectory();
        string path = temp.File(type + ".gguf");
        ModelQuantizer.Write(golden.ModelPath, QuantizationTarget.Parse(type), path);
        using var model = MoeModel.Load(path);
        int rows = 0, agreeing = 0, tokens = 0, sameArgmax = 0;
        float largest = 0;
        double squares = 0;
        long values = 0;
        foreach (var prompt in golden.Prompts)
        {
            var recorder = new RecordingObserver();
            var logits = model.Run(prompt.Tokens, new RunOptions { Observers = [recorder] });
            foreach (var tensor in prompt.Tensors.Where(t => t.Site == "ffn_moe_topk"))
            {
                var expected = tensor.ReadInts();
                var actual = recorder.Routing[tensor.Layer].Experts;
                int k = tensor.Columns;
                for (int t = 0; t < expected.Length / k; t++)
                {
                    rows++;
                    agreeing += expected.AsSpan(t * k, k).ToArray().Order().SequenceEqual(actual.AsSpan(t * k, k).ToArray().Order()) ? 1 : 0;
                }
            }

            var want = prompt.Logits.ReadFloats();
            int vocabulary = logits.Columns;
            for (int t = 0; t < want.Length / vocabulary; t++)
            {
                var expectedRow = want.AsSpan(t * vocabulary, vocabulary);
                var actualRow = logits.Values.AsSpan(t * vocabulary, vocabulary);
                tokens++;
                sameArgmax += System.Numerics.Tensors.TensorPrimitives.IndexOfMax(expectedRow) == System.Numerics.Tensors.TensorPrimitives.IndexOfMax(actualRow) ? 1 : 0;
                for (int v = 0; v < vocabulary; v++)
                {
                    float difference = expectedRow[v] - actualRow[v];
                    largest = MathF.Max(largest, MathF.Abs(difference));
                    squares += difference * (double)difference;
                    values++;
                }
            }
        }

        double agreement = (double)agreeing / rows;
        double argmax = (double)sameArgmax / tokens;
        double rms = Math.Sqrt(squares / values);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{type}: top-k sets {agreeing}/{rows} ({agreement:P2}), argmax {sameArgmax}/{tokens}, logit RMS difference {rms:F4}, largest {largest:F4}"));
        Assert.True(agreement >= minimumRoutingAgreement, $"{type}: top-k agreement {agreement:P2} < {minimumRoutingAgreement:P0}.");
        Assert.True(argmax >= minimumArgmaxAgreement, $"{type}: argmax agreement {argmax:P2} < {minimumArgmaxAgreement:P0}.");
        Assert.True(rms <= maximumRmsDifference, $"{type}: logit RMS difference {rms} > {maximumRmsDifference}.");
        Assert.True(largest <= maximumLogitDifference, $"{type}: largest logit difference {largest} > {maximumLogitDifference}.");
    }

    private static object[] Items(GgufValue value) => value.Value is GgufArray array ? [.. array.Items.Cast<object>()] : [value.Value];
}
