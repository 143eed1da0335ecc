using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Dot products of one weight row (any ggml type) with one activation row: the float path (dequantize, then a
/// float dot with a fixed 16-lane order) and llama.cpp's path (activations converted per block to the weight
/// type's <see cref="TypeKernel.DotActivationType"/>, then ggml's <c>vec_dot</c>: integer sums for the quantized
/// types, a float64 sum for F32/F16/BF16), which reproduces llama.cpp's matrix products bit for bit.
/// </summary>
public static class VecDot
{
    /// <summary>Lanes of the float accumulator; the reference and the SIMD path both sum element i into lane i mod 16.</summary>
    internal const int FloatLanes = 16;

    /// <summary>Elements dequantized at a time by the float path (a multiple of every block size).</summary>
    private const int ChunkElements = 1024;

    /// <summary>
    /// Float dot product of a weight row stored as <paramref name="type"/> with float activations. Effectively
    /// computes <c>sum(dequantize(weights)[i] * activations[i])</c>, with a fixed summation order: element i goes to
    /// partial sum i mod 16, and the 16 partial sums are folded pairwise (l + 8, then + 4, + 2, + 1). The result is
    /// therefore the same bits as <see cref="FloatReference"/> on every machine.
    /// </summary>
    /// <param name="type">Storage type of the weight row.</param>
    /// <param name="weights">Whole blocks holding <c>activations.Length</c> elements.</param>
    /// <param name="activations">Float activations; the length must be a multiple of the block size.</param>
    /// <exception cref="ArgumentException">The type has no dequantizer, or the lengths do not match.</exception>
    public static float Float(GgmlType type, ReadOnlySpan<byte> weights, ReadOnlySpan<float> activations)
    {
        var kernel = TypeKernels.Get(type);
        Dequantize.Validate(kernel.Info, weights.Length, activations.Length, nameof(weights), nameof(activations));
        return FloatUnchecked(kernel, weights, activations);
    }

    /// <summary><see cref="Float"/> without validation (lengths already checked by the caller).</summary>
    internal static float FloatUnchecked(TypeKernel kernel, ReadOnlySpan<byte> weights, ReadOnlySpan<float> activations)
    {
        Span<float> lanes = stackalloc float[FloatLanes];
        lanes.Clear();
        if (kernel.Info.Type == GgmlType.F32)
        {
            Accumulate(MemoryMarshal.Cast<byte, float>(weights), activations, lanes);
            return Fold(lanes);
        }

        var info = kernel.Info;
        Span<float> buffer = stackalloc float[ChunkElements];
        for (int start = 0; start < activations.Length; start += ChunkElements)
        {
            int count = Math.Min(ChunkElements, activations.Length - start);
            var chunk = buffer.Slice(0, count);
            kernel.Dequantize(weights.Slice(start / info.BlockSize * info.TypeSize, count / info.BlockSize * info.TypeSize), chunk);

            // Chunks start at multiples of 16, so lane i mod 16 stays the same as in one pass.
            Accumulate(chunk, activations.Slice(start, count), lanes);
        }

        return Fold(lanes);
    }

    /// <summary>Scalar reference of <see cref="Float"/>: reference dequantization, then the same 16-lane sum one element at a time.</summary>
    /// <inheritdoc cref="Float" path="/param"/>
    /// <exception cref="ArgumentException">The type has no dequantizer, or the lengths do not match.</exception>
    public static float FloatReference(GgmlType type, ReadOnlySpan<byte> weights, ReadOnlySpan<float> activations)
    {
        var kernel = TypeKernels.Get(type);
        Dequantize.Validate(kernel.Info, weights.Length, activations.Length, nameof(weights), nameof(activations));
        var values = new float[activations.Length];
        kernel.DequantizeReference(weights, values);
        Span<float> lanes = stackalloc float[FloatLanes];
        lanes.Clear();
        for (int i = 0; i < values.Length; i++)
        {
            lanes[i % FloatLanes] += values[i] * activations[i];
        }

        return Fold(lanes);
    }

    /// <summary>
    /// The type llama.cpp quantizes activations to before multiplying them with weights of <paramref name="type"/>
    /// (ggml's <c>vec_dot_type</c>): Q8_0 for Q8_0/Q4_0, Q8_K for Q4_K/Q6_K, and the type itself for F32/F16/BF16;
    /// null where no llama.cpp dot is ported.
    /// </summary>
    public static GgmlType? ActivationType(GgmlType type) =>
        TypeKernels.TryGet(type, out var kernel) ? kernel.DotActivationType : null;

    /// <summary>
    /// Quantizes an activation row for <see cref="Quantized"/> with weights of <paramref name="weightType"/>
    /// (ggml's <c>from_float</c> of the <c>vec_dot_type</c>). Do this once per activation row and reuse the
    /// bytes for every weight row.
    /// </summary>
    /// <param name="weightType">Type of the weight rows the activations will meet.</param>
    /// <param name="activations">Float activations; the length must be a multiple of the block size.</param>
    /// <param name="destination">Receives <see cref="ActivationBytes"/> bytes.</param>
    /// <exception cref="ArgumentException">No quantized dot exists for the type, or the lengths do not match.</exception>
    public static void QuantizeActivations(GgmlType weightType, ReadOnlySpan<float> activations, Span<byte> destination) =>
        Quant.Quantize.Row(RequireActivationType(weightType), activations, destination);

    /// <summary>Bytes that <see cref="QuantizeActivations"/> writes for <paramref name="elementCount"/> activations.</summary>
    /// <exception cref="ArgumentException">No quantized dot exists for the type, or the count is not a whole number of blocks.</exception>
    public static int ActivationBytes(GgmlType weightType, int elementCount) =>
        Quant.Quantize.RowBytes(RequireActivationType(weightType), elementCount);

    /// <summary>
    /// llama.cpp's dot product of a weight row with activations already quantized by
    /// <see cref="QuantizeActivations"/>: ggml's generic <c>vec_dot</c>, vectorized, same bits as
    /// <see cref="QuantizedReference"/> and as llama.cpp's generic CPU kernel.
    /// </summary>
    /// <param name="weightType">Storage type of the weight row.</param>
    /// <param name="weights">Whole blocks of the weight row.</param>
    /// <param name="activations">The quantized activations, holding as many elements as the weight row.</param>
    /// <exception cref="ArgumentException">No quantized dot exists for the type, or the lengths do not match.</exception>
    public static float Quantized(GgmlType weightType, ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var kernel = ValidateQuantized(weightType, weights, activations);
        return kernel.Dot!(weights, activations);
    }

    /// <summary>Scalar reference of <see cref="Quantized"/>: a line-by-line port of ggml's generic <c>vec_dot</c>.</summary>
    /// <inheritdoc cref="Quantized" path="/param"/>
    /// <exception cref="ArgumentException">No quantized dot exists for the type, or the lengths do not match.</exception>
    public static float QuantizedReference(GgmlType weightType, ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var kernel = ValidateQuantized(weightType, weights, activations);
        return kernel.DotReference!(weights, activations);
    }

    private static GgmlType RequireActivationType(GgmlType weightType) =>
        ActivationType(weightType) ?? throw new ArgumentException($"There is no quantized dot product for {weightType}.", nameof(weightType));

    internal static TypeKernel ValidateQuantized(GgmlType weightType, ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var kernel = TypeKernels.Get(weightType);
        if (kernel.DotActivationType is not { } activationType || kernel.Dot is null || kernel.DotReference is null)
        {
            throw new ArgumentException($"There is no quantized dot product for {kernel.Info.Name}.", nameof(weightType));
        }

        var info = kernel.Info;
        if (weights.Length % info.TypeSize != 0)
        {
            throw new ArgumentException($"{weights.Length} bytes are not a whole number of {info.Name} blocks ({info.TypeSize} bytes).", nameof(weights));
        }

        long elements = (long)weights.Length / info.TypeSize * info.BlockSize;
        var activationInfo = GgmlTypes.Get(activationType);
        long expected = activationInfo.RowBytes(elements);
        if (expected < 0 || activations.Length != expected)
        {
            throw new ArgumentException(
                $"{elements} {info.Name} weights need {expected} bytes of {activationInfo.Name} activations, but there are {activations.Length}.",
                nameof(activations));
        }

        return kernel;
    }

    /// <summary>lanes[i mod 16] += weights[i] * activations[i] (multiply, then add; no fused multiply-add).</summary>
    private static void Accumulate(ReadOnlySpan<float> weights, ReadOnlySpan<float> activations, Span<float> lanes)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated && weights.Length >= FloatLanes)
        {
            var low = Vector256.Create<float>(lanes);
            var high = Vector256.Create<float>(lanes.Slice(8));
            for (; i + FloatLanes <= weights.Length; i += FloatLanes)
            {
                low += Vector256.Create(weights.Slice(i, 8)) * Vector256.Create(activations.Slice(i, 8));
                high += Vector256.Create(weights.Slice(i + 8, 8)) * Vector256.Create(activations.Slice(i + 8, 8));
            }

            low.CopyTo(lanes);
            high.CopyTo(lanes.Slice(8));
        }

        for (; i < weights.Length; i++)
        {
            lanes[i % FloatLanes] += weights[i] * activations[i];
        }
    }

    private static float Fold(Span<float> lanes)
    {
        for (int width = FloatLanes / 2; width >= 1; width /= 2)
        {
            for (int l = 0; l < width; l++)
            {
                lanes[l] += lanes[l + width];
            }
        }

        return lanes[0];
    }
}
