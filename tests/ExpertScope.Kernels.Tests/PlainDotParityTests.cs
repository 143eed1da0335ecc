using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Testing;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// llama.cpp's float matrix products: the router logits (F32 weights) of every golden case and the F16 experts of
/// qwen2moe-f16, recomputed from saved inputs with <see cref="VecDot.Quantized"/>, equal llama.cpp's bit for bit.
/// </summary>
public class PlainDotParityTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var folder in Directory.EnumerateDirectories(GoldenData.GoldenPath("models")).Order(StringComparer.Ordinal))
        {
            // olmoe-trained has no model.gguf of its own and comes from llama.cpp's SIMD build (other float sums).
            if (File.Exists(Path.Combine(folder, "model.gguf")))
            {
                data.Add(Path.GetFileName(folder));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RouterLogitsEqualLlamaCpps(string caseName)
    {
        using var model = GgufFile.Open(GoldenData.GoldenPath("models", caseName, "model.gguf"));
        int checkedLayers = 0;
        for (int layer = 0; File.Exists(FilePath(caseName, $"p0.ffn_norm-{layer}.bin")); layer++)
        {
            if (!File.Exists(FilePath(caseName, $"p0.ffn_moe_logits-{layer}.bin")))
            {
                continue; // a dense leading block
            }

            var router = model.GetTensor($"blk.{layer}.ffn_gate_inp.weight");
            var input = ReadFloats(caseName, $"p0.ffn_norm-{layer}.bin");
            var expected = ReadFloats(caseName, $"p0.ffn_moe_logits-{layer}.bin");
            int embedding = (int)router.Dimensions[0];
            int experts = (int)router.Dimensions[1];
            var activations = new byte[VecDot.ActivationBytes(router.Type, embedding)];
            for (int t = 0; t < input.Length / embedding; t++)
            {
                VecDot.QuantizeActivations(router.Type, input.AsSpan(t * embedding, embedding), activations);
                for (int e = 0; e < experts; e++)
                {
                    var row = model.GetTensorData(router, e * router.RowBytes, (int)router.RowBytes);
                    float logit = VecDot.Quantized(router.Type, row, activations);
                    Assert.True(
                        BitConverter.SingleToUInt32Bits(expected[t * experts + e]) == BitConverter.SingleToUInt32Bits(logit),
                        $"layer {layer}, token {t}, expert {e}: {logit:R} vs llama.cpp {expected[t * experts + e]:R}");
                }
            }

            checkedLayers++;
        }

        Assert.True(checkedLayers > 0);
    }

    [Fact]
    public void F16ExpertsEqualLlamaCpps()
    {
        const string CaseName = "qwen2moe-f16";
        using var model = GgufFile.Open(GoldenData.GoldenPath("models", CaseName, "model.gguf"));
        for (int layer = 0; layer < 3; layer++)
        {
            var gate = model.GetTensor($"blk.{layer}.ffn_gate_exps.weight");
            var up = model.GetTensor($"blk.{layer}.ffn_up_exps.weight");
            var down = model.GetTensor($"blk.{layer}.ffn_down_exps.weight");
            Assert.Equal(GgmlType.F16, gate.Type);
            int embedding = (int)gate.Dimensions[0];
            int feedForward = (int)gate.Dimensions[1];
            var input = ReadFloats(CaseName, $"p0.ffn_norm-{layer}.bin");
            var chosen = MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(FilePath(CaseName, $"p0.ffn_moe_topk-{layer}.bin"))).ToArray();
            var weights = ReadFloats(CaseName, $"p0.ffn_moe_weights-{layer}.bin");
            var expected = ReadFloats(CaseName, $"p0.ffn_moe_out-{layer}.bin");
            int tokens = input.Length / embedding;
            int topK = chosen.Length / tokens;
            var x = new byte[VecDot.ActivationBytes(GgmlType.F16, embedding)];
            var h = new byte[VecDot.ActivationBytes(GgmlType.F16, feedForward)];
            var hidden = new float[feedForward];
            for (int t = 0; t < tokens; t++)
            {
                VecDot.QuantizeActivations(GgmlType.F16, input.AsSpan(t * embedding, embedding), x);
                var sum = new float[embedding];
                for (int k = 0; k < topK; k++)
                {
                    int expert = chosen[t * topK + k];
                    for (int r = 0; r < feedForward; r++)
                    {
                        long row = (long)expert * feedForward + r;
                        float g = VecDot.Quantized(GgmlType.F16, model.GetTensorData(gate, row * gate.RowBytes, (int)gate.RowBytes), x);
                        float u = VecDot.Quantized(GgmlType.F16, model.GetTensorData(up, row * up.RowBytes, (int)up.RowBytes), x);
                        hidden[r] = ExpertParityTests.GgmlSilu(g) * u;
                    }

                    VecDot.QuantizeActivations(GgmlType.F16, hidden, h);
                    for (int r = 0; r < embedding; r++)
                    {
                        long row = (long)expert * embedding + r;
                        float value = VecDot.Quantized(GgmlType.F16, model.GetTensorData(down, row * down.RowBytes, (int)down.RowBytes), h);
                        sum[r] += value * weights[t * topK + k];
                    }
                }

                for (int r = 0; r < embedding; r++)
                {
                    Assert.True(
                        BitConverter.SingleToUInt32Bits(expected[t * embedding + r]) == BitConverter.SingleToUInt32Bits(sum[r]),
                        $"layer {layer}, token {t}, element {r}: {sum[r]:R} vs llama.cpp {expected[t * embedding + r]:R}");
                }
            }
        }
    }

    private static string FilePath(string caseName, string file) => GoldenData.GoldenPath("models", caseName, file);

    private static float[] ReadFloats(string caseName, string file) =>
        MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(FilePath(caseName, file))).ToArray();
}
