using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>
/// YaRN as llama.cpp applies it to deepseek2, checked against the published formulas (DeepSeek-V2/V3 configs, the
/// YaRN paper's mscale 0.1·m·ln(s)+1 and its correction range), since no golden model uses rope scaling.
/// </summary>
public class DeepSeekRopeScalingTests
{
    private const int KeyLength = 192;  // V2/V3: qk_nope 128 + qk_rope 64
    private const int RopeLength = 64;
    private const float Base = 10000f;
    private const int OriginalContext = 4096;

    [Fact]
    public void NoScaling_GivesPlainRopeAndInverseSqrtKeyLength()
    {
        var (rope, scale) = Resolve(RopeScalingType.Linear, 0f, 0f);

        Assert.Null(rope.Scaling);
        Assert.Equal(RopeStyle.Normal, rope.Style);
        Assert.Equal(1f / MathF.Sqrt(KeyLength), scale, 7);
    }

    [Fact]
    public void DeepSeekV3Yarn_MovesTheWholeMscaleIntoTheAttentionScale()
    {
        // DeepSeek-V3 config: factor 40, mscale = mscale_all_dim = 1; the converter stores 0.1 · mscale_all_dim.
        const float factor = 40f;
        var (rope, scale) = Resolve(RopeScalingType.Yarn, factor, 0.1f);

        var mscale = (0.1 * 1.0 * Math.Log(factor)) + 1.0;
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
        Assert.Equal(1f / factor, rope.Scaling!.FrequencyScale);
        Assert.Equal(1f, rope.Scaling.ExtrapolationFactor);
        Assert.Equal(OriginalContext, rope.Scaling.OriginalContextLength);
        // ggml multiplies cos/sin by attn_factor · (1 + 0.1 ln s); llama.cpp picks attn_factor so that is 1.
        Assert.Equal(1f, Rotate(rope, 123, pair: 5).Magnitude, 6);
    }

    [Fact]
    public void DeepSeekV2LiteYarn_UsesMscaleAllDimInTheAttentionScale()
    {
        // DeepSeek-V2-Lite config: factor 40, mscale = mscale_all_dim = 0.707.
        const float factor = 40f;
        const double mscaleAllDim = 0.707;
        var (rope, scale) = Resolve(RopeScalingType.Yarn, factor, (float)(0.1 * mscaleAllDim));

        var mscale = (0.1 * mscaleAllDim * Math.Log(factor)) + 1.0;
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
        Assert.Equal(1f, Rotate(rope, 7, pair: 20).Magnitude, 6);
    }

    [Fact]
    public void YarnWithoutLogMultiplier_KeepsTheMagnitudeOnTheRotationAndInTheScale()
    {
        // Plain YaRN metadata: cos/sin carry mscale = 0.1 ln s + 1 (llama.cpp's get_mscale(s, 1)), and the deepseek2
        // graph's attn_factor_org puts mscale² into kq_scale as well.
        const float factor = 4f;
        var (rope, scale) = Resolve(RopeScalingType.Yarn, factor, 0f);

        var mscale = (0.1 * Math.Log(factor)) + 1.0;
        Assert.Equal((float)mscale, Rotate(rope, 5, pair: 3).Magnitude, 5);
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
    }

    [Fact]
    public void YarnAngles_ExtrapolateFastPairs_InterpolateSlowPairs_RampBetween()
    {
        const float factor = 40f;
        const int position = 3;
        var (rope, _) = Resolve(RopeScalingType.Yarn, factor, 0.1f);

        // The correction range: dim · ln(L / (β · 2π)) / (2 ln base), floored for β = 32 and ceiled for β = 1.
        static double Dimension(double beta) => RopeLength * Math.Log(OriginalContext / (beta * 2 * Math.PI)) / (2 * Math.Log(Base));
        var low = Math.Floor(Dimension(32));
        var high = Math.Ceiling(Dimension(1));
        Assert.Equal((10.0, 23.0), (low, high));

        static double Theta(int pair) => position * Math.Pow(Base, -2.0 * pair / RopeLength);
        for (var pair = 0; pair < RopeLength / 2; pair++)
        {
            var ramp = 1 - Math.Clamp((pair - low) / (high - low), 0, 1);
            var expected = (Theta(pair) / factor * (1 - ramp)) + (Theta(pair) * ramp);
            Assert.Equal(expected, Rotate(rope, position, pair).Angle, 4);
        }

        Assert.Equal(Theta(0), Rotate(rope, position, 0).Angle, 4);
        Assert.Equal(Theta(31) / factor, Rotate(rope, position, 31).Angle, 6);
    }

    [Fact]
    public void LinearScaling_DividesPositionsAndInflatesTheScaleAsLlamaCppDoes()
    {
        const float factor = 2f;
        var (rope, scale) = Resolve(RopeScalingType.Linear, factor, 0f);

        Assert.Equal(0.5f, rope.Scaling!.FrequencyScale);
        Assert.Equal(0f, rope.Scaling.ExtrapolationFactor);
        Assert.Equal(5.0 / factor, Rotate(rope, 5, pair: 0).Angle, 5);
        Assert.Equal(1f, Rotate(rope, 5, pair: 0).Magnitude, 6);
        // The deepseek2 graph computes attn_factor_org = attn_factor · (1 + 0.1 ln s) whatever the scaling type.
        var mscale = 1 + (0.1 * Math.Log(factor));
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
    }

    [Fact]
    public void ScalingTypeNone_IgnoresTheFactor()
    {
        var (rope, scale) = Resolve(RopeScalingType.None, 8f, 0f);

        Assert.Null(rope.Scaling);
        Assert.Equal(1f / MathF.Sqrt(KeyLength), scale, 7);
    }

    [Fact]
    public void GoldenFiles_WithoutScalingKeys_ResolveToPlainNormRope()
    {
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var config = DeepSeek2Config.Read(new ModelSource(golden.Model));

        Assert.Equal(1f / MathF.Sqrt(24), config.AttentionScale, 7);
        Assert.Null(config.Rope.Scaling);
        Assert.Equal(RopeStyle.Normal, config.Rope.Style);
        Assert.Equal(8, config.Rope.Dimensions);
    }

    private static (Rope Rope, float Scale) Resolve(RopeScalingType type, float factor, float logMultiplier) =>
        new DeepSeekRopeScaling(type, factor, OriginalContext, logMultiplier, 1f).Resolve(RopeLength, Base, KeyLength);

    // Rotates the unit vector of one pair and reads back its angle and length.
    private static (double Angle, float Magnitude) Rotate(Rope rope, int position, int pair)
    {
        var values = new float[RopeLength];
        values[2 * pair] = 1f;
        rope.Apply(values, 1, RopeLength, position);
        var (x, y) = (values[2 * pair], values[(2 * pair) + 1]);
        return (Math.Atan2(y, x), MathF.Sqrt((x * x) + (y * y)));
    }
}
