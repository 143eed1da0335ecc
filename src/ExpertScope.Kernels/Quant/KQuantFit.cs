namespace ExpertScope.Kernels.Quant;

/// <summary>
/// The scale searches of ggml's K-quant reference quantizers (<c>make_qkx2_quants</c>, <c>make_qx_quants</c>),
/// with every float operation in ggml's order so that the chosen quants match ggml's bit for bit.
/// </summary>
internal static class KQuantFit
{
    /// <summary>
    /// ggml's <c>make_qkx2_quants</c>: fits x ≈ scale * L - min with L in 0..<paramref name="levelMax"/>, trying
    /// <paramref name="steps"/> + 1 candidate inverse scales, by weighted squared error (or absolute error when
    /// <paramref name="absoluteError"/>, ggml's <c>use_mad</c>).
    /// </summary>
    /// <returns>The scale; <paramref name="negatedMin"/> receives -min (non-negative).</returns>
    public static float ScaleAndMin(
        int levelMax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> levels, out float negatedMin,
        Span<byte> levelsTried, float rangeMin, float rangeDelta, int steps, bool absoluteError = false)
    {
        int n = x.Length;
        float min = x[0];
        float max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min)
            {
                min = x[i];
            }

            if (x[i] > max)
            {
                max = x[i];
            }

            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }

        if (min > 0)
        {
            min = 0;
        }

        if (max == min)
        {
            levels.Slice(0, n).Clear();
            negatedMin = -min;
            return 0f;
        }

        float inverseScale = levelMax / (max - min);
        float scale = 1 / inverseScale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = KQuantScales.NearestInt(inverseScale * (x[i] - min));
            levels[i] = (byte)Math.Max(0, Math.Min(levelMax, l));
            float diff = scale * levels[i] + min - x[i];
            diff = absoluteError ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }

        if (steps < 1)
        {
            negatedMin = -min;
            return scale;
        }

        for (int step = 0; step <= steps; step++)
        {
            inverseScale = (rangeMin + rangeDelta * step + levelMax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = KQuantScales.NearestInt(inverseScale * (x[i] - min));
                l = Math.Max(0, Math.Min(levelMax, l));
                levelsTried[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }

            float determinant = sumW * sumL2 - sumL * sumL;
            if (determinant > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / determinant;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / determinant;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }

                float error = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * levelsTried[i] + thisMin - x[i];
                    diff = absoluteError ? MathF.Abs(diff) : diff * diff;
                    error += weights[i] * diff;
                }

                if (error < bestError)
                {
                    levelsTried.Slice(0, n).CopyTo(levels);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }

        negatedMin = -min;
        return scale;
    }

    /// <summary>
    /// ggml's <c>make_qx_quants</c> with <c>rmse_type</c> 1 and no importance weights (weights x²): symmetric
    /// levels L in -<paramref name="levelMax"/>..<paramref name="levelMax"/>-1, stored as L + levelMax, trying 18
    /// perturbed scales around -levelMax / max.
    /// </summary>
    public static float SymmetricScale(int levelMax, ReadOnlySpan<float> x, Span<sbyte> levels)
    {
        int n = x.Length;
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax)
            {
                amax = ax;
                max = x[i];
            }
        }

        if (amax < 1e-15f)
        {
            levels.Slice(0, n).Clear();
            return 0f;
        }

        float inverseScale = -levelMax / max;
        float sumLX = 0;
        float sumL2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = KQuantScales.NearestInt(inverseScale * x[i]);
            l = Math.Max(-levelMax, Math.Min(levelMax - 1, l));
            levels[i] = (sbyte)(l + levelMax);
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }

        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0)
            {
                continue;
            }

            inverseScale = -(levelMax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = KQuantScales.NearestInt(inverseScale * x[i]);
                l = Math.Max(-levelMax, Math.Min(levelMax - 1, l));
                float w = x[i] * x[i];
                sumLX += w * x[i] * l;
                sumL2 += w * l * l;
            }

            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < n; i++)
                {
                    int l = KQuantScales.NearestInt(inverseScale * x[i]);
                    levels[i] = (sbyte)(levelMax + Math.Max(-levelMax, Math.Min(levelMax - 1, l)));
                }

                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }

        return scale;
    }

    /// <summary>
    /// ggml's <c>make_q3_quants</c> with <c>do_rmse</c>: start from L = round(-levelMax / max * x), then up to five
    /// passes that move single levels when that improves the weighted (x²) fit; levels stored as L + levelMax.
    /// </summary>
    public static float Q3Scale(int levelMax, ReadOnlySpan<float> x, Span<sbyte> levels)
    {
        int n = x.Length;
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax)
            {
                amax = ax;
                max = x[i];
            }
        }

        if (amax < 1e-15f)
        {
            levels.Slice(0, n).Clear();
            return 0f;
        }

        float inverseScale = -levelMax / max;
        float sumLX = 0;
        float sumL2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = KQuantScales.NearestInt(inverseScale * x[i]);
            l = Math.Max(-levelMax, Math.Min(levelMax - 1, l));
            levels[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }

        for (int pass = 0; pass < 5; pass++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumLX - w * x[i] * levels[i];
                if (slx > 0)
                {
                    float sl2 = sumL2 - w * levels[i] * levels[i];
                    int newL = KQuantScales.NearestInt(x[i] * sl2 / slx);
                    newL = Math.Max(-levelMax, Math.Min(levelMax - 1, newL));
                    if (newL != levels[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2)
                        {
                            levels[i] = (sbyte)newL;
                            sumLX = slx;
                            sumL2 = sl2;
                            changed++;
                        }
                    }
                }
            }

            if (changed == 0)
            {
                break;
            }
        }

        for (int i = 0; i < n; i++)
        {
            levels[i] += (sbyte)levelMax;
        }

        return sumL2 > 0f ? sumLX / sumL2 : 0f;
    }

    /// <summary>
    /// The scale and min packing shared by Q4_K and Q5_K: eight scales and mins rounded to 6 bits against their
    /// maxima (<paramref name="scale"/> and <paramref name="min"/> receive the float16 super-block factors).
    /// </summary>
    public static void PackScalesAndMins(ReadOnlySpan<float> scales, ReadOnlySpan<float> mins, Span<byte> packed, out ushort scale, out ushort min)
    {
        float maxScale = 0f;
        float maxMin = 0f;
        for (int j = 0; j < 8; j++)
        {
            if (scales[j] > maxScale)
            {
                maxScale = scales[j];
            }

            if (mins[j] > maxMin)
            {
                maxMin = mins[j];
            }
        }

        float inverseScale = maxScale > 0 ? 63f / maxScale : 0f;
        float inverseMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < 8; j++)
        {
            // ggml stores nearest_int into a uint8_t before clamping, so the value wraps modulo 256 first.
            byte ls = Math.Min((byte)63, (byte)KQuantScales.NearestInt(inverseScale * scales[j]));
            byte lm = Math.Min((byte)63, (byte)KQuantScales.NearestInt(inverseMin * mins[j]));
            if (j < 4)
            {
                packed[j] = ls;
                packed[j + 4] = lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }

        scale = ScalarFormats.SingleToHalf(maxScale / 63f);
        min = ScalarFormats.SingleToHalf(maxMin / 63f);
    }

    /// <summary>The weights of ggml's Q4_K / Q5_K sub-block fit: rms(x) + |x[l]| over 32 values.</summary>
    public static void SubBlockWeights(ReadOnlySpan<float> x, Span<float> weights)
    {
        float sumX2 = 0f;
        for (int l = 0; l < x.Length; l++)
        {
            sumX2 += x[l] * x[l];
        }

        float averageX = MathF.Sqrt(sumX2 / x.Length);
        for (int l = 0; l < x.Length; l++)
        {
            weights[l] = averageX + MathF.Abs(x[l]);
        }
    }
}
