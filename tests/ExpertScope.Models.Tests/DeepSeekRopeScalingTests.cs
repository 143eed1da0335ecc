using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>
/// YaRN as llama.cpp applies it to deepseek2, checked against the published formulas (DeepSeek-V2/V3 configs,
/// the YaRN paper's mscale 0.1·m·ln(s)+1 and its correction range), since no golden model uses scaling.
/// </summary>
public class DeepSeekRopeScalingTests
{
    private const int KeyLength = 192;  // V2/V3: qk_nope 128 + qk_rope 64
    private const int RopeLength = 64;
    private const float Base = 10000f;

    [Fact]
    public void NoScaling_GivesPlainRopeAndInverseSqrtKeyLength()
    {
        var (rope, scale) = new DeepSeekRopeScaling(RopeScalingType.Linear, 0f, 4096, 0f, 1f).Resolve(RopeLength, Base, KeyLength);

        Assert.Equal(1f, rope.FrequencyScale);
        Assert.Equal(0f, rope.ExtrapolationFactor);
        Assert.Equal(1f, rope.AttentionFactor);
        Assert.Equal(1f / MathF.Sqrt(KeyLength), scale, 7);
    }

    [Fact]
    public void DeepSeekV3Yarn_MovesTheWholeMscaleIntoTheAttentionScale()
    {
        // DeepSeek-V3 config: factor 40, mscale = mscale_all_dim = 1; the converter stores 0.1 · mscale_all_dim.
        const float factor = 40f;
        var (rope, scale) = new DeepSeekRopeScaling(RopeScalingType.Yarn, factor, 4096, 0.1f, 1f).Resolve(RopeLength, Base, KeyLength);

        var mscale = 0.1 * 1.0 * Math.Log(factor) + 1.0;
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
        Assert.Equal(1f / factor, rope.FrequencyScale);
        Assert.Equal(1f, rope.ExtrapolationFactor);
        // ggml multiplies cos/sin by attn_factor · (1 + 0.1 ln s); llama.cpp sets attn_factor so that is 1.
        Assert.Equal(1f, RotationMagnitude(rope, position: 123), 6);
    }

    [Fact]
    public void DeepSeekV2LiteYarn_UsesMscaleAllDimInTheAttentionScale()
    {
        // DeepSeek-V2-Lite config: factor 40, mscale = mscale_all_dim = 0.707.
        const float factor = 40f;
        const double mscaleAllDim = 0.707;
        var (rope, scale) = new DeepSeekRopeScaling(RopeScalingType.Yarn, factor, 4096, (float)(0.1 * mscaleAllDim), 1f)
            .Resolve(RopeLength, Base, KeyLength);

        var mscale = 0.1 * mscaleAllDim * Math.Log(factor) + 1.0;
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
        Assert.Equal(1f, RotationMagnitude(rope, position: 7), 6);
    }

    [Fact]
    public void YarnWithoutLogMultiplier_KeepsTheMagnitudeOnTheRotation()
    {
        // Plain YaRN: cos/sin carry mscale = 0.1 ln s + 1 and the attention scale gets it squared as well,
        // exactly as the deepseek2 graph's attn_factor_org / kq_scale arithmetic works out.
        const float factor = 4f;
        var (rope, scale) = new DeepSeekRopeScaling(RopeScalingType.Yarn, factor, 4096, 0f, 1f).Resolve(RopeLength, Base, KeyLength);

        var mscale = 0.1 * Math.Log(factor) + 1.0;
        Assert.Equal((float)mscale, RotationMagnitude(rope, position: 5), 5);
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
    }

    [Fact]
    public void CorrectionRange_MatchesTheYarnFormula()
    {
        var (rope, _) = new DeepSeekRopeScaling(RopeScalingType.Yarn, 40f, 4096, 0.1f, 1f).Resolve(RopeLength, Base, KeyLength);

        // dim · ln(L / (β · 2π)) / (2 ln base), floored for β = 32, ceiled for β = 1.
        static double Dimension(double beta) => RopeLength * Math.Log(4096 / (beta * 2 * Math.PI)) / (2 * Math.Log(Base));
        var (low, high) = rope.CorrectionDimensions();
        Assert.Equal(Math.Floor(Dimension(32)), low);
        Assert.Equal(Math.Ceiling(Dimension(1)), high);
        Assert.Equal(10f, low);
        Assert.Equal(23f, high);
    }

    [Fact]
    public void YarnAngles_ExtrapolateFastPairsAndInterpolateSlowPairs()
    {
        const float factor = 40f;
        const int position = 3;
        var (rope, _) = new DeepSeekRopeScaling(RopeScalingType.Yarn, factor, 4096, 0.1f, 1f).Resolve(RopeLength, Base, KeyLength);
        var (low, high) = rope.CorrectionDimensions();

        // Pair 0 (fastest) lies below the range: the original angle. The last pair lies above: angle / factor.
        var first = Angle(rope, position, pair: 0);
        Assert.Equal(position, first, 4);
        var lastPair = (RopeLength / 2) - 1;
        Assert.True(lastPair > high);
        var unscaled = position * Math.Pow(Base, -2.0 * lastPair / RopeLength);
        Assert.Equal(unscaled / factor, Angle(rope, position, lastPair), 6);

        // In between, a linear ramp mixes the two.
        var middle = (int)((low + high) / 2);
        var ramp = 1 - Math.Clamp((middle - low) / (high - low), 0, 1);
        var theta = position * Math.Pow(Base, -2.0 * middle / RopeLength);
        Assert.Equal((theta / factor * (1 - ramp)) + (theta * ramp), Angle(rope, position, middle), 4);
    }

    [Fact]
    public void LinearScaling_DividesPositionsAndInflatesTheScaleAsLlamaCppDoes()
    {
        const float factor = 2f;
        var (rope, scale) = new DeepSeekRopeScaling(RopeScalingType.Linear, factor, 4096, 0f, 1f).Resolve(RopeLength, Base, KeyLength);

        Assert.Equal(0.5f, rope.FrequencyScale);
        Assert.Equal(0f, rope.ExtrapolationFactor);
        Assert.Equal(5f / factor, Angle(rope, 5, pair: 0), 5);
        // The deepseek2 graph computes attn_factor_org = attn_factor · (1 + 0.1 ln s) whatever the scaling type.
        var mscale = 1 + (0.1 * Math.Log(factor));
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(KeyLength)), scale, 6);
    }

    [Fact]
    public void Gguf_WithoutScalingKeys_ResolvesToPlainRope()
    {
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var config = DeepSeek2Config.FromGguf(golden.Model);

        Assert.Equal(1f / MathF.Sqrt(24), config.AttentionScale, 7);
        Assert.Equal(1f, config.Rope.FrequencyScale);
        Assert.Equal(0f, config.Rope.ExtrapolationFactor);
        Assert.False(config.Rope.Neox);
    }

    private static float RotationMagnitude(RotaryEmbedding rope, int position)
    {
        var values = new float[rope.Dimensions];
        values[0] = 1f;
        var table = new float[rope.Dimensions];
        rope.Fill(position, table);
        rope.Apply(table, values);
        return MathF.Sqrt((values[0] * values[0]) + (values[1] * values[1]));
    }

    private static double Angle(RotaryEmbedding rope, int position, int pair)
    {
        var values = new float[rope.Dimensions];
        values[2 * pair] = 1f;
        var table = new float[rope.Dimensions];
        rope.Fill(position, table);
        rope.Apply(table, values);
        return Math.Atan2(values[(2 * pair) + 1], values[2 * pair]);
    }
}
