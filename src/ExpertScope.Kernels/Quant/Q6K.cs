using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q6_K</c>: 256 weights in 16 sub-blocks of 16, x = d * scale_j * (q - 32) (6.5625 bits per weight).
/// Layout (210 bytes): uint8 ql[128] (low 4 bits) | uint8 qh[64] (high 2 bits) | int8 scales[16] | f16 d.
/// Per half of 128 weights: ql[l] low nibble → weight l, ql[l+32] low → l+32, ql[l] high → l+64,
/// ql[l+32] high → l+96; qh[l] bits 0-1, 2-3, 4-5, 6-7 give the high bits of those four.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ6K
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Low 4 bits of the quants.</summary>
    public fixed byte Ql[Size / 2];

    /// <summary>High 2 bits of the quants.</summary>
    public fixed byte Qh[Size / 4];

    /// <summary>8-bit sub-block scales.</summary>
    public fixed sbyte Scales[Size / 16];

    /// <summary>Super-block scale, float16 bits.</summary>
    public ushort D;
}

/// <summary>Q6_K kernels.</summary>
internal static unsafe class Q6K
{
    /// <summary>ggml's <c>dequantize_row_q6_K</c>: y = (d * scale) * q.</summary>
    public static void DequantizeReference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ6K>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockQ6K.Size, BlockQ6K.Size);
            for (int half = 0; half < 2; half++)
            {
                int ql = 64 * half;
                int qh = 32 * half;
                int sc = 8 * half;
                int output = 128 * half;
                for (int l = 0; l < 32; l++)
                {
                    int scaleIndex = l / 16;
                    int q1 = ((block.Ql[ql + l] & 0xF) | (((block.Qh[qh + l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((block.Ql[ql + l + 32] & 0xF) | (((block.Qh[qh + l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((block.Ql[ql + l] >> 4) | (((block.Qh[qh + l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((block.Ql[ql + l + 32] >> 4) | (((block.Qh[qh + l] >> 6) & 3) << 4)) - 32;
                    y[output + l] = d * block.Scales[sc + scaleIndex] * q1;
                    y[output + l + 32] = d * block.Scales[sc + scaleIndex + 2] * q2;
                    y[output + l + 64] = d * block.Scales[sc + scaleIndex + 4] * q3;
                    y[output + l + 96] = d * block.Scales[sc + scaleIndex + 6] * q4;
                }
            }
        }
    }

    /// <summary>Vectorized dequantization: same (d * scale) * q per element, so bit-identical to the reference.</summary>
    public static void Dequantize(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            DequantizeReference(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ6K>(source);
        var lowMask = Vector256.Create((byte)0x0F);
        var twoBits = Vector256.Create((byte)3);
        var offset = Vector256.Create((sbyte)32);
        for (int i = 0; i < blocks.Length; i++)
        {
            var blockBytes = source.Slice(i * sizeof(BlockQ6K), sizeof(BlockQ6K));
            var scales = MemoryMarshal.Cast<byte, sbyte>(blockBytes.Slice(192, 16));
            float d = ScalarFormats.HalfToSingle(blocks[i].D);
            var y = destination.Slice(i * BlockQ6K.Size, BlockQ6K.Size);
            for (int half = 0; half < 2; half++)
            {
                var ql0 = Vector256.Create(blockBytes.Slice(64 * half, 32));
                var ql1 = Vector256.Create(blockBytes.Slice(64 * half + 32, 32));
                var qh = Vector256.Create(blockBytes.Slice(128 + 32 * half, 32));
                var q1 = (ql0 & lowMask) | Vector256.ShiftLeft(qh & twoBits, 4);
                var q2 = (ql1 & lowMask) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 2) & twoBits, 4);
                var q3 = Vector256.ShiftRightLogical(ql0, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 4) & twoBits, 4);
                var q4 = Vector256.ShiftRightLogical(ql1, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 6), 4);
                var sc = scales.Slice(8 * half);
                var yh = y.Slice(128 * half);
                Store(q1.AsSByte() - offset, d * sc[0], d * sc[1], yh);
                Store(q2.AsSByte() - offset, d * sc[2], d * sc[3], yh.Slice(32));
                Store(q3.AsSByte() - offset, d * sc[4], d * sc[5], yh.Slice(64));
                Store(q4.AsSByte() - offset, d * sc[6], d * sc[7], yh.Slice(96));
            }
        }

        // 32 quants: the first 16 use scale0, the next 16 scale1.
        static void Store(Vector256<sbyte> quants, float scale0, float scale1, Span<float> y)
        {
            var (low, high) = Vector256.Widen(quants);
            var (q0, q1) = Vector256.Widen(low);
            var (q2, q3) = Vector256.Widen(high);
            var s0 = Vector256.Create(scale0);
            var s1 = Vector256.Create(scale1);
            (s0 * Vector256.ConvertToSingle(q0)).CopyTo(y);
            (s0 * Vector256.ConvertToSingle(q1)).CopyTo(y.Slice(8));
            (s1 * Vector256.ConvertToSingle(q2)).CopyTo(y.Slice(16));
            (s1 * Vector256.ConvertToSingle(q3)).CopyTo(y.Slice(24));
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q6_K_ref</c> (no importance matrix): per sub-block of 16 the scale search of
    /// <c>make_qx_quants</c> (32 levels each side), scales quantized to int8 against the largest, then the quants
    /// recomputed from the rounded scales.
    /// </summary>
    public static void QuantizeReference(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ6K>(destination);
        Span<sbyte> levels = stackalloc sbyte[BlockQ6K.Size];
        Span<float> scales = stackalloc float[BlockQ6K.Size / 16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ6K.Size, BlockQ6K.Size);
            float maxScale = 0;
            float maxAbsScale = 0;
            for (int ib = 0; ib < BlockQ6K.Size / 16; ib++)
            {
                float scale = KQuantFit.SymmetricScale(32, x.Slice(16 * ib, 16), levels.Slice(16 * ib, 16));
                scales[ib] = scale;
                float absScale = MathF.Abs(scale);
                if (absScale > maxAbsScale)
                {
                    maxAbsScale = absScale;
                    maxScale = scale;
                }
            }

            ref var block = ref blocks[i];
            if (maxAbsScale < 1e-15f)
            {
                destination.Slice(i * sizeof(BlockQ6K), sizeof(BlockQ6K)).Clear();
                continue;
            }

            float inverseScale = -128f / maxScale;
            block.D = ScalarFormats.SingleToHalf(1 / inverseScale);
            for (int ib = 0; ib < BlockQ6K.Size / 16; ib++)
            {
                block.Scales[ib] = (sbyte)Math.Min(127, KQuantScales.NearestInt(inverseScale * scales[ib]));
            }

            float blockScale = ScalarFormats.HalfToSingle(block.D);
            for (int j = 0; j < BlockQ6K.Size / 16; j++)
            {
                float d = blockScale * block.Scales[j];
                if (d == 0f)
                {
                    continue;
                }

                for (int ii = 0; ii < 16; ii++)
                {
                    int l = KQuantScales.NearestInt(x[16 * j + ii] / d);
                    levels[16 * j + ii] = (sbyte)(Math.Clamp(l, -32, 31) + 32);
                }
            }

            for (int half = 0; half < 2; half++)
            {
                int j = 128 * half;
                for (int l = 0; l < 32; l++)
                {
                    int q1 = levels[j + l] & 0xF;
                    int q2 = levels[j + l + 32] & 0xF;
                    int q3 = levels[j + l + 64] & 0xF;
                    int q4 = levels[j + l + 96] & 0xF;
                    block.Ql[64 * half + l] = (byte)(q1 | (q3 << 4));
                    block.Ql[64 * half + l + 32] = (byte)(q2 | (q4 << 4));
                    block.Qh[32 * half + l] = (byte)((levels[j + l] >> 4) | ((levels[j + l + 32] >> 4) << 2)
                        | ((levels[j + l + 64] >> 4) << 4) | ((levels[j + l + 96] >> 4) << 6));
                }
            }
        }
    }
}
