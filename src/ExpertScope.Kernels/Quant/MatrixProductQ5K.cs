using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Q5_K weights times Q8_K tokens: ggml's <c>vec_dot_q5_K_q8_K</c> (<see cref="ReferenceDots.Q5K"/>) for every
/// (row, token) pair. Quants (0..31) and activations in lane-class order put the four positions of lane l of one
/// 32-weight sub-block in dword l; a pairwise byte multiply-add (unsigned quants times signed activations, at most
/// 2 * 31 * 128 per word) and a word multiply-add against (scale, scale) give the scaled lane sums exactly. The mins
/// come from the Q8_K group sums; the float steps keep ggml's order. AVX2 and AVX-512 VBMI's byte permute, no VNNI.
/// </summary>
public static unsafe partial class MatrixProduct
{
    private const int Q5KSubBlocks = BlockQ5K.Size / 32;

    /// <summary>True when <see cref="Multiply"/> runs the batched and one-token Q5_K kernels on this CPU.</summary>
    public static bool IsBatchedQ5K(GgmlType weightType) =>
        weightType == GgmlType.Q5_K && QuantizedDots.UseAdvancedIsa && Avx512Vbmi.VL.IsSupported;

    /// <summary>Scaled lane sums of one 32-weight sub-block: <paramref name="scalePair"/> holds the scale in both words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q5KSubBlock(Vector256<int> lanes, Vector256<byte> quants, Vector256<sbyte> activations, Vector256<short> scalePair) =>
        lanes + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(quants, activations), scalePair);

    /// <summary>Sub-blocks 2j and 2j+1 of a Q5_K block as bytes 0..31 in lane-class order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q5KDecodePair(byte* block, Vector256<byte> permutedHighBits, int j, out Vector256<byte> first, out Vector256<byte> second)
    {
        var lowMask = Vector256.Create((byte)0x0F);
        var one = Vector256.Create((byte)1);
        var packed = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 48 + 32 * j), QuantizedDots.LaneClassOrder);
        first = (packed & lowMask) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(permutedHighBits, 2 * j) & one, 4);
        second = Vector256.ShiftRightLogical(packed, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(permutedHighBits, 2 * j + 1) & one, 4);
    }

    /// <summary>
    /// The eight 6-bit scales of a Q4_K/Q5_K block as int32 lanes and the eight mins each twice as int16 (one per Q8_K
    /// group sum of 16): <see cref="KQuantScales.ScaleMin"/> for all eight sub-blocks with byte shuffles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q5KScalesAndMins(byte* packedScales, out Vector256<int> scales, out Vector256<short> mins)
    {
        var gather = Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
        var gatherHigh = Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7);
        var pairMins = Vector128.Create((byte)8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        var sixBits = Vector128.Create((byte)63);
        var fourBits = Vector128.Create((byte)15);
        var topBits = Vector128.Create((byte)0x30);
        var packedLanes = Vector128.Create(0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF).AsByte();
        var minLanes = Vector128.Create(0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF).AsByte();

        // The 12 bytes are read as 16 (the four after them are shuffled away); bytes 0-7 of the result are the
        // scales, bytes 8-15 the mins.
        var q = Vector128.Load(packedScales);
        var arranged = Ssse3.Shuffle(q, gather);
        var high = Ssse3.Shuffle(q, gatherHigh);
        var nibbles = Vector128.ConditionalSelect(minLanes, (arranged.AsUInt16() >> 4).AsByte() & fourBits, arranged & fourBits);
        var upper = nibbles | ((high.AsUInt16() >> 2).AsByte() & topBits);
        var decoded = Vector128.ConditionalSelect(packedLanes, upper, arranged & sixBits);
        scales = Avx2.ConvertToVector256Int32(decoded);
        mins = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(decoded, pairMins));
    }

    private static void Q5KBatched(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        int blocks = activations.Elements / BlockQ5K.Size;
        int tokens = activations.TokenCount;
        var quants = new byte[blocks * BlockQ5K.Size];
        var scalePairs = new int[blocks * Q5KSubBlocks];
        var mins = new short[blocks * 16];
        var d = new float[blocks];
        var dmin = new float[blocks];
        fixed (byte* rows = activations.Rows)
        fixed (byte* permuted = activations.LaneClassQuants)
        fixed (byte* quant = quants)
        fixed (int* scalePair = scalePairs)
        fixed (short* min = mins)
        {
            for (int r = 0; r < rowCount; r++)
            {
                byte* row = weights + (long)r * rowBytes;
                for (int i = 0; i < blocks; i++)
                {
                    byte* block = row + i * sizeof(BlockQ5K);
                    d[i] = ScalarFormats.HalfToSingle(*(ushort*)block);
                    dmin[i] = ScalarFormats.HalfToSingle(*(ushort*)(block + 2));
                    Q5KScalesAndMins(block + 4, out var scales, out var blockMins);
                    (scales | Vector256.ShiftLeft(scales, 16)).Store(scalePair + i * Q5KSubBlocks);
                    blockMins.Store(min + i * 16);
                    var highBits = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 16), QuantizedDots.LaneClassOrder);
                    for (int j = 0; j < 4; j++)
                    {
                        Q5KDecodePair(block, highBits, j, out var first, out var second);
                        first.Store(quant + i * BlockQ5K.Size + 64 * j);
                        second.Store(quant + i * BlockQ5K.Size + 64 * j + 32);
                    }
                }

                for (int t = 0; t < tokens; t++)
                {
                    byte* tokenRow = rows + (long)t * activations.RowBytes;
                    byte* tokenQuants = permuted + (long)t * blocks * BlockQ8K.Size;
                    var sums = Vector256<float>.Zero;
                    float sumf = 0;
                    for (int i = 0; i < blocks; i++)
                    {
                        byte* w = quant + i * BlockQ5K.Size;
                        sbyte* a = (sbyte*)(tokenQuants + i * BlockQ8K.Size);
                        int* sc = scalePair + i * Q5KSubBlocks;
                        var lanes = Vector256<int>.Zero;
                        for (int s = 0; s < Q5KSubBlocks; s++)
                        {
                            lanes = Q5KSubBlock(lanes, Vector256.Load(w + 32 * s), Vector256.Load(a + 32 * s), Vector256.Create(sc[s]).AsInt16());
                        }

                        byte* tokenBlock = tokenRow + i * sizeof(BlockQ8K);
                        float yd = *(float*)tokenBlock;
                        int sumi = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(tokenBlock + sizeof(float) + BlockQ8K.Size)), Vector256.Load(min + i * 16)));
                        float blockScale = d[i] * yd;
                        sums += Vector256.Create(blockScale) * Vector256.ConvertToSingle(lanes);
                        float minScale = dmin[i] * yd;
                        sumf -= minScale * sumi;
                    }

                    output[(long)t * outputStride + r] = AddLanesInOrder(sumf, sums);
                }
            }
        }
    }

    /// <summary>ggml's final step for the K-quants with mins: the running sum plus the eight float lane sums, in lane order.</summary>
    private static float AddLanesInOrder(float sumf, Vector256<float> sums)
    {
        for (int l = 0; l < 8; l++)
        {
            sumf += sums.GetElement(l);
        }

        return sumf;
    }

    /// <summary>One token (generation) against Q5_K rows, nothing decoded to memory.</summary>
    private static void Q5KOneToken(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output)
    {
        int blocks = activations.Elements / BlockQ5K.Size;
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
                    byte* block = row + i * sizeof(BlockQ5K);
                    Q5KScalesAndMins(block + 4, out var scales, out var mins);
                    var scalePairs = scales | Vector256.ShiftLeft(scales, 16);
                    var highBits = Avx512Vbmi.VL.PermuteVar32x8(Vector256.Load(block + 16), QuantizedDots.LaneClassOrder);
                    sbyte* a = (sbyte*)(permuted + i * BlockQ8K.Size);
                    var lanes = Vector256<int>.Zero;
                    for (int j = 0; j < 4; j++)
                    {
                        Q5KDecodePair(block, highBits, j, out var first, out var second);
                        lanes = Q5KSubBlock(lanes, first, Vector256.Load(a + 64 * j), Avx2.PermuteVar8x32(scalePairs, Vector256.Create(2 * j)).AsInt16());
                        lanes = Q5KSubBlock(lanes, second, Vector256.Load(a + 64 * j + 32), Avx2.PermuteVar8x32(scalePairs, Vector256.Create(2 * j + 1)).AsInt16());
                    }

                    byte* tokenBlock = rows + i * sizeof(BlockQ8K);
                    float yd = *(float*)tokenBlock;
                    int sumi = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(tokenBlock + sizeof(float) + BlockQ8K.Size)), mins));
                    float blockScale = ScalarFormats.HalfToSingle(*(ushort*)block) * yd;
                    sums += Vector256.Create(blockScale) * Vector256.ConvertToSingle(lanes);
                    float minScale = ScalarFormats.HalfToSingle(*(ushort*)(block + 2)) * yd;
                    sumf -= minScale * sumi;
                }

                output[r] = AddLanesInOrder(sumf, sums);
            }
        }
    }
}
