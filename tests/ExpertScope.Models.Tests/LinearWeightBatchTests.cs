using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Blocks;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>A batch larger than the token blocks gives every (row, token) pair the bits of a one-token product.</summary>
public sealed class LinearWeightBatchTests
{
    [Theory]
    [InlineData(GgmlType.F32, FloatArithmetic.Reference)]
    [InlineData(GgmlType.F32, FloatArithmetic.Fused)]
    [InlineData(GgmlType.F16, FloatArithmetic.Reference)]
    [InlineData(GgmlType.F16, FloatArithmetic.Fused)]
    [InlineData(GgmlType.BF16, FloatArithmetic.Fused)]
    public void LongBatch_EqualsOneTokenAtATime(GgmlType type, FloatArithmetic arithmetic)
    {
        const int Rows = 13, Columns = 96, Tokens = 150;
        var random = new Random(7);
        var values = Enumerable.Range(0, Rows * Columns).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        int rowBytes = Quantize.RowBytes(type, Columns);
        var data = new byte[Rows * rowBytes];
        for (int r = 0; r < Rows; r++)
        {
            Quantize.Row(type, values.AsSpan(r * Columns, Columns), data.AsSpan(r * rowBytes, rowBytes));
        }

        using var temp = new TempDirectory();
        string path = temp.File("w.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            writer.AddTensor("w", type, [Columns, Rows]);
            writer.WriteTensorData(data);
            writer.Finish();
        }

        using var file = GgufFile.Open(path);
        var weight = new LinearWeight(file, file.Tensors[0], Columns, Rows, 0, arithmetic);
        var input = Enumerable.Range(0, Tokens * Columns).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var batch = new float[Tokens * Rows];
        weight.Multiply(input, Tokens, batch, new Parallelism(2));
        var one = new float[Rows];
        for (int t = 0; t < Tokens; t++)
        {
            weight.Multiply(input.AsSpan(t * Columns, Columns), 1, one, Parallelism.Single);
            Assert.True(one.AsSpan().SequenceEqual(batch.AsSpan(t * Rows, Rows)), $"{type} {arithmetic}: token {t} differs.");
        }
    }
}
