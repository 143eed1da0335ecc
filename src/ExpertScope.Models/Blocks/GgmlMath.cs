namespace ExpertScope.Models.Blocks;

/// <summary>
/// Elementwise functions computed the way the llama.cpp build behind the golden data computes them (x86-64
/// baseline: SSE2, no FMA, no wider SIMD), so results agree bit for bit. Softmax and SwiGLU there evaluate exp
/// with ggml's vectorised polynomial (four lanes at a time, <c>expf</c> from libm for the leftover lanes); the
/// polynomial differs from a correctly rounded exp in the last bit now and then, which is enough to flip a
/// float16 rounding further on.
/// </summary>
internal static class GgmlMath
{
    private const int Lanes = 4;

    // The polynomial's constants, exactly representable floats (hex floats in the comments).
    private const float Shift = 12582912f;                  // 0x1.8p23: adding it rounds to an integer
    private const float Log2E = 1.4426950216293335f;        // 0x1.715476p+0
    private const float Ln2High = 0.693145751953125f;       // 0x1.62e4p-1
    private const float Ln2Low = 1.428606765330187e-06f;    // 0x1.7f7d1cp-20
    private const float C1 = 0.9999994039535522f;           // 0x1.ffffecp-1
    private const float C2 = 0.4999912679195404f;           // 0x1.fffdb6p-2
    private const float C3 = 0.16668395698070526f;          // 0x1.555e66p-3
    private const float C4 = 0.04189976677298546f;          // 0x1.573e2ep-5
    private const float C5 = 0.008247390389442444f;         // 0x1.0e4020p-7

    /// <summary>
    /// ggml's SSE2 <c>v_expf</c> for one lane: e^x = 2^n · (1 + p(b)) with n = round(x / ln 2) and
    /// b = x − n·ln 2 (ln 2 split in two parts), a degree-5 polynomial p, and a scaled path when |n| > 126
    /// (overflow to ∞ above ≈ 88.38, flush to 0 below ≈ −103.97). Multiply and add are rounded separately.
    /// </summary>
    /// <remarks>ggml switches a whole vector to the scaled path when any lane needs it; lanes that do not need it
    /// get k·j + k there too, the same value as on the fast path, so lanes can be evaluated one by one.</remarks>
    public static float VectorExp(float x)
    {
        var z = (x * Log2E) + Shift;
        var n = z - Shift;
        var b = x - (n * Ln2High);
        b -= n * Ln2Low;
        var e = BitConverter.SingleToUInt32Bits(z) << 23;
        var k = BitConverter.UInt32BitsToSingle(e + BitConverter.SingleToUInt32Bits(1f));
        var large = MathF.Abs(n) > 126;
        var u = b * b;
        var j = ((((C5 * b) + C4) * u) + ((C3 * b) + C2)) * u;
        j += C1 * b;
        if (!large)
        {
            return (j * k) + k;
        }

        var g = n <= 0 ? 0x82000000u : 0u;
        var s1 = BitConverter.UInt32BitsToSingle(g + 0x7f000000u);
        var s2 = BitConverter.UInt32BitsToSingle(e - g);
        if (MathF.Abs(n) > 192)
        {
            return s1 * s1;
        }

        return ((s2 * j) + s2) * s1;
    }

    /// <summary>
    /// ggml's <c>vec_soft_max_f32</c>: y[i] = e^(x[i] − max), returning Σ y in double. Whole 4-vectors use
    /// <see cref="VectorExp"/> and add their lanes as (y0 + y1) + (y2 + y3) in float; the rest use libm exp.
    /// </summary>
    public static double ExpMinusMax(ReadOnlySpan<float> x, float max, Span<float> y)
    {
        double sum = 0;
        var i = 0;
        for (; i + Lanes <= x.Length; i += Lanes)
        {
            for (var l = 0; l < Lanes; l++)
            {
                y[i + l] = VectorExp(x[i + l] - max);
            }

            sum += (y[i] + y[i + 1]) + (y[i + 2] + y[i + 3]);
        }

        for (; i < x.Length; i++)
        {
            y[i] = MathF.Exp(x[i] - max);
            sum += y[i];
        }

        return sum;
    }

    /// <summary>ggml's <c>soft_max</c> of one row in place (scale 1, no mask): exp(x − max) · (1 / Σ).</summary>
    public static void Softmax(Span<float> values)
    {
        var max = float.NegativeInfinity;
        foreach (var v in values)
        {
            max = MathF.Max(max, v);
        }

        var sum = ExpMinusMax(values, max, values);
        var inverse = (float)(1.0 / sum);
        for (var i = 0; i < values.Length; i++)
        {
            values[i] *= inverse;
        }
    }

    /// <summary>
    /// ggml's <c>vec_swiglu_f32</c> in place: gate[i] = silu(gate[i]) · up[i] with silu(x) = x / (1 + e^−x),
    /// e^−x from <see cref="VectorExp"/> for whole 4-vectors and from libm for the rest.
    /// </summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        var i = 0;
        for (; i + Lanes <= gate.Length; i += Lanes)
        {
            for (var l = 0; l < Lanes; l++)
            {
                var x = gate[i + l];
                gate[i + l] = x / (1f + VectorExp(0f - x)) * up[i + l];
            }
        }

        for (; i < gate.Length; i++)
        {
            var x = gate[i];
            gate[i] = x / (1f + MathF.Exp(-x)) * up[i];
        }
    }
}
