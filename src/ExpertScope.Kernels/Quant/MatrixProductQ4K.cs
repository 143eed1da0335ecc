using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Q4_K weights times a batch of Q8_K tokens: <see cref="QuantizedDots.Q4K"/>'s arithmetic for every (row, token)
/// pair, with the work that does not depend on the pair done once. Each weight row is decoded once per call (nibbles in
/// lane-class order, scales, mins, float scales) and each token's quants are permuted once per batch, so a pair costs
/// eight four-product dots (<see cref="QuantizedDots.NibbleDot4"/>: AVX-VNNI, or AVX2 with the same lanes) and scale
/// multiplies per 256 weights, the mins one pairwise multiply-add, and ggml's float steps.
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

    private static void Q4KBatched(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        int blocks = activations.Elements / BlockQ4K.Size;
        int tokens = activations.TokenCount;
        var lowMask = Vector256.Create((byte)0x0F);
        var nibbles = new byte[blocks * BlockQ4K.Size];
        var scales = new int[blocks * SubBlocks];
        var mins = new short[blocks * 16];
        var d = new float[blocks];
        var dmin = new float[blocks];
        fixed (byte* rows = activations.Rows)
        fixed (byte* permuted = activations.LaneClassQuants)
        fixed (byte* nibble = nibbles)
        fixed (int* scale = scales)
        fixed (short* min = mins)
        {
            for (int r = 0; r < rowCount; r++)
            {
                byte* row = weights + (long)r * rowBytes;
                for (int i = 0; i < blocks; i++)
                {
                    byte* block = row + i * sizeof(BlockQ4K);
                    var scalesAndMins = new ReadOnlySpan<byte>(block + 4, 12);
                    d[i] = ScalarFormats.HalfToSingle(*(ushort*)block);
                    dmin[i] = ScalarFormats.HalfToSingle(*(ushort*)(block + 2));
                    for (int s = 0; s < SubBlocks; s++)
                    {
                        var (sc, mn) = KQuantScales.ScaleMin(s, scalesAndMins);
                        scale[i * SubBlocks + s] = sc * 0x10001;

                        // The Q8_K group sums come in 16s, two per 32-quant sub-block.
                        min[i * 16 + 2 * s] = mn;
                        min[i * 16 + 2 * s + 1] = mn;
                    }

                    for (int j = 0; j < 4; j++)
                    {
                        var packed = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 16 + 32 * j), QuantizedDots.LaneClassOrder);
                        (packed & lowMask).Store(nibble + i * BlockQ4K.Size + 64 * j);
                        Vector256.ShiftRightLogical(packed, 4).Store(nibble + i * BlockQ4K.Size + 64 * j + 32);
                    }
                }

                int t = 0;
                for (; t + 4 <= tokens; t += 4)
                {
                    TokenQuad(nibble, scale, min, d, dmin, blocks, rows + (long)t * activations.RowBytes, activations.RowBytes,
                        permuted + (long)t * blocks * BlockQ8K.Size, output + (long)t * outputStride + r, outputStride);
                }

                for (; t + 2 <= tokens; t += 2)
                {
                    TokenPair(nibble, scale, min, d, dmin, blocks, rows + (long)t * activations.RowBytes, activations.RowBytes,
                        permuted + (long)t * blocks * BlockQ8K.Size, out float first, out float second);
                    output[(long)t * outputStride + r] = first;
                    output[(long)(t + 1) * outputStride + r] = second;
                }

                for (; t < tokens; t++)
                {
                    output[(long)t * outputStride + r] = OneToken(nibble, scale, min, d, dmin, blocks, rows + (long)t * activations.RowBytes,
                        permuted + (long)t * blocks * BlockQ8K.Size);
                }
            }
        }
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
    private static float OneToken(byte* nibble, int* scale, short* min, float[] d, float[] dmin, int blocks, byte* tokenRow, byte* tokenQuants)
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
    private static void TokenQuad(byte* nibble, int* scale, short* min, float[] d, float[] dmin, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, float* output, int outputStride)
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
            var mins = Vector256.Load(min + i * 16);
            var m0 = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(block0 + BsumsOffset)), mins);
            var m1 = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(block1 + BsumsOffset)), mins);
            var m2 = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(block2 + BsumsOffset)), mins);
            var m3 = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(block3 + BsumsOffset)), mins);
            var folded = Avx2.HorizontalAdd(Avx2.HorizontalAdd(m0, m1), Avx2.HorizontalAdd(m2, m3));
            var sumi = folded.GetLower() + folded.GetUpper();
            var yd = Vector128.Create(*(float*)block0, *(float*)block1, *(float*)block2, *(float*)block3);
            var blockScales = Vector128.Create(d[i]) * yd;
            sums0 += Vector256.Create(blockScales.GetElement(0)) * Vector256.ConvertToSingle(lanes0);
            sums1 += Vector256.Create(blockScales.GetElement(1)) * Vector256.ConvertToSingle(lanes1);
            sums2 += Vector256.Create(blockScales.GetElement(2)) * Vector256.ConvertToSingle(lanes2);
            sums3 += Vector256.Create(blockScales.GetElement(3)) * Vector256.ConvertToSingle(lanes3);
            var minScales = Vector128.Create(dmin[i]) * yd;
            sumf -= minScales * Vector128.ConvertToSingle(sumi);
        }

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

    /// <summary><see cref="OneToken"/> for two consecutive tokens at once: the row's nibbles are loaded once for both.</summary>
    private static void TokenPair(byte* nibble, int* scale, short* min, float[] d, float[] dmin, int blocks, byte* tokenRow, int rowBytes, byte* tokenQuants, out float first, out float second)
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
