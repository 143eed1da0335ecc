using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_iq2_xxs</c>: 256 weights as 32 groups of 8 from a 256-entry grid (2.0625 bits per weight).
/// Layout (66 bytes): f16 d | uint16 qs[32], read as eight pairs of little-endian uint32 per 32 weights: the first
/// holds four 8-bit grid indices, the second four 7-bit sign indices into ksigns (bits 0..27) and a 4-bit scale (28..31).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ2Xxs
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Grid indices, signs and scales.</summary>
    public fixed ushort Qs[Size / 8];
}

/// <summary>
/// ggml <c>block_iq2_xs</c>: 256 weights as 32 groups of 8 from a 512-entry grid (2.3125 bits per weight).
/// Layout (74 bytes): f16 d | uint16 qs[32] (per group of 8: 9-bit grid index, 7-bit sign index into ksigns) |
/// uint8 scales[8] (two 4-bit scales per 32 weights, one per 16).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ2Xs
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Grid and sign indices.</summary>
    public fixed ushort Qs[Size / 8];

    /// <summary>4-bit scales.</summary>
    public fixed byte Scales[Size / 32];
}

/// <summary>
/// ggml <c>block_iq1_s</c>: 256 weights as 32 groups of 8 from the 2048-entry grid of -1, 0, 1, each 32 shifted
/// by ±1/8 (1.5625 bits per weight). Layout (50 bytes): f16 d | uint8 qs[32] (low 8 index bits) | uint16 qh[8]
/// (per 32 weights: four 3-bit high index parts in bits 0..11, a 3-bit scale in 12..14, the shift sign in bit 15).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ1S
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Low 8 bits of the grid indices.</summary>
    public fixed byte Qs[Size / 8];

    /// <summary>High index bits, scales and shift signs.</summary>
    public fixed ushort Qh[Size / 32];
}

/// <summary>
/// The lowest-bit i-quants, IQ2_XXS, IQ2_XS and IQ1_S (the experts of the 1.58–2-bit dynamic GGUFs): ports of
/// ggml's <c>dequantize_row_*</c> and generic <c>vec_dot_*_q8_K</c>, and SIMD dots that form the same integer
/// sums with vectors and keep every float operation and its order, so they return the reference's bits.
/// </summary>
internal static unsafe class TwoBitIQuants
{
    /// <summary>ggml's IQ1_S shift of each group of 32 (<c>IQ1S_DELTA</c>).</summary>
    private const float Iq1Delta = 0.125f;

    /// <summary>ggml's <c>ksigns_iq2xs</c> as eight byte masks (0xFF where the weight is negative), for the SIMD kernels.</summary>
    internal static readonly ulong[] SignMasks = BuildSignMasks();

