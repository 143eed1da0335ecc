using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// The vectorized Q8_K quantizer (the activation path of every K-quant and i-quant dot) writes the bytes of ggml's
/// <c>quantize_row_q8_K_ref</c> port: scale, quants and the 16 group sums, for random and adversarial blocks.
/// </summary>
public class Q8KQuantizeParityTests
{
    [Fact]
    public void TheEngineQuantizesActivationsWithTheVectorizedKernel()
    {
        var kernel = TypeKernels.Get(GgmlType.Q8_K);
        Assert.Equal(nameof(Q8K.Quantize), kernel.Quantize!.Method.Name);
        Assert.Equal(GgmlType.Q8_K, VecDot.ActivationType(GgmlType.IQ2_XXS));
    }

    [Fact]
    public void RandomRowsAtEveryScale_MatchTheReference()
    {
        var random = new Random(8256);
        for (int trial = 0; trial < 120; trial++)
        {
            float scale = (float)Math.Pow(10, random.Next(-44, 38));
            int blocks = 1 + random.Next(4);
            var values = Enumerable.Range(0, 256 * blocks).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
            Check(values, $"trial {trial}, scale {scale}");
        }
    }

    [Fact]
    public void TiesAtHalf_RoundToEvenAsGgmlsNearestInt()
    {
        // With max = -127 the scale is exactly 1, so every k + 0.5 is a tie (nearest_int rounds it to even), and with
        // max = +127 the scale is -1; both must give the reference's bytes and sums.
        foreach (float max in new[] { -127f, 127f })
        {
            var values = Enumerable.Range(0, 256).Select(i => (i % 2 == 0 ? 1 : -1) * ((i % 127) + 0.5f)).ToArray();
            values[37] = max;
            Check(values, $"ties, max {max}");
            var quants = Quantized(values);
            Assert.Equal(-127, (sbyte)quants[4 + 37]);
            Assert.Equal(BitConverter.SingleToInt32Bits(max / -127f), BitConverter.ToInt32(quants, 0));
        }
    }

    [Fact]
    public void TheFirstValueOfTheLargestMagnitude_SetsTheScalesSign()
    {
        foreach (int first in new[] { 0, 7, 8, 100, 254 })
        {
            var values = Enumerable.Range(0, 256).Select(i => (float)Math.Sin(i)).ToArray();
            values[first] = 3f;
            values[255] = -3f;
            Check(values, $"+3 at {first}, -3 at 255");
            Assert.True(BitConverter.ToSingle(Quantized(values), 0) < 0);
            values[first] = -3f;
            values[255] = 3f;
            Check(values, $"-3 at {first}, +3 at 255");
            Assert.True(BitConverter.ToSingle(Quantized(values), 0) > 0);
        }
    }

    [Fact]
    public void ZerosHugeAndSubnormalValues_MatchTheReference()
    {
        Check(new float[512], "zeros");
        Check([.. Enumerable.Range(0, 256).Select(i => i % 3 == 0 ? -0f : 0f)], "signed zeros");
        Check([.. Enumerable.Range(0, 256).Select(i => (i - 128) * 2.6e36f)], "huge");
        Check([.. Enumerable.Range(0, 256).Select(i => i == 9 ? -float.MaxValue : float.MaxValue * (i % 5) / 5)], "largest float");
        Check([.. Enumerable.Range(0, 256).Select(i => float.Epsilon * (i - 128))], "subnormal steps");
        Check([.. Enumerable.Range(0, 256).Select(i => i % 2 == 0 ? 1e-39f : 0f)], "subnormal scale and zeros");

        // One huge block beside ordinary ones: each block has its own scale.
        var mixed = Enumerable.Range(0, 768).Select(i => (float)Math.Cos(i) * (i < 256 ? 1e30f : 1f)).ToArray();
        Check(mixed, "mixed blocks");
    }

    [Fact]
    public void NaNAndInfinity_TakeTheReferencePath()
    {
        var values = Enumerable.Range(0, 768).Select(i => (float)Math.Sin(i)).ToArray();
        values[5] = float.PositiveInfinity;
        values[300] = float.NegativeInfinity;
        Check(values, "infinities");
    }

    private static byte[] Quantized(float[] values)
    {
        var bytes = new byte[Quantize.RowBytes(GgmlType.Q8_K, values.Length)];
        Q8K.Quantize(values, bytes);
        return bytes;
    }

    private static void Check(float[] values, string what)
    {
        var expected = new byte[Quantize.RowBytes(GgmlType.Q8_K, values.Length)];
        Q8K.QuantizeReference(values, expected);
        var actual = Quantized(values);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i] == actual[i], $"{what}: byte {i} of {expected.Length} is {actual[i]}, the reference wrote {expected[i]}");
        }
    }
}
