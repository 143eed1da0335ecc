using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Q4_K weights times a batch of Q8_K tokens: <see cref="QuantizedDots.Q4K"/>'s arithmetic for every (row, token)
/// pair, with the work that does not depend on the pair done once. Each weight row is decoded once per pass over a chunk
/// of tokens (nibbles in lane-class order, scales, mins, float scales) and each token's quants are permuted once per
/// batch, so a pair costs eight four-product dots (<see cref="QuantizedDots.NibbleDot4"/>: AVX-VNNI, or AVX2 with the
/// same lanes) and scale multiplies per 256 weights, the mins one pairwise multiply-add, and ggml's float steps. Pairs
/// are computed two rows by four tokens at a time, so each load of quants or nibbles serves several products.
/// </summary>
public static unsafe partial class MatrixProduct
{
    private const int SubBlocks = BlockQ4K.Size / 32;

    /// <summary>True when <see cref="Multiply"/> runs the batched Q4_K kernel on this CPU.</summary>
    public static bool IsBatchedQ4K(GgmlType weightType) =>
        weightType == GgmlType.Q4_K && QuantizedDots.UseAdvancedIsa && Avx2.IsSupported && Avx512Vbmi.VL.IsSupported;

    /// <summary>Every token's Q8_K quants, each 32-byte group permuted into lane-class order.</summary>
    private static void PermuteQ8K(PackedActivations packed)
    {
        int blocks = packed.Elements / BlockQ8K.Size;
        var permuted = new byte[(long)packed.TokenCount * blocks * BlockQ8K.Size];
        fixed (byte* rows = packed.Rows)
        fixed (byte* target = permuted)
        {
            for (int t = 0; t < packed.TokenCount; t++)
            {
                for (int i = 0; i < blocks; i++)
                {
                    byte* q8 = rows + (long)t * packed.RowBytes + i * sizeof(BlockQ8K) + sizeof(float);
                    byte* destination = target + ((long)t * blocks + i) * BlockQ8K.Size;
                    for (int s = 0; s < SubBlocks; s++)
                    {
                        Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(q8 + 32 * s), QuantizedDots.LaneClassOrder).Store(destination + 32 * s);
                    }
                }
            }
        }

