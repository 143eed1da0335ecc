using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// The Q4_K and Q5_K kernels form their four-product dots, and the one-token Q8_0 kernel its block dots, with AVX-VNNI
/// where .NET has it and with AVX2's multiply-adds otherwise (CPUs with AVX-512 VNNI only); both forms, and the plain
/// fallback, give ggml's bits.
/// </summary>
[Collection(nameof(IsaSwitchCollection))]
public class IntegerDotPathTests
{
    public static TheoryData<GgmlType, int, int, int> Shapes() => new()
    {
        { GgmlType.Q4_K, 1, 1, 1 },
        { GgmlType.Q4_K, 7, 1, 3 },
        { GgmlType.Q4_K, 5, 3, 2 },
        { GgmlType.Q4_K, 4, 16, 8 },
        { GgmlType.Q5_K, 7, 1, 3 },
        { GgmlType.Q5_K, 5, 3, 2 },
        { GgmlType.Q8_0, 1, 1, 1 },
        { GgmlType.Q8_0, 9, 1, 3 },
        { GgmlType.Q8_0, 4, 1, 8 },
        { GgmlType.Q8_0, 19, 5, 2 },
        { GgmlType.Q8_0, 35, 2, 1 },
    };

    [Fact]
    public void TheBatchedQ4KKernelNeedsOnlyAvx2AndVbmi()
    {
        Assert.Equal(Avx2.IsSupported && Avx512Vbmi.VL.IsSupported, MatrixProduct.IsBatchedQ4K(GgmlType.Q4_K));
        Assert.Equal(Avx2.IsSupported, MatrixProduct.IsOneTokenQ8_0(GgmlType.Q8_0));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPathEqualsTheReference(GgmlType type, int rows, int tokens, int blocks)
    {
        bool savedIsa = QuantizedDots.UseAdvancedIsa;
        bool savedVnni = QuantizedDots.PreferVnni;
        try
        {
            foreach (var (advanced, vnni) in new[] { (true, true), (true, false), (false, true) })
            {
                QuantizedDots.UseAdvancedIsa = advanced;
                QuantizedDots.PreferVnni = vnni;
                string path = !advanced ? "plain" : vnni && AvxVnni.IsSupported ? "AVX-VNNI" : "AVX2";
                Check(type, rows, tokens, blocks, randomBytes: false, path);
                Check(type, rows, tokens, blocks, randomBytes: true, path);
            }
        }
        finally
        {
            QuantizedDots.UseAdvancedIsa = savedIsa;
            QuantizedDots.PreferVnni = savedVnni;
        }
    }

    private static void Check(GgmlType type, int rows, int tokens, int blocks, bool randomBytes, string path)
    {
        int elements = 256 * blocks;
        var random = new Random(rows * 131 + tokens * 7 + blocks + (randomBytes ? 1 : 0));
        int rowBytes = Quantize.RowBytes(type, elements);
        byte[] weights;
        if (randomBytes)
        {
            // Every nibble, high bit and 6-bit scale, every Q8_0 byte including -128; finite float16 scales.
            int blockCount = rows * elements / GgmlTypes.Get(type).BlockSize;
            weights = TestData.RandomBlocks(type, blockCount, random);
            int typeSize = GgmlTypes.Get(type).TypeSize;
            for (int block = 0; block < blockCount; block++)
            {
                BitConverter.TryWriteBytes(weights.AsSpan(block * typeSize), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.02)));
                if (type != GgmlType.Q8_0)
                {
                    BitConverter.TryWriteBytes(weights.AsSpan(block * typeSize + 2), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.02)));
                }
            }
        }
        else
        {
            var values = TestData.RandomFloats(rows * elements, random);
            weights = new byte[rows * rowBytes];
            for (int r = 0; r < rows; r++)
            {
                Quantize.Row(type, values.AsSpan(r * elements, elements), weights.AsSpan(r * rowBytes, rowBytes));
            }
        }

        var packed = MatrixProduct.Pack(type, TestData.RandomFloats(tokens * elements, random, 3f), tokens, elements);
        var output = new float[tokens * rows];
        MatrixProduct.Multiply(type, weights, rows, packed, output, rows);
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < rows; r++)
            {
                var row = weights.AsSpan(r * rowBytes, rowBytes);
                float expected = VecDot.QuantizedReference(type, row, packed.Row(t));
                float pair = VecDot.Quantized(type, row, packed.Row(t));
                Assert.True(TestData.SameBitsOrBothNaN(expected, output[t * rows + r]), $"{type} {path} product row {r} token {t}");
                Assert.True(TestData.SameBitsOrBothNaN(expected, pair), $"{type} {path} pair dot row {r} token {t}");
            }
        }
    }
}
