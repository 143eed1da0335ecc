using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_iq2_s</c>: 256 weights as 32 groups of 8 taken from a 1024-entry grid with explicit signs
/// (2.5625 bits per weight). Layout (82 bytes): f16 d | uint8 qs[64] (bytes 0..31: low 8 bits of the grid
/// indices; bytes 32..63: sign bits, one byte per group of 8) | uint8 qh[8] (2 high index bits per group) |
/// uint8 scales[8] (two 4-bit scales per 32 weights).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ2S
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Grid indices (low bits), then signs.</summary>
    public fixed byte Qs[Size / 4];

    /// <summary>High bits of the grid indices.</summary>
    public fixed byte Qh[Size / 32];

    /// <summary>4-bit scales.</summary>
    public fixed byte Scales[Size / 32];
}

/// <summary>
/// ggml <c>block_iq3_xxs</c>: 256 weights as 64 groups of 4 from a 256-entry grid (3.0625 bits per weight).
/// Layout (98 bytes): f16 d | uint8 qs[96] (bytes 0..63: grid indices; bytes 64..95: eight little-endian
/// uint32, one per 32 weights: four 7-bit sign indices into ksigns and a 4-bit scale in the top bits).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ3Xxs
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Grid indices, then scales and signs.</summary>
    public fixed byte Qs[3 * Size / 8];
}

/// <summary>
/// ggml <c>block_iq3_s</c>: 256 weights as 64 groups of 4 from a 512-entry grid with explicit signs
/// (3.4375 bits per weight). Layout (110 bytes): f16 d | uint8 qs[64] (low 8 index bits) | uint8 qh[8]
/// (ninth index bits) | uint8 signs[32] | uint8 scales[4] (two 4-bit scales per 64 weights).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ3S
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Low 8 bits of the grid indices.</summary>
    public fixed byte Qs[Size / 4];

    /// <summary>Ninth bits of the grid indices.</summary>
    public fixed byte Qh[Size / 32];

    /// <summary>Sign bits, one per weight.</summary>
    public fixed byte Signs[Size / 8];

    /// <summary>4-bit scales.</summary>
    public fixed byte Scales[Size / 64];
}

/// <summary>
/// ggml <c>block_iq1_m</c>: 256 weights as 32 groups of 8 from the 2048-entry IQ1_S grid, each group shifted by
/// ±1/8 (1.75 bits per weight). Layout (56 bytes): uint8 qs[32] (low 8 index bits) | uint8 qh[16] (per group of 8:
/// 3 high index bits and the shift sign, two groups per byte) | uint8 scales[8] (read as four uint16: 3-bit
/// sub-block scales in bits 0..11, and the float16 super-block scale spread over the top nibbles).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ1M
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Low 8 bits of the grid indices.</summary>
    public fixed byte Qs[Size / 8];

    /// <summary>High index bits and shift signs.</summary>
    public fixed byte Qh[Size / 16];

    /// <summary>Sub-block scales and the super-block scale.</summary>
    public fixed ushort Scales[Size / 64];
}

/// <summary>
/// ggml <c>block_iq4_nl</c>: 32 weights, x = d * kvalues_iq4nl[q].
/// Layout (18 bytes): f16 d | uint8 qs[16] (low nibble = weight j, high nibble = weight j + 16).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ4NL
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>4-bit indices into the non-linear levels.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>
/// ggml <c>block_iq4_xs</c>: 256 weights in 8 sub-blocks of 32, x = d * (scale_j - 32) * kvalues_iq4nl[q].
/// Layout (136 bytes): f16 d | uint16 scales_h (2 high scale bits per sub-block) | uint8 scales_l[4]
/// (4 low scale bits per sub-block) | uint8 qs[128] (16 bytes per sub-block, packed as IQ4_NL).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockIQ4XS
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>High 2 bits of the eight 6-bit scales.</summary>
    public ushort ScalesHigh;

    /// <summary>Low 4 bits of the eight 6-bit scales.</summary>
    public fixed byte ScalesLow[Size / 64];

    /// <summary>4-bit indices into the non-linear levels.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>The i-quants with golden data: IQ2_S, IQ3_XXS, IQ3_S, IQ1_M, IQ4_NL, IQ4_XS (reference kernels).</summary>
internal static unsafe class IQuants
{
    /// <summary>ggml's IQ1_S / IQ1_M shift of each grid group (<c>IQ1S_DELTA</c>).</summary>
    private const float Iq1Delta = 0.125f;

