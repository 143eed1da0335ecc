using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>The eight-lane SwiGLU gives the scalar form's bits (ggml's groups of four by the vector exp, the tail by expf).</summary>
public sealed class SwiGluTests
{
    [Theory]
    [InlineData(1, 3)]
    [InlineData(4, 2)]
    [InlineData(7, 3)]
    [InlineData(8, 1)]
    [InlineData(13, 4)]
    [InlineData(20, 3)]
    [InlineData(1024, 2)]
    public void EveryRowLengthEqualsTheScalarForm(int rowLength, int rows)
    {
        var random = new Random(rowLength * 31 + rows);
        float[] special = [0f, -0f, 1e-30f, -1e-30f, 88f, -88f, 104f, -104f, 200f, -200f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, float.MinValue, float.Epsilon];
        var gate = new float[rowLength * rows + 5];
        var up = new float[gate.Length];
        for (int i = 0; i < gate.Length; i++)
        {
            gate[i] = random.Next(8) == 0 ? special[random.Next(special.Length)] : (float)((random.NextDouble() - 0.5) * 40);
            up[i] = (float)((random.NextDouble() - 0.5) * 4);
        }

        var expected = (float[])gate.Clone();
        GgmlMath.SwiGluReference(expected, up, rowLength);
        GgmlMath.SwiGlu(gate, up, rowLength);
        for (int i = 0; i < gate.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(gate[i]) || (float.IsNaN(expected[i]) && float.IsNaN(gate[i])), $"value {i}: {gate[i]} != {expected[i]}");
        }
    }
}
