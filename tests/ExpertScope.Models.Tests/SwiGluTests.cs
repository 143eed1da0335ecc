using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>The eight-lane SwiGLU gives the bits of ggml's steps value by value (vector-exp SiLU in groups of four, expf for the tail).</summary>
public sealed class SwiGluTests
{
    [Theory]
    [InlineData(64, 3)]
    [InlineData(13, 4)]
    [InlineData(20, 2)]
    [InlineData(3, 5)]
    [InlineData(1024, 1)]
    public void EightLanes_EqualTheScalarSteps(int rowLength, int rows)
    {
        var random = new Random(rowLength * 10 + rows);
        float[] special = [0.0f, -0.0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 88.9f, -88.9f, 104.0f, -104.0f, 1e-30f, -150.0f, 150.0f];
        var gate = Enumerable.Range(0, rowLength * rows)
            .Select(i => i < special.Length ? special[i] : (float)((random.NextDouble() - 0.5) * (i % 5 == 0 ? 200 : 12)))
            .ToArray();
        var up = Enumerable.Range(0, rowLength * rows).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var expected = new float[gate.Length];
        for (int i = 0; i < gate.Length; i++)
        {
            bool inGroupOfFour = i % rowLength < (rowLength & ~3);
            expected[i] = (inGroupOfFour ? GgmlMath.FastSilu(gate[i]) : GgmlMath.Silu(gate[i])) * up[i];
        }

        GgmlMath.SwiGlu(gate, up, rowLength);

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), gate.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void RefusesTooFewUpValues() =>
        Assert.Throws<ArgumentException>(() => GgmlMath.SwiGlu(new float[16], new float[8], 8));
}
