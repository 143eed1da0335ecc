namespace ExpertScope.Kernels.Quant;

/// <summary>
/// The scale searches of ggml's K-quant reference quantizers (<c>make_qkx2_quants</c>, <c>make_qx_quants</c>),
/// with every float operation in ggml's order so that the chosen quants match ggml's bit for bit.
/// </summary>
internal static class KQuantFit
{
    /// <summary>
    /// ggml's <c>make_qkx2_quants</c> with squared error (<c>use_mad</c> false): fits x ≈ scale * L - min with
    /// L in 0..<paramref name="levelMax"/>, trying <paramref name="steps"/> + 1 candidate inverse scales.
    /// </summary>
    /// <returns>The scale; <paramref name="negatedMin"/> receives -min (non-negative).</returns>
    public static float ScaleAndMin(
        int levelMax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> levels, out float negatedMin,
        Span<byte> levelsTried, float rangeMin, float rangeDelta, int steps)
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
            diff *= diff;
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
                    diff *= diff;
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
}