    /// <summary>ggml's <c>dequantize_row_iq2_s</c>.</summary>
    public static void DequantizeIQ2S(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ2S>(source);
        var grid = GgmlTables.Iq2sGrid;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockIQ2S.Size, BlockIQ2S.Size);
            int output = 0;
            for (int ib32 = 0; ib32 < BlockIQ2S.Size / 32; ib32++)
            {
                float db0 = d * (0.5f + (block.Scales[ib32] & 0xf)) * 0.25f;
                float db1 = d * (0.5f + (block.Scales[ib32] >> 4)) * 0.25f;
                for (int l = 0; l < 4; l++)
                {
                    float dl = l < 2 ? db0 : db1;
                    int index = block.Qs[4 * ib32 + l] | ((block.Qh[ib32] << (8 - 2 * l)) & 0x300);
                    ulong entry = grid[index];
                    byte signs = block.Qs[BlockIQ2S.Size / 8 + 4 * ib32 + l];
                    for (int j = 0; j < 8; j++)
                    {
                        y[output++] = dl * GridByte(entry, j) * Sign(signs, j);
                    }
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq3_xxs</c>.</summary>
    public static void DequantizeIQ3Xxs(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ3Xxs>(source);
        var grid = GgmlTables.Iq3xxsGrid;
        var signTable = GgmlTables.KSignsIq2xs;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var scalesAndSigns = source.Slice(i * sizeof(BlockIQ3Xxs) + 2 + BlockIQ3Xxs.Size / 4, BlockIQ3Xxs.Size / 8);
            var y = destination.Slice(i * BlockIQ3Xxs.Size, BlockIQ3Xxs.Size);
            int output = 0;
            for (int ib32 = 0; ib32 < BlockIQ3Xxs.Size / 32; ib32++)
            {
                uint aux = MemoryMarshal.Read<uint>(scalesAndSigns.Slice(4 * ib32));
                float db = d * (0.5f + (aux >> 28)) * 0.5f;
                for (int l = 0; l < 4; l++)
                {
                    byte signs = signTable[(int)((aux >> (7 * l)) & 127)];
                    uint grid1 = grid[block.Qs[8 * ib32 + 2 * l]];
                    uint grid2 = grid[block.Qs[8 * ib32 + 2 * l + 1]];
                    for (int j = 0; j < 4; j++)
                    {
                        y[output + j] = db * GridByte(grid1, j) * Sign(signs, j);
                        y[output + j + 4] = db * GridByte(grid2, j) * Sign(signs, j + 4);
                    }

                    output += 8;
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq3_s</c>.</summary>
    public static void DequantizeIQ3S(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ3S>(source);
        var grid = GgmlTables.Iq3sGrid;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockIQ3S.Size, BlockIQ3S.Size);
            int output = 0;
            int qs = 0;
            int signs = 0;
            for (int ib32 = 0; ib32 < BlockIQ3S.Size / 32; ib32 += 2)
            {
                // Two sub-blocks of 32 share one scale byte; each uses one qh byte, 8 index bytes and 4 sign bytes.
                for (int part = 0; part < 2; part++)
                {
                    int scale = part == 0 ? block.Scales[ib32 / 2] & 0xf : block.Scales[ib32 / 2] >> 4;
                    float db = d * (1 + 2 * scale);
                    int qh = block.Qh[ib32 + part];
                    for (int l = 0; l < 4; l++)
                    {
                        uint grid1 = grid[block.Qs[qs + 2 * l] | ((qh << (8 - 2 * l)) & 256)];
                        uint grid2 = grid[block.Qs[qs + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256)];
                        byte sign = block.Signs[signs + l];
                        for (int j = 0; j < 4; j++)
                        {
                            y[output + j] = db * GridByte(grid1, j) * Sign(sign, j);
                            y[output + j + 4] = db * GridByte(grid2, j) * Sign(sign, j + 4);
                        }

                        output += 8;
                    }

                    qs += 8;
                    signs += 4;
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq1_m</c>.</summary>
    public static void DequantizeIQ1M(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ1M>(source);
        var grid = GgmlTables.Iq1sGrid;
        Span<int> index = stackalloc int[4];
        Span<float> delta = stackalloc float[4];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            var sc = MemoryMarshal.Cast<byte, ushort>(source.Slice(i * sizeof(BlockIQ1M) + 48, 8));
            ushort scaleBits = (ushort)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
            float d = ScalarFormats.HalfToSingle(scaleBits);
            var y = destination.Slice(i * BlockIQ1M.Size, BlockIQ1M.Size);
            int output = 0;
            for (int ib = 0; ib < BlockIQ1M.Size / 32; ib++)
            {
                float dl1 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
                float dl2 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
                int qs = 4 * ib;
                byte qh0 = block.Qh[2 * ib];
                byte qh1 = block.Qh[2 * ib + 1];
                index[0] = block.Qs[qs] | ((qh0 << 8) & 0x700);
                index[1] = block.Qs[qs + 1] | ((qh0 << 4) & 0x700);
                index[2] = block.Qs[qs + 2] | ((qh1 << 8) & 0x700);
                index[3] = block.Qs[qs + 3] | ((qh1 << 4) & 0x700);
                delta[0] = (qh0 & 0x08) != 0 ? -Iq1Delta : Iq1Delta;
                delta[1] = (qh0 & 0x80) != 0 ? -Iq1Delta : Iq1Delta;
                delta[2] = (qh1 & 0x08) != 0 ? -Iq1Delta : Iq1Delta;
                delta[3] = (qh1 & 0x80) != 0 ? -Iq1Delta : Iq1Delta;
                for (int l = 0; l < 4; l++)
                {
                    float dl = l < 2 ? dl1 : dl2;
                    ulong entry = grid[index[l]];
                    for (int j = 0; j < 8; j++)
                    {
                        y[output++] = dl * ((sbyte)GridByte(entry, j) + delta[l]);
                    }
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq4_nl</c>.</summary>
    public static void DequantizeIQ4NL(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ4NL>(source);
        var levels = GgmlTables.KValuesIq4nl;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockIQ4NL.Size, BlockIQ4NL.Size);
            for (int j = 0; j < BlockIQ4NL.Size / 2; j++)
            {
                y[j] = d * levels[block.Qs[j] & 0xf];
                y[j + BlockIQ4NL.Size / 2] = d * levels[block.Qs[j] >> 4];
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_iq4_xs</c>.</summary>
    public static void DequantizeIQ4XS(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockIQ4XS>(source);
        var levels = GgmlTables.KValuesIq4nl;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockIQ4XS.Size, BlockIQ4XS.Size);
            for (int ib = 0; ib < BlockIQ4XS.Size / 32; ib++)
            {
                int ls = ((block.ScalesLow[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((block.ScalesHigh >> (2 * ib)) & 3) << 4);
                float dl = d * (ls - 32);
                var ys = y.Slice(32 * ib, 32);
                for (int j = 0; j < 16; j++)
                {
                    ys[j] = dl * levels[block.Qs[16 * ib + j] & 0xf];
                    ys[j + 16] = dl * levels[block.Qs[16 * ib + j] >> 4];
                }
            }
        }
    }

    /// <summary>-1 where bit <paramref name="j"/> of <paramref name="signs"/> is set, else 1 (computed without a branch: sign bits are random).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sign(int signs, int j) => 1 - 2 * ((signs >> j) & 1);

    /// <summary>Byte <paramref name="j"/> of a grid entry as ggml reads it through a byte pointer (little-endian).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte GridByte(ulong entry, int j) => (byte)(entry >> (8 * j));

    /// <summary>
    /// ggml's <c>quantize_iq4_nl</c> without importance weights, the function <c>ggml_quantize_chunk</c> calls: per block
    /// of 32 a weighted (x²) least-squares scale over 15 trial grids. (ggml's <c>quantize_row_iq4_nl_ref</c> skips the
    /// trials; quants.gguf was written with them.)
    /// </summary>
    public static void QuantizeIQ4NL(ReadOnlySpan<float> source, Span<byte> destination)
    {
        Span<float> scales = stackalloc float[1];
        Span<byte> levels = stackalloc byte[BlockIQ4NL.Size];
        for (int i = 0; i < destination.Length / sizeof(BlockIQ4NL); i++)
        {
            var block = destination.Slice(i * sizeof(BlockIQ4NL), sizeof(BlockIQ4NL));
            NonLinearFit(source.Slice(i * BlockIQ4NL.Size, BlockIQ4NL.Size), block.Slice(0, 2), block.Slice(2, 16), default, default, scales, levels, 7);
        }
    }

    /// <summary>ggml's <c>quantize_iq4_xs</c> without importance weights: IQ4_NL's fit per 32, then 6-bit sub-block scales.</summary>
    public static void QuantizeIQ4XS(ReadOnlySpan<float> source, Span<byte> destination)
    {
        Span<float> scales = stackalloc float[BlockIQ4XS.Size / 32];
        Span<byte> levels = stackalloc byte[BlockIQ4XS.Size];
        for (int i = 0; i < destination.Length / sizeof(BlockIQ4XS); i++)
        {
            var block = destination.Slice(i * sizeof(BlockIQ4XS), sizeof(BlockIQ4XS));
            NonLinearFit(source.Slice(i * BlockIQ4XS.Size, BlockIQ4XS.Size), block.Slice(0, 2), block.Slice(8, 128), block.Slice(2, 2), block.Slice(4, 4), scales, levels, 7);
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_iq4_nl_impl</c> (no importance weights, blocks of 32): <paramref name="trials"/> &gt; 0
    /// tries 2 * trials + 1 grids; super-blocks of more than one block get 6-bit scales in
    /// <paramref name="scalesHigh"/> / <paramref name="scalesLow"/>.
    /// </summary>
    private static void NonLinearFit(
        ReadOnlySpan<float> x, Span<byte> scaleBits, Span<byte> quants, Span<byte> scalesHigh, Span<byte> scalesLow,
        Span<float> scales, Span<byte> levels, int trials)
    {
        const int BlockSize = 32;
        var values = GgmlTables.KValuesIq4nl;
        int blockCount = x.Length / BlockSize;
        quants.Clear();
        levels.Clear();
        MemoryMarshal.Write(scaleBits, ScalarFormats.SingleToHalf(0f));
        float maxScale = 0;
        float amaxScale = 0;
        for (int ib = 0; ib < blockCount; ib++)
        {
            var xb = x.Slice(ib * BlockSize, BlockSize);
            var lb = levels.Slice(ib * BlockSize, BlockSize);
            float amax = 0;
            float max = 0;
            for (int j = 0; j < BlockSize; j++)
            {
                float ax = MathF.Abs(xb[j]);
                if (ax > amax)
                {
                    amax = ax;
                    max = xb[j];
                }
            }

            if (amax < 1e-15f)
            {
                scales[ib] = 0;
                continue;
            }

            float d = trials > 0 ? -max / values[0] : max / values[0];
            float id = 1 / d;
            float sumQX = 0;
            float sumQ2 = 0;
            for (int j = 0; j < BlockSize; j++)
            {
                int l = BestIndex(values, id * xb[j]);
                lb[j] = (byte)l;
                float q = values[l];
                float w = xb[j] * xb[j];
                sumQX += w * q * xb[j];
                sumQ2 += w * q * q;
            }

            d = sumQ2 > 0 ? sumQX / sumQ2 : 0f;
            float best = d * sumQX;
            for (int trial = -trials; trial <= trials; trial++)
            {
                id = (trial + values[0]) / max;
                sumQX = sumQ2 = 0;
                for (int j = 0; j < BlockSize; j++)
                {
                    float q = values[BestIndex(values, id * xb[j])];
                    float w = xb[j] * xb[j];
                    sumQX += w * q * xb[j];
                    sumQ2 += w * q * q;
                }

                if (sumQ2 > 0 && sumQX * sumQX > best * sumQ2)
                {
                    d = sumQX / sumQ2;
                    best = d * sumQX;
                }
            }

            scales[ib] = d;
            if (MathF.Abs(d) > amaxScale)
            {
                amaxScale = MathF.Abs(d);
                maxScale = d;
            }
        }

        if (blockCount > 1)
        {
            scalesHigh.Clear();
            float d = -maxScale / 32;
            MemoryMarshal.Write(scaleBits, ScalarFormats.SingleToHalf(d));
            float id = d != 0f ? 1 / d : 0f;
            ushort high = 0;
            for (int ib = 0; ib < blockCount; ib++)
            {
                int l = Math.Clamp(KQuantScales.NearestInt(id * scales[ib]), -32, 31);
                float dl = d * l;
                float idl = dl != 0f ? 1 / dl : 0f;
                var xb = x.Slice(ib * BlockSize, BlockSize);
                for (int j = 0; j < BlockSize; j++)
                {
                    levels[ib * BlockSize + j] = (byte)BestIndex(values, idl * xb[j]);
                }

                l += 32;
                if (ib % 2 == 0)
                {
                    scalesLow[ib / 2] = (byte)(l & 0xf);
                }
                else
                {
                    scalesLow[ib / 2] |= (byte)((l & 0xf) << 4);
                }

                high |= (ushort)((l >> 4) << (2 * (ib % 8)));
            }

            MemoryMarshal.Write(scalesHigh, high);
        }
        else
        {
            MemoryMarshal.Write(scaleBits, ScalarFormats.SingleToHalf(scales[0]));
            if (trials > 0)
            {
                float id = scales[0] != 0f ? 1 / scales[0] : 0f;
                for (int j = 0; j < x.Length; j++)
                {
                    levels[j] = (byte)BestIndex(values, id * x[j]);
                }
            }
        }

        for (int i = 0; i < x.Length / 32; i++)
        {
            for (int j = 0; j < 16; j++)
            {
                quants[16 * i + j] = (byte)(levels[32 * i + j] | (levels[32 * i + 16 + j] << 4));
            }
        }
    }

    /// <summary>ggml's <c>best_index_int8</c>: the index of the level nearest to <paramref name="x"/> (ties to the upper).</summary>
    private static int BestIndex(ReadOnlySpan<sbyte> values, float x)
    {
        if (x <= values[0])
        {
            return 0;
        }

        if (x >= values[^1])
        {
            return values.Length - 1;
        }

        int low = 0;
        int high = values.Length - 1;
        while (high - low > 1)
        {
            int middle = (low + high) / 2;
            if (x < values[middle])
            {
                high = middle;
            }
            else
            {
                low = middle;
            }
        }

        return x - values[high - 1] < values[high] - x ? high - 1 : high;
    }
}
