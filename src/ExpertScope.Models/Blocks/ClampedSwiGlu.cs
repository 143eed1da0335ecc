namespace ExpertScope.Models.Blocks;

/// <summary>
/// gpt-oss's clamped SwiGLU (ggml's <c>swiglu_oai</c>; llama.cpp's <c>LLM_FFN_SWIGLU_OAI_MOE</c> with α = 1.702 and
/// limit 7): <c>x = min(gate, limit)</c>, <c>y = clamp(up, −limit, limit)</c>, <c>out = x · σ(α·x) · (y + 1)</c>, the
/// sigmoid formed as <c>x / (1 + expf(α·(−x)))</c> in float, as ggml's CPU kernel does.
/// </summary>
/// <param name="Alpha">Sigmoid sharpness α.</param>
/// <param name="Limit">Clamp on the gate (above) and on up (both sides).</param>
public sealed record ClampedSwiGlu(float Alpha, float Limit)
{
    /// <summary>The constants llama.cpp's <c>build_moe_ffn</c> uses for gpt-oss.</summary>
    public static ClampedSwiGlu GptOss { get; } = new(1.702f, 7.0f);

    /// <summary><c>gate[i] = swiglu_oai(gate[i], up[i])</c> in place.</summary>
    public void Apply(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float x = MathF.Min(gate[i], Limit);
            float y = Math.Clamp(up[i], -Limit, Limit);
            float gated = x / (1.0f + MathF.Exp(Alpha * -x));
            gate[i] = gated * (y + 1.0f);
        }
    }
}
