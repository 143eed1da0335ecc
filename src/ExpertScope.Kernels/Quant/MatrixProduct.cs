using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Several tokens' activations converted once (ggml's <c>from_float</c>) for <see cref="MatrixProduct.Multiply"/>;
/// for Q8_0 weights they are also re-laid out eight tokens at a time so one integer vector holds eight tokens.
/// </summary>
public sealed class PackedActivations
{
    internal PackedActivations(GgmlType weightType, int tokenCount, int elements, byte[] rows, int rowBytes)
    {
        WeightType = weightType;
        TokenCount = tokenCount;
        Elements = elements;
        Rows = rows;
        RowBytes = rowBytes;
    }

    /// <summary>The weight type these activations are converted for.</summary>
    public GgmlType WeightType { get; }

    /// <summary>Tokens (activation rows).</summary>
    public int TokenCount { get; }

    /// <summary>Elements per token.</summary>
    public int Elements { get; }

    /// <summary>Bytes of one converted row.</summary>
    public int RowBytes { get; }

    /// <summary>The converted rows, <c>[TokenCount, RowBytes]</c>, as <see cref="VecDot.QuantizeActivations"/> writes them.</summary>
    internal byte[] Rows { get; }

    /// <summary>Q8_0 tiles: quants plus 128 (unsigned) as <c>[tile][block][group of 4][token of 8]</c> 32-bit words (null when not packed).</summary>
    internal uint[]? TileQuants { get; set; }

    /// <summary>Q8_0 word tiles (no AVX-VNNI): quants widened to int16, <c>[tile][block][pair of 16][token of 8]</c> 32-bit words (null when not packed).</summary>
    internal int[]? TileWords { get; set; }

    /// <summary>Q8_0 tiles (either form): each block's float scale <c>[tile][block][token of 8]</c>.</summary>
    internal float[]? TileScales { get; set; }

    /// <summary>Q8_K rows for Q4_K, Q5_K and Q6_K weights with each 32-byte group in lane-class order (positions l, l+8, l+16, l+24 in dword l); null when not built.</summary>
    internal byte[]? LaneClassQuants { get; set; }

    /// <summary>
    /// For Q6_K weights and one token: per block and 32-byte group, the sixteen words <c>32 * (y[2w] + y[2w+1])</c> of
    /// the lane-class-ordered quants (the pairwise multiply-add of 32 with them), so the one-token kernel can multiply
    /// the stored unsigned quants q and subtract these to get (q - 32) * y; null for other types and batches.
    /// </summary>
    internal short[]? Q6KOffsetSums { get; set; }

    /// <summary>Token <paramref name="token"/>'s converted row.</summary>
    public ReadOnlySpan<byte> Row(int token) => Rows.AsSpan(token * RowBytes, RowBytes);
}

/// <summary>
/// Matrix products of many weight rows with many tokens (prefill), each output exactly what
/// <see cref="VecDot.Quantized"/> returns for that (row, token) pair: the integer block sums may be formed in any
/// order (integer addition is exact), and each pair's float accumulation over blocks keeps ggml's order. For Q8_0 on a
/// CPU with AVX-VNNI the kernel takes four weight rows and eight tokens at a time: each 4-byte group of a weight row is
/// broadcast and multiplied with the same group of eight tokens in one VNNI instruction, so the eight tokens' block sums
/// come out in the eight lanes with no horizontal additions, and the weights are read once per eight tokens.
/// (Activations are stored plus 128, as VNNI multiplies unsigned by signed bytes; 128 times each weight block's sum,
/// computed once per row, is subtracted.) Without AVX-VNNI, word tiles do the same with int16 pairs
/// (<see cref="IsWordTiled"/>).
/// </summary>
public static unsafe partial class MatrixProduct
{
    /// <summary>Tokens per packed tile (lanes of a 256-bit integer vector).</summary>
    public const int TokenTile = 8;

    private const int RowTile = 4;

    // Bytes ahead of the current blocks that the one-token kernel prefetches (into L2) in each of its four rows, continuing
    // in the same row of the next four near a row's end: generation streams the experts from memory.
    private const int PrefetchDistance = 1024;
    private const int GroupsPerBlock = BlockQ8_0.Size / 4;

