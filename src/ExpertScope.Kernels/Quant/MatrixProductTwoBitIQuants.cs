using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// IQ2_XXS, IQ2_XS and IQ1_S weights times Q8_K tokens: the arithmetic of ggml's generic <c>vec_dot_iq2_xxs_q8_K</c>,
/// <c>vec_dot_iq2_xs_q8_K</c> and <c>vec_dot_iq1_s_q8_K</c> (<see cref="TwoBitIQuants"/>'s references) for every
/// (row, token) pair. Each 32-weight group is rebuilt from the grid as 32 signed bytes (|w| &lt;= 43) with its scale
/// per 16 weights as int16 words; |y| times (w with y's sign) is w * y with no int16 saturation (|y| &lt;= 128, AVX2's
/// pairwise byte multiply-add), and a word multiply-add by the scales gives the scaled block sum in eight int32 lanes.
/// Integer sums are exact in any order, so each block's sum is the reference's; the float steps keep its order. The
/// one-token kernel decodes each group into registers; the batched kernel decodes a block once and passes every token.
/// </summary>
public static unsafe partial class MatrixProduct
{
    private const int TwoBitGroups = 8;

    /// <summary>True when <see cref="Multiply"/> runs the batched and one-token IQ2_XXS, IQ2_XS or IQ1_S kernels on this CPU.</summary>
    public static bool IsBatchedTwoBitIQuant(GgmlType weightType) =>
        weightType is GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ1_S && QuantizedDots.UseAdvancedIsa && Avx2.IsSupported;

    private static void TwoBitIQuantProduct(GgmlType weightType, byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        switch (weightType)
        {
            case GgmlType.IQ2_XXS:
                TwoBitIQuantProduct<IQ2XxsGroups>(weights, rowBytes, rowCount, activations, output, outputStride, GgmlTables.Iq2xxsGrid);
                break;
            case GgmlType.IQ2_XS:
                TwoBitIQuantProduct<IQ2XsGroups>(weights, rowBytes, rowCount, activations, output, outputStride, GgmlTables.Iq2xsGrid);
                break;
            default:
                TwoBitIQuantProduct<IQ1SGroups>(weights, rowBytes, rowCount, activations, output, outputStride, GgmlTables.Iq1sGrid);
                break;
        }
    }

    private static void TwoBitIQuantProduct<TGroups>(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride, ReadOnlySpan<ulong> gridTable)
        where TGroups : struct, ITwoBitGroups
    {
        fixed (ulong* grid = gridTable)
        fixed (byte* signs = GgmlTables.KSignsIq2xs)
        fixed (ulong* masks = TwoBitIQuants.SignMasks)
        fixed (byte* rows = activations.Rows)
        {
            var tables = new GridTables(grid, signs, masks);
            if (activations.TokenCount == 1)
            {
                TwoBitOneToken<TGroups>(weights, rowBytes, rowCount, activations.Elements / BlockQ8K.Size, rows, tables, output);
            }
            else
            {
                TwoBitBatched<TGroups>(weights, rowBytes, rowCount, activations, rows, tables, output, outputStride);
            }
        }
    }

    /// <summary>One token against each row: every group decoded into registers and multiplied at once.</summary>
    private static void TwoBitOneToken<TGroups>(byte* weights, int rowBytes, int rowCount, int blocks, byte* activations, GridTables tables, float* output)
        where TGroups : struct, ITwoBitGroups
    {
        for (int r = 0; r < rowCount; r++)
        {
            byte* row = weights + (long)r * rowBytes;
            float sumf = 0f;
            for (int i = 0; i < blocks; i++)
            {
                byte* block = row + i * TGroups.BlockBytes;
                byte* y = activations + i * sizeof(BlockQ8K);
                sbyte* q8 = (sbyte*)(y + sizeof(float));
                short* groupSums = (short*)(q8 + BlockQ8K.Size);
                var lanes = Vector256<int>.Zero;
                int shiftSum = 0;
                for (int g = 0; g < TwoBitGroups; g++)
                {
                    var w = TGroups.Decode(block, g, tables, out var scale, out int shift);
                    lanes = Q6KGroup(lanes, w, Vector256.Load(q8 + 32 * g), scale);
                    if (TGroups.HasShift)
                    {
                        shiftSum += shift * (groupSums[2 * g] + groupSums[2 * g + 1]);
                    }
                }

                sumf = TGroups.Accumulate(sumf, ScalarFormats.HalfToSingle(*(ushort*)block), *(float*)y, Vector256.Sum(lanes), shiftSum);
            }

            output[r] = TGroups.Finish(sumf);
        }
    }

