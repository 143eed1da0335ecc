using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>Plain element types: float32 (copy), float16 and bfloat16 (2 bytes each, little-endian bits).</summary>
internal static class PlainFloats
{
    /// <summary>Float32 storage: a copy.</summary>
    public static void DequantizeF32(ReadOnlySpan<byte> source, Span<float> destination) =>
        MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);

    /// <summary>Float32 storage: a copy.</summary>
    public static void QuantizeF32(ReadOnlySpan<float> source, Span<byte> destination) =>
        source.CopyTo(MemoryMarshal.Cast<byte, float>(destination));

    /// <summary>ggml's <c>fp16_to_fp32_row</c>: one conversion per element.</summary>
    public static void DequantizeF16Reference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(source);
        for (int i = 0; i < bits.Length; i++)
        {
            destination[i] = ScalarFormats.HalfToSingle(bits[i]);
        }
    }

    /// <summary>Vectorized float16 to float32 (exact, so equal to the reference bit for bit).</summary>
    public static void DequantizeF16(ReadOnlySpan<byte> source, Span<float> destination) =>
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);

    /// <summary>ggml's <c>fp32_to_fp16_row</c>: round to nearest even.</summary>
    public static void QuantizeF16(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(destination);
        for (int i = 0; i < source.Length; i++)
        {
            bits[i] = ScalarFormats.SingleToHalf(source[i]);
        }
    }

    /// <summary>ggml's <c>bf16_to_fp32_row</c>.</summary>
    public static void DequantizeBF16Reference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(source);
        for (int i = 0; i < bits.Length; i++)
        {
            destination[i] = ScalarFormats.BFloat16ToSingle(bits[i]);
        }
    }

    /// <summary>Vectorized bfloat16 to float32: widen each 16-bit value and shift it into the high half.</summary>
    public static void DequantizeBF16(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(source);
        var output = MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<ushort>.Count <= bits.Length; i += Vector256<ushort>.Count)
            {
                var packed = Vector256.Create<ushort>(bits.Slice(i, Vector256<ushort>.Count));
                var (lower, upper) = Vector256.Widen(packed);
                Vector256.ShiftLeft(lower, 16).CopyTo(output.Slice(i));
                Vector256.ShiftLeft(upper, 16).CopyTo(output.Slice(i + Vector256<uint>.Count));
            }
        }

        for (; i < bits.Length; i++)
        {
            output[i] = (uint)bits[i] << 16;
        }
    }

    /// <summary>ggml's <c>fp32_to_bf16_row_ref</c>: round to nearest even, NaN made quiet.</summary>
    public static void QuantizeBF16(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var bits = MemoryMarshal.Cast<byte, ushort>(destination);
        for (int i = 0; i < source.Length; i++)
        {
            bits[i] = ScalarFormats.SingleToBFloat16(source[i]);
        }
    }
}

/// <summary>
/// ggml's scalar <c>vec_dot_f32</c>, <c>vec_dot_f16</c> and <c>vec_dot_bf16</c> (the builds without
/// <c>GGML_SIMD</c>, which produced the golden data): each product is formed in float32 and added to a float64 sum,
/// which is rounded to float32 at the end. F16 and BF16 weights meet activations converted to their own type.
/// </summary>
internal static class PlainDots
{
    /// <summary>sum += (double)(x[i] * y[i]) over float32 rows.</summary>
    public static float F32(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, float>(weights);
        var y = MemoryMarshal.Cast<byte, float>(activations);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += x[i] * y[i];
        }

        return (float)sum;
    }

    /// <summary>sum += (double)(fp16(x[i]) * fp16(y[i])).</summary>
    public static float F16(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, ushort>(weights);
        var y = MemoryMarshal.Cast<byte, ushort>(activations);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += ScalarFormats.HalfToSingle(x[i]) * ScalarFormats.HalfToSingle(y[i]);
        }

        return (float)sum;
    }

    /// <summary>sum += (double)(bf16(x[i]) * bf16(y[i])).</summary>
    public static float BF16(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, ushort>(weights);
        var y = MemoryMarshal.Cast<byte, ushort>(activations);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sum += ScalarFormats.BFloat16ToSingle(x[i]) * ScalarFormats.BFloat16ToSingle(y[i]);
        }

        return (float)sum;
    }
}
