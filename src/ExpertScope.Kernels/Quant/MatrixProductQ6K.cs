using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Q6_K weights times Q8_K tokens: <see cref="QuantizedDots.Q6KReference"/>'s arithmetic (ggml's
/// <c>vec_dot_q6_K_q8_K</c>) for every (row, token) pair. Each 32-weight group holds two 16-weight sub-blocks; with
/// weights and activations in lane-class order (positions l, l+8, l+16, l+24 in dword l) one pairwise byte
/// multiply-add puts lane l's two products of the first sub-block in word 2l and those of the second in word 2l+1, and
/// one word multiply-add against the (scale0, scale1) pair gives ggml's scaled lane sum l in int32 lane l (AVX2 and
/// AVX-512 VBMI's byte permute; no VNNI, so CPUs with AVX-512 VNNI but not AVX-VNNI take it too). The
/// integer lane sums are exact, so they equal ggml's; the float steps keep its order. Weights are signed (q - 32) and
/// activations signed: |y| times (w with y's sign) is w * y without saturation (|y| &lt;= 128, |w| &lt;= 32).
/// </summary>
public static unsafe partial class MatrixProduct
{
    private const int Q6KGroups = BlockQ6K.Size / 32;

    /// <summary>True when <see cref="Multiply"/> runs the batched and one-token Q6_K kernels on this CPU.</summary>
    public static bool IsBatchedQ6K(GgmlType weightType) =>
        weightType == GgmlType.Q6_K && QuantizedDots.UseAdvancedIsa && Avx512Vbmi.VL.IsSupported;

    /// <summary>Builds <see cref="PackedActivations.Q6KOffsetSums"/> for one token from its lane-class-ordered quants.</summary>
    private static void Q6KOffsetSums(PackedActivations packed)
    {
        int groups = packed.Elements / BlockQ8K.Size * Q6KGroups;
        var sums = new short[groups * 16];
        var offset = Vector256.Create((byte)32);
        fixed (byte* quants = packed.LaneClassQuants)
        fixed (short* target = sums)
        {
            for (int g = 0; g < groups; g++)
            {
                Avx2.MultiplyAddAdjacent(offset, Vector256.Load((sbyte*)(quants + 32L * g))).Store(target + 16L * g);
            }
        }

        packed.Q6KOffsetSums = sums;
    }

    /// <summary>
    /// Lane sums of one 32-weight group from the stored (unsigned, 0..63) quants <paramref name="weights"/>: the pairwise
    /// multiply-add of q with y minus that of 32 with y is (q - 32) * y per pair, exact (q * y pairs stay within
    /// 2 * 63 * 128, the difference within 2 * 32 * 128), then the word multiply-add by the two sub-block scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KGroupUnsigned(Vector256<int> lanes, Vector256<byte> weights, Vector256<sbyte> activations, Vector256<short> offsetSums, Vector256<short> scalePair)
    {
        var pairs = Avx2.MultiplyAddAdjacent(weights, activations) - offsetSums;
        return lanes + Avx2.MultiplyAddAdjacent(pairs, scalePair);
    }