    /// <summary>ggml's <c>dequantize_row_iq2_xxs</c>.</summary>
    public static void DequantizeIQ2Xxs(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ2Xxs>(source);
        var grid = GgmlTables.Iq2xxsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        for (int i = 0; i < blocks.Length; i++)
        {
            float d = ScalarFormats.HalfToSingle(blocks[i].D);
            var qs = source.Slice(i * sizeof(BlockIQ2Xxs) + 2, BlockIQ2Xxs.Size / 4);
            var y = destination.Slice(i * BlockIQ2Xxs.Size, BlockIQ2Xxs.Size);
            for (int ib32 = 0; ib32 < BlockIQ2Xxs.Size / 32; ib32++)
            {
                uint aux1 = MemoryMarshal.Read<uint>(qs.Slice(8 * ib32 + 4));
                float db = d * (0.5f + (aux1 >> 28)) * 0.25f;
                for (int l = 0; l < 4; l++)
                {
                    ulong entry = grid[qs[8 * ib32 + l]];
                    int signs = signTable[(int)((aux1 >> (7 * l)) & 127)];
                    WriteSigned(y.Slice(32 * ib32 + 8 * l, 8), db, entry, signs);
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq2_xs</c>.</summary>
    public static void DequantizeIQ2Xs(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ2Xs>(source);
        var grid = GgmlTables.Iq2xsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockIQ2Xs.Size, BlockIQ2Xs.Size);
            for (int ib32 = 0; ib32 < BlockIQ2Xs.Size / 32; ib32++)
            {
                float db0 = d * (0.5f + (block.Scales[ib32] & 0xf)) * 0.25f;
                float db1 = d * (0.5f + (block.Scales[ib32] >> 4)) * 0.25f;
                for (int l = 0; l < 4; l++)
                {
                    int q = block.Qs[4 * ib32 + l];
                    WriteSigned(y.Slice(32 * ib32 + 8 * l, 8), l < 2 ? db0 : db1, grid[q & 511], signTable[q >> 9]);
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq1_s</c>.</summary>
    public static void DequantizeIQ1S(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ1S>(source);
        var grid = GgmlTables.Iq1sGrid;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockIQ1S.Size, BlockIQ1S.Size);
            int output = 0;
            for (int ib = 0; ib < BlockIQ1S.Size / 32; ib++)
            {
                int qh = block.Qh[ib];
                float dl = d * (2 * ((qh >> 12) & 7) + 1);
                float delta = (qh & 0x8000) != 0 ? -Iq1Delta : Iq1Delta;
                for (int l = 0; l < 4; l++)
                {
                    ulong entry = grid[block.Qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                    for (int j = 0; j < 8; j++)
                    {
                        y[output++] = dl * ((sbyte)(entry >> (8 * j)) + delta);
                    }
                }
            }
        }
    }

    /// <summary>ggml's <c>vec_dot_iq2_xxs_q8_K</c> (generic): bsum += sumi * (2s + 1), sumf += (dx * dy) * bsum, result / 8.</summary>
    public static float DotIQ2XxsReference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ2Xxs>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq2xxsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(x[i].D) * yb.D;
            var qs = weights.Slice(i * sizeof(BlockIQ2Xxs) + 2, BlockIQ2Xxs.Size / 4);
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                uint aux1 = MemoryMarshal.Read<uint>(qs.Slice(8 * ib32 + 4));
                int ls = (int)(2 * (aux1 >> 28) + 1);
                int sumi = 0;
                for (int l = 0; l < 4; l++)
                {
                    sumi += SignedGroupSum(grid[qs[8 * ib32 + l]], signTable[(int)((aux1 >> (7 * l)) & 127)], in yb, 32 * ib32 + 8 * l);
                }

                bsum += sumi * ls;
            }

            sumf += d * bsum;
        }

        return 0.125f * sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq2_xs_q8_K</c> (generic): one scale 2s + 1 per 16 weights, sumf += (dx * dy) * bsum, result / 8.</summary>
    public static float DotIQ2XsReference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ2Xs>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq2xsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                int ls1 = 2 * (xb.Scales[ib32] & 0xf) + 1;
                int ls2 = 2 * (xb.Scales[ib32] >> 4) + 1;
                int sumi1 = 0;
                int sumi2 = 0;
                for (int l = 0; l < 4; l++)
                {
                    int q = xb.Qs[4 * ib32 + l];
                    int partial = SignedGroupSum(grid[q & 511], signTable[q >> 9], in yb, 32 * ib32 + 8 * l);
                    if (l < 2)
                    {
                        sumi1 += partial;
                    }
                    else
                    {
                        sumi2 += partial;
                    }
                }

                bsum += sumi1 * ls1;
                bsum += sumi2 * ls2;
            }

            sumf += d * bsum;
        }

        return 0.125f * sumf;
    }

    /// <summary>ggml's <c>vec_dot_iq1_s_q8_K</c> (generic): sumf += dx * dy * (sumi + 1/8 * sumi1), the shifts taken from Q8_K's group sums.</summary>
    public static float DotIQ1SReference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockIQ1S>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq1sGrid;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            int sumi = 0;
            int sumi1 = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int qh = xb.Qh[ib];
                int ls = 2 * ((qh >> 12) & 7) + 1;
                int delta = (qh & 0x8000) != 0 ? -1 : 1;
                int lsum = 0;
                for (int l = 0; l < 4; l++)
                {
                    ulong entry = grid[xb.Qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                    for (int j = 0; j < 8; j++)
                    {
                        lsum += yb.Qs[32 * ib + 8 * l + j] * (sbyte)(entry >> (8 * j));
                    }
                }

                sumi += ls * lsum;
                sumi1 += ls * delta * (yb.BlockSums[2 * ib] + yb.BlockSums[2 * ib + 1]);
            }

