using System.Diagnostics.CodeAnalysis;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels;

/// <summary>Converts whole blocks of one type to float32 (<paramref name="destination"/> holds the elements).</summary>
/// <param name="source">Whole blocks.</param>
/// <param name="destination">The elements; length = blocks * block size.</param>
public delegate void DequantizeRowKernel(ReadOnlySpan<byte> source, Span<float> destination);

/// <summary>Converts float32 elements to whole blocks of one type.</summary>
/// <param name="source">The elements; length = blocks * block size.</param>
/// <param name="destination">Whole blocks.</param>
public delegate void QuantizeRowKernel(ReadOnlySpan<float> source, Span<byte> destination);

/// <summary>
/// ggml's <c>vec_dot</c>: the dot product of one weight row with one activation row that was quantized to the
/// weight type's <see cref="TypeKernel.DotActivationType"/>; both hold the same number of elements.
/// </summary>
/// <param name="weights">Whole blocks of the weight type.</param>
/// <param name="activations">Whole blocks of the activation type.</param>
public delegate float QuantizedDotKernel(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations);

/// <summary>How the fast kernel of a type is built.</summary>
public enum KernelPath
{
    /// <summary>The fast entry is the scalar reference itself.</summary>
    Reference,

    /// <summary>A SIMD kernel (Vector256, AVX-VNNI where present) that returns the reference's results bit for bit.</summary>
    Vectorized,
}

/// <summary>Everything the engine needs to handle one ggml type (ggml's <c>type_traits</c> + <c>type_traits_cpu</c>).</summary>
/// <param name="Info">Block size, type size, name.</param>
/// <param name="DequantizeReference">Scalar port of ggml's <c>to_float</c>.</param>
/// <param name="Dequantize">Fastest dequantizer (equal to the reference bit for bit).</param>
/// <param name="DequantizePath">Whether <paramref name="Dequantize"/> is vectorized or shares the reference.</param>
/// <param name="Quantize">ggml's reference quantizer (<c>from_float_ref</c>), or null where none is ported.</param>
/// <param name="DotActivationType">ggml's <c>vec_dot_type</c> (activations are quantized to it), or null where no quantized dot is ported.</param>
/// <param name="DotReference">Scalar port of ggml's generic <c>vec_dot</c>.</param>
/// <param name="Dot">Fastest dot kernel (equal to the reference bit for bit).</param>
/// <param name="DotPath">Whether <paramref name="Dot"/> is vectorized or shares the reference.</param>
public sealed record TypeKernel(
    GgmlTypeInfo Info,
    DequantizeRowKernel DequantizeReference,
    DequantizeRowKernel Dequantize,
    KernelPath DequantizePath,
    QuantizeRowKernel? Quantize = null,
    GgmlType? DotActivationType = null,
    QuantizedDotKernel? DotReference = null,
    QuantizedDotKernel? Dot = null,
    KernelPath DotPath = KernelPath.Reference);

/// <summary>
/// The one table of per-type kernels, indexed by <see cref="GgmlType"/> (ggml's <c>type_traits</c> and
/// <c>type_traits_cpu</c> in one place). Each entry says which of its kernels are vectorized.
/// <list type="bullet">
/// <item>Vectorized dequantizers: F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; every other type's fast entry is its
/// reference kernel.</item>
/// <item>Quantizers (ggml's, without importance matrix, bit for bit): F32, F16, BF16, Q8_0, Q8_1, Q8_K, Q4_0, Q4_1,
/// Q5_0, Q5_1, Q1_0, Q2_0, MXFP4, NVFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, TQ1_0, TQ2_0, IQ4_NL, IQ4_XS; none for the
/// grid i-quants. The activation types' quantizers (Q8_0, Q8_K) are vectorized with the reference's bytes.</item>
/// <item>llama.cpp's dots (ggml's generic <c>vec_dot</c>): vectorized for Q8_0 and Q4_0 (Q8_0 activations) and Q4_K,
/// Q5_K, Q6_K, IQ2_XXS, IQ2_XS, IQ1_S (Q8_K activations); scalar float64 sums for F32, F16, BF16 (activations of their own type, as ggml's
/// non-SIMD build); scalar ports, whose fast entry is the reference, for Q4_1 and Q5_1 (Q8_1), Q5_0, Q1_0, Q2_0,
/// IQ4_NL, MXFP4, NVFP4 (Q8_0), and Q2_K, Q3_K, TQ1_0, TQ2_0, IQ2_S, IQ3_XXS, IQ3_S, IQ1_M, IQ4_XS (Q8_K).</item>
/// </list>
/// </summary>
public static class TypeKernels
{
    private static readonly Dictionary<GgmlType, TypeKernel> Table = Build().ToDictionary(kernel => kernel.Info.Type);

