using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;
using ExpertScope.Testing;

namespace ExpertScope.Kernels.Tests;

/// <summary>
/// IQ2_XXS, IQ2_XS and IQ1_S against ../shared/golden/quants-extra (raw blocks quantized by ggml and ggml's own
/// to_float of them), and their SIMD dots against the scalar ports of ggml's generic vec_dot.
/// </summary>
public class TwoBitIQuantTests
{
    public static TheoryData<string> TypeNames() => new() { "iq2_xxs", "iq2_xs", "iq1_s" };

    [Fact]
    public void BlockStructsAndGridsHaveGgmlsSizes()
    {
        Assert.Equal(66, Unsafe.SizeOf<BlockIQ2Xxs>());
        Assert.Equal(74, Unsafe.SizeOf<BlockIQ2Xs>());
        Assert.Equal(50, Unsafe.SizeOf<BlockIQ1S>());
        Assert.Equal(GgmlTypes.Get(GgmlType.IQ2_XXS).TypeSize, Unsafe.SizeOf<BlockIQ2Xxs>());
        Assert.Equal(GgmlTypes.Get(GgmlType.IQ2_XS).TypeSize, Unsafe.SizeOf<BlockIQ2Xs>());
        Assert.Equal(GgmlTypes.Get(GgmlType.IQ1_S).TypeSize, Unsafe.SizeOf<BlockIQ1S>());
        Assert.Equal(256, GgmlTables.Iq2xxsGrid.Length);
        Assert.Equal(512, GgmlTables.Iq2xsGrid.Length);
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void DequantizationEqualsGgmlBitForBit(string typeName)
    {
        var golden = Load(typeName);
        var reference = new float[golden.Expected.Length];
        var fast = new float[golden.Expected.Length];
        int rowBytes = golden.Raw.Length / golden.Rows;
        int rowLength = golden.Expected.Length / golden.Rows;
        for (int row = 0; row < golden.Rows; row++)
        {
            var raw = golden.Raw.AsSpan(row * rowBytes, rowBytes);
            Dequantize.RowReference(golden.Type, raw, reference.AsSpan(row * rowLength, rowLength));
            Dequantize.Row(golden.Type, raw, fast.AsSpan(row * rowLength, rowLength));
        }

        DequantizeGoldenTests.AssertBitwiseEqual(golden.Expected, reference, typeName + " reference");
        DequantizeGoldenTests.AssertBitwiseEqual(golden.Expected, fast, typeName + " fast");
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void DequantizationApproximatesTheSourceFloats(string typeName)
    {
        // A sanity check that the layout is read the right way round: ggml's quantizer kept the values close.
        var golden = Load(typeName);
        double errorSquares = 0;
        double sourceSquares = 0;
        for (int i = 0; i < golden.Source.Length; i++)
        {
            errorSquares += Math.Pow(golden.Expected[i] - golden.Source[i], 2);
            sourceSquares += Math.Pow(golden.Source[i], 2);
        }

        Assert.InRange(errorSquares / sourceSquares, 0, 0.5);
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void DotOfGoldenRowsEqualsReferenceAndTheDequantizedProduct(string typeName)
    {
        var golden = Load(typeName);
        int rowBytes = golden.Raw.Length / golden.Rows;
        int rowLength = golden.Expected.Length / golden.Rows;
        var random = new Random(20251206);
        for (int row = 0; row < golden.Rows; row++)
        {
            var weights = golden.Raw.AsSpan(row * rowBytes, rowBytes);
            var floats = TestData.RandomFloats(rowLength, random, 2f);
            var activations = new byte[VecDot.ActivationBytes(golden.Type, rowLength)];
            VecDot.QuantizeActivations(golden.Type, floats, activations);
            var dequantizedActivations = new float[rowLength];
            Dequantize.Row(GgmlType.Q8_K, activations, dequantizedActivations);

            float reference = VecDot.QuantizedReference(golden.Type, weights, activations);
            float fast = VecDot.Quantized(golden.Type, weights, activations);

            double expected = 0;
            double magnitude = 0;
            for (int i = 0; i < rowLength; i++)
            {
                double product = (double)golden.Expected[row * rowLength + i] * dequantizedActivations[i];
                expected += product;
                magnitude += Math.Abs(product);
            }

            Assert.Equal(BitConverter.SingleToUInt32Bits(reference), BitConverter.SingleToUInt32Bits(fast));
            Assert.InRange(reference, expected - 1e-5 * magnitude, expected + 1e-5 * magnitude);
        }
    }

    [Theory]
    [InlineData(GgmlType.IQ2_XXS)]
    [InlineData(GgmlType.IQ2_XS)]
    [InlineData(GgmlType.IQ1_S)]
    public void FastDotEqualsReferenceOnRandomBytes(GgmlType type)
    {
        // Random bytes reach every grid index, sign pattern and scale, and activations of -128.
        var random = new Random(7331 + (int)type);
        Assert.Equal(KernelPath.Vectorized, TypeKernels.Get(type).DotPath);
        for (int trial = 0; trial < 60; trial++)
        {
            int blocks = random.Next(6);
            var weights = TestData.RandomBlocks(type, blocks, random);
            for (int block = 0; block < blocks; block++)
            {
                // A finite float16 scale (the first field of all three blocks).
                BitConverter.TryWriteBytes(weights.AsSpan(block * GgmlTypes.Get(type).TypeSize), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.05)));
            }

            var activations = TestData.RandomBlocks(GgmlType.Q8_K, blocks, random);
            for (int offset = 0; offset < activations.Length; offset += 292)
            {
                BitConverter.TryWriteBytes(activations.AsSpan(offset), (float)random.NextDouble());
            }

            float reference = VecDot.QuantizedReference(type, weights, activations);
            float fast = VecDot.Quantized(type, weights, activations);

            Assert.True(TestData.SameBitsOrBothNaN(reference, fast), $"{type} trial {trial}: {reference:R} vs {fast:R}");
        }
    }

    private static Golden Load(string typeName)
    {
        string folder = GoldenData.GoldenPath("quants-extra");
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "quants.json")));
        var item = json.RootElement.GetProperty("types").EnumerateArray().Single(entry => entry.GetProperty("type").GetString() == typeName);
        var type = (GgmlType)item.GetProperty("ggml_type_id").GetUInt32();
        Assert.Equal(typeName, GgmlTypes.Get(type).Name);
        Assert.Equal(GgmlTypes.Get(type).TypeSize, item.GetProperty("type_size").GetInt32());
        var raw = File.ReadAllBytes(Path.Combine(folder, item.GetProperty("raw_file").GetString()!));
        Assert.Equal(item.GetProperty("raw_bytes").GetInt32(), raw.Length);
        return new Golden(
            type,
            item.GetProperty("shape")[0].GetInt32(),
            raw,
            ReadFloats(Path.Combine(folder, item.GetProperty("expected_file").GetString()!)),
            ReadFloats(Path.Combine(folder, item.GetProperty("source_file").GetString()!)));
    }

    private static float[] ReadFloats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();

    private sealed record Golden(GgmlType Type, int Rows, byte[] Raw, float[] Expected, float[] Source);
}
