using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q1_0</c> (type 41): 128 weights, x = bit ? d : -d.
/// Layout (18 bytes): f16 d | uint8 qs[16] (bit j % 8 of byte j / 8 is the sign of weight j; set = positive).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ1_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 128;

    /// <summary>Magnitude (mean absolute value), float16 bits.</summary>
    public ushort D;

    /// <summary>One bit per weight.</summary>
    public fixed byte Qs[Size / 8];
}

/// <summary>
/// ggml <c>block_q2_0</c> (type 42): 64 weights, x = (q - 1) * d with 2-bit q (levels -1, 0, 1, 2).
/// Layout (18 bytes): f16 d | uint8 qs[16] (bits 2(j % 4)..2(j % 4)+1 of byte j / 4 hold weight j).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ2_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 64;

    /// <summary>Scale (absolute maximum), float16 bits.</summary>
    public ushort D;

    /// <summary>Four 2-bit quants per byte.</summary>
    public fixed byte Qs[Size / 4];
}

/// <summary>The 1- and 2-bit formats Q1_0 and Q2_0 (reference kernels, ggml-quants.c of August 2026).</summary>
internal static unsafe class LowBitQuants
{
    /// <summary>ggml's <c>dequantize_row_q1_0</c>.</summary>
    public static void DequantizeQ1_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ1_0>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            float negative = -d;
            var y = destination.Slice(i * BlockQ1_0.Size, BlockQ1_0.Size);
            for (int j = 0; j < BlockQ1_0.Size; j++)
            {
                y[j] = ((block.Qs[j / 8] >> (j % 8)) & 1) != 0 ? d : negative;
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_q2_0</c>.</summary>
    public static void DequantizeQ2_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ2_0>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockQ2_0.Size, BlockQ2_0.Size);
            for (int j = 0; j < BlockQ2_0.Size; j++)
            {
                int q = (block.Qs[j / 4] >> ((j % 4) * 2)) & 0x03;
                y[j] = (q - 1) * d;
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q1_0_ref</c>: d = mean |x|, bit set where x >= 0.</summary>
    public static void QuantizeQ1_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ1_0>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ1_0.Size, BlockQ1_0.Size);
            float sumAbs = 0f;
            for (int j = 0; j < x.Length; j++)
            {
                sumAbs += MathF.Abs(x[j]);
            }

            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(sumAbs / BlockQ1_0.Size);
            for (int j = 0; j < BlockQ1_0.Size / 8; j++)
            {
                block.Qs[j] = 0;
            }

            for (int j = 0; j < BlockQ1_0.Size; j++)
            {
                if (x[j] >= 0f)
                {
                    block.Qs[j / 8] |= (byte)(1 << (j % 8));
                }
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q2_0_ref</c>: d = max |x|, q = clamp(round(x / d) + 1, 0, 3).</summary>
    public static void QuantizeQ2_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ2_0>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ2_0.Size, BlockQ2_0.Size);
            float amax = 0f;
            for (int j = 0; j < x.Length; j++)
            {
                float a = MathF.Abs(x[j]);
                if (a > amax)
                {
                    amax = a;
                }
            }

            float id = amax > 0f ? 1f / amax : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(amax);
            for (int j = 0; j < BlockQ2_0.Size / 4; j++)
            {
                block.Qs[j] = 0;
            }

            for (int j = 0; j < BlockQ2_0.Size; j++)
            {
                int q = Math.Clamp((int)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero) + 1, 0, 3);
                block.Qs[j / 4] |= (byte)(q << ((j % 4) * 2));
            }
        }
    }
}
