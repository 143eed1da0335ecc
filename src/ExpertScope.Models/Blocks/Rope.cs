namespace ExpertScope.Models.Blocks;

/// <summary>How rotary embeddings pair up dimensions (GGUF/llama.cpp rope type).</summary>
public enum RopeStyle
{
    /// <summary>Type 0 (NORM): rotates adjacent pairs <c>(x[2i], x[2i+1])</c>; Llama/Mixtral GGUF layout, DeepSeek-V2/V3 (rope slice).</summary>
    Normal = 0,

    /// <summary>Type 2 (NEOX): rotates <c>(x[i], x[i + d/2])</c>; Qwen, OLMoE.</summary>
    Neox = 2,
}

/// <summary>
/// YaRN context-extension settings (llama.cpp's <c>rope_yarn</c>): frequency interpolation blended with
/// extrapolation by a ramp over dimension pairs, plus an attention magnitude factor.
/// </summary>
/// <param name="FrequencyScale">1 / scaling factor (GGUF <c>rope.scaling.factor</c>).</param>
/// <param name="ExtrapolationFactor">Ramp weight (1 for YaRN, 0 for plain linear scaling).</param>
/// <param name="AttentionFactor">Magnitude multiplier applied to cos and sin.</param>
/// <param name="BetaFast">YaRN beta_fast (32 by default).</param>
/// <param name="BetaSlow">YaRN beta_slow (1 by default).</param>
/// <param name="OriginalContextLength">Training context (GGUF <c>rope.scaling.original_context_length</c>).</param>
public sealed record RopeScaling(
    float FrequencyScale,
    float ExtrapolationFactor,
    float AttentionFactor,
    float BetaFast,
    float BetaSlow,
    int OriginalContextLength);

/// <summary>
/// Rotary position embedding over the first <see cref="Dimensions"/> values of each head; later values pass
/// through. Angles follow ggml: <c>theta_i = pos * base^(-2i/d)</c> built by repeated float multiplication, divided
/// by a per-pair frequency factor where the model has one (LongRoPE's <c>rope_factors_long/short</c>).
/// </summary>
public sealed class Rope
{
    private readonly float[]? _frequencyFactors;
    private readonly float _thetaScale;
    private readonly float _low;
    private readonly float _high;

    /// <summary>Creates the rotation.</summary>
    /// <param name="dimensions">Rotated dimensions per head (GGUF <c>rope.dimension_count</c>, default head size).</param>
    /// <param name="frequencyBase">GGUF <c>rope.freq_base</c>.</param>
    /// <param name="style">Pairing of dimensions.</param>
    /// <param name="scaling">YaRN / linear scaling, or null for none.</param>
    /// <param name="frequencyFactors">One divisor per rotated pair (ggml's <c>freq_factors</c>, length dimensions / 2); empty for none.</param>
    public Rope(int dimensions, float frequencyBase, RopeStyle style, RopeScaling? scaling = null, ReadOnlySpan<float> frequencyFactors = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 2);
        if (!frequencyFactors.IsEmpty && frequencyFactors.Length != dimensions / 2)
        {
            throw new ArgumentException($"{frequencyFactors.Length} frequency factors for {dimensions / 2} rotated pairs.", nameof(frequencyFactors));
        }

        _frequencyFactors = frequencyFactors.IsEmpty ? null : frequencyFactors.ToArray();
        Dimensions = dimensions;
        FrequencyBase = frequencyBase;
        Style = style;
        Scaling = scaling;
        _thetaScale = MathF.Pow(frequencyBase, -2.0f / dimensions);
        if (scaling is not null)
        {
            // Dimension pairs below _low keep extrapolated angles, above _high fully interpolated ones.
            _low = MathF.Max(0, MathF.Floor(CorrectionDimension(scaling.BetaFast)));
            _high = MathF.Min(dimensions - 1, MathF.Ceiling(CorrectionDimension(scaling.BetaSlow)));
        }
    }

    /// <summary>Rotated dimensions per head.</summary>
    public int Dimensions { get; }

    /// <summary>Frequency base.</summary>
    public float FrequencyBase { get; }

    /// <summary>Dimension pairing.</summary>
    public RopeStyle Style { get; }

    /// <summary>Context scaling, or null.</summary>
    public RopeScaling? Scaling { get; }

    /// <summary>The per-pair frequency divisors, or null.</summary>
    public IReadOnlyList<float>? FrequencyFactors => _frequencyFactors;

    /// <summary>Rotates every head of one token in place.</summary>
    /// <param name="values">The token's heads, <c>[headCount, headStride]</c>.</param>
    /// <param name="headCount">Number of heads.</param>
    /// <param name="headStride">Values per head (at least <see cref="Dimensions"/>); the first <see cref="Dimensions"/> rotate.</param>
    /// <param name="position">The token's position.</param>
    public void Apply(Span<float> values, int headCount, int headStride, int position)
    {
        int half = Dimensions / 2;
        Span<float> cos = half <= 256 ? stackalloc float[half] : new float[half];
        Span<float> sin = half <= 256 ? stackalloc float[half] : new float[half];
        Angles(position, cos, sin);
        for (int h = 0; h < headCount; h++)
        {
            var head = values.Slice(h * headStride, Dimensions);
            for (int i = 0; i < half; i++)
            {
                int a = Style == RopeStyle.Normal ? 2 * i : i;
                int b = Style == RopeStyle.Normal ? 2 * i + 1 : i + half;
                float x0 = head[a];
                float x1 = head[b];
                head[a] = x0 * cos[i] - x1 * sin[i];
                head[b] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }

    private void Angles(int position, Span<float> cos, Span<float> sin)
    {
        float baseTheta = position;
        for (int i = 0; i < cos.Length; i++)
        {
            // ggml divides the angle by the pair's factor before any scaling; the running theta stays undivided.
            float extrapolated = _frequencyFactors is null ? baseTheta : baseTheta / _frequencyFactors[i];
            float angle = extrapolated;
            float magnitude = 1.0f;
            if (Scaling is { } s)
            {
                float interpolated = s.FrequencyScale * extrapolated;
                angle = interpolated;
                if (s.ExtrapolationFactor != 0.0f)
                {
                    float ramp = (2 * i / 2.0f - _low) / MathF.Max(0.001f, _high - _low);
                    float mix = (1 - MathF.Min(1, MathF.Max(0, ramp))) * s.ExtrapolationFactor;
                    angle = interpolated * (1 - mix) + extrapolated * mix;
                    magnitude *= 1.0f + 0.1f * MathF.Log(1.0f / s.FrequencyScale);
                }

                magnitude *= s.AttentionFactor;
            }

            cos[i] = MathF.Cos(angle) * magnitude;
            sin[i] = MathF.Sin(angle) * magnitude;
            baseTheta *= _thetaScale;
        }
    }

    private float CorrectionDimension(float rotations) =>
        Dimensions * MathF.Log(Scaling!.OriginalContextLength / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(FrequencyBase));
}