    /// <summary>Every type that has kernels.</summary>
    public static IEnumerable<TypeKernel> All => Table.Values;

    /// <summary>The kernels of <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException">No kernels exist for the type.</exception>
    public static TypeKernel Get(GgmlType type) =>
        Table.TryGetValue(type, out var kernel)
            ? kernel
            : throw new ArgumentException($"There are no kernels for ggml type {type} ({(uint)type}).", nameof(type));

    /// <summary>Looks up the kernels of <paramref name="type"/>.</summary>
    public static bool TryGet(GgmlType type, [NotNullWhen(true)] out TypeKernel? kernel) => Table.TryGetValue(type, out kernel);

    private static IEnumerable<TypeKernel> Build()
    {
        static TypeKernel Plain(GgmlType type, DequantizeRowKernel reference, QuantizeRowKernel? quantize = null) =>
            new(GgmlTypes.Get(type), reference, reference, KernelPath.Reference, quantize);

        static TypeKernel Fast(GgmlType type, DequantizeRowKernel reference, DequantizeRowKernel fast, QuantizeRowKernel? quantize = null) =>
            new(GgmlTypes.Get(type), reference, fast, KernelPath.Vectorized, quantize);

        yield return Fast(GgmlType.F32, PlainFloats.DequantizeF32, PlainFloats.DequantizeF32, PlainFloats.QuantizeF32) with
        {
            DotActivationType = GgmlType.F32, DotReference = PlainDots.F32, Dot = PlainDots.F32,
        };
        yield return Fast(GgmlType.F16, PlainFloats.DequantizeF16Reference, PlainFloats.DequantizeF16, PlainFloats.QuantizeF16) with
        {
            DotActivationType = GgmlType.F16, DotReference = PlainDots.F16, Dot = PlainDots.F16,
        };
        yield return Fast(GgmlType.BF16, PlainFloats.DequantizeBF16Reference, PlainFloats.DequantizeBF16, PlainFloats.QuantizeBF16) with
        {
            DotActivationType = GgmlType.BF16, DotReference = PlainDots.BF16, Dot = PlainDots.BF16,
        };
        yield return Fast(GgmlType.Q8_0, Q8_0.DequantizeReference, Q8_0.Dequantize, Q8_0.Quantize) with
        {
            DotActivationType = GgmlType.Q8_0, DotReference = QuantizedDots.Q8_0Reference, Dot = QuantizedDots.Q8_0, DotPath = KernelPath.Vectorized,
        };
        yield return Fast(GgmlType.Q4_0, Q4_0.DequantizeReference, Q4_0.Dequantize, Q4_0.QuantizeReference) with
        {
            DotActivationType = GgmlType.Q8_0, DotReference = QuantizedDots.Q4_0Reference, Dot = QuantizedDots.Q4_0, DotPath = KernelPath.Vectorized,
        };
        yield return Fast(GgmlType.Q4_K, Q4K.DequantizeReference, Q4K.Dequantize, Q4K.QuantizeReference) with
        {
            DotActivationType = GgmlType.Q8_K, DotReference = QuantizedDots.Q4KReference, Dot = QuantizedDots.Q4K, DotPath = KernelPath.Vectorized,
        };
        yield return Fast(GgmlType.Q6_K, Q6K.DequantizeReference, Q6K.Dequantize, Q6K.QuantizeReference) with
        {
            DotActivationType = GgmlType.Q8_K, DotReference = QuantizedDots.Q6KReference, Dot = QuantizedDots.Q6K, DotPath = KernelPath.Vectorized,
        };
        yield return Plain(GgmlType.Q8_K, Q8K.DequantizeReference, Q8K.Quantize);
        yield return Plain(GgmlType.Q8_1, Quant.Q8_1.DequantizeReference, Quant.Q8_1.QuantizeReference);
        yield return Plain(GgmlType.Q4_1, LegacyQuants.DequantizeQ4_1, LegacyQuants.QuantizeQ4_1) with { DotActivationType = GgmlType.Q8_1, DotReference = ReferenceDots.Q4_1, Dot = ReferenceDots.Q4_1 };
        yield return Plain(GgmlType.Q5_0, LegacyQuants.DequantizeQ5_0, LegacyQuants.QuantizeQ5_0) with { DotActivationType = GgmlType.Q8_0, DotReference = ReferenceDots.Q5_0, Dot = ReferenceDots.Q5_0 };
        yield return Plain(GgmlType.Q5_1, LegacyQuants.DequantizeQ5_1, LegacyQuants.QuantizeQ5_1) with { DotActivationType = GgmlType.Q8_1, DotReference = ReferenceDots.Q5_1, Dot = ReferenceDots.Q5_1 };
        yield return Plain(GgmlType.Q1_0, LowBitQuants.DequantizeQ1_0, LowBitQuants.QuantizeQ1_0) with { DotActivationType = GgmlType.Q8_0, DotReference = ReferenceDots.Q1_0, Dot = ReferenceDots.Q1_0 };
        yield return Plain(GgmlType.Q2_0, LowBitQuants.DequantizeQ2_0, LowBitQuants.QuantizeQ2_0) with { DotActivationType = GgmlType.Q8_0, DotReference = ReferenceDots.Q2_0, Dot = ReferenceDots.Q2_0 };
        yield return Plain(GgmlType.MXFP4, Fp4Quants.DequantizeMxfp4, Fp4Quants.QuantizeMxfp4) with { DotActivationType = GgmlType.Q8_0, DotReference = ReferenceDots.Mxfp4, Dot = ReferenceDots.Mxfp4 };
        yield return Plain(GgmlType.NVFP4, Fp4Quants.DequantizeNvfp4, Fp4Quants.QuantizeNvfp4) with { DotActivationType = GgmlType.Q8_0, DotReference = ReferenceDots.Nvfp4, Dot = ReferenceDots.Nvfp4 };
        yield return Plain(GgmlType.Q2_K, KQuants.DequantizeQ2K, KQuants.QuantizeQ2K) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.Q2K, Dot = ReferenceDots.Q2K };
        yield return Plain(GgmlType.Q3_K, KQuants.DequantizeQ3K, KQuants.QuantizeQ3K) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.Q3K, Dot = ReferenceDots.Q3K };
        yield return Fast(GgmlType.Q5_K, KQuants.DequantizeQ5K, KQuants.DequantizeQ5KFast, KQuants.QuantizeQ5K) with
        {
            DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.Q5K, Dot = QuantizedDots.Q5K, DotPath = KernelPath.Vectorized,
        };
        yield return Plain(GgmlType.TQ1_0, TernaryQuants.DequantizeTQ1_0, TernaryQuants.QuantizeTQ1_0) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.TQ1_0, Dot = ReferenceDots.TQ1_0 };
        yield return Plain(GgmlType.TQ2_0, TernaryQuants.DequantizeTQ2_0, TernaryQuants.QuantizeTQ2_0) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.TQ2_0, Dot = ReferenceDots.TQ2_0 };
        yield return Plain(GgmlType.IQ2_XXS, TwoBitIQuants.DequantizeIQ2Xxs) with
        {
            DotActivationType = GgmlType.Q8_K, DotReference = TwoBitIQuants.DotIQ2XxsReference, Dot = TwoBitIQuants.DotIQ2Xxs, DotPath = KernelPath.Vectorized,
        };
        yield return Plain(GgmlType.IQ2_XS, TwoBitIQuants.DequantizeIQ2Xs) with
        {
            DotActivationType = GgmlType.Q8_K, DotReference = TwoBitIQuants.DotIQ2XsReference, Dot = TwoBitIQuants.DotIQ2Xs, DotPath = KernelPath.Vectorized,
        };
        yield return Plain(GgmlType.IQ1_S, TwoBitIQuants.DequantizeIQ1S) with
        {
            DotActivationType = GgmlType.Q8_K, DotReference = TwoBitIQuants.DotIQ1SReference, Dot = TwoBitIQuants.DotIQ1S, DotPath = KernelPath.Vectorized,
        };
        yield return Plain(GgmlType.IQ2_S, IQuants.DequantizeIQ2S) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.IQ2S, Dot = ReferenceDots.IQ2S };
        yield return Plain(GgmlType.IQ3_XXS, IQuants.DequantizeIQ3Xxs) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.IQ3Xxs, Dot = ReferenceDots.IQ3Xxs };
        yield return Plain(GgmlType.IQ3_S, IQuants.DequantizeIQ3S) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.IQ3S, Dot = ReferenceDots.IQ3S };
        yield return Plain(GgmlType.IQ1_M, IQuants.DequantizeIQ1M) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.IQ1M, Dot = ReferenceDots.IQ1M };
        yield return Plain(GgmlType.IQ4_NL, IQuants.DequantizeIQ4NL, IQuants.QuantizeIQ4NL) with { DotActivationType = GgmlType.Q8_0, DotReference = ReferenceDots.IQ4NL, Dot = ReferenceDots.IQ4NL };
        yield return Plain(GgmlType.IQ4_XS, IQuants.DequantizeIQ4XS, IQuants.QuantizeIQ4XS) with { DotActivationType = GgmlType.Q8_K, DotReference = ReferenceDots.IQ4XS, Dot = ReferenceDots.IQ4XS };
    }
}
