using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q8_1</c>: the activation type of the Q4_1 and Q5_1 dots; 32 values, x = d * q.
/// Layout (36 bytes): f16 d | f16 s (d times the sum of the quants) | int8 qs[32].
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ8_1
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>d * sum(qs), float16 bits.</summary>
    public ushort S;

    /// <summary>Signed 8-bit quants.</summary>
    public fixed sbyte Qs[Size];
}

/// <summary>Q8_1 kernels.</summary>
internal static unsafe class Q8_1
{
    /// <summary>x = d * q (ggml has no <c>to_float</c> for this activation type; this is its definition).</summary>
    public static void DequantizeReference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ8_1>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            for (int j = 0; j < BlockQ8_1.Size; j++)
            {
                destination[i * BlockQ8_1.Size + j] = block.Qs[j] * d;
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q8_1_ref</c>: as Q8_0, plus s = fp16(sum(q) * d).</summary>
    public static void QuantizeReference(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ8_1>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ8_1.Size, BlockQ8_1.Size);
            float amax = 0f;
            for (int j = 0; j < x.Length; j++)
            {
                amax = MathF.Max(amax, MathF.Abs(x[j]));
            }

            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            int sum = 0;
            for (int j = 0; j < BlockQ8_1.Size; j++)
            {
                sbyte q = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
                block.Qs[j] = q;
                sum += q;
            }

            block.S = ScalarFormats.SingleToHalf(sum * d);
        }
    }
}
