using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>The batched products give, for every (row, token) pair, exactly the bits of the one-pair dot.</summary>
[Collection(nameof(IsaSwitchCollection))]
public class MatrixProductTests
{
    public static TheoryData<GgmlType, int, int> Shapes() => new()
    {
        { GgmlType.Q8_0, 1, 1 },
        { GgmlType.Q8_0, 8, 1 },
        { GgmlType.Q8_0, 21, 1 },
        { GgmlType.Q8_0, 4, 8 },
        { GgmlType.Q8_0, 9, 13 },
        { GgmlType.Q8_0, 7, 64 },
        { GgmlType.Q8_0, 13, 3 },
        { GgmlType.Q4_K, 5, 11 },
        { GgmlType.Q4_K, 1, 2 },
        { GgmlType.Q4_K, 7, 1 },
        { GgmlType.Q4_K, 1, 1 },
        { GgmlType.Q4_K, 9, 64 },
        { GgmlType.Q4_K, 2, 4 },
        { GgmlType.Q4_K, 11, 9 },
        { GgmlType.Q4_K, 6, 135 },
        { GgmlType.Q5_K, 5, 11 },
        { GgmlType.Q5_K, 7, 1 },
        { GgmlType.Q5_K, 1, 1 },
        { GgmlType.Q5_K, 9, 64 },
        { GgmlType.Q6_K, 5, 11 },
        { GgmlType.Q6_K, 1, 2 },
        { GgmlType.Q6_K, 7, 1 },
        { GgmlType.Q6_K, 1, 1 },
        { GgmlType.Q6_K, 9, 64 },
        { GgmlType.Q6_K, 2, 4 },
        { GgmlType.Q6_K, 11, 9 },
        { GgmlType.Q6_K, 7, 135 },
        { GgmlType.F16, 3, 9 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPairEqualsTheOnePairDot(GgmlType type, int rows, int tokens)
    {
        Check(type, rows, tokens, randomBytes: false);
        Check(type, rows, tokens, randomBytes: true);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void WithoutVnniEveryPairEqualsTheOnePairDot(GgmlType type, int rows, int tokens)
    {
        bool saved = QuantizedDots.UseAdvancedIsa;
        QuantizedDots.UseAdvancedIsa = false;
        try
        {
            Assert.False(MatrixProduct.IsTiled(type));
            Check(type, rows, tokens, randomBytes: false);
        }
        finally
        {
            QuantizedDots.UseAdvancedIsa = saved;
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    public void WritesOnlyItsRowsOfAWiderOutput(GgmlType type)
    {
        // Six rows and ten tokens: the K-quant kernels' row groups of four and two, token quads and a last token pair.
        const int Elements = 256;
        var random = new Random(5);
        var weights = Quantized(type, TestData.RandomFloats(6 * Elements, random), 6, Elements);
        var packed = MatrixProduct.Pack(type, TestData.RandomFloats(10 * Elements, random), 10, Elements);
        var output = new float[10 * 20];
        Array.Fill(output, -7f);
        MatrixProduct.Multiply(type, weights, 6, packed, output.AsSpan(3), 20);
        var compact = new float[10 * 6];
        MatrixProduct.Multiply(type, weights, 6, packed, compact, 6);
        for (int t = 0; t < 10; t++)
        {
            for (int c = 0; c < 20; c++)
            {
                bool written = c >= 3 && c < 9;
                Assert.Equal(written, output[t * 20 + c] != -7f);
                if (written)
                {
                    Assert.Equal(BitConverter.SingleToUInt32Bits(compact[t * 6 + c - 3]), BitConverter.SingleToUInt32Bits(output[t * 20 + c]));
                }
            }
        }
    }

    [Fact]
    public void RejectsMismatchedTypesAndLengths()
    {
        var random = new Random(6);
        var packed = MatrixProduct.Pack(GgmlType.Q8_0, TestData.RandomFloats(2 * 64, random), 2, 64);
        var weights = Quantized(GgmlType.Q8_0, TestData.RandomFloats(64, random), 1, 64);
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply(GgmlType.Q4_0, weights, 1, packed, new float[2], 1));
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply(GgmlType.Q8_0, weights, 2, packed, new float[4], 2));
        Assert.Throws<ArgumentException>(() => MatrixProduct.Multiply(GgmlType.Q8_0, weights, 1, packed, new float[1], 1));
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(3, 9)]
    [InlineData(25, 8)]
    [InlineData(64, 7)]
    public void OneToken_AnyBlockCount_EqualsTheOnePairDot(int blocks, int rows)
    {
        // The one-token kernel takes blocks two at a time and four rows at a time; odd counts take its single steps.
        Check(GgmlType.Q8_0, rows, 1, randomBytes: false, blocks);
        Check(GgmlType.Q8_0, rows, 1, randomBytes: true, blocks);
    }

    [Theory]
    [InlineData(GgmlType.Q4_K, 1, 3)]
    [InlineData(GgmlType.Q4_K, 7, 5)]
    [InlineData(GgmlType.Q5_K, 1, 3)]
    [InlineData(GgmlType.Q5_K, 7, 5)]
    [InlineData(GgmlType.Q6_K, 1, 3)]
    [InlineData(GgmlType.Q6_K, 7, 5)]
    [InlineData(GgmlType.Q6_K, 8, 2)]
    public void KQuants_OddBlockCounts_EqualTheOnePairDot(GgmlType type, int blocks, int rows)
    {
        // One token takes the fused one-token kernel, three tokens a token pair plus a single token.
        foreach (int tokens in new[] { 1, 3 })
        {
            Check(type, rows, tokens, randomBytes: false, blocks);
            Check(type, rows, tokens, randomBytes: true, blocks);
        }
    }

    private static void Check(GgmlType type, int rows, int tokens, bool randomBytes, int? blockCount = null)
    {
        int elements = GgmlTypes.Get(type).BlockSize * (blockCount ?? (type == GgmlType.Q8_0 ? 24 : 2));
        var random = new Random(rows * 1000 + tokens + (randomBytes ? 1 : 0));
        var weights = randomBytes
            ? TestData.RandomBlocks(type, rows * elements / GgmlTypes.Get(type).BlockSize, random)
            : Quantized(type, TestData.RandomFloats(rows * elements, random), rows, elements);
        var activations = TestData.RandomFloats(tokens * elements, random, 3f);
        var packed = MatrixProduct.Pack(type, activations, tokens, elements);
        var output = new float[tokens * rows];
        MatrixProduct.Multiply(type, weights, rows, packed, output, rows);
        int rowBytes = weights.Length / rows;
        var converted = new byte[VecDot.ActivationBytes(type, elements)];
        for (int t = 0; t < tokens; t++)
        {
            VecDot.QuantizeActivations(type, activations.AsSpan(t * elements, elements), converted);
            Assert.True(converted.AsSpan().SequenceEqual(packed.Row(t)));
            for (int r = 0; r < rows; r++)
            {
                float expected = VecDot.QuantizedReference(type, weights.AsSpan(r * rowBytes, rowBytes), converted);
                float actual = output[t * rows + r];
                Assert.True(TestData.SameBitsOrBothNaN(expected, actual), $"{type} row {r} token {t}: {actual} != {expected}");
            }
        }
    }

    private static byte[] Quantized(GgmlType type, float[] values, int rows, int elements)
    {
        int rowBytes = Quantize.RowBytes(type, elements);
        var bytes = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++)
        {
            Quantize.Row(type, values.AsSpan(r * elements, elements), bytes.AsSpan(r * rowBytes, rowBytes));
        }

        return bytes;
    }
}
