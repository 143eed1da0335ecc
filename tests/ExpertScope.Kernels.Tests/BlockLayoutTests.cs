using System.Runtime.CompilerServices;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>The C# counterpart of ggml's <c>static_assert(sizeof(block_x) == ...)</c>.</summary>
public class BlockLayoutTests
{
    [Fact]
    public void EveryBlockStructHasGgmlsTypeSize()
    {
        AssertSize<BlockQ4_0>(GgmlType.Q4_0, BlockQ4_0.Size);
        AssertSize<BlockQ4_1>(GgmlType.Q4_1, BlockQ4_1.Size);
        AssertSize<BlockQ5_0>(GgmlType.Q5_0, BlockQ5_0.Size);
        AssertSize<BlockQ5_1>(GgmlType.Q5_1, BlockQ5_1.Size);
        AssertSize<BlockQ8_0>(GgmlType.Q8_0, BlockQ8_0.Size);
        AssertSize<BlockQ1_0>(GgmlType.Q1_0, BlockQ1_0.Size);
        AssertSize<BlockQ2_0>(GgmlType.Q2_0, BlockQ2_0.Size);
        AssertSize<BlockMxfp4>(GgmlType.MXFP4, BlockMxfp4.Size);
        AssertSize<BlockNvfp4>(GgmlType.NVFP4, BlockNvfp4.Size);
        AssertSize<BlockQ2K>(GgmlType.Q2_K, BlockQ2K.Size);
        AssertSize<BlockQ3K>(GgmlType.Q3_K, BlockQ3K.Size);
        AssertSize<BlockQ4K>(GgmlType.Q4_K, BlockQ4K.Size);
        AssertSize<BlockQ5K>(GgmlType.Q5_K, BlockQ5K.Size);
        AssertSize<BlockQ6K>(GgmlType.Q6_K, BlockQ6K.Size);
        AssertSize<BlockQ8K>(GgmlType.Q8_K, BlockQ8K.Size);
        AssertSize<BlockQ8_1>(GgmlType.Q8_1, BlockQ8_1.Size);
        AssertSize<BlockTQ1_0>(GgmlType.TQ1_0, BlockTQ1_0.Size);
        AssertSize<BlockTQ2_0>(GgmlType.TQ2_0, BlockTQ2_0.Size);
        AssertSize<BlockIQ2S>(GgmlType.IQ2_S, BlockIQ2S.Size);
        AssertSize<BlockIQ3Xxs>(GgmlType.IQ3_XXS, BlockIQ3Xxs.Size);
        AssertSize<BlockIQ3S>(GgmlType.IQ3_S, BlockIQ3S.Size);
        AssertSize<BlockIQ1M>(GgmlType.IQ1_M, BlockIQ1M.Size);
        AssertSize<BlockIQ4NL>(GgmlType.IQ4_NL, BlockIQ4NL.Size);
        AssertSize<BlockIQ4XS>(GgmlType.IQ4_XS, BlockIQ4XS.Size);
    }

    [Fact]
    public void GridTablesHaveGgmlsSizes()
    {
        Assert.Equal(128, GgmlTables.KSignsIq2xs.Length);
        Assert.Equal(16, GgmlTables.KValuesIq4nl.Length);
        Assert.Equal(16, GgmlTables.KValuesFp4.Length);
        Assert.Equal(256, GgmlTables.Iq3xxsGrid.Length);
        Assert.Equal(512, GgmlTables.Iq3sGrid.Length);
        Assert.Equal(1024, GgmlTables.Iq2sGrid.Length);
        Assert.Equal(2048, GgmlTables.Iq1sGrid.Length);
    }

    [Fact]
    public void SignTableEntriesHaveEvenParity()
    {
        // ksigns_iq2xs[i] is i with bit 7 set when i has an odd number of set bits (so the sign count is even).
        for (int i = 0; i < 128; i++)
        {
            int expected = i | (int.PopCount(i) % 2 == 1 ? 0x80 : 0);
            Assert.Equal(expected, GgmlTables.KSignsIq2xs[i]);
        }
    }

    [Fact]
    public void TableEntriesMatchTheirTypes()
    {
        foreach (var kernel in TypeKernels.All)
        {
            Assert.Equal(GgmlTypes.Get(kernel.Info.Type), kernel.Info);
            Assert.Equal(kernel.DotActivationType is null, kernel.Dot is null);
            Assert.Equal(kernel.Dot is null, kernel.DotReference is null);
        }
    }

    private static void AssertSize<TBlock>(GgmlType type, int elements)
        where TBlock : unmanaged
    {
        var info = GgmlTypes.Get(type);
        Assert.Equal(info.TypeSize, Unsafe.SizeOf<TBlock>());
        Assert.Equal(info.BlockSize, elements);
    }
}
