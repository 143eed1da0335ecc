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
            sum += d * LevelSum(weights.Slice(ib * sizeof(BlockIQ4NL) + sizeof(ushort), 16), Q8_0Quants(activations, ib), levels);
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
            sum += d * LevelSum(weights.Slice(ib * sizeof(BlockMxfp4) + sizeof(byte), 16), Q8_0Quants(activations, ib), levels);
        }

        return sum;
    }

    /// <summary>
    /// The integer sum of a 4-bit codebook block (IQ4_NL, MXFP4) against a Q8_0 block: low nibbles meet the first 16
    /// activations, high nibbles the last 16, each nibble looked up in <paramref name="levels"/>.
    /// </summary>
    private static int LevelSum(ReadOnlySpan<byte> packed, ReadOnlySpan<sbyte> activations, ReadOnlySpan<sbyte> levels)
    {
        int sumi1 = 0;
        int sumi2 = 0;
        for (int j = 0; j < 16; j++)
        {
            sumi1 += activations[j] * levels[packed[j] & 0xf];
            sumi2 += activations[j + 16] * levels[packed[j] >> 4];
        }

        return sumi1 + sumi2;
    }

    /// <summary>The 32 quants of Q8_0 block <paramref name="block"/> of an activation row.</summary>
    private static ReadOnlySpan<sbyte> Q8_0Quants(ReadOnlySpan<byte> activations, int block) =>
        MemoryMarshal.Cast<byte, sbyte>(activations.Slice(block * sizeof(BlockQ8_0) + sizeof(ushort), BlockQ8_0.Size));

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

    /// <summary>ggml's <c>vec_dot_q1_0_q8_0</c>: one Q1_0 block meets four Q8_0 blocks; sumi += dy * ±sum, sumf += dx * sumi.</summary>
    public static float Q1_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ1_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        float sum = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            float d0 = ScalarFormats.HalfToSingle(xb.D);
            float sumi = 0f;
            for (int k = 0; k < 4; k++)
            {
                ref readonly var yb = ref y[4 * i + k];
                float d1 = ScalarFormats.HalfToSingle(yb.D);
                int blockSum = 0;
                for (int j = 0; j < 32; j++)
                {
                    // +q where the bit is set, -q where it is clear (2 * bit - 1, no branch).
                    int bit = (xb.Qs[4 * k + j / 8] >> (j % 8)) & 1;
                    blockSum += (2 * bit - 1) * yb.Qs[j];
                }

                sumi += d1 * blockSum;
            }

            sum += d0 * sumi;
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_q2_0_q8_0</c>: one Q2_0 block meets two Q8_0 blocks; sumi += dy * sum, sumf += dx * sumi.</summary>
    public static float Q2_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ2_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        float sum = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            float d0 = ScalarFormats.HalfToSingle(xb.D);
            float sumi = 0f;
            for (int k = 0; k < 2; k++)
            {
                ref readonly var yb = ref y[2 * i + k];
                float d1 = ScalarFormats.HalfToSingle(yb.D);
                int blockSum = 0;
                for (int j = 0; j < 32; j++)
                {
                    int q = (xb.Qs[8 * k + j / 4] >> (2 * (j % 4))) & 3;
                    blockSum += (q - 1) * yb.Qs[j];
                }

                sumi += d1 * blockSum;
            }

            sum += d0 * sumi;
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_tq1_0_q8_K</c>: sumf += sum * (dx * dy).</summary>
    public static float TQ1_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        ReadOnlySpan<byte> powersOfThree = [1, 3, 9, 27, 81, 243];
        var x = MemoryMarshal.Cast<byte, BlockTQ1_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            int sum = 0;
            for (int l = 0; l < 5; l++)
            {
                for (int m = 0; m < 32; m++)
                {
                    sum += (Digit(xb.Qs[m], powersOfThree[l]) - 1) * yb.Qs[l * 32 + m];
                }
            }

            for (int l = 0; l < 5; l++)
            {
                for (int m = 0; m < 16; m++)
                {
                    sum += (Digit(xb.Qs[32 + m], powersOfThree[l]) - 1) * yb.Qs[160 + l * 16 + m];
                }
            }

            for (int l = 0; l < 4; l++)
            {
                for (int j = 0; j < 4; j++)
                {
                    sum += (Digit(xb.Qh[j], powersOfThree[l]) - 1) * yb.Qs[240 + l * 4 + j];
                }
            }

            sumf += (float)sum * (ScalarFormats.HalfToSingle(xb.D) * yb.D);
        }

        return sumf;

        static int Digit(byte packed, byte power) => ((byte)(packed * power) * 3) >> 8;
    }

    /// <summary>ggml's <c>vec_dot_tq2_0_q8_K</c>: sumf += sum * (dy * dx).</summary>
    public static float TQ2_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockTQ2_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            int sum = 0;
            for (int j = 0; j < 64; j += 32)
            {
                for (int l = 0; l < 4; l++)
                {
                    for (int k = 0; k < 32; k++)
                    {
                        sum += yb.Qs[j * 4 + l * 32 + k] * (((xb.Qs[j + k] >> (l * 2)) & 3) - 1);
                    }
                }
            }

            sumf += (float)sum * (yb.D * ScalarFormats.HalfToSingle(xb.D));
        }

        return sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq2_s_q8_K</c>: integer sums with scales 2s + 1, sumf += (dx * dy) * bsum, result / 8.</summary>
    public static float IQ2S(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ2S>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq2sGrid;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                int ls1 = 1 + 2 * (xb.Scales[ib32] & 0xf);
                int ls2 = 1 + 2 * (xb.Scales[ib32] >> 4);
                int sumi1 = 0;
                int sumi2 = 0;
                for (int l = 0; l < 4; l++)
                {
                    ulong entry = grid[xb.Qs[4 * ib32 + l] | ((xb.Qh[ib32] << (8 - 2 * l)) & 0x300)];
                    int signs = xb.Qs[32 + 4 * ib32 + l];
                    int partial = 0;
                    for (int j = 0; j < 8; j++)
                    {
                        partial += yb.Qs[32 * ib32 + 8 * l + j] * (byte)(entry >> (8 * j)) * (1 - 2 * ((signs >> j) & 1));
                    }

                    if (l < 2)
                    {
                        sumi1 += partial;
                    }
                    else
                    {
                        sumi2 += partial;
                    }
                }

                bsum += ls1 * sumi1 + ls2 * sumi2;
            }

            sumf += d * bsum;
        }

        return 0.125f * sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq3_xxs_q8_K</c>: sumf += (dx * dy) * bsum, result / 4.</summary>
    public static float IQ3Xxs(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ3Xxs>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq3xxsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            var scalesAndSigns = weights.Slice(i * sizeof(BlockIQ3Xxs) + 2 + 64, 32);
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                uint aux = MemoryMarshal.Read<uint>(scalesAndSigns.Slice(4 * ib32));
                int ls = (int)(2 * (aux >> 28) + 1);
                int sumi = 0;
                for (int l = 0; l < 4; l++)
                {
                    uint grid1 = grid[xb.Qs[8 * ib32 + 2 * l]];
                    uint grid2 = grid[xb.Qs[8 * ib32 + 2 * l + 1]];
                    int signs = signTable[(int)((aux >> (7 * l)) & 127)];
                    int q8 = 32 * ib32 + 8 * l;
                    for (int j = 0; j < 4; j++)
                    {
                        sumi += (byte)(grid1 >> (8 * j)) * yb.Qs[q8 + j] * (1 - 2 * ((signs >> j) & 1));
                        sumi += (byte)(grid2 >> (8 * j)) * yb.Qs[q8 + j + 4] * (1 - 2 * ((signs >> (j + 4)) & 1));
                    }
                }

                bsum += sumi * ls;
            }

            sumf += d * bsum;
        }

        return 0.25f * sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq3_s_q8_K</c>: sumf += (dx * dy) * bsum with scales 2s + 1.</summary>
    public static float IQ3S(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ3S>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq3sGrid;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                int ls = 2 * (ib32 % 2 == 0 ? xb.Scales[ib32 / 2] & 0xf : xb.Scales[ib32 / 2] >> 4) + 1;
                int qh = xb.Qh[ib32];
                int sumi = 0;
                for (int l = 0; l < 4; l++)
                {
                    uint grid1 = grid[xb.Qs[8 * ib32 + 2 * l] | ((qh << (8 - 2 * l)) & 256)];
                    uint grid2 = grid[xb.Qs[8 * ib32 + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256)];
                    int signs = xb.Signs[4 * ib32 + l];
                    int q8 = 32 * ib32 + 8 * l;
                    for (int j = 0; j < 4; j++)
                    {
                        sumi += (byte)(grid1 >> (8 * j)) * yb.Qs[q8 + j] * (1 - 2 * ((signs >> j) & 1));
                        sumi += (byte)(grid2 >> (8 * j)) * yb.Qs[q8 + j + 4] * (1 - 2 * ((signs >> (j + 4)) & 1));
                    }
                }

                bsum += sumi * ls;
            }

            sumf += d * bsum;
        }

        return sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq1_m_q8_K</c>: sumf += dx * dy * (sumi1 + 1/8 * sumi2), sumi2 carrying the ±1/8 shifts.</summary>
    public static float IQ1M(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ1M>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq1sGrid;
        Span<int> sum1 = stackalloc int[2];
        Span<int> sum2 = stackalloc int[2];
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            var sc = MemoryMarshal.Cast<byte, ushort>(weights.Slice(i * sizeof(BlockIQ1M) + 48, 8));
            ushort scaleBits = (ushort)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
            int sumi1 = 0;
            int sumi2 = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                sum1.Clear();
                sum2.Clear();
                for (int l = 0; l < 4; l++)
                {
                    int qh = xb.Qh[2 * ib + l / 2];
                    int delta = ((qh >> (l % 2 == 0 ? 3 : 7)) & 1) != 0 ? -1 : 1;
                    ulong entry = grid[xb.Qs[4 * ib + l] | ((qh << (8 - 4 * (l % 2))) & 0x700)];
                    int lsum1 = 0;
                    int lsum2 = 0;
                    for (int j = 0; j < 8; j++)
                    {
                        int q8 = yb.Qs[32 * ib + 8 * l + j];
                        lsum1 += q8 * (sbyte)(entry >> (8 * j));
                        lsum2 += q8;
                    }

                    sum1[l / 2] += lsum1;
                    sum2[l / 2] += lsum2 * delta;
                }

                int ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 0x7) + 1;
                int ls2 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1;
                sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
                sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
            }

            sumf += ScalarFormats.HalfToSingle(scaleBits) * yb.D * (sumi1 + 0.125f * sumi2);
        }

        return sumf;
    }
}
