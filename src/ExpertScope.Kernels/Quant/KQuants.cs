using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q2_K</c>: 256 weights in 16 sub-blocks of 16, x = d * scale_j * q - dmin * min_j (2.625 bits per weight).
/// Layout (84 bytes): uint8 scales[16] (low nibble scale, high nibble min) | uint8 qs[64] (2-bit quants:
/// bits 2s..2s+1 of byte 32h + l hold weight 128h + 32s + l) | f16 d | f16 dmin.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ2K
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>4-bit scales and mins.</summary>
    public fixed byte Scales[Size / 16];

    /// <summary>2-bit quants.</summary>
    public fixed byte Qs[Size / 4];

    /// <summary>Super-block scale of the scales, float16 bits.</summary>
    public ushort D;

    /// <summary>Super-block scale of the mins, float16 bits.</summary>
    public ushort DMin;
}

/// <summary>
/// ggml <c>block_q3_K</c>: 256 weights in 16 sub-blocks of 16, x = d * (scale_j - 32) * q with q in -4..3
/// (3.4375 bits per weight). Layout (110 bytes): uint8 hmask[32] (high bit; clear means subtract 4) |
/// uint8 qs[64] (low 2 bits, as in Q2_K) | uint8 scales[12] (sixteen 6-bit scales, packed) | f16 d.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ3K
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>High bits of the quants.</summary>
    public fixed byte HMask[Size / 8];

    /// <summary>Low 2 bits of the quants.</summary>
    public fixed byte Qs[Size / 4];

    /// <summary>6-bit scales, packed.</summary>
    public fixed byte Scales[12];

    /// <summary>Super-block scale, float16 bits.</summary>
    public ushort D;
}

/// <summary>
/// ggml <c>block_q5_K</c>: 256 weights in 8 sub-blocks of 32, x = d * scale_j * q - dmin * min_j with 5-bit q
/// (5.5 bits per weight). Layout (176 bytes): f16 d | f16 dmin | uint8 scales[12] (as Q4_K) |
/// uint8 qh[32] (fifth bits: bit 2k of qh[l] for sub-block 2k, bit 2k+1 for 2k+1) | uint8 qs[128] (as Q4_K).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ5K
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Super-block scale of the scales, float16 bits.</summary>
    public ushort D;

    /// <summary>Super-block scale of the mins, float16 bits.</summary>
    public ushort DMin;

    /// <summary>6-bit scales and mins.</summary>
    public fixed byte Scales[12];

    /// <summary>Fifth bits.</summary>
    public fixed byte Qh[Size / 8];

    /// <summary>Low 4 bits.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>The K-quants Q2_K, Q3_K (reference kernels) and Q5_K (reference and vectorized).</summary>