            sumf += ScalarFormats.HalfToSingle(xb.D) * yb.D * (sumi + Iq1Delta * sumi1);
        }

        return sumf;
    }

    /// <summary>
    /// <see cref="DotIQ2XxsReference"/> with each group of 32 products formed as one vector (the signed grid bytes
    /// times the Q8_K bytes, widened to 32-bit); the integer sums and the float operations are the reference's.
    /// </summary>
    public static float DotIQ2Xxs(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return DotIQ2XxsReference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockIQ2Xxs>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq2xxsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        var masks = SignMasks;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(x[i].D) * yb.D;
            var qs = weights.Slice(i * sizeof(BlockIQ2Xxs) + 2, BlockIQ2Xxs.Size / 4);
            var q8 = activations.Slice(i * sizeof(BlockQ8K) + 4, 256);
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                uint aux1 = MemoryMarshal.Read<uint>(qs.Slice(8 * ib32 + 4));
                var signed = Vector256.Create(
                    ApplySigns(grid[qs[8 * ib32]], masks[signTable[(int)(aux1 & 127)]]),
                    ApplySigns(grid[qs[8 * ib32 + 1]], masks[signTable[(int)((aux1 >> 7) & 127)]]),
                    ApplySigns(grid[qs[8 * ib32 + 2]], masks[signTable[(int)((aux1 >> 14) & 127)]]),
                    ApplySigns(grid[qs[8 * ib32 + 3]], masks[signTable[(int)((aux1 >> 21) & 127)]])).AsSByte();
                var (low, high) = ProductHalves(signed, Vector256.Create(q8.Slice(32 * ib32, 32)).AsSByte());
                bsum += (low + high) * (int)(2 * (aux1 >> 28) + 1);
            }

            sumf += d * bsum;
        }

        return 0.125f * sumf;
    }

    /// <summary><see cref="DotIQ2XsReference"/> with vector integer sums (see <see cref="DotIQ2Xxs"/>).</summary>
    public static float DotIQ2Xs(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return DotIQ2XsReference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockIQ2Xs>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq2xsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        var masks = SignMasks;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            var q8 = activations.Slice(i * sizeof(BlockQ8K) + 4, 256);
            int bsum = 0;
            for (int ib32 = 0; ib32 < 8; ib32++)
            {
                int q0 = xb.Qs[4 * ib32];
                int q1 = xb.Qs[4 * ib32 + 1];
                int q2 = xb.Qs[4 * ib32 + 2];
                int q3 = xb.Qs[4 * ib32 + 3];
                var signed = Vector256.Create(
                    ApplySigns(grid[q0 & 511], masks[signTable[q0 >> 9]]),
                    ApplySigns(grid[q1 & 511], masks[signTable[q1 >> 9]]),
                    ApplySigns(grid[q2 & 511], masks[signTable[q2 >> 9]]),
                    ApplySigns(grid[q3 & 511], masks[signTable[q3 >> 9]])).AsSByte();
                var (low, high) = ProductHalves(signed, Vector256.Create(q8.Slice(32 * ib32, 32)).AsSByte());
                bsum += low * (2 * (xb.Scales[ib32] & 0xf) + 1);
                bsum += high * (2 * (xb.Scales[ib32] >> 4) + 1);
            }

            sumf += d * bsum;
        }

        return 0.125f * sumf;
    }

    /// <summary><see cref="DotIQ1SReference"/> with vector integer sums (the grid bytes are already signed).</summary>
    public static float DotIQ1S(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return DotIQ1SReference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockIQ1S>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var grid = GgmlTables.Iq1sGrid;
        float sumf = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            var q8 = activations.Slice(i * sizeof(BlockQ8K) + 4, 256);
            int sumi = 0;
            int sumi1 = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int qh = xb.Qh[ib];
                int ls = 2 * ((qh >> 12) & 7) + 1;
                int delta = (qh & 0x8000) != 0 ? -1 : 1;
                var signed = Vector256.Create(
                    grid[xb.Qs[4 * ib] | ((qh & 7) << 8)],
                    grid[xb.Qs[4 * ib + 1] | (((qh >> 3) & 7) << 8)],
                    grid[xb.Qs[4 * ib + 2] | (((qh >> 6) & 7) << 8)],
                    grid[xb.Qs[4 * ib + 3] | (((qh >> 9) & 7) << 8)]).AsSByte();
                var (low, high) = ProductHalves(signed, Vector256.Create(q8.Slice(32 * ib, 32)).AsSByte());
                sumi += ls * (low + high);
                sumi1 += ls * delta * (yb.BlockSums[2 * ib] + yb.BlockSums[2 * ib + 1]);
            }

            sumf += ScalarFormats.HalfToSingle(xb.D) * yb.D * (sumi + Iq1Delta * sumi1);
        }

        return sumf;
    }

    /// <summary>Eight grid magnitudes times ±1 (sign bit j set = negative) written as <c>db * grid[j] * ±1</c>, ggml's order.</summary>
    private static void WriteSigned(Span<float> y, float db, ulong entry, int signs)
    {
        for (int j = 0; j < 8; j++)
        {
            y[j] = db * (byte)(entry >> (8 * j)) * ((signs & (1 << j)) != 0 ? -1f : 1f);
        }
    }

    /// <summary>sum_j grid[j] * q8[start + j] * ±1 for one group of eight (exact integer arithmetic).</summary>
    private static int SignedGroupSum(ulong entry, int signs, in BlockQ8K activations, int start)
    {
        int sum = 0;
        for (int j = 0; j < 8; j++)
        {
            sum += (byte)(entry >> (8 * j)) * activations.Qs[start + j] * ((signs & (1 << j)) != 0 ? -1 : 1);
        }

        return sum;
    }

    /// <summary>
    /// Negates the bytes of <paramref name="magnitudes"/> where <paramref name="mask"/> is 0xFF, byte by byte in one
    /// ulong: -u = (u ^ 0xFF) + 1, and no carry crosses a byte because every grid magnitude is at least 8.
    /// </summary>
    internal static ulong ApplySigns(ulong magnitudes, ulong mask) => (magnitudes ^ mask) + (mask & 0x0101010101010101UL);

    /// <summary>The two sums of 16 products of <paramref name="weights"/> and <paramref name="activations"/> (bytes 0..15 and 16..31), exact.</summary>
    private static (int Low, int High) ProductHalves(Vector256<sbyte> weights, Vector256<sbyte> activations)
    {
        // |weight| <= 43 and |activation| <= 128, so each 16-bit product is exact; the sums are taken in 32 bits.
        var (weightsLow, weightsHigh) = Vector256.Widen(weights);
        var (activationsLow, activationsHigh) = Vector256.Widen(activations);
        var (lowA, lowB) = Vector256.Widen(weightsLow * activationsLow);
        var (highA, highB) = Vector256.Widen(weightsHigh * activationsHigh);
        return (Vector256.Sum(lowA + lowB), Vector256.Sum(highA + highB));
    }

    private static ulong[] BuildSignMasks()
    {
        // Indexed by a whole ksigns entry (eight sign bits, the eighth being the parity of the other seven).
        var masks = new ulong[256];
        for (int signs = 0; signs < 256; signs++)
        {
            ulong mask = 0;
            for (int j = 0; j < 8; j++)
            {
                if ((signs & (1 << j)) != 0)
                {
                    mask |= 0xFFUL << (8 * j);
                }
            }

            masks[signs] = mask;
        }

        return masks;
    }
}