    /// <summary>
    /// Several tokens against each row: each block is decoded once into a small buffer (signed bytes and scale words,
    /// in cache), then every token's block sum is taken from it; each token keeps its own float sum over blocks, in
    /// block order.
    /// </summary>
    private static void TwoBitBatched<TGroups>(byte* weights, int rowBytes, int rowCount, PackedActivations activations, byte* rows, GridTables tables, float* output, int outputStride)
        where TGroups : struct, ITwoBitGroups
    {
        int blocks = activations.Elements / BlockQ8K.Size;
        int tokens = activations.TokenCount;
        long tokenBytes = activations.RowBytes;
        var decoded = stackalloc sbyte[BlockQ8K.Size];
        var scales = stackalloc short[TwoBitGroups * Vector256<short>.Count];
        var shifts = stackalloc int[TwoBitGroups];
        var sums = new float[tokens];
        fixed (float* sumf = sums)
        {
            for (int r = 0; r < rowCount; r++)
            {
                byte* row = weights + (long)r * rowBytes;
                Array.Clear(sums);
                for (int i = 0; i < blocks; i++)
                {
                    byte* block = row + i * TGroups.BlockBytes;
                    for (int g = 0; g < TwoBitGroups; g++)
                    {
                        TGroups.Decode(block, g, tables, out var scale, out shifts[g]).Store(decoded + 32 * g);
                        scale.Store(scales + Vector256<short>.Count * g);
                    }

                    // IQ1_S: each group's shift against the Q8_K sums of its two 16-value halves, so a token's shift
                    // sum is one word multiply-add (exact: |shift| <= 15, the sums are int16).
                    var shiftWords = TGroups.HasShift
                        ? Vector256.Create(
                            (short)shifts[0], (short)shifts[0], (short)shifts[1], (short)shifts[1], (short)shifts[2], (short)shifts[2], (short)shifts[3], (short)shifts[3],
                            (short)shifts[4], (short)shifts[4], (short)shifts[5], (short)shifts[5], (short)shifts[6], (short)shifts[6], (short)shifts[7], (short)shifts[7])
                        : Vector256<short>.Zero;
                    float dx = ScalarFormats.HalfToSingle(*(ushort*)block);
                    byte* y = rows + i * sizeof(BlockQ8K);
                    for (int t = 0; t < tokens; t++, y += tokenBytes)
                    {
                        sbyte* q8 = (sbyte*)(y + sizeof(float));
                        var lanes = Vector256<int>.Zero;
                        for (int g = 0; g < TwoBitGroups; g++)
                        {
                            lanes = Q6KGroup(lanes, Vector256.Load(decoded + 32 * g), Vector256.Load(q8 + 32 * g), Vector256.Load(scales + Vector256<short>.Count * g));
                        }

                        int shiftSum = TGroups.HasShift
                            ? Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(q8 + BlockQ8K.Size)), shiftWords))
                            : 0;

                        sumf[t] = TGroups.Accumulate(sumf[t], dx, *(float*)y, Vector256.Sum(lanes), shiftSum);
                    }
                }