    /// <summary>
    /// <see cref="Q6KDecodeGroups"/> without the offset: the stored quants q (0..63, the weight being q - 32), for
    /// <see cref="Q6KGroupUnsigned"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q6KDecodeUnsigned(byte* block, int half, out Vector256<byte> q1, out Vector256<byte> q2, out Vector256<byte> q3, out Vector256<byte> q4)
    {
        var lowMask = Vector256.Create((byte)0x0F);
        var twoBits = Vector256.Create((byte)0x30);
        var ql0 = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 64 * half), QuantizedDots.LaneClassOrder);
        var ql1 = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 64 * half + 32), QuantizedDots.LaneClassOrder);
        var qh = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 128 + 32 * half), QuantizedDots.LaneClassOrder);
        q1 = (ql0 & lowMask) | (Vector256.ShiftLeft(qh, 4) & twoBits);
        q2 = (ql1 & lowMask) | (Vector256.ShiftLeft(qh, 2) & twoBits);
        q3 = Vector256.ShiftRightLogical(ql0, 4) | (qh & twoBits);
        q4 = Vector256.ShiftRightLogical(ql1, 4) | (Vector256.ShiftRightLogical(qh, 2) & twoBits);
    }

    /// <summary>Lane sums of one 32-weight group: sub-block scales paired as two int16 in <paramref name="scalePair"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KGroup(Vector256<int> lanes, Vector256<sbyte> weights, Vector256<sbyte> activations, Vector256<short> scalePair)
    {
        var pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(activations), Avx2.Sign(weights, activations));
        return lanes + Avx2.MultiplyAddAdjacent(pairs, scalePair);
    }

    /// <summary>The eight lane sums of one decoded 256-weight block against one token's permuted quants.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KLanes(sbyte* w, sbyte* a, int* scalePairs)
    {
        var lanes = Vector256<int>.Zero;
        for (int g = 0; g < Q6KGroups; g++)
        {
            lanes = Q6KGroup(lanes, Vector256.Load(w + 32 * g), Vector256.Load(a + 32 * g), Vector256.Create(scalePairs[g]).AsInt16());
        }

        return lanes;
    }

    /// <summary>
    /// Decodes one Q6_K block's quants to signed bytes (q - 32) in natural position order with each 32-byte group in
    /// lane-class order, group g being positions 32g..32g+31 (sub-blocks 2g and 2g+1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q6KDecodeGroups(byte* block, int half, out Vector256<sbyte> q1, out Vector256<sbyte> q2, out Vector256<sbyte> q3, out Vector256<sbyte> q4)
    {
        var lowMask = Vector256.Create((byte)0x0F);
        var twoBits = Vector256.Create((byte)3);
        var offset = Vector256.Create((sbyte)32);

        // The byte-wise decode commutes with the permutation, so three permutes serve the four groups.
        var ql0 = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 64 * half), QuantizedDots.LaneClassOrder);
        var ql1 = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 64 * half + 32), QuantizedDots.LaneClassOrder);
        var qh = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 128 + 32 * half), QuantizedDots.LaneClassOrder);
        q1 = ((ql0 & lowMask) | Vector256.ShiftLeft(qh & twoBits, 4)).AsSByte() - offset;
        q2 = ((ql1 & lowMask) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 2) & twoBits, 4)).AsSByte() - offset;
        q3 = (Vector256.ShiftRightLogical(ql0, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 4) & twoBits, 4)).AsSByte() - offset;
        q4 = (Vector256.ShiftRightLogical(ql1, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 6), 4)).AsSByte() - offset;
    }

    /// <summary>
    /// <see cref="Q4KBatched"/>'s tiling for Q6_K: rows in groups of four decoded once per chunk of tokens, each token
    /// quad meeting them two rows at a time (<see cref="Q6KRowPairTokenQuad"/>); every output is the arithmetic of
    /// the one-token loop below, whatever tile computes it.
    /// </summary>
    private static void Q6KBatched(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        int blocks = activations.Elements / BlockQ6K.Size;
        int tokens = activations.TokenCount;
        int tokenBytes = activations.RowBytes;
        int quantStride = blocks * BlockQ8K.Size;
        var quants = new sbyte[KQuantRowGroup * blocks * BlockQ6K.Size];
        var scalePairs = new int[KQuantRowGroup * blocks * Q6KGroups];
        var blockScales = new float[KQuantRowGroup * blocks];
        fixed (byte* rows = activations.Rows)
        fixed (byte* permuted = activations.LaneClassQuants)
        fixed (sbyte* quant = quants)
        fixed (int* scalePair = scalePairs)
        fixed (float* d = blockScales)
        {
            for (int chunkStart = 0; chunkStart < tokens; chunkStart += KQuantTokenChunk)
            {
                int chunkEnd = Math.Min(tokens, chunkStart + KQuantTokenChunk);
                for (int groupStart = 0; groupStart < rowCount; groupStart += KQuantRowGroup)
                {
                    int groupRows = Math.Min(KQuantRowGroup, rowCount - groupStart);
                    for (int g = 0; g < groupRows; g++)
                    {
                        Q6KDecodeRow(weights + (long)(groupStart + g) * rowBytes, blocks, quant + g * blocks * BlockQ6K.Size,
                            scalePair + g * blocks * Q6KGroups, d + g * blocks);
                    }

                    // Rows in pairs against token quads; what is left (a last row, the chunk's last tokens) in token pairs, then alone.
                    int pairedRows = groupRows & ~1;
                    int t = chunkStart;
                    for (; t + 4 <= chunkEnd; t += 4)
                    {
                        for (int g = 0; g < pairedRows; g += 2)
                        {
                            Q6KRowPairTokenQuad(quant + g * blocks * BlockQ6K.Size, scalePair + g * blocks * Q6KGroups, d + g * blocks, blocks,
                                rows + (long)t * tokenBytes, tokenBytes, permuted + (long)t * quantStride, output + (long)t * outputStride + groupStart + g, outputStride);
                        }
                    }

                    for (int g = 0; g < groupRows; g++)
                    {
                        sbyte* rowQuants = quant + g * blocks * BlockQ6K.Size;
                        int* rowScales = scalePair + g * blocks * Q6KGroups;
                        float* rowD = d + g * blocks;
                        int r = groupStart + g;
                        int u = g < pairedRows ? t : chunkStart;
                        for (; u + 2 <= chunkEnd; u += 2)
                        {
                            Q6KTokenPair(rowQuants, rowScales, rowD, blocks, rows + (long)u * tokenBytes, tokenBytes,
                                permuted + (long)u * quantStride, out float first, out float second);
                            output[(long)u * outputStride + r] = first;
                            output[(long)(u + 1) * outputStride + r] = second;
                        }

                        for (; u < chunkEnd; u++)
                        {
                            var sums = Vector256<float>.Zero;
                            byte* tokenRow = rows + (long)u * tokenBytes;
                            byte* tokenQuants = permuted + (long)u * quantStride;
                            for (int i = 0; i < blocks; i++)
                            {
                                var lanes = Q6KLanes(rowQuants + i * BlockQ6K.Size, (sbyte*)(tokenQuants + i * BlockQ8K.Size), rowScales + i * Q6KGroups);
                                float blockScale = rowD[i] * *(float*)(tokenRow + i * sizeof(BlockQ8K));
                                sums += Vector256.Create(blockScale) * Vector256.ConvertToSingle(lanes);
                            }

                            output[(long)u * outputStride + r] = SumLanesInOrder(sums);
                        }
                    }
                }
            }
        }
    }

    /// <summary>One Q6_K row decoded for the batched kernel: signed quants (<see cref="Q6KDecodeGroups"/>), scale pairs, float scales.</summary>
    private static void Q6KDecodeRow(byte* row, int blocks, sbyte* quant, int* scalePair, float* d)
    {
        for (int i = 0; i < blocks; i++)
        {
            byte* block = row + i * sizeof(BlockQ6K);
            d[i] = ScalarFormats.HalfToSingle(*(ushort*)(block + 208));
            sbyte* target = quant + i * BlockQ6K.Size;
            for (int half = 0; half < 2; half++)
            {
                Q6KDecodeGroups(block, half, out var q1, out var q2, out var q3, out var q4);
                q1.Store(target + 128 * half);
                q2.Store(target + 128 * half + 32);
                q3.Store(target + 128 * half + 64);
                q4.Store(target + 128 * half + 96);
            }

            // Sign-extended to int16, dword g holds the pair (scale 2g, scale 2g+1).
            Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(block + 192))).AsInt32().Store(scalePair + i * Q6KGroups);
        }
    }

    /// <summary><see cref="Q6KGroup"/> with |activations| formed once by the caller, for two rows that share a token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KGroupShared(Vector256<int> lanes, Vector256<sbyte> weights, Vector256<sbyte> activations, Vector256<byte> magnitudes, Vector256<short> scalePair)
    {
        var pairs = Avx2.MultiplyAddAdjacent(magnitudes, Avx2.Sign(weights, activations));
        return lanes + Avx2.MultiplyAddAdjacent(pairs, scalePair);
    }

    /// <summary>
    /// Two consecutive decoded rows (the second <paramref name="blocks"/> blocks after the first in every decoded array)
    /// against four consecutive tokens: each group of a token's quants is loaded (and its magnitudes formed) once for
    /// both rows, each group of a row's quants once for the four tokens; each (row, token) pair's float steps are the
    /// one-token loop's, in its order. Row 0's outputs go to <paramref name="output"/>, row 1's to the next element,
    /// token k's <paramref name="outputStride"/> times k further.
    /// </summary>
    private static void Q6KRowPairTokenQuad(sbyte* quant, int* scalePair, float* d, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, float* output, int outputStride)
    {
        sbyte* quantB = quant + blocks * BlockQ6K.Size;
        int* scalePairB = scalePair + blocks * Q6KGroups;
        float* dB = d + blocks;
        var sumsA0 = Vector256<float>.Zero;
        var sumsA1 = Vector256<float>.Zero;
        var sumsA2 = Vector256<float>.Zero;
        var sumsA3 = Vector256<float>.Zero;
        var sumsB0 = Vector256<float>.Zero;
        var sumsB1 = Vector256<float>.Zero;
        var sumsB2 = Vector256<float>.Zero;
        var sumsB3 = Vector256<float>.Zero;
        int quantStride = blocks * BlockQ8K.Size;
        for (int i = 0; i < blocks; i++)
        {
            sbyte* wA = quant + i * BlockQ6K.Size;
            sbyte* wB = quantB + i * BlockQ6K.Size;
            int* scA = scalePair + i * Q6KGroups;
            int* scB = scalePairB + i * Q6KGroups;
            sbyte* a0 = (sbyte*)(tokenQuants + i * BlockQ8K.Size);
            sbyte* a1 = a0 + quantStride;
            sbyte* a2 = a1 + quantStride;
            sbyte* a3 = a2 + quantStride;
            var lanesA0 = Vector256<int>.Zero;
            var lanesA1 = Vector256<int>.Zero;
            var lanesA2 = Vector256<int>.Zero;
            var lanesA3 = Vector256<int>.Zero;
            var lanesB0 = Vector256<int>.Zero;
            var lanesB1 = Vector256<int>.Zero;
            var lanesB2 = Vector256<int>.Zero;
            var lanesB3 = Vector256<int>.Zero;
            for (int g = 0; g < Q6KGroups; g++)
            {
                var weightsA = Vector256.Load(wA + 32 * g);
                var weightsB = Vector256.Load(wB + 32 * g);
                var scalesA = Vector256.Create(scA[g]).AsInt16();
                var scalesB = Vector256.Create(scB[g]).AsInt16();
                var y0 = Vector256.Load(a0 + 32 * g);
                var m0 = Avx2.Abs(y0);
                lanesA0 = Q6KGroupShared(lanesA0, weightsA, y0, m0, scalesA);
                lanesB0 = Q6KGroupShared(lanesB0, weightsB, y0, m0, scalesB);
                var y1 = Vector256.Load(a1 + 32 * g);
                var m1 = Avx2.Abs(y1);
                lanesA1 = Q6KGroupShared(lanesA1, weightsA, y1, m1, scalesA);
                lanesB1 = Q6KGroupShared(lanesB1, weightsB, y1, m1, scalesB);
                var y2 = Vector256.Load(a2 + 32 * g);
                var m2 = Avx2.Abs(y2);
                lanesA2 = Q6KGroupShared(lanesA2, weightsA, y2, m2, scalesA);
                lanesB2 = Q6KGroupShared(lanesB2, weightsB, y2, m2, scalesB);
                var y3 = Vector256.Load(a3 + 32 * g);
                var m3 = Avx2.Abs(y3);
                lanesA3 = Q6KGroupShared(lanesA3, weightsA, y3, m3, scalesA);
                lanesB3 = Q6KGroupShared(lanesB3, weightsB, y3, m3, scalesB);
            }

            byte* block0 = tokenRow + i * sizeof(BlockQ8K);
            var yd = Vector128.Create(*(float*)block0, *(float*)(block0 + rowBytes), *(float*)(block0 + 2 * rowBytes), *(float*)(block0 + 3 * rowBytes));
            var blockScalesA = Vector128.Create(d[i]) * yd;
            sumsA0 += Vector256.Create(blockScalesA.GetElement(0)) * Vector256.ConvertToSingle(lanesA0);
            sumsA1 += Vector256.Create(blockScalesA.GetElement(1)) * Vector256.ConvertToSingle(lanesA1);
            sumsA2 += Vector256.Create(blockScalesA.GetElement(2)) * Vector256.ConvertToSingle(lanesA2);
            sumsA3 += Vector256.Create(blockScalesA.GetElement(3)) * Vector256.ConvertToSingle(lanesA3);
            var blockScalesB = Vector128.Create(dB[i]) * yd;
            sumsB0 += Vector256.Create(blockScalesB.GetElement(0)) * Vector256.ConvertToSingle(lanesB0);
            sumsB1 += Vector256.Create(blockScalesB.GetElement(1)) * Vector256.ConvertToSingle(lanesB1);
            sumsB2 += Vector256.Create(blockScalesB.GetElement(2)) * Vector256.ConvertToSingle(lanesB2);
            sumsB3 += Vector256.Create(blockScalesB.GetElement(3)) * Vector256.ConvertToSingle(lanesB3);
        }

        output[0] = SumLanesInOrder(sumsA0);
        output[outputStride] = SumLanesInOrder(sumsA1);
        output[2L * outputStride] = SumLanesInOrder(sumsA2);
        output[3L * outputStride] = SumLanesInOrder(sumsA3);
        output[1] = SumLanesInOrder(sumsB0);
        output[outputStride + 1] = SumLanesInOrder(sumsB1);
        output[2L * outputStride + 1] = SumLanesInOrder(sumsB2);
        output[3L * outputStride + 1] = SumLanesInOrder(sumsB3);
    }

    /// <summary>ggml's final step: 0 plus the eight float lane sums, in lane order.</summary>
    private static float SumLanesInOrder(Vector256<float> sums)
    {
        float sumf = 0;
        for (int l = 0; l < 8; l++)
        {
            sumf += sums.GetElement(l);
        }

        return sumf;
    }

    /// <summary>Two consecutive tokens against one decoded row: the row's quants are loaded once for both.</summary>
    private static void Q6KTokenPair(sbyte* quant, int* scalePair, float* d, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, out float first, out float second)
    {
        var sums0 = Vector256<float>.Zero;
        var sums1 = Vector256<float>.Zero;
        byte* secondRow = tokenRow + rowBytes;
        sbyte* a0 = (sbyte*)tokenQuants;
        sbyte* a1 = (sbyte*)(tokenQuants + blocks * BlockQ8K.Size);
        for (int i = 0; i < blocks; i++)
        {
            sbyte* w = quant + i * BlockQ6K.Size;
            int* sc = scalePair + i * Q6KGroups;
            var lanes0 = Vector256<int>.Zero;
            var lanes1 = Vector256<int>.Zero;
            for (int g = 0; g < Q6KGroups; g++)
            {
                var weights = Vector256.Load(w + 32 * g);
                var scales = Vector256.Create(sc[g]).AsInt16();
                lanes0 = Q6KGroup(lanes0, weights, Vector256.Load(a0 + i * BlockQ8K.Size + 32 * g), scales);
                lanes1 = Q6KGroup(lanes1, weights, Vector256.Load(a1 + i * BlockQ8K.Size + 32 * g), scales);
            }

            float blockScale0 = d[i] * *(float*)(tokenRow + i * sizeof(BlockQ8K));
            float blockScale1 = d[i] * *(float*)(secondRow + i * sizeof(BlockQ8K));
            sums0 += Vector256.Create(blockScale0) * Vector256.ConvertToSingle(lanes0);
            sums1 += Vector256.Create(blockScale1) * Vector256.ConvertToSingle(lanes1);
        }

        first = SumLanesInOrder(sums0);
        second = SumLanesInOrder(sums1);
    }

    /// <summary>
    /// One token (generation) against Q6_K rows, nothing decoded to memory: per block the stored quants are rebuilt
    /// from their low and high bits already in lane-class order, the sixteen scales sign-extended to (scale, scale) word
    /// pairs, then <see cref="Q6KGroupUnsigned"/> per group (the token's 32 * y pair sums formed once per call, so no
    /// per-weight offset or sign step) and ggml's float steps.
    /// </summary>
    private static void Q6KOneToken(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output)
    {
        int blocks = activations.Elements / BlockQ6K.Size;
        if (activations.Q6KOffsetSums is null)
        {
            throw new InvalidOperationException("One-token Q6_K activations were packed without their offset sums.");
        }

        fixed (byte* rows = activations.Rows)
        fixed (byte* permuted = activations.LaneClassQuants)
        fixed (short* offsetSums = activations.Q6KOffsetSums)
        {
            for (int r = 0; r < rowCount; r++)
            {
                byte* row = weights + (long)r * rowBytes;
                var sums = Vector256<float>.Zero;
                for (int i = 0; i < blocks; i++)
                {
                    byte* block = row + i * sizeof(BlockQ6K);
                    sbyte* a = (sbyte*)(permuted + i * BlockQ8K.Size);
                    short* o = offsetSums + i * Q6KGroups * 16;
                    var scales = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(block + 192))).AsInt32();
                    var lanes = Vector256<int>.Zero;
                    for (int half = 0; half < 2; half++)
                    {
                        Q6KDecodeUnsigned(block, half, out var q1, out var q2, out var q3, out var q4);
                        int g = 4 * half;
                        lanes = Q6KGroupUnsigned(lanes, q1, Vector256.Load(a + 32 * g), Vector256.Load(o + 16 * g), Avx2.PermuteVar8x32(scales, Vector256.Create(g)).AsInt16());
                        lanes = Q6KGroupUnsigned(lanes, q2, Vector256.Load(a + 32 * g + 32), Vector256.Load(o + 16 * g + 16), Avx2.PermuteVar8x32(scales, Vector256.Create(g + 1)).AsInt16());
                        lanes = Q6KGroupUnsigned(lanes, q3, Vector256.Load(a + 32 * g + 64), Vector256.Load(o + 16 * g + 32), Avx2.PermuteVar8x32(scales, Vector256.Create(g + 2)).AsInt16());
                        lanes = Q6KGroupUnsigned(lanes, q4, Vector256.Load(a + 32 * g + 96), Vector256.Load(o + 16 * g + 48), Avx2.PermuteVar8x32(scales, Vector256.Create(g + 3)).AsInt16());
                    }

                    float blockScale = ScalarFormats.HalfToSingle(*(ushort*)(block + 208)) * *(float*)(rows + i * sizeof(BlockQ8K));
                    sums += Vector256.Create(blockScale) * Vector256.ConvertToSingle(lanes);
                }

                output[r] = SumLanesInOrder(sums);
            }
        }
    }
}