internal static unsafe class KQuants
{
    /// <summary>ggml's <c>dequantize_row_q2_K</c>.</summary>
    public static void DequantizeQ2K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ2K>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            float min = ScalarFormats.HalfToSingle(block.DMin);
            var y = destination.Slice(i * BlockQ2K.Size, BlockQ2K.Size);
            int output = 0;
            int scaleIndex = 0;
            for (int n = 0; n < 2; n++)
            {
                int q = 32 * n;
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int part = 0; part < 2; part++)
                    {
                        byte sc = block.Scales[scaleIndex++];
                        float dl = d * (sc & 0xF);
                        float ml = min * (sc >> 4);
                        for (int l = 0; l < 16; l++)
                        {
                            y[output++] = dl * ((block.Qs[q + 16 * part + l] >> shift) & 3) - ml;
                        }
                    }
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_q3_K</c>.</summary>
    public static void DequantizeQ3K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ3K>(source);
        Span<sbyte> scales = stackalloc sbyte[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float dAll = ScalarFormats.HalfToSingle(block.D);
            UnpackQ3KScales(source.Slice(i * sizeof(BlockQ3K) + 96, 12), scales);
            var y = destination.Slice(i * BlockQ3K.Size, BlockQ3K.Size);
            int output = 0;
            int scaleIndex = 0;
            int highBit = 0;
            for (int n = 0; n < 2; n++)
            {
                int q = 32 * n;
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int part = 0; part < 2; part++)
                    {
                        float dl = dAll * (scales[scaleIndex++] - 32);
                        for (int l = 0; l < 16; l++)
                        {
                            // q - (high bit clear ? 4 : 0), written without a branch (the bits are random).
                            int index = 16 * part + l;
                            int value = ((block.Qs[q + index] >> shift) & 3) - 4 + 4 * ((block.HMask[index] >> highBit) & 1);
                            y[output++] = dl * value;
                        }
                    }

                    highBit++;
                }
            }
        }
    }

    /// <summary>
    /// The 16 6-bit scales of Q3_K (still offset by 32): low 4 bits from bytes 0..7 (low nibbles for scales 0..7,
    /// high nibbles for 8..15), high 2 bits from bytes 8..11 (scale j uses bits 2(j / 4) of byte 8 + j % 4).
    /// </summary>
    internal static void UnpackQ3KScales(ReadOnlySpan<byte> packed, Span<sbyte> scales)
    {
        for (int j = 0; j < 16; j++)
        {
            int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
            int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (sbyte)(low | (high << 4));
        }
    }

    /// <summary>ggml's <c>dequantize_row_q5_K</c>.</summary>
    public static void DequantizeQ5K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ5K>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            var scales = source.Slice(i * sizeof(BlockQ5K) + 4, 12);
            float d = ScalarFormats.HalfToSingle(block.D);
            float min = ScalarFormats.HalfToSingle(block.DMin);
            var y = destination.Slice(i * BlockQ5K.Size, BlockQ5K.Size);
            int output = 0;
            int ql = 0;
            int bit = 0;
            for (int j = 0; j < BlockQ5K.Size; j += 64)
            {
                var (sc1, m1Raw) = KQuantScales.ScaleMin(j / 32, scales);
                var (sc2, m2Raw) = KQuantScales.ScaleMin(j / 32 + 1, scales);
                float d1 = d * sc1;
                float m1 = min * m1Raw;
                float d2 = d * sc2;
                float m2 = min * m2Raw;
                for (int l = 0; l < 32; l++)
                {
                    y[output++] = d1 * ((block.Qs[ql + l] & 0xF) + (((block.Qh[l] >> bit) & 1) << 4)) - m1;
                }

                for (int l = 0; l < 32; l++)
                {
                    y[output++] = d2 * ((block.Qs[ql + l] >> 4) + (((block.Qh[l] >> (bit + 1)) & 1) << 4)) - m2;
                }

                ql += 32;
                bit += 2;
            }
        }
    }

    /// <summary>Vectorized Q5_K dequantization: the same multiply-then-subtract per element (bit-identical).</summary>
    public static void DequantizeQ5KFast(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            DequantizeQ5K(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ5K>(source);
        var lowMask = Vector256.Create((byte)0x0F);
        var one = Vector256.Create((byte)1);
        for (int i = 0; i < blocks.Length; i++)
        {
            var blockBytes = source.Slice(i * sizeof(BlockQ5K), sizeof(BlockQ5K));
            var scales = blockBytes.Slice(4, 12);
            float d = ScalarFormats.HalfToSingle(blocks[i].D);
            float min = ScalarFormats.HalfToSingle(blocks[i].DMin);
            var high = Vector256.Create(blockBytes.Slice(16, 32));
            var y = destination.Slice(i * BlockQ5K.Size, BlockQ5K.Size);
            for (int j = 0; j < 4; j++)
            {
                var (sc1, m1) = KQuantScales.ScaleMin(2 * j, scales);
                var (sc2, m2) = KQuantScales.ScaleMin(2 * j + 1, scales);
                var packed = Vector256.Create(blockBytes.Slice(48 + 32 * j, 32));
                var low = (packed & lowMask) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 2 * j) & one, 4);
                var upper = Vector256.ShiftRightLogical(packed, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 2 * j + 1) & one, 4);
                Store(low, Vector256.Create(d * sc1), Vector256.Create(min * m1), y.Slice(64 * j, 32));
                Store(upper, Vector256.Create(d * sc2), Vector256.Create(min * m2), y.Slice(64 * j + 32, 32));
            }
        }

        static void Store(Vector256<byte> quants, Vector256<float> scale, Vector256<float> offset, Span<float> y)
        {
            var (lowHalf, highHalf) = Vector256.Widen(quants);
            var (q0, q1) = Vector256.Widen(lowHalf);
            var (q2, q3) = Vector256.Widen(highHalf);
            (scale * Vector256.ConvertToSingle(q0.AsInt32()) - offset).CopyTo(y);
            (scale * Vector256.ConvertToSingle(q1.AsInt32()) - offset).CopyTo(y.Slice(8));
            (scale * Vector256.ConvertToSingle(q2.AsInt32()) - offset).CopyTo(y.Slice(16));
            (scale * Vector256.ConvertToSingle(q3.AsInt32()) - offset).CopyTo(y.Slice(24));
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q2_K_ref</c>: per sub-block of 16 a scale-and-min fit by absolute error
    /// (weights |x|), scales and mins rounded to 4 bits against their maxima, then the quants recomputed.
    /// </summary>
    public static void QuantizeQ2K(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ2K>(destination);
        Span<byte> levels = stackalloc byte[BlockQ2K.Size];
        Span<byte> levelsTried = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        const float Q4Scale = 15f;
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ2K.Size, BlockQ2K.Size);
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < 16; j++)
            {
                var xs = x.Slice(16 * j, 16);
                for (int l = 0; l < 16; l++)
                {
                    weights[l] = MathF.Abs(xs[l]);
                }

                scales[j] = KQuantFit.ScaleAndMin(3, xs, weights, levels.Slice(16 * j, 16), out mins[j], levelsTried, -0.5f, 0.1f, 15, absoluteError: true);
                if (scales[j] > maxScale)
                {
                    maxScale = scales[j];
                }

                if (mins[j] > maxMin)
                {
                    maxMin = mins[j];
                }
            }

            ref var block = ref blocks[i];
            if (maxScale > 0)
            {
                float inverse = Q4Scale / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    block.Scales[j] = (byte)KQuantScales.NearestInt(inverse * scales[j]);
                }

                block.D = ScalarFormats.SingleToHalf(maxScale / Q4Scale);
            }
            else
            {
                for (int j = 0; j < 16; j++)
                {
                    block.Scales[j] = 0;
                }

                block.D = ScalarFormats.SingleToHalf(0f);
            }

            if (maxMin > 0)
            {
                float inverse = Q4Scale / maxMin;
                for (int j = 0; j < 16; j++)
                {
                    block.Scales[j] |= (byte)(KQuantScales.NearestInt(inverse * mins[j]) << 4);
                }

                block.DMin = ScalarFormats.SingleToHalf(maxMin / Q4Scale);
            }
            else
            {
                block.DMin = ScalarFormats.SingleToHalf(0f);
            }

            float blockScale = ScalarFormats.HalfToSingle(block.D);
            float blockMin = ScalarFormats.HalfToSingle(block.DMin);
            for (int j = 0; j < 16; j++)
            {
                float d = blockScale * (block.Scales[j] & 0xF);
                if (d == 0f)
                {
                    continue;
                }

                float dm = blockMin * (block.Scales[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = KQuantScales.NearestInt((x[16 * j + ii] + dm) / d);
                    levels[16 * j + ii] = (byte)Math.Clamp(l, 0, 3);
                }
            }

            for (int j = 0; j < BlockQ2K.Size; j += 128)
            {
                for (int l = 0; l < 32; l++)
                {
                    block.Qs[j / 4 + l] = (byte)(levels[j + l] | (levels[j + l + 32] << 2) | (levels[j + l + 64] << 4) | (levels[j + l + 96] << 6));
                }
            }
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q3_K_ref</c>: per sub-block of 16 the iterative fit of <c>make_q3_quants</c>, scales
    /// rounded to 6 bits (signed, offset 32) against the largest, then the quants recomputed and split into 2 low
    /// bits and a high-bit mask.
    /// </summary>
    public static void QuantizeQ3K(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ3K>(destination);
        Span<sbyte> levels = stackalloc sbyte[BlockQ3K.Size];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ3K.Size, BlockQ3K.Size);
            float maxScale = 0;
            float amax = 0;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = KQuantFit.Q3Scale(4, x.Slice(16 * j, 16), levels.Slice(16 * j, 16));
                float scale = MathF.Abs(scales[j]);
                if (scale > amax)
                {
                    amax = scale;
                    maxScale = scales[j];
                }
            }

            ref var block = ref blocks[i];
            var packed = destination.Slice(i * sizeof(BlockQ3K) + 96, 12);
            packed.Clear();
            if (maxScale != 0f)
            {
                float inverse = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    sbyte l = (sbyte)KQuantScales.NearestInt(inverse * scales[j]);
                    l = (sbyte)(Math.Max(-32, Math.Min(31, (int)l)) + 32);
                    if (j < 8)
                    {
                        packed[j] = (byte)(l & 0xF);
                    }
                    else
                    {
                        packed[j - 8] |= (byte)((l & 0xF) << 4);
                    }

                    l >>= 4;
                    packed[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }

                block.D = ScalarFormats.SingleToHalf(1 / inverse);
            }
            else
            {
                block.D = ScalarFormats.SingleToHalf(0f);
            }

            float blockScale = ScalarFormats.HalfToSingle(block.D);
            for (int j = 0; j < 16; j++)
            {
                int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
                int sc = (low | (((packed[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                float d = blockScale * sc;
                if (d == 0f)
                {
                    continue;
                }

                for (int ii = 0; ii < 16; ii++)
                {
                    int l = KQuantScales.NearestInt(x[16 * j + ii] / d);
                    levels[16 * j + ii] = (sbyte)(Math.Clamp(l, -4, 3) + 4);
                }
            }

            for (int j = 0; j < 32; j++)
            {
                block.HMask[j] = 0;
            }

            // The high bit of weight j goes to bit j / 32 of hmask[j % 32].
            int m = 0;
            int highBit = 1;
            for (int j = 0; j < BlockQ3K.Size; j++)
            {
                if (levels[j] > 3)
                {
                    block.HMask[m] |= (byte)highBit;
                    levels[j] -= 4;
                }

                if (++m == 32)
                {
                    m = 0;
                    highBit <<= 1;
                }
            }

            for (int j = 0; j < BlockQ3K.Size; j += 128)
            {
                for (int l = 0; l < 32; l++)
                {
                    block.Qs[j / 4 + l] = (byte)((byte)levels[j + l] | ((byte)levels[j + l + 32] << 2) | ((byte)levels[j + l + 64] << 4) | ((byte)levels[j + l + 96] << 6));
                }
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q5_K_ref</c>: as Q4_K with 32 levels and a narrower search (-0.5, 15 steps).</summary>
    public static void QuantizeQ5K(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ5K>(destination);
        Span<byte> levels = stackalloc byte[BlockQ5K.Size];
        Span<byte> levelsTried = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ5K.Size, BlockQ5K.Size);
            for (int j = 0; j < 8; j++)
            {
                var xs = x.Slice(32 * j, 32);
                KQuantFit.SubBlockWeights(xs, weights);
                scales[j] = KQuantFit.ScaleAndMin(31, xs, weights, levels.Slice(32 * j, 32), out mins[j], levelsTried, -0.5f, 0.1f, 15);
            }

            ref var block = ref blocks[i];
            var packedScales = destination.Slice(i * sizeof(BlockQ5K) + 4, 12);
            packedScales.Clear();
            KQuantFit.PackScalesAndMins(scales, mins, packedScales, out block.D, out block.DMin);
            float blockScale = ScalarFormats.HalfToSingle(block.D);
            float blockMin = ScalarFormats.HalfToSingle(block.DMin);
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = KQuantScales.ScaleMin(j, packedScales);
                float d = blockScale * sc;
                if (d == 0f)
                {
                    continue;
                }

                float dm = blockMin * m;
                for (int ii = 0; ii < 32; ii++)
                {
                    int l = KQuantScales.NearestInt((x[32 * j + ii] + dm) / d);
                    levels[32 * j + ii] = (byte)Math.Clamp(l, 0, 31);
                }
            }

            for (int j = 0; j < 32; j++)
            {
                block.Qh[j] = 0;
            }

            int m1 = 1;
            int m2 = 2;
            for (int n = 0; n < BlockQ5K.Size; n += 64)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = levels[n + j];
                    if (l1 > 15)
                    {
                        l1 -= 16;
                        block.Qh[j] |= (byte)m1;
                    }

                    int l2 = levels[n + j + 32];
                    if (l2 > 15)
                    {
                        l2 -= 16;
                        block.Qh[j] |= (byte)m2;
                    }

                    block.Qs[n / 2 + j] = (byte)(l1 | (l2 << 4));
                }

                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }
}