                for (int t = 0; t < tokens; t++)
                {
                    output[(long)t * outputStride + r] = TGroups.Finish(sumf[t]);
                }
            }
        }
    }

    /// <summary>The lookup tables the decoders read, pinned for the call.</summary>
    private readonly struct GridTables(ulong* grid, byte* signs, ulong* signMasks)
    {
        public ulong* Grid { get; } = grid;

        public byte* Signs { get; } = signs;

        public ulong* SignMasks { get; } = signMasks;
    }

    /// <summary>One two-bit i-quant type: how a 32-weight group is decoded, and ggml's float steps per block and at the end.</summary>
    private interface ITwoBitGroups
    {
        static abstract int BlockBytes { get; }

        /// <summary>True for IQ1_S, whose ±1/8 shift is taken from the Q8_K group sums.</summary>
        static abstract bool HasShift { get; }

        /// <summary>Group <paramref name="group"/>'s 32 signed weights; <paramref name="scale"/> holds the scale of bytes 0..15 in words 0..7 and of bytes 16..31 in words 8..15.</summary>
        static abstract Vector256<sbyte> Decode(byte* block, int group, GridTables tables, out Vector256<short> scale, out int shift);

        static abstract float Accumulate(float sum, float dx, float dy, int blockSum, int shiftSum);

        static abstract float Finish(float sum);
    }

    /// <summary>IQ2_XXS: per group four grid bytes, then a word of four 7-bit sign indices and a 4-bit scale.</summary>
    private readonly struct IQ2XxsGroups : ITwoBitGroups
    {
        public static int BlockBytes => sizeof(BlockIQ2Xxs);

        public static bool HasShift => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Decode(byte* block, int group, GridTables tables, out Vector256<short> scale, out int shift)
        {
            byte* q = block + sizeof(ushort) + 8 * group;
            uint aux = *(uint*)(q + 4);
            scale = Vector256.Create((short)(2 * (aux >> 28) + 1));
            shift = 0;
            ulong* grid = tables.Grid;
            byte* signs = tables.Signs;
            ulong* masks = tables.SignMasks;
            return Vector256.Create(
                TwoBitIQuants.ApplySigns(grid[q[0]], masks[signs[aux & 127]]),
                TwoBitIQuants.ApplySigns(grid[q[1]], masks[signs[(aux >> 7) & 127]]),
                TwoBitIQuants.ApplySigns(grid[q[2]], masks[signs[(aux >> 14) & 127]]),
                TwoBitIQuants.ApplySigns(grid[q[3]], masks[signs[(aux >> 21) & 127]])).AsSByte();
        }

        public static float Accumulate(float sum, float dx, float dy, int blockSum, int shiftSum) => sum + dx * dy * blockSum;

        public static float Finish(float sum) => 0.125f * sum;
    }

    /// <summary>IQ2_XS: per group four 16-bit words (9-bit grid index, 7-bit sign index) and a byte of two 4-bit scales.</summary>
    private readonly struct IQ2XsGroups : ITwoBitGroups
    {
        public static int BlockBytes => sizeof(BlockIQ2Xs);

        public static bool HasShift => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Decode(byte* block, int group, GridTables tables, out Vector256<short> scale, out int shift)
        {
            ushort* q = (ushort*)(block + sizeof(ushort)) + 4 * group;
            int scales = block[sizeof(ushort) + BlockIQ2Xs.Size / 4 + group];
            scale = Vector256.Create(Vector128.Create((short)(2 * (scales & 0xf) + 1)), Vector128.Create((short)(2 * (scales >> 4) + 1)));
            shift = 0;
            ulong* grid = tables.Grid;
            byte* signs = tables.Signs;
            ulong* masks = tables.SignMasks;
            return Vector256.Create(
                TwoBitIQuants.ApplySigns(grid[q[0] & 511], masks[signs[q[0] >> 9]]),
                TwoBitIQuants.ApplySigns(grid[q[1] & 511], masks[signs[q[1] >> 9]]),
                TwoBitIQuants.ApplySigns(grid[q[2] & 511], masks[signs[q[2] >> 9]]),
                TwoBitIQuants.ApplySigns(grid[q[3] & 511], masks[signs[q[3] >> 9]])).AsSByte();
        }

        public static float Accumulate(float sum, float dx, float dy, int blockSum, int shiftSum) => sum + dx * dy * blockSum;

        public static float Finish(float sum) => 0.125f * sum;
    }

    /// <summary>IQ1_S: per group four low index bytes and a word of high index bits, a 3-bit scale and the shift's sign.</summary>
    private readonly struct IQ1SGroups : ITwoBitGroups
    {
        public static int BlockBytes => sizeof(BlockIQ1S);

        public static bool HasShift => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Decode(byte* block, int group, GridTables tables, out Vector256<short> scale, out int shift)
        {
            byte* qs = block + sizeof(ushort) + 4 * group;
            int qh = ((ushort*)(block + sizeof(ushort) + BlockIQ1S.Size / 8))[group];
            int ls = 2 * ((qh >> 12) & 7) + 1;
            scale = Vector256.Create((short)ls);
            shift = (qh & 0x8000) != 0 ? -ls : ls;
            ulong* grid = tables.Grid;
            return Vector256.Create(
                grid[qs[0] | ((qh & 7) << 8)],
                grid[qs[1] | (((qh >> 3) & 7) << 8)],
                grid[qs[2] | (((qh >> 6) & 7) << 8)],
                grid[qs[3] | (((qh >> 9) & 7) << 8)]).AsSByte();
        }

        // ggml: sumf += dx * dy * (sumi + IQ1S_DELTA * sumi1).
        public static float Accumulate(float sum, float dx, float dy, int blockSum, int shiftSum) => sum + dx * dy * (blockSum + 0.125f * shiftSum);

        public static float Finish(float sum) => sum;
    }
}
