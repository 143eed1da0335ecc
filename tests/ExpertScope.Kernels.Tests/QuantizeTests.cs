using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

public class QuantizeTests
{
    /// <summary>Type and the largest normalized mean squared error of a quantize → dequantize round trip.</summary>
    public static TheoryData<GgmlType, double> RoundTripBounds() => new()
    {
        { GgmlType.F32, 0 },
        { GgmlType.F16, 1e-7 },
        { GgmlType.BF16, 1e-5 },
        { GgmlType.Q8_0, 1e-4 },
        { GgmlType.Q8_K, 1e-3 }, // one scale per 256 values, so outliers cost more than in Q8_0
        { GgmlType.Q6_K, 1e-3 },
        { GgmlType.Q4_K, 1e-2 },
        { GgmlType.Q4_0, 2e-2 },
        { GgmlType.Q8_1, 1e-4 },
        { GgmlType.Q4_1, 2e-2 },
        { GgmlType.Q5_0, 1e-2 },
        { GgmlType.IQ4_NL, 2e-2 },
        { GgmlType.IQ4_XS, 2e-2 },
        { GgmlType.Q5_1, 5e-3 },
        { GgmlType.Q5_K, 3e-3 },
        { GgmlType.Q3_K, 5e-2 },
        { GgmlType.Q2_K, 2e-1 },
        { GgmlType.MXFP4, 5e-2 },
        { GgmlType.NVFP4, 5e-2 },
        { GgmlType.TQ2_0, 0.7 }, // ternary and 1-bit codes: clearly better than predicting zero (NMSE 1), no more
        { GgmlType.TQ1_0, 0.7 },
        { GgmlType.Q2_0, 0.5 },
        { GgmlType.Q1_0, 0.7 },
    };

    [Theory]
    [MemberData(nameof(RoundTripBounds))]
    public void RoundTripErrorIsBounded(GgmlType type, double maxNmse)
    {
        var random = new Random(20230828);
        var info = GgmlTypes.Get(type);
        var source = TestData.RandomFloats(info.BlockSize == 1 ? 4096 : 16 * info.BlockSize, random);
        var quantized = new byte[Quantize.RowBytes(type, source.Length)];
        var restored = new float[source.Length];

        Quantize.Row(type, source, quantized);
        Dequantize.Row(type, quantized, restored);

        double error = 0;
        double power = 0;
        for (int i = 0; i < source.Length; i++)
        {
            error += Math.Pow(source[i] - restored[i], 2);
            power += Math.Pow(source[i], 2);
        }

        Assert.InRange(error / power, 0, maxNmse);
        Assert.True(error / power > 0 || type is GgmlType.F32, "a lossy type reproduced the input exactly");
    }

    [Fact]
    public void Q8_0ElementsAreWithinHalfAStepOfTheSource()
    {
        var random = new Random(7);
        var source = TestData.RandomFloats(32 * 64, random);
        var quantized = new byte[Quantize.RowBytes(GgmlType.Q8_0, source.Length)];
        var restored = new float[source.Length];
        Quantize.Row(GgmlType.Q8_0, source, quantized);
        Dequantize.Row(GgmlType.Q8_0, quantized, restored);

        for (int block = 0; block < source.Length / 32; block++)
        {
            float d = ScalarFormats.HalfToSingle(BitConverter.ToUInt16(quantized, block * 34));
            for (int j = 0; j < 32; j++)
            {
                int i = 32 * block + j;

                // Half a step, plus the float16 rounding of d scaled by |q| <= 127.
                Assert.True(Math.Abs(source[i] - restored[i]) <= 0.5 * d + 127 * d * Math.Pow(2, -11), $"element {i}");
            }
        }
    }

    [Fact]
    public void Q8_KStoresGroupSumsAndMapsTheLargestMagnitudeToMinus127()
    {
        var random = new Random(11);
        var source = TestData.RandomFloats(512, random);
        source[300] = 9f; // largest magnitude of block 1, positive
        var quantized = new byte[Quantize.RowBytes(GgmlType.Q8_K, source.Length)];
        Quantize.Row(GgmlType.Q8_K, source, quantized);

        for (int block = 0; block < 2; block++)
        {
            var bytes = quantized.AsSpan(block * 292, 292);
            var qs = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(bytes.Slice(4, 256));
            var sums = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(bytes.Slice(260, 32));
            for (int group = 0; group < 16; group++)
            {
                int sum = 0;
                for (int k = 0; k < 16; k++)
                {
                    sum += qs[16 * group + k];
                }

                Assert.Equal(sum, sums[group]);
            }
        }

        Assert.Equal(-127, (sbyte)quantized[292 + 4 + 300 - 256]);
        Assert.True(BitConverter.ToSingle(quantized, 292) < 0);
    }

    [Fact]
    public void AllZeroBlocksQuantizeToZeros()
    {
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_K })
        {
            var info = GgmlTypes.Get(type);
            var quantized = new byte[info.TypeSize];
            var restored = new float[info.BlockSize];
            Quantize.Row(type, new float[info.BlockSize], quantized);
            Dequantize.Row(type, quantized, restored);

            Assert.All(restored, value => Assert.Equal(0f, value));
        }
    }

    [Fact]
    public void MismatchedLengthsThrow()
    {
        Assert.Throws<ArgumentException>(() => Quantize.Row(GgmlType.Q8_0, new float[32], new byte[33]));
        Assert.Throws<ArgumentException>(() => Quantize.Row(GgmlType.Q4_K, new float[255], new byte[144]));
        Assert.Throws<ArgumentException>(() => Quantize.RowBytes(GgmlType.Q4_K, 100));
        Assert.Equal(2 * 144, Quantize.RowBytes(GgmlType.Q4_K, 512));
    }
}
