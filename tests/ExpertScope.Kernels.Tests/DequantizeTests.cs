using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

public class DequantizeTests
{
    public static TheoryData<GgmlType> KernelTypes()
    {
        var data = new TheoryData<GgmlType>();
        foreach (var kernel in TypeKernels.All.OrderBy(kernel => kernel.Info.Type))
        {
            data.Add(kernel.Info.Type);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(KernelTypes))]
    public void FastEqualsReferenceForEveryBlockCount(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        var random = new Random(20261124 + (int)type);

        // Plain types: every element count 0..300 (all SIMD tails); block types: 0..9 blocks.
        int maxCount = info.BlockSize == 1 ? 300 : 9;
        for (int count = 0; count <= maxCount; count++)
        {
            var source = TestData.RandomBlocks(type, count, random);
            var reference = new float[count * info.BlockSize];
            var fast = new float[count * info.BlockSize];
            Dequantize.RowReference(type, source, reference);
            Dequantize.Row(type, source, fast);

            for (int i = 0; i < reference.Length; i++)
            {
                Assert.True(TestData.SameBitsOrBothNaN(reference[i], fast[i]), $"{info.Name}, {count} blocks, element {i}: {reference[i]:R} vs {fast[i]:R}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(KernelTypes))]
    public void MismatchedLengthsThrow(GgmlType type)
    {
        var info = GgmlTypes.Get(type);
        var source = new byte[2 * info.TypeSize];

        Assert.Throws<ArgumentException>(() => Dequantize.Row(type, source, new float[3 * info.BlockSize]));
        Assert.Throws<ArgumentException>(() => Dequantize.RowReference(type, source.AsSpan(1), new float[2 * info.BlockSize]));
        if (info.BlockSize > 1)
        {
            Assert.Throws<ArgumentException>(() => Dequantize.Row(type, source, new float[2 * info.BlockSize - 1]));
        }

        Dequantize.Row(type, ReadOnlySpan<byte>.Empty, Span<float>.Empty);
    }

    [Fact]
    public void TypesWithoutKernelsThrow()
    {
        Assert.Throws<ArgumentException>(() => Dequantize.Row(GgmlType.I32, new byte[4], new float[1]));
        Assert.Throws<ArgumentException>(() => Quantize.Row(GgmlType.IQ2_S, new float[256], new byte[82]));
        Assert.False(Quantize.IsSupported(GgmlType.IQ2_S));
    }

    [Fact]
    public void RequiredTypesHaveVectorizedDequantizers()
    {
        foreach (var type in new[] { GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K })
        {
            Assert.Equal(KernelPath.Vectorized, TypeKernels.Get(type).DequantizePath);
        }
    }
}
