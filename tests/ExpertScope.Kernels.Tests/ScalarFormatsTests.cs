using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// Checks the conversions against direct transcriptions of ggml's bit-level formulas (ggml-impl.h), which
/// serve as the oracle here.
/// </summary>
public class ScalarFormatsTests
{
    [Fact]
    public void EveryHalfConvertsAsGgmlDoes()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float expected = GgmlHalfToSingle((ushort)bits);
            float actual = ScalarFormats.HalfToSingle((ushort)bits);
            Assert.True(TestData.SameBitsOrBothNaN(expected, actual), $"0x{bits:X4}: {actual:R} vs ggml {expected:R}");
        }
    }

    [Fact]
    public void SinglesRoundToHalfAsGgmlDoes()
    {
        var random = new Random(20230828);
        var values = new List<float> { 0f, -0f, 65504f, 65519.99f, 65520f, -65520f, 6.1035156e-5f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e-10f, 0.5f, 1.00048828125f, 1.000732421875f };
        for (int i = 0; i < 200_000; i++)
        {
            values.Add(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)));
            values.Add((float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-30, 20))));
        }

        foreach (var value in values)
        {
            Assert.Equal(GgmlSingleToHalf(value), ScalarFormats.SingleToHalf(value));
        }
    }

    [Fact]
    public void SinglesRoundToBFloat16AsGgmlDoes()
    {
        Assert.Equal(0x3F80, ScalarFormats.SingleToBFloat16(1f));
        Assert.Equal(0x3F80, ScalarFormats.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie to even
        Assert.Equal(0x3F82, ScalarFormats.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie to even, up
        Assert.Equal(0x3F81, ScalarFormats.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808001)));
        Assert.Equal(0x7FC1, ScalarFormats.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x7F810000))); // NaN made quiet
        Assert.Equal(1f, ScalarFormats.BFloat16ToSingle(0x3F80));
    }

    [Fact]
    public void ScaleFormatsDecodeAsGgmlDoes()
    {
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x00200000), ScalarFormats.E8M0ToSingleHalf(0));
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x00400000), ScalarFormats.E8M0ToSingleHalf(1));
        Assert.Equal(0.5f, ScalarFormats.E8M0ToSingleHalf(127));
        Assert.Equal(1f, ScalarFormats.E8M0ToSingleHalf(128));

        Assert.Equal(0f, ScalarFormats.UE4M3ToSingleHalf(0));
        Assert.Equal(0f, ScalarFormats.UE4M3ToSingleHalf(0x7F));
        Assert.Equal(0.5f, ScalarFormats.UE4M3ToSingleHalf(7 << 3)); // exponent 7 = 2^0
        Assert.Equal(448f * 0.5f, ScalarFormats.UE4M3ToSingleHalf(0x7E));
        Assert.Equal(MathF.ScaleB(1, -9) * 0.5f, ScalarFormats.UE4M3ToSingleHalf(1)); // subnormal
    }

    /// <summary>ggml's <c>fp16_to_fp32</c> (Maratyszcza's FP16), transcribed.</summary>
    private static float GgmlHalfToSingle(ushort h)
    {
        uint w = (uint)h << 16;
        uint sign = w & 0x80000000u;
        uint twoW = w + w;
        const uint ExpOffset = 0xE0u << 23;
        float normalized = BitConverter.UInt32BitsToSingle((twoW >> 4) + ExpOffset) * MathF.ScaleB(1, -112);
        const uint MagicMask = 126u << 23;
        float denormalized = BitConverter.UInt32BitsToSingle((twoW >> 17) | MagicMask) - 0.5f;
        uint result = sign | (twoW < (1u << 27) ? BitConverter.SingleToUInt32Bits(denormalized) : BitConverter.SingleToUInt32Bits(normalized));
        return BitConverter.UInt32BitsToSingle(result);
    }

    /// <summary>ggml's <c>fp32_to_fp16</c>, transcribed.</summary>
    private static ushort GgmlSingleToHalf(float f)
    {
        float scaleToInf = MathF.ScaleB(1, 112);
        float scaleToZero = MathF.ScaleB(1, -110);
        float bas = MathF.Abs(f) * scaleToInf * scaleToZero;
        uint w = BitConverter.SingleToUInt32Bits(f);
        uint shl1W = w + w;
        uint sign = w & 0x80000000u;
        uint bias = shl1W & 0xFF000000u;
        if (bias < 0x71000000u)
        {
            bias = 0x71000000u;
        }

        bas = BitConverter.UInt32BitsToSingle((bias >> 1) + 0x07800000u) + bas;
        uint bits = BitConverter.SingleToUInt32Bits(bas);
        uint expBits = (bits >> 13) & 0x00007C00u;
        uint mantissaBits = bits & 0x00000FFFu;
        uint nonsign = expBits + mantissaBits;
        return (ushort)((sign >> 16) | (shl1W > 0xFF000000u ? 0x7E00u : nonsign));
    }
}
