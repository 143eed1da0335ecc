using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Q8_0 weights times several tokens on CPUs without AVX-VNNI (as .NET sees them: this includes AVX-512 VNNI CPUs
/// such as Zen 4), the word counterpart of the VNNI tiles: the tokens' quants are widened to int16 once, when they are
/// packed, and laid out eight tokens to a vector, pair by pair (<c>[tile][block][pair of 16][token of 8]</c>, each
/// 32-bit word holding y[2p] and y[2p+1]); each weight row is widened once per call. A weight pair broadcast to all
/// lanes and one word multiply-add (<c>vpmaddwd</c>) then adds w[2p]·y[2p] + w[2p+1]·y[2p+1] for eight tokens, so
/// each weight is widened once for every token instead of once per token, and the block sums come out in the lanes
/// with no horizontal additions. The integer sums are exact (|products| &lt;= 2 · 128 · 127, 16 of them per block);
/// the float step per block keeps ggml's <c>sumf += sumi * (dx * dy)</c> in block order, so every output has the bits
/// of <see cref="QuantizedDots.Q8_0Reference"/>.
/// </summary>
public static unsafe partial class MatrixProduct
{
    // Below this many tokens most lanes of the one tile would be padding; the one-token kernel per token is cheaper.
    private const int MinWordTileTokens = 4;

    private const int PairsPerBlock = BlockQ8_0.Size / 2;

    // Widened weight rows kept on the stack up to this many int16 values (32 KB); longer rows use an array.
    private const int StackWidenedLimit = 16384;

    /// <summary>
    /// True when <see cref="Multiply"/> runs the word-tiled Q8_0 kernel for <paramref name="tokenCount"/> tokens on
    /// this CPU: AVX2 without the AVX-VNNI tiles, and enough tokens to fill a tile.
    /// </summary>
    public static bool IsWordTiled(GgmlType weightType, int tokenCount) =>
        tokenCount >= MinWordTileTokens && IsOneTokenQ8_0(weightType) && !IsTiled(weightType);

    /// <summary>Lays Q8_0 rows out as word tiles of eight tokens (padding tokens are zeros, whose results are dropped).</summary>
    private static void TileQ8_0Words(PackedActivations packed)
    {
        int blocks = packed.Elements / BlockQ8_0.Size;
        int tiles = (packed.TokenCount + TokenTile - 1) / TokenTile;
        var words = new int[(long)tiles * blocks * PairsPerBlock * TokenTile];
        var scales = new float[(long)tiles * blocks * TokenTile];
        fixed (byte* rows = packed.Rows)
        fixed (int* target = words)
        {
            for (int t = 0; t < packed.TokenCount; t++)
            {
                int tile = t / TokenTile;
                int lane = t % TokenTile;
                byte* row = rows + (long)t * packed.RowBytes;
                for (int ib = 0; ib < blocks; ib++)
                {
                    byte* block = row + ib * sizeof(BlockQ8_0);
                    long blockIndex = (long)tile * blocks + ib;
                    scales[blockIndex * TokenTile + lane] = ScalarFormats.HalfToSingle(*(ushort*)block);
                    sbyte* quants = (sbyte*)(block + sizeof(ushort));
                    int* pairs = target + blockIndex * PairsPerBlock * TokenTile + lane;
                    for (int p = 0; p < PairsPerBlock; p++)
                    {
                        // Low word y[2p], high word y[2p+1], both sign-extended: the word multiply-add's operand order.
                        int low = (ushort)quants[2 * p];
                        int high = quants[2 * p + 1] << 16;
                        pairs[p * TokenTile] = low | high;
                    }
                }
            }
        }

        packed.TileWords = words;
        packed.TileScales = scales;
    }

    private static void Q8_0WordTiled(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        const int Rows = 4;
        int blocks = activations.Elements / BlockQ8_0.Size;
        int tiles = (activations.TokenCount + TokenTile - 1) / TokenTile;
        int rowWords = blocks * BlockQ8_0.Size;
        Span<short> widened = Rows * rowWords <= StackWidenedLimit ? stackalloc short[Rows * rowWords] : new short[Rows * rowWords];
        fixed (int* words = activations.TileWords)
        fixed (float* scales = activations.TileScales)
        fixed (short* wide = widened)
        {
            int r = 0;
            for (; r + Rows <= rowCount; r += Rows)
            {
                byte* rows = weights + (long)r * rowBytes;
                Widen(rows, rowBytes, Rows, blocks, wide);

                // The next rows' cache lines are fetched while these pass the tiles, spread over every tile's blocks, so
                // that reading them from memory overlaps the arithmetic instead of stalling the next widening.
                byte* next = rows + Rows * (long)rowBytes;
                int nextLines = (int)((Math.Min(Rows, rowCount - r - Rows) * (long)rowBytes + 63) / 64);
                for (int tile = 0; tile < tiles; tile++)
                {
                    int firstLine = (int)((long)tile * nextLines / tiles);
                    int endLine = (int)((long)(tile + 1) * nextLines / tiles);
                    Q8_0WordFourRows(wide, rowWords, rows, rowBytes, blocks, words, scales, tile, activations.TokenCount, output + r, outputStride, next + 64L * firstLine, endLine - firstLine);
                }
            }

            for (; r < rowCount; r++)
            {
                byte* row = weights + (long)r * rowBytes;
                Widen(row, rowBytes, 1, blocks, wide);
                for (int tile = 0; tile < tiles; tile++)
                {
                    Q8_0WordOneRow(wide, row, blocks, words, scales, tile, activations.TokenCount, output + r, outputStride);
                }
            }
        }
    }

    /// <summary>The quants of <paramref name="rows"/> Q8_0 rows sign-extended to int16, <c>[row][block][32]</c>.</summary>
    private static void Widen(byte* weights, int rowBytes, int rows, int blocks, short* target)
    {
        for (int r = 0; r < rows; r++)
        {
            byte* row = weights + (long)r * rowBytes;
            short* wideRow = target + (long)r * blocks * BlockQ8_0.Size;
            for (int ib = 0; ib < blocks; ib++)
            {
                sbyte* quants = (sbyte*)(row + ib * sizeof(BlockQ8_0) + sizeof(ushort));
                Avx2.ConvertToVector256Int16(quants).Store(wideRow + ib * BlockQ8_0.Size);
                Avx2.ConvertToVector256Int16(quants + 16).Store(wideRow + ib * BlockQ8_0.Size + 16);
            }
        }
    }

    /// <summary>ggml's per-block step for eight tokens at once: sum += (float)sumi * (dx * dy), a multiply then an add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WordStep(Vector256<float> sum, Vector256<int> blockSums, byte* block, Vector256<float> dy) =>
        sum + Vector256.ConvertToSingle(blockSums) * (Vector256.Create(ScalarFormats.HalfToSingle(*(ushort*)block)) * dy);

    /// <summary>
    /// Four rows (widened in <paramref name="wide"/>, <paramref name="rowWords"/> apart) against one tile of eight
    /// tokens, prefetching <paramref name="prefetchLines"/> cache lines from <paramref name="prefetch"/> on the way.
    /// </summary>
    private static void Q8_0WordFourRows(short* wide, int rowWords, byte* weights, int rowBytes, int blocks, int* words, float* scales, int tile, int tokenCount, float* output, int outputStride, byte* prefetch, int prefetchLines)
    {
        int line = 0;
        var sum0 = Vector256<float>.Zero;
        var sum1 = Vector256<float>.Zero;
        var sum2 = Vector256<float>.Zero;
        var sum3 = Vector256<float>.Zero;
        long tileBlock = (long)tile * blocks;
        for (int ib = 0; ib < blocks; ib++)
        {
            for (int end = (int)((long)(ib + 1) * prefetchLines / blocks); line < end; line++)
            {
                Sse.Prefetch0(prefetch + 64L * line);
            }

            int* y = words + (tileBlock + ib) * PairsPerBlock * TokenTile;
            int* w0 = (int*)(wide + ib * BlockQ8_0.Size);
            int* w1 = (int*)(wide + rowWords + ib * BlockQ8_0.Size);
            int* w2 = (int*)(wide + 2 * rowWords + ib * BlockQ8_0.Size);
            int* w3 = (int*)(wide + 3 * rowWords + ib * BlockQ8_0.Size);
            var acc0 = Vector256<int>.Zero;
            var acc1 = Vector256<int>.Zero;
            var acc2 = Vector256<int>.Zero;
            var acc3 = Vector256<int>.Zero;
            for (int p = 0; p < PairsPerBlock; p++)
            {
                var pair = Vector256.Load(y + p * TokenTile).AsInt16();
                acc0 += Avx2.MultiplyAddAdjacent(Vector256.Create(w0[p]).AsInt16(), pair);
                acc1 += Avx2.MultiplyAddAdjacent(Vector256.Create(w1[p]).AsInt16(), pair);
                acc2 += Avx2.MultiplyAddAdjacent(Vector256.Create(w2[p]).AsInt16(), pair);
                acc3 += Avx2.MultiplyAddAdjacent(Vector256.Create(w3[p]).AsInt16(), pair);
            }

            var dy = Vector256.Load(scales + (tileBlock + ib) * TokenTile);
            byte* block = weights + ib * sizeof(BlockQ8_0);
            sum0 = WordStep(sum0, acc0, block, dy);
            sum1 = WordStep(sum1, acc1, block + rowBytes, dy);
            sum2 = WordStep(sum2, acc2, block + 2L * rowBytes, dy);
            sum3 = WordStep(sum3, acc3, block + 3L * rowBytes, dy);
        }

        StoreFourRows(sum0, sum1, sum2, sum3, tile, tokenCount, output, outputStride);
    }

    private static void Q8_0WordOneRow(short* wide, byte* weights, int blocks, int* words, float* scales, int tile, int tokenCount, float* output, int outputStride)
    {
        var sum = Vector256<float>.Zero;
        long tileBlock = (long)tile * blocks;
        for (int ib = 0; ib < blocks; ib++)
        {
            int* y = words + (tileBlock + ib) * PairsPerBlock * TokenTile;
            int* w = (int*)(wide + ib * BlockQ8_0.Size);
            var acc = Vector256<int>.Zero;
            for (int p = 0; p < PairsPerBlock; p++)
            {
                acc += Avx2.MultiplyAddAdjacent(Vector256.Create(w[p]).AsInt16(), Vector256.Load(y + p * TokenTile).AsInt16());
            }

            sum = WordStep(sum, acc, weights + ib * sizeof(BlockQ8_0), Vector256.Load(scales + (tileBlock + ib) * TokenTile));
        }

        int first = tile * TokenTile;
        int count = Math.Min(TokenTile, tokenCount - first);
        for (int lane = 0; lane < count; lane++)
        {
            output[(long)(first + lane) * outputStride] = sum.GetElement(lane);
        }
    }
}
