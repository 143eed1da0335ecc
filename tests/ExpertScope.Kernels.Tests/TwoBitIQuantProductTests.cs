using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// The one-token and batched IQ2_XXS, IQ2_XS and IQ1_S products give, for every (row, token) pair, the bits of the
/// scalar port of ggml's generic vec_dot, on the AVX2 kernels and on the per-pair fallback.
/// </summary>
[Collection(nameof(IsaSwitchCollection))]
public class TwoBitIQuantProductTests
{
    public static TheoryData<GgmlType, int, int, int> Shapes()
    {
        var data = new TheoryData<GgmlType, int, int, int>();
        foreach (var type in new[] { GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ1_S })
        {
            data.Add(type, 1, 1, 1);
            data.Add(type, 7, 1, 3);
            data.Add(type, 5, 2, 8);
            data.Add(type, 9, 17, 2);
        }

        return data;
    }

    [Fact]
    public void TheTwoBitIQuantsTakeTheirOwnKernelWhereAvx2Exists()
    {
        foreach (var type in new[] { GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ1_S })
        {
            Assert.Equal(Avx2.IsSupported, MatrixProduct.IsBatchedTwoBitIQuant(type));
        }

        Assert.False(MatrixProduct.IsBatchedTwoBitIQuant(GgmlType.IQ2_S));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPairEqualsTheReference(GgmlType type, int rows, int tokens, int blocks)
    {
        Check(type, rows, tokens, blocks, seed: 1);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void OnThePerPairFallbackEveryPairEqualsTheReference(GgmlType type, int rows, int tokens, int blocks)
    {
        bool saved = QuantizedDots.UseAdvancedIsa;
        QuantizedDots.UseAdvancedIsa = false;
        try
        {
            Assert.False(MatrixProduct.IsBatchedTwoBitIQuant(type));
            Check(type, rows, tokens, blocks, seed: 2);
        }
        finally
        {
            QuantizedDots.UseAdvancedIsa = saved;
        }
    }

    private static void Check(GgmlType type, int rows, int tokens, int blocks, int seed)
    {
        int elements = blocks * 256;
        var random = new Random(seed * 7919 + (int)type * 31 + rows * 5 + tokens);
        var weights = RandomWeights(type, rows * blocks, random);
        int rowBytes = weights.Length / rows;

        // Activations quantized by the engine, and raw Q8_K bytes that reach -128 and arbitrary group sums.
        var quantized = MatrixProduct.Pack(type, TestData.RandomFloats(tokens * elements, random, 3f), tokens, elements);
        var raw = RandomActivations(type, tokens, elements, random);
        foreach (var (packed, what) in new[] { (quantized, "quantized"), (raw, "raw Q8_K bytes") })
        {
            var output = new float[tokens * rows];
            MatrixProduct.Multiply(type, weights, rows, packed, output, rows);
            for (int t = 0; t < tokens; t++)
            {
                for (int r = 0; r < rows; r++)
                {
                    float expected = VecDot.QuantizedReference(type, weights.AsSpan(r * rowBytes, rowBytes), packed.Row(t));
                    float actual = output[t * rows + r];
                    Assert.True(TestData.SameBitsOrBothNaN(expected, actual), $"{type} {what} row {r} token {t}: {actual:R} != {expected:R}");
                }
            }
        }
    }

    /// <summary>Random blocks (every grid index, sign pattern and scale) with finite float16 scales.</summary>
    private static byte[] RandomWeights(GgmlType type, int blockCount, Random random)
    {
        var bytes = TestData.RandomBlocks(type, blockCount, random);
        int typeSize = GgmlTypes.Get(type).TypeSize;
        for (int block = 0; block < blockCount; block++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(block * typeSize), BitConverter.HalfToUInt16Bits((Half)((random.NextDouble() - 0.3) * 0.05)));
        }

        return bytes;
    }

    private static PackedActivations RandomActivations(GgmlType type, int tokens, int elements, Random random)
    {
        int rowBytes = VecDot.ActivationBytes(type, elements);
        var rows = TestData.RandomBlocks(GgmlType.Q8_K, tokens * elements / 256, random);
        for (int offset = 0; offset < rows.Length; offset += 292)
        {
            BitConverter.TryWriteBytes(rows.AsSpan(offset), (float)(random.NextDouble() - 0.5));
        }

        return new PackedActivations(type, tokens, elements, rows, rowBytes);
    }
}
