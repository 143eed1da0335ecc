using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

public class DequantizeGoldenTests
{
    public static TheoryData<string> TypeNames() => GoldenQuants.TypeNames();

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void GoldenEntryAgreesWithTheTypeTable(string typeName)
    {
        var entry = GoldenQuants.Get(typeName);
        var info = GgmlTypes.Get(entry.Type);

        Assert.Equal(entry.Type, entry.TensorType);
        Assert.Equal(typeName, info.Name);
        Assert.Equal(entry.BlockSize, info.BlockSize);
        Assert.Equal(entry.TypeSize, info.TypeSize);
        Assert.Equal(entry.Rows * entry.RowBytes, entry.Data.Length);
    }

    [Fact]
    public void EveryGoldenTypeHasKernels()
    {
        var missing = GoldenQuants.Entries.Where(entry => !TypeKernels.TryGet(entry.Type, out _)).Select(entry => entry.TypeName).ToList();

        Assert.Empty(missing);
        Assert.True(TypeKernels.TryGet(GgmlType.F32, out _));
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void ReferenceDequantizationEqualsGgmlBitForBit(string typeName)
    {
        var entry = GoldenQuants.Get(typeName);
        var actual = DequantizeByRow(entry, Dequantize.RowReference);

        AssertBitwiseEqual(entry.Expected, actual, typeName);
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void FastDequantizationEqualsGgmlBitForBit(string typeName)
    {
        var entry = GoldenQuants.Get(typeName);
        var actual = DequantizeByRow(entry, Dequantize.Row);

        AssertBitwiseEqual(entry.Expected, actual, typeName);
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void WholeTensorDequantizesInOneCall(string typeName)
    {
        // Rows are whole blocks, so the tensor is also one long row.
        var entry = GoldenQuants.Get(typeName);
        var actual = new float[entry.Rows * entry.RowLength];
        Dequantize.Row(entry.Type, entry.Data, actual);

        AssertBitwiseEqual(entry.Expected, actual, typeName);
    }

    internal static void AssertBitwiseEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var expectedBits = MemoryMarshal.Cast<float, uint>(expected);
        var actualBits = MemoryMarshal.Cast<float, uint>(actual);
        for (int i = 0; i < expectedBits.Length; i++)
        {
            if (expectedBits[i] != actualBits[i])
            {
                Assert.Fail($"{what}: element {i} is {actual[i]:R} (0x{actualBits[i]:X8}), ggml gives {expected[i]:R} (0x{expectedBits[i]:X8}).");
            }
        }
    }

    private delegate void RowFunction(GgmlType type, ReadOnlySpan<byte> source, Span<float> destination);

    private static float[] DequantizeByRow(GoldenQuants.Entry entry, RowFunction function)
    {
        var actual = new float[entry.Rows * entry.RowLength];
        for (int row = 0; row < entry.Rows; row++)
        {
            function(entry.Type, entry.Data.AsSpan(row * entry.RowBytes, entry.RowBytes), actual.AsSpan(row * entry.RowLength, entry.RowLength));
        }

        return actual;
    }
}
