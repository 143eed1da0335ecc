using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Kernels;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The one seam between the engine and the storage formats (the Kernels project): decoding rows of any ggml type,
/// and the row-times-activations products as llama.cpp computes them.
/// </summary>
internal static class WeightRows
{
    /// <summary>True when rows of <paramref name="type"/> can be decoded.</summary>
    public static bool IsSupported(GgmlType type) => TypeKernels.TryGet(type, out _);

    /// <summary>
    /// The type llama.cpp converts activations to before multiplying them with <paramref name="type"/> weights, or
    /// null where the product is done in float32 (F32 weights, or a type without a ported llama.cpp dot).
    /// </summary>
    public static GgmlType? ActivationType(GgmlType type) =>
        type == GgmlType.F32 ? null : VecDot.ActivationType(type);

    /// <summary>
    /// True for F16 and BF16: ggml multiplies them with activations of the same type, each product exact in float,
    /// summed in double. Decoding both sides to float and using the float dot (also double sums) gives the same bits,
    /// vectorised.
    /// </summary>
    public static bool HasExactFloatProducts(GgmlType type) => type is GgmlType.F16 or GgmlType.BF16;

    /// <summary>Decodes one row into <paramref name="destination"/> (its length is the row's element count).</summary>
    /// <exception cref="ExpertScopeException">The type is not supported.</exception>
    public static void Decode(GgmlType type, ReadOnlySpan<byte> row, Span<float> destination)
    {
        if (type == GgmlType.F32)
        {
            MemoryMarshal.Cast<byte, float>(row)[..destination.Length].CopyTo(destination);
            return;
        }

        if (!TypeKernels.TryGet(type, out var kernel))
        {
            throw new ExpertScopeException($"weights of type {GgmlTypes.Get(type).Name} are not supported.");
        }

        kernel.Dequantize(row, destination);
    }

    /// <summary>Converts one activation row to <paramref name="type"/>'s activation type (ggml's <c>from_float</c>).</summary>
    public static void QuantizeActivations(GgmlType type, ReadOnlySpan<float> activations, Span<byte> destination) =>
        VecDot.QuantizeActivations(type, activations, destination);

    /// <summary>Bytes of one converted activation row.</summary>
    public static int ActivationBytes(GgmlType type, int elements) => VecDot.ActivationBytes(type, elements);

    /// <summary>llama.cpp's dot of a stored row with a converted activation row (bit for bit), validating the lengths.</summary>
    public static float QuantizedDot(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<byte> activations) =>
        VecDot.Quantized(type, row, activations);

    /// <summary>
    /// The kernel behind <see cref="QuantizedDot"/>, for loops that validated the lengths once with a first
    /// <see cref="QuantizedDot"/> call and then call it per row without checks.
    /// </summary>
    public static QuantizedDotKernel QuantizedDotKernel(GgmlType type) =>
        TypeKernels.Get(type).Dot ?? throw new ExpertScopeException($"weights of type {GgmlTypes.Get(type).Name} have no llama.cpp dot product.");
}
