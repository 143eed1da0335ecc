using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

public class VecDotTests
{
    public static TheoryData<GgmlType> QuantizedDotTypes() => new() { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K };

    public static TheoryData<GgmlType> KernelTypes() => DequantizeTests.KernelTypes();

    public static TheoryData<GgmlType> AllDotTypes()
    {
        var data = new TheoryData<GgmlType>();
        foreach (var kernel in TypeKernels.All.Where(kernel => kernel.Dot is not null).OrderBy(kernel => kernel.Info.Type))
        {
            data.Add(kernel.Info.Type);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllDotTypes))]
    public void DotEqualsTheProductOfTheDequantizedRows(GgmlType type)
    {
        // The integer sums are exact, so the dot must equal sum(dequantized weight * dequantized activation) up to
        // the rounding of the few float operations per block (and, for Q8_1, of the float16 sum s).
        var info = GgmlTypes.Get(type);
        var activationType = VecDot.ActivationType(type)!.Value;
        var random = new Random(4242 + (int)type);
        int count = 4 * Math.Max(256, info.BlockSize);
        for (int trial = 0; trial < 20; trial++)
        {
            var weights = TestData.RandomBlocks(type, count / info.BlockSize, random);
            FixScales(type, weights, random);
            var activations = QuantizedActivations(type, TestData.RandomFloats(count, random, 2f));
            var w = new float[count];
            var a = new float[count];
            Dequantize.Row(type, weights, w);
            Dequantize.Row(activationType, activations, a);
            double expected = 0;
            double magnitude = 0;
            for (int i = 0; i < count; i++)
            {
                expected += (double)w[i] * a[i];
                magnitude += Math.Abs((double)w[i] * a[i]);
            }

            double tolerance = (activationType == GgmlType.Q8_1 ? 2e-3 : 1e-5) * magnitude;
            Assert.InRange(VecDot.QuantizedReference(type, weights, activations), expected - tolerance, expected + tolerance);
            Assert.InRange(VecDot.Quantized(type, weights, activations), expected - tolerance, expected + tolerance);
        }
    }

    [Theory]
    [MemberData(nameof(QuantizedDotTypes))]
    public void QuantizedFastEqualsReferenceOnQuantizedRows(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        var random = new Random(20230828 + (int)type);
        for (int blocks = 0; blocks <= 12; blocks++)
        {
            int count = blocks * info.BlockSize;
            var weights = QuantizeRandom(type, count, random);
            var activations = QuantizedActivations(type, TestData.RandomFloats(count, random, 3f));

            float reference = VecDot.QuantizedReference(type, weights, activations);
            float fast = VecDot.Quantized(type, weights, activations);

            Assert.Equal(BitConverter.SingleToUInt32Bits(reference), BitConverter.SingleToUInt32Bits(fast));
        }
    }

    [Theory]
    [MemberData(nameof(QuantizedDotTypes))]
    public void QuantizedFastEqualsReferenceOnRandomBytes(GgmlType type)
    {
        // Random bytes reach the extremes real rows rarely hold (weights of -128, 6-bit scales of 63).
        var info = GgmlTypes.Get(type);
        var activationType = VecDot.ActivationType(type)!.Value;
        var random = new Random(1234 + (int)type);
        for (int trial = 0; trial < 50; trial++)
        {
            int blocks = 1 + random.Next(8);
            var weights = TestData.RandomBlocks(type, blocks, random);
            var activationBlocks = blocks * info.BlockSize / GgmlTypes.Get(activationType).BlockSize;
            var activations = TestData.RandomBlocks(activationType, activationBlocks, random);
            if (activationType == GgmlType.Q8_K)
            {
                // Keep the float32 scale finite and make the group sums consistent with the quants.
                FixQ8KBlocks(activations, random);
            }

            float reference = VecDot.QuantizedReference(type, weights, activations);
            float fast = VecDot.Quantized(type, weights, activations);

            Assert.True(TestData.SameBitsOrBothNaN(reference, fast), $"{info.Name} trial {trial}: {reference:R} vs {fast:R}");
        }
    }

    [Theory]
    [MemberData(nameof(QuantizedDotTypes))]
    public void QuantizedDotApproximatesTheFloatDot(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        var random = new Random(99);
        int count = 8 * Math.Max(info.BlockSize, 32);
        var weights = QuantizeRandom(type, count, random);
        var floats = TestData.RandomFloats(count, random, 2f);
        var activations = QuantizedActivations(type, floats);
        var dequantized = new float[count];
        Dequantize.Row(type, weights, dequantized);

        double exact = 0;
        double magnitude = 0;
        for (int i = 0; i < count; i++)
        {
            exact += (double)dequantized[i] * floats[i];
            magnitude += Math.Abs((double)dequantized[i] * floats[i]);
        }

        // The only extra error is the 8-bit quantization of the activations.
        float quantized = VecDot.Quantized(type, weights, activations);
        Assert.InRange(Math.Abs(quantized - exact), 0, 0.02 * magnitude);
    }

    [Fact]
    public void Q8_0DotOfAHandBuiltBlockIsExact()
    {
        // d = 1 for both (float16 0x3C00); q = 1..32 against 1: sum = 528.
        var weights = new byte[34];
        var activations = new byte[34];
        BitConverter.TryWriteBytes(weights, (ushort)0x3C00);
        BitConverter.TryWriteBytes(activations, (ushort)0x3C00);
        for (int j = 0; j < 32; j++)
        {
            weights[2 + j] = (byte)(j + 1);
            activations[2 + j] = 1;
        }

        Assert.Equal(528f, VecDot.Quantized(GgmlType.Q8_0, weights, activations));
        Assert.Equal(528f, VecDot.QuantizedReference(GgmlType.Q8_0, weights, activations));
    }

    [Theory]
    [MemberData(nameof(KernelTypes))]
    public void FloatFastEqualsReference(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        if (type == GgmlType.Q8_K)
        {
            return; // activation type only; its random bytes carry a float32 scale that may be NaN
        }

        var random = new Random(555 + (int)type);
        int[] blockCounts = info.BlockSize == 1 ? [0, 1, 7, 15, 16, 17, 31, 33, 100, 1023, 1024, 1025, 3000] : [0, 1, 2, 3, 5, 8, 17];
        foreach (int blocks in blockCounts)
        {
            int count = blocks * info.BlockSize;
            var weights = TestData.RandomBlocks(type, blocks, random);
            var activations = TestData.RandomFloats(count, random);

            float reference = VecDot.FloatReference(type, weights, activations);
            float fast = VecDot.Float(type, weights, activations);

            Assert.True(TestData.SameBitsOrBothNaN(reference, fast), $"{info.Name}, {blocks} blocks: {reference:R} vs {fast:R}");
        }
    }

    [Fact]
    public void FloatDotMatchesADoublePrecisionSum()
    {
        var random = new Random(3);
        var weights = TestData.RandomFloats(777, random);
        var activations = TestData.RandomFloats(777, random);
        double expected = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            expected += (double)weights[i] * activations[i];
        }

        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan());
        Assert.Equal(expected, VecDot.Float(GgmlType.F32, bytes, activations), 1e-4);
    }

    [Fact]
    public void MismatchedLengthsAndTypesThrow()
    {
        var weights = new byte[2 * 144];
        Assert.Throws<ArgumentException>(() => VecDot.Quantized(GgmlType.Q4_K, weights, new byte[292]));
        Assert.Throws<ArgumentException>(() => VecDot.Quantized(GgmlType.Q4_K, weights.AsSpan(1), new byte[2 * 292]));
        Assert.Throws<ArgumentException>(() => VecDot.QuantizedReference(GgmlType.Q8_K, new byte[292], new byte[292]));
        Assert.Throws<ArgumentException>(() => VecDot.Float(GgmlType.Q4_K, weights, new float[256]));
        Assert.Throws<ArgumentException>(() => VecDot.QuantizeActivations(GgmlType.Q8_K, new float[256], new byte[292]));
        Assert.Equal(GgmlType.Q8_0, VecDot.ActivationType(GgmlType.Q4_0));
        Assert.Equal(GgmlType.Q8_K, VecDot.ActivationType(GgmlType.Q6_K));
        Assert.Null(VecDot.ActivationType(GgmlType.Q8_K));
        Assert.Equal(GgmlType.Q8_K, VecDot.ActivationType(GgmlType.IQ2_S));
        Assert.Equal(GgmlType.Q8_1, VecDot.ActivationType(GgmlType.Q4_1));
        Assert.Equal(2 * 292, VecDot.ActivationBytes(GgmlType.Q4_K, 512));
    }

    /// <summary>Replaces random float16 scale fields by modest finite values so that sums stay meaningful.</summary>
    private static void FixScales(GgmlType type, byte[] blocks, Random random)
    {
        var info = GgmlTypes.Get(type);
        int[] halfOffsets = type switch
        {
            GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.MXFP4 or GgmlType.NVFP4 => [],
            GgmlType.Q2_K => [80, 82],
            GgmlType.Q3_K => [108],
            GgmlType.Q6_K => [208],
            GgmlType.TQ1_0 => [52],
            GgmlType.TQ2_0 => [64],
            GgmlType.IQ1_M => [],
            GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            _ => [0],
        };
        for (int block = 0; block < blocks.Length / info.TypeSize; block++)
        {
            foreach (int offset in halfOffsets)
            {
                ushort bits = BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.01));
                BitConverter.TryWriteBytes(blocks.AsSpan(block * info.TypeSize + offset), bits);
            }
        }

        if (type == GgmlType.IQ1_M)
        {
            // The float16 scale is spread over the top nibbles of the four scale words: make it 0x2000 (1/128).
            for (int block = 0; block < blocks.Length / info.TypeSize; block++)
            {
                for (int k = 0; k < 4; k++)
                {
                    int high = block * info.TypeSize + 49 + 2 * k;
                    blocks[high] = (byte)((blocks[high] & 0x0F) | (k == 3 ? 0x20 : 0));
                }
            }
        }

        if (type == GgmlType.MXFP4)
        {
            for (int block = 0; block < blocks.Length / info.TypeSize; block++)
            {
                blocks[block * info.TypeSize] = (byte)random.Next(110, 130); // E8M0 exponent near 2^0
            }
        }

        if (type is GgmlType.F16 or GgmlType.BF16)
        {
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(blocks.AsSpan());
            for (int i = 0; i < values.Length; i++)
            {
                float value = (float)(random.NextDouble() - 0.5);
                values[i] = type == GgmlType.F16 ? ScalarFormats.SingleToHalf(value) : ScalarFormats.SingleToBFloat16(value);
            }
        }
    }

    private static byte[] QuantizeRandom(GgmlType type, int count, Random random)
    {
        var weights = new byte[Quantize.RowBytes(type, count)];
        Quantize.Row(type, TestData.RandomFloats(count, random, 0.5f), weights);
        return weights;
    }

    private static byte[] QuantizedActivations(GgmlType weightType, float[] activations)
    {
        var bytes = new byte[VecDot.ActivationBytes(weightType, activations.Length)];
        VecDot.QuantizeActivations(weightType, activations, bytes);
        return bytes;
    }

    private static void FixQ8KBlocks(byte[] blocks, Random random)
    {
        for (int offset = 0; offset < blocks.Length; offset += 292)
        {
            BitConverter.TryWriteBytes(blocks.AsSpan(offset), (float)random.NextDouble());
            for (int group = 0; group < 16; group++)
            {
                int sum = 0;
                for (int k = 0; k < 16; k++)
                {
                    sum += (sbyte)blocks[offset + 4 + 16 * group + k];
                }

                BitConverter.TryWriteBytes(blocks.AsSpan(offset + 260 + 2 * group), (short)sum);
            }
        }
    }
}

/// <summary>Runs the quantized dot checks with AVX-VNNI and VBMI paths switched off, so the plain Vector256 integer path runs too.</summary>
[Collection(nameof(IsaSwitchCollection))]
public class VecDotPlainVectorPathTests
{
    [Theory]
    [MemberData(nameof(VecDotTests.QuantizedDotTypes), MemberType = typeof(VecDotTests))]
    public void PlainVectorPathEqualsReference(GgmlType type)
    {
        var checks = new VecDotTests();
        bool saved = QuantizedDots.UseAdvancedIsa;
        QuantizedDots.UseAdvancedIsa = false;
        try
        {
            checks.QuantizedFastEqualsReferenceOnQuantizedRows(type);
            checks.QuantizedFastEqualsReferenceOnRandomBytes(type);
        }
        finally
        {
            QuantizedDots.UseAdvancedIsa = saved;
        }
    }
}

[CollectionDefinition(nameof(IsaSwitchCollection), DisableParallelization = true)]
public class IsaSwitchCollection;
