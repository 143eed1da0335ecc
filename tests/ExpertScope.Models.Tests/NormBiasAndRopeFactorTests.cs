using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>
/// The two block extensions Phi-3.5-MoE needs, against plain double-precision references: RMS norm with a bias
/// (llama.cpp's <c>build_norm</c> with <c>LLM_NORM_RMS</c> and a bias tensor) and RoPE with per-pair frequency
/// divisors (ggml's <c>freq_factors</c>).
/// </summary>
public sealed class NormBiasAndRopeFactorTests
{
    private static float[] Uniform(Random random, int count, float center, float halfWidth) =>
        [.. Enumerable.Range(0, count).Select(_ => center + halfWidth * (2 * random.NextSingle() - 1))];

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    public void BiasedRmsNorm_MatchesThePlainFormula(int width)
    {
        var random = new Random(20261206);
        var x = Uniform(random, 3 * width, 0, 2);
        var weight = Uniform(random, width, 1, 0.1f);
        var bias = Uniform(random, width, 0, 0.5f);
        const float epsilon = 1e-5f;
        var norm = new RmsNorm(weight, epsilon, bias);
        var y = new float[x.Length];
        norm.Apply(x, y);

        for (int row = 0; row < 3; row++)
        {
            double meanSquare = 0;
            for (int i = 0; i < width; i++)
            {
                meanSquare += (double)x[row * width + i] * x[row * width + i];
            }

            double scale = 1 / Math.Sqrt(meanSquare / width + epsilon);
            for (int i = 0; i < width; i++)
            {
                double expected = x[row * width + i] * scale * weight[i] + bias[i];
                Assert.Equal(expected, y[row * width + i], 1e-5);
            }
        }
    }

    [Fact]
    public void BiasedRmsNorm_IsTheUnbiasedNormPlusTheBiasBitForBit()
    {
        var random = new Random(5);
        var x = Uniform(random, 128, 0, 3);
        var weight = Uniform(random, 64, 1, 0.2f);
        var bias = Uniform(random, 64, 0, 0.3f);
        var plain = new float[x.Length];
        var biased = new float[x.Length];
        new RmsNorm(weight, 1e-6f).Apply(x, plain);
        new RmsNorm(weight, 1e-6f, bias).Apply(x, biased, Parallelism.Default);

        // ggml adds the bias as a separate float operation after the scaled product.
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(plain[i] + bias[i % 64], biased[i]);
        }
    }

    [Fact]
    public void BiasedRmsNorm_RefusesABiasOfAnotherWidth() =>
        Assert.Throws<ArgumentException>(() => new RmsNorm(new float[8], 1e-6f, new float[4]));

    [Theory]
    [InlineData(RopeStyle.Neox)]
    [InlineData(RopeStyle.Normal)]
    public void RopeWithFrequencyFactors_RotatesByTheDividedAngles(RopeStyle style)
    {
        const int dimensions = 16;
        const int position = 37;
        const float frequencyBase = 10000f;
        var random = new Random(11);
        var factors = Uniform(random, dimensions / 2, 4, 3);
        var head = Uniform(random, dimensions, 0, 1);
        var rotated = (float[])head.Clone();
        new Rope(dimensions, frequencyBase, style, frequencyFactors: factors).Apply(rotated, 1, dimensions, position);

        for (int i = 0; i < dimensions / 2; i++)
        {
            double angle = position * Math.Pow(frequencyBase, -2.0 * i / dimensions) / factors[i];
            int a = style == RopeStyle.Neox ? i : 2 * i;
            int b = style == RopeStyle.Neox ? i + dimensions / 2 : 2 * i + 1;
            Assert.Equal(head[a] * Math.Cos(angle) - head[b] * Math.Sin(angle), rotated[a], 1e-4);
            Assert.Equal(head[a] * Math.Sin(angle) + head[b] * Math.Cos(angle), rotated[b], 1e-4);
        }
    }

    [Fact]
    public void RopeWithUnitFactors_IsBitIdenticalToPlainRope()
    {
        var random = new Random(3);
        var head = Uniform(random, 4 * 32, 0, 1);
        var plain = (float[])head.Clone();
        var factored = (float[])head.Clone();
        new Rope(32, 10000f, RopeStyle.Neox).Apply(plain, 4, 32, 1234);
        new Rope(32, 10000f, RopeStyle.Neox, frequencyFactors: Enumerable.Repeat(1f, 16).ToArray()).Apply(factored, 4, 32, 1234);
        Assert.Equal(plain, factored);
    }

    [Fact]
    public void RopeWithAttentionFactor_ScalesTheRotationLikeLlamaCppsLinearMode()
    {
        var random = new Random(8);
        var head = Uniform(random, 16, 0, 1);
        var plain = (float[])head.Clone();
        var scaled = (float[])head.Clone();
        new Rope(16, 10000f, RopeStyle.Neox).Apply(plain, 1, 16, 9);
        var linear = new RopeScaling(1f, ExtrapolationFactor: 0f, AttentionFactor: 1.19f, BetaFast: 32f, BetaSlow: 1f, OriginalContextLength: 128);
        new Rope(16, 10000f, RopeStyle.Neox, linear).Apply(scaled, 1, 16, 9);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(plain[i] * 1.19, scaled[i], 1e-5);
        }
    }
}
