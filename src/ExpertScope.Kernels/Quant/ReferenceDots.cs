using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Line-by-line ports of ggml's generic <c>vec_dot</c> kernels for the types without a vectorized dot (they serve as
/// both the reference and the fast entry of <see cref="TypeKernels"/>).
/// </summary>
internal static unsafe class ReferenceDots
{
    /// <summary>ggml's <c>vec_dot_q4_1_q8_1</c>: sumf += (dx * dy) * sumi + mx * sy.</summary>
    public static float Q4_1(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ4_1>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_1>(activations);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            int sumi0 = 0;
            int sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi0 += (xb.Qs[j] & 0x0F) * yb.Qs[j];
                sumi1 += (xb.Qs[j] >> 4) * yb.Qs[j + 16];
            }

            int sumi = sumi0 + sumi1;
            sum += (ScalarFormats.HalfToSingle(xb.D) * ScalarFormats.HalfToSingle(yb.D)) * sumi
                + ScalarFormats.HalfToSingle(xb.M) * ScalarFormats.HalfToSingle(yb.S);
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_q5_0_q8_0</c>: sumf += (dx * dy) * sumi.</summary>
    public static float Q5_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ5_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            uint qh = xb.Qh;
            int sumi0 = 0;
            int sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int high0 = (int)(((qh & (1u << j)) >> j) << 4);
                int high1 = (int)((qh & (1u << (j + 16))) >> (j + 12));
                int x0 = ((xb.Qs[j] & 0x0F) | high0) - 16;
                int x1 = ((xb.Qs[j] >> 4) | high1) - 16;
                sumi0 += x0 * yb.Qs[j];
                sumi1 += x1 * yb.Qs[j + 16];
            }

            int sumi = sumi0 + sumi1;
            sum += (ScalarFormats.HalfToSingle(xb.D) * ScalarFormats.HalfToSingle(yb.D)) * sumi;
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_q5_1_q8_1</c>: sumf += (dx * dy) * sumi + mx * sy.</summary>
    public static float Q5_1(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ5_1>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_1>(activations);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            uint qh = xb.Qh;
            int sumi0 = 0;
            int sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int x0 = (xb.Qs[j] & 0xF) | (int)(((qh >> j) << 4) & 0x10);
                int x1 = (xb.Qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                sumi0 += x0 * yb.Qs[j];
                sumi1 += x1 * yb.Qs[j + 16];
            }

            int sumi = sumi0 + sumi1;
            sum += (ScalarFormats.HalfToSingle(xb.D) * ScalarFormats.HalfToSingle(yb.D)) * sumi
                + ScalarFormats.HalfToSingle(xb.M) * ScalarFormats.HalfToSingle(yb.S);
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_iq4_nl_q8_0</c>: sumf += (dy * dx) * sumi.</summary>
    public static float IQ4NL(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ4NL>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        var levels = GgmlTables.KValuesIq4nl;
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            float d = ScalarFormats.HalfToSingle(yb.D) * ScalarFormats.HalfToSingle(xb.D);
            int sumi1 = 0;
            int sumi2 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi1 += yb.Qs[j] * levels[xb.Qs[j] & 0xf];
                sumi2 += yb.Qs[j + 16] * levels[xb.Qs[j] >> 4];
            }

            sum += d * (sumi1 + sumi2);
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_mxfp4_q8_0</c>: sumf += (dy * 2^(e-128)) * sumi.</summary>
    public static float Mxfp4(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockMxfp4>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        var levels = GgmlTables.KValuesFp4;
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            float d = ScalarFormats.HalfToSingle(yb.D) * ScalarFormats.E8M0ToSingleHalf(xb.E);
            int sumi1 = 0;
            int sumi2 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi1 += yb.Qs[j] * levels[xb.Qs[j] & 0xf];
                sumi2 += yb.Qs[j + 16] * levels[xb.Qs[j] >> 4];
            }

            sum += d * (sumi1 + sumi2);
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_nvfp4_q8_0</c>: per group of 16, sumf += dy * dx * sumi (one NVFP4 block spans two Q8_0 blocks).</summary>
    public static float Nvfp4(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockNvfp4>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        var levels = GgmlTables.KValuesFp4;
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            for (int s = 0; s < 4; s++)
            {
                float d = ScalarFormats.UE4M3ToSingleHalf(xb.D[s]);
                ref readonly var yb = ref y[2 * ib + s / 2];
                int offset = (s % 2) * 16;
                float dy = ScalarFormats.HalfToSingle(yb.D);
                int sumLow = 0;
                int sumHigh = 0;
                for (int j = 0; j < 8; j++)
                {
                    byte packed = xb.Qs[s * 8 + j];
                    sumLow += yb.Qs[offset + j] * levels[packed & 0xf];
                    sumHigh += yb.Qs[offset + j + 8] * levels[packed >> 4];
                }

                sum += dy * d * (sumLow + sumHigh);
            }
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_q2_K_q8_K</c>: sumf += dall * isum - dmin * summs per block.</summary>
    public static float Q2K(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ2K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        float sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            int summs = 0;
            for (int j = 0; j < 16; j++)
            {
                summs += yb.BlockSums[j] * (xb.Scales[j] >> 4);
            }

            float dall = yb.D * ScalarFormats.HalfToSingle(xb.D);
            float dmin = yb.D * ScalarFormats.HalfToSingle(xb.DMin);
            int isum = 0;
            int scaleIndex = 0;
            int q8 = 0;
            for (int k = 0; k < 2; k++)
            {
                int q2 = 32 * k;
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int part = 0; part < 2; part++)
                    {
                        int d = xb.Scales[scaleIndex++] & 0xF;
                        int partial = 0;
                        for (int l = 16 * part; l < 16 * part + 16; l++)
                        {
                            partial += yb.Qs[q8 + l] * ((xb.Qs[q2 + l] >> shift) & 3);
                        }

                        isum += d * partial;
                    }

                    q8 += 32;
                }
            }

            sum += dall * isum - dmin * summs;
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_q3_K_q8_K</c>: eight int32 lane sums (lane = position mod 8) as in Q6_K.</summary>
    public static float Q3K(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ3K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        Span<sbyte> aux8 = stackalloc sbyte[256];
        Span<sbyte> scales = stackalloc sbyte[16];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            aux32.Clear();
            int a = 0;
            int highBit = 0;
            for (int half = 0; half < 2; half++)
            {
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int l = 0; l < 32; l++)
                    {
                        aux8[a + l] = (sbyte)(((xb.Qs[32 * half + l] >> shift) & 3) - 4 + 4 * ((xb.HMask[l] >> highBit) & 1));
                    }

                    a += 32;
                    highBit++;
                }
            }

            KQuants.UnpackQ3KScales(weights.Slice(i * sizeof(BlockQ3K) + 96, 12), scales);
            int position = 0;
            for (int j = 0; j < 16; j++)
            {
                int scale = scales[j] - 32;
                for (int group = 0; group < 2; group++)
                {
                    for (int l = 0; l < 8; l++)
                    {
                        aux32[l] += scale * (short)(yb.Qs[position + l] * aux8[position + l]);
                    }

                    position += 8;
                }
            }

            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
            {
                sums[l] += d * aux32[l];
            }
        }

        float sumf = 0;
        for (int l = 0; l < 8; l++)
        {
            sumf += sums[l];
        }

        return sumf;
    }

    /// <summary>ggml's <c>vec_dot_q5_K_q8_K</c>: as Q4_K with the fifth bit added.</summary>
    public static float Q5K(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ5K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        Span<sbyte> aux8 = stackalloc sbyte[256];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        float sumf = 0;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            var scalesAndMins = weights.Slice(i * sizeof(BlockQ5K) + 4, 12);
            aux32.Clear();
            for (int j = 0; j < 4; j++)
            {
                for (int l = 0; l < 32; l++)
                {
                    aux8[64 * j + l] = (sbyte)((xb.Qs[32 * j + l] & 0xF) + (((xb.Qh[l] >> (2 * j)) & 1) << 4));
                    aux8[64 * j + 32 + l] = (sbyte)((xb.Qs[32 * j + l] >> 4) + (((xb.Qh[l] >> (2 * j + 1)) & 1) << 4));
                }
            }

            int sumi = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi += yb.BlockSums[j] * KQuantScales.ScaleMin(j / 2, scalesAndMins).Min;
            }

            int position = 0;
            for (int j = 0; j < 8; j++)
            {
                int scale = KQuantScales.ScaleMin(j, scalesAndMins).Scale;
                for (int group = 0; group < 4; group++)
                {
                    for (int l = 0; l < 8; l++)
                    {
                        aux32[l] += scale * (short)(yb.Qs[position + l] * aux8[position + l]);
                    }

                    position += 8;
                }
            }

            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
            {
                sums[l] += d * aux32[l];
            }

            float dmin = ScalarFormats.HalfToSingle(xb.DMin) * yb.D;
            sumf -= dmin * sumi;
        }

        for (int l = 0; l < 8; l++)
        {
            sumf += sums[l];
        }

        return sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq4_xs_q8_K</c>: per sub-block of 32, sumf += (d4 * d8 * (scale - 32)) * sumi.</summary>
    public static float IQ4XS(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ4XS>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var levels = GgmlTables.KValuesIq4nl;
        float sum = 0;
        for (int ibl = 0; ibl < x.Length; ibl++)
        {
            ref readonly var xb = ref x[ibl];
            float d4d8 = ScalarFormats.HalfToSingle(xb.D) * y[ibl].D;
            var xq = weights.Slice(ibl * sizeof(BlockIQ4XS) + 8, 128);
            var yq = MemoryMarshal.Cast<byte, sbyte>(activations.Slice(ibl * sizeof(BlockQ8K) + sizeof(float), 256));
            int high = xb.ScalesHigh;
            for (int ib = 0; ib < 8; ib += 2)
            {
                int ls1 = (xb.ScalesLow[ib / 2] & 0xf) | ((high << 4) & 0x30);
                int ls2 = (xb.ScalesLow[ib / 2] >> 4) | ((high << 2) & 0x30);
                high >>= 4;
                float d1 = d4d8 * (ls1 - 32);
                float d2 = d4d8 * (ls2 - 32);
                sum += d1 * SubBlock(xq.Slice(16 * ib, 16), yq.Slice(32 * ib, 32), levels);
                sum += d2 * SubBlock(xq.Slice(16 * ib + 16, 16), yq.Slice(32 * ib + 32, 32), levels);
            }
        }

        return sum;

        static int SubBlock(ReadOnlySpan<byte> xq, ReadOnlySpan<sbyte> yq, ReadOnlySpan<sbyte> levels)
        {
            int sumi1 = 0;
            int sumi2 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi1 += yq[j] * levels[xq[j] & 0xf];
                sumi2 += yq[j + 16] * levels[xq[j] >> 4];
            }

            return sumi1 + sumi2;
        }
    }
}
