using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q4_K</c>: 256 weights in 8 sub-blocks of 32, x = d * scale_j * q - dmin * min_j (4.5 bits per weight).
/// Layout (144 bytes): f16 d | f16 dmin | uint8 scales[12] (eight 6-bit scales and eight 6-bit mins, packed) |
/// uint8 qs[128] (each 32 bytes hold two sub-blocks: low nibbles the first, high nibbles the second).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ4K
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Super-block scale of the quantized scales, float16 bits.</summary>
    public ushort D;

    /// <summary>Super-block scale of the quantized mins, float16 bits.</summary>
    public ushort DMin;

    /// <summary>6-bit scales and mins (see <see cref="KQuantScales.ScaleMin"/>).</summary>
    public fixed byte Scales[12];

    /// <summary>4-bit quants.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>Helpers shared by the K-quants.</summary>
internal static class KQuantScales
{
    /// <summary>
    /// ggml's <c>get_scale_min_k4</c>: the 6-bit scale and min of sub-block <paramref name="j"/> (0..7) from the
    /// 12 packed bytes of Q4_K / Q5_K.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (byte Scale, byte Min) ScaleMin(int j, ReadOnlySpan<byte> q) => j < 4
        ? ((byte)(q[j] & 63), (byte)(q[j + 4] & 63))
        : ((byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)), (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4)));

    /// <summary>
    /// ggml's <c>nearest_int</c>: round to nearest with ties to even via the 1.5 * 2^23 trick (valid for |x| &lt; 2^22).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float value)
    {
        float shifted = value + 12582912f;
        int bits = BitConverter.SingleToInt32Bits(shifted);
        return (bits & 0x007FFFFF) - 0x00400000;
    }
}

/// <summary>Q4_K kernels.</summary>
internal static unsafe class Q4K
{
    /// <summary>ggml's <c>dequantize_row_q4_K</c>.</summary>
    public static void DequantizeReference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ4K>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            var scales = source.Slice(i * sizeof(BlockQ4K) + 4, 12);
            float d = ScalarFormats.HalfToSingle(block.D);
            float min = ScalarFormats.HalfToSingle(block.DMin);
            var y = destination.Slice(i * BlockQ4K.Size, BlockQ4K.Size);
            int q = 0;
            int output = 0;
            for (int j = 0; j < BlockQ4K.Size; j += 64)
            {
                var (sc1, m1Raw) = KQuantScales.ScaleMin(j / 32, scales);
                var (sc2, m2Raw) = KQuantScales.ScaleMin(j / 32 + 1, scales);
                float d1 = d * sc1;
                float m1 = min * m1Raw;
                float d2 = d * sc2;
                float m2 = min * m2Raw;
                for (int l = 0; l < 32; l++)
                {
                    y[output++] = d1 * (block.Qs[q + l] & 0xF) - m1;
                }

                for (int l = 0; l < 32; l++)
                {
                    y[output++] = d2 * (block.Qs[q + l] >> 4) - m2;
                }

                q += 32;
            }
        }
    }

    /// <summary>Vectorized dequantization with the same multiply-then-subtract per element (bit-identical).</summary>
    public static void Dequantize(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            DequantizeReference(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ4K>(source);
        var mask = Vector256.Create((byte)0x0F);
        for (int i = 0; i < blocks.Length; i++)
        {
            var blockBytes = source.Slice(i * sizeof(BlockQ4K), sizeof(BlockQ4K));
            var scales = blockBytes.Slice(4, 12);
            float d = ScalarFormats.HalfToSingle(blocks[i].D);
            float min = ScalarFormats.HalfToSingle(blocks[i].DMin);
            var y = destination.Slice(i * BlockQ4K.Size, BlockQ4K.Size);
            for (int j = 0; j < 4; j++)
            {
                var (sc1, m1) = KQuantScales.ScaleMin(2 * j, scales);
                var (sc2, m2) = KQuantScales.ScaleMin(2 * j + 1, scales);
                var packed = Vector256.Create(blockBytes.Slice(16 + 32 * j, 32));
                Store(packed & mask, Vector256.Create(d * sc1), Vector256.Create(min * m1), y.Slice(64 * j, 32));
                Store(Vector256.ShiftRightLogical(packed, 4), Vector256.Create(d * sc2), Vector256.Create(min * m2), y.Slice(64 * j + 32, 32));
            }
        }

        static void Store(Vector256<byte> quants, Vector256<float> scale, Vector256<float> offset, Span<float> y)
        {
            var (low, high) = Vector256.Widen(quants);
            var (q0, q1) = Vector256.Widen(low);
            var (q2, q3) = Vector256.Widen(high);
            (scale * Vector256.ConvertToSingle(q0.AsInt32()) - offset).CopyTo(y);
            (scale * Vector256.ConvertToSingle(q1.AsInt32()) - offset).CopyTo(y.Slice(8));
            (scale * Vector256.ConvertToSingle(q2.AsInt32()) - offset).CopyTo(y.Slice(16));
            (scale * Vector256.ConvertToSingle(q3.AsInt32()) - offset).CopyTo(y.Slice(24));
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q4_K_ref</c> (no importance matrix): per sub-block of 32 a weighted least-squares
    /// fit of scale and min (<c>make_qkx2_quants</c>), both quantized to 6 bits, then the quants recomputed
    /// from the rounded scales.
    /// </summary>
    public static void QuantizeReference(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ4K>(destination);
        Span<byte> levels = stackalloc byte[BlockQ4K.Size];
        Span<byte> levelsTried = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[BlockQ4K.Size / 32];
        Span<float> scales = stackalloc float[BlockQ4K.Size / 32];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ4K.Size, BlockQ4K.Size);
            for (int j = 0; j < BlockQ4K.Size / 32; j++)
            {
                var xs = x.Slice(32 * j, 32);
                KQuantFit.SubBlockWeights(xs, weights);
                scales[j] = KQuantFit.ScaleAndMin(15, xs, weights, levels.Slice(32 * j, 32), out mins[j], levelsTried, -1f, 0.1f, 20);
            }

            ref var block = ref blocks[i];
            var packedScales = destination.Slice(i * sizeof(BlockQ4K) + 4, 12);
            packedScales.Clear();
            KQuantFit.PackScalesAndMins(scales, mins, packedScales, out block.D, out block.DMin);
            float blockScale = ScalarFormats.HalfToSingle(block.D);
            float blockMin = ScalarFormats.HalfToSingle(block.DMin);
            for (int j = 0; j < BlockQ4K.Size / 32; j++)
            {
                var (sc, m) = KQuantScales.ScaleMin(j, packedScales);
                float d = blockScale * sc;
                if (d == 0f)
                {
                    continue;
                }

                float dm = blockMin * m;
                for (int ii = 0; ii < 32; ii++)
                {
                    int l = KQuantScales.NearestInt((x[32 * j + ii] + dm) / d);
                    levels[32 * j + ii] = (byte)Math.Clamp(l, 0, 15);
                }
            }

            for (int j = 0; j < BlockQ4K.Size; j += 64)
            {
                for (int l = 0; l < 32; l++)
                {
                    block.Qs[j / 2 + l] = (byte)(levels[j + l] | (levels[j + l + 32] << 4));
                }
            }
        }
    }
}