        packed.LaneClassQuants = permuted;
    }

    // Tokens per pass over the rows: their Q8_K quants and sums (about 2.3 KB a token for 2048-wide rows) stay in a
    // core's L2 cache while every row group meets them; longer batches (attention projections) take several passes.
    private const int KQuantTokenChunk = 128;

    // Rows decoded together: a token quad's quants, loaded from L2 for the group's first row pair, are still in L1
    // for the second (four decoded 2048-wide rows and a quad's quants together fill about 20 KB).
    private const int KQuantRowGroup = 4;

    /// <summary>
    /// Rows in groups of four, decoded once per pass over a chunk of tokens; each token quad meets the group two rows at
    /// a time (<see cref="RowPairTokenQuad"/>), so every load of a token's quants serves two rows and every load of a
    /// row's nibbles four tokens. Each (row, token) output is <see cref="OneToken"/>'s arithmetic, whatever tile
    /// computes it.
    /// </summary>
    private static void Q4KBatched(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        int blocks = activations.Elements / BlockQ4K.Size;
        int tokens = activations.TokenCount;
        int tokenBytes = activations.RowBytes;
        int quantStride = blocks * BlockQ8K.Size;
        var nibbles = new byte[KQuantRowGroup * blocks * BlockQ4K.Size];
        var scales = new int[KQuantRowGroup * blocks * SubBlocks];
        var mins = new short[KQuantRowGroup * blocks * 16];
        var blockScales = new float[KQuantRowGroup * blocks];
        var blockMins = new float[KQuantRowGroup * blocks];
        fixed (byte* rows = activations.Rows)
        fixed (byte* permuted = activations.LaneClassQuants)
        fixed (byte* nibble = nibbles)
        fixed (int* scale = scales)
        fixed (short* min = mins)
        fixed (float* d = blockScales)
        fixed (float* dmin = blockMins)
        {
            for (int chunkStart = 0; chunkStart < tokens; chunkStart += KQuantTokenChunk)
            {
                int chunkEnd = Math.Min(tokens, chunkStart + KQuantTokenChunk);
                for (int groupStart = 0; groupStart < rowCount; groupStart += KQuantRowGroup)
                {
                    int groupRows = Math.Min(KQuantRowGroup, rowCount - groupStart);
                    for (int g = 0; g < groupRows; g++)
                    {
                        DecodeQ4KRow(weights + (long)(groupStart + g) * rowBytes, blocks, nibble + g * blocks * BlockQ4K.Size,
                            scale + g * blocks * SubBlocks, min + g * blocks * 16, d + g * blocks, dmin + g * blocks);
                    }

                    int t = chunkStart;
                    for (; t + 4 <= chunkEnd; t += 4)
                    {
                        byte* tokenRow = rows + (long)t * tokenBytes;
                        byte* tokenQuants = permuted + (long)t * quantStride;
                        float* target = output + (long)t * outputStride + groupStart;
                        int g = 0;
                        for (; g + 2 <= groupRows; g += 2)
                        {
                            RowPairTokenQuad(nibble + g * blocks * BlockQ4K.Size, scale + g * blocks * SubBlocks, min + g * blocks * 16,
                                d + g * blocks, dmin + g * blocks, blocks, tokenRow, tokenBytes, tokenQuants, target + g, outputStride);
                        }

                        if (g < groupRows)
                        {
                            TokenQuad(nibble + g * blocks * BlockQ4K.Size, scale + g * blocks * SubBlocks, min + g * blocks * 16,
                                d + g * blocks, dmin + g * blocks, blocks, tokenRow, tokenBytes, tokenQuants, target + g, outputStride);
                        }
                    }

                    for (int g = 0; g < groupRows; g++)
                    {
                        byte* w = nibble + g * blocks * BlockQ4K.Size;
                        int* sc = scale + g * blocks * SubBlocks;
                        short* mn = min + g * blocks * 16;
                        float* rowD = d + g * blocks;
                        float* rowDmin = dmin + g * blocks;
                        int r = groupStart + g;
                        int u = t;
                        for (; u + 2 <= chunkEnd; u += 2)
                        {
                            TokenPair(w, sc, mn, rowD, rowDmin, blocks, rows + (long)u * tokenBytes, tokenBytes,
                                permuted + (long)u * quantStride, out float first, out float second);
                            output[(long)u * outputStride + r] = first;
                            output[(long)(u + 1) * outputStride + r] = second;
                        }

                        for (; u < chunkEnd; u++)
                        {
                            output[(long)u * outputStride + r] = OneToken(w, sc, mn, rowD, rowDmin, blocks, rows + (long)u * tokenBytes,
                                permuted + (long)u * quantStride);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// One Q4_K row decoded for the batched kernels: nibbles in lane-class order (low then high half of each 32-byte
    /// group), each sub-block scale in both halves of a dword, each min twice (one per 16-quant Q8_K group sum), the
    /// block's float scales.
    /// </summary>
    private static void DecodeQ4KRow(byte* row, int blocks, byte* nibble, int* scale, short* min, float* d, float* dmin)
    {
        var lowMask = Vector256.Create((byte)0x0F);
        for (int i = 0; i < blocks; i++)
        {
            byte* block = row + i * sizeof(BlockQ4K);
            d[i] = ScalarFormats.HalfToSingle(*(ushort*)block);
            dmin[i] = ScalarFormats.HalfToSingle(*(ushort*)(block + 2));
            UnpackScalesAndMins(block, out var scalePairs, out var minPairs);
            scalePairs.Store(scale + i * SubBlocks);
            minPairs.Store(min + i * 16);
            for (int j = 0; j < 4; j++)
            {
                var packed = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 16 + 32 * j), QuantizedDots.LaneClassOrder);
                (packed & lowMask).Store(nibble + i * BlockQ4K.Size + 64 * j);
                Vector256.ShiftRightLogical(packed, 4).Store(nibble + i * BlockQ4K.Size + 64 * j + 32);
            }
        }
    }

    /// <summary>
    /// <see cref="KQuantScales.ScaleMin"/> for all eight sub-blocks of a Q4_K block at once, with byte shuffles (as
    /// <see cref="Q4KOneToken"/> unpacks them): dword s of <paramref name="scalePairs"/> holds scale s in both 16-bit
    /// halves, words 2s and 2s + 1 of <paramref name="minPairs"/> hold min s (one per 16-quant Q8_K group sum).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void UnpackScalesAndMins(byte* block, out Vector256<int> scalePairs, out Vector256<short> minPairs)
    {
        // Bytes 0-7 of the result: scales 0-7, bytes 8-15: mins 0-7. The 16-byte load's last four bytes (quants) are never selected.
        var q = Vector128.Load(block + 4);
        var arranged = Ssse3.Shuffle(q, Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
        var high = Ssse3.Shuffle(q, Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7));
        var fourBits = Vector128.Create((byte)15);
        var minLanes = Vector128.Create(0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF).AsByte();
        var packedLanes = Vector128.Create(0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF).AsByte();
        var nibbles = Vector128.ConditionalSelect(minLanes, (arranged.AsUInt16() >> 4).AsByte() & fourBits, arranged & fourBits);
        var upper = nibbles | ((high.AsUInt16() >> 2).AsByte() & Vector128.Create((byte)0x30));
        var decoded = Vector128.ConditionalSelect(packedLanes, upper, arranged & Vector128.Create((byte)63));
        var scales = Avx2.ConvertToVector256Int32(decoded);
        scalePairs = scales | Vector256.ShiftLeft(scales, 16);
        minPairs = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(decoded, Vector128.Create((byte)8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
    }

    /// <summary>
    /// The sums of one block's eight mins times each of four tokens' Q8_K group sums (ggml's <c>sumi</c>), lane k for
    /// token k: exact integer multiply-adds, folded with horizontal additions.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> MinSums4(Vector256<short> mins, Vector256<short> bsums0, Vector256<short> bsums1, Vector256<short> bsums2, Vector256<short> bsums3)
    {
        var m0 = Avx2.MultiplyAddAdjacent(bsums0, mins);
        var m1 = Avx2.MultiplyAddAdjacent(bsums1, mins);
        var m2 = Avx2.MultiplyAddAdjacent(bsums2, mins);
        var m3 = Avx2.MultiplyAddAdjacent(bsums3, mins);
        var folded = Avx2.HorizontalAdd(Avx2.HorizontalAdd(m0, m1), Avx2.HorizontalAdd(m2, m3));
        return folded.GetLower() + folded.GetUpper();
    }

    /// <summary>
    /// <see cref="TokenQuad"/> for two consecutive decoded rows (the second <paramref name="blocks"/> blocks after the
    /// first in every decoded array) and four consecutive tokens: each 32-byte group of a token's quants is loaded once
    /// for both rows, each group of a row's nibbles once for the four tokens, the eight lane sums stay in registers, and
    /// each (row, token) pair's float steps are <see cref="OneToken"/>'s, in its order. Row 0's outputs go to
    /// <paramref name="output"/>, row 1's to the next element, token k's <paramref name="outputStride"/> times k further.
    /// </summary>
    private static void RowPairTokenQuad(byte* nibble, int* scale, short* min, float* d, float* dmin, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, float* output, int outputStride)
    {
        byte* nibbleB = nibble + blocks * BlockQ4K.Size;
        int* scaleB = scale + blocks * SubBlocks;
        short* minB = min + blocks * 16;
        float* dB = d + blocks;
        float* dminB = dmin + blocks;
        var sumsA0 = Vector256<float>.Zero;
        var sumsA1 = Vector256<float>.Zero;
        var sumsA2 = Vector256<float>.Zero;
        var sumsA3 = Vector256<float>.Zero;
        var sumsB0 = Vector256<float>.Zero;
        var sumsB1 = Vector256<float>.Zero;
        var sumsB2 = Vector256<float>.Zero;
        var sumsB3 = Vector256<float>.Zero;
        var sumfA = Vector128<float>.Zero;
        var sumfB = Vector128<float>.Zero;
        int quantStride = blocks * BlockQ8K.Size;
        const int BsumsOffset = sizeof(float) + BlockQ8K.Size;
        for (int i = 0; i < blocks; i++)
        {
            byte* wA = nibble + i * BlockQ4K.Size;
            byte* wB = nibbleB + i * BlockQ4K.Size;
            int* scA = scale + i * SubBlocks;
            int* scB = scaleB + i * SubBlocks;
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
            for (int s = 0; s < SubBlocks; s++)
            {
                var weightsA = Vector256.Load(wA + 32 * s);
                var weightsB = Vector256.Load(wB + 32 * s);
                var scalePairsA = Vector256.Create(scA[s]);
                var scalePairsB = Vector256.Create(scB[s]);
                var y0 = Vector256.Load(a0 + 32 * s);
                lanesA0 += QuantizedDots.ScaledNibbleDot4(weightsA, y0, scalePairsA);
                lanesB0 += QuantizedDots.ScaledNibbleDot4(weightsB, y0, scalePairsB);
                var y1 = Vector256.Load(a1 + 32 * s);
                lanesA1 += QuantizedDots.ScaledNibbleDot4(weightsA, y1, scalePairsA);
                lanesB1 += QuantizedDots.ScaledNibbleDot4(weightsB, y1, scalePairsB);
                var y2 = Vector256.Load(a2 + 32 * s);
                lanesA2 += QuantizedDots.ScaledNibbleDot4(weightsA, y2, scalePairsA);
                lanesB2 += QuantizedDots.ScaledNibbleDot4(weightsB, y2, scalePairsB);
                var y3 = Vector256.Load(a3 + 32 * s);
                lanesA3 += QuantizedDots.ScaledNibbleDot4(weightsA, y3, scalePairsA);
                lanesB3 += QuantizedDots.ScaledNibbleDot4(weightsB, y3, scalePairsB);
            }

            byte* block0 = tokenRow + i * sizeof(BlockQ8K);
            byte* block1 = block0 + rowBytes;
            byte* block2 = block1 + rowBytes;
            byte* block3 = block2 + rowBytes;
            var bsums0 = Vector256.Load((short*)(block0 + BsumsOffset));
            var bsums1 = Vector256.Load((short*)(block1 + BsumsOffset));
            var bsums2 = Vector256.Load((short*)(block2 + BsumsOffset));
            var bsums3 = Vector256.Load((short*)(block3 + BsumsOffset));
            var sumiA = MinSums4(Vector256.Load(min + i * 16), bsums0, bsums1, bsums2, bsums3);
            var sumiB = MinSums4(Vector256.Load(minB + i * 16), bsums0, bsums1, bsums2, bsums3);
            var yd = Vector128.Create(*(float*)block0, *(float*)block1, *(float*)block2, *(float*)block3);

            var blockScalesA = Vector128.Create(d[i]) * yd;
            sumsA0 += Vector256.Create(blockScalesA.GetElement(0)) * Vector256.ConvertToSingle(lanesA0);
            sumsA1 += Vector256.Create(blockScalesA.GetElement(1)) * Vector256.ConvertToSingle(lanesA1);
            sumsA2 += Vector256.Create(blockScalesA.GetElement(2)) * Vector256.ConvertToSingle(lanesA2);
            sumsA3 += Vector256.Create(blockScalesA.GetElement(3)) * Vector256.ConvertToSingle(lanesA3);
            var minScalesA = Vector128.Create(dmin[i]) * yd;
            sumfA -= minScalesA * Vector128.ConvertToSingle(sumiA);

            var blockScalesB = Vector128.Create(dB[i]) * yd;
            sumsB0 += Vector256.Create(blockScalesB.GetElement(0)) * Vector256.ConvertToSingle(lanesB0);
            sumsB1 += Vector256.Create(blockScalesB.GetElement(1)) * Vector256.ConvertToSingle(lanesB1);
            sumsB2 += Vector256.Create(blockScalesB.GetElement(2)) * Vector256.ConvertToSingle(lanesB2);
            sumsB3 += Vector256.Create(blockScalesB.GetElement(3)) * Vector256.ConvertToSingle(lanesB3);
            var minScalesB = Vector128.Create(dminB[i]) * yd;
            sumfB -= minScalesB * Vector128.ConvertToSingle(sumiB);
        }

        StoreQuad(sumfA, sumsA0, sumsA1, sumsA2, sumsA3, output, outputStride);
        StoreQuad(sumfB, sumsB0, sumsB1, sumsB2, sumsB3, output + 1, outputStride);
    }

    /// <summary>ggml's last step for four tokens of one row: each token's sumf plus its eight lane sums, in lane order.</summary>
    private static void StoreQuad(Vector128<float> sumf, Vector256<float> sums0, Vector256<float> sums1, Vector256<float> sums2, Vector256<float> sums3, float* output, int outputStride)
    {
        float sumf0 = sumf.GetElement(0), sumf1 = sumf.GetElement(1), sumf2 = sumf.GetElement(2), sumf3 = sumf.GetElement(3);
        for (int l = 0; l < 8; l++)
        {
            sumf0 += sums0.GetElement(l);
            sumf1 += sums1.GetElement(l);
            sumf2 += sums2.GetElement(l);
            sumf3 += sums3.GetElement(l);
        }

        output[0] = sumf0;
        output[outputStride] = sumf1;
        output[2L * outputStride] = sumf2;
        output[3L * outputStride] = sumf3;
    }

    /// <summary>
    /// The eight lane sums of one 256-weight block: eight four-product dots (one per 32-weight sub-block) times the
    /// sub-block scales, <paramref name="sc"/> holding each scale in both halves of a dword (<see cref="QuantizedDots.ScaledNibbleDot4"/>).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4KLanes(byte* w, sbyte* a, int* sc)
    {
        var lanes = QuantizedDots.ScaledNibbleDot4(Vector256.Load(w), Vector256.Load(a), Vector256.Create(sc[0]));
        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 32), Vector256.Load(a + 32), Vector256.Create(sc[1]));
        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 64), Vector256.Load(a + 64), Vector256.Create(sc[2]));
        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 96), Vector256.Load(a + 96), Vector256.Create(sc[3]));
        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 128), Vector256.Load(a + 128), Vector256.Create(sc[4]));
        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 160), Vector256.Load(a + 160), Vector256.Create(sc[5]));
        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 192), Vector256.Load(a + 192), Vector256.Create(sc[6]));
        return lanes + QuantizedDots.ScaledNibbleDot4(Vector256.Load(w + 224), Vector256.Load(a + 224), Vector256.Create(sc[7]));
    }

    /// <summary>One decoded row against one token: <see cref="QuantizedDots.Q4K"/>'s float steps, in its order.</summary>
    private static float OneToken(byte* nibble, int* scale, short* min, float* d, float* dmin, int blocks, byte* tokenRow, byte* tokenQuants)
    {
        var sums = Vector256<float>.Zero;
        float sumf = 0;
        for (int i = 0; i < blocks; i++)
        {
            var lanes = Q4KLanes(nibble + i * BlockQ4K.Size, (sbyte*)(tokenQuants + i * BlockQ8K.Size), scale + i * SubBlocks);
            byte* tokenBlock = tokenRow + i * sizeof(BlockQ8K);
            float yd = *(float*)tokenBlock;
            int sumi = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(tokenBlock + sizeof(float) + BlockQ8K.Size)), Vector256.Load(min + i * 16)));
            float blockScale = d[i] * yd;
            sums += Vector256.Create(blockScale) * Vector256.ConvertToSingle(lanes);
            float minScale = dmin[i] * yd;
            sumf -= minScale * sumi;
        }

        for (int l = 0; l < 8; l++)
        {
            sumf += sums.GetElement(l);
        }

        return sumf;
    }

    /// <summary>
    /// <see cref="OneToken"/> for four consecutive tokens at once: each 32-byte group of the row's nibbles and its scale
    /// are loaded once for the four, the four tokens' min sums are reduced together (exact integer additions), and the
    /// scalar float steps run in the four lanes of one vector, each lane doing <see cref="OneToken"/>'s operations in its
    /// order (a multiply, then a multiply and a subtraction, rounded each time).
    /// </summary>
    private static void TokenQuad(byte* nibble, int* scale, short* min, float* d, float* dmin, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, float* output, int outputStride)
    {
        var sums0 = Vector256<float>.Zero;
        var sums1 = Vector256<float>.Zero;
        var sums2 = Vector256<float>.Zero;
        var sums3 = Vector256<float>.Zero;
        var sumf = Vector128<float>.Zero;
        int quantStride = blocks * BlockQ8K.Size;
        const int BsumsOffset = sizeof(float) + BlockQ8K.Size;
        for (int i = 0; i < blocks; i++)
        {
            byte* w = nibble + i * BlockQ4K.Size;
            int* sc = scale + i * SubBlocks;
            sbyte* a0 = (sbyte*)(tokenQuants + i * BlockQ8K.Size);
            sbyte* a1 = a0 + quantStride;
            sbyte* a2 = a1 + quantStride;
            sbyte* a3 = a2 + quantStride;
            var lanes0 = Vector256<int>.Zero;
            var lanes1 = Vector256<int>.Zero;
            var lanes2 = Vector256<int>.Zero;
            var lanes3 = Vector256<int>.Zero;
            for (int s = 0; s < SubBlocks; s++)
            {
                var weights = Vector256.Load(w + 32 * s);
                var scalePairs = Vector256.Create(sc[s]);
                lanes0 += QuantizedDots.ScaledNibbleDot4(weights, Vector256.Load(a0 + 32 * s), scalePairs);
                lanes1 += QuantizedDots.ScaledNibbleDot4(weights, Vector256.Load(a1 + 32 * s), scalePairs);
                lanes2 += QuantizedDots.ScaledNibbleDot4(weights, Vector256.Load(a2 + 32 * s), scalePairs);
                lanes3 += QuantizedDots.ScaledNibbleDot4(weights, Vector256.Load(a3 + 32 * s), scalePairs);
            }

            byte* block0 = tokenRow + i * sizeof(BlockQ8K);
            byte* block1 = block0 + rowBytes;
            byte* block2 = block1 + rowBytes;
            byte* block3 = block2 + rowBytes;
            var sumi = MinSums4(Vector256.Load(min + i * 16), Vector256.Load((short*)(block0 + BsumsOffset)), Vector256.Load((short*)(block1 + BsumsOffset)),
                Vector256.Load((short*)(block2 + BsumsOffset)), Vector256.Load((short*)(block3 + BsumsOffset)));
            var yd = Vector128.Create(*(float*)block0, *(float*)block1, *(float*)block2, *(float*)block3);
            var blockScales = Vector128.Create(d[i]) * yd;
            sums0 += Vector256.Create(blockScales.GetElement(0)) * Vector256.ConvertToSingle(lanes0);
            sums1 += Vector256.Create(blockScales.GetElement(1)) * Vector256.ConvertToSingle(lanes1);
            sums2 += Vector256.Create(blockScales.GetElement(2)) * Vector256.ConvertToSingle(lanes2);
            sums3 += Vector256.Create(blockScales.GetElement(3)) * Vector256.ConvertToSingle(lanes3);
            var minScales = Vector128.Create(dmin[i]) * yd;
            sumf -= minScales * Vector128.ConvertToSingle(sumi);
        }

        StoreQuad(sumf, sums0, sums1, sums2, sums3, output, outputStride);
    }

    /// <summary><see cref="OneToken"/> for two consecutive tokens at once: the row's nibbles are loaded once for both.</summary>
    private static void TokenPair(byte* nibble, int* scale, short* min, float* d, float* dmin, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, out float first, out float second)
    {
        var sums0 = Vector256<float>.Zero;
        var sums1 = Vector256<float>.Zero;
        float sumf0 = 0, sumf1 = 0;
        byte* secondRow = tokenRow + rowBytes;
        byte* secondQuants = tokenQuants + blocks * BlockQ8K.Size;
        for (int i = 0; i < blocks; i++)
        {
            byte* w = nibble + i * BlockQ4K.Size;
            int* sc = scale + i * SubBlocks;
            var lanes0 = Q4KLanes(w, (sbyte*)(tokenQuants + i * BlockQ8K.Size), sc);
            var lanes1 = Q4KLanes(w, (sbyte*)(secondQuants + i * BlockQ8K.Size), sc);
            var mins = Vector256.Load(min + i * 16);
            byte* block0 = tokenRow + i * sizeof(BlockQ8K);
            byte* block1 = secondRow + i * sizeof(BlockQ8K);
            float yd0 = *(float*)block0;
            float yd1 = *(float*)block1;
            int sumi0 = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(block0 + sizeof(float) + BlockQ8K.Size)), mins));
            int sumi1 = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(block1 + sizeof(float) + BlockQ8K.Size)), mins));
            float blockScale0 = d[i] * yd0;
            float blockScale1 = d[i] * yd1;
            sums0 += Vector256.Create(blockScale0) * Vector256.ConvertToSingle(lanes0);
            sums1 += Vector256.Create(blockScale1) * Vector256.ConvertToSingle(lanes1);
            float minScale0 = dmin[i] * yd0;
            float minScale1 = dmin[i] * yd1;
            sumf0 -= minScale0 * sumi0;
            sumf1 -= minScale1 * sumi1;
        }

        for (int l = 0; l < 8; l++)
        {
            sumf0 += sums0.GetElement(l);
            sumf1 += sums1.GetElement(l);
        }

        first = sumf0;
        second = sumf1;
    }

    /// <summary>
    /// One token (generation) against Q4_K rows, nothing decoded to memory: per block the 6-bit scales and mins are
    /// unpacked with byte shuffles (scales to int32 lanes, mins paired for the Q8_K group sums), the nibbles permuted
    /// into lane-class order, eight VNNI dots scaled and summed, then ggml's float steps.
    /// </summary>
    private static void Q4KOneToken(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output)
    {
        int blocks = activations.Elements / BlockQ4K.Size;
        var lowMask = Vector256.Create((byte)0x0F);
        var gather = Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
        var gatherHigh = Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7);
        var pairMins = Vector128.Create((byte)8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        var sixBits = Vector128.Create((byte)63);
        var fourBits = Vector128.Create((byte)15);
        var topBits = Vector128.Create((byte)0x30);
        var packedLanes = Vector128.Create(0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF).AsByte();
        var minLanes = Vector128.Create(0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF).AsByte();
        fixed (byte* rows = activations.Rows)
        fixed (byte* permuted = activations.LaneClassQuants)
        {
            for (int r = 0; r < rowCount; r++)
            {
                byte* row = weights + (long)r * rowBytes;
                var sums = Vector256<float>.Zero;
                float sumf = 0;
                for (int i = 0; i < blocks; i++)
                {
                    byte* block = row + i * sizeof(BlockQ4K);

                    // Bytes 0-7: scales 0-7, bytes 8-15: mins 0-7 (KQuantScales.ScaleMin for all eight at once).
                    var q = Vector128.Load(block + 4);
                    var arranged = Ssse3.Shuffle(q, gather);
                    var high = Ssse3.Shuffle(q, gatherHigh);
                    var nibbles = Vector128.ConditionalSelect(minLanes, (arranged.AsUInt16() >> 4).AsByte() & fourBits, arranged & fourBits);
                    var upper = nibbles | ((high.AsUInt16() >> 2).AsByte() & topBits);
                    var decoded = Vector128.ConditionalSelect(packedLanes, upper, arranged & sixBits);
                    var scales = Avx2.ConvertToVector256Int32(decoded);
                    var scalePairs = scales | Vector256.ShiftLeft(scales, 16);
                    var mins = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(decoded, pairMins));

                    sbyte* a = (sbyte*)(permuted + i * BlockQ8K.Size);
                    var lanes = Vector256<int>.Zero;
                    for (int j = 0; j < 4; j++)
                    {
                        var packed = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 16 + 32 * j), QuantizedDots.LaneClassOrder);
                        lanes += QuantizedDots.ScaledNibbleDot4(packed & lowMask, Vector256.Load(a + 64 * j),
                            Avx2.PermuteVar8x32(scalePairs, Vector256.Create(2 * j)));
                        lanes += QuantizedDots.ScaledNibbleDot4(Vector256.ShiftRightLogical(packed, 4), Vector256.Load(a + 64 * j + 32),
                            Avx2.PermuteVar8x32(scalePairs, Vector256.Create(2 * j + 1)));
                    }

                    byte* tokenBlock = rows + i * sizeof(BlockQ8K);
                    float yd = *(float*)tokenBlock;
                    int sumi = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(tokenBlock + sizeof(float) + BlockQ8K.Size)), mins));
                    float blockScale = ScalarFormats.HalfToSingle(*(ushort*)block) * yd;
                    sums += Vector256.Create(blockScale) * Vector256.ConvertToSingle(lanes);
                    float minScale = ScalarFormats.HalfToSingle(*(ushort*)(block + 2)) * yd;
                    sumf -= minScale * sumi;
                }

                for (int l = 0; l < 8; l++)
                {
                    sumf += sums.GetElement(l);
                }

                output[r] = sumf;
            }
        }
    }
}
