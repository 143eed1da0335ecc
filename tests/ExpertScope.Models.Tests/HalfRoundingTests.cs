using System.Numerics.Tensors;

namespace ExpertScope.Models.Tests;

/// <summary>The key/value cache rounds through float16 with the vectorised conversion; it must equal the scalar cast.</summary>
public sealed class HalfRoundingTests
{
    [Fact]
    public void VectorisedHalfRounding_EqualsTheScalarCast()
    {
        var random = new Random(16);
        var values = new List<float>
        {
            0f, -0f, 65504f, 65520f, -65520f, 1e-8f, 5.96e-8f, 2.98e-8f, 6.1e-5f, 1f + 1f / 2048, 1f + 3f / 2048,
            float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, float.MaxValue,
        };
        for (int i = 0; i < 100_000; i++)
        {
            values.Add(BitConverter.Int32BitsToSingle(random.Next(int.MinValue, int.MaxValue)) is var f && float.IsNaN(f) ? 1f : f);
            values.Add((float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-30, 20))));
        }

        var input = values.ToArray();
        var halves = new Half[input.Length];
        var vectorised = new float[input.Length];
        TensorPrimitives.ConvertToHalf(input, halves);
        TensorPrimitives.ConvertToSingle(halves, vectorised);
        for (int i = 0; i < input.Length; i++)
        {
            float scalar = (float)(Half)input[i];
            Assert.True(BitConverter.SingleToInt32Bits(scalar) == BitConverter.SingleToInt32Bits(vectorised[i]), $"{input[i]:R}: {vectorised[i]:R} != {scalar:R}");
        }
    }
}
