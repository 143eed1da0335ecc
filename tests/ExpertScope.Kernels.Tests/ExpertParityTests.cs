using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// The quantized dot products inside a real llama.cpp computation: the routed experts of the quantized OLMoE
/// cases, recomputed from the saved <c>ffn_norm</c> input, expert choice and weights, must give llama.cpp's
/// <c>ffn_moe_out</c> bit for bit. The float path (dequantize, then multiply) is measured beside it for contrast.
/// This also pins down llama.cpp's SiLU: its x86-64 build uses the SSE2 polynomial <c>ggml_v_expf</c>, not libm's
/// <c>expf</c> (with <see cref="MathF.Exp"/> the Q4_K case differs in the last bits of 12% of the outputs).
/// </summary>
public class ExpertParityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("olmoe-q8_0", GgmlType.Q8_0)]
    [InlineData("olmoe-q4_k", GgmlType.Q4_K)]
    public void QuantizedDotReproducesLlamaCppExpertOutputsBitForBit(string caseName, GgmlType expertType)
    {
        using var model = GgufFile.Open(GoldenData.GoldenPath("models", caseName, "model.gguf"));
        int embedding = (int)model.GetTensor("blk.0.ffn_norm.weight").Dimensions[0];
        double worstQuantized = 0;
        double worstFloat = 0;
        int differing = 0;
        int total = 0;
        for (int layer = 0; layer < 3; layer++)
        {
            var gate = model.GetTensor($"blk.{layer}.ffn_gate_exps.weight");
            var up = model.GetTensor($"blk.{layer}.ffn_up_exps.weight");
            var down = model.GetTensor($"blk.{layer}.ffn_down_exps.weight");
            Assert.Equal(expertType, gate.Type);
            int feedForward = (int)gate.Dimensions[1];

            var input = ReadFloats(caseName, $"p0.ffn_norm-{layer}.bin");
            var chosen = MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(Path(caseName, $"p0.ffn_moe_topk-{layer}.bin"))).ToArray();
            var weights = ReadFloats(caseName, $"p0.ffn_moe_weights-{layer}.bin");
            var expected = ReadFloats(caseName, $"p0.ffn_moe_out-{layer}.bin");
            int tokens = input.Length / embedding;
            int topK = chosen.Length / tokens;

            for (int t = 0; t < tokens; t++)
            {
                var x = input.AsSpan(t * embedding, embedding);
                var quantizedOut = new float[embedding];
                var floatOut = new float[embedding];
                for (int k = 0; k < topK; k++)
                {
                    int expert = chosen[t * topK + k];
                    float weight = weights[t * topK + k];
                    var quantized = Expert(model, gate, up, down, expert, x, feedForward, embedding, quantize: true);
                    var plain = Expert(model, gate, up, down, expert, x, feedForward, embedding, quantize: false);
                    for (int e = 0; e < embedding; e++)
                    {
                        // ggml scales each expert's output by its weight, then adds the experts in order.
                        quantizedOut[e] += quantized[e] * weight;
                        floatOut[e] += plain[e] * weight;
                    }
                }

                for (int e = 0; e < embedding; e++)
                {
                    double reference = expected[t * embedding + e];
                    double scale = Math.Max(1e-3, Math.Abs(reference));
                    total++;
                    differing += quantizedOut[e] != (float)reference ? 1 : 0;
                    worstQuantized = Math.Max(worstQuantized, Math.Abs(quantizedOut[e] - reference) / scale);
                    worstFloat = Math.Max(worstFloat, Math.Abs(floatOut[e] - reference) / scale);
                }
            }
        }

        output.WriteLine($"{caseName}: worst relative error, quantized dot {worstQuantized:E2}, float dot {worstFloat:E2}; {differing} of {total} outputs not bit-identical");
        Assert.Equal(0, differing);
    }

    private static float[] Expert(
        GgufFile model, GgufTensorInfo gate, GgufTensorInfo up, GgufTensorInfo down, int expert, ReadOnlySpan<float> x,
        int feedForward, int embedding, bool quantize)
    {
        int inRowBytes = (int)gate.RowBytes;
        var hidden = new float[feedForward];
        byte[] activations = quantize ? QuantizeActivations(gate.Type, x) : [];
        for (int r = 0; r < feedForward; r++)
        {
            long row = (long)expert * feedForward + r;
            var gateRow = model.GetTensorData(gate, row * inRowBytes, inRowBytes);
            var upRow = model.GetTensorData(up, row * inRowBytes, inRowBytes);
            float g = quantize ? VecDot.Quantized(gate.Type, gateRow, activations) : VecDot.Float(gate.Type, gateRow, x);
            float u = quantize ? VecDot.Quantized(up.Type, upRow, activations) : VecDot.Float(up.Type, upRow, x);
            hidden[r] = GgmlSilu(g) * u;
        }

        int outRowBytes = (int)down.RowBytes;
        var result = new float[embedding];
        byte[] hiddenActivations = quantize ? QuantizeActivations(down.Type, hidden) : [];
        for (int r = 0; r < embedding; r++)
        {
            var downRow = model.GetTensorData(down, ((long)expert * embedding + r) * outRowBytes, outRowBytes);
            result[r] = quantize ? VecDot.Quantized(down.Type, downRow, hiddenActivations) : VecDot.Float(down.Type, downRow, hidden);
        }

        return result;
    }

    /// <summary>
    /// ggml's SiLU as an x86-64 build runs it (<c>ggml_v_silu</c> with the SSE2 <c>ggml_v_expf</c> polynomial, no FMA),
    /// transcribed for one lane: x / (1 + exp(-x)).
    /// </summary>
    internal static float GgmlSilu(float x)
    {
        float negated = 0f - x;
        return x / (1f + GgmlExp(negated));
    }

    private static float GgmlExp(float x)
    {
        const float R = 12582912f; // 0x1.8p23
        float z = x * 1.4426950216293335f + R; // 0x1.715476p+0
        float n = z - R;
        float b = x - n * 0.693145751953125f; // 0x1.62e4p-1
        b -= n * 1.428606765330187e-06f; // 0x1.7f7d1cp-20
        uint e = BitConverter.SingleToUInt32Bits(z) << 23;
        float k = BitConverter.UInt32BitsToSingle(e + BitConverter.SingleToUInt32Bits(1f));
        bool c = MathF.Abs(n) > 126;
        float u = b * b;
        // 0x1.0e4020p-7, 0x1.573e2ep-5, 0x1.555e66p-3, 0x1.fffdb6p-2, 0x1.ffffecp-1
        float j = ((0.008247390389442444f * b + 0.04189976677298546f) * u + (0.16668395698070526f * b + 0.4999912679195404f)) * u + 0.9999994039535522f * b;
        if (!c)
        {
            return j * k + k;
        }

        uint g = n <= 0 ? 0x82000000u : 0u;
        float s1 = BitConverter.UInt32BitsToSingle(g + 0x7f000000u);
        float s2 = BitConverter.UInt32BitsToSingle(e - g);
        return MathF.Abs(n) > 192 ? s1 * s1 : (s2 * j + s2) * s1;
    }

    private static byte[] QuantizeActivations(GgmlType weightType, ReadOnlySpan<float> values)
    {
        var bytes = new byte[VecDot.ActivationBytes(weightType, values.Length)];
        VecDot.QuantizeActivations(weightType, values, bytes);
        return bytes;
    }

    private static string Path(string caseName, string file) => GoldenData.GoldenPath("models", caseName, file);

    private static float[] ReadFloats(string caseName, string file) =>
        MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path(caseName, file))).ToArray();
}
