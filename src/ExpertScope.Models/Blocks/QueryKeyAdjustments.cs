namespace ExpertScope.Models.Blocks;

/// <summary>
/// Llama 4's attention temperature tuning (llama.cpp's <c>llm_graph_input_attn_temp</c>): on layers without RoPE the
/// queries of position p are multiplied by <c>log(floor((p + Offset) / FloorScale) + 1) · Scale + 1</c>, so attention
/// sharpens slowly with distance into a long context. The factor is exactly 1 for positions below
/// <c>FloorScale - Offset</c>.
/// </summary>
/// <param name="FloorScale">Positions per step (llama.cpp's <c>n_attn_temp_floor_scale</c>; 8192 for Llama 4).</param>
/// <param name="Scale">Growth per doubling of the step count (<c>f_attn_temp_scale</c>; 0.1).</param>
/// <param name="Offset">Added to the position first (<c>f_attn_temp_offset</c>; 1).</param>
public sealed record AttentionTemperature(int FloorScale, float Scale, float Offset)
{
    /// <summary>The query multiplier at <paramref name="position"/>, with llama.cpp's float/double steps.</summary>
    public float Factor(int position)
    {
        float steps = MathF.Floor(((float)position + Offset) / FloorScale);
        return (float)(Math.Log(steps + 1.0) * Scale + 1.0);
    }
}

/// <summary>
/// Per-layer changes to queries and keys around RoPE (Llama 4, llama.cpp <c>models/llama4.cpp</c>): layers that skip
/// RoPE (and may scale their queries by an <see cref="AttentionTemperature"/> instead), and a weightless RMS norm of
/// every query and key head after RoPE (Hugging Face's <c>Llama4TextL2Norm</c>, which llama.cpp computes as
/// <c>ggml_rms_norm</c>). Null on <see cref="AttentionOptions"/> means plain RoPE.
/// </summary>
public sealed class QueryKeyAdjustments
{
    private readonly RmsNorm? _headNorm;

    /// <summary>Creates the adjustments of one layer.</summary>
    /// <param name="skipRope">True for a layer without rotary positions.</param>
    /// <param name="temperature">Query temperature on a layer without RoPE, or null.</param>
    /// <param name="headNormEpsilon">Epsilon of the weightless per-head RMS norm after RoPE, or null for none.</param>
    /// <param name="headDimension">Values per head (the norm's width).</param>
    public QueryKeyAdjustments(bool skipRope, AttentionTemperature? temperature, float? headNormEpsilon, int headDimension)
    {
        if (temperature is not null && !skipRope)
        {
            throw new ArgumentException("Attention temperature applies only to layers without RoPE.", nameof(temperature));
        }

        SkipRope = skipRope;
        Temperature = temperature;
        if (headNormEpsilon is { } epsilon)
        {
            var ones = new float[headDimension];
            Array.Fill(ones, 1.0f);
            _headNorm = new RmsNorm(ones, epsilon);
        }
    }

    /// <summary>True for a layer without rotary positions.</summary>
    public bool SkipRope { get; }

    /// <summary>The query temperature, or null.</summary>
    public AttentionTemperature? Temperature { get; }

    /// <summary>True when queries and keys are RMS-normed per head after RoPE.</summary>
    public bool NormsHeads => _headNorm is not null;

    /// <summary>Positions one token's query and key heads in place: RoPE or temperature, then the head norm.</summary>
    /// <param name="rope">The layer's rotary embedding (unused when <see cref="SkipRope"/>).</param>
    /// <param name="query">The token's query heads <c>[H, D]</c>.</param>
    /// <param name="key">The token's key heads <c>[Hkv, D]</c>.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key/value heads.</param>
    /// <param name="dimension">Values per head.</param>
    /// <param name="position">The token's position.</param>
    public void Apply(Rope rope, Span<float> query, Span<float> key, int heads, int kvHeads, int dimension, int position)
    {
        ArgumentNullException.ThrowIfNull(rope);
        if (!SkipRope)
        {
            rope.Apply(query, heads, dimension, position);
            rope.Apply(key, kvHeads, dimension, position);
        }
        else if (Temperature is { } temperature)
        {
            float factor = temperature.Factor(position);
            for (int i = 0; i < query.Length; i++)
            {
                query[i] *= factor;
            }
        }

        if (_headNorm is not null)
        {
            _headNorm.Apply(query, query);
            _headNorm.Apply(key, key);
        }
    }
}
