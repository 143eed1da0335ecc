using System.Runtime.Intrinsics;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>
/// The register-blocked tiled-attention products and the eight-lane softmax exp equal their one-value-at-a-time
/// references bit for bit (each single sum keeps ggml's order: a multiply then an add, dimension or position order).
/// </summary>
public sealed class TiledAttentionKernelTests
{
    [Theory]
    [InlineData(64, 64, 1, false)]
    [InlineData(128, 64, 16, false)]
    [InlineData(128, 64, 16, true)]
    [InlineData(128, 7, 5, false)]
    [InlineData(96, 33, 13, true)]
    [InlineData(80, 1, 2, false)]
    [InlineData(3, 5, 9, true)]
    public void QueryKeyDots_EqualDimensionOrderSums(int dim, int positions, int queries, bool fused)
    {
        int lanes = TiledAttentionKernels.QueryLanes;
        queries = Math.Min(queries, lanes);
        var random = new Random(dim * 1000 + positions);
        int stride = dim + 5;
        int first = 3;
        var keys = Values(random, (first + positions) * stride);
        var query = Values(random, queries * dim);
        var transposed = new float[dim * lanes];
        for (int lane = 0; lane < queries; lane++)
        {
            for (int d = 0; d < dim; d++)
            {
                transposed[d * lanes + lane] = query[lane * dim + d];
            }
        }

        var dots = new float[64 * lanes];
        if (fused)
        {
            TiledAttentionKernels.QueryKeyDots<TiledAttentionKernels.FusedMultiplyAdd>(transposed, keys, first, positions, stride, dim, dots);
        }
        else
        {
            TiledAttentionKernels.QueryKeyDots<TiledAttentionKernels.SeparateMultiplyAdd>(transposed, keys, first, positions, stride, dim, dots);
        }

        for (int i = 0; i < positions; i++)
        {
            for (int lane = 0; lane < queries; lane++)
            {
                float expected = 0.0f;
                for (int d = 0; d < dim; d++)
                {
                    expected = Term(expected, query[lane * dim + d], keys[(first + i) * stride + d], fused);
                }

                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(dots[i * lanes + lane]));
            }
        }
    }

    [Theory]
    [InlineData(128, 64, 16, false)]
    [InlineData(128, 64, 16, true)]
    [InlineData(128, 64, 4, false)]
    [InlineData(64, 17, 7, true)]
    [InlineData(96, 40, 5, false)]
    [InlineData(80, 9, 3, true)]
    [InlineData(5, 3, 6, false)]
    public void AccumulateValues_EqualPositionOrderSums(int dim, int positions, int rowCount, bool fused)
    {
        const int tile = 64;
        var random = new Random(dim * 7 + positions * 3 + rowCount);
        int stride = dim + 2;
        int first = 6;
        int targetStride = dim + 11;
        var values = Values(random, (first + positions) * stride);
        var weights = Values(random, rowCount * tile);
        int[] rows = [.. Enumerable.Range(0, rowCount).Select(r => (r * 5 + 2) % 19).Distinct()];
        var targets = Values(random, 20 * targetStride);
        var expected = (float[])targets.Clone();
        for (int r = 0; r < rows.Length; r++)
        {
            for (int j = 0; j < dim; j++)
            {
                float sum = expected[rows[r] * targetStride + j];
                for (int i = 0; i < positions; i++)
                {
                    sum = Term(sum, weights[r * tile + i], values[(first + i) * stride + j], fused);
                }

                expected[rows[r] * targetStride + j] = sum;
            }
        }

        if (fused)
        {
            TiledAttentionKernels.AccumulateValues<TiledAttentionKernels.FusedMultiplyAdd>(weights, tile, rows, values, first, positions, stride, targets, targetStride, dim);
        }
        else
        {
            TiledAttentionKernels.AccumulateValues<TiledAttentionKernels.SeparateMultiplyAdd>(weights, tile, rows, values, first, positions, stride, targets, targetStride, dim);
        }

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), targets.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Kernels_RefuseSpansShorterThanTheTile()
    {
        int lanes = TiledAttentionKernels.QueryLanes;
        Assert.Throws<ArgumentException>(() => TiledAttentionKernels.QueryKeyDots<TiledAttentionKernels.SeparateMultiplyAdd>(new float[8 * lanes], new float[10], 0, 2, 8, 8, new float[64 * lanes]));
        Assert.Throws<ArgumentException>(() =>
            TiledAttentionKernels.AccumulateValues<TiledAttentionKernels.SeparateMultiplyAdd>(new float[64], 64, [3], new float[64], 0, 8, 8, new float[16], 8, 8));
    }

    [Fact]
    public void VectorExp_EqualsScalarExp_OnOrdinaryAndExtremeArguments()
    {
        var random = new Random(11);
        float[] special =
        [
            0.0f, -0.0f, float.NegativeInfinity, float.PositiveInfinity, float.NaN, -87.3f, -88.7f, -103.9f, -126.5f, -150.0f,
            -200.0f, 88.0f, 88.8f, 130.0f, 1e-30f, -1e-30f, float.Epsilon, -float.Epsilon, 126.0f * MathF.Log(2.0f), -192.5f * MathF.Log(2.0f),
        ];
        var inputs = special.Concat(Enumerable.Range(0, 4000).Select(i => (float)((random.NextDouble() - 0.9) * (i % 4 == 0 ? 300 : 30)))).ToArray();
        for (int i = 0; i + 8 <= inputs.Length; i += 8)
        {
            var vector = GgmlMath.FastExp(Vector256.Create(inputs.AsSpan(i, 8)));
            for (int lane = 0; lane < 8; lane++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(GgmlMath.FastExp(inputs[i + lane])), BitConverter.SingleToInt32Bits(vector.GetElement(lane)));
            }
        }
    }

    [Theory]
    [InlineData(64)]
    [InlineData(67)]
    [InlineData(13)]
    [InlineData(3)]
    public void ExpMinusMax_EqualsReference_ValuesAndSum(int length)
    {
        var random = new Random(length);
        var input = Values(random, length).Select((v, i) => i % 9 == 4 ? float.NegativeInfinity : v * 20).ToArray();
        float max = input.Max();
        var fast = (float[])input.Clone();
        var reference = (float[])input.Clone();

        double fastSum = GgmlMath.ExpMinusMax(fast, max);
        double referenceSum = GgmlMath.ExpMinusMaxReference(reference, max);

        Assert.Equal(BitConverter.DoubleToInt64Bits(referenceSum), BitConverter.DoubleToInt64Bits(fastSum));
        Assert.Equal(reference.Select(BitConverter.SingleToInt32Bits), fast.Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>The scalar term of each arithmetic: a multiply then an add, or one fused multiply-add.</summary>
    private static float Term(float sum, float a, float b, bool fused) => fused ? MathF.FusedMultiplyAdd(a, b, sum) : sum + a * b;

    private static float[] Values(Random random, int count) => [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))];
}
