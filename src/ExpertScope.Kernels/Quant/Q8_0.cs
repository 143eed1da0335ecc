using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q8_0</c>: 32 weights, x = d * q.
/// Layout (34 bytes): f16 d (scale) | int8 qs[32].
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ8_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Signed 8-bit quants.</summary>
    public fixed sbyte Qs[Size];
}

/// <summary>Q8_0 kernels (also the activation type llama.cpp uses for Q8_0, Q4_0 and other 32-blocks).</summary>
internal static unsafe class Q8_0
{
    /// <summary>ggml's <c>dequantize_row_q8_0</c>: y = q * d.</summary>
    public static void DequantizeReference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ8_0>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockQ8_0.Size, BlockQ8_0.Size);
            for (int j = 0; j < BlockQ8_0.Size; j++)
            {
                y[j] = block.Qs[j] * d;
            }
        }
    }

    /// <summary>
    /// Vectorized dequantization: the int8 to float conversion is exact and each element gets the same single
    /// multiply, so the result equals the reference bit for bit.
    /// </summary>
    public static void Dequantize(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            DequantizeReference(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ8_0>(source);
        var allQuants = MemoryMarshal.Cast<byte, sbyte>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            var d = Vector256.Create(ScalarFormats.HalfToSingle(blocks[i].D));
            var y = destination.Slice(i * BlockQ8_0.Size, BlockQ8_0.Size);
            var quants = Vector256.Create(allQuants.Slice(i * sizeof(BlockQ8_0) + sizeof(ushort), BlockQ8_0.Size));
            var (low, high) = Vector256.Widen(quants);
            var (q0, q1) = Vector256.Widen(low);
            var (q2, q3) = Vector256.Widen(high);
            (Vector256.ConvertToSingle(q0) * d).CopyTo(y);
            (Vector256.ConvertToSingle(q1) * d).CopyTo(y.Slice(8));
            (Vector256.ConvertToSingle(q2) * d).CopyTo(y.Slice(16));
            (Vector256.ConvertToSingle(q3) * d).CopyTo(y.Slice(24));
        }
    }

    /// <summary>ggml's <c>quantize_row_q8_0_ref</c>: d = amax / 127, q = round(x / d) (half away from zero).</summary>
    public static void QuantizeReference(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ8_0>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ8_0.Size, BlockQ8_0.Size);
            float amax = 0f;
            for (int j = 0; j < x.Length; j++)
            {
                amax = MathF.Max(amax, MathF.Abs(x[j]));
            }

            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            for (int j = 0; j < x.Length; j++)
            {
                block.Qs[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
            }
        }
    }
}
