using System.Runtime.InteropServices;

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

/// <summary>The K-quants without a vectorized path: Q2_K, Q3_K, Q5_K (reference kernels).</summary>
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
            int mask = 1;
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
                            int index = 16 * part + l;
                            int value = ((block.Qs[q + index] >> shift) & 3) - ((block.HMask[index] & mask) != 0 ? 0 : 4);
                            y[output++] = dl * value;
                        }
                    }

                    mask <<= 1;
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
            int u1 = 1;
            int u2 = 2;
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
                    y[output++] = d1 * ((block.Qs[ql + l] & 0xF) + ((block.Qh[l] & u1) != 0 ? 16 : 0)) - m1;
                }

                for (int l = 0; l < 32; l++)
                {
                    y[output++] = d2 * ((block.Qs[ql + l] >> 4) + ((block.Qh[l] & u2) != 0 ? 16 : 0)) - m2;
                }

                ql += 32;
                u1 <<= 2;
                u2 <<= 2;
            }
        }
    }
}
