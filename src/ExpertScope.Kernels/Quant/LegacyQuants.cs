using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q4_1</c>: 32 weights, x = d * q + m.
/// Layout (20 bytes): f16 d | f16 m | uint8 qs[16] (low nibble = weight j, high nibble = weight j + 16).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ4_1
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Minimum, float16 bits.</summary>
    public ushort M;

    /// <summary>Packed 4-bit quants.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>
/// ggml <c>block_q5_0</c>: 32 weights, x = d * (q - 16) with 5-bit q.
/// Layout (22 bytes): f16 d | uint8 qh[4] (bit j = fifth bit of weight j, little-endian 32-bit) | uint8 qs[16].
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ5_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Fifth bits of the 32 quants.</summary>
    public uint Qh;

    /// <summary>Low 4 bits, packed as in Q4_0.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>
/// ggml <c>block_q5_1</c>: 32 weights, x = d * q + m with 5-bit q.
/// Layout (24 bytes): f16 d | f16 m | uint8 qh[4] | uint8 qs[16].
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ5_1
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Minimum, float16 bits.</summary>
    public ushort M;

    /// <summary>Fifth bits of the 32 quants.</summary>
    public uint Qh;

    /// <summary>Low 4 bits, packed as in Q4_0.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>The older 32-element formats Q4_1, Q5_0 and Q5_1 (reference kernels).</summary>
internal static unsafe class LegacyQuants
{
    /// <summary>ggml's <c>dequantize_row_q4_1</c>: y = q * d + m.</summary>
    public static void DequantizeQ4_1(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ4_1>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            float m = ScalarFormats.HalfToSingle(block.M);
            var y = destination.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                y[j] = (block.Qs[j] & 0x0F) * d + m;
                y[j + 16] = (block.Qs[j] >> 4) * d + m;
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_q5_0</c>: y = (q - 16) * d.</summary>
    public static void DequantizeQ5_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ5_0>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            uint qh = block.Qh;
            var y = destination.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int high0 = (int)(((qh >> j) << 4) & 0x10);
                int high1 = (int)((qh >> (j + 12)) & 0x10);
                y[j] = (((block.Qs[j] & 0x0F) | high0) - 16) * d;
                y[j + 16] = (((block.Qs[j] >> 4) | high1) - 16) * d;
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_q5_1</c>: y = q * d + m.</summary>
    public static void DequantizeQ5_1(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ5_1>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            float m = ScalarFormats.HalfToSingle(block.M);
            uint qh = block.Qh;
            var y = destination.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int high0 = (int)(((qh >> j) << 4) & 0x10);
                int high1 = (int)((qh >> (j + 12)) & 0x10);
                y[j] = ((block.Qs[j] & 0x0F) | high0) * d + m;
                y[j + 16] = ((block.Qs[j] >> 4) | high1) * d + m;
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q4_1_ref</c>: d = (max - min) / 15, m = min, q = min(15, (int8)((x - min) / d + 0.5)).</summary>
    public static void QuantizeQ4_1(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ4_1>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * 32, 32);
            var (min, max) = MinMax(x);
            float d = (max - min) / 15;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            block.M = ScalarFormats.SingleToHalf(min);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, (int)(sbyte)((x[j] - min) * id + 0.5f));
                int q1 = Math.Min(15, (int)(sbyte)((x[j + 16] - min) * id + 0.5f));
                block.Qs[j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q5_0_ref</c>: d = max / -16, q = min(31, (int8)(x / d + 16.5)).</summary>
    public static void QuantizeQ5_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ5_0>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * 32, 32);
            float amax = 0f;
            float max = 0f;
            for (int j = 0; j < 32; j++)
            {
                if (amax < MathF.Abs(x[j]))
                {
                    amax = MathF.Abs(x[j]);
                    max = x[j];
                }
            }

            float d = max / -16;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(31, (int)(sbyte)(x[j] * id + 16.5f));
                int q1 = Math.Min(31, (int)(sbyte)(x[j + 16] * id + 16.5f));
                block.Qs[j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)((q0 & 0x10) >> 4) << j;
                qh |= (uint)((q1 & 0x10) >> 4) << (j + 16);
            }

            block.Qh = qh;
        }
    }

    /// <summary>ggml's <c>quantize_row_q5_1_ref</c>: d = (max - min) / 31, m = min, q = (uint8)((x - min) / d + 0.5).</summary>
    public static void QuantizeQ5_1(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ5_1>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * 32, 32);
            var (min, max) = MinMax(x);
            float d = (max - min) / 31;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            block.M = ScalarFormats.SingleToHalf(min);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = (byte)((x[j] - min) * id + 0.5f);
                int q1 = (byte)((x[j + 16] - min) * id + 0.5f);
                block.Qs[j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)((q0 & 0x10) >> 4) << j;
                qh |= (uint)((q1 & 0x10) >> 4) << (j + 16);
            }

            block.Qh = qh;
        }
    }

    private static (float Min, float Max) MinMax(ReadOnlySpan<float> x)
    {
        float min = float.MaxValue;
        float max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min)
            {
                min = v;
            }

            if (v > max)
            {
                max = v;
            }
        }

        return (min, max);
    }
}
