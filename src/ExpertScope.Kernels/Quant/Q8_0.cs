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

    /// <summary>
    /// Vectorized <see cref="QuantizeReference"/>, the same bits: the block maximum is exact in any order, the scale
    /// and its inverse are the same scalar operations, each element gets the same multiply, and rounding half away from
    /// zero is rebuilt exactly from truncation (the fraction <c>v - trunc(v)</c> is exact). Blocks holding NaN or an
    /// infinity take the reference path.
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<byte> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            QuantizeReference(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ8_0>(destination);
        var exponent = Vector256.Create(0x7F800000u);
        var half = Vector256.Create(0.5f);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ8_0.Size, BlockQ8_0.Size);
            var x0 = Vector256.Create(x);
            var x1 = Vector256.Create(x.Slice(8));
            var x2 = Vector256.Create(x.Slice(16));
            var x3 = Vector256.Create(x.Slice(24));
            var special = Vector256.Equals(x0.AsUInt32() & exponent, exponent) | Vector256.Equals(x1.AsUInt32() & exponent, exponent)
                | Vector256.Equals(x2.AsUInt32() & exponent, exponent) | Vector256.Equals(x3.AsUInt32() & exponent, exponent);
            if (special != Vector256<uint>.Zero)
            {
                QuantizeReference(x, destination.Slice(i * sizeof(BlockQ8_0), sizeof(BlockQ8_0)));
                continue;
            }

            var largest = Vector256.Max(Vector256.Max(Vector256.Abs(x0), Vector256.Abs(x1)), Vector256.Max(Vector256.Abs(x2), Vector256.Abs(x3)));
            var four = Vector128.Max(largest.GetLower(), largest.GetUpper());
            float amax = MathF.Max(MathF.Max(four.GetElement(0), four.GetElement(1)), MathF.Max(four.GetElement(2), four.GetElement(3)));
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            var scale = Vector256.Create(id);
            var q01 = Vector256.Narrow(RoundHalfAway(x0 * scale, half), RoundHalfAway(x1 * scale, half));
            var q23 = Vector256.Narrow(RoundHalfAway(x2 * scale, half), RoundHalfAway(x3 * scale, half));
            var quants = Vector256.Narrow(q01, q23);
            fixed (sbyte* qs = block.Qs)
            {
                quants.Store(qs);
            }
        }
    }

    /// <summary><c>MathF.Round(v, MidpointRounding.AwayFromZero)</c> as int32, for finite |v| below 2^31.</summary>
    private static Vector256<int> RoundHalfAway(Vector256<float> v, Vector256<float> half)
    {
        var truncated = Vector256.Truncate(v);
        var fraction = Vector256.Abs(v - truncated);
        var step = Vector256.ConditionalSelect(Vector256.LessThan(v, Vector256<float>.Zero), Vector256.Create(-1f), Vector256.Create(1f));
        var rounded = truncated + (Vector256.GreaterThanOrEqual(fraction, half).AsSingle() & step);
        return Vector256.ConvertToInt32(rounded);
    }
}
