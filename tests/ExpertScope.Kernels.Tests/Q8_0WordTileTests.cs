using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// The Q8_0 word tiles (CPUs without AVX-VNNI, forced here on every AVX2 CPU by turning VNNI off) give, for every (row,
/// token) pair, the bits of ggml's one-pair dot: whole and partial tiles, four-row groups and leftover rows, every
/// weight byte including -128, and rows too long for the stack buffer.
/// </summary>
[Collection(nameof(IsaSwitchCollection))]
public class Q8_0WordTileTests
{
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 4, 1 },
        { 4, 8, 24 },
        { 7, 13, 3 },
        { 9, 64, 5 },
        { 5, 9, 2 },
        { 3, 17, 7 },
        { 6, 5, 130 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPairEqualsTheReferenceDot(int rows, int tokens, int blocks)
    {
        WithoutVnni(() =>
        {
            Assert.Equal(Avx2.IsSupported, MatrixProduct.IsWordTiled(GgmlType.Q8_0, tokens));
            Check(rows, tokens, blocks, randomBytes: false);
            Check(rows, tokens, blocks, randomBytes: true);
        });
    }

    [Fact]
    public void FewTokensAndOtherTypesTakeOtherKernels()
    {
        WithoutVnni(() =>
        {
            Assert.False(MatrixProduct.IsWordTiled(GgmlType.Q8_0, 3));
            Assert.False(MatrixProduct.IsWordTiled(GgmlType.Q4_K, 64));
            Check(rows: 6, tokens: 3, blocks: 4, randomBytes: true);
        });
    }

    [Fact]
    public void WritesOnlyItsRowsOfAWiderOutput()
    {
        WithoutVnni(() =>
        {
            const int Elements = 256;
            var random = new Random(11);
            var weights = TestData.RandomBlocks(GgmlType.Q8_0, 6 * Elements / 32, random);
            var packed = MatrixProduct.Pack(GgmlType.Q8_0, TestData.RandomFloats(10 * Elements, random), 10, Elements);
            var output = new float[10 * 20];
            Array.Fill(output, float.NegativeZero);
            MatrixProduct.Multiply(GgmlType.Q8_0, weights, 6, packed, output.AsSpan(3), 20);
            for (int t = 0; t < 10; t++)
            {
                for (int c = 0; c < 20; c++)
                {
                    bool untouched = BitConverter.SingleToInt32Bits(output[t * 20 + c]) == BitConverter.SingleToInt32Bits(float.NegativeZero);
                    // A computed sum starts at +0, so it is never -0: -0 marks the cells the product must leave alone.
                    Assert.True((c is >= 3 and < 9) != untouched, $"token {t} column {c}");
                }
            }
        });
    }

    private static void WithoutVnni(Action body)
    {
        bool saved = QuantizedDots.PreferVnni;
        QuantizedDots.PreferVnni = false;
        try
        {
            body();
        }
        finally
        {
            QuantizedDots.PreferVnni = saved;
        }
    }

    private static void Check(int rows, int tokens, int blocks, bool randomBytes)
    {
        int elements = GgmlTypes.Get(GgmlType.Q8_0).BlockSize * blocks;
        int rowBytes = Quantize.RowBytes(GgmlType.Q8_0, elements);
        var random = new Random(rows * 1009 + tokens * 31 + blocks + (randomBytes ? 1 : 0));
        byte[] weights;
        if (randomBytes)
        {
            weights = TestData.RandomBlocks(GgmlType.Q8_0, rows * blocks, random);
        }
        else
        {
            var values = TestData.RandomFloats(rows * elements, random);
            weights = new byte[rows * rowBytes];
            for (int r = 0; r < rows; r++)
            {
                Quantize.Row(GgmlType.Q8_0, values.AsSpan(r * elements, elements), weights.AsSpan(r * rowBytes, rowBytes));
            }
        }

        var packed = MatrixProduct.Pack(GgmlType.Q8_0, TestData.RandomFloats(tokens * elements, random, 3f), tokens, elements);
        var output = new float[tokens * rows];
        MatrixProduct.Multiply(GgmlType.Q8_0, weights, rows, packed, output, rows);
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < rows; r++)
            {
                float expected = QuantizedDots.Q8_0Reference(weights.AsSpan(r * rowBytes, rowBytes), packed.Row(t));
                Assert.True(TestData.SameBitsOrBothNaN(expected, output[t * rows + r]), $"row {r} token {t}: {output[t * rows + r]} != {expected}");
            }
        }
    }
}
