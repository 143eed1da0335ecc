using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

public class MatrixVectorTests
{
    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q5_0)]
    public void EveryRowEqualsItsVecDot(GgmlType type)
    {
        const int Rows = 7;
        const int Columns = 512;
        var random = new Random(8);
        int rowBytes = Quantize.RowBytes(type, Columns);
        var weights = new byte[Rows * rowBytes];
        if (Quantize.IsSupported(type))
        {
            Quantize.Row(type, TestData.RandomFloats(Rows * Columns, random), weights);
        }
        else
        {
            // Q5_0 has no quantizer here: quantize-free random blocks with a small finite scale.
            random.NextBytes(weights);
            for (int block = 0; block < weights.Length / 22; block++)
            {
                BitConverter.TryWriteBytes(weights.AsSpan(block * 22), BitConverter.HalfToUInt16Bits((Half)0.01));
            }
        }

        var input = TestData.RandomFloats(Columns, random);
        var activations = new byte[VecDot.ActivationBytes(type, Columns)];
        VecDot.QuantizeActivations(type, input, activations);
        var quantized = new float[Rows];
        var plain = new float[Rows];
        MatrixVector.Quantized(type, weights, activations, quantized);
        MatrixVector.Float(type, weights, input, plain);

        for (int r = 0; r < Rows; r++)
        {
            var row = weights.AsSpan(r * rowBytes, rowBytes);
            Assert.Equal(VecDot.Quantized(type, row, activations), quantized[r]);
            Assert.Equal(VecDot.Float(type, row, input), plain[r]);
        }
    }

    [Fact]
    public void MismatchedShapesThrow()
    {
        var weights = new byte[3 * 34];
        Assert.Throws<ArgumentException>(() => MatrixVector.Quantized(GgmlType.Q8_0, weights, new byte[34], new float[2]));
        Assert.Throws<ArgumentException>(() => MatrixVector.Quantized(GgmlType.Q8_0, weights, new byte[68], new float[3]));
        Assert.Throws<ArgumentException>(() => MatrixVector.Float(GgmlType.Q8_0, weights, new float[64], new float[3]));
        MatrixVector.Float(GgmlType.Q8_0, ReadOnlySpan<byte>.Empty, new float[32], Span<float>.Empty);
    }
}
