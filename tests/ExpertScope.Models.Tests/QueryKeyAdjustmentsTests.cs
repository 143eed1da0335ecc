using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>Llama 4's query/key blocks (temperature, no-RoPE layers, weightless head norm) and RoPE frequency factors against plain references.</summary>
public sealed class QueryKeyAdjustmentsTests
{
    private static readonly AttentionTemperature Llama4Temperature = new(8192, 0.1f, 1.0f);

    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(8190, 1.0)] // (8190 + 1) / 8192 < 1: exactly 1 below the first step
    [InlineData(8191, 1.0693147180559945)] // log(2) * 0.1 + 1
    [InlineData(16383, 1.1098612288668109)] // log(3) * 0.1 + 1
    public void Temperature_FollowsLlamaCppsFormula(int position, double expected) =>
        Assert.Equal((float)expected, Llama4Temperature.Factor(position));

    [Fact]
    public void NoRopeLayer_ScalesOnlyTheQueriesByTheTemperature()
    {
        var rope = new Rope(8, 10000f, RopeStyle.Normal);
        var adjustments = new QueryKeyAdjustments(skipRope: true, Llama4Temperature, headNormEpsilon: null, 8);
        var query = Values(16, 1);
        var key = Values(8, 2);
        var originalQuery = query.ToArray();
        var originalKey = key.ToArray();
        adjustments.Apply(rope, query, key, 2, 1, 8, 9000);
        float factor = Llama4Temperature.Factor(9000);
        Assert.True(factor > 1.0f);
        Assert.Equal(originalQuery.Select(q => q * factor), query);
        Assert.Equal(originalKey, key);
    }

    [Fact]
    public void HeadNorm_AfterRope_NormalisesEachHeadToUnitRms()
    {
        const float epsilon = 1e-6f;
        var rope = new Rope(8, 10000f, RopeStyle.Normal);
        var adjustments = new QueryKeyAdjustments(skipRope: false, temperature: null, epsilon, 8);
        var query = Values(16, 3);
        var key = Values(8, 4);
        var expectedQuery = query.ToArray();
        var expectedKey = key.ToArray();
        rope.Apply(expectedQuery, 2, 8, 5);
        rope.Apply(expectedKey, 1, 8, 5);
        adjustments.Apply(rope, query, key, 2, 1, 8, 5);
        AssertUnitRms(expectedQuery, query, epsilon);
        AssertUnitRms(expectedKey, key, epsilon);
    }

    [Fact]
    public void Temperature_OnARopeLayer_IsRejected() =>
        Assert.Throws<ArgumentException>(() => new QueryKeyAdjustments(skipRope: false, Llama4Temperature, null, 8));

    [Fact]
    public void RopeFrequencyFactors_OfOne_ChangeNothing_AndOthersDivideTheAngle()
    {
        var plain = new Rope(8, 10000f, RopeStyle.Normal);
        var ones = new Rope(8, 10000f, RopeStyle.Normal, frequencyFactors: [1f, 1f, 1f, 1f]);
        float[] factors = [1f, 2f, 4f, 8f];
        var scaled = new Rope(8, 10000f, RopeStyle.Normal, frequencyFactors: factors);
        var a = Values(8, 5);
        var b = a.ToArray();
        var c = a.ToArray();
        var original = a.ToArray();
        plain.Apply(a, 1, 8, 7);
        ones.Apply(b, 1, 8, 7);
        scaled.Apply(c, 1, 8, 7);
        Assert.Equal(a, b);
        for (int i = 0; i < 4; i++)
        {
            double angle = 7 * Math.Pow(10000, -2.0 * i / 8) / factors[i];
            double x0 = original[2 * i];
            double x1 = original[(2 * i) + 1];
            Assert.Equal(x0 * Math.Cos(angle) - x1 * Math.Sin(angle), c[2 * i], 5);
            Assert.Equal(x0 * Math.Sin(angle) + x1 * Math.Cos(angle), c[(2 * i) + 1], 5);
        }
    }

    private static void AssertUnitRms(float[] before, float[] after, float epsilon)
    {
        for (int head = 0; head < before.Length / 8; head++)
        {
            var x = before.AsSpan(head * 8, 8).ToArray();
            double rms = Math.Sqrt(x.Sum(v => (double)v * v) / 8 + epsilon);
            for (int i = 0; i < 8; i++)
            {
                Assert.InRange(after[(head * 8) + i], (x[i] / rms) - 1e-5, (x[i] / rms) + 1e-5);
            }
        }
    }

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }
}