    /// <summary>True when <see cref="Multiply"/> runs the tiled integer kernel for <paramref name="weightType"/> on this CPU.</summary>
    public static bool IsTiled(GgmlType weightType) =>
        weightType == GgmlType.Q8_0 && QuantizedDots.UseAdvancedIsa && AvxVnni.IsSupported && QuantizedDots.PreferVnni;

    /// <summary>
    /// True when <see cref="Multiply"/> runs the four-row one-token Q8_0 kernel on this CPU: with AVX-VNNI, or with
    /// AVX2's word multiply-add on sign-extended bytes (exact for every input, so the same sums).
    /// </summary>
    public static bool IsOneTokenQ8_0(GgmlType weightType) =>
        weightType == GgmlType.Q8_0 && QuantizedDots.UseAdvancedIsa && Avx2.IsSupported;

    private static bool Q8_0UsesVnni => AvxVnni.IsSupported && QuantizedDots.PreferVnni;

    /// <summary>
    /// Converts <paramref name="tokenCount"/> activation rows of <paramref name="elements"/> floats for weights of
    /// <paramref name="weightType"/> (once per batch; reuse the result for every weight matrix that reads these rows).
    /// </summary>
    /// <exception cref="ArgumentException">No quantized dot exists for the type, or the lengths do not match.</exception>
    public static PackedActivations Pack(GgmlType weightType, ReadOnlySpan<float> activations, int tokenCount, int elements)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokenCount);
        if (activations.Length < (long)tokenCount * elements)
        {
            throw new ArgumentException($"{tokenCount} tokens of {elements} elements need {(long)tokenCount * elements} activations, but there are {activations.Length}.", nameof(activations));
        }

        int rowBytes = VecDot.ActivationBytes(weightType, elements);
        var rows = new byte[(long)rowBytes * tokenCount];
        for (int t = 0; t < tokenCount; t++)
        {
            VecDot.QuantizeActivations(weightType, activations.Slice(t * elements, elements), rows.AsSpan(t * rowBytes, rowBytes));
        }

        var packed = new PackedActivations(weightType, tokenCount, elements, rows, rowBytes);
        if (IsTiled(weightType) && tokenCount > 1)
        {
            TileQ8_0(packed);
        }
        else if (IsWordTiled(weightType, tokenCount))
        {
            TileQ8_0Words(packed);
        }

        if (IsBatchedQ4K(weightType) || IsBatchedQ5K(weightType) || IsBatchedQ6K(weightType))
        {
            PermuteQ8K(packed);
        }

        if (IsBatchedQ6K(weightType) && tokenCount == 1)
        {
            Q6KOffsetSums(packed);
        }

        return packed;
    }

    /// <summary>
    /// <c>output[t * outputStride + r] = VecDot.Quantized(weightType, row r, token t)</c> for <paramref name="rowCount"/>
    /// consecutive weight rows and every packed token, bit for bit.
    /// </summary>
    /// <param name="weightType">Storage type of the weight rows.</param>
    /// <param name="weights">The rows, contiguous (<paramref name="rowCount"/> times the row's bytes).</param>
    /// <param name="rowCount">Weight rows.</param>
    /// <param name="activations">Tokens packed by <see cref="Pack"/> for the same type and row length.</param>
    /// <param name="output">Destination; row r of token t goes to <c>t * outputStride + r</c>.</param>
    /// <param name="outputStride">Distance between tokens in <paramref name="output"/> (at least <paramref name="rowCount"/>).</param>
    /// <exception cref="ArgumentException">Types, lengths or the output size do not match.</exception>
    public static void Multiply(GgmlType weightType, ReadOnlySpan<byte> weights, int rowCount, PackedActivations activations, Span<float> output, int outputStride)
    {
        ArgumentNullException.ThrowIfNull(activations);
        if (activations.WeightType != weightType)
        {
            throw new ArgumentException($"The activations were packed for {activations.WeightType}, not {weightType}.", nameof(activations));
        }

        var info = GgmlTypes.Get(weightType);
        long rowBytes = info.RowBytes(activations.Elements);
        if (rowCount < 0 || weights.Length != rowBytes * rowCount)
        {
            throw new ArgumentException($"{rowCount} rows of {activations.Elements} {info.Name} weights are {rowBytes * rowCount} bytes, not {weights.Length}.", nameof(weights));
        }

        int tokens = activations.TokenCount;
        if (rowCount == 0 || tokens == 0)
        {
            return;
        }

        if (outputStride < rowCount || output.Length < (long)(tokens - 1) * outputStride + rowCount)
        {
            throw new ArgumentException($"The output cannot hold {tokens} tokens of {rowCount} rows with stride {outputStride}.", nameof(output));
        }

        // One validated call checks the row and activation lengths for every pair.
        VecDot.ValidateQuantized(weightType, weights[..(int)rowBytes], activations.Row(0));
        fixed (byte* w = weights)
        fixed (float* y = output)
        {
            if (activations.TokenCount == 1 && IsOneTokenQ8_0(weightType))
            {
                fixed (byte* x = activations.Rows)
                {
                    Q8_0OneToken(w, (int)rowBytes, rowCount, x, activations.Elements / BlockQ8_0.Size, y);
                }
            }
            else if (activations.TileQuants is not null)
            {
                Q8_0Tiled(w, (int)rowBytes, rowCount, activations, y, outputStride);
            }
            else if (activations.TileWords is not null)
            {
                Q8_0WordTiled(w, (int)rowBytes, rowCount, activations, y, outputStride);
            }
            else if (IsOneTokenQ8_0(weightType))
            {
                fixed (byte* x = activations.Rows)
                {
                    Q8_0RowChunks(w, (int)rowBytes, rowCount, x, activations, y, outputStride);
                }
            }
            else if (activations.LaneClassQuants is not null && weightType == GgmlType.Q5_K && activations.TokenCount == 1)
            {
                Q5KOneToken(w, (int)rowBytes, rowCount, activations, y);
            }
            else if (activations.LaneClassQuants is not null && weightType == GgmlType.Q5_K)
            {
                Q5KBatched(w, (int)rowBytes, rowCount, activations, y, outputStride);
            }
            else if (activations.LaneClassQuants is not null && weightType == GgmlType.Q6_K && activations.TokenCount == 1)
            {
                Q6KOneToken(w, (int)rowBytes, rowCount, activations, y);
            }
            else if (activations.LaneClassQuants is not null && weightType == GgmlType.Q6_K)
            {
                Q6KBatched(w, (int)rowBytes, rowCount, activations, y, outputStride);
            }
            else if (activations.LaneClassQuants is not null && activations.TokenCount == 1)
            {
                Q4KOneToken(w, (int)rowBytes, rowCount, activations, y);
            }
            else if (activations.LaneClassQuants is not null)
            {
                Q4KBatched(w, (int)rowBytes, rowCount, activations, y, outputStride);
            }
            else if (IsBatchedTwoBitIQuant(weightType))
            {
                TwoBitIQuantProduct(weightType, w, (int)rowBytes, rowCount, activations, y, outputStride);
            }
            else
            {
                Generic(weightType, weights, (int)rowBytes, rowCount, activations, output, outputStride);
            }
        }
    }

    /// <summary>Any type: one dot per pair, rows outermost so each weight row stays in cache for every token.</summary>
    private static void Generic(GgmlType weightType, ReadOnlySpan<byte> weights, int rowBytes, int rowCount, PackedActivations activations, Span<float> output, int outputStride)
    {
        var dot = TypeKernels.Get(weightType).Dot!;
        for (int r = 0; r < rowCount; r++)
        {
            var row = weights.Slice(r * rowBytes, rowBytes);
            for (int t = 0; t < activations.TokenCount; t++)
            {
                output[t * outputStride + r] = dot(row, activations.Row(t));
            }
        }
    }

    /// <summary>Re-lays Q8_0 rows out as tiles of eight tokens (padding tokens are zeros, whose results are dropped).</summary>
    private static void TileQ8_0(PackedActivations packed)
    {
        int blocks = packed.Elements / BlockQ8_0.Size;
        int tiles = (packed.TokenCount + TokenTile - 1) / TokenTile;
        var quants = new uint[(long)tiles * blocks * GroupsPerBlock * TokenTile];
        Array.Fill(quants, 0x80808080u);
        var scales = new float[(long)tiles * blocks * TokenTile];
        for (int t = 0; t < packed.TokenCount; t++)
        {
            int tile = t / TokenTile;
            int lane = t % TokenTile;
            var row = packed.Row(t);
            for (int ib = 0; ib < blocks; ib++)
            {
                var block = row.Slice(ib * sizeof(BlockQ8_0), sizeof(BlockQ8_0));
                long blockIndex = (long)tile * blocks + ib;
                scales[blockIndex * TokenTile + lane] = ScalarFormats.HalfToSingle(MemoryMarshal.Read<ushort>(block));
                for (int g = 0; g < GroupsPerBlock; g++)
                {
                    // Stored as y + 128 (unsigned), VNNI's unsigned operand; the 128 * sum(w) this adds is taken off per weight block.
                    quants[(blockIndex * GroupsPerBlock + g) * TokenTile + lane] = MemoryMarshal.Read<uint>(block.Slice(sizeof(ushort) + 4 * g)) ^ 0x80808080u;
                }
            }
        }

        packed.TileQuants = quants;
        packed.TileScales = scales;
    }

    private static void Q8_0Tiled(byte* weights, int rowBytes, int rowCount, PackedActivations activations, float* output, int outputStride)
    {
        int blocks = activations.Elements / BlockQ8_0.Size;
        int tiles = (activations.TokenCount + TokenTile - 1) / TokenTile;
        fixed (uint* quants = activations.TileQuants)
        fixed (float* scales = activations.TileScales)
        {
            // 128 * sum(w) of every block of the current rows: the shift's correction, once per row for all tokens.
            var weightSums = new int[RowTile * blocks];
            fixed (int* sums = weightSums)
            {
                int r = 0;
                for (; r + RowTile <= rowCount; r += RowTile)
                {
                    WeightSums(weights + (long)r * rowBytes, rowBytes, RowTile, blocks, sums);
                    for (int tile = 0; tile < tiles; tile++)
                    {
                        Q8_0FourRows(weights + (long)r * rowBytes, rowBytes, blocks, quants, scales, sums, tile, activations.TokenCount, output + r, outputStride);
                    }
                }

                for (; r < rowCount; r++)
                {
                    WeightSums(weights + (long)r * rowBytes, rowBytes, 1, blocks, sums);
                    for (int tile = 0; tile < tiles; tile++)
                    {
                        Q8_0OneRow(weights + (long)r * rowBytes, blocks, quants, scales, sums, tile, activations.TokenCount, output + r, outputStride);
                    }
                }
            }
        }
    }

    /// <summary>
    /// One token against four rows, two blocks per step: each row is read a whole cache line (two 34-byte blocks) at a
    /// time, four streams that the memory system follows well. The eight block sums (4 rows x 2 blocks) are folded
    /// into one vector, then each row adds its two blocks in order, as ggml's dot does (multiply, then add). Remaining
    /// rows and an odd last block take the same arithmetic one step at a time. The block dots are
    /// <see cref="Q8_0BlockLanes"/>: AVX-VNNI, or AVX2 on CPUs without it (exact integer sums either way).
    /// </summary>
    private static void Q8_0OneToken(byte* weights, int rowBytes, int rowCount, byte* activations, int blocks, float* output)
    {
        const int Rows = 4;
        var flip = Vector256.Create((byte)0x80);
        var ones = Vector256.Create((byte)1);
        // Read once: the switch a test may flip must not change between the corrections and the block dots.
        bool vnni = Q8_0UsesVnni;
        var activationScales = blocks <= 4096 ? stackalloc float[blocks] : new float[blocks];
        var corrections = blocks <= 4096 ? stackalloc int[blocks] : new int[blocks];
        for (int ib = 0; ib < blocks; ib++)
        {
            byte* yBlock = activations + ib * sizeof(BlockQ8_0);
            activationScales[ib] = ScalarFormats.HalfToSingle(*(ushort*)yBlock);
            corrections[ib] = vnni ? 128 * Vector256.Sum(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ones, Vector256.Load((sbyte*)(yBlock + sizeof(ushort))))) : 0;
        }

        int r = 0;
        for (; r + Rows <= rowCount; r += Rows)
        {
            var sum = Vector128<float>.Zero;
            byte* b0 = weights + (long)r * rowBytes;
            byte* b1 = b0 + rowBytes;
            byte* b2 = b1 + rowBytes;
            byte* b3 = b2 + rowBytes;
            int ib = 0;
            for (; ib + 2 <= blocks; ib += 2)
            {
                int offset = ib * sizeof(BlockQ8_0);
                int next = offset + sizeof(BlockQ8_0);
                long ahead = offset + PrefetchDistance;
                ahead += ahead >= rowBytes ? 3L * rowBytes : 0;
                Sse.Prefetch1(b0 + ahead);
                Sse.Prefetch1(b1 + ahead);
                Sse.Prefetch1(b2 + ahead);
                Sse.Prefetch1(b3 + ahead);
                sbyte* yaBytes = (sbyte*)(activations + offset + sizeof(ushort));
                sbyte* ybBytes = (sbyte*)(activations + next + sizeof(ushort));
                var ya = Vector256.Load(yaBytes);
                var yb = Vector256.Load(ybBytes);
                var yaLow = Avx2.ConvertToVector256Int16(yaBytes);
                var yaHigh = Avx2.ConvertToVector256Int16(yaBytes + 16);
                var ybLow = Avx2.ConvertToVector256Int16(ybBytes);
                var ybHigh = Avx2.ConvertToVector256Int16(ybBytes + 16);
                var s0 = Q8_0BlockLanes(b0 + offset + sizeof(ushort), ya, yaLow, yaHigh, flip, vnni);
                var s1 = Q8_0BlockLanes(b1 + offset + sizeof(ushort), ya, yaLow, yaHigh, flip, vnni);
                var s2 = Q8_0BlockLanes(b2 + offset + sizeof(ushort), ya, yaLow, yaHigh, flip, vnni);
                var s3 = Q8_0BlockLanes(b3 + offset + sizeof(ushort), ya, yaLow, yaHigh, flip, vnni);
                var s4 = Q8_0BlockLanes(b0 + next + sizeof(ushort), yb, ybLow, ybHigh, flip, vnni);
                var s5 = Q8_0BlockLanes(b1 + next + sizeof(ushort), yb, ybLow, ybHigh, flip, vnni);
                var s6 = Q8_0BlockLanes(b2 + next + sizeof(ushort), yb, ybLow, ybHigh, flip, vnni);
                var s7 = Q8_0BlockLanes(b3 + next + sizeof(ushort), yb, ybLow, ybHigh, flip, vnni);

                // Lanes: rows 0-3 of the first block, then rows 0-3 of the second.
                var g0123 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s0, s1), Avx2.HorizontalAdd(s2, s3));
                var g4567 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s4, s5), Avx2.HorizontalAdd(s6, s7));
                var sums = Avx2.Permute2x128(g0123, g4567, 0x20) + Avx2.Permute2x128(g0123, g4567, 0x31);
                var shifted = sums - Vector256.Create(Vector128.Create(corrections[ib]), Vector128.Create(corrections[ib + 1]));
                var dx = Vector256.Create(
                    ScalarFormats.HalfToSingle(*(ushort*)(b0 + offset)), ScalarFormats.HalfToSingle(*(ushort*)(b1 + offset)),
                    ScalarFormats.HalfToSingle(*(ushort*)(b2 + offset)), ScalarFormats.HalfToSingle(*(ushort*)(b3 + offset)),
                    ScalarFormats.HalfToSingle(*(ushort*)(b0 + next)), ScalarFormats.HalfToSingle(*(ushort*)(b1 + next)),
                    ScalarFormats.HalfToSingle(*(ushort*)(b2 + next)), ScalarFormats.HalfToSingle(*(ushort*)(b3 + next)));
                var dy = Vector256.Create(Vector128.Create(activationScales[ib]), Vector128.Create(activationScales[ib + 1]));
                var products = Vector256.ConvertToSingle(shifted) * (dx * dy);
                sum += products.GetLower();
                sum += products.GetUpper();
            }

            if (ib < blocks)
            {
                int offset = ib * sizeof(BlockQ8_0);
                sbyte* yBytes = (sbyte*)(activations + offset + sizeof(ushort));
                var y = Vector256.Load(yBytes);
                var yLow = Avx2.ConvertToVector256Int16(yBytes);
                var yHigh = Avx2.ConvertToVector256Int16(yBytes + 16);
                var s0 = Q8_0BlockLanes(b0 + offset + sizeof(ushort), y, yLow, yHigh, flip, vnni);
                var s1 = Q8_0BlockLanes(b1 + offset + sizeof(ushort), y, yLow, yHigh, flip, vnni);
                var s2 = Q8_0BlockLanes(b2 + offset + sizeof(ushort), y, yLow, yHigh, flip, vnni);
                var s3 = Q8_0BlockLanes(b3 + offset + sizeof(ushort), y, yLow, yHigh, flip, vnni);
                var g = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s0, s1), Avx2.HorizontalAdd(s2, s3));
                var sums = g.GetLower() + g.GetUpper() - Vector128.Create(corrections[ib]);
                var dx = Vector128.Create(
                    ScalarFormats.HalfToSingle(*(ushort*)(b0 + offset)), ScalarFormats.HalfToSingle(*(ushort*)(b1 + offset)),
                    ScalarFormats.HalfToSingle(*(ushort*)(b2 + offset)), ScalarFormats.HalfToSingle(*(ushort*)(b3 + offset)));
                sum += Vector128.ConvertToSingle(sums) * (dx * Vector128.Create(activationScales[ib]));
            }

            sum.Store(output + r);
        }

        var x = new ReadOnlySpan<byte>(activations, blocks * sizeof(BlockQ8_0));
        for (; r < rowCount; r++)
        {
            output[r] = QuantizedDots.Q8_0(new ReadOnlySpan<byte>(weights + (long)r * rowBytes, rowBytes), x);
        }
    }

    /// <summary>
    /// Eight int32 lanes whose total is one Q8_0 block's integer dot: with AVX-VNNI, (w + 128) times y (the caller
    /// subtracts 128 * sum(y)); otherwise w and y sign-extended to int16 and multiplied pairwise into int32, exact for
    /// every input (AVX2's byte multiply-add would saturate on 8-bit weights).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q8_0BlockLanes(byte* weights, Vector256<sbyte> y, Vector256<short> yLow, Vector256<short> yHigh, Vector256<byte> flip, bool vnni) =>
        vnni
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(weights) ^ flip, y)
            : Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16((sbyte*)weights), yLow)
                + Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16((sbyte*)weights + 16), yHigh);

    /// <summary>
    /// Fewer tokens than a word tile wants (<see cref="IsWordTiled"/>), without the AVX-VNNI tiles: rows in chunks small enough to stay in cache, and every token
    /// passes each chunk through <see cref="Q8_0OneToken"/>, so each output is that kernel's (the reference's) bits.
    /// </summary>
    private static void Q8_0RowChunks(byte* weights, int rowBytes, int rowCount, byte* activations, PackedActivations packed, float* output, int outputStride)
    {
        const int ChunkRows = 16;
        int blocks = packed.Elements / BlockQ8_0.Size;
        for (int first = 0; first < rowCount; first += ChunkRows)
        {
            int rows = Math.Min(ChunkRows, rowCount - first);
            for (int t = 0; t < packed.TokenCount; t++)
            {
                Q8_0OneToken(weights + (long)first * rowBytes, rowBytes, rows, activations + (long)t * packed.RowBytes, blocks, output + (long)t * outputStride + first);
            }
        }
    }

    /// <summary><c>sums[r * blocks + ib] = 128 * (sum of the 32 quants of block ib of row r)</c>.</summary>
    private static void WeightSums(byte* weights, int rowBytes, int rows, int blocks, int* sums)
    {
        var ones = Vector256.Create((byte)1);
        for (int r = 0; r < rows; r++)
        {
            for (int ib = 0; ib < blocks; ib++)
            {
                var w = Vector256.Load((sbyte*)(weights + (long)r * rowBytes + ib * sizeof(BlockQ8_0) + sizeof(ushort)));
                sums[r * blocks + ib] = 128 * Vector256.Sum(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ones, w));
            }
        }
    }

    /// <summary>
    /// Eight tokens' sums over one weight block of (y + 128) * w: each 4-byte group of the weights broadcast to all
    /// lanes and multiplied with that group of the eight tokens (VNNI: unsigned activations times signed weights, four
    /// products per token per instruction, exact in int32).
    /// </summary>
    private static Vector256<int> BlockSums(byte* block, byte* y)
    {
        int* q = (int*)(block + sizeof(ushort));
        var acc = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(y), Vector256.Create(q[0]).AsSByte());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 32), Vector256.Create(q[1]).AsSByte());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 64), Vector256.Create(q[2]).AsSByte());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 96), Vector256.Create(q[3]).AsSByte());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 128), Vector256.Create(q[4]).AsSByte());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 160), Vector256.Create(q[5]).AsSByte());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 192), Vector256.Create(q[6]).AsSByte());
        return AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(y + 224), Vector256.Create(q[7]).AsSByte());
    }

    /// <summary>ggml's per-block step for eight tokens at once: sum += (float)sumi * (dx * dy), a multiply then an add.</summary>
    private static Vector256<float> Accumulate(Vector256<float> sum, Vector256<int> shiftedSums, int correction, byte* block, Vector256<float> dy)
    {
        float dx = ScalarFormats.HalfToSingle(*(ushort*)block);
        return sum + Vector256.ConvertToSingle(shiftedSums - Vector256.Create(correction)) * (Vector256.Create(dx) * dy);
    }

    private static void Q8_0FourRows(byte* weights, int rowBytes, int blocks, uint* quants, float* scales, int* weightSums, int tile, int tokenCount, float* output, int outputStride)
    {
        var sum0 = Vector256<float>.Zero;
        var sum1 = Vector256<float>.Zero;
        var sum2 = Vector256<float>.Zero;
        var sum3 = Vector256<float>.Zero;
        long tileBlock = (long)tile * blocks;
        for (int ib = 0; ib < blocks; ib++)
        {
            byte* y = (byte*)(quants + (tileBlock + ib) * GroupsPerBlock * TokenTile);
            var dy = Vector256.Load(scales + (tileBlock + ib) * TokenTile);
            byte* block = weights + ib * sizeof(BlockQ8_0);
            sum0 = Accumulate(sum0, BlockSums(block, y), weightSums[ib], block, dy);
            block += rowBytes;
            sum1 = Accumulate(sum1, BlockSums(block, y), weightSums[blocks + ib], block, dy);
            block += rowBytes;
            sum2 = Accumulate(sum2, BlockSums(block, y), weightSums[2 * blocks + ib], block, dy);
            block += rowBytes;
            sum3 = Accumulate(sum3, BlockSums(block, y), weightSums[3 * blocks + ib], block, dy);
        }

        StoreFourRows(sum0, sum1, sum2, sum3, tile, tokenCount, output, outputStride);
    }

    /// <summary>
    /// Writes a Q8_0 tile's results: lane j of <c>sumR</c> is row R for token <c>tile * TokenTile + j</c>; padding
    /// lanes past the last token are dropped.
    /// </summary>
    private static void StoreFourRows(
        Vector256<float> sum0, Vector256<float> sum1, Vector256<float> sum2, Vector256<float> sum3, int tile, int tokenCount, float* output, int outputStride)
    {
        int first = tile * TokenTile;
        int count = Math.Min(TokenTile, tokenCount - first);
        for (int lane = 0; lane < count; lane++)
        {
            float* target = output + (long)(first + lane) * outputStride;
            target[0] = sum0.GetElement(lane);
            target[1] = sum1.GetElement(lane);
            target[2] = sum2.GetElement(lane);
            target[3] = sum3.GetElement(lane);
        }
    }

    private static void Q8_0OneRow(byte* weights, int blocks, uint* quants, float* scales, int* weightSums, int tile, int tokenCount, float* output, int outputStride)
    {
        var sum = Vector256<float>.Zero;
        long tileBlock = (long)tile * blocks;
        for (int ib = 0; ib < blocks; ib++)
        {
            byte* y = (byte*)(quants + (tileBlock + ib) * GroupsPerBlock * TokenTile);
            var dy = Vector256.Load(scales + (tileBlock + ib) * TokenTile);
            byte* block = weights + ib * sizeof(BlockQ8_0);
            sum = Accumulate(sum, BlockSums(block, y), weightSums[ib], block, dy);
        }

        int first = tile * TokenTile;
        int count = Math.Min(TokenTile, tokenCount - first);
        for (int lane = 0; lane < count; lane++)
        {
            output[(long)(first + lane) * outputStride] = sum.GetElement(lane);
        }
    }
}
