using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

/// <summary>The vectorized Q8_0 quantizer (the engine's activation path) writes the reference's bytes.</summary>
public class Q8_0QuantizeParityTests
{
    [Fact]
    public void RandomBlocks_MatchTheReference()
    {
        var random = new Random(81);
        for (int trial = 0; trial < 200; trial++)
        {
            float scale = (float)Math.Pow(10, random.Next(-40, 30));
            var values = Enumerable.Range(0, 32 * 8).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
            Check(values);
        }
    }

    [Fact]
    public void MidpointsZerosAndSubnormals_MatchTheReference()
    {
        // With amax 127 the scale is 1, so these values land exactly on .5 and must round away from zero.
        var midpoints = Enumerable.Range(0, 32).Select(i => (i % 2 == 0 ? 1 : -1) * (i * 3.5f + 0.5f)).ToArray();
        midpoints[0] = 127f;
        Check(midpoints);
        Check(new float[32]);
        Check([.. Enumerable.Range(0, 32).Select(i => i % 3 == 0 ? -0f : 0f)]);
        Check([.. Enumerable.Range(0, 32).Select(i => float.Epsilon * (i - 16))]);
        Check([.. Enumerable.Range(0, 32).Select(i => (i - 16) * 1e-39f)]);
        Check([.. Enumerable.Range(0, 32).Select(i => 0.49999997f * (i % 2 == 0 ? 1 : -1) * (i == 0 ? 254 : 1))]);
    }

    [Fact]
    public void NaNAndInfinity_TakeTheReferencePath()
    {
        var values = Enumerable.Range(0, 96).Select(i => (float)Math.Sin(i)).ToArray();
        values[5] = float.NaN;
        values[40] = float.PositiveInfinity;
        values[70] = float.NegativeInfinity;
        Check(values);
    }

    private static void Check(float[] values)
    {
        int bytes = Quantize.RowBytes(ExpertScope.Core.GgmlType.Q8_0, values.Length);
        var expected = new byte[bytes];
        var actual = new byte[bytes];
        Q8_0.QuantizeReference(values, expected);
        Q8_0.Quantize(values, actual);
        Assert.Equal(expected, actual);
    }
}
